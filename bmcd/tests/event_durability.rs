//! Durable event delivery, tested on the real binary: bmcd is killed with
//! SIGKILL while an event waits in its outbox (the subscriber refusing it);
//! after a restart the event is delivered, exactly once.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

const PASSWORD: &str = "durability-pass-1";

struct Bmcd {
    child: Child,
    url: String,
}

impl Bmcd {
    fn start(state: &Path, node: &Path) -> Bmcd {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bmcd"))
            .args(["--listen", "127.0.0.1:0", "--log", "warn", "--state-dir"])
            .arg(state)
            .arg("--libvirt-uri")
            .arg(format!("test://{}", node.display()))
            .env("BMCD_ADMIN_PASSWORD", PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("bmcd starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines.next().expect("bmcd printed its ready line").expect("line");
            if let Some(u) = line.strip_prefix("bmcd ready on ") {
                break u.to_owned();
            }
        };
        Bmcd { child, url }
    }

    fn curl(&self, method: &str, path: &str, body: Option<&str>) -> String {
        let mut cmd = Command::new("curl");
        cmd.args(["-sk", "--max-time", "10", "-u"])
            .arg(format!("admin:{PASSWORD}"))
            .args(["-X", method])
            .arg(format!("{}{path}", self.url));
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "-d", b]);
        }
        let out = cmd.output().expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn kill(mut self) {
        // SIGKILL: no shutdown code runs.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bmcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A receiver that refuses deliveries until `accept` turns true.
async fn receiver(accept: Arc<AtomicBool>, log: Arc<Mutex<Vec<(u16, Value)>>>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (accept, log) = (Arc::clone(&accept), Arc::clone(&log));
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (accept, log) = (Arc::clone(&accept), Arc::clone(&log));
                        async move {
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let status = if accept.load(Ordering::SeqCst) { 200 } else { 503 };
                            log.lock()
                                .expect("log")
                                .push((status, serde_json::from_slice(&body).unwrap_or(Value::Null)));
                            hyper::Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::new()))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

fn wait(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_queued_before_sigkill_is_delivered_after_restart_exactly_once() {
    let dir = std::env::temp_dir().join(format!("bmcd-durability-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let node = dir.join("node.xml");
    std::fs::write(
        &node,
        "<node><domain type='test'><name>vm</name><uuid>00000000-0000-4000-8000-0000000000aa</uuid>\
         <memory unit='MiB'>256</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain></node>",
    )
    .expect("node file");
    let state = dir.join("state");
    let accept = Arc::new(AtomicBool::new(false));
    let log: Arc<Mutex<Vec<(u16, Value)>>> = Arc::default();
    let addr = receiver(Arc::clone(&accept), Arc::clone(&log)).await;

    let bmcd = tokio::task::spawn_blocking({
        let (state, node) = (state.clone(), node.clone());
        move || Bmcd::start(&state, &node)
    })
    .await
    .expect("start");
    let (bmcd, log2) = tokio::task::spawn_blocking({
        let log = Arc::clone(&log);
        move || {
            bmcd.curl(
                "PATCH",
                "/redfish/v1/EventService",
                Some(r#"{"DeliveryRetryAttempts": 10, "DeliveryRetryIntervalSeconds": 1}"#),
            );
            let created = bmcd.curl(
                "POST",
                "/redfish/v1/EventService/Subscriptions",
                Some(&format!(
                    r#"{{"Destination": "http://{addr}/hook", "Protocol": "Redfish"}}"#
                )),
            );
            assert!(created.contains("\"Destination\""), "{created}");
            bmcd.curl(
                "POST",
                "/redfish/v1/Systems/00000000-0000-4000-8000-0000000000aa/Actions/ComputerSystem.Reset",
                Some(r#"{"ResetType": "ForceOff"}"#),
            );
            // The subscriber has refused the event at least once: it sits in the outbox.
            wait("a refused delivery", Duration::from_secs(20), || {
                !log.lock().expect("log").is_empty()
            });
            (bmcd, log)
        }
    })
    .await
    .expect("first run");
    bmcd.kill();
    let refused = log2.lock().expect("log").len();
    assert!(refused >= 1);

    accept.store(true, Ordering::SeqCst);
    let bmcd = tokio::task::spawn_blocking({
        let (state, node) = (state.clone(), node.clone());
        move || Bmcd::start(&state, &node)
    })
    .await
    .expect("restart");
    let accepted = tokio::task::spawn_blocking({
        let log = Arc::clone(&log);
        move || {
            wait("the delivery after restart", Duration::from_secs(30), || {
                log.lock().expect("log").iter().any(|(s, _)| *s == 200)
            });
            std::thread::sleep(Duration::from_secs(3));
            let accepted: Vec<Value> = log
                .lock()
                .expect("log")
                .iter()
                .filter(|(s, _)| *s == 200)
                .map(|(_, b)| b.clone())
                .collect();
            drop(bmcd);
            accepted
        }
    })
    .await
    .expect("second run");
    assert_eq!(accepted.len(), 1, "exactly once: {accepted:?}");
    let id = accepted[0]["Events"][0]["MessageId"].as_str().unwrap_or("");
    assert!(id.ends_with("ResourcePoweredOff"), "{}", accepted[0]);
    let _ = std::fs::remove_dir_all(&dir);
}
