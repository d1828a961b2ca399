//! console-proxy: the consoles of libvirt VMs over WebSocket.
//!
//! A browser (noVNC, spice-html5, a terminal page) or any WebSocket client
//! connects to `/consoles/{system}/{vnc|spice|serial}?token=...` with a token
//! that bmcd minted through Redfish. console-proxy asks bmcd, over bmcd's
//! console Unix socket, to redeem it (bmcd owns the token state and the
//! session limits); on success it bridges the WebSocket to QEMU's VNC or
//! SPICE port, or to the domain's serial console through libvirt. Refusals
//! arrive as a WebSocket close frame with code 1008 and the reason.
//!
//! With `--ssh-listen` it also serves the serial consoles over SSH (see the
//! `ssh` module): the password of each login is checked by bmcd, on the same
//! socket.
//!
//! console-proxy holds no state of its own (but the SSH host key) and needs no access to bmcd's
//! database: only to bmcd's console socket, the hypervisor's VNC/SPICE ports
//! and, for serial consoles, a libvirt connection.

pub mod config;
#[doc(hidden)]
pub mod fuzzing;
mod redeem;
mod serial;
mod ssh;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::header::{HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use redfin_console_protocol::{is_token_shaped, parse_console_path, Answer, Closed, Redeem, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub use config::Config;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Largest WebSocket message or frame accepted from a client. RFB and SPICE
/// client messages are small; a clipboard paste is the largest.
const MAX_CLIENT_MESSAGE: usize = 256 * 1024;
/// Bytes read from the console target per WebSocket message.
const READ_CHUNK: usize = 64 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(4 * READ_CHUNK)
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE))
}

/// Registers libvirt's default event loop and starts its thread, once per
/// process; later calls return the first call's outcome. Serial consoles need
/// it before their connection opens, so the serial console opener calls it too.
pub fn start_libvirt_event_loop() -> Result<(), String> {
    static STARTED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    STARTED
        .get_or_init(|| {
            virt::error::clear_error_callback();
            virt::event::event_register_default_impl().map_err(|e| e.message().to_owned())?;
            std::thread::Builder::new()
                .name("libvirt-events".into())
                .spawn(|| loop {
                    if virt::event::event_run_default_impl().is_err() {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                })
                .map_err(|e| e.to_string())?;
            Ok(())
        })
        .clone()
}

struct Shared {
    config: Config,
    tls: bool,
    shutdown: watch::Receiver<bool>,
}

/// A started console-proxy.
pub struct Running {
    pub addr: SocketAddr,
    /// The SSH serial console's listener, with `ssh_listen`.
    pub ssh_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
    ssh_task: Option<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting and closes every session.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        if let Some(t) = self.ssh_task {
            let _ = t.await;
        }
    }
}

fn load_tls(cert: &std::path::Path, key: &std::path::Path) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let mut c =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| e.to_string())?;
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(c))
}

/// Binds the listener and starts serving.
pub async fn start(config: Config) -> Result<Running, String> {
    config.validate()?;
    let tls = match (&config.cert, &config.key) {
        (Some(c), Some(k)) => Some(tokio_rustls::TlsAcceptor::from(load_tls(c, k)?)),
        _ => None,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let ssh = match config.ssh_listen {
        Some(at) => {
            let key = ssh::host_key(&config.ssh_host_key).await?;
            let l = TcpListener::bind(at)
                .await
                .map_err(|e| format!("SSH listen on {at}: {e}"))?;
            let ssh_addr = l.local_addr().map_err(|e| e.to_string())?;
            tracing::info!(addr = %ssh_addr, fingerprint = %key.fingerprint(russh::keys::HashAlg::Sha256), "SSH serial console listening");
            Some((l, ssh_addr, key))
        }
        None => None,
    };
    let (shutdown, shutdown_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        tls: tls.is_some(),
        shutdown: shutdown_rx.clone(),
        config,
    });
    let (ssh_addr, ssh_task) = match ssh {
        Some((l, a, key)) => (
            Some(a),
            Some(tokio::spawn(ssh::accept_loop(l, Arc::clone(&shared), key))),
        ),
        None => (None, None),
    };
    let task = tokio::spawn(accept_loop(listener, tls, shared, shutdown_rx));
    tracing::info!(%addr, "console-proxy started");
    Ok(Running {
        addr,
        ssh_addr,
        shutdown,
        task,
        ssh_task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let max = shared.config.max_connections;
    serve_bounded(listener, max, shutdown, "WebSocket", move |tcp, peer, slot| {
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        // The slot is held by the connection and, after an upgrade, by its
        // WebSocket session, until both are over.
        let slot = Arc::new(slot);
        async move {
            let _ = tcp.set_nodelay(true);
            match tls {
                None => serve(TokioIo::new(tcp), shared, peer, slot).await,
                Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => serve(TokioIo::new(stream), shared, peer, slot).await,
                    _ => tracing::debug!(%peer, "TLS handshake failed"),
                },
            }
        }
    })
    .await;
}

/// Accepts connections until `shutdown`, at most `max` at a time (one over
/// is closed at once), each run by `handle` on its own task with its slot;
/// at shutdown, waits up to 5 s for them to end (sessions see the signal and
/// close themselves), then aborts the rest. Shared by the WebSocket and SSH
/// listeners.
pub(crate) async fn serve_bounded<F, Fut>(
    listener: TcpListener,
    max: usize,
    mut shutdown: watch::Receiver<bool>,
    what: &'static str,
    mut handle: F,
) where
    F: FnMut(TcpStream, SocketAddr, OwnedSemaphorePermit) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(max));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, listener = what, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(%peer, listener = what, "too many connections; refused");
            continue;
        };
        connections.spawn(handle(tcp, peer, slot));
        while connections.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
}

