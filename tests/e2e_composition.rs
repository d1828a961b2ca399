//! End to end against a real libvirtd (private, started here): a storage
//! pool, volumes created, grown, attached and detached through Redfish, and a
//! tiny TCG guest composed from a profile and an image, booted (its serial
//! console shows it), then deleted with its copy-on-write disk.

use std::path::Path;
use std::time::Duration;

use hyper::StatusCode;
use redfin_tests::e2e::{cache, repo, run, Libvirtd};
use redfin_tests::{Client, TempDir, TestBmc};
use serde_json::{json, Value};
use tokio::process::Command;

async fn wait_for(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

fn serial_text(log: &Path) -> String {
    std::fs::read(log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

async fn ok(r: redfin_tests::Resp, status: StatusCode) -> Value {
    assert_eq!(r.status, status, "{:?}", r.json);
    r.json
}

async fn reset(admin: &Client, system: &str, reset_type: &str) {
    let r = admin
        .post(
            &format!("{system}/Actions/ComputerSystem.Reset"),
            json!({"ResetType": reset_type}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{reset_type}: {:?}", r.json);
}

#[tokio::test]
async fn a_guest_composed_from_a_profile_boots_and_is_deleted() {
    tokio::time::timeout(Duration::from_secs(420), async {
        run(Command::new(repo().join("tests/e2e/build-guest.sh")).arg(cache())).await;
        let work = TempDir::new("e2e-compose");
        let lv = Libvirtd::start(&work.path().join("libvirtd")).await;
        let pool_dir = work.path().join("pool");
        let pool_path = pool_dir.to_str().expect("utf8").to_owned();
        lv.virsh(&["pool-define-as", "lab", "dir", "--target", &pool_path]).await;
        lv.virsh(&["pool-build", "lab"]).await;
        lv.virsh(&["pool-start", "lab"]).await;
        let mut config = TestBmc::config(&work.path().join("state"), &lv.uri);
        config.composition.pool = "lab".into();
        config.composition.console_log_dir = Some(work.path().to_owned());
        config.composition.max_systems = 2;
        let bmc = TestBmc::start_with(config).await;
        let admin = bmc.admin();
        let vols = "/redfish/v1/Storage/lab/Volumes";

        // Storage: a raw base volume and a qcow2 data volume, grown.
        ok(
            admin
                .post(
                    vols,
                    json!({"Name": "base.raw", "CapacityBytes": 16 << 20, "Oem": {"Redfin": {"Format": "raw"}}}),
                )
                .await,
            StatusCode::CREATED,
        )
        .await;
        assert!(pool_dir.join("base.raw").exists());
        ok(
            admin
                .post(vols, json!({"Name": "data.qcow2", "CapacityBytes": 8 << 20}))
                .await,
            StatusCode::CREATED,
        )
        .await;
        let v = ok(
            admin
                .patch(&format!("{vols}/data.qcow2"), json!({"CapacityBytes": 32 << 20}))
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(v["CapacityBytes"], 32 << 20);
        let info = run(Command::new("qemu-img")
            .args(["info", "--output=json", "-U"])
            .arg(pool_dir.join("data.qcow2")))
        .await;
        let info: Value = serde_json::from_str(&info).expect("qemu-img JSON");
        assert_eq!(info["format"], "qcow2");
        assert_eq!(info["virtual-size"], 32 << 20);

        // The catalog: an image of the base volume, and a direct-kernel-boot
        // profile booting the e2e guest kernel.
        ok(
            admin
                .post(
                    "/redfish/v1/Oem/Redfin/Images",
                    json!({"Id": "tiny", "Volume": format!("{vols}/base.raw"), "OperatingSystem": "Linux"}),
                )
                .await,
            StatusCode::CREATED,
        )
        .await;
        let kernel = cache().join("vmlinuz");
        let initrd = cache().join("initrd.img");
        ok(
            admin
                .post(
                    "/redfish/v1/Oem/Redfin/Profiles",
                    json!({
                        "Id": "tcg-small", "ProcessorCount": 1, "MemoryMiB": 384,
                        "DiskCapacityBytes": 64 << 20, "Firmware": "Legacy",
                        "Kernel": kernel.to_str().expect("utf8"),
                        "Initrd": initrd.to_str().expect("utf8"),
                        "KernelCommandLine": "console=ttyS0,115200 quiet panic=1",
                    }),
                )
                .await,
            StatusCode::CREATED,
        )
        .await;

        // Compose: Starting while created, then Enabled and On; the guest boots.
        let r = admin
            .post(
                "/redfish/v1/Systems",
                json!({"Name": "composed-1", "Oem": {"Redfin": {"Profile": "tcg-small", "Image": "tiny"}}}),
            )
            .await;
        let created = ok(r, StatusCode::CREATED).await;
        let system = created["@odata.id"].as_str().expect("uri").to_owned();
        wait_for("the composed system to be Ready", Duration::from_secs(60), async || {
            admin.get(&system).await.json["Oem"]["Redfin"]["Composition"]["State"] == "Ready"
        })
        .await;
        let s = admin.get(&system).await.json;
        assert_eq!(s["Status"]["State"], "Enabled");
        assert_eq!(s["PowerState"], "On");
        assert_eq!(lv.virsh(&["domstate", "composed-1"]).await.trim(), "running");
        let serial = work.path().join("composed-1.log");
        wait_for("the composed guest to boot", Duration::from_secs(120), async || {
            serial_text(&serial).contains("REDFIN-GUEST-BOOTED source=initrd")
        })
        .await;
        eprintln!(
            "serial console of composed-1:\n{}",
            serial_text(&serial)
                .lines()
                .filter(|l| l.contains("REDFIN-GUEST"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        // Its boot disk is a qcow2 overlay of the image's base volume.
        let overlay = pool_dir.join("composed-1-disk0.qcow2");
        let info = run(Command::new("qemu-img")
            .args(["info", "--output=json", "-U"])
            .arg(&overlay))
        .await;
        let info: Value = serde_json::from_str(&info).expect("qemu-img JSON");
        assert_eq!(info["format"], "qcow2");
        assert_eq!(info["virtual-size"], 64 << 20);
        assert_eq!(info["backing-filename"], pool_dir.join("base.raw").to_str().expect("utf8"));
        let blk = lv.virsh(&["domblklist", "composed-1"]).await;
        assert!(blk.contains(overlay.to_str().expect("utf8")), "{blk}");

        // A data volume attached (while off), seen at the next start, detached.
        let r = admin.delete(&system).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "deleting a running system: {:?}", r.json);
        reset(&admin, &system, "ForceOff").await;
        let attach = format!("{vols}/data.qcow2/Actions/Oem/Redfin.Attach");
        let detach = format!("{vols}/data.qcow2/Actions/Oem/Redfin.Detach");
        ok(admin.post(&attach, json!({"System": system})).await, StatusCode::NO_CONTENT).await;
        reset(&admin, &system, "On").await;
        let blk = lv.virsh(&["domblklist", "composed-1"]).await;
        assert!(blk.contains("vdb") && blk.contains("data.qcow2"), "{blk}");
        let drive = ok(admin.get(&format!("{system}/Storage/1/Drives/vdb")).await, StatusCode::OK).await;
        assert_eq!(drive["CapacityBytes"], 32 << 20);
        wait_for("the guest to boot again", Duration::from_secs(120), async || {
            serial_text(&serial).contains("REDFIN-GUEST-BOOTED source=initrd")
        })
        .await;
        // Growing a volume a running system holds goes through its QEMU.
        let v = ok(
            admin
                .patch(&format!("{vols}/data.qcow2"), json!({"CapacityBytes": 48 << 20}))
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(v["CapacityBytes"], 48 << 20);
        let drive = ok(admin.get(&format!("{system}/Storage/1/Drives/vdb")).await, StatusCode::OK).await;
        assert_eq!(drive["CapacityBytes"], 48 << 20);
        reset(&admin, &system, "ForceOff").await;
        ok(admin.post(&detach, json!({"System": system})).await, StatusCode::NO_CONTENT).await;
        assert!(!lv.virsh(&["domblklist", "composed-1"]).await.contains("data.qcow2"));

        // A profile whose kernel is missing: the system is defined but cannot
        // start, and says so (Health Critical, the reason in Conditions).
        ok(
            admin
                .post(
                    "/redfish/v1/Oem/Redfin/Profiles",
                    json!({"Id": "broken", "ProcessorCount": 1, "MemoryMiB": 128,
                           "DiskCapacityBytes": 16 << 20, "Kernel": "/nonexistent/vmlinuz"}),
                )
                .await,
            StatusCode::CREATED,
        )
        .await;
        let r = admin
            .post(
                "/redfish/v1/Systems",
                json!({"Name": "broken-1", "Oem": {"Redfin": {"Profile": "broken"}}}),
            )
            .await;
        let broken = ok(r, StatusCode::CREATED).await["@odata.id"]
            .as_str()
            .expect("uri")
            .to_owned();
        wait_for("the broken system to fail", Duration::from_secs(60), async || {
            admin.get(&broken).await.json["Oem"]["Redfin"]["Composition"]["State"] == "Error"
        })
        .await;
        let b = admin.get(&broken).await.json;
        assert_eq!(b["Status"]["Health"], "Critical", "{b:?}");
        assert!(
            b["Status"]["Conditions"][0]["Message"]
                .as_str()
                .is_some_and(|m| m.contains("could not start")),
            "{b:?}"
        );
        // The quota (2 systems) is full now.
        let r = admin
            .post(
                "/redfish/v1/Systems",
                json!({"Name": "composed-2", "Oem": {"Redfin": {"Profile": "tcg-small", "Image": "tiny"}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.json);
        assert!(r.message_id().ends_with(".ResourceExhaustion"));

        // Delete both: domains and overlays go; base and data volumes stay.
        assert_eq!(admin.delete(&broken).await.status, StatusCode::NO_CONTENT);
        assert_eq!(admin.delete(&system).await.status, StatusCode::NO_CONTENT);
        let list = lv.virsh(&["list", "--all", "--name"]).await;
        assert!(!list.contains("composed-1") && !list.contains("broken-1"), "{list}");
        assert!(!overlay.exists());
        assert!(pool_dir.join("base.raw").exists() && pool_dir.join("data.qcow2").exists());
        assert_eq!(admin.get(&system).await.status, StatusCode::NOT_FOUND);
        ok(admin.delete(&format!("{vols}/data.qcow2")).await, StatusCode::NO_CONTENT).await;
        assert!(!pool_dir.join("data.qcow2").exists());

        // The profile's firmware is what the guest boots with: UEFI (OVMF).
        ok(
            admin
                .post(
                    "/redfish/v1/Oem/Redfin/Profiles",
                    json!({
                        "Id": "tcg-uefi", "ProcessorCount": 1, "MemoryMiB": 384,
                        "DiskCapacityBytes": 64 << 20, "Firmware": "UEFI",
                        "Kernel": kernel.to_str().expect("utf8"),
                        "Initrd": initrd.to_str().expect("utf8"),
                        "KernelCommandLine": "console=ttyS0,115200 quiet panic=1",
                    }),
                )
                .await,
            StatusCode::CREATED,
        )
        .await;
        let r = admin
            .post(
                "/redfish/v1/Systems",
                json!({"Name": "composed-uefi", "Oem": {"Redfin": {"Profile": "tcg-uefi", "Image": "tiny"}}}),
            )
            .await;
        let uefi = ok(r, StatusCode::CREATED).await["@odata.id"]
            .as_str()
            .expect("uri")
            .to_owned();
        let uefi_serial = work.path().join("composed-uefi.log");
        wait_for("the UEFI guest to boot", Duration::from_secs(180), async || {
            serial_text(&uefi_serial).contains("REDFIN-GUEST-INFO firmware=efi")
        })
        .await;
        eprintln!(
            "serial console of composed-uefi:\n{}",
            serial_text(&uefi_serial)
                .lines()
                .filter(|l| l.contains("REDFIN-GUEST"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let s = admin.get(&uefi).await.json;
        assert_eq!(s["Boot"]["BootSourceOverrideMode"], "UEFI");
        assert_eq!(s["Oem"]["Redfin"]["Composition"]["State"], "Ready");
        reset(&admin, &uefi, "ForceOff").await;
        assert_eq!(admin.delete(&uefi).await.status, StatusCode::NO_CONTENT);
        assert!(!pool_dir.join("composed-uefi-disk0.qcow2").exists());
        bmc.stop().await;
        drop(lv);
    })
    .await
    .expect("e2e composition finished in time");
}

/// Two hosts: the in-process test driver (`local`) and a private libvirtd
/// (`rack2`, labelled `tcg`). A system composed with that label is placed on
/// rack2 and boots there; when rack2's libvirtd stops, the host is reported
/// down (and its system stays listed, answering 503 that names the host);
/// once the daemon is back, the host and its system are served again.
#[tokio::test]
async fn a_guest_placed_on_a_second_host_boots_and_its_host_going_down_is_reported() {
    tokio::time::timeout(Duration::from_secs(420), async {
        run(Command::new(repo().join("tests/e2e/build-guest.sh")).arg(cache())).await;
        let work = TempDir::new("e2e-hosts");
        let daemon_dir = work.path().join("libvirtd");
        let lv = Libvirtd::start(&daemon_dir).await;
        let pool_dir = work.path().join("pool");
        let pool_path = pool_dir.to_str().expect("utf8").to_owned();
        lv.virsh(&["pool-define-as", "lab", "dir", "--target", &pool_path]).await;
        lv.virsh(&["pool-build", "lab"]).await;
        lv.virsh(&["pool-start", "lab"]).await;
        lv.virsh(&["pool-autostart", "lab"]).await;
        let (local, _) = redfin_tests::test_node(work.path(), 1);
        let mut config = TestBmc::config(&work.path().join("state"), &local);
        config.hosts = vec![bmcd::config::HostConfig {
            name: "rack2".into(),
            libvirt_uri: lv.uri.clone(),
            labels: vec!["tcg".into()],
        }];
        config.composition.pool = "lab".into();
        config.composition.console_log_dir = Some(work.path().to_owned());
        let bmc = TestBmc::start_with(config).await;
        let admin = bmc.admin();
        let source = "/redfish/v1/AggregationService/AggregationSources/rack2";
        assert_eq!(admin.get(source).await.json["Status"]["State"], "Enabled");

        let kernel = cache().join("vmlinuz");
        let initrd = cache().join("initrd.img");
        ok(
            admin
                .post(
                    "/redfish/v1/Oem/Redfin/Profiles",
                    json!({
                        "Id": "tcg-small", "ProcessorCount": 1, "MemoryMiB": 384,
                        "DiskCapacityBytes": 16 << 20, "Firmware": "Legacy",
                        "Kernel": kernel.to_str().expect("utf8"),
                        "Initrd": initrd.to_str().expect("utf8"),
                        "KernelCommandLine": "console=ttyS0,115200 quiet panic=1",
                    }),
                )
                .await,
            StatusCode::CREATED,
        )
        .await;
        let created = ok(
            admin
                .post(
                    "/redfish/v1/Systems",
                    json!({"Name": "placed-1", "Oem": {"Redfin": {"Profile": "tcg-small", "HostLabels": ["tcg"]}}}),
                )
                .await,
            StatusCode::CREATED,
        )
        .await;
        let system = created["@odata.id"].as_str().expect("uri").to_owned();
        let on_rack2 = admin.get(source).await.json;
        assert!(on_rack2.to_string().contains(&system), "{on_rack2}");
        assert!(pool_dir.join("placed-1-disk0.qcow2").exists(), "its disk is in rack2's pool");
        wait_for("the placed system to run", Duration::from_secs(60), async || {
            admin.get(&system).await.json["PowerState"] == "On"
        })
        .await;
        assert_eq!(lv.virsh(&["domstate", "placed-1"]).await.trim(), "running");
        let serial = work.path().join("placed-1.log");
        wait_for("the placed guest to boot", Duration::from_secs(120), async || {
            serial_text(&serial).contains("REDFIN-GUEST-BOOTED source=initrd")
        })
        .await;

        // rack2's libvirtd stops: reported down within a few watch rounds.
        drop(lv);
        wait_for("rack2 to be reported down", Duration::from_secs(40), async || {
            admin.get(source).await.json["Status"]["State"] == "UnavailableOffline"
        })
        .await;
        let src = admin.get(source).await.json;
        assert_eq!(src["Status"]["Health"], "Critical");
        assert!(src["Oem"]["Redfin"]["UnreachableReason"].is_string(), "{src}");
        let listed: Vec<String> = admin.get("/redfish/v1/Systems").await.json["Members"]
            .as_array()
            .expect("members")
            .iter()
            .map(|m| m["@odata.id"].as_str().expect("id").to_owned())
            .collect();
        assert!(listed.contains(&system), "still listed: {listed:?}");
        let r = admin.get(&system).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.json);
        assert!(r.json.to_string().contains("rack2"), "{:?}", r.json);
        // The local host is served meanwhile.
        assert_eq!(admin.get("/redfish/v1/AggregationService/AggregationSources/local").await.json["Status"]["State"], "Enabled");

        // The daemon is back (same directory, same definitions): so is the host.
        let lv = Libvirtd::start(&daemon_dir).await;
        wait_for("rack2 to be back", Duration::from_secs(40), async || {
            admin.get(source).await.json["Status"]["State"] == "Enabled"
        })
        .await;
        wait_for("the system to be served again", Duration::from_secs(30), async || {
            admin.get(&system).await.status == StatusCode::OK
        })
        .await;
        reset(&admin, &system, "On").await;
        assert_eq!(lv.virsh(&["domstate", "placed-1"]).await.trim(), "running");
        reset(&admin, &system, "ForceOff").await;
        ok(admin.delete(&system).await, StatusCode::NO_CONTENT).await;
        assert!(!pool_dir.join("placed-1-disk0.qcow2").exists(), "its disk went with it");
        bmc.stop().await;
    })
    .await
    .expect("took too long");
}
