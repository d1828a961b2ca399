//! The web UI (docs/webui.md) in headless Chromium: the fast tier against the
//! libvirt test driver (log in, systems, power, virtual media with its task,
//! event log, accounts, a refused login), and the end-to-end tier against a
//! private libvirtd with a tiny TCG guest (power on, the noVNC console through
//! console-proxy showing pixels, virtual media). Screenshots go to
//! target/webui-artifacts/.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use redfin_tests::browser::{Chromium, Tab};
use redfin_tests::e2e::{cache, repo, run, Libvirtd};
use redfin_tests::{test_node, tiny_iso, ImageServer, ServedFile, TempDir, TestBmc, ADMIN, ADMIN_PASSWORD};
use serde_json::json;
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(20);

fn artefact(name: &str) -> PathBuf {
    repo().join("target/webui-artifacts").join(name)
}

/// `s` as a JavaScript string literal.
fn js(s: &str) -> String {
    serde_json::to_string(s).expect("string")
}

async fn shot(c: &mut Chromium, tab: &Tab, name: &str) {
    let png = artefact(name);
    c.screenshot(tab, &png).await;
    println!("screenshot {}", png.display());
}

/// Fills the login form and submits it.
async fn log_in(c: &mut Chromium, tab: &Tab, user: &str, password: &str) {
    c.wait_for(tab, "!!document.querySelector('#login')", WAIT, "the login form")
        .await;
    c.eval(
        tab,
        &format!(
            "document.querySelector('#login [name=user]').value = {}; \
             document.querySelector('#login [name=password]').value = {}; \
             document.querySelector('#login button').click(); true",
            js(user),
            js(password)
        ),
    )
    .await;
}

/// Waits for the message line to start with `prefix`; its text.
async fn wait_msg(c: &mut Chromium, tab: &Tab, prefix: &str) -> String {
    let v = c
        .wait_for(
            tab,
            &format!(
                "(() => {{ const t = document.querySelector('#msg').textContent; \
                 return t.startsWith({}) && !t.endsWith('…') ? t : ''; }})()",
                js(prefix)
            ),
            WAIT,
            &format!("the message '{prefix}'"),
        )
        .await;
    v.as_str().unwrap_or("").to_owned()
}

/// Waits for the system page and its power state.
async fn wait_power(c: &mut Chromium, tab: &Tab, state: &str) {
    c.wait_for(
        tab,
        &format!(
            "(document.querySelector('#power') || {{}}).textContent === {}",
            js(state)
        ),
        WAIT,
        &format!("power state {state}"),
    )
    .await;
}

/// Inserts `url` into the system page's CD slot and waits for its task to
/// complete; returns the task line the page shows.
async fn insert_media(c: &mut Chromium, tab: &Tab, url: &str, within: Duration) -> String {
    c.wait_for(
        tab,
        "!!document.querySelector('[data-slot=Cd] .insert')",
        WAIT,
        "the CD slot",
    )
    .await;
    c.eval(
        tab,
        &format!(
            "document.querySelector('[data-slot=Cd] .media-url').value = {}; \
             document.querySelector('[data-slot=Cd] .insert').click(); true",
            js(url)
        ),
    )
    .await;
    let task = c
        .wait_for(
            tab,
            "(() => { const t = document.querySelector('[data-slot=Cd] .task'); \
             return t && !/^(New|Running|Pending)/.test(t.textContent) ? t.textContent : ''; })()",
            within,
            "the insert task ends",
        )
        .await;
    let task = task.as_str().unwrap_or("").to_owned();
    assert!(task.starts_with("Completed"), "the insert task: {task}");
    c.wait_for(
        tab,
        &format!(
            "document.querySelector('[data-slot=Cd] .image').textContent === {}",
            js(url)
        ),
        WAIT,
        "the inserted image shows",
    )
    .await;
    task
}

