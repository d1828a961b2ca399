//! Firmware update through the UpdateService against the libvirt test driver,
//! with both banks as plain files and the boot loader's environment in a file:
//! multipart push, SimpleUpdate over HTTPS, refused packages (tampered, wrong
//! key, unsigned), FirmwareInventory, mark-good after a trial boot and the
//! record of a rollback.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use hyper::{Method, StatusCode};
use redfin_tests::{test_node, Client, ImageServer, ServedFile, TempDir, TestBmc};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde_json::{json, Value};

const MULTIPART: &str = "/redfish/v1/UpdateService/update-multipart";
const SIMPLE_UPDATE: &str = "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate";
const BANK_A: &str = "/redfish/v1/UpdateService/FirmwareInventory/BMC_BankA";
const BANK_B: &str = "/redfish/v1/UpdateService/FirmwareInventory/BMC_BankB";
const OLD_A: &[u8] = b"bank A: the running firmware";
const OLD_B: &[u8] = b"bank B: the previous firmware";

fn key() -> Ed25519KeyPair {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key pair")
}

fn public_b64(k: &Ed25519KeyPair) -> String {
    base64::engine::general_purpose::STANDARD.encode(k.public_key().as_ref())
}

fn sha256_hex(b: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// A ustar archive of `files`.
fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in files {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

enum Flaw {
    None,
    TamperedPayload,
    Unsigned,
}

/// An update package: manifest, its signature by `key`, and `rootfs.img`.
fn package(key: &Ed25519KeyPair, version: &str, rootfs: &[u8], flaw: Flaw) -> Vec<u8> {
    let manifest = serde_json::to_vec(&json!({
        "format": "redfin-update-1",
        "compatible": "redfin-qemu-x86_64",
        "version": version,
        "files": [{"name": "rootfs.img", "sha256": sha256_hex(rootfs), "size": rootfs.len()}],
    }))
    .expect("manifest");
    let sig = key.sign(&manifest);
    let mut payload = rootfs.to_vec();
    if let Flaw::TamperedPayload = flaw {
        payload[rootfs.len() / 2] ^= 0xff;
    }
    match flaw {
        Flaw::Unsigned => tar(&[("manifest.json", &manifest), ("rootfs.img", &payload)]),
        _ => tar(&[
            ("manifest.json", &manifest),
            ("manifest.sig", sig.as_ref()),
            ("rootfs.img", &payload),
        ]),
    }
}

/// A multipart/form-data body; returns it with its content type.
fn multipart(parameters: Option<&str>, file: Option<&[u8]>) -> (Bytes, String) {
    let boundary = "redfin-test-boundary-7d1f";
    let mut body = Vec::new();
    if let Some(p) = parameters {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"UpdateParameters\"\r\nContent-Type: application/json\r\n\r\n{p}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some(f) = file {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"UpdateFile\"; filename=\"update.tar\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(f);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (
        Bytes::from(body),
        format!("multipart/form-data; boundary={boundary}"),
    )
}

/// Pseudo-random bytes: a bank image stand-in.
fn image(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

struct Banks {
    a: PathBuf,
    b: PathBuf,
    env: PathBuf,
}

impl Banks {
    fn new(dir: &Path) -> Banks {
        let banks = Banks {
            a: dir.join("bank-a.img"),
            b: dir.join("bank-b.img"),
            env: dir.join("grubenv"),
        };
        std::fs::write(&banks.a, OLD_A).expect("bank a");
        std::fs::write(&banks.b, OLD_B).expect("bank b");
        banks
    }

    fn config(&self, keys: &[&Ed25519KeyPair], booted: &str) -> bmcd::config::FirmwareConfig {
        bmcd::config::FirmwareConfig {
            bank_a: self.a.display().to_string(),
            bank_b: self.b.display().to_string(),
            boot_env: self.env.clone(),
            booted_bank: Some(booted.to_owned()),
            trusted_keys: keys.iter().map(|k| public_b64(k)).collect(),
            version: Some("1.0.0".to_owned()),
            ..bmcd::config::FirmwareConfig::default()
        }
    }

    /// The GRUB environment's variables.
    fn env(&self) -> Vec<(String, String)> {
        let Ok(bytes) = std::fs::read(&self.env) else {
            return Vec::new();
        };
        assert_eq!(bytes.len(), 1024, "a GRUB environment block is 1024 bytes");
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// What GRUB's `save_env` does when it boots the tried bank: clears `redfin_try`.
    fn consume_try(&self) {
        let mut text = String::from("# GRUB Environment Block\n");
        for (k, v) in self.env() {
            let v = if k == "redfin_try" { String::new() } else { v };
            text.push_str(&format!("{k}={v}\n"));
        }
        let mut bytes = text.into_bytes();
        bytes.resize(1024, b'#');
        std::fs::write(&self.env, bytes).expect("write grubenv");
    }

    fn var(&self, name: &str) -> Option<String> {
        self.env().into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

async fn start(dir: &Path, firmware: Option<bmcd::config::FirmwareConfig>) -> TestBmc {
    let (uri, _) = test_node(dir, 1);
    let mut config = TestBmc::config(&dir.join("state"), &uri);
    config.firmware = firmware;
    TestBmc::start_with(config).await
}

/// Polls a task monitor until the task is over; returns the final status and the task.
async fn wait_task(admin: &Client, monitor: &str) -> (StatusCode, Value) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut percent = 0;
    loop {
        let r = admin.get(monitor).await;
        if r.status != StatusCode::ACCEPTED {
            let id = monitor.rsplit('/').next().expect("id");
            let task = admin
                .get(&format!("/redfish/v1/TaskService/Tasks/{id}"))
                .await
                .json;
            return (r.status, task);
        }
        let p = r.json["PercentComplete"].as_u64().expect("PercentComplete");
        assert!(p >= percent, "progress never goes back");
        percent = p;
        assert!(tokio::time::Instant::now() < deadline, "task still running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn push(admin: &Client, parameters: Option<&str>, file: Option<&[u8]>) -> redfin_tests::Resp {
    let (body, ct) = multipart(parameters, file);
    admin.raw(Method::POST, MULTIPART, Some(body), Some(&ct)).await
}

fn task_text(task: &Value) -> String {
    task["Messages"].to_string()
}

#[tokio::test]
async fn multipart_push_writes_the_inactive_bank_and_sets_try_once() {
    let dir = TempDir::new("update-push");
    let banks = Banks::new(dir.path());
    let k = key();
    let bmc = start(dir.path(), Some(banks.config(&[&k], "a"))).await;
    let admin = bmc.admin();

    let service = admin.get("/redfish/v1/UpdateService").await;
    assert_eq!(service.status, StatusCode::OK);
    assert_eq!(service.json["ServiceEnabled"], true);
    assert_eq!(service.json["MultipartHttpPushUri"], MULTIPART);
    assert_eq!(
        admin.get("/redfish/v1").await.json["UpdateService"]["@odata.id"],
        "/redfish/v1/UpdateService"
    );

    let rootfs = image(3 << 20, 1);
    let pkg = package(&k, "2.0.0", &rootfs, Flaw::None);
    let r = push(
        &admin,
        Some(&format!(
            r#"{{"Targets": ["{BANK_B}"], "@Redfish.OperationApplyTime": "OnReset"}}"#
        )),
        Some(&pkg),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let monitor = r.header("location").expect("task monitor").to_owned();
    let (status, task) = wait_task(&admin, &monitor).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{task}");
    assert_eq!(task["TaskState"], "Completed");
    assert_eq!(task["PercentComplete"], 100);

    assert_eq!(
        std::fs::read(&banks.b).expect("bank b"),
        rootfs,
        "bank B holds the new image"
    );
    assert_eq!(
        std::fs::read(&banks.a).expect("bank a"),
        OLD_A,
        "the running bank is untouched"
    );
    assert_eq!(
        banks.var("redfin_try").as_deref(),
        Some("b"),
        "bank B is tried once"
    );
    assert_eq!(
        banks.var("redfin_bank").as_deref(),
        Some("a"),
        "bank A stays the good one"
    );

    let b = admin.get(BANK_B).await.json;
    assert_eq!(b["Version"], "2.0.0");
    assert_eq!(b["Staged"], true);
    assert_eq!(b["Active"], false);
    let a = admin.get(BANK_A).await.json;
    assert_eq!(a["Active"], true);
    assert_eq!(a["Updateable"], false);
    assert_eq!(a["Version"], "1.0.0");

    // The upload left nothing behind in the work directory.
    let work = dir.path().join("state/firmware");
    let left: Vec<_> = std::fs::read_dir(&work)
        .map(|d| d.filter_map(Result::ok).filter(|e| e.path().is_file()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    bmc.stop().await;
}

#[tokio::test]
async fn bad_packages_are_refused_and_no_bank_is_touched() {
    let dir = TempDir::new("update-refused");
    let banks = Banks::new(dir.path());
    let k = key();
    let stranger = key();
    let bmc = start(dir.path(), Some(banks.config(&[&k], "a"))).await;
    let admin = bmc.admin();
    let rootfs = image(256 << 10, 2);

    for (pkg, why) in [
        (package(&k, "2.0.0", &rootfs, Flaw::TamperedPayload), "SHA-256"),
        (package(&stranger, "2.0.0", &rootfs, Flaw::None), "signature"),
        (package(&k, "2.0.0", &rootfs, Flaw::Unsigned), "not signed"),
        (
            b"this is not a tar archive at all, just some bytes...".repeat(20),
            "malformed",
        ),
    ] {
        let r = push(&admin, Some("{}"), Some(&pkg)).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
        let monitor = r.header("location").expect("monitor").to_owned();
        let (status, task) = wait_task(&admin, &monitor).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{task}");
        assert_eq!(task["TaskState"], "Exception", "{task}");
        assert!(task_text(&task).contains(why), "{why}: {task}");
        assert_eq!(std::fs::read(&banks.a).expect("a"), OLD_A);
        assert_eq!(
            std::fs::read(&banks.b).expect("b"),
            OLD_B,
            "{why}: bank B untouched"
        );
        assert_eq!(banks.var("redfin_try"), None, "{why}: no try was set");
    }

    // Bad requests, answered at once.
    let pkg = package(&k, "2.0.0", &rootfs, Flaw::None);
    let r = admin
        .raw(
            Method::POST,
            MULTIPART,
            Some(Bytes::from(pkg.clone())),
            Some("application/octet-stream"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(r.json["error"]["@Message.ExtendedInfo"].is_array());
    let r = push(&admin, Some("{}"), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.message_id(), "Base.1.20.0.PropertyMissing");
    assert!(r.json.to_string().contains("UpdateFile"));
    let r = push(&admin, None, Some(&pkg)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json.to_string().contains("UpdateParameters"));
    let r = push(&admin, Some(r#"{"Frobnicate": 1}"#), Some(&pkg)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.message_id(), "Base.1.20.0.PropertyUnknown");
    let r = push(&admin, Some("{not json"), Some(&pkg)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = push(
        &admin,
        Some(&format!(r#"{{"Targets": ["{BANK_A}"]}}"#)),
        Some(&pkg),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "the running bank is no target");
    let r = push(
        &admin,
        Some(r#"{"Targets": ["/redfish/v1/Systems/x"]}"#),
        Some(&pkg),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = push(
        &admin,
        Some(r#"{"@Redfish.OperationApplyTime": "Immediate"}"#),
        Some(&pkg),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let (body, _) = multipart(Some("{}"), Some(&pkg));
    let r = admin
        .raw(
            Method::POST,
            MULTIPART,
            Some(body.slice(..body.len() / 2)),
            Some("multipart/form-data; boundary=redfin-test-boundary-7d1f"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "a truncated body");

    // Only ConfigureManager may update.
    let r = admin
        .post(
            "/redfish/v1/AccountService/Accounts",
            json!({"UserName": "op", "Password": "op-pass-1234", "RoleId": "Operator"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let op = bmc.client().basic("op", "op-pass-1234");
    let (body, ct) = multipart(Some("{}"), Some(&pkg));
    assert_eq!(
        op.raw(Method::POST, MULTIPART, Some(body), Some(&ct))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        op.post(SIMPLE_UPDATE, json!({"ImageURI": "https://127.0.0.1/x.tar"}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(op.get(BANK_A).await.status, StatusCode::OK);
    assert_eq!(std::fs::read(&banks.b).expect("b"), OLD_B);
    assert_eq!(banks.var("redfin_try"), None);

    // Too large: refused before it is stored.
    bmc.stop().await;
    let mut small = banks.config(&[&k], "a");
    small.max_package_bytes = 64 << 10;
    let bmc = start(dir.path(), Some(small)).await;
    let r = push(&bmc.admin(), Some("{}"), Some(&pkg)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(std::fs::read(&banks.b).expect("b"), OLD_B);
    bmc.stop().await;
}

#[tokio::test]
async fn simple_update_fetches_the_package_over_https() {
    let dir = TempDir::new("update-simple");
    let banks = Banks::new(dir.path());
    let k = key();
    let rootfs = image(1 << 20, 3);
    let server = ImageServer::start_tls(vec![
        ServedFile {
            path: "/fw/update.tar".into(),
            body: package(&k, "3.1.0", &rootfs, Flaw::None),
            credentials: Some(("fw".into(), "fw-secret".into())),
        },
        ServedFile {
            path: "/fw/tampered.tar".into(),
            body: package(&k, "3.1.0", &rootfs, Flaw::TamperedPayload),
            credentials: None,
        },
    ])
    .await;
    let bmc = start(dir.path(), Some(banks.config(&[&k], "a"))).await;
    let admin = bmc.admin();

    let info = admin
        .get("/redfish/v1/UpdateService/SimpleUpdateActionInfo")
        .await;
    assert_eq!(info.status, StatusCode::OK);

    // Plain HTTP and missing ImageURI are refused at once.
    let r = admin
        .post(
            SIMPLE_UPDATE,
            json!({"ImageURI": "http://127.0.0.1/fw/update.tar"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = admin
        .post(SIMPLE_UPDATE, json!({"TransferProtocol": "HTTPS"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.message_id(), "Base.1.20.0.ActionParameterMissing");
    let r = admin
        .post(
            SIMPLE_UPDATE,
            json!({"ImageURI": server.url("/fw/update.tar"), "TransferProtocol": "TFTP"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = admin
        .post(
            SIMPLE_UPDATE,
            json!({"ImageURI": server.url("/fw/tampered.tar"), "TransferProtocol": "HTTPS"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let (status, task) = wait_task(&admin, r.header("location").expect("monitor")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(task_text(&task).contains("SHA-256"), "{task}");
    assert_eq!(std::fs::read(&banks.b).expect("b"), OLD_B);

    let r = admin
        .post(
            SIMPLE_UPDATE,
            json!({
                "ImageURI": server.url("/fw/update.tar"),
                "TransferProtocol": "HTTPS",
                "Username": "fw",
                "Password": "fw-secret",
                "Targets": [BANK_B],
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let (status, task) = wait_task(&admin, r.header("location").expect("monitor")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{task}");
    assert_eq!(std::fs::read(&banks.b).expect("b"), rootfs);
    assert_eq!(std::fs::read(&banks.a).expect("a"), OLD_A);
    assert_eq!(banks.var("redfin_try").as_deref(), Some("b"));
    assert_eq!(admin.get(BANK_B).await.json["Version"], "3.1.0");
    bmc.stop().await;
}

#[tokio::test]
async fn firmware_inventory_shows_both_banks() {
    let dir = TempDir::new("update-inventory");
    let banks = Banks::new(dir.path());
    let k = key();
    let bmc = start(dir.path(), Some(banks.config(&[&k], "b"))).await;
    let admin = bmc.admin();
    let inv = admin.get("/redfish/v1/UpdateService/FirmwareInventory").await;
    assert_eq!(inv.status, StatusCode::OK);
    assert_eq!(inv.json["Members@odata.count"], 2);
    let a = admin.get(BANK_A).await.json;
    let b = admin.get(BANK_B).await.json;
    assert_eq!(b["Active"], true, "booted from bank B");
    assert_eq!(b["Status"]["State"], "Enabled");
    assert_eq!(b["Updateable"], false);
    assert_eq!(a["Active"], false);
    assert_eq!(a["Updateable"], true);
    assert_eq!(a["RelatedItem"][0]["@odata.id"], "/redfish/v1/Managers/BMC");
    assert_eq!(a["Manufacturer"], "Redfin");
    let manager = admin.get("/redfish/v1/Managers/BMC").await.json;
    assert_eq!(manager["Links"]["ActiveSoftwareImage"]["@odata.id"], BANK_B);
    assert_eq!(manager["Links"]["SoftwareImages@odata.count"], 2);
    assert_eq!(manager["FirmwareVersion"], "1.0.0");
    assert_eq!(
        admin
            .get("/redfish/v1/UpdateService/FirmwareInventory/BMC_BankC")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    bmc.stop().await;

    // Without [firmware]: the service is there, disabled, and refuses updates.
    let dir2 = TempDir::new("update-off");
    let bmc = start(dir2.path(), None).await;
    let admin = bmc.admin();
    let s = admin.get("/redfish/v1/UpdateService").await.json;
    assert_eq!(s["ServiceEnabled"], false);
    assert_eq!(
        admin
            .get("/redfish/v1/UpdateService/FirmwareInventory")
            .await
            .json["Members@odata.count"],
        0
    );
    let r = push(&admin, Some("{}"), Some(b"x")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let r = admin
        .post(SIMPLE_UPDATE, json!({"ImageURI": "https://127.0.0.1/x.tar"}))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    bmc.stop().await;
}

/// Waits until the GRUB variable has the value (bounded).
async fn wait_var(banks: &Banks, name: &str, want: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while banks.var(name).as_deref() != Some(want) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never became {want}: {:?}",
            banks.env()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_healthy_trial_boot_is_marked_good_and_a_failed_one_is_reported() {
    let dir = TempDir::new("update-markgood");
    let banks = Banks::new(dir.path());
    let k = key();

    // Update from bank A to bank B.
    let bmc = start(dir.path(), Some(banks.config(&[&k], "a"))).await;
    let admin = bmc.admin();
    let rootfs = image(128 << 10, 4);
    let r = push(
        &admin,
        Some("{}"),
        Some(&package(&k, "2.0.0", &rootfs, Flaw::None)),
    )
    .await;
    let (status, _) = wait_task(&admin, r.header("location").expect("monitor")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    bmc.stop().await;
    assert_eq!(banks.var("redfin_try").as_deref(), Some("b"));

    // The boot loader consumes the try and boots B: bmcd on B checks itself and
    // makes B the good bank.
    banks.consume_try();
    let mut on_b = banks.config(&[&k], "b");
    on_b.version = Some("2.0.0".to_owned());
    let bmc = start(dir.path(), Some(on_b)).await;
    wait_var(&banks, "redfin_bank", "b").await;
    let admin = bmc.admin();
    let b = admin.get(BANK_B).await.json;
    assert_eq!(b["Active"], true);
    assert_eq!(b["Version"], "2.0.0");
    assert_eq!(b["Status"]["Health"], "OK");
    assert_eq!(admin.get(BANK_A).await.json["Version"], "1.0.0");

    // Now update bank A, and pretend its trial failed: the boot loader used the
    // try, the new bank never marked itself good, and the BMC is back on B.
    let r = push(
        &admin,
        Some("{}"),
        Some(&package(&k, "3.0.0", &image(64 << 10, 5), Flaw::None)),
    )
    .await;
    let (status, _) = wait_task(&admin, r.header("location").expect("monitor")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    bmc.stop().await;
    banks.consume_try();
    let mut back_on_b = banks.config(&[&k], "b");
    back_on_b.version = Some("2.0.0".to_owned());
    let bmc = start(dir.path(), Some(back_on_b)).await;
    let a = bmc.admin().get(BANK_A).await.json;
    assert_eq!(a["Status"]["Health"], "Critical", "{a}");
    assert_eq!(a["Version"], "3.0.0");
    assert_eq!(banks.var("redfin_bank").as_deref(), Some("b"));
    bmc.stop().await;
}

#[tokio::test]
async fn one_update_runs_at_a_time() {
    let dir = TempDir::new("update-busy");
    let banks = Banks::new(dir.path());
    let k = key();
    // A server that accepts and never answers: the download's TLS handshake hangs (for bmcd's
    // 10 s handshake limit), so the first update is still running when the second one comes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let bmc = start(dir.path(), Some(banks.config(&[&k], "a"))).await;
    let admin = bmc.admin();
    let first = admin
        .post(
            SIMPLE_UPDATE,
            json!({"ImageURI": format!("https://{addr}/update.tar")}),
        )
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.json);
    let r = push(
        &admin,
        Some("{}"),
        Some(&package(&k, "2.0.0", &image(4096, 6), Flaw::None)),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.json);
    assert_eq!(r.header("retry-after"), Some("30"));
    assert_eq!(r.message_id(), "Base.1.20.0.ServiceTemporarilyUnavailable");
    let (status, task) = wait_task(&admin, first.header("location").expect("monitor")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{task}");
    assert_eq!(task["TaskState"], "Exception");
    assert_eq!(std::fs::read(&banks.b).expect("b"), OLD_B);
    // Once it is over, the next update runs.
    let rootfs = image(4096, 6);
    let r = push(
        &admin,
        Some("{}"),
        Some(&package(&k, "2.0.0", &rootfs, Flaw::None)),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let (status, _) = wait_task(&admin, r.header("location").expect("monitor")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(std::fs::read(&banks.b).expect("b"), rootfs);
    hold.abort();
    bmc.stop().await;
}
