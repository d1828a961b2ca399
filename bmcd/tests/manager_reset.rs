//! The BMC's own `Manager.Reset`, on the real binary: bmcd answers, stops
//! cleanly and runs again in the same process, on the same address, with its
//! state kept.

use std::io::{BufRead, BufReader, Lines};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const PASSWORD: &str = "reset-pass-1";

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn curl(url: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sk", "--max-time", "10", "-w", "\n%{http_code}", "-u"])
        .arg(format!("admin:{PASSWORD}"))
        .args(["-X", method])
        .arg(format!("{url}{path}"));
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "-d", b]);
    }
    let out = String::from_utf8_lossy(&cmd.output().expect("curl runs").stdout).into_owned();
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// Lines bmcd prints, read on a thread so that waits are bounded.
fn lines_of(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let lines: Lines<BufReader<ChildStdout>> = BufReader::new(stdout).lines();
        for line in lines.map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_line(rx: &mpsc::Receiver<String>, prefix: &str) -> String {
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("bmcd printed no line starting with '{prefix}' in 30 s"));
        if line.starts_with(prefix) {
            return line;
        }
    }
}

struct Bmcd(Child);

impl Drop for Bmcd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(state: &Path, port: u16) -> (Bmcd, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bmcd"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log",
            "warn",
            "--libvirt-uri",
            "test:///default",
        ])
        .arg("--state-dir")
        .arg(state)
        .env("BMCD_ADMIN_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("bmcd starts");
    let rx = lines_of(child.stdout.take().expect("stdout"));
    (Bmcd(child), rx)
}

#[test]
fn the_bmc_resets_itself_in_place_and_keeps_its_state() {
    let dir = std::env::temp_dir().join(format!("redfin-manager-reset-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let port = free_port();
    let (mut bmcd, lines) = start(&dir.join("state"), port);
    let ready = wait_line(&lines, "bmcd ready on ");
    let url = ready.trim_start_matches("bmcd ready on ").to_owned();
    assert_eq!(url, format!("https://127.0.0.1:{port}"));

    // The action is advertised with the reset types it takes.
    let (code, body) = curl(&url, "GET", "/redfish/v1/Managers/BMC", None);
    assert_eq!(code, 200, "{body}");
    let manager: serde_json::Value = serde_json::from_str(&body).expect("json");
    let action = &manager["Actions"]["#Manager.Reset"];
    assert_eq!(action["target"], "/redfish/v1/Managers/BMC/Actions/Manager.Reset");
    assert_eq!(
        action["ResetType@Redfish.AllowableValues"],
        serde_json::json!(["GracefulRestart", "ForceRestart"])
    );

    // Something to keep: an account made before the reset.
    let (code, body) = curl(
        &url,
        "POST",
        "/redfish/v1/AccountService/Accounts",
        Some(r#"{"UserName":"keeper","Password":"keeper-pass-1","RoleId":"ReadOnly"}"#),
    );
    assert_eq!(code, 201, "{body}");
    let account: serde_json::Value = serde_json::from_str(&body).expect("json");
    let account_uri = account["@odata.id"].as_str().expect("account URI").to_owned();

    // A reset type a manager does not take is refused, and nothing happens.
    let (code, body) = curl(
        &url,
        "POST",
        "/redfish/v1/Managers/BMC/Actions/Manager.Reset",
        Some(r#"{"ResetType":"On"}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("ActionParameterValueNotInList"), "{body}");

    let (code, body) = curl(
        &url,
        "POST",
        "/redfish/v1/Managers/BMC/Actions/Manager.Reset",
        Some(r#"{"ResetType":"GracefulRestart"}"#),
    );
    assert_eq!(code, 204, "{body}");
    wait_line(&lines, "bmcd restarting (Manager.Reset)");
    let again = wait_line(&lines, "bmcd ready on ");
    assert_eq!(again, ready, "back on the same address");
    assert!(
        bmcd.0.try_wait().expect("wait").is_none(),
        "the same process runs on"
    );

    let (code, body) = curl(&url, "GET", "/redfish/v1/AccountService/Accounts", None);
    assert_eq!(code, 200, "{body}");
    let (code, body) = curl(&url, "GET", &account_uri, None);
    assert_eq!(
        code, 200,
        "the account made before the reset is still there: {body}"
    );
    assert!(body.contains("\"keeper\""), "{body}");
    drop(bmcd);
    let _ = std::fs::remove_dir_all(&dir);
}
