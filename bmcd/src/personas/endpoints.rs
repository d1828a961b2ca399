//! The listeners of the per-VM BMC endpoints: started at start-up for every
//! stored endpoint, and when one is added through the OEM API; stopped when
//! it is removed or bmcd stops. Each serves its own TLS certificate (see
//! [`crate::certificates`]), loaded at its first start and kept while bmcd runs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Endpoint, PersonaKind};
use crate::app::App;
use crate::certificates::{Certificates, ClientCas};
use crate::http::server::Limits;
use crate::store::EndpointRecord;

struct Listening {
    endpoint: Arc<Endpoint>,
    address: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

pub struct EndpointManager {
    /// The CAs of client certificates: the BMC's, on every endpoint.
    client_cas: Option<ClientCas>,
    limits: Limits,
    running: Mutex<HashMap<String, Listening>>,
    /// Each endpoint's own certificates, kept across the endpoint's resets.
    certificates: Mutex<HashMap<String, Arc<Certificates>>>,
    /// When each system was last seen to power on (Unix milliseconds).
    power_on: Mutex<HashMap<String, i64>>,
    /// Set when bmcd stops: nothing listens again after that.
    closed: std::sync::atomic::AtomicBool,
}

/// Why an endpoint could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartFailure {
    BadAddress(String),
    BadPersona(String),
    Bind(String),
    Tls(String),
}

impl std::fmt::Display for StartFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartFailure::BadAddress(a) => write!(f, "'{a}' is not an ADDRESS:PORT"),
            StartFailure::BadPersona(p) => write!(f, "unknown persona '{p}'"),
            StartFailure::Bind(e) => write!(f, "cannot listen: {e}"),
            StartFailure::Tls(e) => write!(f, "no TLS certificate: {e}"),
        }
    }
}

