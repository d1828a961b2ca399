//! Consoles: bmcd mints console tokens (Redfish OEM action, see
//! `resources::consoles`) and redeems them for console-proxy over a Unix
//! socket, so that bmcd alone holds the token state, the session limits and
//! the audit trail, and console-proxy needs no access to bmcd's database.
//!
//! A token is 256 random bits shown once to the caller; only its SHA-256 is
//! stored. It names one system and one console type, is bound to the account
//! that asked for it, can be redeemed until it expires (`console-token-ttl-s`)
//! a limited number of times (once; a SPICE client opens one WebSocket per
//! channel, so SPICE tokens allow `console-spice-token-uses`), and the sessions
//! it opens end `console-session-max-s` after it was minted. The redeem
//! protocol is in the `redfin-console-protocol` crate.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine;
use redfin_console_protocol::{
    console_path, is_token_shaped, Answer, AuthorizeSerial, Closed, ConsoleKind, Redeem, Request, Target,
    MAX_LINE_BYTES,
};
use ring::rand::{SecureRandom, SystemRandom};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::auth::{Authority, Principal};
use crate::config::ConsoleConfig;
use crate::error::RedfishError;
use crate::logs::{Logs, AUDIT_LOG};
use crate::model::{ComputerSystem, GraphicsListen, Hypervisor, PowerState};
use crate::privilege::Privilege;
use crate::store::{ConsoleRedeem, ConsoleTokenRecord, LogRecord, Store};
use crate::time::now_unix;

/// What the caller of the mint action gets.
#[derive(Debug, Clone)]
pub struct Minted {
    pub token: String,
    pub url: String,
    pub expires: i64,
    pub session_deadline: i64,
    pub uses: u32,
}

/// How often bmcd checks that an open session's account may still open consoles.
const ACCOUNT_CHECK: Duration = Duration::from_secs(2);

struct OpenSession {
    system_id: String,
    token_hash: [u8; 32],
}

/// The host part of a `Host` header (`name`, `1.2.3.4`, `[::1]`), without
/// its port, when it is one; nothing that could break out of a URL.
pub fn request_host(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let host = if h.starts_with('[') {
        &h[..=h.find(']')?]
    } else {
        h.split(':').next()?
    };
    is_host(host).then_some(host)
}

fn is_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

pub struct ConsoleService {
    config: ConsoleConfig,
    store: Store,
    auth: Arc<Authority>,
    hypervisor: Arc<dyn Hypervisor>,
    logs: Arc<Logs>,
    /// Which libvirt host (its URI) holds each system.
    hosts: Arc<crate::libvirt::hosts::HostPool>,
    rng: SystemRandom,
    open: Mutex<HashMap<u64, OpenSession>>,
    /// Redeems run one at a time, so that limits hold under concurrency.
    redeeming: tokio::sync::Mutex<()>,
    next_session: AtomicU64,
}

