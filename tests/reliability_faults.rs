//! Fault tests (issue #10): the bmcd binary under the faults a BMC meets in
//! service, each with its outcome asserted (docs/reliability.md):
//! libvirtd killed and restarted under load, bmcd SIGKILLed during writes,
//! a full state directory, slow and hostile clients, and a webhook that hangs.
//!
//! Every process is bounded in time and stopped when its test ends; everything
//! listens on loopback only. The libvirtd test needs root (a private libvirtd
//! in its own mount namespace, tests/e2e/libvirtd.sh), and so does the
//! full-disk test (a small tmpfs mounted in bmcd's own mount namespace).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use redfin_tests::e2e::{repo, run, Libvirtd};
use redfin_tests::reliability::{
    assert_redfish_error, in_namespace_of, request, wait_until, BmcdOptions, BmcdProcess, Conn, Credentials,
};
use redfin_tests::{test_node, tls_connector, Resp, TempDir, WebhookReceiver};
use rustls::pki_types::ServerName;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::process::Command;

const SECOND: Duration = Duration::from_secs(1);

fn options(dir: &TempDir, uri: &str, config: &str) -> BmcdOptions {
    BmcdOptions {
        state_dir: dir.path().join("state"),
        libvirt_uri: uri.to_owned(),
        config: config.to_owned(),
        work_dir: dir.path().to_owned(),
        wrapper: Vec::new(),
    }
}

