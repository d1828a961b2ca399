//! End to end against a real libvirtd (private, started here) with a tiny TCG
//! guest: Redfish resets change what `virsh domstate` reports and what the
//! guest's serial console shows.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::StatusCode;
use redfin_tests::{ImageServer, ServedFile, TempDir, TestBmc};
use serde_json::json;
use tokio::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn run(cmd: &mut Command) -> String {
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("command timed out")
        .expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A private libvirtd, stopped (with its guests) when dropped.
struct Libvirtd {
    dir: PathBuf,
    uri: String,
}

impl Libvirtd {
    async fn start(dir: &Path) -> Libvirtd {
        let out = run(Command::new(repo().join("tests/e2e/libvirtd.sh"))
            .arg("start")
            .arg(dir))
        .await;
        let uri = out
            .lines()
            .find_map(|l| l.strip_prefix("LIBVIRT_URI="))
            .expect("URI line")
            .to_owned();
        Libvirtd {
            dir: dir.to_owned(),
            uri,
        }
    }

    async fn virsh(&self, args: &[&str]) -> String {
        run(Command::new("virsh")
            .arg("-q")
            .arg("-c")
            .arg(&self.uri)
            .args(args))
        .await
    }

    async fn domstate(&self, name: &str) -> String {
        self.virsh(&["domstate", name]).await.trim().to_owned()
    }
}

impl Drop for Libvirtd {
    fn drop(&mut self) {
        let _ = std::process::Command::new(repo().join("tests/e2e/libvirtd.sh"))
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

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

fn markers(log: &Path) -> usize {
    std::fs::read(log)
        .map(|b| {
            String::from_utf8_lossy(&b)
                .matches("REDFIN-GUEST-BOOTED source=initrd")
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn redfish_resets_drive_a_real_tcg_guest() {
    tokio::time::timeout(Duration::from_secs(420), scenario())
        .await
        .expect("the end-to-end scenario took too long");
}

async fn scenario() {
    let cache = repo().join("target/e2e-cache");
    run(Command::new(repo().join("tests/e2e/build-guest.sh")).arg(&cache)).await;
    let work = TempDir::new("e2e");
    let lv = Libvirtd::start(&work.path().join("libvirtd")).await;

    let serial = work.path().join("serial.log");
    let xml = run(Command::new(repo().join("tests/e2e/guest-domain.sh"))
        .arg("redfin-e2e")
        .arg(&cache)
        .arg(&serial))
    .await;
    let xml_file = work.path().join("domain.xml");
    std::fs::write(&xml_file, xml).expect("write XML");
    lv.virsh(&["define", xml_file.to_str().expect("utf8")]).await;
    let uuid = lv.virsh(&["domuuid", "redfin-e2e"]).await.trim().to_owned();

    let bmc = TestBmc::start(&work.path().join("state"), &lv.uri).await;
    let admin = bmc.admin();
    let system = format!("/redfish/v1/Systems/{uuid}");
    let reset = format!("{system}/Actions/ComputerSystem.Reset");
    let power = |admin: redfin_tests::Client, system: String| async move {
        admin.get(&system).await.json["PowerState"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };

    let r = admin.get("/redfish/v1/Systems").await;
    assert!(r.json["Members"]
        .as_array()
        .expect("members")
        .iter()
        .any(|m| m["@odata.id"] == system.as_str()));
    assert_eq!(lv.domstate("redfin-e2e").await, "shut off");
    assert_eq!(power(admin.clone(), system.clone()).await, "Off");

    // On: the domain runs and the guest boots.
    let r = admin.post(&reset, json!({"ResetType": "On"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
    assert_eq!(lv.domstate("redfin-e2e").await, "running");
    assert_eq!(power(admin.clone(), system.clone()).await, "On");
    wait_for("first boot", Duration::from_secs(90), async || {
        markers(&serial) >= 1
    })
    .await;

    // GracefulShutdown: ACPI power button; the guest powers itself off.
    let r = admin.post(&reset, json!({"ResetType": "GracefulShutdown"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
    wait_for("ACPI shutdown", Duration::from_secs(60), async || {
        lv.domstate("redfin-e2e").await == "shut off"
    })
    .await;
    assert_eq!(power(admin.clone(), system.clone()).await, "Off");

    // PowerCycle from off powers on; ForceRestart reboots the guest.
    let r = admin.post(&reset, json!({"ResetType": "PowerCycle"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
    assert_eq!(lv.domstate("redfin-e2e").await, "running");
    // The serial log is rewritten at each start of the domain.
    wait_for("boot after power cycle", Duration::from_secs(90), async || {
        markers(&serial) >= 1
    })
    .await;
    let r = admin.post(&reset, json!({"ResetType": "ForceRestart"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
    wait_for("boot after forced restart", Duration::from_secs(90), async || {
        markers(&serial) >= 2
    })
    .await;
    assert_eq!(lv.domstate("redfin-e2e").await, "running");

    // Nmi reaches the running guest's kernel.
    let r = admin.post(&reset, json!({"ResetType": "Nmi"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
    wait_for("NMI in the guest", Duration::from_secs(30), async || {
        std::fs::read(&serial)
            .map(|b| String::from_utf8_lossy(&b).contains("NMI received"))
            .unwrap_or(false)
    })
    .await;

    // ForceOff pulls the plug at once.
    let r = admin.post(&reset, json!({"ResetType": "ForceOff"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
    assert_eq!(lv.domstate("redfin-e2e").await, "shut off");
    assert_eq!(power(admin.clone(), system.clone()).await, "Off");

    // A change made behind the BMC's back shows on the next read.
    lv.virsh(&["start", "redfin-e2e"]).await;
    assert_eq!(power(admin.clone(), system.clone()).await, "On");
    lv.virsh(&["destroy", "redfin-e2e"]).await;
    assert_eq!(power(admin.clone(), system.clone()).await, "Off");

    bmc.stop().await;
    drop(lv);
}

/// The `source=` of the last boot marker in the serial log.
fn last_source(log: &Path) -> Option<String> {
    let text = std::fs::read(log).ok()?;
    let text = String::from_utf8_lossy(&text);
    let at = text.rfind("REDFIN-GUEST-BOOTED source=")?;
    let rest = &text[at + "REDFIN-GUEST-BOOTED source=".len()..];
    Some(rest.chars().take_while(|c| c.is_ascii_alphanumeric()).collect())
}

async fn wait_source(log: &Path, want: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while tokio::time::Instant::now() < deadline {
        if last_source(log).as_deref() == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!(
        "the guest did not boot from {want}; last boot: {:?}",
        last_source(log)
    );
}

/// The Ironic-style flow on a guest whose firmware (SeaBIOS or OVMF) picks the
/// boot device: insert an ISO served from 127.0.0.1 into the running guest's CD
/// drive (a task), set a one-time boot from CD, reset: the guest boots the ISO;
/// the reset after boots from disk again and GET reports the override Disabled.
async fn one_time_cd_boot(firmware: &str) {
    let cache = repo().join("target/e2e-cache");
    run(Command::new(repo().join("tests/e2e/build-guest.sh")).arg(&cache)).await;
    let iso = run(Command::new(repo().join("tests/e2e/build-boot-iso.sh")).arg(&cache)).await;
    let disk_src = run(Command::new(repo().join("tests/e2e/build-boot-disk.sh")).arg(&cache)).await;
    let work = TempDir::new(&format!("e2e-boot-{firmware}"));
    let disk = work.path().join("disk.img");
    std::fs::copy(disk_src.trim(), &disk).expect("copy disk");
    let lv = Libvirtd::start(&work.path().join("libvirtd")).await;
    let serial = work.path().join("serial.log");
    let name = format!("redfin-boot-{firmware}");
    let xml = run(Command::new(repo().join("tests/e2e/guest-domain.sh"))
        .arg(&name)
        .arg(&cache)
        .arg(&serial)
        .env("GUEST_BOOT", "firmware")
        .env("GUEST_BOOT_ORDER", "hd")
        .env("GUEST_FIRMWARE", firmware)
        .env("GUEST_DISK", &disk))
    .await;
    let server = ImageServer::start(vec![ServedFile {
        path: "/boot.iso".into(),
        body: std::fs::read(iso.trim()).expect("read ISO"),
        credentials: None,
    }])
    .await;
    let xml_file = work.path().join("domain.xml");
    std::fs::write(&xml_file, xml).expect("write XML");
    lv.virsh(&["define", xml_file.to_str().expect("utf8")]).await;
    let uuid = lv.virsh(&["domuuid", &name]).await.trim().to_owned();

    let bmc = TestBmc::start(&work.path().join("state"), &lv.uri).await;
    let admin = bmc.admin();
    let system = format!("/redfish/v1/Systems/{uuid}");
    let reset = format!("{system}/Actions/ComputerSystem.Reset");
    let s = admin.get(&system).await.json;
    let mode = if firmware == "efi" { "UEFI" } else { "Legacy" };
    assert_eq!(s["Boot"]["BootSourceOverrideMode"], mode);
    assert!(s["Boot"]["BootSourceOverrideTarget@Redfish.AllowableValues"]
        .as_array()
        .expect("targets")
        .contains(&json!("Cd")));

    let r = admin.post(&reset, json!({"ResetType": "On"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
    wait_source(&serial, "disk").await;

    // Insert the ISO into the running guest (hot change of the CD's medium).
    let cd = format!("/redfish/v1/Managers/{uuid}/VirtualMedia/Cd");
    let r = admin
        .post(
            &format!("{cd}/Actions/VirtualMedia.InsertMedia"),
            json!({"Image": server.url("/boot.iso"), "TransferProtocolType": "HTTP"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    let monitor = r.header("location").expect("task monitor").to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let m = admin.get(&monitor).await;
        if m.status != StatusCode::ACCEPTED {
            assert_eq!(m.status, StatusCode::NO_CONTENT, "{:?}", m.json);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "insert task did not finish"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let m = admin.get(&cd).await.json;
    assert_eq!(m["Inserted"], true);
    assert_eq!(m["Image"], server.url("/boot.iso"));
    let blk = lv.virsh(&["domblklist", &name]).await;
    assert!(blk.contains("media/"), "the CD holds the cached image: {blk}");
    assert_eq!(
        lv.domstate(&name).await,
        "running",
        "no cold boot needed to insert"
    );

    // Once from CD, then a forced restart: the next boot is from the CD...
    let r = admin
        .patch(
            &system,
            json!({"Boot": {"BootSourceOverrideEnabled": "Once", "BootSourceOverrideTarget": "Cd"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let r = admin.post(&reset, json!({"ResetType": "ForceRestart"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
    wait_source(&serial, "cdrom").await;
    let s = admin.get(&system).await.json;
    assert_eq!(s["Boot"]["BootSourceOverrideEnabled"], "Disabled");
    assert_eq!(s["Boot"]["BootSourceOverrideTarget"], "None");

    // ...and the one after is from the disk again.
    let r = admin.post(&reset, json!({"ResetType": "ForceRestart"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
    wait_source(&serial, "disk").await;

    if firmware == "bios" {
        // A graceful restart with a boot change pending: the guest shuts down
        // (ACPI) and bmcd starts it again so that the new order applies.
        let r = admin
            .patch(&system, json!({"Boot": {"BootSourceOverrideTarget": "Cd"}}))
            .await;
        assert_eq!(r.json["Boot"]["BootSourceOverrideEnabled"], "Once");
        let r = admin.post(&reset, json!({"ResetType": "GracefulRestart"})).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
        wait_source(&serial, "cdrom").await;
        assert_eq!(
            admin.get(&system).await.json["Boot"]["BootSourceOverrideEnabled"],
            "Disabled"
        );
    }
    // Eject: the drive is empty again, in the guest's definition too.
    let r = admin
        .post(&format!("{cd}/Actions/VirtualMedia.EjectMedia"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
    assert_eq!(admin.get(&cd).await.json["Inserted"], false);
    let blk = lv.virsh(&["domblklist", "--inactive", &name]).await;
    assert!(!blk.contains("media/"), "{blk}");
    let r = admin.post(&reset, json!({"ResetType": "ForceOff"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    bmc.stop().await;
    drop(lv);
}

#[tokio::test]
async fn one_time_cd_boot_with_seabios() {
    tokio::time::timeout(Duration::from_secs(420), one_time_cd_boot("bios"))
        .await
        .expect("took too long");
}

#[tokio::test]
async fn one_time_cd_boot_with_ovmf() {
    tokio::time::timeout(Duration::from_secs(420), one_time_cd_boot("efi"))
        .await
        .expect("took too long");
}

/// A Python venv with OpenStack's sushy client (from PyPI), made once.
async fn sushy_python() -> PathBuf {
    let venv = repo().join("target/sushy-venv");
    let python = venv.join("bin/python");
    let ready = async || {
        Command::new(&python)
            .args(["-c", "import sushy"])
            .status()
            .await
            .is_ok_and(|s| s.success())
    };
    if !ready().await {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv)).await;
        run(Command::new(venv.join("bin/pip")).args([
            "install",
            "-q",
            "--disable-pip-version-check",
            "sushy==5.14.0",
        ]))
        .await;
    }
    python
}

#[tokio::test]
async fn sushy_runs_the_ironic_virtual_media_sequence() {
    tokio::time::timeout(Duration::from_secs(480), async {
        let python = sushy_python().await;
        let cache = repo().join("target/e2e-cache");
        run(Command::new(repo().join("tests/e2e/build-guest.sh")).arg(&cache)).await;
        let iso = run(Command::new(repo().join("tests/e2e/build-boot-iso.sh")).arg(&cache)).await;
        let disk_src = run(Command::new(repo().join("tests/e2e/build-boot-disk.sh")).arg(&cache)).await;
        let work = TempDir::new("e2e-sushy");
        let disk = work.path().join("disk.img");
        std::fs::copy(disk_src.trim(), &disk).expect("copy disk");
        let lv = Libvirtd::start(&work.path().join("libvirtd")).await;
        let serial = work.path().join("serial.log");
        let xml = run(Command::new(repo().join("tests/e2e/guest-domain.sh"))
            .arg("redfin-sushy")
            .arg(&cache)
            .arg(&serial)
            .env("GUEST_BOOT", "firmware")
            .env("GUEST_BOOT_ORDER", "hd")
            .env("GUEST_DISK", &disk))
        .await;
        let xml_file = work.path().join("domain.xml");
        std::fs::write(&xml_file, xml).expect("write XML");
        lv.virsh(&["define", xml_file.to_str().expect("utf8")]).await;
        let uuid = lv.virsh(&["domuuid", "redfin-sushy"]).await.trim().to_owned();
        let server = ImageServer::start(vec![ServedFile {
            path: "/ironic-boot.iso".into(),
            body: std::fs::read(iso.trim()).expect("read ISO"),
            credentials: None,
        }])
        .await;
        let bmc = TestBmc::start(&work.path().join("state"), &lv.uri).await;
        let out = tokio::time::timeout(
            Duration::from_secs(300),
            Command::new(&python)
                .arg(repo().join("tests/sushy/ironic_vmedia.py"))
                .arg(format!("https://{}", bmc.addr))
                .arg(redfin_tests::ADMIN)
                .arg(redfin_tests::ADMIN_PASSWORD)
                .arg(&uuid)
                .arg(server.url("/ironic-boot.iso"))
                .env("REDFIN_GUEST_SERIAL_LOG", &serial)
                .output(),
        )
        .await
        .expect("sushy script timed out")
        .expect("sushy script runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "sushy sequence failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("PASS eject virtual media"), "{stdout}");
        // The power-on really booted the inserted ISO.
        let log = String::from_utf8_lossy(&std::fs::read(&serial).expect("serial log")).into_owned();
        assert!(log.contains("REDFIN-GUEST-BOOTED source=cdrom"), "{log}");
        assert_eq!(lv.domstate("redfin-sushy").await, "shut off");
        bmc.stop().await;
        drop(lv);
    })
    .await
    .expect("took too long");
}

/// The `REDFIN-GUEST-INFO` line of the last boot.
fn last_info(log: &Path) -> Option<String> {
    let text = std::fs::read(log).ok()?;
    let text = String::from_utf8_lossy(&text);
    let at = text.rfind("REDFIN-GUEST-INFO ")?;
    text[at..].lines().next().map(str::to_owned)
}

#[tokio::test]
async fn bios_settings_switch_the_firmware_and_reach_the_guest() {
    tokio::time::timeout(Duration::from_secs(420), async {
        let cache = repo().join("target/e2e-cache");
        run(Command::new(repo().join("tests/e2e/build-guest.sh")).arg(&cache)).await;
        let disk_src = run(Command::new(repo().join("tests/e2e/build-boot-disk.sh")).arg(&cache)).await;
        let work = TempDir::new("e2e-bios");
        let disk = work.path().join("disk.img");
        std::fs::copy(disk_src.trim(), &disk).expect("copy disk");
        let lv = Libvirtd::start(&work.path().join("libvirtd")).await;
        let serial = work.path().join("serial.log");
        let xml = run(Command::new(repo().join("tests/e2e/guest-domain.sh"))
            .arg("redfin-bios")
            .arg(&cache)
            .arg(&serial)
            .env("GUEST_BOOT", "firmware")
            .env("GUEST_BOOT_ORDER", "hd")
            .env("GUEST_DISK", &disk))
        .await;
        let xml_file = work.path().join("domain.xml");
        std::fs::write(&xml_file, xml).expect("write XML");
        lv.virsh(&["define", xml_file.to_str().expect("utf8")]).await;
        let uuid = lv.virsh(&["domuuid", "redfin-bios"]).await.trim().to_owned();
        let bmc = TestBmc::start(&work.path().join("state"), &lv.uri).await;
        let admin = bmc.admin();
        let system = format!("/redfish/v1/Systems/{uuid}");
        let reset = format!("{system}/Actions/ComputerSystem.Reset");

        let r = admin.post(&reset, json!({"ResetType": "On"})).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        wait_source(&serial, "disk").await;
        let info = last_info(&serial).expect("info line");
        assert!(info.contains("firmware=bios"), "{info}");

        let r = admin
            .patch(
                &format!("{system}/Bios/Settings"),
                json!({"Attributes": {"BootMode": "Uefi", "SystemSerialNumber": "REDFIN-SN-7"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
        assert_eq!(
            admin.get(&format!("{system}/Bios")).await.json["Attributes"]["BootMode"],
            "LegacyBios",
            "pending until the reset"
        );
        let r = admin.post(&reset, json!({"ResetType": "ForceRestart"})).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let info = last_info(&serial).unwrap_or_default();
            if info.contains("firmware=efi") {
                assert!(info.contains("serial=REDFIN-SN-7"), "{info}");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "no UEFI boot: {info}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let b = admin.get(&format!("{system}/Bios")).await.json;
        assert_eq!(b["Attributes"]["BootMode"], "Uefi");
        assert_eq!(b["Attributes"]["SystemSerialNumber"], "REDFIN-SN-7");

        // Secure Boot: the next start runs OVMF's Secure Boot build with enrolled
        // keys (the test guest's unsigned boot loader is then refused, as on
        // real hardware; what is checked is the firmware the VM runs).
        let r = admin
            .patch(&format!("{system}/SecureBoot"), json!({"SecureBootEnable": true}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
        assert_eq!(r.json["SecureBootCurrentBoot"], "Disabled");
        let r = admin.post(&reset, json!({"ResetType": "ForceRestart"})).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
        let live = lv.virsh(&["dumpxml", "redfin-bios"]).await;
        assert!(live.contains("secure='yes'"), "{live}");
        let sb = admin.get(&format!("{system}/SecureBoot")).await.json;
        assert_eq!(sb["SecureBootCurrentBoot"], "Enabled");
        assert_eq!(lv.domstate("redfin-bios").await, "running");
        let r = admin.post(&reset, json!({"ResetType": "ForceOff"})).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        bmc.stop().await;
        drop(lv);
    })
    .await
    .expect("took too long");
}

#[tokio::test]
async fn a_usb_stick_is_plugged_in_booted_from_and_pulled_out() {
    tokio::time::timeout(Duration::from_secs(420), async {
        let cache = repo().join("target/e2e-cache");
        run(Command::new(repo().join("tests/e2e/build-guest.sh")).arg(&cache)).await;
        let disk_src = run(Command::new(repo().join("tests/e2e/build-boot-disk.sh")).arg(&cache)).await;
        let work = TempDir::new("e2e-usb");
        let lv = Libvirtd::start(&work.path().join("libvirtd")).await;
        let serial = work.path().join("serial.log");
        // No disk of its own: the guest can only boot what is plugged in.
        let xml = run(Command::new(repo().join("tests/e2e/guest-domain.sh"))
            .arg("redfin-usb")
            .arg(&cache)
            .arg(&serial)
            .env("GUEST_BOOT", "firmware")
            .env("GUEST_BOOT_ORDER", "hd"))
        .await;
        let xml_file = work.path().join("domain.xml");
        std::fs::write(&xml_file, xml).expect("write XML");
        lv.virsh(&["define", xml_file.to_str().expect("utf8")]).await;
        let uuid = lv.virsh(&["domuuid", "redfin-usb"]).await.trim().to_owned();
        let server = ImageServer::start(vec![ServedFile {
            path: "/stick.img".into(),
            body: std::fs::read(disk_src.trim()).expect("read disk image"),
            credentials: None,
        }])
        .await;
        let bmc = TestBmc::start(&work.path().join("state"), &lv.uri).await;
        let admin = bmc.admin();
        let system = format!("/redfish/v1/Systems/{uuid}");
        let usb = format!("/redfish/v1/Managers/{uuid}/VirtualMedia/Usb");
        assert_eq!(admin.get(&usb).await.json["MediaTypes"], json!(["USBStick"]));

        let r = admin
            .post(
                &format!("{usb}/Actions/VirtualMedia.InsertMedia"),
                json!({"Image": server.url("/stick.img")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
        let monitor = r.header("location").expect("monitor").to_owned();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let m = admin.get(&monitor).await;
            if m.status != StatusCode::ACCEPTED {
                assert_eq!(m.status, StatusCode::NO_CONTENT, "{:?}", m.json);
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "insert did not finish");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(admin.get(&usb).await.json["Inserted"], true);
        let s = admin.get(&system).await.json;
        assert!(s["Boot"]["BootSourceOverrideTarget@Redfish.AllowableValues"]
            .as_array()
            .expect("targets")
            .contains(&json!("Usb")));

        // Boot once from the stick.
        let r = admin
            .patch(
                &system,
                json!({"Boot": {"BootSourceOverrideEnabled": "Once", "BootSourceOverrideTarget": "Usb"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
        let r = admin
            .post(
                &format!("{system}/Actions/ComputerSystem.Reset"),
                json!({"ResetType": "On"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
        wait_source(&serial, "disk").await;

        // Pull it out: gone from the running guest and its definition.
        let r = admin
            .post(&format!("{usb}/Actions/VirtualMedia.EjectMedia"), json!({}))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
        assert_eq!(admin.get(&usb).await.json["Inserted"], false);
        let live = lv.virsh(&["domblklist", "redfin-usb"]).await;
        let stored = lv.virsh(&["domblklist", "--inactive", "redfin-usb"]).await;
        assert!(
            !live.contains("media/") && !stored.contains("media/"),
            "{live}\n{stored}"
        );
        let r = admin
            .post(
                &format!("{system}/Actions/ComputerSystem.Reset"),
                json!({"ResetType": "ForceOff"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        bmc.stop().await;
        drop(lv);
    })
    .await
    .expect("took too long");
}