async fn serve<I>(io: I, shared: Arc<Shared>, peer: SocketAddr, slot: Arc<OwnedSemaphorePermit>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let shared = Arc::clone(&shared);
        let slot = Arc::clone(&slot);
        async move { Ok::<_, std::convert::Infallible>(handle(req, shared, peer, slot).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .max_buf_size(64 * 1024)
        .header_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(io, service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn header<'a>(req: &'a Request<hyper::body::Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn has_token(list: Option<&str>, token: &str) -> bool {
    list.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// A browser page may open a session only from the proxy's own origin or an
/// allowed one; a client without `Origin` is not a browser and may.
fn origin_allowed(shared: &Shared, origin: Option<&str>, host: Option<&str>) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    let origin = origin.trim_end_matches('/');
    if shared
        .config
        .allowed_origins
        .iter()
        .any(|o| o.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let want_scheme = if shared.tls { "https" } else { "http" };
    match (origin.split_once("://"), host) {
        (Some((scheme, authority)), Some(host)) => {
            scheme.eq_ignore_ascii_case(want_scheme) && authority.eq_ignore_ascii_case(host)
        }
        _ => false,
    }
}

fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    shared: Arc<Shared>,
    peer: SocketAddr,
    slot: Arc<OwnedSemaphorePermit>,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let path = req.uri().path().to_owned();
    let Some((system, kind)) = parse_console_path(&path) else {
        return match &shared.config.web_root {
            Some(root) => web::serve(root, &path, req.method() == Method::HEAD).await,
            None => plain(StatusCode::NOT_FOUND, "not found"),
        };
    };
    let (system, kind) = (system.to_owned(), kind);
    if !header(&req, "upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
        || !has_token(header(&req, "connection"), "upgrade")
        || header(&req, "sec-websocket-version") != Some("13")
    {
        return plain(
            StatusCode::BAD_REQUEST,
            "a WebSocket (version 13) upgrade is required",
        );
    }
    let Some(key) = header(&req, "sec-websocket-key").map(str::to_owned) else {
        return plain(StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is missing");
    };
    if !origin_allowed(&shared, header(&req, "origin"), header(&req, "host")) {
        tracing::warn!(%peer, origin = ?header(&req, "origin"), "console request from a foreign origin refused");
        return plain(StatusCode::FORBIDDEN, "origin not allowed");
    }
    let token = query_param(req.uri().query(), "token").unwrap_or("").to_owned();
    // noVNC and spice-html5 offer `binary` (or nothing); never answer a
    // protocol the client did not offer.
    let binary = has_token(header(&req, "sec-websocket-protocol"), "binary");

    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    match HeaderValue::from_str(&accept) {
        Ok(v) => h.insert(SEC_WEBSOCKET_ACCEPT, v),
        Err(_) => return plain(StatusCode::BAD_REQUEST, "bad Sec-WebSocket-Key"),
    };
    if binary {
        h.insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("binary"));
    }
    h.insert("cache-control", HeaderValue::from_static("no-store"));

    tokio::spawn(async move {
        let _slot = slot;
        let upgraded = match hyper::upgrade::on(req).await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "WebSocket upgrade failed");
                return;
            }
        };
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws_config())).await;
        session(ws, shared, peer, system, kind, token).await;
    });
    resp
}

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Closes the WebSocket with a code and a reason (cut to the 123 bytes a
/// close frame carries).
async fn close(ws: &mut Ws, code: CloseCode, reason: &str) {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let frame = CloseFrame {
        code,
        reason: reason.get(..end).unwrap_or("").to_owned().into(),
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(Some(frame))).await;
    // Wait briefly for the client's close frame, so that it reads ours.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while ws.next().await.is_some() {}
    })
    .await;
}

/// The console end of a session.
enum Console {
    Tcp(TcpStream),
    Serial(serial::SerialConsole),
}

