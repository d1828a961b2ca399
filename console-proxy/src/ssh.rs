//! The SSH serial console (`--ssh-listen`), as a real BMC offers it
//! (iLO's `vsp`, iDRAC's `console com2`).
//!
//! console-proxy checks no password itself: each SSH password login, and
//! each console opened after it, is an [`AuthorizeSerial`] request to bmcd on
//! its console socket. bmcd checks the account (lockout counting, the audit
//! log), the privilege of the console token action, the project, resolves
//! the system and counts the session against its limits; the granted line is
//! held open for as long as the session lives, as for a WebSocket session.
//!
//! After the login the client gets a `redfin-> ` prompt (`console SYSTEM`,
//! `vsp SYSTEM`, `help`, `exit`), or runs `console SYSTEM` as an exec
//! request. `~.` at the start of a line ends a console session (`~~` sends
//! one `~`).

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use redfin_console_protocol::{Answer, AuthorizeSerial, Closed, Request, Target};
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::{HashAlg, LineEnding};
use russh::keys::PrivateKey;
use russh::server::{Auth, Msg, Session};
use russh::{Channel, ChannelId, ChannelMsg, MethodKind, MethodSet};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit};

use crate::{redeem, serial, Shared};

/// A client must log in within this time.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);
const PROMPT: &str = "redfin-> ";
const HELP: &str = "commands:\r\n  console SYSTEM   the serial console of SYSTEM (its UUID or name); ~. on a new line ends it\r\n  vsp SYSTEM       the same\r\n  exit, quit       log out\r\n";
/// The longest command line accepted at the prompt.
const MAX_LINE: usize = 512;

/// Reads the host key at `path`, or makes an Ed25519 key there (mode 0600,
/// its directory 0700 when it is made) when there is none.
pub async fn host_key(path: &Path) -> Result<PrivateKey, String> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || host_key_blocking(&path))
        .await
        .map_err(|e| format!("host key: {e}"))?
}

fn host_key_blocking(path: &Path) -> Result<PrivateKey, String> {
    use std::io::{Read, Write};
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let shown = path.display();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            return PrivateKey::from_openssh(text.as_bytes())
                .map_err(|e| format!("SSH host key {shown}: {e}"));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("SSH host key {shown}: {e}")),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    seed.fill(0);
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| format!("SSH host key: {e}"))?;
    // create_new: never overwrite a key another process just wrote.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("SSH host key {shown}: {e}"))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("SSH host key {shown}: {e}"))?;
    tracing::info!(path = %shown, fingerprint = %key.fingerprint(HashAlg::Sha256), "made a new SSH host key");
    Ok(key)
}

fn server_config(key: PrivateKey) -> russh::server::Config {
    russh::server::Config {
        server_id: russh::SshId::Standard(Cow::Borrowed("SSH-2.0-Redfin_console-proxy")),
        methods: MethodSet::from(&[MethodKind::Password][..]),
        auth_rejection_time: Duration::from_secs(1),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![key],
        max_auth_attempts: 3,
        // Idle sessions are ended by the console's own idle timeout; a dead
        // peer by the keepalives.
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(30)),
        keepalive_max: 3,
        nodelay: true,
        ..Default::default()
    }
}

