//! What the load and fault tests share: the bmcd binary run as a process (so
//! that it can be measured, SIGKILLed and restarted), and keep-alive TLS
//! connections to it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::{tls_connector, Resp, ADMIN, ADMIN_PASSWORD};

/// The bmcd binary under test: `REDFIN_BMCD`, or the debug build
/// (`make reliability` builds it first).
pub fn bmcd_binary() -> PathBuf {
    let path = std::env::var_os("REDFIN_BMCD")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::e2e::repo().join("target/debug/bmcd"));
    assert!(
        path.is_file(),
        "{} is missing: build it first (cargo build -p bmcd) or set REDFIN_BMCD",
        path.display()
    );
    path
}

/// How to start one bmcd process.
pub struct BmcdOptions {
    pub state_dir: PathBuf,
    pub libvirt_uri: String,
    /// Extra lines of the TOML configuration file (limits, timeouts).
    pub config: String,
    /// Where the configuration file and bmcd's stderr go.
    pub work_dir: PathBuf,
    /// A command bmcd is run under (its last argument is followed by bmcd's
    /// path and arguments), e.g. `unshare -m ... sh -c '...; exec "$@"' sh`.
    pub wrapper: Vec<String>,
}

/// A bmcd process on 127.0.0.1; SIGKILLed when dropped.
pub struct BmcdProcess {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
    pub stderr: PathBuf,
}

impl BmcdProcess {
    /// Starts bmcd and waits (at most 30 s) for its ready line.
    pub fn start(o: &BmcdOptions) -> BmcdProcess {
        std::fs::create_dir_all(&o.work_dir).expect("work dir");
        let config = o.work_dir.join("bmcd.toml");
        std::fs::write(
            &config,
            format!("log = \"warn\"\nshutdown-grace-s = 2\n{}\n", o.config),
        )
        .expect("write config");
        let stderr = o.work_dir.join("bmcd.stderr");
        let stderr_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr)
            .expect("stderr file");
        let mut cmd = match o.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(bmcd_binary());
                c
            }
            None => Command::new(bmcd_binary()),
        };
        cmd.arg("--config")
            .arg(&config)
            .args(["--listen", "127.0.0.1:0", "--state-dir"])
            .arg(&o.state_dir)
            .arg("--libvirt-uri")
            .arg(&o.libvirt_uri)
            .env("BMCD_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr_file);
        let mut child = cmd.spawn().expect("bmcd starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        // Reads the ready line, then keeps draining stdout until bmcd exits.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(u) = line.strip_prefix("bmcd ready on https://") {
                    let _ = tx.send(u.to_owned());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a.parse().expect("address"),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "bmcd did not get ready within 30 s: {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
        };
        let pid = child.id();
        BmcdProcess {
            child,
            addr,
            pid,
            stderr,
        }
    }

    /// A `/proc/PID/status` value in KiB (`VmRSS`, `VmHWM`).
    pub fn status_kib(&self, key: &str) -> u64 {
        proc_status_kib(self.pid, key).unwrap_or(0)
    }

    /// Open file descriptors (sockets included).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits (at most 15 s, then SIGKILL). Returns the exit code.
    pub fn stop(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        for _ in 0..150 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    /// What bmcd wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for BmcdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `/proc/PID/status` value in KiB.
pub fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// How a keep-alive connection authenticates.
#[derive(Clone)]
pub enum Credentials {
    None,
    Basic(String),
    Token(String),
}

impl Credentials {
    pub fn admin() -> Credentials {
        Credentials::basic(ADMIN, ADMIN_PASSWORD)
    }

    pub fn basic(user: &str, password: &str) -> Credentials {
        Credentials::Basic(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        ))
    }
}

/// One keep-alive HTTPS connection to bmcd: requests go one after the other
/// on the same TLS session.
pub struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    task: tokio::task::JoinHandle<()>,
}

impl Conn {
    /// Connects and completes the TLS handshake within `limit`.
    pub async fn open(addr: SocketAddr, limit: Duration) -> Result<Conn, String> {
        let connect = async {
            let tcp = TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let _ = tcp.set_nodelay(true);
            let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
            let tls = tls_connector()
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|e| format!("HTTP handshake: {e}"))?;
            let task = tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(Conn { sender, task })
        };
        tokio::time::timeout(limit, connect)
            .await
            .map_err(|_| format!("no connection within {limit:?}"))?
    }

    /// One request, answered within `limit`.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        auth: &Credentials,
        body: Option<&Value>,
        limit: Duration,
    ) -> Result<Resp, String> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
        match auth {
            Credentials::None => {}
            Credentials::Basic(v) => req = req.header("authorization", v.as_str()),
            Credentials::Token(t) => req = req.header("x-auth-token", t.as_str()),
        }
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Bytes::from(b.to_string())
            }
            None => Bytes::new(),
        };
        let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
        let exchange = async {
            self.sender
                .ready()
                .await
                .map_err(|e| format!("connection: {e}"))?;
            let resp = self
                .sender
                .send_request(req)
                .await
                .map_err(|e| format!("request: {e}"))?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("body: {e}"))?
                .to_bytes();
            let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
            Ok(Resp {
                status,
                headers,
                body,
                json,
            })
        };
        tokio::time::timeout(limit, exchange)
            .await
            .map_err(|_| format!("no answer within {limit:?}"))?
    }

    pub async fn get(&mut self, path: &str, auth: &Credentials) -> Result<Resp, String> {
        self.send(Method::GET, path, auth, None, Duration::from_secs(30))
            .await
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A one-shot request on a fresh connection (both bounded by `limit`).
pub async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    auth: &Credentials,
    body: Option<&Value>,
    limit: Duration,
) -> Result<Resp, String> {
    let mut conn = Conn::open(addr, limit).await?;
    conn.send(method, path, auth, body, limit).await
}

/// Checks that `r` is a Redfish error with `status` and a `MessageId` ending in `id`.
pub fn assert_redfish_error(r: &Resp, status: StatusCode, id: &str) {
    assert_eq!(r.status, status, "{:?}", r.json);
    assert!(
        r.message_id().ends_with(id),
        "expected @Message.ExtendedInfo {id}, got {:?}",
        r.json
    );
}

/// Polls `check` every 100 ms until it holds; panics after `limit`.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = tokio::time::Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sorted latencies' percentile (`p` in 0..=100).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p / 100.0).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A path inside a process's mount namespace, seen from ours.
pub fn in_namespace_of(pid: u32, path: &Path) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/root")).join(path.strip_prefix("/").unwrap_or(path))
}
