//! bmcd: a DMTF Redfish BMC for libvirt virtual machines.
//!
//! A request travels: listener (TLS, limits) -> router (literal routes, each with
//! its DMTF privilege) -> authentication -> resource handler (one module per
//! resource family) -> domain model (`model`) -> hypervisor backend (`libvirt`,
//! on its own threads). Durable state sits in SQLite (`store`), on its own thread.

pub mod admin;
pub mod app;
pub mod auth;
pub mod body;
pub mod boot;
pub mod certificates;
pub mod composition;
pub mod config;
pub mod consoles;
pub mod error;
pub mod events;
pub mod firmware;
#[doc(hidden)]
pub mod fuzzing;
pub mod host;
pub mod http;
#[doc(hidden)]
pub mod json_build;
pub mod libvirt;
pub mod logs;
pub mod manager_reset;
pub mod media;
pub mod metrics;
pub mod model;
pub mod outbound;
pub mod personas;
pub mod privilege;
pub mod rate_limit;
pub mod registries;
pub mod resources;
pub mod router;
pub mod schemas;
pub mod store;
pub mod tasks;
pub mod tenancy;
pub mod time;
pub mod toml_lite;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use app::{App, ServiceInfo};
use auth::Authority;
use config::Config;
use store::Store;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why bmcd could not start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

fn start_err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> StartError {
    move |e| StartError(format!("{what}: {e}"))
}

/// A started bmcd.
pub struct Running {
    pub https: SocketAddr,
    pub http_redirect: Option<SocketAddr>,
    /// The first administrator's password, when bmcd generated it on this start.
    pub generated_admin_password: Option<String>,
    pub admin_user: String,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Event followers: they never end by themselves.
    followers: Vec<JoinHandle<()>>,
    auth: Arc<Authority>,
    logs: Arc<logs::Logs>,
    app: Arc<App>,
    /// Held while the service runs (released when `Running` is dropped).
    _state_lock: admin::StateLock,
}

impl Running {
    /// Waits until a client asks for the BMC's own `Manager.Reset`; the caller
    /// then stops the service and carries out `manager_reset_action`.
    pub fn manager_reset_requested(
        &self,
    ) -> impl std::future::Future<Output = manager_reset::ManagerResetType> + Send + 'static {
        self.app.manager_resets.bmc_reset_requested()
    }

    /// Stops accepting, drains in-flight requests, saves session state.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        self.app.endpoints.stop_all().await;
        for t in self.tasks {
            let _ = t.await;
        }
        // The requests have been answered: write their audit entries, then stop.
        self.logs.flush().await;
        for f in &self.followers {
            f.abort();
        }
        if let Err(e) = self.auth.expire_sessions().await {
            tracing::warn!(error = %e, "could not save session state at shutdown");
        }
    }
}

fn random_uuid(rng: &SystemRandom) -> Result<String, StartError> {
    let mut b = [0u8; 16];
    rng.fill(&mut b)
        .map_err(|_| StartError("no system randomness".into()))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, StartError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StartError(format!("start-up task failed: {e}")))
}

