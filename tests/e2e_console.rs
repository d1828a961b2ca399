//! Consoles end to end: a private libvirtd with a tiny TCG guest, bmcd in
//! front of it minting console tokens, and console-proxy bridging WebSockets
//! to the guest's VNC server and serial console. A minimal RFB client and a
//! serial client go through the proxy; replayed, expired and foreign tokens
//! are refused with a close reason; noVNC in headless Chromium renders the
//! guest's screen.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use hyper::StatusCode;
use redfin_tests::browser::Chromium;
use redfin_tests::e2e::{cache, repo, run, Libvirtd};
use redfin_tests::{Client, TempDir, TestBmc};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Token lifetime in this test: short, so that expiry can be seen.
const TOKEN_TTL_S: u64 = 4;
/// Session lifetime (from the token's minting): short, so that the forced
/// close can be seen.
const SESSION_MAX_S: u64 = 20;

/// Waits until `needle` shows up in the file at `path`.
async fn wait_for_text(path: &Path, needle: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let text = std::fs::read(path).unwrap_or_default();
        if String::from_utf8_lossy(&text).contains(needle) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "'{needle}' did not appear in {}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Mints a console token; returns the answer's JSON.
async fn mint(admin: &Client, system: &str, kind: &str) -> Value {
    let r = admin
        .post(
            &format!("{system}/Actions/Oem/Redfin.ConsoleToken"),
            json!({"ConsoleType": kind}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "mint {kind}: {:?}", r.json);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    r.json
}

/// Opens a WebSocket; `protocol` is offered as `Sec-WebSocket-Protocol`.
/// Returns the socket and the protocol the server chose.
async fn connect(
    url: &str,
    protocol: Option<&str>,
    origin: Option<&str>,
) -> Result<(Ws, Option<String>), String> {
    let mut req = url.into_client_request().map_err(|e| e.to_string())?;
    if let Some(p) = protocol {
        req.headers_mut()
            .insert("sec-websocket-protocol", p.parse().map_err(|_| "header")?);
    }
    if let Some(o) = origin {
        req.headers_mut()
            .insert("origin", o.parse().map_err(|_| "header")?);
    }
    let (ws, resp) = tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(req))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let chosen = resp
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((ws, chosen))
}

/// Connects with `url` and expects a close frame with code 1008 whose reason
/// contains `reason`.
async fn expect_refused(url: &str, reason: &str) {
    let (mut ws, _) = connect(url, None, None).await.expect("upgrade");
    let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("an answer in time");
    match msg {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(frame.code, CloseCode::Policy, "{frame:?}");
            assert!(
                frame.reason.as_str().contains(reason),
                "close reason '{}' lacks '{reason}'",
                frame.reason
            );
        }
        other => panic!("expected a close frame ({reason}), got {other:?}"),
    }
}

/// Reads exact byte counts out of a WebSocket's binary messages.
struct WsReader {
    ws: Ws,
    buf: VecDeque<u8>,
}

impl WsReader {
    async fn read(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            let msg = tokio::time::timeout(Duration::from_secs(20), self.ws.next())
                .await
                .expect("data in time")
                .expect("socket open")
                .expect("no WebSocket error");
            match msg {
                Message::Binary(b) => self.buf.extend(b.iter()),
                Message::Close(c) => panic!("closed: {c:?}"),
                _ => {}
            }
        }
        self.buf.drain(..n).collect()
    }

    async fn u16(&mut self) -> u16 {
        let b = self.read(2).await;
        u16::from_be_bytes([b[0], b[1]])
    }

    async fn u32(&mut self) -> u32 {
        let b = self.read(4).await;
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    async fn send(&mut self, data: &[u8]) {
        self.ws
            .send(Message::Binary(data.to_vec().into()))
            .await
            .expect("send");
    }
}