pub fn token_hash(token: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Whether a system has a console of this kind at all (running or not).
pub fn has_console(s: &ComputerSystem, kind: ConsoleKind) -> bool {
    match kind {
        ConsoleKind::Kvmip => s.consoles.vnc.is_some(),
        ConsoleKind::Spice => s.consoles.spice.is_some(),
        ConsoleKind::Serial => s.consoles.serial,
    }
}

/// The host of a libvirt URI (`qemu+ssh://user@host:22/system` -> `host`).
fn uri_host(uri: &str) -> Option<&str> {
    let rest = uri.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

impl ConsoleService {
    pub fn new(
        config: ConsoleConfig,
        store: Store,
        auth: Arc<Authority>,
        hypervisor: Arc<dyn Hypervisor>,
        logs: Arc<Logs>,
        hosts: Arc<crate::libvirt::hosts::HostPool>,
    ) -> Arc<ConsoleService> {
        Arc::new(ConsoleService {
            config,
            store,
            auth,
            hypervisor,
            logs,
            hosts,
            rng: SystemRandom::new(),
            open: Mutex::new(HashMap::new()),
            redeeming: tokio::sync::Mutex::new(()),
            next_session: AtomicU64::new(1),
        })
    }

    pub fn max_sessions(&self) -> u32 {
        self.config.max_sessions
    }

    /// console-proxy's SSH serial console port, when configured.
    pub fn ssh_port(&self) -> Option<u16> {
        self.config.ssh_port
    }

    /// The WebSocket URL of a system's console, without a token. `{host}` in
    /// the configured URL becomes the host the client reached bmcd by (its
    /// `Host` header), for an appliance whose address is not known in advance.
    pub fn url(&self, system_id: &str, kind: ConsoleKind, host: Option<&str>) -> String {
        let base = match host.filter(|h| is_host(h)) {
            Some(h) => self.config.url.replace("{host}", h),
            None => self.config.url.replace("{host}", "localhost"),
        };
        format!("{base}{}", console_path(system_id, kind))
    }

    /// Mints a token for `principal` to open `kind` on system `s`.
    pub async fn mint(
        &self,
        principal: &Principal,
        s: &ComputerSystem,
        kind: ConsoleKind,
        host: Option<&str>,
    ) -> Result<Minted, RedfishError> {
        let mut raw = [0u8; 32];
        self.rng.fill(&mut raw).map_err(|_| RedfishError::internal())?;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let now = now_unix();
        let ttl = i64::try_from(self.config.token_ttl_s).unwrap_or(60);
        let max = i64::try_from(self.config.session_max_s).unwrap_or(3600);
        let uses = match kind {
            ConsoleKind::Spice => self.config.spice_token_uses,
            ConsoleKind::Kvmip | ConsoleKind::Serial => 1,
        };
        let rec = ConsoleTokenRecord {
            token_hash: token_hash(&token),
            system_id: s.id.clone(),
            console_type: kind.redfish_name().to_owned(),
            account_id: principal.account_id,
            user_name: principal.user_name.clone(),
            created: now,
            expires: now + ttl,
            session_deadline: now + max,
            uses_left: uses,
        };
        self.store.insert_console_token(rec).await?;
        Ok(Minted {
            url: format!("{}?token={token}", self.url(&s.id, kind, host)),
            token,
            expires: now + ttl,
            session_deadline: now + max,
            uses,
        })
    }

    fn audit(&self, user: &str, client: &str, what: &str, system_id: &str, severity: &str) {
        let path = format!("/redfish/v1/Systems/{system_id}");
        self.logs.record(LogRecord {
            id: 0,
            log: AUDIT_LOG.to_owned(),
            created: now_unix(),
            severity: severity.to_owned(),
            message: format!("{user} from {client}: {what} of {path}"),
            message_id: String::new(),
            args: vec![user.to_owned(), client.to_owned(), what.to_owned(), path],
            origin: String::new(),
        });
    }

    /// Whether the account still exists, is enabled and unlocked, and holds
    /// `ConfigureComponents`.
    fn account_allowed(&self, account_id: i64) -> bool {
        self.auth.account(account_id).is_some_and(|a| {
            a.enabled
                && !self.auth.is_locked(&a)
                && crate::privilege::Role::parse(&a.role_id)
                    .is_some_and(|r| r.privileges().contains(Privilege::ConfigureComponents))
        })
    }

    /// Where console-proxy connects for this system's console, or why not.
    async fn target(&self, system_id: &str, kind: ConsoleKind) -> Result<Target, &'static str> {
        let s = match self.hypervisor.system(system_id.to_owned()).await {
            Ok(s) => s,
            Err(crate::model::HypervisorError::SystemNotFound(_)) => return Err("no such system"),
            Err(_) => return Err("the hypervisor is unavailable; try again"),
        };
        if !has_console(&s, kind) {
            return Err("the system has no console of this type");
        }
        if !matches!(s.power_state, PowerState::On | PowerState::Paused) {
            return Err("the system is not running");
        }
        let (host_uri, local) = self.hosts.uri_of(&s.id);
        let tcp = |g: &Option<GraphicsListen>| -> Result<Target, &'static str> {
            let g = g.as_ref().ok_or("the system has no console of this type")?;
            let port = g.port.ok_or("the console listens on no TCP port")?;
            let host = match g.address.as_deref() {
                Some(a) if !matches!(a, "" | "0.0.0.0" | "::" | "[::]") => a.to_owned(),
                _ => uri_host(&host_uri).unwrap_or("127.0.0.1").to_owned(),
            };
            Ok(Target::Tcp { host, port })
        };
        match kind {
            ConsoleKind::Kvmip => tcp(&s.consoles.vnc),
            ConsoleKind::Spice => tcp(&s.consoles.spice),
            // console-proxy reaches serial consoles through its own libvirt
            // connection, to the host of `libvirt-uri`.
            ConsoleKind::Serial if !local => {
                Err("serial consoles are served for systems of the local host only")
            }
            ConsoleKind::Serial => Ok(Target::LibvirtConsole {
                domain_uuid: s.id.clone(),
            }),
        }
    }

    /// Whether one more session (of the token `hash`) on `system_id` stays
    /// within the limits: sessions count per token, so the WebSockets of one
    /// SPICE token count once. Call with `redeeming` held.
    fn within_limits(&self, system_id: &str, hash: &[u8; 32]) -> Result<(), &'static str> {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.values().any(|o| &o.token_hash == hash) {
            return Ok(());
        }
        let mut tokens_total: Vec<&[u8; 32]> = open.values().map(|o| &o.token_hash).collect();
        tokens_total.sort();
        tokens_total.dedup();
        let mut tokens_here: Vec<&[u8; 32]> = open
            .values()
            .filter(|o| o.system_id == system_id)
            .map(|o| &o.token_hash)
            .collect();
        tokens_here.sort();
        tokens_here.dedup();
        if tokens_here.len() >= self.config.max_sessions as usize {
            return Err("too many console sessions on this system");
        }
        if tokens_total.len() >= self.config.max_sessions_total as usize {
            return Err("too many console sessions on this BMC");
        }
        Ok(())
    }

    /// The audit entry of a failed SSH login, shaped like a failed Redfish
    /// login's (user `-`, status 401).
    fn audit_failed_login(&self, client: &str) {
        self.logs.audit("-", client, "SSH", "serial console login", 401);
    }

    /// Answers an SSH serial console request of console-proxy: the login
    /// (no system), or a session on a system, checked as the console token
    /// action and its redeem are: the password (with lockout counting), the
    /// privilege, the account's project, the system and its console, the
    /// session limits. On a grant the session is registered as open; the
    /// `Some` carries (session id, user, account id, system id).
    async fn authorize_serial(&self, req: &AuthorizeSerial) -> (Answer, Option<(u64, String, i64, String)>) {
        let refuse = |reason: &str| {
            (
                Answer::Refused {
                    reason: reason.to_owned(),
                },
                None,
            )
        };
        let principal = match self
            .auth
            .authenticate_password_at(None, &req.user, &req.password)
            .await
        {
            Ok(p) => p,
            Err(_) => {
                self.audit_failed_login(&req.client);
                return (Answer::LoginFailed, None);
            }
        };
        let Some(system) = req.system.as_deref() else {
            return (
                Answer::Authenticated {
                    user: principal.user_name,
                },
                None,
            );
        };
        if principal.password_change_required {
            return refuse("the account's password must be changed (through Redfish) first");
        }
        let required = crate::resources::consoles::CONSOLE_TOKEN_PRIVILEGE;
        if !required.allows(principal.privileges_on_own_system()) {
            return refuse("the account may not open consoles (ConfigureComponents is required)");
        }
        // A UUID (the system's Id) or a domain name.
        let system_id = match self.hypervisor.system(system.to_owned()).await {
            Ok(s) => Some(s.id),
            Err(crate::model::HypervisorError::SystemNotFound(_)) => {
                match self.hypervisor.system_id_by_name(system.to_owned()).await {
                    Ok(id) => id,
                    Err(_) => return refuse("the hypervisor is unavailable; try again"),
                }
            }
            Err(_) => return refuse("the hypervisor is unavailable; try again"),
        };
        // Outside its project a member sees nothing: the same answer as for
        // a system that does not exist.
        let system_id = match (system_id, principal.project.as_deref()) {
            (None, _) => None,
            (Some(id), None) => Some(id),
            (Some(id), Some(project)) => match crate::tenancy::owned_systems_in(&self.store, project).await {
                Ok(owned) => owned.contains(&id).then_some(id),
                Err(_) => return refuse("console service unavailable"),
            },
        };
        let Some(system_id) = system_id else {
            return refuse("no such system");
        };
        // Each SSH session counts as a token of its own.
        let mut own = [0u8; 32];
        if self.rng.fill(&mut own).is_err() {
            return refuse("console service unavailable");
        }
        let _one_at_a_time = self.redeeming.lock().await;
        if let Err(why) = self.within_limits(&system_id, &own) {
            return refuse(why);
        }
        let target = match self.target(&system_id, ConsoleKind::Serial).await {
            Ok(t) => t,
            Err(why) => return refuse(why),
        };
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        self.open.lock().unwrap_or_else(PoisonError::into_inner).insert(
            id,
            OpenSession {
                system_id: system_id.clone(),
                token_hash: own,
            },
        );
        let max = i64::try_from(self.config.session_max_s).unwrap_or(3600);
        (
            Answer::Granted {
                session: id,
                user: principal.user_name.clone(),
                target,
                deadline: now_unix() + max,
            },
            Some((id, principal.user_name, principal.account_id, system_id)),
        )
    }

    /// Redeems one request; on success the session is registered as open.
    async fn redeem(&self, req: &Redeem) -> (Answer, Option<(u64, String, i64)>) {
        let refuse = |reason: &str| {
            (
                Answer::Refused {
                    reason: reason.to_owned(),
                },
                None,
            )
        };
        if !is_token_shaped(&req.token) {
            return refuse("malformed console token");
        }
        let hash = token_hash(&req.token);
        let _one_at_a_time = self.redeeming.lock().await;
        if let Err(why) = self.within_limits(&req.system_id, &hash) {
            return refuse(why);
        }
        let target = match self.target(&req.system_id, req.kind).await {
            Ok(t) => t,
            Err(why) => return refuse(why),
        };
        let outcome = self
            .store
            .redeem_console_token(
                hash,
                req.system_id.clone(),
                req.kind.redfish_name().to_owned(),
                now_unix(),
            )
            .await;
        let t = match outcome {
            Ok(ConsoleRedeem::Granted(t)) => t,
            Ok(ConsoleRedeem::Unknown) => return refuse("unknown console token"),
            Ok(ConsoleRedeem::Expired) => return refuse("console token expired"),
            Ok(ConsoleRedeem::UsedUp) => return refuse("console token already used"),
            Ok(ConsoleRedeem::OtherTarget) => {
                return refuse("console token was issued for another system or console type")
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot redeem a console token");
                return refuse("console service unavailable");
            }
        };
        // The account must still exist, be usable and hold the privilege.
        if !self.account_allowed(t.account_id) {
            return refuse("the account that requested the token may no longer open consoles");
        }
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        self.open.lock().unwrap_or_else(PoisonError::into_inner).insert(
            id,
            OpenSession {
                system_id: t.system_id.clone(),
                token_hash: hash,
            },
        );
        (
            Answer::Granted {
                session: id,
                user: t.user_name.clone(),
                target,
                deadline: t.session_deadline,
            },
            Some((id, t.user_name, t.account_id)),
        )
    }

    /// Serves console-proxy on `listener` until `shutdown`.
    pub async fn serve(self: Arc<Self>, listener: UnixListener, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                r = listener.accept() => match r {
                    Ok((stream, _)) => {
                        let me = Arc::clone(&self);
                        tokio::spawn(async move { me.connection(stream).await });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "console socket accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                _ = shutdown.changed() => break,
            }
        }
    }

    async fn connection(self: Arc<Self>, stream: UnixStream) {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        let read = tokio::time::timeout(
            Duration::from_secs(5),
            (&mut reader)
                .take(MAX_LINE_BYTES as u64)
                .read_until(b'\n', &mut line),
        )
        .await;
        if !matches!(read, Ok(Ok(n)) if n > 0) {
            return;
        }
        // (session, user, account, system, client, what is opened)
        let (answer, granted) = match Request::parse(&line) {
            Ok(Request::Redeem(req)) => {
                let (a, g) = self.redeem(&req).await;
                if let Answer::Refused { reason } = &a {
                    tracing::info!(system_id = %req.system_id, client = %req.client, reason, "console token refused");
                }
                let kind = req.kind.redfish_name();
                let g = g.map(|(id, user, account)| {
                    (
                        id,
                        user,
                        account,
                        req.system_id,
                        req.client,
                        format!("{kind} console"),
                    )
                });
                (a, g)
            }
            Ok(Request::AuthorizeSerial(req)) => {
                let (a, g) = self.authorize_serial(&req).await;
                match &a {
                    Answer::Refused { reason } => {
                        tracing::info!(user = %req.user, system = ?req.system, client = %req.client, reason, "SSH serial console refused")
                    }
                    Answer::LoginFailed => {
                        tracing::info!(client = %req.client, "SSH serial console login failed")
                    }
                    _ => {}
                }
                let g = g.map(|(id, user, account, system)| {
                    (
                        id,
                        user,
                        account,
                        system,
                        req.client,
                        "Serial console over SSH".to_owned(),
                    )
                });
                (a, g)
            }
            Err(_) => (
                Answer::Refused {
                    reason: "bad console request".into(),
                },
                None,
            ),
        };
        let Ok(mut out) = serde_json::to_vec(&answer) else {
            return;
        };
        out.push(b'\n');
        let written = reader.get_mut().write_all(&out).await;
        let Some((id, user, account_id, system_id, client, kind)) = granted else {
            return;
        };
        self.audit(
            &user,
            &client,
            &format!("opened {kind} (session {id})"),
            &system_id,
            "OK",
        );
        let mut reason = String::from("connection closed");
        if written.is_ok() {
            // The session lives while console-proxy holds the line open.
            let deadline = match &answer {
                Answer::Granted { deadline, .. } => *deadline,
                _ => now_unix(),
            };
            let mut rest = Vec::new();
            // read_until keeps what it read in `rest` when select! drops it.
            let mut line_in = (&mut reader).take(MAX_LINE_BYTES as u64);
            let mut check = tokio::time::interval(ACCOUNT_CHECK);
            check.tick().await;
            reason = loop {
                tokio::select! {
                    r = line_in.read_until(b'\n', &mut rest) => {
                        break match (r, serde_json::from_slice::<Closed>(&rest)) {
                            (Ok(n), Ok(c)) if n > 0 => format!(
                                "{}; {} bytes to client, {} from client",
                                c.reason, c.bytes_to_client, c.bytes_from_client
                            ),
                            _ => "connection closed".to_owned(),
                        };
                    }
                    _ = check.tick() => {
                        // Closing the line ends the session at console-proxy.
                        if !self.account_allowed(account_id) {
                            break "ended by bmcd: the account may no longer open consoles".to_owned();
                        }
                        if now_unix() > deadline + 5 {
                            break "ended by bmcd: past the session deadline".to_owned();
                        }
                    }
                }
            };
        }
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        self.audit(
            &user,
            &client,
            &format!("closed {kind} (session {id}: {reason})"),
            &system_id,
            "OK",
        );
    }
}