async fn admin_get(addr: SocketAddr, path: &str) -> Resp {
    request(addr, Method::GET, path, &Credentials::admin(), None, 10 * SECOND)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

async fn admin_send(addr: SocketAddr, method: Method, path: &str, body: Value) -> Resp {
    request(
        addr,
        method.clone(),
        path,
        &Credentials::admin(),
        Some(&body),
        10 * SECOND,
    )
    .await
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// A 503 that tells the client what happened and when to retry.
fn is_clean_unavailable(r: &Resp) -> bool {
    r.status == StatusCode::SERVICE_UNAVAILABLE
        && r.header("retry-after").is_some()
        && r.json["error"]["@Message.ExtendedInfo"][0]["MessageId"].is_string()
}

// ---------------------------------------------------------------------------------------------
// libvirtd killed and restarted under load

/// What the readers saw, in order: (since start, status or transport error, latency).
type Seen = Arc<Mutex<Vec<(Duration, Result<StatusCode, String>, Duration)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libvirtd_killed_and_restarted_under_load_fails_cleanly_and_bmcd_reconnects() {
    tokio::time::timeout(Duration::from_secs(300), async {
        let dir = TempDir::new("rel-libvirtd");
        let daemon_dir = dir.path().join("libvirtd");
        let libvirtd = Libvirtd::start(&daemon_dir).await;
        let xml = dir.path().join("rel-1.xml");
        std::fs::write(
            &xml,
            "<domain type='qemu'><name>rel-1</name><memory unit='MiB'>64</memory>\
             <os><type arch='x86_64' machine='q35'>hvm</type></os></domain>",
        )
        .expect("write XML");
        libvirtd.virsh(&["define", xml.to_str().expect("utf8")]).await;
        let uuid = libvirtd.virsh(&["domuuid", "rel-1"]).await.trim().to_owned();
        let system = format!("/redfish/v1/Systems/{uuid}");
        let bmcd = BmcdProcess::start(&options(&dir, &libvirtd.uri, "libvirt-timeout-s = 5"));
        assert_eq!(admin_get(bmcd.addr, &system).await.status, StatusCode::OK);

        // 20 keep-alive clients read the system all along.
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Seen = Arc::default();
        let start = Instant::now();
        let mut readers = Vec::new();
        for _ in 0..20 {
            let (stop, seen, system, addr) =
                (Arc::clone(&stop), Arc::clone(&seen), system.clone(), bmcd.addr);
            readers.push(tokio::spawn(async move {
                let mut conn = Conn::open(addr, 10 * SECOND).await.expect("connect");
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let r = conn
                        .send(Method::GET, &system, &Credentials::admin(), None, 15 * SECOND)
                        .await;
                    let outcome = match r {
                        Ok(r) if r.status == StatusCode::OK || is_clean_unavailable(&r) => Ok(r.status),
                        Ok(r) => Err(format!("unexpected {}: {}", r.status, r.json)),
                        Err(e) => Err(e),
                    };
                    let failed = outcome.is_err();
                    seen.lock()
                        .expect("seen")
                        .push((start.elapsed(), outcome, t.elapsed()));
                    if failed {
                        conn = Conn::open(addr, 10 * SECOND).await.expect("reconnect");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }));
        }
        let ok_since = |from: Duration| {
            let seen = Arc::clone(&seen);
            move || {
                let seen = Arc::clone(&seen);
                async move {
                    seen.lock()
                        .expect("seen")
                        .iter()
                        .any(|(t, s, _)| *t > from && *s == Ok(StatusCode::OK))
                }
            }
        };
        let unavailable_since = |from: Duration| {
            let seen = Arc::clone(&seen);
            move || {
                let seen = Arc::clone(&seen);
                async move {
                    seen.lock()
                        .expect("seen")
                        .iter()
                        .any(|(t, s, _)| *t > from && *s == Ok(StatusCode::SERVICE_UNAVAILABLE))
                }
            }
        };
        wait_until("200s under load", 10 * SECOND, ok_since(Duration::ZERO)).await;

        // 1. SIGKILL: libvirtd is gone at once, without closing anything itself.
        let pid = std::fs::read_to_string(daemon_dir.join("run/libvirtd.pid")).expect("libvirtd pid");
        let killed_at = start.elapsed();
        run(Command::new("kill").args(["-KILL", pid.trim()])).await;
        wait_until(
            "503s while libvirtd is dead",
            15 * SECOND,
            unavailable_since(killed_at),
        )
        .await;
        tokio::time::sleep(2 * SECOND).await;
        Libvirtd::start(&daemon_dir).await.forget();
        let back_at = start.elapsed();
        wait_until("200s after libvirtd is back", 30 * SECOND, ok_since(back_at)).await;
        let recovered = start.elapsed() - back_at;

        // 2. A clean restart (SIGTERM, as a service manager does it).
        let stopped_at = start.elapsed();
        run(Command::new(repo().join("tests/e2e/libvirtd.sh"))
            .arg("stop")
            .arg(&daemon_dir))
        .await;
        wait_until(
            "503s while libvirtd is stopped",
            15 * SECOND,
            unavailable_since(stopped_at),
        )
        .await;
        Libvirtd::start(&daemon_dir).await.forget();
        let back_again = start.elapsed();
        wait_until("200s after the restart", 30 * SECOND, ok_since(back_again)).await;
        tokio::time::sleep(SECOND).await;
        stop.store(true, Ordering::SeqCst);
        for r in readers {
            r.await.expect("reader");
        }

        let seen = seen.lock().expect("seen");
        let errors: Vec<_> = seen.iter().filter(|(_, s, _)| s.is_err()).collect();
        let slowest = seen.iter().map(|(_, _, l)| *l).max().unwrap_or_default();
        let unavailable = seen
            .iter()
            .filter(|(_, s, _)| *s == Ok(StatusCode::SERVICE_UNAVAILABLE))
            .count();
        println!(
            "libvirtd faults: {} requests, {unavailable} answered 503, {} errors, slowest {slowest:?}, \
             200s again {recovered:?} after libvirtd was back",
            seen.len(),
            errors.len()
        );
        assert!(
            errors.is_empty(),
            "every request got a 200 or a clean 503: {errors:?}"
        );
        // libvirt-timeout-s (5 s) bounds every wait, plus scheduling slack.
        assert!(slowest < 8 * SECOND, "a request took {slowest:?}");
        // The same bmcd process served throughout.
        drop(seen);
        assert_eq!(bmcd.stop(), Some(0));
        // The first handle stops the daemon of this directory (also on a panic).
        drop(libvirtd);
    })
    .await
    .expect("took too long");
}

// ---------------------------------------------------------------------------------------------
// bmcd SIGKILLed during writes

/// Writes bmcd acknowledged (2xx), and what was in flight when it died.
#[derive(Default)]
struct Acked {
    accounts: Vec<String>,
    /// (Context, URI) of subscriptions created and not being deleted.
    subscriptions: Vec<(String, String)>,
    /// Contexts of subscriptions whose deletion was acknowledged.
    deleted: Vec<String>,
    /// system path -> (last acknowledged asset tag, tag sent after it, if any)
    tags: Vec<(String, String, Option<String>)>,
}

fn integrity_check(db: &Path) {
    let conn = rusqlite::Connection::open(db).expect("open state database");
    let result: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(result, "ok", "PRAGMA integrity_check of {}", db.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bmcd_sigkilled_during_writes_loses_no_acknowledged_write() {
    tokio::time::timeout(Duration::from_secs(240), async {
        let dir = TempDir::new("rel-sigkill");
        let (uri, domains) = test_node(dir.path(), 3);
        let opts = options(&dir, &uri, "outbound-allow = [\"127.0.0.0/8\"]");
        let acked = Arc::new(Mutex::new(Acked {
            tags: domains
                .iter()
                .map(|d| (format!("/redfish/v1/Systems/{}", d.uuid), String::new(), None))
                .collect(),
            ..Acked::default()
        }));
        let mut total_acked = 0;
        for round in 0..3 {
            let bmcd = BmcdProcess::start(&opts);
            // Whatever was acknowledged before is all there.
            verify(bmcd.addr, &acked.lock().expect("acked")).await;
            let stop = Arc::new(AtomicBool::new(false));
            let mut writers = Vec::new();
            for kind in 0..3 {
                let (stop, acked, addr) = (Arc::clone(&stop), Arc::clone(&acked), bmcd.addr);
                writers.push(tokio::spawn(async move {
                    write_loop(addr, round, kind, stop, acked).await
                }));
            }
            // Kill mid-stream, at a different moment each round.
            tokio::time::sleep(Duration::from_millis(1500 + 700 * round as u64)).await;
            bmcd.kill9();
            stop.store(true, Ordering::SeqCst);
            for w in writers {
                w.await.expect("writer");
            }
            integrity_check(&dir.path().join("state/bmcd.sqlite3"));
            let a = acked.lock().expect("acked");
            total_acked = a.accounts.len() + a.subscriptions.len() + a.deleted.len();
            println!(
                "round {round}: acknowledged so far: {} accounts, {} subscriptions created and kept, \
                 {} deleted, asset tags {:?}",
                a.accounts.len(),
                a.subscriptions.len(),
                a.deleted.len(),
                a.tags.iter().map(|t| t.1.as_str()).collect::<Vec<_>>()
            );
        }
        assert!(
            total_acked >= 6,
            "too few writes were acknowledged to test anything"
        );
        let bmcd = BmcdProcess::start(&opts);
        verify(bmcd.addr, &acked.lock().expect("acked")).await;
        assert_eq!(bmcd.stop(), Some(0));
        integrity_check(&dir.path().join("state/bmcd.sqlite3"));
    })
    .await
    .expect("took too long");
}

/// One writer: accounts (kind 0), subscriptions (1) or asset tags (2), in a
/// loop on one keep-alive connection, until bmcd dies or `stop`.
async fn write_loop(
    addr: SocketAddr,
    round: usize,
    kind: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Acked>>,
) {
    let Ok(mut conn) = Conn::open(addr, 10 * SECOND).await else {
        return;
    };
    let admin = Credentials::admin();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        match kind {
            0 => {
                let name = format!("r{round}-u{n}");
                let body = json!({"UserName": name, "Password": "acked-pass-1", "RoleId": "ReadOnly"});
                match conn
                    .send(
                        Method::POST,
                        "/redfish/v1/AccountService/Accounts",
                        &admin,
                        Some(&body),
                        10 * SECOND,
                    )
                    .await
                {
                    Ok(r) if r.status == StatusCode::CREATED => {
                        acked.lock().expect("acked").accounts.push(name)
                    }
                    Ok(r) => panic!("account {name}: {} {}", r.status, r.json),
                    Err(_) => return, // bmcd died: not acknowledged
                }
            }
            1 => {
                // Create; past 20, delete the oldest (the limit is 100).
                let oldest = {
                    let mut a = acked.lock().expect("acked");
                    (a.subscriptions.len() >= 20).then(|| a.subscriptions.remove(0))
                };
                if let Some((context, uri)) = oldest {
                    match conn.send(Method::DELETE, &uri, &admin, None, 10 * SECOND).await {
                        Ok(r) if r.status == StatusCode::NO_CONTENT => {
                            acked.lock().expect("acked").deleted.push(context)
                        }
                        Ok(r) => panic!("delete {uri}: {} {}", r.status, r.json),
                        Err(_) => return,
                    }
                    continue;
                }
                let context = format!("r{round}-s{n}");
                let body = json!({"Destination": "http://127.0.0.1:9/events", "Protocol": "Redfish", "Context": context});
                match conn
                    .send(
                        Method::POST,
                        "/redfish/v1/EventService/Subscriptions",
                        &admin,
                        Some(&body),
                        10 * SECOND,
                    )
                    .await
                {
                    Ok(r) if r.status == StatusCode::CREATED => {
                        let uri = r.header("location").expect("location").to_owned();
                        acked.lock().expect("acked").subscriptions.push((context, uri))
                    }
                    Ok(r) => panic!("subscription {context}: {} {}", r.status, r.json),
                    Err(_) => return,
                }
            }
            _ => {
                let i = n % 3;
                let tag = format!("r{round}-t{n}");
                let system = {
                    let mut a = acked.lock().expect("acked");
                    a.tags[i].2 = Some(tag.clone());
                    a.tags[i].0.clone()
                };
                let body = json!({"AssetTag": tag});
                match conn
                    .send(Method::PATCH, &system, &admin, Some(&body), 10 * SECOND)
                    .await
                {
                    Ok(r) if r.status == StatusCode::OK => {
                        let mut a = acked.lock().expect("acked");
                        a.tags[i].1 = tag;
                        a.tags[i].2 = None;
                    }
                    Ok(r) => panic!("asset tag: {} {}", r.status, r.json),
                    Err(_) => return,
                }
            }
        }
    }
}

/// Every acknowledged write is there after the restart.
async fn verify(addr: SocketAddr, acked: &Acked) {
    let accounts = admin_get(addr, "/redfish/v1/AccountService/Accounts?$expand=.($levels=1)").await;
    assert_eq!(accounts.status, StatusCode::OK);
    let names: Vec<&str> = accounts.json["Members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["UserName"].as_str())
        .collect();
    for a in &acked.accounts {
        assert!(names.contains(&a.as_str()), "acknowledged account {a} is missing");
    }
    let subs = admin_get(
        addr,
        "/redfish/v1/EventService/Subscriptions?$expand=.($levels=1)",
    )
    .await;
    let contexts: Vec<&str> = subs.json["Members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["Context"].as_str())
        .collect();
    for (c, _) in &acked.subscriptions {
        assert!(
            contexts.contains(&c.as_str()),
            "acknowledged subscription {c} is missing"
        );
    }
    for c in &acked.deleted {
        assert!(
            !contexts.contains(&c.as_str()),
            "subscription {c} came back after its deletion"
        );
    }
    for (system, last, in_flight) in &acked.tags {
        let tag = admin_get(addr, system).await.json["AssetTag"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        // The last acknowledged value, or the one sent after it (written but
        // not acknowledged before the kill).
        assert!(
            tag == *last || Some(&tag) == in_flight.as_ref(),
            "{system}: AssetTag {tag:?}, acknowledged {last:?}, in flight {in_flight:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A full state directory

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_state_directory_fails_writes_cleanly_and_recovers() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let dir = TempDir::new("rel-full");
        let (uri, domains) = test_node(dir.path(), 2);
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).expect("state dir");
        let mut opts = options(&dir, &uri, "");
        // bmcd runs in its own mount namespace, where the state directory is
        // a 4 MiB tmpfs; we reach it through /proc/PID/root.
        opts.wrapper = [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount -t tmpfs -o size=4m,mode=0700 redfin-full \"$0\" && exec \"$@\"",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([state.to_str().expect("utf8").to_owned()])
        .collect();
        let mut bmcd = BmcdProcess::start(&opts);
        let inside = in_namespace_of(bmcd.pid, &state);
        assert!(inside.join("bmcd.sqlite3").is_file(), "state in the tmpfs");
        let system = format!("/redfish/v1/Systems/{}", domains[0].uuid);
        let addr = bmcd.addr;
        let create = move |name: String| async move {
            admin_send(
                addr,
                Method::POST,
                "/redfish/v1/AccountService/Accounts",
                json!({"UserName": name, "Password": "full-pass-123", "RoleId": "ReadOnly"}),
            )
            .await
        };
        assert_eq!(create("before".into()).await.status, StatusCode::CREATED);

        // Fill the file system.
        let filler = inside.join("filler");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&filler).expect("filler");
            let chunk = vec![0u8; 64 << 10];
            while f.write_all(&chunk).is_ok() {}
            while f.write_all(&chunk[..512]).is_ok() {}
            let _ = f.sync_all();
        }
        // Writes fail with 507 InsufficientStorage (or, while SQLite still
        // finds room in pages it already has, succeed); never anything else.
        let mut refused = Vec::new();
        let mut written = Vec::new();
        for n in 0..40 {
            let name = format!("full-{n}");
            let r = create(name.clone()).await;
            match r.status {
                StatusCode::CREATED => written.push(name),
                _ => {
                    assert_redfish_error(&r, StatusCode::INSUFFICIENT_STORAGE, "InsufficientStorage");
                    refused.push(name);
                }
            }
            let r = admin_send(
                bmcd.addr,
                Method::PATCH,
                &system,
                json!({"AssetTag": format!("tag-{n}")}),
            )
            .await;
            if r.status != StatusCode::OK {
                assert_redfish_error(&r, StatusCode::INSUFFICIENT_STORAGE, "InsufficientStorage");
            }
            if refused.len() >= 3 {
                break;
            }
        }
        println!(
            "disk full: {} writes refused with 507, {} accepted first",
            refused.len(),
            written.len()
        );
        assert!(!refused.is_empty(), "no write was refused on a full disk");
        // Reads keep working, and bmcd is still there.
        for path in [
            "/redfish/v1",
            system.as_str(),
            "/redfish/v1/AccountService/Accounts",
        ] {
            assert_eq!(admin_get(bmcd.addr, path).await.status, StatusCode::OK, "{path}");
        }
        assert!(bmcd.alive(), "bmcd survived the full disk");

        // Space comes back: writes work again, and what was refused is not there.
        std::fs::remove_file(&filler).expect("free space");
        assert_eq!(create("after".into()).await.status, StatusCode::CREATED);
        let r = admin_send(bmcd.addr, Method::PATCH, &system, json!({"AssetTag": "after"})).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
        let accounts = admin_get(
            bmcd.addr,
            "/redfish/v1/AccountService/Accounts?$expand=.($levels=1)",
        )
        .await;
        let names: Vec<&str> = accounts.json["Members"]
            .as_array()
            .expect("members")
            .iter()
            .filter_map(|m| m["UserName"].as_str())
            .collect();
        for n in ["before", "after"]
            .iter()
            .copied()
            .chain(written.iter().map(String::as_str))
        {
            assert!(names.contains(&n), "{n} is missing");
        }
        for n in &refused {
            assert!(!names.contains(&n.as_str()), "refused account {n} exists");
        }
        assert!(bmcd.alive());
        assert_eq!(bmcd.stop(), Some(0));
    })
    .await
    .expect("took too long");
}

// ---------------------------------------------------------------------------------------------
// Slow and hostile clients

/// Short timeouts so that the tests are quick; the defaults are 10 s and 30 s.
const HOSTILE_CONFIG: &str = "tls-handshake-timeout-s = 2\nheader-read-timeout-s = 3\n\
                              max-connections = 256\nmax-connections-per-client = 64";

/// HOSTILE_CONFIG with a handshake timeout long enough to count a flood before it expires.
const GLOBAL_CAP_CONFIG: &str = "tls-handshake-timeout-s = 8\nheader-read-timeout-s = 3\n\
                                 max-connections = 256\nmax-connections-per-client = 64";

/// A TLS connection, not yet used.
async fn tls(addr: SocketAddr) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tls_connector()
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS handshake")
}

/// Reads until the peer closes (or resets); returns what came and when it closed.
async fn read_until_closed<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    limit: Duration,
) -> Option<(Vec<u8>, Instant)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return (got, Instant::now()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()
}

/// A well-behaved client's GET takes well under the timeouts (2 s at most).
async fn served_quickly(addr: SocketAddr) {
    let t = Instant::now();
    let r = admin_get(addr, "/redfish/v1/Systems").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        t.elapsed() < 2 * SECOND,
        "a normal client waited {:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_clients_are_cut_off_at_the_header_timeout_and_others_are_served() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = TempDir::new("rel-slowloris");
        let (uri, _) = test_node(dir.path(), 2);
        let bmcd = BmcdProcess::start(&options(&dir, &uri, HOSTILE_CONFIG));
        let head = b"GET /redfish/v1 HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
        let mut slow = Vec::new();
        for _ in 0..20 {
            // Taken before the connection exists: bmcd's timer cannot start earlier.
            let start = Instant::now();
            let stream = tls(bmcd.addr).await;
            slow.push(tokio::spawn(async move {
                let (mut rd, mut wr) = tokio::io::split(stream);
                // One byte every 200 ms: the head never completes.
                let trickle = tokio::spawn(async move {
                    for i in 0.. {
                        let byte = head.get(i).copied().unwrap_or(b'a');
                        if wr.write_all(&[byte]).await.is_err() || wr.flush().await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                });
                let closed = read_until_closed(&mut rd, 15 * SECOND).await;
                trickle.abort();
                closed.map(|(got, at)| (got, at - start))
            }));
        }
        // Meanwhile, others are served.
        for _ in 0..5 {
            served_quickly(bmcd.addr).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let mut cut_off = Vec::new();
        for s in slow {
            let (got, after) = s
                .await
                .expect("slow client")
                .expect("bmcd closed the slow connection");
            cut_off.push(after);
            // Cut off at the 3 s header timeout (408 or a plain close), not before, and not much after.
            let text = String::from_utf8_lossy(&got);
            assert!(got.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
            assert!(
                after >= 3 * SECOND - Duration::from_millis(100),
                "closed after {after:?}"
            );
            assert!(after < 6 * SECOND, "closed only after {after:?}");
        }
        println!(
            "slowloris: 20 clients cut off after {:?} to {:?}",
            cut_off.iter().min().copied().unwrap_or_default(),
            cut_off.iter().max().copied().unwrap_or_default()
        );
        // An idle keep-alive connection is closed by the same timeout.
        let mut conn = tls(bmcd.addr).await;
        conn.write_all(b"GET /redfish/v1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .expect("write");
        let start = Instant::now();
        let (got, at) = read_until_closed(&mut conn, 15 * SECOND)
            .await
            .expect("idle connection closed");
        assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
        assert!(
            at - start < 6 * SECOND,
            "idle keep-alive closed after {:?}",
            at - start
        );
        served_quickly(bmcd.addr).await;
        assert_eq!(bmcd.stop(), Some(0));
    })
    .await
    .expect("took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_headers_get_431_and_memory_stays_bounded() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let dir = TempDir::new("rel-headers");
        let (uri, domains) = test_node(dir.path(), 2);
        let bmcd = BmcdProcess::start(&options(&dir, &uri, HOSTILE_CONFIG));
        served_quickly(bmcd.addr).await;
        let rss_before = bmcd.status_kib("VmRSS");
        // One huge header, and many small ones, each over the 16 KiB head limit;
        // 50 clients at a time, 4 rounds.
        for round in 0..4 {
            let mut clients = Vec::new();
            for i in 0..50 {
                let addr = bmcd.addr;
                clients.push(tokio::spawn(async move {
                    let mut head = String::from("GET /redfish/v1 HTTP/1.1\r\nHost: localhost\r\n");
                    if (i + round) % 2 == 0 {
                        head.push_str(&format!("X-Huge: {}\r\n", "a".repeat(1 << 20)));
                    } else {
                        for n in 0..2000 {
                            head.push_str(&format!("X-Many-{n}: {}\r\n", "b".repeat(64)));
                        }
                    }
                    head.push_str("\r\n");
                    let mut conn = tls(addr).await;
                    // bmcd may close before it has read everything.
                    let _ = conn.write_all(head.as_bytes()).await;
                    read_until_closed(&mut conn, 10 * SECOND).await
                }));
            }
            for c in clients {
                let (got, _) = c.await.expect("client").expect("bmcd closed the connection");
                let text = String::from_utf8_lossy(&got);
                assert!(
                    got.is_empty() || text.starts_with("HTTP/1.1 431"),
                    "answer to a huge head: {text}"
                );
            }
        }
        served_quickly(bmcd.addr).await;
        // A body over max-body-bytes gets 413 with a Redfish error, before
        // bmcd reads it.
        let mut conn = tls(bmcd.addr).await;
        let head = format!(
            "PATCH /redfish/v1/Systems/{} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"AssetTag\": \"",
            domains[0].uuid,
            match Credentials::admin() {
                Credentials::Basic(v) => v,
                _ => unreachable!(),
            },
            2 << 20
        );
        conn.write_all(head.as_bytes()).await.expect("write");
        let (got, _) = read_until_closed(&mut conn, 10 * SECOND).await.expect("answered");
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 413"), "{text}");
        assert!(text.contains("@Message.ExtendedInfo"), "{text}");
        let rss_after = bmcd.status_kib("VmRSS");
        println!("huge headers: RSS {rss_before} KiB before, {rss_after} KiB after 200 oversized heads");
        assert!(
            rss_after < rss_before + 8 * 1024,
            "RSS grew from {rss_before} KiB to {rss_after} KiB"
        );
        assert_eq!(bmcd.stop(), Some(0));
    })
    .await
    .expect("took too long");
}

/// A TCP connection from a given loopback address.
async fn connect_from(from: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    socket.connect(to).await
}

/// How many of `conns` bmcd still holds open (a read would block).
async fn still_open(conns: &mut [TcpStream]) -> usize {
    let mut open = 0;
    for c in conns.iter_mut() {
        let mut buf = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(1), c.read(&mut buf)).await {
            Err(_) => open += 1,         // nothing yet: still open
            Ok(Ok(0)) | Ok(Err(_)) => {} // closed by bmcd
            Ok(Ok(_)) => open += 1,
        }
    }
    open
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_idle_connections_are_capped_per_client_and_others_are_served() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let dir = TempDir::new("rel-conns");
        let (uri, _) = test_node(dir.path(), 2);
        let bmcd = BmcdProcess::start(&options(&dir, &uri, HOSTILE_CONFIG));
        served_quickly(bmcd.addr).await;
        let fds_before = bmcd.open_fds();

        // 2000 idle TCP connections from 127.0.0.2: bmcd keeps 64 (its share
        // per client) and closes the rest at once.
        let mut idle = Vec::new();
        for _ in 0..2000 {
            match connect_from([127, 0, 0, 2], bmcd.addr).await {
                Ok(c) => idle.push(c),
                Err(e) => panic!("connect: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let held = bmcd.open_fds().saturating_sub(fds_before);
        let open = still_open(&mut idle).await;
        println!(
            "2000 idle connections from one address: {open} still open, bmcd holds {held} more descriptors"
        );
        assert!(open <= 64, "{open} connections of one client kept");
        assert!(held <= 64 + 4, "bmcd holds {held} more descriptors");
        served_quickly(bmcd.addr).await;
        // They never started TLS: closed after the 2 s handshake timeout.
        tokio::time::sleep(3 * SECOND).await;
        assert_eq!(
            still_open(&mut idle).await,
            0,
            "idle connections outlived the handshake timeout"
        );
        drop(idle);
        served_quickly(bmcd.addr).await;
        assert_eq!(bmcd.stop(), Some(0));

        // The global cap, on a bmcd whose handshake timeout (8 s) is far longer
        // than opening 320 connections takes on a loaded machine, so none of them
        // times out before they are counted: 5 addresses × 64 = 320 > 256
        // connections. bmcd holds 256; a new client is closed at accept until
        // the idle ones time out.
        let bmcd = BmcdProcess::start(&options(&dir, &uri, GLOBAL_CAP_CONFIG));
        served_quickly(bmcd.addr).await;
        let flood_start = Instant::now();
        let mut flood = Vec::new();
        for host in 3..8u8 {
            for _ in 0..64 {
                flood.push(connect_from([127, 0, 0, host], bmcd.addr).await.expect("connect"));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let open = still_open(&mut flood).await;
        let counted_after = flood_start.elapsed();
        assert!(
            counted_after < 8 * SECOND,
            "opening and counting the flood took {counted_after:?}, past the handshake timeout"
        );
        assert_eq!(open, 256, "the global connection limit");
        let refused = Conn::open(bmcd.addr, 2 * SECOND).await;
        assert!(
            refused.is_err(),
            "a connection over the limit is closed at accept"
        );
        // Within the handshake timeout, the slots are free again.
        let t = Instant::now();
        wait_until("a slot after the handshake timeout", 12 * SECOND, || async {
            Conn::open(bmcd.addr, SECOND).await.is_ok()
        })
        .await;
        println!(
            "global cap: 256 held, a new client served again after {:?}",
            t.elapsed()
        );
        served_quickly(bmcd.addr).await;
        drop(flood);

        // TLS done, then idle: closed by the header timeout (3 s).
        let mut idle_tls = Vec::new();
        for _ in 0..50 {
            idle_tls.push(tls(bmcd.addr).await);
        }
        let start = Instant::now();
        for mut c in idle_tls {
            let (_, at) = read_until_closed(&mut c, 10 * SECOND)
                .await
                .expect("idle TLS closed");
            assert!(
                at - start < 6 * SECOND,
                "idle TLS connection kept {:?}",
                at - start
            );
        }
        served_quickly(bmcd.addr).await;
        assert_eq!(bmcd.stop(), Some(0));
    })
    .await
    .expect("took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_tls_handshake_is_cut_off_and_others_are_served() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = TempDir::new("rel-handshake");
        let (uri, _) = test_node(dir.path(), 2);
        let bmcd = BmcdProcess::start(&options(&dir, &uri, HOSTILE_CONFIG));
        // A TLS record header promising a ClientHello that never comes, and a
        // connection that sends nothing at all. Both are accepted after `start`,
        // so neither can be cut off before start + 2 s.
        let start = Instant::now();
        let mut partial = TcpStream::connect(bmcd.addr).await.expect("connect");
        partial
            .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            .await
            .expect("write");
        let mut silent = TcpStream::connect(bmcd.addr).await.expect("connect");
        served_quickly(bmcd.addr).await;
        for c in [&mut partial, &mut silent] {
            let (_, at) = read_until_closed(c, 10 * SECOND).await.expect("closed");
            let after = at - start;
            assert!(
                after >= 2 * SECOND - Duration::from_millis(100) && after < 6 * SECOND,
                "closed after {after:?}"
            );
            println!("hung handshake: closed after {after:?}");
        }
        served_quickly(bmcd.addr).await;
        assert_eq!(bmcd.stop(), Some(0));
    })
    .await
    .expect("took too long");
}

// ---------------------------------------------------------------------------------------------
// A webhook that hangs

/// Accepts connections and never answers; counts them.
async fn hanging_receiver() -> (SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(tcp);
        }
    });
    (addr, accepted, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_webhook_is_retried_a_bounded_number_of_times_and_delays_nobody_else() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let dir = TempDir::new("rel-webhook");
        let (uri, domains) = test_node(dir.path(), 2);
        let bmcd = BmcdProcess::start(&options(
            &dir,
            &uri,
            "event-delivery-timeout-s = 2\noutbound-allow = [\"127.0.0.0/8\"]",
        ));
        let addr = bmcd.addr;
        let r = admin_send(
            addr,
            Method::PATCH,
            "/redfish/v1/EventService",
            json!({"DeliveryRetryAttempts": 1, "DeliveryRetryIntervalSeconds": 1}),
        )
        .await;
        assert!(r.status.is_success(), "{:?}", r.json);
        let (hang_addr, hang_attempts, hang_task) = hanging_receiver().await;
        let good = WebhookReceiver::start(0).await;
        // The hanging subscriber first, so that its deliveries come first.
        let hung = admin_send(
            addr,
            Method::POST,
            "/redfish/v1/EventService/Subscriptions",
            json!({"Destination": format!("http://{hang_addr}/events"), "Protocol": "Redfish"}),
        )
        .await;
        assert_eq!(hung.status, StatusCode::CREATED);
        let hung = hung.header("location").expect("location").to_owned();
        let r = admin_send(
            addr,
            Method::POST,
            "/redfish/v1/EventService/Subscriptions",
            json!({"Destination": good.url(), "Protocol": "Redfish"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED);

        // Three power events (vm-1 runs: off, on, off).
        let system = format!("/redfish/v1/Systems/{}", domains[0].uuid);
        let start = Instant::now();
        for kind in ["ForceOff", "On", "ForceOff"] {
            let r = admin_send(
                addr,
                Method::POST,
                &format!("{system}/Actions/ComputerSystem.Reset"),
                json!({"ResetType": kind}),
            )
            .await;
            assert_eq!(r.status, StatusCode::NO_CONTENT);
        }
        // The good subscriber has all three while the hanging one still holds its first.
        let powered = |g: &WebhookReceiver| {
            g.accepted()
                .iter()
                .filter(|b| b["Events"][0]["OriginOfCondition"]["@odata.id"] == system.as_str())
                .count()
        };
        wait_until("the good subscriber's deliveries", 3 * SECOND, || async { powered(&good) >= 3 }).await;
        let good_after = start.elapsed();
        // The API answers as usual meanwhile.
        served_quickly(addr).await;

        // The hanging subscriber: 1 + DeliveryRetryAttempts attempts per event,
        // each cut off after 2 s, then the subscription is suspended.
        wait_until("the hanging subscription to be suspended", 60 * SECOND, || async {
            admin_get(addr, &hung).await.json["Status"]["State"] == "Disabled"
        })
        .await;
        let suspended_after = start.elapsed();
        tokio::time::sleep(3 * SECOND).await;
        // Deliveries queued before the suspension are each still tried until
        // given up (docs/events.md): 3 events × (1 + 1 retry), then nothing more.
        wait_until("every queued delivery to be given up", 30 * SECOND, || async {
            hang_attempts.load(Ordering::SeqCst) >= 6
        })
        .await;
        let given_up_after = start.elapsed();
        tokio::time::sleep(4 * SECOND).await;
        let attempts = hang_attempts.load(Ordering::SeqCst);
        println!(
            "hanging webhook: good subscriber had its 3 events after {good_after:?}; hanging one \
             suspended after {suspended_after:?}, last attempt given up after {given_up_after:?}, {attempts} attempts"
        );
        assert_eq!(attempts, 3 * 2, "attempts for 3 events with 1 retry each");
        let sub = admin_get(addr, &hung).await;
        assert_eq!(sub.json["Status"]["Health"], "Warning", "{:?}", sub.json);
        // Later events still reach the good subscriber at once.
        let r = admin_send(
            addr,
            Method::POST,
            &format!("{system}/Actions/ComputerSystem.Reset"),
            json!({"ResetType": "On"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        wait_until("a later delivery", 3 * SECOND, || async { powered(&good) >= 4 }).await;
        hang_task.abort();
        assert_eq!(bmcd.stop(), Some(0));
    })
    .await
    .expect("took too long");
}