#[tokio::test]
async fn static_files_headers_and_redirect() {
    let dir = TempDir::new("webui-files");
    let (uri, _) = test_node(dir.path(), 1);
    let bmc = TestBmc::start(&dir.path().join("state"), &uri).await;
    let anon = bmc.client();
    let r = anon.get("/").await;
    assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.header("location"), Some("/ui/"));
    let gz = anon.clone().header("accept-encoding", "gzip, deflate");
    for (path, ty) in [
        ("/ui/", "text/html"),
        ("/ui", "text/html"),
        ("/ui/index.html", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
    ] {
        let r = gz.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(
            r.header("content-type").is_some_and(|t| t.starts_with(ty)),
            "{path}"
        );
        assert_eq!(r.header("content-encoding"), Some("gzip"), "{path}");
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        let csp = r.header("content-security-policy").expect("CSP");
        assert!(
            csp.contains("default-src 'self'") && csp.contains("connect-src 'self' ws: wss:"),
            "{csp}"
        );
        assert!(r.body.starts_with(&[0x1f, 0x8b]), "{path} is gzip");
        let etag = r.header("etag").expect("etag").to_owned();
        assert!(etag.starts_with('"'), "a strong ETag: {etag}");
        let again = gz.clone().header("if-none-match", &etag).get(path).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.body.is_empty());
    }
    // No gzip, no file (it is embedded compressed only).
    let r = anon.get("/ui/app.js").await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
    let r = anon
        .clone()
        .header("accept-encoding", "gzip;q=0")
        .get("/ui/app.js")
        .await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
    // Unknown files.
    assert_eq!(gz.get("/ui/nope.js").await.status, StatusCode::NOT_FOUND);
    // Only the embedded files: nothing else is reachable through /ui/.
    assert_eq!(gz.get("/ui/%2e%2e%2fapp.js").await.status, StatusCode::NOT_FOUND);
    assert_eq!(gz.get("/ui/app.js/x").await.status, StatusCode::UNAUTHORIZED);
    // Other methods: anonymous callers learn nothing, others get 405.
    let post = |c: redfin_tests::Client| async move {
        c.raw(
            Method::POST,
            "/ui/app.js",
            Some(Bytes::from_static(b"{}")),
            Some("application/json"),
        )
        .await
        .status
    };
    assert_eq!(post(anon.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(post(bmc.admin()).await, StatusCode::METHOD_NOT_ALLOWED);
    let r = bmc.admin().raw(Method::DELETE, "/ui/app.js", None, None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    bmc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webui_in_headless_chromium_against_the_test_driver() {
    tokio::time::timeout(Duration::from_secs(240), test_driver_scenario())
        .await
        .expect("the web UI scenario ends within 240 s");
}

async fn test_driver_scenario() {
    let dir = TempDir::new("webui");
    let (uri, doms) = test_node(dir.path(), 2);
    let bmc = TestBmc::start(&dir.path().join("state"), &uri).await;
    let images = ImageServer::start(vec![ServedFile {
        path: "/tiny.iso".to_owned(),
        body: tiny_iso(0x10000),
        credentials: None,
    }])
    .await;
    let image_url = images.url("/tiny.iso");
    let mut c = Chromium::start_with(&["--ignore-certificate-errors"]).await;
    let tab = c.open(&format!("https://{}/", bmc.addr)).await;

    // A bad password: the Redfish error message shows.
    log_in(&mut c, &tab, ADMIN, "not-the-password").await;
    let msg = c
        .wait_for(
            &tab,
            "(() => { const m = document.querySelector('#msg.err'); return m ? m.textContent : ''; })()",
            WAIT,
            "the login error",
        )
        .await;
    let msg = msg.as_str().unwrap_or("").to_owned();
    assert!(msg.starts_with("Login failed: "), "{msg}");
    assert!(
        msg.len() > "Login failed: ".len() + 10,
        "a Redfish message: {msg}"
    );
    shot(&mut c, &tab, "login-refused.png").await;
    assert_eq!(c.eval(&tab, "sessionStorage.tok || null").await, json!(null));

    // Log in: the systems list.
    log_in(&mut c, &tab, ADMIN, ADMIN_PASSWORD).await;
    let n = c
        .wait_for(
            &tab,
            "document.querySelectorAll('tr[data-id]').length",
            WAIT,
            "the systems list",
        )
        .await;
    assert_eq!(n, json!(2));
    let token = c.eval(&tab, "sessionStorage.tok").await;
    assert!(token.as_str().is_some_and(|t| !t.is_empty()), "{token}");
    assert_eq!(c.eval(&tab, "document.cookie").await, json!(""), "no cookies");
    let off = &doms[1];
    assert!(!off.running);
    let power = c
        .eval(
            &tab,
            &format!(
                "document.querySelector('tr[data-id={}] .power').textContent",
                js(&off.uuid)
            ),
        )
        .await;
    assert_eq!(power, json!("Off"));
    shot(&mut c, &tab, "systems.png").await;

    // Power the stopped system on and off again.
    c.eval(
        &tab,
        &format!(
            "document.querySelector('tr[data-id={}] a').click(); true",
            js(&off.uuid)
        ),
    )
    .await;
    wait_power(&mut c, &tab, "Off").await;
    c.eval(&tab, "document.querySelector('[data-reset=On]').click(); true")
        .await;
    wait_power(&mut c, &tab, "On").await;
    let r = bmc
        .admin()
        .get(&format!("/redfish/v1/Systems/{}", off.uuid))
        .await;
    assert_eq!(r.json["PowerState"], "On");
    shot(&mut c, &tab, "system-on.png").await;
    c.eval(
        &tab,
        "document.querySelector('[data-reset=ForceOff]').click(); true",
    )
    .await;
    wait_power(&mut c, &tab, "Off").await;

    // Virtual media: insert, watch the task finish.
    let task = insert_media(&mut c, &tab, &image_url, WAIT).await;
    println!("insert task: {task}");
    shot(&mut c, &tab, "media-inserted.png").await;
    let r = bmc
        .admin()
        .get(&format!("/redfish/v1/Systems/{}/VirtualMedia/Cd", off.uuid))
        .await;
    assert_eq!(r.json["Inserted"], json!(true), "{:?}", r.json);

    // Boot override, through the page.
    c.eval(
        &tab,
        "document.querySelector('#boot-target').value = 'Cd'; \
         document.querySelector('#boot-enabled').value = 'Once'; \
         document.querySelector('#boot-apply').click(); true",
    )
    .await;
    wait_msg(&mut c, &tab, "Boot override: done").await;
    let r = bmc
        .admin()
        .get(&format!("/redfish/v1/Systems/{}", off.uuid))
        .await;
    assert_eq!(
        r.json["Boot"]["BootSourceOverrideTarget"], "Cd",
        "{}",
        r.json["Boot"]
    );
    assert_eq!(r.json["Boot"]["BootSourceOverrideEnabled"], "Once");

    // BIOS settings: a refused change shows the Redfish message, a good one
    // becomes pending.
    c.eval(
        &tab,
        "document.querySelector('#bios [name=SecureBoot]').value = 'Enabled'; \
         document.querySelector('#bios-save').click(); true",
    )
    .await;
    let err = wait_msg(&mut c, &tab, "BIOS settings: ").await;
    assert!(
        err.len() > "BIOS settings: ".len() + 10 && !err.ends_with("done"),
        "{err}"
    );
    assert_eq!(
        c.eval(&tab, "document.querySelector('#msg').className").await,
        json!("err")
    );
    c.eval(
        &tab,
        "document.querySelector('#bios [name=SecureBoot]').value = 'Disabled'; \
         document.querySelector('#bios [name=SystemSerialNumber]').value = 'SN-WEBUI'; \
         document.querySelector('#bios-save').click(); true",
    )
    .await;
    wait_msg(&mut c, &tab, "BIOS settings: done").await;
    let r = bmc
        .admin()
        .get(&format!("/redfish/v1/Systems/{}/Bios/Settings", off.uuid))
        .await;
    assert_eq!(
        r.json["Attributes"]["SystemSerialNumber"], "SN-WEBUI",
        "{}",
        r.json
    );

    // Firmware: no [firmware] section in this configuration.
    c.eval(&tab, "location.hash = '#/update'; true").await;
    c.wait_for(
        &tab,
        "/not enabled/.test((document.querySelector('#update') || {}).textContent || '')",
        WAIT,
        "the firmware page",
    )
    .await;

    // The event and audit logs.
    c.eval(&tab, "location.hash = '#/logs'; true").await;
    let logs = c
        .wait_for(
            &tab,
            "document.querySelectorAll('section.log').length",
            WAIT,
            "the logs",
        )
        .await;
    assert!(logs.as_u64().unwrap_or(0) >= 1, "{logs}");
    let text = c.eval(&tab, "document.querySelector('#main').textContent").await;
    let text = text.as_str().unwrap_or("");
    assert!(text.contains("Created") && text.contains("Severity"), "{text}");
    // The audit log has the page's own requests.
    assert!(text.contains("/Bios/Settings answered 200"), "{text}");
    shot(&mut c, &tab, "logs.png").await;

    // Accounts: add one, then delete it.
    c.eval(&tab, "location.hash = '#/accounts'; true").await;
    c.wait_for(
        &tab,
        "!!document.querySelector('#add-user')",
        WAIT,
        "the accounts page",
    )
    .await;
    c.eval(
        &tab,
        "document.querySelector('#new-user').value = 'webui-op'; \
         document.querySelector('#new-password').value = 'webui-password-1'; \
         document.querySelector('#new-role').value = 'Operator'; \
         document.querySelector('#add-user').click(); true",
    )
    .await;
    c.wait_for(
        &tab,
        "!!document.querySelector('tr[data-user=webui-op]')",
        WAIT,
        "the new account",
    )
    .await;
    shot(&mut c, &tab, "accounts.png").await;
    let r = bmc.admin().get("/redfish/v1/AccountService/Accounts").await;
    let count_with = r.json["Members"].as_array().map(Vec::len).unwrap_or(0);
    c.eval(
        &tab,
        "document.querySelector('tr[data-user=webui-op] .delete').click(); true",
    )
    .await;
    c.wait_for(
        &tab,
        "!document.querySelector('tr[data-user=webui-op]') && !!document.querySelector('#add-user')",
        WAIT,
        "the account gone",
    )
    .await;
    let r = bmc.admin().get("/redfish/v1/AccountService/Accounts").await;
    assert_eq!(
        r.json["Members"].as_array().map(Vec::len).unwrap_or(0),
        count_with - 1
    );

    // Log out: the session is gone on the server too.
    let sessions = bmc.admin().get("/redfish/v1/SessionService/Sessions").await;
    let before = sessions.json["Members"].as_array().map(Vec::len).unwrap_or(0);
    c.eval(&tab, "document.querySelector('#logout').click(); true")
        .await;
    c.wait_for(
        &tab,
        "!!document.querySelector('#login')",
        WAIT,
        "the login form after logout",
    )
    .await;
    let sessions = bmc.admin().get("/redfish/v1/SessionService/Sessions").await;
    assert_eq!(
        sessions.json["Members"].as_array().map(Vec::len).unwrap_or(0),
        before - 1
    );
    assert_eq!(c.eval(&tab, "sessionStorage.tok || null").await, json!(null));

    // The same UI on a per-VM endpoint with the iDRAC persona: the vendor's
    // theme, and only that VM.
    let r = bmc
        .admin()
        .post(
            "/redfish/v1/Managers/BMC/Oem/Redfin/BmcEndpoints",
            json!({"SystemId": doms[0].uuid, "Persona": "idrac9", "Address": "127.0.0.1:0",
                   "UserName": "drac", "Password": "drac-password-1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let at = r.json["ListeningOn"].as_str().expect("listening").to_owned();
    let drac = c.open(&format!("https://{at}/")).await;
    let brand = c
        .wait_for(
            &drac,
            "document.body.classList.contains('dell') && document.querySelector('#brand').textContent",
            WAIT,
            "the iDRAC theme",
        )
        .await;
    assert!(brand.as_str().is_some_and(|b| b.starts_with("iDRAC")), "{brand}");
    log_in(&mut c, &drac, "drac", "drac-password-1").await;
    let n = c
        .wait_for(
            &drac,
            "document.querySelectorAll('tr[data-id]').length",
            WAIT,
            "the endpoint's system",
        )
        .await;
    assert_eq!(n, json!(1));
    shot(&mut c, &drac, "persona-idrac.png").await;
    c.stop().await;
    bmc.stop().await;
}

/// Runs png-stats.py over the rectangle; the count of non-black pixels.
async fn nonblack(png: &Path, rect: [f64; 4]) -> usize {
    let stats = run(Command::new(repo().join("tests/e2e/png-stats.py"))
        .arg(png)
        .args(rect.map(|v| v.to_string())))
    .await;
    println!("{} {stats}", png.display());
    stats
        .split_whitespace()
        .find_map(|f| f.strip_prefix("nonblack="))
        .and_then(|n| n.parse().ok())
        .expect("stats")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webui_end_to_end_with_a_tcg_guest() {
    tokio::time::timeout(Duration::from_secs(300), e2e_scenario())
        .await
        .expect("the end-to-end web UI scenario ends within 300 s");
}

async fn e2e_scenario() {
    run(Command::new(repo().join("tests/e2e/build-guest.sh")).arg(cache())).await;
    let work = TempDir::new("webui-e2e");
    let lv = Libvirtd::start(&work.path().join("libvirtd")).await;
    let uuid = lv.define(work.path(), "webui-guest").await;
    let socket = work.path().join("console.sock");
    // bmcd's port, chosen first: the page's origin, which console-proxy must
    // let open the serial console's WebSocket.
    let bmcd_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let proxy = console_proxy::start(console_proxy::Config {
        allowed_origins: vec![format!("https://{bmcd_addr}")],
        listen: "127.0.0.1:0".parse().expect("addr"),
        bmcd_socket: socket.clone(),
        libvirt_uri: lv.uri.clone(),
        web_root: Some(PathBuf::from("/usr/share/novnc")),
        idle_timeout_s: 60,
        ..console_proxy::Config::default()
    })
    .await
    .expect("console-proxy starts");
    let mut config = TestBmc::config(&work.path().join("state"), &lv.uri);
    config.listen = bmcd_addr;
    config.console.socket = Some(socket.clone());
    config.console.url = format!("ws://{}", proxy.addr);
    let bmc = TestBmc::start_with(config).await;
    let images = ImageServer::start(vec![ServedFile {
        path: "/tiny.iso".to_owned(),
        body: tiny_iso(0x10000),
        credentials: None,
    }])
    .await;

    let mut c = Chromium::start_with(&["--ignore-certificate-errors"]).await;
    let tab = c.open(&format!("https://{}/ui/", bmc.addr)).await;
    log_in(&mut c, &tab, ADMIN, ADMIN_PASSWORD).await;
    c.wait_for(
        &tab,
        "document.querySelectorAll('tr[data-id]').length",
        WAIT,
        "the systems list",
    )
    .await;
    c.eval(
        &tab,
        &format!("location.hash = '#/system/redfish/v1/Systems/{uuid}'; true"),
    )
    .await;
    wait_power(&mut c, &tab, "Off").await;
    c.eval(&tab, "document.querySelector('[data-reset=On]').click(); true")
        .await;
    wait_power(&mut c, &tab, "On").await;
    let serial_log = work.path().join("webui-guest-serial.log");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while !String::from_utf8_lossy(&std::fs::read(&serial_log).unwrap_or_default())
        .contains("REDFIN-GUEST-BOOTED")
    {
        assert!(tokio::time::Instant::now() < deadline, "the guest did not boot");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    shot(&mut c, &tab, "e2e-system-on.png").await;

    // Virtual media on the real guest: the task finishes.
    let task = insert_media(&mut c, &tab, &images.url("/tiny.iso"), Duration::from_secs(60)).await;
    println!("e2e insert task: {task}");
    shot(&mut c, &tab, "e2e-media-inserted.png").await;

    // The serial console in the page's own terminal: type a command, see
    // the guest's answer.
    c.eval(&tab, "document.querySelector('#serial').click(); true")
        .await;
    c.wait_for(&tab, "!!document.querySelector('#term')", WAIT, "the terminal")
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.eval(&tab, "document.querySelector('#term').focus(); true")
        .await;
    for ch in "\recho webui-$((6*7))\r".chars() {
        let key = if ch == '\r' {
            json!({"type": "keyDown", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13})
        } else {
            json!({"type": "keyDown", "key": ch.to_string(), "text": ch.to_string()})
        };
        c.call("Input.dispatchKeyEvent", key, Some(&tab.session)).await;
    }
    let term = c
        .wait_for(
            &tab,
            "(() => { const t = document.querySelector('#term').textContent; \
             return /webui-42/.test(t.replace('webui-$((6*7))', '')) ? t : ''; })()",
            WAIT,
            "the guest's answer in the serial terminal",
        )
        .await;
    println!(
        "serial terminal: {} characters",
        term.as_str().map(str::len).unwrap_or(0)
    );
    shot(&mut c, &tab, "e2e-serial.png").await;

    // The graphical console: the page mints a token and links to noVNC on
    // console-proxy's origin; follow the link as a click would.
    c.eval(&tab, "document.querySelector('#kvm').click(); true").await;
    let link = c
        .wait_for(
            &tab,
            "(document.querySelector('#vnc-link') || {}).href || ''",
            WAIT,
            "the console link",
        )
        .await;
    let link = link.as_str().expect("href").to_owned();
    assert!(
        link.starts_with(&format!("http://{}/vnc_lite.html?path=", proxy.addr)),
        "{link}"
    );
    let vnc = c.open(&link).await;
    c.wait_for(
        &vnc,
        "((document.getElementById('status') || {}).textContent || '').startsWith('Connected')",
        Duration::from_secs(40),
        "noVNC connects",
    )
    .await;
    // Let the first full frame arrive and be drawn.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rect = c
        .eval(
            &vnc,
            "(() => { const r = document.querySelector('#screen canvas').getBoundingClientRect(); \
             return [r.x, r.y, r.width, r.height]; })()",
        )
        .await;
    let n = |i: usize| rect[i].as_f64().expect("number");
    let png = artefact("e2e-console-novnc.png");
    c.screenshot(&vnc, &png).await;
    let lit = nonblack(&png, [n(0), n(1), n(2), n(3)]).await;
    assert!(n(2) >= 320.0 && n(3) >= 200.0, "canvas {rect}");
    assert!(lit > 500, "the noVNC canvas is blank ({lit} non-black pixels)");

    c.stop().await;
    bmc.stop().await;
    proxy.stop().await;
    drop(lv);
}