/// Opens the state, the hypervisor and the listeners, and starts serving.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let state_dir = config.state_dir.clone();
    outbound::allow_only(
        config
            .outbound_allow
            .iter()
            .filter_map(|c| outbound::Cidr::parse(c))
            .collect(),
    );
    blocking({
        let dir = state_dir.clone();
        move || {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
        }
    })
    .await?
    .map_err(|e| StartError(format!("state directory {}: {e}", state_dir.display())))?;

    // One bmcd per state directory; `bmcd admin restore` checks the same lock.
    let state_lock = blocking({
        let dir = state_dir.clone();
        move || admin::lock_state_dir(&dir)
    })
    .await?
    .map_err(StartError)?;

    let db = state_dir.join(admin::DATABASE);
    let store = blocking(move || Store::open(&db))
        .await?
        .map_err(start_err("state database"))?;
    let auth = Authority::load(store.clone())
        .await
        .map_err(start_err("state database"))?;
    auth.limit_sessions(config.max_sessions);
    let generated_admin_password = auth
        .ensure_admin(&config.admin_user, config.admin_password.as_deref())
        .await
        .map_err(|e| StartError(format!("first administrator account: {e}")))?;

    let rng = SystemRandom::new();
    let uuid = match store
        .setting("service_uuid")
        .await
        .map_err(start_err("state database"))?
    {
        Some(u) => u,
        None => {
            let u = random_uuid(&rng)?;
            store
                .set_setting("service_uuid", u.clone())
                .await
                .map_err(start_err("state database"))?;
            u
        }
    };

    let (local_host, other_hosts) = libvirt::hosts::specs(&config);
    let workers = config.libvirt_workers;
    let timeout = Duration::from_secs(config.libvirt_timeout_s);
    let hosts = Arc::new(
        blocking(move || libvirt::hosts::HostPool::open(local_host, other_hosts, workers, timeout))
            .await?
            .map_err(start_err("libvirt"))?,
    );

    let host_name = host::host_name();
    let certificates = {
        let dir = state_dir.clone();
        let configured = config.cert.clone().zip(config.key.clone());
        let names = vec![host_name.clone(), config.listen.ip().to_string()];
        let tls_config = config.tls.clone();
        Arc::new(
            blocking(move || certificates::Certificates::open(&dir, configured, &names, &tls_config))
                .await?
                .map_err(start_err("TLS certificate"))?,
        )
    };
    let tls = certificates.server_config().map_err(start_err("TLS"))?;

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError(format!("listen on {}: {e}", config.listen)))?;
    let https = listener.local_addr().map_err(start_err("listener"))?;
    let redirect_listener = match config.http_redirect {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| StartError(format!("listen on {addr}: {e}")))?,
        ),
        None => None,
    };
    let http_redirect = match &redirect_listener {
        Some(l) => Some(l.local_addr().map_err(start_err("listener"))?),
        None => None,
    };

    let hypervisor: Arc<dyn model::Hypervisor> = Arc::clone(&hosts) as Arc<dyn model::Hypervisor>;
    let boot = boot::BootService::new(Arc::clone(&hypervisor), store.clone());
    let boot_watch = Arc::clone(&boot).watch();
    let (logs, log_writer) = logs::Logs::start(store.clone(), config.log_retention);
    let events = events::EventService::load(store.clone(), Arc::clone(&logs))
        .await
        .map_err(start_err("state database"))?;
    let event_delivery = Arc::clone(&events).deliver(Duration::from_secs(config.event_delivery_timeout_s));
    let event_follow = Arc::clone(&events).follow(hypervisor.as_ref());
    let tasks = tasks::Tasks::load(store.clone(), Arc::clone(&events))
        .await
        .map_err(start_err("state database"))?;
    let media = media::MediaService::new(
        Arc::clone(&hypervisor),
        store.clone(),
        Arc::clone(&tasks),
        state_dir.join("media"),
        config.max_image_bytes,
        Arc::clone(&events),
    );
    let media_watch = media.watch();
    let console_socket = consoles::socket_path(&config.console, &state_dir);
    let console_listener = consoles::bind_socket(&console_socket, config.console.socket_group)
        .map_err(|e| StartError(format!("console socket: {e}")))?;
    let consoles = consoles::ConsoleService::new(
        config.console.clone(),
        store.clone(),
        Arc::clone(&auth),
        Arc::clone(&hypervisor),
        Arc::clone(&logs),
        Arc::clone(&hosts),
    );
    let limits = http::server::Limits {
        max_connections: config.max_connections,
        max_connections_per_client: config.max_connections_per_client,
        max_header_bytes: config.max_header_bytes,
        handshake_timeout: Duration::from_secs(config.tls_handshake_timeout_s),
        header_read_timeout: Duration::from_secs(config.header_read_timeout_s),
        shutdown_grace: Duration::from_secs(config.shutdown_grace_s),
    };
    let endpoints = personas::endpoints::EndpointManager::new(certificates.client_cas().cloned(), limits);
    let firmware = {
        let config = config.firmware.clone();
        let dir = state_dir.clone();
        let tasks = Arc::clone(&tasks);
        Arc::new(blocking(move || firmware::FirmwareService::open(config.as_ref(), &dir, tasks)).await?)
    };
    let app = Arc::new(App {
        certificates,
        consoles: Arc::clone(&consoles),
        hypervisor,
        hosts: Arc::clone(&hosts),
        auth: Arc::clone(&auth),
        store,
        boot,
        tasks,
        media,
        firmware: Arc::clone(&firmware),
        events,
        logs: Arc::clone(&logs),
        router: {
            let mut routes = router::all_routes();
            resources::operations::apply_metrics_auth(&mut routes, config.metrics_auth);
            router::Router::new(routes)
        },
        personas: personas::Routers::new(),
        endpoints,
        manager_resets: manager_reset::ManagerResets::new(Duration::from_secs(config.system_bmc_reset_s)),
        service: ServiceInfo {
            uuid,
            host_name,
            https,
            http_redirect,
            firmware_version: VERSION,
            libvirt_uri: config.libvirt_uri.clone(),
        },
        max_body_bytes: config.max_body_bytes,
        max_subscriptions: config.max_subscriptions,
        rate_limits: {
            let (address, user) = config.rate_limits();
            rate_limit::RateLimits::new(address, user, config.rate_limit_max_clients)
        },
        conditional_writes: tokio::sync::Mutex::new(()),
        composition: composition::Composer::new(config.composition.clone()),
    });

    composition::recover(&app).await;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let persona_watch = personas::watch(Arc::clone(&app));
    let composition_watch = composition::watch(Arc::clone(&app));
    let stored = app.store.endpoints().await.map_err(start_err("state database"))?;
    for rec in &stored {
        if let Err(e) = app.endpoints.start(Arc::clone(&app), rec).await {
            tracing::error!(endpoint = %rec.id, error = %e, "BMC endpoint not started");
        }
    }
    // Endpoints of the configuration file are made once; afterwards they are
    // state like the ones made through the OEM API.
    for e in config
        .endpoints
        .iter()
        .filter(|e| !stored.iter().any(|s| s.id == e.id))
    {
        let new = resources::bmc_endpoints::NewEndpoint {
            id: Some(e.id.clone()),
            system: e.system.clone(),
            persona: e.persona.clone(),
            address: e.address.clone(),
            user: e.user.clone(),
            password: e.password.clone(),
            role: None,
        };
        resources::bmc_endpoints::create(&app, new).await.map_err(|err| {
            StartError(format!(
                "endpoint '{}': {}",
                e.id,
                err.body()["error"]["@Message.ExtendedInfo"][0]["Message"]
            ))
        })?;
    }
    let mut tasks = vec![tokio::spawn(http::server::serve_https(
        listener,
        tls,
        Arc::clone(&app),
        limits,
        shutdown_rx.clone(),
        None,
    ))];
    tasks.push(tokio::spawn(
        consoles.serve(console_listener, shutdown_rx.clone()),
    ));
    if let Some(l) = redirect_listener {
        tasks.push(tokio::spawn(http::server::serve_redirect(
            l,
            https.port(),
            shutdown_rx.clone(),
        )));
    }
    // Session housekeeping: expire idle sessions, save last-use times.
    let housekeeping_auth = Arc::clone(&auth);
    let mut housekeeping_stop = shutdown_rx;
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(15));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = housekeeping_auth.expire_sessions().await {
                        tracing::warn!(error = %e, "session housekeeping failed");
                    }
                }
                _ = housekeeping_stop.changed() => break,
            }
        }
    }));

    // A trial boot of a new firmware bank becomes the good one once bmcd answers.
    let mut followers = vec![
        boot_watch,
        event_delivery,
        event_follow,
        media_watch,
        log_writer,
        persona_watch,
        composition_watch,
    ];
    followers.extend(firmware.start(https));
    followers.extend(hosts.watch());

    tracing::info!(%https, libvirt_uri = %config.libvirt_uri, state_dir = %state_dir.display(), "bmcd started");
    Ok(Running {
        https,
        http_redirect,
        generated_admin_password,
        admin_user: config.admin_user,
        shutdown,
        tasks,
        followers,
        auth,
        logs: Arc::clone(&logs),
        app,
        _state_lock: state_lock,
    })
}
