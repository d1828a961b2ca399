//! Configuration: built-in defaults, then the TOML file, then `BMCD_*`
//! environment variables, then command-line flags (each overrides the one before).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
pub const DEFAULT_LIBVIRT_URI: &str = "test:///default";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/bmcd";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// HTTPS listener.
    pub listen: SocketAddr,
    /// Optional plain-HTTP listener that only redirects to HTTPS.
    pub http_redirect: Option<SocketAddr>,
    pub libvirt_uri: String,
    /// Labels of the host behind `libvirt_uri` (named `local`), for placement.
    pub libvirt_labels: Vec<String>,
    /// Further libvirt hosts whose systems this BMC serves (`[[host]]` tables).
    pub hosts: Vec<HostConfig>,
    pub state_dir: PathBuf,
    /// Own certificate and key (PEM); a self-signed pair is made otherwise.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The first Administrator account, created when no account exists.
    pub admin_user: String,
    pub admin_password: Option<String>,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub log: String,
    pub max_connections: usize,
    /// Concurrent HTTPS connections from one client address (of `max_connections`).
    pub max_connections_per_client: usize,
    /// Seconds a client gets to complete its TLS handshake.
    pub tls_handshake_timeout_s: u64,
    /// Seconds a client gets to send a whole request head; also how long an
    /// idle keep-alive connection stays open.
    pub header_read_timeout_s: u64,
    /// Login sessions open at a time.
    pub max_sessions: usize,
    /// Event subscriptions that may exist.
    pub max_subscriptions: usize,
    /// Seconds one event delivery attempt may take (connect, send, answer).
    pub event_delivery_timeout_s: u64,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub libvirt_workers: usize,
    pub libvirt_timeout_s: u64,
    /// Largest virtual-media image bmcd downloads.
    pub max_image_bytes: u64,
    /// Entries kept per log (event log, each system's log, audit log).
    pub log_retention: i64,
    /// Address ranges (CIDR) bmcd may connect to for images and event
    /// deliveries; empty: any address but link-local, multicast and unspecified.
    pub outbound_allow: Vec<String>,
    /// Seconds in-flight requests get to finish after SIGTERM.
    pub shutdown_grace_s: u64,
    /// What the BMC's own `Manager.Reset` does once bmcd has stopped.
    pub manager_reset: crate::manager_reset::BmcResetAction,
    /// Seconds a per-VM BMC (its endpoints) stays away during its `Manager.Reset`.
    pub system_bmc_reset_s: u64,
    /// Consoles: see [`ConsoleConfig`].
    pub console: ConsoleConfig,
    /// Per-VM BMC endpoints to create at start-up when they do not exist yet
    /// (`[[endpoint]]` tables in the file).
    pub endpoints: Vec<EndpointConfig>,
    /// Firmware banks and boot loader (`[firmware]`); without it the
    /// UpdateService is shown but disabled.
    pub firmware: Option<FirmwareConfig>,
    /// Client certificates (`[tls]`).
    pub tls: TlsConfig,
    /// System composition: quotas and where new disks go (`[composition]`).
    pub composition: CompositionConfig,
    /// Who may read `/metrics`.
    pub metrics_auth: MetricsAuth,
    /// Requests per second (and burst) per client address; 0: no limit.
    pub rate_limit_address_rps: u32,
    pub rate_limit_address_burst: u32,
    /// Requests per second (and burst) per authenticated user; 0: no limit.
    pub rate_limit_user_rps: u32,
    pub rate_limit_user_burst: u32,
    /// Client addresses and users tracked by each limit at most.
    pub rate_limit_max_clients: usize,
}

/// Limits and defaults of system composition (`[composition]` in the TOML
/// file). Quotas count the systems bmcd composed, not domains made otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompositionConfig {
    pub max_systems: u32,
    pub max_vcpus: u32,
    pub max_memory_mib: u64,
    pub max_disk_gib: u64,
    /// Pool of the disks of systems composed without an image.
    pub pool: String,
    /// Directory the serial consoles of composed systems are logged to
    /// (`NAME.log`); `None`: not logged.
    pub console_log_dir: Option<PathBuf>,
    /// How a new system's host is chosen among those that fit it.
    pub placement: Placement,
    /// Memory a host may hand out, in percent of its own (100: none overcommitted).
    pub memory_overcommit_percent: u32,
}

/// How composition picks a host for a new system (`[composition] placement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// The host with the most free memory: systems spread over the hosts.
    #[default]
    Spread,
    /// The host with the least free memory that still fits: hosts fill up one
    /// after the other.
    Binpack,
}

/// The name of the host behind `libvirt-uri`.
pub const LOCAL_HOST: &str = "local";

/// One `[[host]]` of the configuration file: a further libvirt host.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HostConfig {
    /// Letters, digits, '-' and '_'; names the host in Redfish
    /// (`AggregationSources/{name}`, storage pools `POOL@NAME`).
    pub name: String,
    pub libvirt_uri: String,
    #[serde(default)]
    pub labels: Vec<String>,
}