/// Serves SSH on `listener` until the proxy stops.
pub async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, key: PrivateKey) {
    let config = Arc::new(server_config(key));
    let max = shared.config.max_connections;
    let shutdown = shared.shutdown.clone();
    crate::serve_bounded(listener, max, shutdown, "SSH", move |tcp, peer, slot| {
        connection(tcp, peer, Arc::clone(&shared), Arc::clone(&config), slot)
    })
    .await;
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    config: Arc<russh::server::Config>,
    _slot: OwnedSemaphorePermit,
) {
    let (authed_tx, mut authed_rx) = oneshot::channel();
    let client = Client {
        shared: Arc::clone(&shared),
        peer,
        login: None,
        authed: Some(authed_tx),
    };
    let running = match tokio::time::timeout(
        crate::HANDSHAKE_TIMEOUT,
        russh::server::run_stream(config, tcp, client),
    )
    .await
    {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "SSH handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "SSH handshake timed out");
            return;
        }
    };
    let handle = running.handle();
    tokio::pin!(running);
    let login_deadline = tokio::time::sleep(LOGIN_TIMEOUT);
    tokio::pin!(login_deadline);
    let mut shutdown = shared.shutdown.clone();
    let mut authed = false;
    let why = loop {
        tokio::select! {
            r = &mut running => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "SSH connection ended with an error");
                }
                return;
            }
            r = &mut authed_rx, if !authed => {
                authed = true;
                if r.is_err() {
                    // The handler is gone: the session is ending.
                    continue;
                }
            }
            _ = &mut login_deadline, if !authed => break "login timeout",
            _ = shutdown.changed() => break "console proxy is stopping",
        }
    };
    let _ = handle
        .disconnect(russh::Disconnect::ByApplication, why.to_owned(), String::new())
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(2), &mut running).await;
}

#[derive(Clone)]
struct Login {
    user: String,
    password: String,
}

struct Client {
    shared: Arc<Shared>,
    peer: SocketAddr,
    login: Option<Login>,
    authed: Option<oneshot::Sender<()>>,
}

impl russh::server::Handler for Client {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let req = Request::AuthorizeSerial(AuthorizeSerial {
            user: user.to_owned(),
            password: password.to_owned(),
            system: None,
            client: self.peer.ip().to_string(),
        });
        match redeem::ask(&self.shared.config.bmcd_socket, &req).await {
            Ok((Answer::Authenticated { user }, _)) => {
                tracing::info!(peer = %self.peer, %user, "SSH login");
                self.login = Some(Login {
                    user,
                    password: password.to_owned(),
                });
                if let Some(tx) = self.authed.take() {
                    let _ = tx.send(());
                }
                Ok(Auth::Accept)
            }
            Ok(_) => {
                tracing::info!(peer = %self.peer, "SSH login refused");
                Ok(Auth::reject())
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot check an SSH login with bmcd");
                Ok(Auth::reject())
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Dropping `reply` refuses the channel.
        if let Some(login) = self.login.clone() {
            reply.accept().await;
            tokio::spawn(serve_channel(channel, Arc::clone(&self.shared), self.peer, login));
        }
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }
}

/// A command line of the prompt (or of an exec request).
#[derive(Debug, PartialEq, Eq)]
enum Command<'a> {
    Console(&'a str),
    Exit,
    Help,
    Empty,
    /// A usage message.
    Bad(String),
}

fn parse_command(line: &str) -> Command<'_> {
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    match words.as_slice() {
        [] => Command::Empty,
        ["console" | "vsp", system] if valid_system(system) => Command::Console(system),
        ["console" | "vsp", ..] => Command::Bad("usage: console SYSTEM (a system's UUID or name)".into()),
        ["exit" | "quit" | "logout"] => Command::Exit,
        ["help" | "?"] => Command::Help,
        [other, ..] => Command::Bad(format!(
            "unknown command '{}'; try help",
            other.chars().take(32).collect::<String>()
        )),
    }
}

fn valid_system(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && s.chars().all(|c| !c.is_control())
}

/// Why a console session ended, and whether the SSH channel is still there.
struct Ended {
    message: &'static str,
    channel_gone: bool,
}

async fn say(channel: &Channel<Msg>, text: &str) -> bool {
    channel
        .data_bytes(Bytes::copy_from_slice(text.as_bytes()))
        .await
        .is_ok()
}