async fn session(
    mut ws: Ws,
    shared: Arc<Shared>,
    peer: SocketAddr,
    system: String,
    kind: redfin_console_protocol::ConsoleKind,
    token: String,
) {
    if !is_token_shaped(&token) {
        close(&mut ws, CloseCode::Policy, "missing or malformed console token").await;
        return;
    }
    let ask = Redeem {
        token,
        system_id: system.clone(),
        kind,
        client: peer.ip().to_string(),
    };
    let (answer, grant) = match redeem::redeem(&shared.config.bmcd_socket, &ask).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "cannot redeem a console token");
            close(&mut ws, CloseCode::Error, "console service unavailable").await;
            return;
        }
    };
    let (session_id, user, target, deadline) = match (answer, grant) {
        (
            Answer::Granted {
                session,
                user,
                target,
                deadline,
            },
            Some(grant),
        ) => ((session, grant), user, target, deadline),
        (Answer::Refused { reason }, _) => {
            tracing::info!(%peer, %system, reason, "console token refused");
            close(&mut ws, CloseCode::Policy, &reason).await;
            return;
        }
        _ => {
            close(&mut ws, CloseCode::Error, "console service unavailable").await;
            return;
        }
    };
    let (session_id, mut grant) = session_id;
    let console = match &target {
        Target::Tcp { host, port } => {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host.as_str(), *port))).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    Ok(Console::Tcp(s))
                }
                Ok(Err(e)) => Err(format!("cannot reach the console at {host}:{port}: {e}")),
                Err(_) => Err(format!("cannot reach the console at {host}:{port}: timed out")),
            }
        }
        Target::LibvirtConsole { domain_uuid } => {
            serial::open(shared.config.libvirt_uri.clone(), domain_uuid.clone())
                .await
                .map(Console::Serial)
        }
    };
    let console = match console {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(%system, error = %e, "console target unavailable");
            close(
                &mut ws,
                CloseCode::Error,
                "the console of this system cannot be opened",
            )
            .await;
            grant
                .close(&Closed {
                    reason: e,
                    bytes_to_client: 0,
                    bytes_from_client: 0,
                })
                .await;
            return;
        }
    };
    tracing::info!(%peer, %system, kind = kind.redfish_name(), %user, session = session_id, "console session opened");
    let now = redfin_time_now();
    let left = Duration::from_secs(u64::try_from(deadline.saturating_sub(now)).unwrap_or(0));
    let mut shutdown = shared.shutdown.clone();
    let outcome = bridge(
        &mut ws,
        console,
        &mut grant,
        Duration::from_secs(shared.config.idle_timeout_s),
        left,
        &mut shutdown,
    )
    .await;
    tracing::info!(%peer, %system, session = session_id, reason = outcome.reason, "console session closed");
    if let Some((code, text)) = outcome.close {
        close(&mut ws, code, text).await;
    }
    grant
        .close(&Closed {
            reason: outcome.reason.to_owned(),
            bytes_to_client: outcome.to_client,
            bytes_from_client: outcome.from_client,
        })
        .await;
}

fn redfin_time_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