/// A minimal RFB 3.8 client: handshake with security type None, then one
/// non-incremental update of the whole screen in Raw encoding. Returns the
/// width, height and the count of non-zero pixels.
async fn rfb_full_frame(ws: Ws) -> (u16, u16, usize) {
    let mut r = WsReader {
        ws,
        buf: VecDeque::new(),
    };
    let version = r.read(12).await;
    assert!(version.starts_with(b"RFB 003."), "{version:?}");
    r.send(b"RFB 003.008\n").await;
    let n = r.read(1).await[0] as usize;
    assert!(n > 0, "the server refused the connection");
    let types = r.read(n).await;
    assert!(types.contains(&1), "security type None not offered: {types:?}");
    r.send(&[1]).await;
    assert_eq!(r.u32().await, 0, "security result");
    r.send(&[1]).await; // ClientInit, shared
    let width = r.u16().await;
    let height = r.u16().await;
    let format = r.read(16).await;
    let bytes_per_pixel = usize::from(format[0] / 8);
    let name_len = r.u32().await as usize;
    let _name = r.read(name_len).await;
    // SetEncodings: Raw only.
    r.send(&[2, 0, 0, 1, 0, 0, 0, 0]).await;
    // FramebufferUpdateRequest, not incremental, the whole screen.
    let mut req = vec![3, 0, 0, 0, 0, 0];
    req.extend_from_slice(&width.to_be_bytes());
    req.extend_from_slice(&height.to_be_bytes());
    r.send(&req).await;
    let mut area = 0usize;
    let mut lit = 0usize;
    while area < usize::from(width) * usize::from(height) {
        let kind = r.read(1).await[0];
        match kind {
            0 => {
                let _pad = r.read(1).await;
                let rects = r.u16().await;
                for _ in 0..rects {
                    let _x = r.u16().await;
                    let _y = r.u16().await;
                    let w = usize::from(r.u16().await);
                    let h = usize::from(r.u16().await);
                    let encoding = r.u32().await;
                    assert_eq!(encoding, 0, "only Raw was asked for");
                    let pixels = r.read(w * h * bytes_per_pixel).await;
                    lit += pixels
                        .chunks(bytes_per_pixel)
                        .filter(|p| p.iter().any(|b| *b != 0))
                        .count();
                    area += w * h;
                }
            }
            2 => {} // Bell
            3 => {
                let _pad = r.read(3).await;
                let len = r.u32().await as usize;
                let _text = r.read(len).await;
            }
            other => panic!("unexpected server message {other}"),
        }
    }
    assert_eq!(area, usize::from(width) * usize::from(height));
    let _ = r.ws.close(None).await;
    (width, height, lit)
}

/// The SPICE link handshake for channel `channel_type` (1: main, 2: display):
/// sends SpiceLinkHeader + SpiceLinkMess, checks the server's SpiceLinkReply
/// (magic `REDQ`, protocol 2, no error).
async fn spice_link(ws: Ws, channel_type: u8) -> Ws {
    let mut r = WsReader {
        ws,
        buf: VecDeque::new(),
    };
    let mut hello = Vec::new();
    hello.extend_from_slice(b"REDQ");
    hello.extend_from_slice(&2u32.to_le_bytes()); // major
    hello.extend_from_slice(&2u32.to_le_bytes()); // minor
    hello.extend_from_slice(&18u32.to_le_bytes()); // size of SpiceLinkMess
    hello.extend_from_slice(&0u32.to_le_bytes()); // connection id
    hello.push(channel_type);
    hello.push(0); // channel id
    hello.extend_from_slice(&0u32.to_le_bytes()); // common caps
    hello.extend_from_slice(&0u32.to_le_bytes()); // channel caps
    hello.extend_from_slice(&18u32.to_le_bytes()); // caps offset
    r.send(&hello).await;
    let header = r.read(16).await;
    assert_eq!(&header[..4], b"REDQ", "SPICE magic");
    assert_eq!(
        u32::from_le_bytes([header[4], header[5], header[6], header[7]]),
        2
    );
    let size = u32::from_le_bytes([header[12], header[13], header[14], header[15]]) as usize;
    let reply = r.read(size).await;
    assert_eq!(&reply[..4], &[0, 0, 0, 0], "SpiceLinkReply error");
    r.ws
}

/// Waits for a close frame whose reason contains `reason`, within `within`.
async fn expect_closed(ws: &mut Ws, reason: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => panic!("no close ({reason}) in time"),
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                assert!(
                    frame.reason.as_str().contains(reason),
                    "close reason '{}' lacks '{reason}'",
                    frame.reason
                );
                return;
            }
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("expected a close frame ({reason}), got {other:?}"),
        }
    }
}

/// Types `command` into the serial console and reads until `expect` appears.
async fn serial_exchange(ws: &mut Ws, command: &str, expect: &str) -> String {
    ws.send(Message::Binary(b"\r".to_vec().into()))
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(300)).await;
    ws.send(Message::Binary(format!("{command}\r").into_bytes().into()))
        .await
        .expect("send");
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !seen.contains(expect) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let msg = tokio::time::timeout(left, ws.next())
            .await
            .unwrap_or_else(|_| panic!("'{expect}' not seen; got: {seen}"))
            .expect("open")
            .expect("no error");
        match msg {
            Message::Binary(b) => seen.push_str(&String::from_utf8_lossy(&b)),
            Message::Text(t) => seen.push_str(t.as_str()),
            Message::Close(c) => panic!("closed: {c:?}; got: {seen}"),
            _ => {}
        }
    }
    seen
}

