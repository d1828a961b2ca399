//! Operations, tested on the real binaries: `/health`, `/ready`, `/metrics`
//! and rate limits; `bmcctl` against a running bmcd; and backup -> wipe ->
//! restore with nothing lost (accounts, sessions, subscriptions, endpoints,
//! boot overrides, the certificate, the configuration file).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const PASSWORD: &str = "operations-pass-1";
const VM: &str = "00000000-0000-4000-8000-0000000000b1";

struct Bmcd {
    child: Child,
    url: String,
}

impl Bmcd {
    fn start(config: &Path) -> Bmcd {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bmcd"))
            .arg("--config")
            .arg(config)
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

    /// `curl -sk`: (status, headers and body as text).
    fn curl(&self, args: &[&str], path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-sk", "--max-time", "10", "-i"])
            .args(args)
            .arg(format!("{}{path}", self.url))
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, text)
    }

    /// SIGTERM, and wait for the exit.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("bmcd did not stop on SIGTERM");
    }
}

impl Drop for Bmcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs bmcctl against `url`; (success, stdout, stderr).
fn ctl(url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bmcctl"))
        .args(["--url", url, "-k", "-u", "admin", "-p", PASSWORD])
        .args(args)
        .output()
        .expect("bmcctl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ctl_ok(url: &str, args: &[&str]) -> String {
    let (ok, out, err) = ctl(url, args);
    assert!(ok, "bmcctl {args:?} failed: {err}{out}");
    out
}

fn ctl_json(url: &str, args: &[&str]) -> Value {
    serde_json::from_str(&ctl_ok(url, args)).expect("bmcctl printed JSON")
}

fn admin(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bmcd"))
        .arg("admin")
        .args(args)
        .output()
        .expect("bmcd admin runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn setup(tag: &str, extra_config: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("bmcd-ops-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let node = dir.join("node.xml");
    std::fs::write(
        &node,
        format!(
            "<node><domain type='test'><name>ops-vm</name><uuid>{VM}</uuid>\
             <memory unit='MiB'>256</memory><vcpu>2</vcpu><os><type>hvm</type></os>\
             <devices><disk type='file' device='disk'><source file='/tmp/ops-vm.img'/>\
             <target dev='vda' bus='virtio'/></disk>\
             <disk type='file' device='cdrom'><target dev='sdc' bus='sata'/><readonly/></disk>\
             <interface type='network'><mac address='52:54:00:00:0b:01'/><source network='default'/>\
             <model type='virtio'/></interface></devices></domain></node>"
        ),
    )
    .expect("node file");
    let config = dir.join("bmcd.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nlog = \"warn\"\nlibvirt-uri = \"test://{}\"\nstate-dir = \"{}\"\n{extra_config}",
            node.display(),
            dir.join("state").display()
        ),
    )
    .expect("config");
    (dir, config)
}

#[test]
fn health_ready_metrics_and_rate_limits() {
    let (dir, config) = setup(
        "probes",
        "rate-limit-address-rps = 1\nrate-limit-address-burst = 40\n",
    );
    let bmcd = Bmcd::start(&config);

    let (status, text) = bmcd.curl(&[], "/health");
    assert_eq!(status, 200, "{text}");
    assert!(text.ends_with("ok\n"), "{text}");
    let (status, text) = bmcd.curl(&[], "/ready");
    assert_eq!(status, 200, "{text}");
    assert!(text.ends_with("ready\n"), "{text}");

    // /metrics needs an account by default.
    let (status, _) = bmcd.curl(&[], "/metrics");
    assert_eq!(status, 401);
    let auth = format!("admin:{PASSWORD}");
    let (status, _) = bmcd.curl(&["-u", &auth], "/redfish/v1/Systems");
    assert_eq!(status, 200);
    let (status, text) = bmcd.curl(&["-u", &auth], "/metrics");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("content-type: text/plain; version=0.0.4"), "{text}");
    for needle in [
        "bmcd_http_requests_total{method=\"GET\",route=\"/redfish/v1/Systems\",status=\"200\"} 1",
        "bmcd_http_requests_total{method=\"GET\",route=\"/metrics\",status=\"401\"} 1",
        "bmcd_http_request_duration_seconds_bucket{route=\"/redfish/v1/Systems\",le=\"+Inf\"} 1",
        "bmcd_http_requests_in_flight 1",
        "bmcd_libvirt_calls_total{op=\"list_systems\"}",
        "bmcd_libvirt_up 1",
        &format!("bmcd_system_vcpus{{system=\"{VM}\",name=\"ops-vm\"}} 2"),
        &format!("bmcd_system_memory_max_bytes{{system=\"{VM}\",name=\"ops-vm\"}} 268435456"),
        &format!("bmcd_system_cpu_seconds_total{{system=\"{VM}\",name=\"ops-vm\"}}"),
        &format!("bmcd_system_disk_read_bytes_total{{system=\"{VM}\",name=\"ops-vm\",drive=\"vda\"}}"),
        &format!(
            "bmcd_system_network_receive_bytes_total{{system=\"{VM}\",name=\"ops-vm\",interface=\"NIC1\"}}"
        ),
        "process_resident_memory_bytes ",
        "process_open_fds ",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }

    // The address limit: 40 at once, then one per second; probes are never limited.
    let mut limited = None;
    for _ in 0..60 {
        let (status, text) = bmcd.curl(&["-u", &auth], "/redfish/v1");
        if status == 429 {
            limited = Some(text);
            break;
        }
        assert_eq!(status, 200, "{text}");
    }
    let text = limited.expect("the address limit answers 429");
    assert!(text.to_ascii_lowercase().contains("retry-after: "), "{text}");
    assert!(text.contains("ServiceTemporarilyUnavailable"), "{text}");
    let (status, _) = bmcd.curl(&[], "/health");
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_millis(2100));
    let (status, _) = bmcd.curl(&["-u", &auth], "/redfish/v1");
    assert_eq!(status, 200, "tokens came back after two seconds");
    let (_, text) = bmcd.curl(&["-u", &auth], "/metrics");
    assert!(
        text.lines()
            .any(|l| l.starts_with("bmcd_rate_limited_total{by=\"address\"}") && !l.ends_with(" 0")),
        "{text}"
    );
    bmcd.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_user_limit_is_per_account() {
    let (dir, config) = setup(
        "user-limit",
        "rate-limit-user-rps = 1\nrate-limit-user-burst = 3\n",
    );
    let bmcd = Bmcd::start(&config);
    ctl_ok(&bmcd.url, &["accounts", "add", "viewer1", "viewer-pass-1"]);
    // The admin spends its burst of 3 (one went on the POST above) and is
    // refused; the refill (one a second) cannot keep up with curl.
    let admin = format!("admin:{PASSWORD}");
    let mut statuses = Vec::new();
    while statuses.len() < 10 && statuses.last() != Some(&429) {
        statuses.push(bmcd.curl(&["-u", &admin], "/redfish/v1/Systems").0);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let (status, text) = bmcd.curl(&["-u", "viewer1:viewer-pass-1"], "/redfish/v1/Systems");
    assert_eq!(status, 200, "another account has its own bucket: {text}");
    let (status, _) = bmcd.curl(&[], "/health");
    assert_eq!(status, 200);
    bmcd.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bmcctl_drives_the_common_tasks() {
    let (dir, config) = setup("ctl", "");
    let bmcd = Bmcd::start(&config);
    let url = bmcd.url.clone();

    let out = ctl_ok(&url, &["systems"]);
    assert!(
        out.contains("ops-vm") && out.contains(VM) && out.contains("On"),
        "{out}"
    );
    assert!(ctl_ok(&url, &["power", "ops-vm", "off"]).contains("ForceOff"));
    assert_eq!(
        ctl_json(&url, &["get", &format!("/redfish/v1/Systems/{VM}")])["PowerState"],
        "Off"
    );
    ctl_ok(&url, &["power", VM, "on"]);
    assert_eq!(
        ctl_json(&url, &["get", &format!("/redfish/v1/Systems/{VM}")])["PowerState"],
        "On"
    );

    ctl_ok(&url, &["boot", "ops-vm", "pxe", "--once"]);
    let boot = &ctl_json(&url, &["get", &format!("/redfish/v1/Systems/{VM}")])["Boot"];
    assert_eq!(boot["BootSourceOverrideTarget"], "Pxe");
    assert_eq!(boot["BootSourceOverrideEnabled"], "Once");
    let out = ctl_ok(&url, &["systems"]);
    assert!(out.contains("Pxe (Once)"), "{out}");

    let out = ctl_ok(&url, &["media", "list", "ops-vm"]);
    assert!(out.contains("CD"), "{out}");

    ctl_ok(
        &url,
        &["accounts", "add", "operator1", "operator-pass-1", "Operator"],
    );
    let out = ctl_ok(&url, &["accounts", "list"]);
    assert!(out.contains("operator1") && out.contains("Operator"), "{out}");
    let (ok, _, err) = ctl(&url, &["accounts", "add", "operator1", "operator-pass-1"]);
    assert!(!ok && err.contains("HTTP 409"), "{err}");
    ctl_ok(&url, &["accounts", "delete", "operator1"]);
    assert!(!ctl_ok(&url, &["accounts", "list"]).contains("operator1"));

    // Hosts and projects.
    let out = ctl_ok(&url, &["hosts"]);
    assert!(out.contains("local") && out.contains("Enabled"), "{out}");
    ctl_ok(&url, &["projects", "add", "lab", "--max-systems", "3"]);
    let out = ctl_ok(&url, &["projects", "list"]);
    assert!(out.contains("lab") && out.contains("0/3"), "{out}");
    ctl_ok(
        &url,
        &[
            "accounts",
            "add",
            "lab-op",
            "lab-pass-1",
            "Operator",
            "--project",
            "lab",
        ],
    );
    let project = ctl_json(&url, &["get", "/redfish/v1/Oem/Redfin/Projects/lab"]);
    assert_eq!(project["Links"]["Accounts@odata.count"], 1);
    let (ok, _, err) = ctl(&url, &["projects", "delete", "lab"]);
    assert!(!ok && err.contains("HTTP 409"), "{err}");
    ctl_ok(&url, &["accounts", "delete", "lab-op"]);
    ctl_ok(&url, &["projects", "delete", "lab"]);
    let (ok, _, err) = ctl(&url, &["projects", "add", "x", "--max-vcpus", "many"]);
    assert!(!ok && err.contains("number"), "{err}");

    let address = format!("127.0.0.1:{}", free_port());
    ctl_ok(&url, &["endpoints", "add", "vm1", "ops-vm", "idrac9", &address]);
    let out = ctl_ok(&url, &["endpoints", "list"]);
    assert!(
        out.contains("vm1") && out.contains(&address) && out.contains("Enabled"),
        "{out}"
    );
    ctl_ok(&url, &["endpoints", "delete", "vm1"]);
    assert!(!ctl_ok(&url, &["endpoints", "list"]).contains("vm1"));

    // Wrong password, unknown system, bad usage: failures with a reason.
    let out = Command::new(env!("CARGO_BIN_EXE_bmcctl"))
        .args(["--url", &url, "-k", "-p", "wrong", "systems"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 401"));
    let (ok, _, err) = ctl(&url, &["power", "nope", "on"]);
    assert!(!ok && err.contains("no system"), "{err}");
    // Without --insecure or --cacert the certificate is not trusted blindly.
    let out = Command::new(env!("CARGO_BIN_EXE_bmcctl"))
        .args(["--url", &url, "-p", PASSWORD, "systems"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cacert"));
    // With the BMC's own certificate as the trust anchor, verified TLS works.
    let cert = dir.join("state/tls/https.crt");
    let cert = if cert.exists() {
        cert
    } else {
        std::fs::read_dir(dir.join("state/tls"))
            .expect("tls dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "crt" || x == "pem"))
            .expect("a certificate file")
    };
    let out = Command::new(env!("CARGO_BIN_EXE_bmcctl"))
        .args(["--url", &url, "-p", PASSWORD, "--cacert"])
        .arg(&cert)
        .arg("systems")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    bmcd.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// What must survive a backup and restore, read through the API.
fn snapshot(url: &str, token: &str, bmcd: &Bmcd) -> Value {
    let get = |p: &str| ctl_json(url, &["get", p]);
    let members = |p: &str| {
        let c = get(p);
        let mut out: Vec<Value> = c["Members"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|m| get(m["@odata.id"].as_str().unwrap_or("")))
            .collect();
        out.sort_by_key(|m| m["Id"].to_string());
        Value::Array(out)
    };
    let mut accounts = members("/redfish/v1/AccountService/Accounts");
    for a in accounts.as_array_mut().into_iter().flatten() {
        // Failed-login counters and such may move; who exists and their roles may not.
        if let Some(o) = a.as_object_mut() {
            o.retain(|k, _| matches!(k.as_str(), "Id" | "UserName" | "RoleId" | "Enabled" | "Oem"));
        }
    }
    let mut endpoints = ctl_json(url, &["--json", "endpoints", "list"]);
    for e in endpoints.as_array_mut().into_iter().flatten() {
        if let Some(o) = e.as_object_mut() {
            o.remove("ListeningOn");
        }
    }
    let system = get(&format!("/redfish/v1/Systems/{VM}"));
    // The session made before the backup still works with its token.
    let (status, _) = bmcd.curl(
        &["-H", &format!("X-Auth-Token: {token}")],
        "/redfish/v1/SessionService/Sessions",
    );
    let mut sessions: Vec<String> = get("/redfish/v1/SessionService/Sessions")["Members"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| m["@odata.id"].to_string())
        .collect();
    sessions.sort();
    serde_json::json!({
        "UUID": get("/redfish/v1")["UUID"],
        "Accounts": accounts,
        "Endpoints": endpoints,
        "Boot": {
            "Target": system["Boot"]["BootSourceOverrideTarget"],
            "Enabled": system["Boot"]["BootSourceOverrideEnabled"],
        },
        "AssetTag": system["AssetTag"],
        "Subscriptions": members("/redfish/v1/EventService/Subscriptions"),
        "Projects": members("/redfish/v1/Oem/Redfin/Projects"),
        "Sessions": sessions,
        "TokenStatus": status,
        "Certificate": get("/redfish/v1/Managers/BMC/NetworkProtocol/HTTPS/Certificates/1")["CertificateString"],
    })
}

#[test]
fn backup_wipe_restore_loses_nothing() {
    let (dir, config) = setup("backup", "");
    let bmcd = Bmcd::start(&config);
    let url = bmcd.url.clone();

    ctl_ok(
        &url,
        &["accounts", "add", "operator1", "operator-pass-1", "Operator"],
    );
    ctl_ok(&url, &["accounts", "add", "viewer1", "viewer-pass-1", "ReadOnly"]);
    ctl_ok(&url, &["projects", "add", "lab", "--max-systems", "3"]);
    ctl_ok(
        &url,
        &[
            "accounts",
            "add",
            "lab-op",
            "lab-pass-12",
            "Operator",
            "--project",
            "lab",
        ],
    );
    let endpoint_address = format!("127.0.0.1:{}", free_port());
    ctl_ok(
        &url,
        &[
            "endpoints",
            "add",
            "vm1",
            "ops-vm",
            "ilo5",
            &endpoint_address,
            "--user",
            "vm1admin",
            "--password",
            "vm1-pass-12",
        ],
    );
    ctl_ok(&url, &["boot", "ops-vm", "cd", "--once"]);
    ctl_ok(
        &url,
        &[
            "patch",
            &format!("/redfish/v1/Systems/{VM}"),
            r#"{"AssetTag": "rack-7"}"#,
        ],
    );
    ctl_ok(
        &url,
        &[
            "post",
            "/redfish/v1/EventService/Subscriptions",
            r#"{"Destination": "http://127.0.0.1:9/hook", "Protocol": "Redfish", "Context": "ops-test"}"#,
        ],
    );
    let (status, text) = bmcd.curl(
        &[
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"UserName": "viewer1", "Password": "viewer-pass-1"}"#,
        ],
        "/redfish/v1/SessionService/Sessions",
    );
    assert_eq!(status, 201, "{text}");
    let token = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("x-auth-token:")
                .then(|| l[13..].trim().to_owned())
        })
        .expect("a session token");

    let before = snapshot(&url, &token, &bmcd);
    assert_eq!(before["TokenStatus"], 200);
    assert_eq!(before["Boot"]["Target"], "Cd");
    assert_eq!(before["Accounts"].as_array().map(Vec::len), Some(5), "{before}");
    assert_eq!(before["Projects"][0]["Quotas"]["MaxSystems"], 3, "{before}");
    assert_eq!(
        before["Projects"][0]["Links"]["Accounts@odata.count"], 1,
        "{before}"
    );

    // Backup while bmcd runs.
    let archive = dir.join("backup.tar");
    let (ok, out) = admin(&[
        "backup",
        archive.to_str().expect("utf8"),
        "--config",
        config.to_str().expect("utf8"),
    ]);
    assert!(ok, "{out}");
    // A restore while it runs is refused.
    let (ok, out) = admin(&[
        "restore",
        archive.to_str().expect("utf8"),
        "--force",
        "--config",
        config.to_str().expect("utf8"),
    ]);
    assert!(!ok && out.contains("another bmcd is running"), "{out}");
    bmcd.stop();

    // Wipe: the state directory and the configuration file.
    std::fs::remove_dir_all(dir.join("state")).expect("wipe state");
    std::fs::remove_file(&config).expect("wipe config");

    let (ok, out) = admin(&[
        "restore",
        archive.to_str().expect("utf8"),
        "--config",
        config.to_str().expect("utf8"),
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("configuration restored"), "{out}");
    assert!(config.exists());

    let bmcd = Bmcd::start(&config);
    let after = snapshot(&bmcd.url.clone(), &token, &bmcd);
    assert_eq!(before, after);
    // The per-VM endpoint listens again with its own account.
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "10", "-u", "vm1admin:vm1-pass-12"])
        .arg(format!("https://{endpoint_address}/redfish/v1/Systems/1"))
        .output()
        .expect("curl");
    let body: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(body["Id"], "1", "{body}");
    bmcd.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