impl EndpointManager {
    pub fn new(client_cas: Option<ClientCas>, limits: Limits) -> EndpointManager {
        EndpointManager {
            client_cas,
            limits,
            running: Mutex::new(HashMap::new()),
            certificates: Mutex::new(HashMap::new()),
            power_on: Mutex::new(HashMap::new()),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Listening>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The certificates of an endpoint that started at least once.
    pub fn certificates(&self, id: &str) -> Option<Arc<Certificates>> {
        self.certificates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// An endpoint's certificates: those it has, else from the state
    /// database, else new (self-signed and stored).
    async fn load_certificates(
        &self,
        app: &App,
        rec: &EndpointRecord,
        persona: PersonaKind,
        address: SocketAddr,
    ) -> Result<Arc<Certificates>, StartFailure> {
        if let Some(c) = self.certificates(&rec.id) {
            return Ok(c);
        }
        let mut names = vec![address.ip().to_string()];
        if address.ip().is_loopback() {
            names.push("localhost".to_owned());
        }
        let loaded = Certificates::for_endpoint(
            app.store.clone(),
            &rec.id,
            &persona.certificate_name(&rec.system_id),
            &names,
            self.client_cas.clone(),
        )
        .await
        .map_err(|e| StartFailure::Tls(e.to_string()))?;
        let mut all = self.certificates.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(Arc::clone(
            all.entry(rec.id.clone()).or_insert_with(|| Arc::new(loaded)),
        ))
    }

    /// Binds the endpoint's address and serves it with the endpoint's own
    /// certificate; returns the bound address.
    pub async fn start(&self, app: Arc<App>, rec: &EndpointRecord) -> Result<SocketAddr, StartFailure> {
        let persona =
            PersonaKind::parse(&rec.persona).ok_or_else(|| StartFailure::BadPersona(rec.persona.clone()))?;
        let addr: SocketAddr = rec
            .listen
            .parse()
            .map_err(|_| StartFailure::BadAddress(rec.listen.clone()))?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| StartFailure::Bind(format!("{addr}: {e}")))?;
        let address = listener
            .local_addr()
            .map_err(|e| StartFailure::Bind(e.to_string()))?;
        let certificates = self.load_certificates(&app, rec, persona, address).await?;
        let tls = certificates
            .server_config()
            .map_err(|e| StartFailure::Tls(e.to_string()))?;
        let endpoint = Arc::new(Endpoint::new(&rec.id, &rec.system_id, persona));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(crate::http::server::serve_https(
            listener,
            tls,
            Arc::clone(&app),
            self.limits,
            stopped,
            Some(Arc::clone(&endpoint)),
        ));
        tracing::info!(endpoint = %rec.id, persona = persona.as_str(), system = %rec.system_id, %address, "BMC endpoint listening");
        // The system's BMC is up: its log says so, as a server's BMC logs its own start.
        crate::manager_reset::publish_manager_state(&app, &rec.system_id, "Enabled").await;
        let old = self.running().insert(
            rec.id.clone(),
            Listening {
                endpoint,
                address,
                stop,
                task,
            },
        );
        if let Some(old) = old {
            let _ = old.stop.send(true);
        }
        Ok(address)
    }

    /// Stops an endpoint's listener and waits for it to drain; its
    /// certificates are forgotten (they stay in the state database until the
    /// endpoint is deleted).
    pub async fn stop(&self, id: &str) {
        self.certificates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        let gone = self.running().remove(id);
        if let Some(l) = gone {
            let _ = l.stop.send(true);
            let _ = l.task.await;
        }
    }

    pub async fn stop_all(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let all: Vec<Listening> = self.running().drain().map(|(_, l)| l).collect();
        for l in &all {
            let _ = l.stop.send(true);
        }
        for l in all {
            let _ = l.task.await;
        }
    }

    /// A per-VM BMC reboots: the system's endpoints stop listening, and
    /// listen again on the same addresses after `down` (unless they were
    /// removed, or bmcd stopped, meanwhile).
    pub async fn restart_system(&self, app: &Arc<App>, system_id: &str, down: std::time::Duration) {
        let going: Vec<(String, Listening)> = {
            let mut running = self.running();
            let ids: Vec<String> = running
                .iter()
                .filter(|(_, l)| l.endpoint.system_id == system_id)
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter()
                .filter_map(|id| running.remove(&id).map(|l| (id, l)))
                .collect()
        };
        let mut addresses = Vec::with_capacity(going.len());
        for (id, l) in going {
            let _ = l.stop.send(true);
            let _ = l.task.await;
            tracing::info!(endpoint = %id, system = system_id, "BMC endpoint resetting");
            addresses.push((id, l.address));
        }
        tokio::time::sleep(down).await;
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let stored = match app.store.endpoints().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(system = system_id, error = %e, "BMC endpoints not restarted after their reset");
                return;
            }
        };
        for (id, address) in addresses {
            let Some(rec) = stored.iter().find(|r| r.id == id) else {
                continue;
            };
            if self.address(&id).is_some() {
                continue;
            }
            let rec = EndpointRecord {
                listen: address.to_string(),
                ..rec.clone()
            };
            if let Err(e) = self.start(Arc::clone(app), &rec).await {
                tracing::error!(endpoint = %id, error = %e, "BMC endpoint not restarted after its reset");
            }
        }
    }

    /// Where the running endpoints of a system listen.
    pub fn addresses_of_system(&self, system_id: &str) -> Vec<SocketAddr> {
        let mut out: Vec<SocketAddr> = self
            .running()
            .values()
            .filter(|l| l.endpoint.system_id == system_id)
            .map(|l| l.address)
            .collect();
        out.sort();
        out
    }

    /// Where a running endpoint listens.
    pub fn address(&self, id: &str) -> Option<SocketAddr> {
        self.running().get(id).map(|l| l.address)
    }

    /// The running endpoint of a system with a given persona, if any.
    pub fn endpoint(&self, id: &str) -> Option<Arc<Endpoint>> {
        self.running().get(id).map(|l| Arc::clone(&l.endpoint))
    }

    /// Notes that a system powered on now.
    pub fn powered_on(&self, system_id: &str) {
        let now = crate::time::now_unix_ms();
        self.power_on
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(system_id.to_owned(), now);
    }

    /// Milliseconds since the system was last seen to power on, if it was.
    pub fn since_power_on(&self, system_id: &str) -> Option<i64> {
        let at = *self
            .power_on
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(system_id)?;
        Some(crate::time::now_unix_ms() - at)
    }
}