impl Default for CompositionConfig {
    fn default() -> Self {
        CompositionConfig {
            max_systems: 32,
            max_vcpus: 64,
            max_memory_mib: 128 << 10,
            max_disk_gib: 1024,
            pool: "default".to_owned(),
            console_log_dir: None,
            placement: Placement::Spread,
            memory_overcommit_percent: 100,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileComposition {
    max_systems: Option<u32>,
    max_vcpus: Option<u32>,
    max_memory_mib: Option<u64>,
    max_disk_gib: Option<u64>,
    pool: Option<String>,
    console_log_dir: Option<PathBuf>,
    placement: Option<Placement>,
    memory_overcommit_percent: Option<u32>,
}

/// Who may read `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAuth {
    /// Any authenticated account (the Login privilege), like every Redfish read.
    #[default]
    Login,
    /// Anyone who reaches the listener (for a scraper without credentials on
    /// a trusted network).
    None,
}

impl Config {
    /// The two rate limits as [`crate::rate_limit::Rate`]s (burst 0: twice the rate).
    pub fn rate_limits(&self) -> (crate::rate_limit::Rate, crate::rate_limit::Rate) {
        let rate = |rps: u32, burst: u32| crate::rate_limit::Rate {
            per_second: f64::from(rps),
            burst: f64::from(if burst == 0 { rps.saturating_mul(2) } else { burst }),
        };
        (
            rate(self.rate_limit_address_rps, self.rate_limit_address_burst),
            rate(self.rate_limit_user_rps, self.rate_limit_user_burst),
        )
    }
}

/// Whether a TLS client must present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// A client may present one; without it, Basic and session authentication work.
    #[default]
    Optional,
    /// A handshake without a certificate the CA signed is refused.
    Required,
}

/// Client certificate authentication (mTLS), `[tls]` in the TOML file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsConfig {
    /// PEM file of the CA certificates that sign client certificates; `None`:
    /// bmcd asks for no client certificate.
    pub client_ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileTls {
    client_ca: Option<PathBuf>,
    client_auth: Option<ClientAuth>,
}

/// One `[[endpoint]]` of the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EndpointConfig {
    pub id: String,
    /// The domain's UUID or name.
    pub system: String,
    /// `generic`, `ilo5` or `idrac9`.
    pub persona: String,
    /// `ADDRESS:PORT` of its HTTPS listener.
    pub address: String,
    pub user: Option<String>,
    pub password: Option<String>,
}

/// How bmcd mints console tokens and serves console-proxy.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleConfig {
    /// The Unix socket console-proxy redeems tokens on; `None`: the state
    /// directory's `console.sock`.
    pub socket: Option<PathBuf>,
    /// Group given to the socket (mode 0660), so that console-proxy's user
    /// can reach it; `None`: the socket is 0600, bmcd's user only.
    pub socket_group: Option<u32>,
    /// The WebSocket base URL of console-proxy as clients reach it.
    pub url: String,
    /// Seconds a token can be redeemed after it is minted.
    pub token_ttl_s: u64,
    /// Seconds a console session may last from its token's minting.
    pub session_max_s: u64,
    /// Sessions (tokens in use) per system at a time.
    pub max_sessions: u32,
    /// Sessions on all systems together.
    pub max_sessions_total: u32,
    /// WebSocket connections one SPICE token opens (one per SPICE channel).
    pub spice_token_uses: u32,
    /// The port of console-proxy's SSH serial console (`--ssh-listen`), as
    /// clients reach it; `Some`: systems and their managers advertise SSH.
    pub ssh_port: Option<u16>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            socket: None,
            socket_group: None,
            url: "ws://127.0.0.1:6080".to_owned(),
            token_ttl_s: 60,
            session_max_s: 3600,
            max_sessions: 4,
            max_sessions_total: 32,
            spice_token_uses: 8,
            ssh_port: None,
        }
    }
}

/// Where the firmware banks and the boot loader's environment are, and which
/// update packages are trusted (`[firmware]` in the TOML file).
#[derive(Debug, Clone, PartialEq)]
pub struct FirmwareConfig {
    /// Bank A and bank B: a file or block device path, or `partlabel:NAME`
    /// (the GPT partition of that name, found in `/sys/class/block`).
    pub bank_a: String,
    pub bank_b: String,
    /// The GRUB environment block (1024 bytes) the boot loader reads.
    pub boot_env: PathBuf,
    /// The bank running now; when `None`, `redfin.bank=` in `cmdline`.
    pub booted_bank: Option<String>,
    /// Kernel command line to read `redfin.bank=` from.
    pub cmdline: PathBuf,
    /// Ed25519 public keys (base64 of the 32 raw bytes) whose signatures are trusted.
    pub trusted_keys: Vec<String>,
    /// What `compatible` a package's manifest must name.
    pub compatible: String,
    /// Version of the running firmware (default: bmcd's version).
    pub version: Option<String>,
    /// Largest update package accepted (upload or download).
    pub max_package_bytes: u64,
}