struct Outcome {
    reason: &'static str,
    /// The close frame to send, unless the client closed first or is gone.
    close: Option<(CloseCode, &'static str)>,
    to_client: u64,
    from_client: u64,
}

/// What a client's WebSocket message is to the console.
#[derive(Debug, PartialEq, Eq)]
enum FromClient {
    /// Bytes for the console (binary, or text for robustness).
    Data(Bytes),
    /// Ping, pong: nothing for the console.
    Control,
    /// The client closed or is gone.
    Closed,
    /// A protocol error or a message over the limit.
    Error,
}

fn from_client(msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>) -> FromClient {
    match msg {
        Some(Ok(Message::Binary(b))) => FromClient::Data(b),
        Some(Ok(Message::Text(t))) => FromClient::Data(Bytes::from(t.as_str().as_bytes().to_vec())),
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => FromClient::Control,
        Some(Ok(Message::Close(_))) | None => FromClient::Closed,
        Some(Err(e)) => {
            tracing::debug!(error = %e, "WebSocket error");
            FromClient::Error
        }
    }
}

/// Moves bytes between the WebSocket and the console until one side ends,
/// the session is idle too long, its time is up, bmcd ends it or the proxy
/// stops.
async fn bridge(
    ws: &mut Ws,
    console: Console,
    grant: &mut redeem::Grant,
    idle: Duration,
    lifetime: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> Outcome {
    let (mut tcp_read, mut tcp_write, mut serial_rx, serial_tx, _serial_guard) = match console {
        Console::Tcp(s) => {
            let (r, w) = s.into_split();
            (Some(r), Some(w), None, None, None)
        }
        Console::Serial(s) => (None, None, Some(s.from_guest), Some(s.to_guest), Some(s.guard)),
    };
    let mut out = Outcome {
        reason: "",
        close: None,
        to_client: 0,
        from_client: 0,
    };
    let end = tokio::time::sleep(lifetime);
    tokio::pin!(end);
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(idle_timer);
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        // Reading from the console: TCP or the serial thread's channel.
        let from_console = async {
            if let Some(r) = tcp_read.as_mut() {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => None,
                    Ok(n) => Some(Bytes::copy_from_slice(buf.get(..n).unwrap_or_default())),
                }
            } else if let Some(rx) = serial_rx.as_mut() {
                rx.recv().await
            } else {
                None
            }
        };
        tokio::select! {
            data = from_console => match data {
                Some(data) => {
                    out.to_client += data.len() as u64;
                    if ws.send(Message::Binary(data)).await.is_err() {
                        out.reason = "client gone";
                        return out;
                    }
                }
                None => {
                    out.reason = "console closed";
                    out.close = Some((CloseCode::Away, "the console closed (system stopped?)"));
                    return out;
                }
            },
            msg = ws.next() => {
                let data = match from_client(msg) {
                    FromClient::Data(b) => b,
                    FromClient::Control => continue,
                    FromClient::Closed => {
                        out.reason = "client closed";
                        return out;
                    }
                    FromClient::Error => {
                        out.reason = "client error";
                        out.close = Some((CloseCode::Protocol, "WebSocket protocol error or message too large"));
                        return out;
                    }
                };
                out.from_client += data.len() as u64;
                let sent = if let Some(w) = tcp_write.as_mut() {
                    w.write_all(&data).await.is_ok()
                } else if let Some(tx) = serial_tx.as_ref() {
                    tx.send(data).await.is_ok()
                } else {
                    false
                };
                if !sent {
                    out.reason = "console closed";
                    out.close = Some((CloseCode::Away, "the console closed"));
                    return out;
                }
            },
            _ = &mut idle_timer => {
                out.reason = "idle timeout";
                out.close = Some((CloseCode::Policy, "idle timeout"));
                return out;
            },
            _ = &mut end => {
                out.reason = "session time limit";
                out.close = Some((CloseCode::Policy, "console session time limit reached"));
                return out;
            },
            _ = grant.ended() => {
                out.reason = "ended by bmcd";
                out.close = Some((CloseCode::Away, "the BMC ended the console session"));
                return out;
            },
            _ = shutdown.changed() => {
                out.reason = "proxy stopping";
                out.close = Some((CloseCode::Away, "console proxy is stopping"));
                return out;
            },
        }
        idle_timer.as_mut().reset(tokio::time::Instant::now() + idle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(tls: bool, allowed: &[&str]) -> Shared {
        let (_tx, rx) = watch::channel(false);
        Shared {
            config: Config {
                allowed_origins: allowed.iter().map(|s| (*s).to_owned()).collect(),
                ..Config::default()
            },
            tls,
            shutdown: rx,
        }
    }

    #[test]
    fn origins() {
        let plain = shared(false, &["https://portal.example"]);
        assert!(
            origin_allowed(&plain, None, Some("bmc:6080")),
            "non-browser clients"
        );
        assert!(origin_allowed(&plain, Some("http://bmc:6080"), Some("bmc:6080")));
        assert!(origin_allowed(&plain, Some("HTTP://BMC:6080/"), Some("bmc:6080")));
        assert!(
            !origin_allowed(&plain, Some("https://bmc:6080"), Some("bmc:6080")),
            "scheme"
        );
        assert!(
            !origin_allowed(&plain, Some("http://bmc:6081"), Some("bmc:6080")),
            "port"
        );
        assert!(!origin_allowed(&plain, Some("http://evil"), Some("bmc:6080")));
        assert!(!origin_allowed(&plain, Some("null"), Some("bmc:6080")));
        assert!(!origin_allowed(&plain, Some("http://bmc:6080"), None));
        assert!(origin_allowed(
            &plain,
            Some("https://portal.example"),
            Some("bmc:6080")
        ));
        let tls = shared(true, &[]);
        assert!(origin_allowed(&tls, Some("https://bmc:6080"), Some("bmc:6080")));
        assert!(!origin_allowed(&tls, Some("http://bmc:6080"), Some("bmc:6080")));
    }

    #[test]
    fn query_parameters_and_header_tokens() {
        assert_eq!(query_param(Some("a=1&token=xyz"), "token"), Some("xyz"));
        assert_eq!(query_param(Some("tokenx=1"), "token"), None);
        assert_eq!(query_param(None, "token"), None);
        assert!(has_token(Some("keep-alive, Upgrade"), "upgrade"));
        assert!(!has_token(Some("keep-alive"), "upgrade"));
        assert!(has_token(Some("base64, binary"), "binary"));
    }
}