/// Opens `url` in Chromium, waits for noVNC to say it is connected and to
/// draw, and saves a screenshot to `png`. Returns the canvas's rectangle
/// (x, y, w, h) in the screenshot.
async fn novnc_screenshot(url: &str, png: &Path) -> (f64, f64, f64, f64) {
    let mut chromium = Chromium::start().await;
    let target = chromium
        .call("Target.createTarget", json!({"url": url}), None)
        .await;
    let target_id = target["targetId"].as_str().expect("targetId").to_owned();
    let attached = chromium
        .call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
            None,
        )
        .await;
    let session = attached["sessionId"].as_str().expect("sessionId").to_owned();
    let eval = |expr: &str| json!({"expression": expr, "returnByValue": true});
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let mut status = String::new();
    while !status.starts_with("Connected") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "noVNC did not connect; status '{status}'"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        let r = chromium
            .call(
                "Runtime.evaluate",
                eval("(document.getElementById('status') || {}).textContent || ''"),
                Some(&session),
            )
            .await;
        status = r["result"]["value"].as_str().unwrap_or("").to_owned();
    }
    // Let the first full frame arrive and be drawn.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rect = chromium
        .call(
            "Runtime.evaluate",
            eval(
                "(() => { const c = document.querySelector('#screen canvas'); \
                 const r = c.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })()",
            ),
            Some(&session),
        )
        .await;
    let v = &rect["result"]["value"];
    let n = |i: usize| v[i].as_f64().expect("number");
    let shot = chromium
        .call("Page.captureScreenshot", json!({"format": "png"}), Some(&session))
        .await;
    let data = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("data"))
        .expect("base64");
    std::fs::write(png, data).expect("write screenshot");
    chromium.stop().await;
    (n(0), n(1), n(2), n(3))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vnc_spice_serial_and_novnc_through_console_proxy() {
    tokio::time::timeout(Duration::from_secs(300), console_scenario())
        .await
        .expect("the console scenario ends within 300 s");
}