impl Default for FirmwareConfig {
    fn default() -> Self {
        FirmwareConfig {
            bank_a: String::new(),
            bank_b: String::new(),
            boot_env: PathBuf::new(),
            booted_bank: None,
            cmdline: PathBuf::from("/proc/cmdline"),
            trusted_keys: Vec::new(),
            compatible: "redfin-qemu-x86_64".to_owned(),
            version: None,
            max_package_bytes: 512 << 20,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileFirmware {
    bank_a: String,
    bank_b: String,
    boot_env: PathBuf,
    booted_bank: Option<String>,
    cmdline: Option<PathBuf>,
    #[serde(default)]
    trusted_keys: Vec<String>,
    compatible: Option<String>,
    version: Option<String>,
    max_package_bytes: Option<u64>,
}

impl From<FileFirmware> for FirmwareConfig {
    fn from(f: FileFirmware) -> FirmwareConfig {
        let d = FirmwareConfig::default();
        FirmwareConfig {
            bank_a: f.bank_a,
            bank_b: f.bank_b,
            boot_env: f.boot_env,
            booted_bank: f.booted_bank,
            cmdline: f.cmdline.unwrap_or(d.cmdline),
            trusted_keys: f.trusted_keys,
            compatible: f.compatible.unwrap_or(d.compatible),
            version: f.version,
            max_package_bytes: f.max_package_bytes.unwrap_or(d.max_package_bytes),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            http_redirect: None,
            libvirt_uri: DEFAULT_LIBVIRT_URI.to_owned(),
            libvirt_labels: Vec::new(),
            hosts: Vec::new(),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            cert: None,
            key: None,
            admin_user: "admin".to_owned(),
            admin_password: None,
            log: "info".to_owned(),
            max_connections: 256,
            max_connections_per_client: 128,
            tls_handshake_timeout_s: 10,
            header_read_timeout_s: 30,
            max_sessions: 64,
            max_subscriptions: 100,
            event_delivery_timeout_s: 10,
            max_body_bytes: 1 << 20,
            max_header_bytes: 16 << 10,
            libvirt_workers: 2,
            libvirt_timeout_s: 30,
            max_image_bytes: 8 << 30,
            outbound_allow: Vec::new(),
            log_retention: 10_000,
            shutdown_grace_s: 10,
            manager_reset: crate::manager_reset::BmcResetAction::Restart,
            system_bmc_reset_s: 10,
            console: ConsoleConfig::default(),
            endpoints: Vec::new(),
            firmware: None,
            tls: TlsConfig::default(),
            composition: CompositionConfig::default(),
            metrics_auth: MetricsAuth::Login,
            rate_limit_address_rps: 0,
            rate_limit_address_burst: 0,
            rate_limit_user_rps: 0,
            rate_limit_user_burst: 0,
            rate_limit_max_clients: 10_000,
        }
    }
}

/// The TOML file: every key optional, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    listen: Option<SocketAddr>,
    http_redirect: Option<SocketAddr>,
    libvirt_uri: Option<String>,
    libvirt_labels: Option<Vec<String>>,
    host: Option<Vec<HostConfig>>,
    state_dir: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    admin_user: Option<String>,
    admin_password: Option<String>,
    log: Option<String>,
    max_connections: Option<usize>,
    max_connections_per_client: Option<usize>,
    tls_handshake_timeout_s: Option<u64>,
    header_read_timeout_s: Option<u64>,
    max_sessions: Option<usize>,
    max_subscriptions: Option<usize>,
    event_delivery_timeout_s: Option<u64>,
    max_body_bytes: Option<usize>,
    max_header_bytes: Option<usize>,
    libvirt_workers: Option<usize>,
    libvirt_timeout_s: Option<u64>,
    max_image_bytes: Option<u64>,
    outbound_allow: Option<Vec<String>>,
    log_retention: Option<i64>,
    shutdown_grace_s: Option<u64>,
    manager_reset: Option<crate::manager_reset::BmcResetAction>,
    system_bmc_reset_s: Option<u64>,
    console_socket: Option<PathBuf>,
    console_socket_group: Option<u32>,
    console_url: Option<String>,
    console_token_ttl_s: Option<u64>,
    console_session_max_s: Option<u64>,
    console_max_sessions: Option<u32>,
    console_max_sessions_total: Option<u32>,
    console_spice_token_uses: Option<u32>,
    console_ssh_port: Option<u16>,
    endpoint: Option<Vec<EndpointConfig>>,
    firmware: Option<FileFirmware>,
    tls: Option<FileTls>,
    composition: Option<FileComposition>,
    metrics_auth: Option<MetricsAuth>,
    rate_limit_address_rps: Option<u32>,
    rate_limit_address_burst: Option<u32>,
    rate_limit_user_rps: Option<u32>,
    rate_limit_user_burst: Option<u32>,
    rate_limit_max_clients: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    Usage(String),
    File(String),
    Invalid(String),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Usage(m) => write!(f, "{m}\n\n{USAGE}"),
            ConfigError::File(m) => write!(f, "config file: {m}"),
            ConfigError::Invalid(m) => write!(f, "invalid configuration: {m}"),
        }
    }
}

impl std::error::Error for ConfigError {}