/// Binds the console socket: replaces a stale socket file, and makes it
/// 0600, or 0660 with `group` so that console-proxy's user can connect.
pub fn bind_socket(path: &Path, group: Option<u32>) -> Result<UnixListener, String> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if m.file_type().is_socket() {
            let _ = std::fs::remove_file(path);
        } else {
            return Err(format!("{} exists and is not a socket", path.display()));
        }
    }
    let listener = UnixListener::bind(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(gid) = group {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(listener)
}

/// The console socket's path for a state directory and configuration.
pub fn socket_path(config: &ConsoleConfig, state_dir: &Path) -> PathBuf {
    config
        .socket
        .clone()
        .unwrap_or_else(|| state_dir.join("console.sock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_a_client_used_fills_the_console_url() {
        assert_eq!(request_host(Some("bmc.lab:443")), Some("bmc.lab"));
        assert_eq!(request_host(Some("10.0.0.5")), Some("10.0.0.5"));
        assert_eq!(request_host(Some("[fd00::5]:8443")), Some("[fd00::5]"));
        assert_eq!(request_host(Some("evil/path@x")), None);
        assert_eq!(request_host(Some("a b")), None);
        assert_eq!(request_host(None), None);
    }

    #[test]
    fn uri_hosts() {
        assert_eq!(uri_host("qemu+ssh://root@lab1:22/system"), Some("lab1"));
        assert_eq!(uri_host("qemu+tcp://[fd00::1]:16509/system"), Some("fd00::1"));
        assert_eq!(uri_host("qemu:///system"), None);
        assert_eq!(uri_host("test:///default"), None);
    }

    #[tokio::test]
    async fn the_socket_is_private_unless_a_group_is_given() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = std::env::temp_dir().join(format!("bmcd-console-sock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("console.sock");
        let l = bind_socket(&path, None).expect("binds");
        let m = std::fs::metadata(&path).expect("socket");
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        drop(l);
        // A stale socket is replaced; the group (here our own) gets 0660.
        let gid = m.gid();
        let _l = bind_socket(&path, Some(gid)).expect("rebinds");
        let m = std::fs::metadata(&path).expect("socket");
        assert_eq!((m.permissions().mode() & 0o777, m.gid()), (0o660, gid));
        // Anything else at that path is left alone.
        let file = dir.join("not-a-socket");
        std::fs::write(&file, "x").expect("write");
        assert!(bind_socket(&file, None).is_err());
        assert_eq!(std::fs::read_to_string(&file).expect("kept"), "x");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tokens_hash_to_sha256() {
        let h = token_hash("abc");
        assert_eq!(h[0], 0xba);
        assert_eq!(h[31], 0xad);
    }
}