async fn console_scenario() {
    run(Command::new(repo().join("tests/e2e/build-guest.sh")).arg(cache())).await;
    let work = TempDir::new("console");
    let lv = Libvirtd::start(&work.path().join("libvirtd")).await;
    let uuid = lv.define(work.path(), "console-guest").await;
    let other = lv.define(work.path(), "console-other").await;
    let socket = work.path().join("console.sock");

    // console-proxy first (its port goes into bmcd's console URL), serving
    // Debian's noVNC on its own origin.
    let host_key = work.path().join("proxy-state/ssh_host_ed25519_key");
    let proxy = console_proxy::start(console_proxy::Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        bmcd_socket: socket.clone(),
        libvirt_uri: lv.uri.clone(),
        web_root: Some(PathBuf::from("/usr/share/novnc")),
        idle_timeout_s: 60,
        ssh_listen: Some("127.0.0.1:0".parse().expect("addr")),
        ssh_host_key: host_key.clone(),
        ..console_proxy::Config::default()
    })
    .await
    .expect("console-proxy starts");
    let base = format!("ws://{}", proxy.addr);
    let ssh_addr = proxy.ssh_addr.expect("the SSH listener");
    let mut config = TestBmc::config(&work.path().join("state"), &lv.uri);
    config.console.socket = Some(socket.clone());
    config.console.url = base.clone();
    config.console.token_ttl_s = TOKEN_TTL_S;
    config.console.session_max_s = SESSION_MAX_S;
    config.console.spice_token_uses = 3;
    config.console.ssh_port = Some(ssh_addr.port());
    let bmc = TestBmc::start_with(config).await;
    let admin = bmc.admin();
    let system = format!("/redfish/v1/Systems/{uuid}");

    // The system advertises its consoles and the mint action.
    let s = admin.get(&system).await.json;
    assert_eq!(s["GraphicalConsole"]["ServiceEnabled"], json!(true), "{s}");
    assert_eq!(s["GraphicalConsole"]["ConnectTypesSupported"], json!(["KVMIP"]));
    assert_eq!(s["GraphicalConsole"]["MaxConcurrentSessions"], json!(4));
    assert_eq!(s["SerialConsole"]["WebSocket"]["ServiceEnabled"], json!(true));
    assert_eq!(
        s["SerialConsole"]["WebSocket"]["ConsoleURI"],
        json!(format!("{base}/consoles/{uuid}/serial"))
    );
    assert_eq!(
        s["Actions"]["Oem"]["#Redfin.ConsoleToken"]["target"],
        json!(format!("{system}/Actions/Oem/Redfin.ConsoleToken"))
    );

    // Typed parsing, privileges.
    let bad = admin
        .post(
            &format!("{system}/Actions/Oem/Redfin.ConsoleToken"),
            json!({"ConsoleType": "KVMIP", "Extra": 1}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = admin
        .post(
            &format!("{system}/Actions/Oem/Redfin.ConsoleToken"),
            json!({"ConsoleType": "Spice"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "the guest has no SPICE");
    let r = admin
        .post(
            "/redfish/v1/AccountService/Accounts",
            json!({"UserName": "viewer", "Password": "viewer-password-1", "RoleId": "ReadOnly"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let viewer = bmc.client().basic("viewer", "viewer-password-1");
    let r = viewer
        .post(
            &format!("{system}/Actions/Oem/Redfin.ConsoleToken"),
            json!({"ConsoleType": "KVMIP"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // A token for a system that is not running is refused at redeem time.
    let t = mint(&admin, &system, "KVMIP").await;
    expect_refused(t["WebSocketURL"].as_str().expect("url"), "not running").await;

    // Boot the guest.
    let r = admin
        .post(
            &format!("{system}/Actions/ComputerSystem.Reset"),
            json!({"ResetType": "On"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
    let serial_log = work.path().join("console-guest-serial.log");
    wait_for_text(&serial_log, "REDFIN-GUEST-BOOTED", Duration::from_secs(90)).await;

    // Serial: type into the guest's shell, read its output. Also draw some
    // text on the VGA console for the graphical checks below.
    let started = std::time::Instant::now();
    let t = mint(&admin, &system, "Serial").await;
    let url = t["WebSocketURL"].as_str().expect("url").to_owned();
    assert!(
        url.starts_with(&format!("{base}/consoles/{uuid}/serial?token=")),
        "{url}"
    );
    let (mut ws, _) = connect(&url, None, None).await.expect("serial upgrade");
    let seen = serial_exchange(&mut ws, "echo redfin-$((6*7))", "redfin-42").await;
    assert!(seen.contains("redfin-42"));
    serial_exchange(
        &mut ws,
        "for i in 1 2 3 4 5 6; do echo REDFIN CONSOLE TEST SCREEN LINE $i > /dev/tty0; done; echo drawn-$((1+1))",
        "drawn-2",
    )
    .await;
    let _ = ws.close(None).await;
    println!("serial exchange: {:?}", started.elapsed());
    // A serial token opens one session only.
    expect_refused(&url, "already used").await;

    // The same serial console over SSH.
    ssh_serial_console(&bmc, &admin, ssh_addr, &host_key, &uuid).await;

    // VNC: a minimal RFB client gets a full framebuffer through the proxy,
    // and the proxy chooses `binary` when it is offered.
    let started = std::time::Instant::now();
    let t = mint(&admin, &system, "KVMIP").await;
    let url = t["WebSocketURL"].as_str().expect("url").to_owned();
    let (ws, chosen) = connect(&url, Some("binary"), None).await.expect("VNC upgrade");
    assert_eq!(chosen.as_deref(), Some("binary"));
    let (w, h, lit) = rfb_full_frame(ws).await;
    println!(
        "RFB full frame {w}x{h}, {lit} non-zero pixels, in {:?}",
        started.elapsed()
    );
    assert!(w >= 320 && h >= 200, "{w}x{h}");
    assert!(lit > 0, "the guest's screen is all black");

    // Replayed token.
    expect_refused(&url, "already used").await;
    // Token of another system, used on this system's path.
    let foreign = mint(&admin, &format!("/redfish/v1/Systems/{other}"), "KVMIP").await;
    let token = foreign["Token"].as_str().expect("token");
    expect_refused(
        &format!("{base}/consoles/{uuid}/vnc?token={token}"),
        "another system",
    )
    .await;
    // A VNC token does not open the serial console either.
    let t = mint(&admin, &system, "KVMIP").await;
    let token = t["Token"].as_str().expect("token").to_owned();
    expect_refused(
        &format!("{base}/consoles/{uuid}/serial?token={token}"),
        "another system or console type",
    )
    .await;
    // Unknown and malformed tokens.
    expect_refused(
        &format!("{base}/consoles/{uuid}/vnc?token={}", "A".repeat(43)),
        "unknown",
    )
    .await;
    expect_refused(&format!("{base}/consoles/{uuid}/vnc"), "malformed").await;
    // Expired token (unused since it was minted above).
    tokio::time::sleep(Duration::from_secs(TOKEN_TTL_S + 1)).await;
    expect_refused(&format!("{base}/consoles/{uuid}/vnc?token={token}"), "expired").await;
    // A page of a foreign origin may not open a session at all.
    let t = mint(&admin, &system, "KVMIP").await;
    let err = match connect(
        t["WebSocketURL"].as_str().expect("url"),
        None,
        Some("http://evil.example"),
    )
    .await
    {
        Ok(_) => panic!("a foreign origin was let in"),
        Err(e) => e,
    };
    assert!(err.contains("403"), "{err}");

    // noVNC in headless Chromium, served by console-proxy itself.
    let started = std::time::Instant::now();
    let t = mint(&admin, &system, "KVMIP").await;
    let token = t["Token"].as_str().expect("token");
    let page = format!(
        "http://{}/vnc_lite.html?path=consoles/{uuid}/vnc%3Ftoken%3D{token}",
        proxy.addr
    );
    let png = repo().join("target/e2e-console-novnc.png");
    let (x, y, cw, ch) = novnc_screenshot(&page, &png).await;
    let stats = run(Command::new(repo().join("tests/e2e/png-stats.py"))
        .arg(&png)
        .args([x, y, cw, ch].map(|v| v.to_string())))
    .await;
    println!(
        "noVNC screenshot {} ({stats}) in {:?}",
        png.display(),
        started.elapsed()
    );
    let nonblack: usize = stats
        .split_whitespace()
        .find_map(|f| f.strip_prefix("nonblack="))
        .and_then(|n| n.parse().ok())
        .expect("stats");
    assert!(cw >= 320.0 && ch >= 200.0, "canvas {cw}x{ch}");
    assert!(nonblack > 500, "the noVNC canvas is blank: {stats}");

    // Limits: four sessions per system (MaxConcurrentSessions), the fifth
    // is refused; closing one frees its place. (Give the sessions above a
    // moment to be counted out.)
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let t = mint(&admin, &system, "KVMIP").await;
        let (mut ws, _) = connect(t["WebSocketURL"].as_str().expect("url"), None, None)
            .await
            .expect("upgrade");
        let first = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
        assert!(
            matches!(first, Ok(Some(Ok(Message::Binary(_))))),
            "the RFB greeting: {first:?}"
        );
        held.push(ws);
    }
    let t = mint(&admin, &system, "KVMIP").await;
    expect_refused(
        t["WebSocketURL"].as_str().expect("url"),
        "too many console sessions",
    )
    .await;
    let _ = held.pop().expect("held").close(None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = mint(&admin, &system, "KVMIP").await;
    let (ws, _) = connect(t["WebSocketURL"].as_str().expect("url"), Some("binary"), None)
        .await
        .expect("upgrade");
    held.push(ws);
    for mut ws in held {
        let _ = ws.close(None).await;
    }

    // Idle sessions are closed (a second proxy with a 2 s idle timeout).
    let idle_proxy = console_proxy::start(console_proxy::Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        bmcd_socket: socket.clone(),
        libvirt_uri: lv.uri.clone(),
        idle_timeout_s: 2,
        ..console_proxy::Config::default()
    })
    .await
    .expect("second console-proxy starts");
    let t = mint(&admin, &system, "KVMIP").await;
    let token = t["Token"].as_str().expect("token");
    let (mut ws, _) = connect(
        &format!("ws://{}/consoles/{uuid}/vnc?token={token}", idle_proxy.addr),
        None,
        None,
    )
    .await
    .expect("upgrade");
    expect_closed(&mut ws, "idle timeout", Duration::from_secs(10)).await;
    idle_proxy.stop().await;

    // SPICE: a guest with SPICE graphics; one token opens several channels
    // (three here), the fourth connection is refused.
    let spice_xml = std::fs::read_to_string(work.path().join("console-other.xml"))
        .expect("XML")
        .replace("<graphics type='vnc'", "<graphics type='spice'")
        .replace("<name>console-other</name>", "<name>console-spice</name>");
    let spice_xml = spice_xml
        .lines()
        .filter(|l| !l.contains("<mac address="))
        .collect::<Vec<_>>()
        .join("\n");
    let spice_file = work.path().join("console-spice.xml");
    std::fs::write(&spice_file, spice_xml).expect("write XML");
    lv.virsh(&["define", spice_file.to_str().expect("utf8")]).await;
    lv.virsh(&["start", "console-spice"]).await;
    let spice_uuid = lv.virsh(&["domuuid", "console-spice"]).await.trim().to_owned();
    let spice_system = format!("/redfish/v1/Systems/{spice_uuid}");
    let s = admin.get(&spice_system).await.json;
    assert_eq!(
        s["GraphicalConsole"]["ServiceEnabled"],
        json!(false),
        "no VNC: {s}"
    );
    assert_eq!(
        s["Actions"]["Oem"]["#Redfin.ConsoleToken"]["ConsoleType@Redfish.AllowableValues"],
        json!(["Spice", "Serial"])
    );
    let t = mint(&admin, &spice_system, "Spice").await;
    assert_eq!(t["Uses"], json!(3));
    let url = t["WebSocketURL"].as_str().expect("url").to_owned();
    let mut channels = Vec::new();
    for channel_type in [1u8, 2, 3] {
        let (ws, chosen) = connect(&url, Some("binary"), None).await.expect("SPICE upgrade");
        assert_eq!(chosen.as_deref(), Some("binary"));
        channels.push(spice_link(ws, channel_type).await);
    }
    expect_refused(&url, "already used").await;
    for mut ws in channels {
        let _ = ws.close(None).await;
    }

    // Disabling the account that minted a token ends its open session.
    let r = admin
        .post(
            "/redfish/v1/AccountService/Accounts",
            json!({"UserName": "operator", "Password": "operator-password-1", "RoleId": "Operator"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let account = r.header("location").expect("location").to_owned();
    let operator = bmc.client().basic("operator", "operator-password-1");
    let t = mint(&operator, &system, "KVMIP").await;
    let (mut ws, _) = connect(t["WebSocketURL"].as_str().expect("url"), None, None)
        .await
        .expect("upgrade");
    // The RFB greeting shows that the session is open.
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
    assert!(
        matches!(first, Ok(Some(Ok(Message::Binary(_))))),
        "the RFB greeting: {first:?}"
    );
    let r = admin.patch(&account, json!({"Enabled": false})).await;
    assert!(r.status.is_success(), "{:?}", r.json);
    let started = std::time::Instant::now();
    expect_closed(&mut ws, "BMC ended the console session", Duration::from_secs(10)).await;
    println!(
        "session of a disabled account closed after {:?}",
        started.elapsed()
    );

    // Sessions end when their time is up (SESSION_MAX_S after minting).
    let t = mint(&admin, &system, "KVMIP").await;
    let (mut ws, _) = connect(t["WebSocketURL"].as_str().expect("url"), None, None)
        .await
        .expect("upgrade");
    let started = std::time::Instant::now();
    expect_closed(&mut ws, "time limit", Duration::from_secs(SESSION_MAX_S + 5)).await;
    println!("session closed at its time limit after {:?}", started.elapsed());

    // The audit log has the opens and closes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let entries = admin
            .get("/redfish/v1/Managers/BMC/LogServices/AuditLog/Entries")
            .await
            .json;
        let text = entries.to_string();
        if text.contains("opened KVMIP console")
            && text.contains("closed KVMIP console")
            && text.contains("opened Serial console")
            && text.contains("closed Serial console")
            && text.contains("opened Spice console")
            && text.contains("session time limit")
            && text.contains("may no longer open consoles")
            && text.contains("opened Serial console over SSH")
            && text.contains("closed Serial console over SSH")
            && text.contains("SSH serial console login answered 401")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "audit entries missing: {text}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    proxy.stop().await;
    bmc.stop().await;
    drop(lv);
}

/// The SSH client's side: accepts exactly the host key console-proxy made.
struct SshClient {
    host_key: russh::keys::PublicKey,
}

impl russh::client::Handler for SshClient {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(
            matches!(key, russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } if key.key_data() == self.host_key.key_data()),
        )
    }
}

type SshChannel = russh::Channel<russh::client::Msg>;

/// Connects and logs in with a password: the session, or `None` when the
/// login is refused.
async fn ssh_login(
    addr: std::net::SocketAddr,
    host_key: &Path,
    user: &str,
    password: &str,
) -> Option<russh::client::Handle<SshClient>> {
    let key = russh::keys::load_secret_key(host_key, None).expect("the proxy's host key");
    let client = SshClient {
        host_key: key.public_key().clone(),
    };
    let config = std::sync::Arc::new(russh::client::Config::default());
    let mut session = russh::client::connect(config, addr, client)
        .await
        .expect("SSH connects (and the host key is the persisted one)");
    let auth = session
        .authenticate_password(user, password)
        .await
        .expect("the password exchange");
    auth.success().then_some(session)
}

/// Reads the channel until `expect` shows up; returns what was read.
async fn ssh_read_until(channel: &mut SshChannel, expect: &str) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !seen.contains(expect) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let msg = tokio::time::timeout(left, channel.wait())
            .await
            .unwrap_or_else(|_| panic!("'{expect}' not seen; got: {seen}"));
        match msg {
            Some(russh::ChannelMsg::Data { data }) => seen.push_str(&String::from_utf8_lossy(&data)),
            Some(russh::ChannelMsg::Eof | russh::ChannelMsg::Close) | None => {
                panic!("channel closed before '{expect}'; got: {seen}")
            }
            Some(_) => {}
        }
    }
    seen
}

/// Reads until the channel ends; returns what was read and the exit status.
async fn ssh_read_to_end(channel: &mut SshChannel) -> (String, Option<u32>) {
    let mut seen = String::new();
    let mut status = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let msg = tokio::time::timeout(left, channel.wait())
            .await
            .unwrap_or_else(|_| panic!("the channel did not end; got: {seen}"));
        match msg {
            Some(russh::ChannelMsg::Data { data }) => seen.push_str(&String::from_utf8_lossy(&data)),
            Some(russh::ChannelMsg::ExitStatus { exit_status }) => status = Some(exit_status),
            Some(russh::ChannelMsg::Close) | None => return (seen, status),
            Some(_) => {}
        }
    }
}

/// The SSH serial console, end to end: a bmcd account logs in, opens the
/// guest's serial console from the prompt and over an exec request, types
/// into the guest's shell and reads its output, leaves with `~.`; a wrong
/// password, a ReadOnly account and an unknown system are refused.
async fn ssh_serial_console(
    bmc: &TestBmc,
    admin: &Client,
    addr: std::net::SocketAddr,
    host_key: &Path,
    uuid: &str,
) {
    let started = std::time::Instant::now();
    // The system and its manager advertise SSH.
    let s = admin.get(&format!("/redfish/v1/Systems/{uuid}")).await.json;
    assert_eq!(
        s["SerialConsole"]["SSH"],
        json!({"ServiceEnabled": true, "Port": addr.port(), "SharedWithManagerCLI": false,
               "HotKeySequenceDisplay": "Press ~. to exit console"}),
        "{s}"
    );
    let m = admin.get(&format!("/redfish/v1/Managers/{uuid}")).await.json;
    assert_eq!(m["SerialConsole"]["ConnectTypesSupported"], json!(["SSH", "Oem"]));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(host_key).expect("host key").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    // A wrong password: the SSH login fails.
    assert!(
        ssh_login(addr, host_key, redfin_tests::ADMIN, "not-the-password")
            .await
            .is_none(),
        "a wrong password was let in"
    );

    // An Operator account (ConfigureComponents, as the token action wants).
    let r = admin
        .post(
            "/redfish/v1/AccountService/Accounts",
            json!({"UserName": "sshop", "Password": "sshop-password-1", "RoleId": "Operator"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let session = ssh_login(addr, host_key, "sshop", "sshop-password-1")
        .await
        .expect("the operator logs in");
    let mut ch = session.channel_open_session().await.expect("a channel");
    ch.request_pty(false, "xterm", 80, 24, 0, 0, &[])
        .await
        .expect("pty");
    ch.request_shell(true).await.expect("shell");
    ssh_read_until(&mut ch, "redfin-> ").await;
    // An unknown system: a clear message, and the prompt again.
    ch.data_bytes(
        &b"console no-such-system
"[..],
    )
    .await
    .expect("send");
    let seen = ssh_read_until(&mut ch, "redfin-> ").await;
    assert!(seen.contains("no such system"), "{seen}");
    ch.data_bytes(
        &b"frobnicate
"[..],
    )
    .await
    .expect("send");
    let seen = ssh_read_until(&mut ch, "redfin-> ").await;
    assert!(seen.contains("unknown command"), "{seen}");
    // The guest's serial console, by UUID: type into its shell, read it.
    // (Give the WebSocket session above a moment to let go of the console.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    ch.data_bytes(
        format!(
            "console {uuid}
"
        )
        .into_bytes(),
    )
    .await
    .expect("send");
    ssh_read_until(&mut ch, "Press ~. on a new line to exit").await;
    ch.data_bytes(
        &b"
"[..],
    )
    .await
    .expect("send");
    tokio::time::sleep(Duration::from_millis(300)).await;
    ch.data_bytes(
        &b"echo REDFIN-GUEST-SSH-$((6*7))
"[..],
    )
    .await
    .expect("send");
    ssh_read_until(&mut ch, "REDFIN-GUEST-SSH-42").await;
    // `~.` on a new line ends the console session: back at the prompt.
    ch.data_bytes(
        &b"
~."[..],
    )
    .await
    .expect("send");
    let seen = ssh_read_until(&mut ch, "redfin-> ").await;
    assert!(seen.contains("console session ended"), "{seen}");
    ch.data_bytes(
        &b"exit
"[..],
    )
    .await
    .expect("send");
    let (_, status) = ssh_read_to_end(&mut ch).await;
    assert_eq!(status, Some(0));

    // `ssh user@bmc console SYSTEM` as an exec request, by domain name
    // (the `vsp` alias); the console ends with `~.` and the command with it.
    let mut ch = session.channel_open_session().await.expect("a channel");
    ch.exec(true, "vsp console-guest").await.expect("exec");
    ssh_read_until(&mut ch, "Press ~. on a new line to exit").await;
    ch.data_bytes(
        &b"
echo REDFIN-GUEST-EXEC-$((2*3))
"[..],
    )
    .await
    .expect("send");
    ssh_read_until(&mut ch, "REDFIN-GUEST-EXEC-6").await;
    ch.data_bytes(
        &b"
~."[..],
    )
    .await
    .expect("send");
    let (seen, status) = ssh_read_to_end(&mut ch).await;
    assert!(seen.contains("console session ended"), "{seen}");
    assert_eq!(status, Some(0));
    // An exec request for a system that does not exist.
    let mut ch = session.channel_open_session().await.expect("a channel");
    ch.exec(true, "console 00000000-0000-0000-0000-000000000000")
        .await
        .expect("exec");
    let (seen, status) = ssh_read_to_end(&mut ch).await;
    assert!(seen.contains("no such system"), "{seen}");
    assert_eq!(status, Some(1));
    let _ = session.disconnect(russh::Disconnect::ByApplication, "", "").await;

    // A ReadOnly account logs in but may not open a console.
    let viewer = ssh_login(addr, host_key, "viewer", "viewer-password-1")
        .await
        .expect("the viewer logs in");
    let mut ch = viewer.channel_open_session().await.expect("a channel");
    ch.exec(true, format!("console {uuid}")).await.expect("exec");
    let (seen, status) = ssh_read_to_end(&mut ch).await;
    assert!(seen.contains("may not open consoles"), "{seen}");
    assert_eq!(status, Some(1));
    let _ = viewer.disconnect(russh::Disconnect::ByApplication, "", "").await;
    let _ = bmc;
    println!("SSH serial console checks: {:?}", started.elapsed());
}

/// Accepts any server certificate (the proxy's is self-signed here).
#[derive(Debug)]
struct AnyCert;

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// console-proxy with a certificate speaks wss:// and https:// (static
/// files), refuses a missing token, and reports an unreachable bmcd as
/// "console service unavailable" (1011). Needs no libvirt.
#[tokio::test]
async fn wss_static_files_and_unreachable_bmcd() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let work = TempDir::new("console-tls");
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        let (cert, key) = (work.path().join("proxy.crt"), work.path().join("proxy.key"));
        std::fs::write(&cert, ck.cert.pem()).expect("write");
        std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write");
        let web = work.path().join("web");
        std::fs::create_dir_all(&web).expect("dir");
        std::fs::write(web.join("vnc.html"), "<html>console</html>").expect("write");
        let proxy = console_proxy::start(console_proxy::Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            bmcd_socket: work.path().join("no-such.sock"),
            cert: Some(cert),
            key: Some(key),
            web_root: Some(web),
            ..console_proxy::Config::default()
        })
        .await
        .expect("console-proxy starts");
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(AnyCert))
            .with_no_client_auth(),
        ));
        let open = || async {
            let tcp = TcpStream::connect(proxy.addr).await.expect("connect");
            tls.connect(
                rustls::pki_types::ServerName::try_from("localhost").expect("name"),
                tcp,
            )
            .await
            .expect("TLS handshake")
        };

        // A static file over https.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = open().await;
        s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut page = Vec::new();
        let _ = s.read_to_end(&mut page).await;
        let page = String::from_utf8_lossy(&page);
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        assert!(page.contains("<html>console</html>"), "{page}");

        // WebSockets over wss: no token; a token but no bmcd to redeem it.
        let base = format!(
            "wss://localhost:{}/consoles/00000000-0000-4000-8000-000000000001/vnc",
            proxy.addr.port()
        );
        for (url, code, reason) in [
            (base.clone(), CloseCode::Policy, "malformed"),
            (
                format!("{base}?token={}", "B".repeat(43)),
                CloseCode::Error,
                "unavailable",
            ),
        ] {
            let req = url.as_str().into_client_request().expect("request");
            let (mut ws, _) = tokio_tungstenite::client_async(req, open().await)
                .await
                .expect("wss upgrade");
            match tokio::time::timeout(Duration::from_secs(15), ws.next()).await {
                Ok(Some(Ok(Message::Close(Some(frame))))) => {
                    assert_eq!(frame.code, code, "{frame:?}");
                    assert!(frame.reason.as_str().contains(reason), "{frame:?}");
                }
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
        proxy.stop().await;
    })
    .await
    .expect("within 60 s");
}