pub const USAGE: &str = "\
usage: bmcd [OPTIONS]
       bmcd admin backup ARCHIVE [--with-media] [OPTIONS]
                                              state database (consistent while bmcd runs),
                                              configuration file and TLS files, in one archive
                                              (--with-media: the virtual media cache too)
       bmcd admin restore ARCHIVE [--force] [OPTIONS]
                                              put them back (bmcd stopped; --force replaces an
                                              existing state database)

  --config FILE          TOML configuration file (keys as below, kebab-case)
  --listen ADDR:PORT     HTTPS listener (default 127.0.0.1:8443)
  --http-redirect ADDR:PORT
                         plain-HTTP listener that redirects to HTTPS
  --libvirt-uri URI      libvirt connection (default test:///default)
  --state-dir DIR        durable state (default /var/lib/bmcd)
  --cert FILE --key FILE own TLS certificate and key (PEM)
  --log LEVEL            error, warn, info, debug or trace (default info)
  --console-socket PATH  Unix socket where console-proxy redeems console tokens
                         (default STATE_DIR/console.sock)
  --console-url URL      console-proxy's WebSocket base URL (default ws://127.0.0.1:6080)
  --console-ssh-port N   console-proxy's SSH serial console port (its --ssh-listen), as
                         clients reach it: advertise SSH in SerialConsole (default: off)
  --help, --version

environment: BMCD_LISTEN, BMCD_HTTP_REDIRECT, BMCD_LIBVIRT_URI, BMCD_STATE_DIR,
BMCD_CERT, BMCD_KEY, BMCD_LOG, BMCD_ADMIN_USER, BMCD_ADMIN_PASSWORD, BMCD_CONSOLE_SOCKET,
BMCD_CONSOLE_URL, BMCD_CONSOLE_SSH_PORT";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Command {
    Run(Box<Config>),
    /// `bmcd admin backup|restore ARCHIVE [OPTIONS]`.
    Admin(AdminCommand),
    Help,
    Version,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAction {
    Backup,
    Restore,
}

/// An administrative command: it runs instead of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCommand {
    pub action: AdminAction,
    pub archive: PathBuf,
    /// Restore over an existing state database.
    pub force: bool,
    /// Back up the virtual media cache too (`STATE_DIR/media`, images).
    pub with_media: bool,
    /// The `--config FILE` among the options (backed up, or restored there).
    pub config_file: Option<PathBuf>,
    /// The options, read as for a run (after a restore has put the
    /// configuration file back) with [`Config::from_args`].
    pub args: Vec<String>,
}

impl AdminCommand {
    fn parse(args: &[String]) -> Result<AdminCommand, ConfigError> {
        let action = match args.first().map(String::as_str) {
            Some("backup") => AdminAction::Backup,
            Some("restore") => AdminAction::Restore,
            _ => {
                return Err(ConfigError::Usage(
                    "admin needs 'backup ARCHIVE' or 'restore ARCHIVE'".into(),
                ))
            }
        };
        let archive = match args.get(1) {
            Some(a) if !a.starts_with("--") => PathBuf::from(a),
            _ => {
                return Err(ConfigError::Usage(
                    "admin backup|restore needs an ARCHIVE file".into(),
                ))
            }
        };
        let mut force = false;
        let mut with_media = false;
        let mut config_file = None;
        let mut rest = Vec::new();
        let mut it = args[2..].iter();
        while let Some(a) = it.next() {
            if a == "--force" && action == AdminAction::Restore {
                force = true;
                continue;
            }
            if a == "--with-media" && action == AdminAction::Backup {
                with_media = true;
                continue;
            }
            if let Some(v) = a.strip_prefix("--config=") {
                config_file = Some(PathBuf::from(v));
            } else if a == "--config" {
                let v = it
                    .next()
                    .ok_or_else(|| ConfigError::Usage("--config needs a value".into()))?;
                config_file = Some(PathBuf::from(v));
                rest.push(a.clone());
                rest.push(v.clone());
                continue;
            }
            rest.push(a.clone());
        }
        Ok(AdminCommand {
            action,
            archive,
            force,
            with_media,
            config_file,
            args: rest,
        })
    }
}

/// A TCP port, 1 to 65535, in plain decimal.
fn parse_port(flag: &str, v: &str) -> Result<u16, ConfigError> {
    v.parse::<u16>()
        .ok()
        .filter(|p| *p != 0 && v.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| ConfigError::Invalid(format!("{flag}: '{v}' is not a port (1-65535)")))
}

fn parse_addr(flag: &str, v: &str) -> Result<SocketAddr, ConfigError> {
    v.parse()
        .map_err(|_| ConfigError::Invalid(format!("{flag}: '{v}' is not ADDR:PORT")))
}

impl Config {
    /// Applies the text of a configuration file (TOML) over this configuration.
    pub fn apply_toml(&mut self, text: &str) -> Result<(), String> {
        let value = crate::toml_lite::parse(text).map_err(|e| e.to_string())?;
        let file: FileConfig = serde_json::from_value(value).map_err(|e| e.to_string())?;
        self.apply_file(file);
        Ok(())
    }