/// One SSH session channel: the prompt or an exec request.
async fn serve_channel(mut channel: Channel<Msg>, shared: Arc<Shared>, peer: SocketAddr, login: Login) {
    let idle = Duration::from_secs(shared.config.idle_timeout_s);
    let mut shutdown = shared.shutdown.clone();
    let mut interactive = false;
    let mut line: Vec<u8> = Vec::new();
    let mut last_cr = false;
    loop {
        let msg = tokio::select! {
            m = channel.wait() => m,
            _ = tokio::time::sleep(idle) => {
                let _ = say(&channel, "\r\nidle timeout\r\n").await;
                break;
            }
            _ = shutdown.changed() => {
                let _ = say(&channel, "\r\nconsole proxy is stopping\r\n").await;
                break;
            }
        };
        match msg {
            None | Some(ChannelMsg::Close) => return,
            Some(ChannelMsg::Eof) => break,
            Some(ChannelMsg::RequestShell { .. }) if !interactive => {
                interactive = true;
                let hello = format!(
                    "Redfin serial console, logged in as {}.\r\n{HELP}{PROMPT}",
                    login.user
                );
                if !say(&channel, &hello).await {
                    return;
                }
            }
            Some(ChannelMsg::Exec { command, .. }) if !interactive => {
                let command = String::from_utf8_lossy(&command).into_owned();
                let status = match parse_command(&command) {
                    Command::Console(system) => {
                        match console(&mut channel, &shared, peer, &login, system, &mut shutdown).await {
                            Ok(ended) if ended.channel_gone => return,
                            Ok(ended) => {
                                let _ = say(&channel, &format!("\r\n{}\r\n", ended.message)).await;
                                0
                            }
                            Err(refusal) => {
                                let _ = say(&channel, &format!("{refusal}\r\n")).await;
                                1
                            }
                        }
                    }
                    Command::Help => {
                        let _ = say(&channel, HELP).await;
                        0
                    }
                    Command::Bad(usage) => {
                        let _ = say(&channel, &format!("{usage}\r\n")).await;
                        2
                    }
                    Command::Empty | Command::Exit => {
                        let _ = say(&channel, "usage: console SYSTEM\r\n").await;
                        2
                    }
                };
                let _ = channel.exit_status(status).await;
                break;
            }
            Some(ChannelMsg::Data { data }) if interactive => {
                for &b in data.iter() {
                    let enter = b == b'\r' || (b == b'\n' && !last_cr);
                    let swallowed_lf = b == b'\n' && last_cr;
                    last_cr = b == b'\r';
                    if swallowed_lf {
                        continue;
                    }
                    if !enter {
                        match b {
                            // Backspace, DEL.
                            0x08 | 0x7f if !line.is_empty() => {
                                line.pop();
                                if !say(&channel, "\x08 \x08").await {
                                    return;
                                }
                            }
                            // Ctrl-C: drop the line; Ctrl-D on an empty line: log out.
                            0x03 => {
                                line.clear();
                                if !say(&channel, &format!("^C\r\n{PROMPT}")).await {
                                    return;
                                }
                            }
                            0x04 if line.is_empty() => {
                                let _ = say(&channel, "\r\n").await;
                                let _ = channel.exit_status(0).await;
                                let _ = channel.eof().await;
                                let _ = channel.close().await;
                                return;
                            }
                            b if (0x20..0x7f).contains(&b) && line.len() < MAX_LINE => {
                                line.push(b);
                                if !say(&channel, &char::from(b).to_string()).await {
                                    return;
                                }
                            }
                            _ => {}
                        }
                        continue;
                    }
                    if !say(&channel, "\r\n").await {
                        return;
                    }
                    let text = String::from_utf8_lossy(&line).into_owned();
                    line.clear();
                    match parse_command(&text) {
                        Command::Console(system) => {
                            match console(&mut channel, &shared, peer, &login, system, &mut shutdown).await {
                                Ok(ended) if ended.channel_gone => return,
                                Ok(ended) => {
                                    if !say(&channel, &format!("\r\n{}\r\n", ended.message)).await {
                                        return;
                                    }
                                }
                                Err(refusal) => {
                                    if !say(&channel, &format!("{refusal}\r\n")).await {
                                        return;
                                    }
                                }
                            }
                        }
                        Command::Exit => {
                            let _ = channel.exit_status(0).await;
                            let _ = channel.eof().await;
                            let _ = channel.close().await;
                            return;
                        }
                        Command::Help => {
                            if !say(&channel, HELP).await {
                                return;
                            }
                        }
                        Command::Empty => {}
                        Command::Bad(usage) => {
                            if !say(&channel, &format!("{usage}\r\n")).await {
                                return;
                            }
                        }
                    }
                    // Input typed during a console session is the console's.
                    if !say(&channel, PROMPT).await {
                        return;
                    }
                }
            }
            Some(_) => {}
        }
    }
    let _ = channel.eof().await;
    let _ = channel.close().await;
}

