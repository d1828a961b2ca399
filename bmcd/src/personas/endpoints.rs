//! The listeners of the per-VM BMC endpoints: started at start-up for every
//! stored endpoint, and when one is added through the OEM API; stopped when
//! it is removed or bmcd stops.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Endpoint, PersonaKind};
use crate::app::App;
use crate::http::server::Limits;
use crate::store::EndpointRecord;

struct Listening {
    endpoint: Arc<Endpoint>,
    address: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

pub struct EndpointManager {
    tls: Arc<rustls::ServerConfig>,
    limits: Limits,
    running: Mutex<HashMap<String, Listening>>,
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
}

impl std::fmt::Display for StartFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartFailure::BadAddress(a) => write!(f, "'{a}' is not an ADDRESS:PORT"),
            StartFailure::BadPersona(p) => write!(f, "unknown persona '{p}'"),
            StartFailure::Bind(e) => write!(f, "cannot listen: {e}"),
        }
    }
}

impl EndpointManager {
    pub fn new(tls: Arc<rustls::ServerConfig>, limits: Limits) -> EndpointManager {
        EndpointManager {
            tls,
            limits,
            running: Mutex::new(HashMap::new()),
            power_on: Mutex::new(HashMap::new()),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Listening>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Binds the endpoint's address and serves it; returns the bound address.
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
        let endpoint = Arc::new(Endpoint::new(&rec.id, &rec.system_id, persona));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(crate::http::server::serve_https(
            listener,
            Arc::clone(&self.tls),
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

    /// Stops an endpoint's listener and waits for it to drain.
    pub async fn stop(&self, id: &str) {
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