    fn apply_file(&mut self, f: FileConfig) {
        macro_rules! take {
            ($($field:ident),*) => { $( if let Some(v) = f.$field { self.$field = v; } )* };
        }
        take!(
            listen,
            libvirt_uri,
            state_dir,
            admin_user,
            log,
            max_connections,
            max_body_bytes
        );
        take!(
            max_header_bytes,
            libvirt_workers,
            libvirt_timeout_s,
            shutdown_grace_s,
            max_image_bytes,
            outbound_allow,
            log_retention
        );
        take!(manager_reset, system_bmc_reset_s, metrics_auth, libvirt_labels);
        if let Some(h) = f.host {
            self.hosts = h;
        }
        take!(
            rate_limit_address_rps,
            rate_limit_address_burst,
            rate_limit_user_rps,
            rate_limit_user_burst,
            rate_limit_max_clients
        );
        take!(
            max_connections_per_client,
            tls_handshake_timeout_s,
            header_read_timeout_s,
            max_sessions,
            max_subscriptions,
            event_delivery_timeout_s
        );
        if f.http_redirect.is_some() {
            self.http_redirect = f.http_redirect;
        }
        if f.cert.is_some() {
            self.cert = f.cert;
        }
        if f.key.is_some() {
            self.key = f.key;
        }
        if f.admin_password.is_some() {
            self.admin_password = f.admin_password;
        }
        let c = &mut self.console;
        if f.console_socket.is_some() {
            c.socket = f.console_socket;
        }
        if f.console_socket_group.is_some() {
            c.socket_group = f.console_socket_group;
        }
        if let Some(v) = f.console_url {
            c.url = v;
        }
        if let Some(v) = f.console_token_ttl_s {
            c.token_ttl_s = v;
        }
        if let Some(v) = f.console_session_max_s {
            c.session_max_s = v;
        }
        if let Some(v) = f.console_max_sessions {
            c.max_sessions = v;
        }
        if let Some(v) = f.console_max_sessions_total {
            c.max_sessions_total = v;
        }
        if let Some(v) = f.console_spice_token_uses {
            c.spice_token_uses = v;
        }
        if f.console_ssh_port.is_some() {
            c.ssh_port = f.console_ssh_port;
        }
        if let Some(e) = f.endpoint {
            self.endpoints = e;
        }
        if let Some(fw) = f.firmware {
            self.firmware = Some(fw.into());
        }
        if let Some(t) = f.tls {
            self.tls = TlsConfig {
                client_ca: t.client_ca,
                client_auth: t.client_auth.unwrap_or_default(),
            };
        }
        if let Some(c) = f.composition {
            let d = &mut self.composition;
            if let Some(v) = c.max_systems {
                d.max_systems = v;
            }
            if let Some(v) = c.max_vcpus {
                d.max_vcpus = v;
            }
            if let Some(v) = c.max_memory_mib {
                d.max_memory_mib = v;
            }
            if let Some(v) = c.max_disk_gib {
                d.max_disk_gib = v;
            }
            if let Some(v) = c.pool {
                d.pool = v;
            }
            if c.console_log_dir.is_some() {
                d.console_log_dir = c.console_log_dir;
            }
            if let Some(v) = c.placement {
                d.placement = v;
            }
            if let Some(v) = c.memory_overcommit_percent {
                d.memory_overcommit_percent = v;
            }
        }
    }

    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = env("BMCD_LISTEN") {
            self.listen = parse_addr("BMCD_LISTEN", &v)?;
        }
        if let Some(v) = env("BMCD_HTTP_REDIRECT") {
            self.http_redirect = Some(parse_addr("BMCD_HTTP_REDIRECT", &v)?);
        }
        if let Some(v) = env("BMCD_LIBVIRT_URI") {
            self.libvirt_uri = v;
        }
        if let Some(v) = env("BMCD_STATE_DIR") {
            self.state_dir = v.into();
        }
        if let Some(v) = env("BMCD_CERT") {
            self.cert = Some(v.into());
        }
        if let Some(v) = env("BMCD_KEY") {
            self.key = Some(v.into());
        }
        if let Some(v) = env("BMCD_LOG") {
            self.log = v;
        }
        if let Some(v) = env("BMCD_ADMIN_USER") {
            self.admin_user = v;
        }
        if let Some(v) = env("BMCD_ADMIN_PASSWORD") {
            self.admin_password = Some(v);
        }
        if let Some(v) = env("BMCD_CONSOLE_SOCKET") {
            self.console.socket = Some(v.into());
        }
        if let Some(v) = env("BMCD_CONSOLE_URL") {
            self.console.url = v;
        }
        if let Some(v) = env("BMCD_CONSOLE_SSH_PORT") {
            self.console.ssh_port = Some(parse_port("BMCD_CONSOLE_SSH_PORT", &v)?);
        }
        Ok(())
    }

    /// Builds the configuration from arguments (without the program name), an
    /// environment lookup and the file system.
    pub fn from_args(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<Command, ConfigError> {
        if args.first().map(String::as_str) == Some("admin") {
            return AdminCommand::parse(&args[1..]).map(Command::Admin);
        }
        let mut flags: Vec<(&str, &str)> = Vec::new();
        let mut config_file: Option<&str> = None;
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v)),
                _ => (arg.as_str(), None),
            };
            match flag {
                "--help" | "-h" => return Ok(Command::Help),
                "--version" | "-V" => return Ok(Command::Version),
                "--config" | "--listen" | "--http-redirect" | "--libvirt-uri" | "--state-dir" | "--cert"
                | "--key" | "--log" | "--console-socket" | "--console-url" | "--console-ssh-port" => {
                    let value = match inline {
                        Some(v) => v,
                        None => it
                            .next()
                            .map(String::as_str)
                            .ok_or_else(|| ConfigError::Usage(format!("{flag} needs a value")))?,
                    };
                    if flag == "--config" {
                        config_file = Some(value);
                    } else {
                        flags.push((flag, value));
                    }
                }
                other => return Err(ConfigError::Usage(format!("unknown argument '{other}'"))),
            }
        }
        let mut config = Config::default();
        if let Some(path) = config_file {
            let text =
                std::fs::read_to_string(path).map_err(|e| ConfigError::File(format!("{path}: {e}")))?;
            config
                .apply_toml(&text)
                .map_err(|e| ConfigError::File(format!("{path}: {e}")))?;
        }
        config.apply_env(env)?;
        for (flag, value) in flags {
            match flag {
                "--listen" => config.listen = parse_addr(flag, value)?,
                "--http-redirect" => config.http_redirect = Some(parse_addr(flag, value)?),
                "--libvirt-uri" => config.libvirt_uri = value.to_owned(),
                "--state-dir" => config.state_dir = value.into(),
                "--cert" => config.cert = Some(value.into()),
                "--key" => config.key = Some(value.into()),
                "--log" => config.log = value.to_owned(),
                "--console-socket" => config.console.socket = Some(value.into()),
                "--console-url" => config.console.url = value.to_owned(),
                "--console-ssh-port" => config.console.ssh_port = Some(parse_port(flag, value)?),
                _ => {}
            }
        }
        config.validate()?;
        Ok(Command::Run(Box::new(config)))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.cert.is_some() != self.key.is_some() {
            return Err(ConfigError::Invalid("--cert and --key go together".into()));
        }
        if self.tls.client_auth == ClientAuth::Required && self.tls.client_ca.is_none() {
            return Err(ConfigError::Invalid(
                "tls client-auth = \"required\" needs client-ca".into(),
            ));
        }
        if !matches!(self.log.as_str(), "error" | "warn" | "info" | "debug" | "trace") {
            return Err(ConfigError::Invalid(format!("log level '{}'", self.log)));
        }
        if self.max_connections == 0 || self.libvirt_workers == 0 {
            return Err(ConfigError::Invalid(
                "max-connections and libvirt-workers must be at least 1".into(),
            ));
        }
        if self.max_connections_per_client == 0
            || self.tls_handshake_timeout_s == 0
            || self.header_read_timeout_s == 0
            || self.max_sessions == 0
            || self.max_subscriptions == 0
            || self.event_delivery_timeout_s == 0
        {
            return Err(ConfigError::Invalid(
                "max-connections-per-client, tls-handshake-timeout-s, header-read-timeout-s, \
                 max-sessions, max-subscriptions and event-delivery-timeout-s must be at least 1"
                    .into(),
            ));
        }
        if self.rate_limit_max_clients == 0 {
            return Err(ConfigError::Invalid(
                "rate-limit-max-clients must be at least 1".into(),
            ));
        }
        if self.composition.memory_overcommit_percent == 0 {
            return Err(ConfigError::Invalid(
                "composition memory-overcommit-percent must be at least 1".into(),
            ));
        }
        let mut names = vec![LOCAL_HOST];
        for h in &self.hosts {
            let valid = !h.name.is_empty()
                && h.name.len() <= 32
                && h.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                return Err(ConfigError::Invalid(format!(
                    "host name '{}': 1 to 32 letters, digits, '-' or '_'",
                    h.name
                )));
            }
            if names.contains(&h.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "host name '{}' is used twice ('{LOCAL_HOST}' is the host of libvirt-uri)",
                    h.name
                )));
            }
            if h.libvirt_uri.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "host '{}' has no libvirt-uri",
                    h.name
                )));
            }
            names.push(&h.name);
        }
        if self.log_retention < 1 {
            return Err(ConfigError::Invalid("log-retention must be at least 1".into()));
        }
        if let Some(bad) = self
            .outbound_allow
            .iter()
            .find(|c| crate::outbound::Cidr::parse(c).is_none())
        {
            return Err(ConfigError::Invalid(format!(
                "outbound-allow: '{bad}' is not an address range"
            )));
        }
        let c = &self.console;
        if !(c.url.starts_with("ws://") || c.url.starts_with("wss://")) || c.url.ends_with('/') {
            return Err(ConfigError::Invalid(format!(
                "console-url '{}' must be ws:// or wss:// without a trailing slash",
                c.url
            )));
        }
        if c.ssh_port == Some(0) {
            return Err(ConfigError::Invalid("console-ssh-port must be 1 to 65535".into()));
        }
        if c.token_ttl_s == 0 || c.session_max_s < c.token_ttl_s || c.spice_token_uses == 0 {
            return Err(ConfigError::Invalid(
                "console-token-ttl-s and console-spice-token-uses must be at least 1, and \
                 console-session-max-s at least console-token-ttl-s"
                    .into(),
            ));
        }
        if let Some(fw) = &self.firmware {
            if fw.bank_a.is_empty() || fw.bank_b.is_empty() || fw.bank_a == fw.bank_b {
                return Err(ConfigError::Invalid(
                    "firmware: bank-a and bank-b must name two different banks".into(),
                ));
            }
            if let Some(b) = &fw.booted_bank {
                if b != "a" && b != "b" {
                    return Err(ConfigError::Invalid(format!(
                        "firmware: booted-bank '{b}' is not a or b"
                    )));
                }
            }
            if let Some(bad) = fw
                .trusted_keys
                .iter()
                .find(|k| crate::firmware::package::parse_public_key(k).is_none())
            {
                return Err(ConfigError::Invalid(format!(
                    "firmware: trusted key '{bad}' is not a base64 Ed25519 public key (32 bytes)"
                )));
            }
        }
        if self.admin_user.is_empty() {
            return Err(ConfigError::Invalid("admin user name is empty".into()));
        }
        for e in &self.endpoints {
            let bad = |why: &str| Err(ConfigError::Invalid(format!("endpoint '{}': {why}", e.id)));
            if crate::personas::PersonaKind::parse(&e.persona).is_none() {
                return bad("persona must be generic, ilo5 or idrac9");
            }
            if e.address.parse::<SocketAddr>().is_err() {
                return bad("address must be ADDRESS:PORT");
            }
            if e.user.is_some() != e.password.is_some() {
                return bad("user and password go together");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    fn run(cmd: Command) -> Config {
        match cmd {
            Command::Run(c) => *c,
            other => panic!("expected Run, got {other:?}"),
        }
    }

    #[test]
    fn flags_override_env_override_file_override_defaults() {
        let dir = std::env::temp_dir().join(format!("bmcd-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("bmcd.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:443\"\nlibvirt-uri = \"qemu:///system\"\nstate-dir = \"/data\"\nlog = \"debug\"\n",
        )
        .expect("write");
        let env = |k: &str| match k {
            "BMCD_STATE_DIR" => Some("/env-state".to_owned()),
            "BMCD_ADMIN_PASSWORD" => Some("pw-from-env".to_owned()),
            _ => None,
        };
        let c = run(Config::from_args(
            &args(&["--config", file.to_str().expect("utf8"), "--log=warn"]),
            &env,
        )
        .expect("parses"));
        assert_eq!(c.listen, "0.0.0.0:443".parse().expect("addr"));
        assert_eq!(c.libvirt_uri, "qemu:///system");
        assert_eq!(c.state_dir, PathBuf::from("/env-state"));
        assert_eq!(c.log, "warn");
        assert_eq!(c.admin_password.as_deref(), Some("pw-from-env"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_command_line_contract() {
        let c = run(Config::from_args(
            &args(&[
                "--listen",
                "127.0.0.1:0",
                "--libvirt-uri",
                "test:///default",
                "--state-dir",
                "/tmp/x",
            ]),
            &|_| None,
        )
        .expect("parses"));
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.state_dir, PathBuf::from("/tmp/x"));
        assert_eq!(
            Config::from_args(&args(&["--help"]), &|_| None),
            Ok(Command::Help)
        );
    }

    #[test]
    fn the_ssh_console_port_from_file_env_and_flag() {
        assert_eq!(Config::default().console.ssh_port, None);
        let mut c = Config::default();
        c.apply_toml("console-ssh-port = 2222\n").expect("file");
        assert_eq!(c.console.ssh_port, Some(2222));
        let env = |k: &str| (k == "BMCD_CONSOLE_SSH_PORT").then(|| "2200".to_owned());
        let c = run(Config::from_args(&[], &env).expect("env"));
        assert_eq!(c.console.ssh_port, Some(2200));
        let c = run(Config::from_args(&args(&["--console-ssh-port=22"]), &env).expect("flag"));
        assert_eq!(c.console.ssh_port, Some(22));
        for bad in ["0", "65536", "+22", "ssh", ""] {
            assert!(
                Config::from_args(&args(&["--console-ssh-port", bad]), &|_| None).is_err(),
                "{bad}"
            );
        }
        let mut c = Config::default();
        assert!(c.apply_toml("console-ssh-port = \"22\"\n").is_err());
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        for bad in [
            vec!["--listen"],
            vec!["--listen", "nowhere"],
            vec!["--frobnicate"],
            vec!["--cert", "a.pem"],
            vec!["--log", "loud"],
            vec!["--config", "/nonexistent/bmcd.toml"],
        ] {
            assert!(Config::from_args(&args(&bad), &|_| None).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits_and_timeouts_come_from_the_file() {
        let dir = std::env::temp_dir().join(format!("bmcd-cfg3-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("bmcd.toml");
        let path = file.to_str().expect("utf8");
        std::fs::write(
            &file,
            "max-connections-per-client = 8\ntls-handshake-timeout-s = 3\nheader-read-timeout-s = 4\n\
             max-sessions = 200\nmax-subscriptions = 5\nevent-delivery-timeout-s = 6\n",
        )
        .expect("write");
        let c = run(Config::from_args(&args(&["--config", path]), &|_| None).expect("parses"));
        assert_eq!(
            (
                c.max_connections_per_client,
                c.tls_handshake_timeout_s,
                c.header_read_timeout_s,
                c.max_sessions,
                c.max_subscriptions,
                c.event_delivery_timeout_s
            ),
            (8, 3, 4, 200, 5, 6)
        );
        std::fs::write(&file, "header-read-timeout-s = 0\n").expect("write");
        let r = Config::from_args(&args(&["--config", path]), &|_| None);
        assert!(matches!(r, Err(ConfigError::Invalid(_))), "{r:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("bmcd-cfg2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("bmcd.toml");
        std::fs::write(&file, "lisen = \"0.0.0.0:443\"\n").expect("write");
        let r = Config::from_args(&args(&["--config", file.to_str().expect("utf8")]), &|_| None);
        assert!(matches!(r, Err(ConfigError::File(_))), "{r:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_tls_table_sets_client_certificates() {
        let dir = std::env::temp_dir().join(format!("bmcd-cfg3-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("bmcd.toml");
        let path = file.to_str().expect("utf8");
        std::fs::write(
            &file,
            "[tls]\nclient-ca = \"/etc/bmcd/ca.pem\"\nclient-auth = \"required\"\n",
        )
        .expect("write");
        let c = run(Config::from_args(&args(&["--config", path]), &|_| None).expect("parses"));
        assert_eq!(c.tls.client_ca, Some(PathBuf::from("/etc/bmcd/ca.pem")));
        assert_eq!(c.tls.client_auth, ClientAuth::Required);
        std::fs::write(&file, "[tls]\nclient-auth = \"required\"\n").expect("write");
        let r = Config::from_args(&args(&["--config", path]), &|_| None);
        assert!(matches!(r, Err(ConfigError::Invalid(_))), "{r:?}");
        std::fs::write(
            &file,
            "[tls]\nclient-ca = \"ca.pem\"\nclient-auth = \"sometimes\"\n",
        )
        .expect("write");
        let r = Config::from_args(&args(&["--config", path]), &|_| None);
        assert!(matches!(r, Err(ConfigError::File(_))), "{r:?}");
        std::fs::write(&file, "[tls]\nclient-ca = \"ca.pem\"\n").expect("write");
        let c = run(Config::from_args(&args(&["--config", path]), &|_| None).expect("parses"));
        assert_eq!(c.tls.client_auth, ClientAuth::Optional);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_composition_table_sets_quotas() {
        let dir = std::env::temp_dir().join(format!("bmcd-cfg4-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("bmcd.toml");
        let path = file.to_str().expect("utf8");
        std::fs::write(
            &file,
            "[composition]\nmax-systems = 3\nmax-vcpus = 8\nmax-memory-mib = 4096\nmax-disk-gib = 10\n\
             pool = \"lab\"\nconsole-log-dir = \"/var/log/consoles\"\n",
        )
        .expect("write");
        let c = run(Config::from_args(&args(&["--config", path]), &|_| None).expect("parses"));
        assert_eq!(
            c.composition,
            CompositionConfig {
                max_systems: 3,
                max_vcpus: 8,
                max_memory_mib: 4096,
                max_disk_gib: 10,
                pool: "lab".into(),
                console_log_dir: Some(PathBuf::from("/var/log/consoles")),
                placement: Placement::Spread,
                memory_overcommit_percent: 100,
            }
        );
        std::fs::write(&file, "[composition]\nmax-cpus = 3\n").expect("write");
        let r = Config::from_args(&args(&["--config", path]), &|_| None);
        assert!(matches!(r, Err(ConfigError::File(_))), "{r:?}");
        std::fs::write(&file, "listen = \"127.0.0.1:1\"\n").expect("write");
        let c = run(Config::from_args(&args(&["--config", path]), &|_| None).expect("parses"));
        assert_eq!(c.composition, CompositionConfig::default());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn admin_commands_parse() {
        let c = Config::from_args(
            &args(&[
                "admin",
                "restore",
                "/tmp/b.tar",
                "--force",
                "--config",
                "/etc/bmcd.toml",
                "--state-dir=/s",
            ]),
            &|_| None,
        )
        .expect("parses");
        assert_eq!(
            c,
            Command::Admin(AdminCommand {
                action: AdminAction::Restore,
                archive: PathBuf::from("/tmp/b.tar"),
                force: true,
                with_media: false,
                config_file: Some(PathBuf::from("/etc/bmcd.toml")),
                args: args(&["--config", "/etc/bmcd.toml", "--state-dir=/s"]),
            })
        );
        for bad in [
            vec!["admin"],
            vec!["admin", "backup"],
            vec!["admin", "frob", "x"],
            vec!["admin", "backup", "--force"],
        ] {
            assert!(Config::from_args(&args(&bad), &|_| None).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn metrics_and_rate_limit_keys() {
        let dir = std::env::temp_dir().join(format!("bmcd-cfg4-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("bmcd.toml");
        let path = file.to_str().expect("utf8");
        std::fs::write(
            &file,
            "metrics-auth = \"none\"\nrate-limit-address-rps = 5\nrate-limit-user-rps = 2\nrate-limit-user-burst = 10\n",
        )
        .expect("write");
        let c = run(Config::from_args(&args(&["--config", path]), &|_| None).expect("parses"));
        assert_eq!(c.metrics_auth, MetricsAuth::None);
        let (a, u) = c.rate_limits();
        assert_eq!((a.per_second, a.burst), (5.0, 10.0));
        assert_eq!((u.per_second, u.burst), (2.0, 10.0));
        let d = Config::default();
        assert_eq!(d.metrics_auth, MetricsAuth::Login);
        assert!(d.rate_limits().0.is_off() && d.rate_limits().1.is_off());
        std::fs::write(&file, "metrics-auth = \"open\"\n").expect("write");
        assert!(Config::from_args(&args(&["--config", path]), &|_| None).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