/// Recognizes `~.` at the start of a line (the end of a console session);
/// `~~` there sends one `~`.
struct Escape {
    line_start: bool,
    tilde: bool,
}

impl Escape {
    fn new() -> Escape {
        Escape {
            line_start: true,
            tilde: false,
        }
    }

    /// Moves the bytes for the console from `input` to `out`; `true` when
    /// the escape was typed (what follows it is dropped).
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if self.tilde {
                self.tilde = false;
                match b {
                    b'.' => return true,
                    b'~' => {
                        out.push(b'~');
                        self.line_start = false;
                        continue;
                    }
                    _ => out.push(b'~'),
                }
            } else if self.line_start && b == b'~' {
                self.tilde = true;
                continue;
            }
            out.push(b);
            self.line_start = b == b'\r' || b == b'\n';
        }
        false
    }
}

/// Opens the serial console of `system` for `login` (asking bmcd) and
/// bridges the channel to it until `~.`, the channel closes, the console
/// closes, the session is idle or its time is up, bmcd ends it or the proxy
/// stops. `Err`: why it could not be opened.
async fn console(
    channel: &mut Channel<Msg>,
    shared: &Shared,
    peer: SocketAddr,
    login: &Login,
    system: &str,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Ended, String> {
    let req = Request::AuthorizeSerial(AuthorizeSerial {
        user: login.user.clone(),
        password: login.password.clone(),
        system: Some(system.to_owned()),
        client: peer.ip().to_string(),
    });
    let (answer, grant) = redeem::ask(&shared.config.bmcd_socket, &req).await.map_err(|e| {
        tracing::error!(error = %e, "cannot authorize an SSH serial console with bmcd");
        "console service unavailable".to_owned()
    })?;
    let (session_id, target, deadline, mut grant) = match (answer, grant) {
        (
            Answer::Granted {
                session,
                target,
                deadline,
                ..
            },
            Some(grant),
        ) => (session, target, deadline, grant),
        (Answer::Refused { reason }, _) => {
            tracing::info!(%peer, user = %login.user, %system, reason, "SSH serial console refused");
            return Err(format!("refused: {reason}"));
        }
        (Answer::LoginFailed, _) => return Err("refused: the login is no longer valid".into()),
        _ => return Err("console service unavailable".into()),
    };
    let Target::LibvirtConsole { domain_uuid } = target else {
        grant
            .close(&Closed {
                reason: "not a serial console target".into(),
                bytes_to_client: 0,
                bytes_from_client: 0,
            })
            .await;
        return Err("console service unavailable".into());
    };
    let serial = match serial::open(shared.config.libvirt_uri.clone(), domain_uuid).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%system, error = %e, "serial console unavailable");
            grant
                .close(&Closed {
                    reason: e,
                    bytes_to_client: 0,
                    bytes_from_client: 0,
                })
                .await;
            return Err("the console of this system cannot be opened".into());
        }
    };
    tracing::info!(%peer, %system, user = %login.user, session = session_id, "SSH serial console session opened");
    let mut out = Closed {
        reason: String::new(),
        bytes_to_client: 0,
        bytes_from_client: 0,
    };
    let hello = format!("Connected to the serial console of {system}. Press ~. on a new line to exit.\r\n");
    let ended = if say(channel, &hello).await {
        bridge(channel, serial, &mut grant, shared, deadline, shutdown, &mut out).await
    } else {
        Ended {
            message: "client gone",
            channel_gone: true,
        }
    };
    tracing::info!(%peer, %system, session = session_id, reason = ended.message, "SSH serial console session closed");
    out.reason = ended.message.to_owned();
    grant.close(&out).await;
    Ok(ended)
}

async fn bridge(
    channel: &mut Channel<Msg>,
    serial: serial::SerialConsole,
    grant: &mut redeem::Grant,
    shared: &Shared,
    deadline: i64,
    shutdown: &mut watch::Receiver<bool>,
    out: &mut Closed,
) -> Ended {
    let serial::SerialConsole {
        to_guest,
        mut from_guest,
        guard: _guard,
    } = serial;
    let idle = Duration::from_secs(shared.config.idle_timeout_s);
    let left =
        Duration::from_secs(u64::try_from(deadline.saturating_sub(crate::redfin_time_now())).unwrap_or(0));
    let end = tokio::time::sleep(left);
    tokio::pin!(end);
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(idle_timer);
    let mut escape = Escape::new();
    let ended = |message: &'static str, channel_gone: bool| Ended {
        message,
        channel_gone,
    };
    loop {
        tokio::select! {
            data = from_guest.recv() => match data {
                Some(data) => {
                    out.bytes_to_client += data.len() as u64;
                    if channel.data_bytes(data).await.is_err() {
                        return ended("client gone", true);
                    }
                }
                None => return ended("the console closed (system stopped?)", false),
            },
            msg = channel.wait() => match msg {
                Some(ChannelMsg::Data { data }) => {
                    let mut bytes = Vec::with_capacity(data.len());
                    let quit = escape.feed(&data, &mut bytes);
                    if !bytes.is_empty() {
                        out.bytes_from_client += bytes.len() as u64;
                        if to_guest.send(Bytes::from(bytes)).await.is_err() {
                            return ended("the console closed", false);
                        }
                    }
                    if quit {
                        return ended("console session ended (~.)", false);
                    }
                }
                Some(ChannelMsg::Eof | ChannelMsg::Close) | None => return ended("client closed", true),
                Some(_) => continue,
            },
            _ = &mut idle_timer => return ended("idle timeout", false),
            _ = &mut end => return ended("console session time limit reached", false),
            _ = grant.ended() => return ended("the BMC ended the console session", false),
            _ = shutdown.changed() => return ended("console proxy is stopping", false),
        }
        idle_timer.as_mut().reset(tokio::time::Instant::now() + idle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(parse_command("console vm1"), Command::Console("vm1"));
        assert_eq!(parse_command("  vsp   vm1 "), Command::Console("vm1"));
        assert_eq!(parse_command("exit"), Command::Exit);
        assert_eq!(parse_command("quit"), Command::Exit);
        assert_eq!(parse_command(""), Command::Empty);
        assert_eq!(parse_command("help"), Command::Help);
        assert!(matches!(parse_command("console"), Command::Bad(_)));
        assert!(matches!(parse_command("console a b"), Command::Bad(_)));
        assert!(matches!(parse_command("list"), Command::Bad(_)));
        assert!(matches!(parse_command("console \u{7}"), Command::Bad(_)));
    }

    #[test]
    fn tilde_dot_on_a_new_line_ends_the_session() {
        let mut out = Vec::new();
        let mut e = Escape::new();
        assert!(!e.feed(b"ls ~.\r", &mut out));
        assert_eq!(out, b"ls ~.\r");
        out.clear();
        assert!(!e.feed(b"~~x\r~", &mut out));
        assert_eq!(out, b"~x\r");
        out.clear();
        // The escape split across two reads.
        assert!(e.feed(b".ignored", &mut out));
        assert!(out.is_empty());
        let mut e = Escape::new();
        assert!(!e.feed(b"~a", &mut out));
        assert_eq!(out, b"~a");
    }

    #[tokio::test]
    async fn the_host_key_is_made_once_private_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("console-proxy-hostkey-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("state").join("ssh_host_ed25519_key");
        let a = host_key(&path).await.expect("made");
        let mode = std::fs::metadata(&path).expect("file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = host_key(&path).await.expect("read back");
        assert_eq!(
            a.fingerprint(HashAlg::Sha256).to_string(),
            b.fingerprint(HashAlg::Sha256).to_string()
        );
        assert_eq!(a.algorithm(), russh::keys::Algorithm::Ed25519);
        std::fs::write(&path, "not a key").expect("write");
        assert!(host_key(&path).await.is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
