//! End to end against a real libvirtd (private, started here) with tiny TCG
//! guests: Redfish resets, boot overrides, virtual media, BIOS settings and
//! USB sticks change what libvirt reports and what the guest's serial console
//! shows.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::StatusCode;
use redfin_tests::e2e::{cache, repo, run, Libvirtd};
use redfin_tests::{Client, ImageServer, ServedFile, TempDir, TestBmc};
use serde_json::json;
use tokio::process::Command;

/// Runs one of the tests/e2e build scripts on the shared cache; returns what it
/// printed (the image's path, for the image builders).
async fn build(script: &str) -> String {
    run(Command::new(repo().join("tests/e2e").join(script)).arg(cache()))
        .await
        .trim()
        .to_owned()
}

/// A private libvirtd, stopped (with its guests) when dropped.
struct Lab {
    bmc: TestBmc,
    lv: Libvirtd,
    _work: TempDir,
    name: String,
    serial: PathBuf,
    uuid: String,
    /// `/redfish/v1/Systems/{uuid}`.
    system: String,
}

impl Lab {
    /// Defines guest `name` (`env`: guest-domain.sh settings; `disk`: give it
    /// its own copy of the bootable disk image) and starts bmcd.
    async fn start(name: &str, disk: bool, env: &[(&str, &str)]) -> Lab {
        build("build-guest.sh").await;
        let work = TempDir::new(name);
        let lv = Libvirtd::start(&work.path().join("libvirtd")).await;
        let serial = work.path().join("serial.log");
        let mut cmd = Command::new(repo().join("tests/e2e/guest-domain.sh"));
        cmd.arg(name).arg(cache()).arg(&serial).envs(env.iter().copied());
        if disk {
            let copy = work.path().join("disk.img");
            std::fs::copy(build("build-boot-disk.sh").await, &copy).expect("copy disk");
            cmd.env("GUEST_DISK", &copy);
        }
        let xml_file = work.path().join("domain.xml");
        std::fs::write(&xml_file, run(&mut cmd).await).expect("write XML");
        lv.virsh(&["define", xml_file.to_str().expect("utf8")]).await;
        let uuid = lv.virsh(&["domuuid", name]).await.trim().to_owned();
        let bmc = TestBmc::start(&work.path().join("state"), &lv.uri).await;
        Lab {
            system: format!("/redfish/v1/Systems/{uuid}"),
            bmc,
            lv,
            _work: work,
            name: name.to_owned(),
            serial,
            uuid,
        }
    }

    fn admin(&self) -> Client {
        self.bmc.admin()
    }

    fn work_dir(&self) -> &Path {
        self._work.path()
    }

    async fn reset(&self, reset_type: &str) {
        let r = self
            .admin()
            .post(
                &format!("{}/Actions/ComputerSystem.Reset", self.system),
                json!({"ResetType": reset_type}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{reset_type}: {:?}", r.json);
    }

    async fn domstate(&self) -> String {
        self.lv.virsh(&["domstate", &self.name]).await.trim().to_owned()
    }

    async fn power_state(&self) -> String {
        self.admin().get(&self.system).await.json["PowerState"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Inserts `image` into virtual media slot `slot` and waits for its task.
    async fn insert(&self, slot: &str, image: &str) {
        let r = self
            .admin()
            .post(
                &format!(
                    "/redfish/v1/Managers/{}/VirtualMedia/{slot}/Actions/VirtualMedia.InsertMedia",
                    self.uuid
                ),
                json!({"Image": image}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
        let status = finish_task(&self.admin(), r.header("location").expect("task monitor")).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "insert into {slot}");
    }

    async fn stop(self) {
        self.bmc.stop().await;
    }
}

/// Polls a task monitor until the task is over; returns the final status.
async fn finish_task(admin: &Client, monitor: &str) -> StatusCode {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let m = admin.get(monitor).await;
        if m.status != StatusCode::ACCEPTED {
            return m.status;
        }
        assert!(tokio::time::Instant::now() < deadline, "task did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
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

fn serial_text(log: &Path) -> String {
    std::fs::read(log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn markers(log: &Path) -> usize {
    serial_text(log)
        .matches("REDFIN-GUEST-BOOTED source=initrd")
        .count()
}

/// The `source=` of the last boot marker in the serial log.
fn last_source(log: &Path) -> Option<String> {
    let text = serial_text(log);
    let at = text.rfind("REDFIN-GUEST-BOOTED source=")?;
    let rest = &text[at + "REDFIN-GUEST-BOOTED source=".len()..];
    Some(rest.chars().take_while(|c| c.is_ascii_alphanumeric()).collect())
}

/// The `REDFIN-GUEST-INFO` line of the last boot.
fn last_info(log: &Path) -> Option<String> {
    let text = serial_text(log);
    let at = text.rfind("REDFIN-GUEST-INFO ")?;
    text[at..].lines().next().map(str::to_owned)
}

async fn wait_source(log: &Path, want: &str) {
    wait_for(
        &format!("a boot from {want}"),
        Duration::from_secs(120),
        async || last_source(log).as_deref() == Some(want),
    )
    .await;
}

/// Reads the stream until an event whose MessageId ends with `suffix`, within `limit`.
async fn next_event_ending(sse: &mut redfin_tests::EventStream, suffix: &str, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let ev = tokio::time::timeout_at(deadline, sse.next_event())
            .await
            .unwrap_or_else(|_| panic!("no {suffix} event within {limit:?}"))
            .expect("stream open");
        if ev["Events"][0]["MessageId"]
            .as_str()
            .is_some_and(|m| m.ends_with(suffix))
        {
            return;
        }
    }
}

/// Serves a file built by a tests/e2e script from 127.0.0.1.
async fn serve(script: &str, path: &str) -> ImageServer {
    ImageServer::start(vec![ServedFile {
        path: path.into(),
        body: std::fs::read(build(script).await).expect("read image"),
        credentials: None,
    }])
    .await
}

#[tokio::test]
async fn redfish_resets_drive_a_real_tcg_guest() {
    tokio::time::timeout(Duration::from_secs(420), async {
        let lab = Lab::start("redfin-e2e", false, &[]).await;
        let admin = lab.admin();
        let r = admin.get("/redfish/v1/Systems").await;
        assert!(r.json["Members"]
            .as_array()
            .expect("members")
            .iter()
            .any(|m| m["@odata.id"] == lab.system.as_str()));
        assert_eq!(lab.domstate().await, "shut off");
        assert_eq!(lab.power_state().await, "Off");

        // On: the domain runs and the guest boots.
        lab.reset("On").await;
        assert_eq!(lab.domstate().await, "running");
        assert_eq!(lab.power_state().await, "On");
        wait_for("first boot", Duration::from_secs(90), async || {
            markers(&lab.serial) >= 1
        })
        .await;

        // GracefulShutdown: ACPI power button; the guest powers itself off.
        lab.reset("GracefulShutdown").await;
        wait_for("ACPI shutdown", Duration::from_secs(60), async || {
            lab.domstate().await == "shut off"
        })
        .await;
        assert_eq!(lab.power_state().await, "Off");

        // PowerCycle from off powers on; ForceRestart reboots the guest.
        lab.reset("PowerCycle").await;
        assert_eq!(lab.domstate().await, "running");
        // The serial log is rewritten at each start of the domain.
        wait_for("boot after power cycle", Duration::from_secs(90), async || {
            markers(&lab.serial) >= 1
        })
        .await;
        lab.reset("ForceRestart").await;
        wait_for("boot after forced restart", Duration::from_secs(90), async || {
            markers(&lab.serial) >= 2
        })
        .await;
        assert_eq!(lab.domstate().await, "running");

        // Nmi reaches the running guest's kernel.
        lab.reset("Nmi").await;
        wait_for("NMI in the guest", Duration::from_secs(30), async || {
            serial_text(&lab.serial).contains("NMI received")
        })
        .await;

        // ForceOff pulls the plug at once.
        lab.reset("ForceOff").await;
        assert_eq!(lab.domstate().await, "shut off");
        assert_eq!(lab.power_state().await, "Off");

        // A change made behind the BMC's back shows on the next read, and as
        // an event on the SSE stream within a second.
        let filter = format!("OriginResource eq '{}'", lab.system)
            .replace(' ', "%20")
            .replace('\'', "%27");
        let mut sse = admin
            .stream(&format!("/redfish/v1/EventService/SSE?$filter={filter}"))
            .await;
        assert_eq!(sse.status, StatusCode::OK);
        lab.lv.virsh(&["start", &lab.name]).await;
        assert_eq!(lab.power_state().await, "On");
        next_event_ending(&mut sse, "ResourcePoweredOn", Duration::from_secs(1)).await;
        lab.lv.virsh(&["destroy", &lab.name]).await;
        let destroyed = std::time::Instant::now();
        next_event_ending(&mut sse, "ResourcePoweredOff", Duration::from_secs(1)).await;
        println!(
            "SSE power-off event {:?} after virsh destroy returned",
            destroyed.elapsed()
        );
        assert_eq!(lab.power_state().await, "Off");
        lab.stop().await;
    })
    .await
    .expect("the end-to-end scenario took too long");
}

/// The Ironic-style flow on a guest whose firmware (SeaBIOS or OVMF) picks the
/// boot device: insert an ISO served from 127.0.0.1 into the running guest's CD
/// drive (a task), set a one-time boot from CD, reset: the guest boots the ISO;
/// the reset after boots from disk again and GET reports the override Disabled.
async fn one_time_cd_boot(firmware: &str) {
    let name = format!("redfin-boot-{firmware}");
    let env = [
        ("GUEST_BOOT", "firmware"),
        ("GUEST_BOOT_ORDER", "hd"),
        ("GUEST_FIRMWARE", firmware),
    ];
    let lab = Lab::start(&name, true, &env).await;
    let server = serve("build-boot-iso.sh", "/boot.iso").await;
    let admin = lab.admin();
    let s = admin.get(&lab.system).await.json;
    let mode = if firmware == "efi" { "UEFI" } else { "Legacy" };
    assert_eq!(s["Boot"]["BootSourceOverrideMode"], mode);
    assert!(s["Boot"]["BootSourceOverrideTarget@Redfish.AllowableValues"]
        .as_array()
        .expect("targets")
        .contains(&json!("Cd")));

    lab.reset("On").await;
    wait_source(&lab.serial, "disk").await;

    // Insert the ISO into the running guest (hot change of the CD's medium).
    let cd = format!("/redfish/v1/Managers/{}/VirtualMedia/Cd", lab.uuid);
    lab.insert("Cd", &server.url("/boot.iso")).await;
    let m = admin.get(&cd).await.json;
    assert_eq!(m["Inserted"], true);
    assert_eq!(m["Image"], server.url("/boot.iso"));
    let blk = lab.lv.virsh(&["domblklist", &name]).await;
    assert!(blk.contains("media/"), "the CD holds the cached image: {blk}");
    assert_eq!(lab.domstate().await, "running", "no cold boot needed to insert");
    // The change is an event, logged for the system.
    let log = format!("{}/LogServices/Log/Entries", lab.system);
    let media = format!("{}/VirtualMedia/Cd", lab.system);
    wait_for(
        "the media event in the system log",
        Duration::from_secs(5),
        async || {
            admin.get(&log).await.json["Members"].as_array().is_some_and(|m| {
                m.iter()
                    .any(|e| e["Links"]["OriginOfCondition"]["@odata.id"] == media.as_str())
            })
        },
    )
    .await;

    // Once from CD, then a forced restart: the next boot is from the CD...
    let r = admin
        .patch(
            &lab.system,
            json!({"Boot": {"BootSourceOverrideEnabled": "Once", "BootSourceOverrideTarget": "Cd"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    lab.reset("ForceRestart").await;
    wait_source(&lab.serial, "cdrom").await;
    let s = admin.get(&lab.system).await.json;
    assert_eq!(s["Boot"]["BootSourceOverrideEnabled"], "Disabled");
    assert_eq!(s["Boot"]["BootSourceOverrideTarget"], "None");

    // ...and the one after is from the disk again.
    lab.reset("ForceRestart").await;
    wait_source(&lab.serial, "disk").await;

    if firmware == "bios" {
        // A graceful restart with a boot change pending: the guest shuts down
        // (ACPI) and bmcd starts it again so that the new order applies.
        let r = admin
            .patch(&lab.system, json!({"Boot": {"BootSourceOverrideTarget": "Cd"}}))
            .await;
        assert_eq!(r.json["Boot"]["BootSourceOverrideEnabled"], "Once");
        lab.reset("GracefulRestart").await;
        wait_source(&lab.serial, "cdrom").await;
        assert_eq!(
            admin.get(&lab.system).await.json["Boot"]["BootSourceOverrideEnabled"],
            "Disabled"
        );
    }
    // Eject: the drive is empty again, in the guest's definition too.
    let r = admin
        .post(&format!("{cd}/Actions/VirtualMedia.EjectMedia"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
    assert_eq!(admin.get(&cd).await.json["Inserted"], false);
    let blk = lab.lv.virsh(&["domblklist", "--inactive", &name]).await;
    assert!(!blk.contains("media/"), "{blk}");

    // A medium changed behind the BMC's back (virsh change-media on the running
    // guest) shows in the slot and is an event for it, within a second.
    let filter = format!("OriginResource eq '{media}'")
        .replace(' ', "%20")
        .replace('\'', "%27");
    let mut sse = admin
        .stream(&format!("/redfish/v1/EventService/SSE?$filter={filter}"))
        .await;
    assert_eq!(sse.status, StatusCode::OK);
    let details = lab.lv.virsh(&["domblklist", "--details", &name]).await;
    let target = details
        .lines()
        .find(|l| l.contains("cdrom"))
        .and_then(|l| l.split_whitespace().nth(2))
        .expect("the CD drive's target")
        .to_owned();
    let iso = build("build-boot-iso.sh").await;
    lab.lv
        .virsh(&["change-media", &name, &target, &iso, "--insert", "--live"])
        .await;
    next_event_ending(&mut sse, "ResourceChanged", Duration::from_secs(1)).await;
    let m = admin.get(&cd).await.json;
    assert_eq!(m["Inserted"], true, "{m}");
    assert_eq!(m["Image"], format!("file://{iso}"), "{m}");
    lab.lv
        .virsh(&["change-media", &name, &target, "--eject", "--live"])
        .await;
    next_event_ending(&mut sse, "ResourceChanged", Duration::from_secs(1)).await;
    assert_eq!(admin.get(&cd).await.json["Inserted"], false);

    lab.reset("ForceOff").await;
    lab.stop().await;
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
        let env = [("GUEST_BOOT", "firmware"), ("GUEST_BOOT_ORDER", "hd")];
        let lab = Lab::start("redfin-sushy", true, &env).await;
        let server = serve("build-boot-iso.sh", "/ironic-boot.iso").await;
        let out = tokio::time::timeout(
            Duration::from_secs(300),
            Command::new(&python)
                .arg(repo().join("tests/sushy/ironic_vmedia.py"))
                .arg(format!("https://{}", lab.bmc.addr))
                .arg(redfin_tests::ADMIN)
                .arg(redfin_tests::ADMIN_PASSWORD)
                .arg(&lab.uuid)
                .arg(server.url("/ironic-boot.iso"))
                .env("REDFIN_GUEST_SERIAL_LOG", &lab.serial)
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
        let log = serial_text(&lab.serial);
        assert!(log.contains("REDFIN-GUEST-BOOTED source=cdrom"), "{log}");
        assert_eq!(lab.domstate().await, "shut off");
        lab.stop().await;
    })
    .await
    .expect("took too long");
}

#[tokio::test]
async fn bios_settings_switch_the_firmware_and_reach_the_guest() {
    tokio::time::timeout(Duration::from_secs(420), async {
        let env = [("GUEST_BOOT", "firmware"), ("GUEST_BOOT_ORDER", "hd")];
        let lab = Lab::start("redfin-bios", true, &env).await;
        let admin = lab.admin();
        let bios = format!("{}/Bios", lab.system);

        lab.reset("On").await;
        wait_source(&lab.serial, "disk").await;
        let info = last_info(&lab.serial).expect("info line");
        assert!(info.contains("firmware=bios"), "{info}");

        let r = admin
            .patch(
                &format!("{bios}/Settings"),
                json!({"Attributes": {"BootMode": "Uefi", "SystemSerialNumber": "REDFIN-SN-7"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
        assert_eq!(
            admin.get(&bios).await.json["Attributes"]["BootMode"],
            "LegacyBios",
            "pending until the reset"
        );
        lab.reset("ForceRestart").await;
        wait_for("a UEFI boot", Duration::from_secs(120), async || {
            last_info(&lab.serial).is_some_and(|i| i.contains("firmware=efi"))
        })
        .await;
        let info = last_info(&lab.serial).unwrap_or_default();
        assert!(info.contains("serial=REDFIN-SN-7"), "{info}");
        let b = admin.get(&bios).await.json;
        assert_eq!(b["Attributes"]["BootMode"], "Uefi");
        assert_eq!(b["Attributes"]["SystemSerialNumber"], "REDFIN-SN-7");

        // Secure Boot: the next start runs OVMF's Secure Boot build with enrolled
        // keys (the test guest's unsigned boot loader is then refused, as on
        // real hardware; what is checked is the firmware the VM runs).
        let secure_boot = format!("{}/SecureBoot", lab.system);
        let r = admin.patch(&secure_boot, json!({"SecureBootEnable": true})).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
        assert_eq!(r.json["SecureBootCurrentBoot"], "Disabled");
        lab.reset("ForceRestart").await;
        let live = lab.lv.virsh(&["dumpxml", &lab.name]).await;
        assert!(live.contains("secure='yes'"), "{live}");
        assert_eq!(
            admin.get(&secure_boot).await.json["SecureBootCurrentBoot"],
            "Enabled"
        );
        assert_eq!(lab.domstate().await, "running");
        lab.reset("ForceOff").await;
        lab.stop().await;
    })
    .await
    .expect("took too long");
}

#[tokio::test]
async fn a_usb_stick_is_plugged_in_booted_from_and_pulled_out() {
    tokio::time::timeout(Duration::from_secs(420), async {
        // No disk of its own: the guest can only boot what is plugged in.
        let env = [("GUEST_BOOT", "firmware"), ("GUEST_BOOT_ORDER", "hd")];
        let lab = Lab::start("redfin-usb", false, &env).await;
        let server = serve("build-boot-disk.sh", "/stick.img").await;
        let admin = lab.admin();
        let usb = format!("/redfish/v1/Managers/{}/VirtualMedia/Usb", lab.uuid);
        assert_eq!(admin.get(&usb).await.json["MediaTypes"], json!(["USBStick"]));

        lab.insert("Usb", &server.url("/stick.img")).await;
        assert_eq!(admin.get(&usb).await.json["Inserted"], true);
        let s = admin.get(&lab.system).await.json;
        assert!(s["Boot"]["BootSourceOverrideTarget@Redfish.AllowableValues"]
            .as_array()
            .expect("targets")
            .contains(&json!("Usb")));

        // Boot once from the stick.
        let r = admin
            .patch(
                &lab.system,
                json!({"Boot": {"BootSourceOverrideEnabled": "Once", "BootSourceOverrideTarget": "Usb"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
        lab.reset("On").await;
        wait_source(&lab.serial, "disk").await;

        // Pull it out: gone from the running guest and its definition.
        let r = admin
            .post(&format!("{usb}/Actions/VirtualMedia.EjectMedia"), json!({}))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
        assert_eq!(admin.get(&usb).await.json["Inserted"], false);
        let live = lab.lv.virsh(&["domblklist", &lab.name]).await;
        let stored = lab.lv.virsh(&["domblklist", "--inactive", &lab.name]).await;
        assert!(
            !live.contains("media/") && !stored.contains("media/"),
            "{live}\n{stored}"
        );
        lab.reset("ForceOff").await;
        lab.stop().await;
    })
    .await
    .expect("took too long");
}

#[tokio::test]
async fn bmcd_reconnects_when_libvirtd_restarts() {
    tokio::time::timeout(Duration::from_secs(180), async {
        let lab = Lab::start("redfin-reconnect", false, &[]).await;
        let admin = lab.admin();
        assert_eq!(admin.get(&lab.system).await.status, StatusCode::OK);
        // libvirtd goes away: requests fail cleanly, with a hint to retry.
        run(Command::new(repo().join("tests/e2e/libvirtd.sh"))
            .arg("stop")
            .arg(lab.work_dir().join("libvirtd")))
        .await;
        let r = admin.get(&lab.system).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.json);
        assert!(r.header("retry-after").is_some());
        // It comes back: bmcd reconnects by itself.
        Libvirtd::start(&lab.work_dir().join("libvirtd")).await.forget();
        wait_for("bmcd to reconnect", Duration::from_secs(30), async || {
            admin.get(&lab.system).await.status == StatusCode::OK
        })
        .await;
        // Events flow again on the new connection.
        let r = admin.get(&lab.system).await.json;
        assert_eq!(r["PowerState"], "Off");
        lab.reset("On").await;
        let log = format!("{}/LogServices/Log/Entries", lab.system);
        wait_for(
            "a power-on event after the reconnect",
            Duration::from_secs(10),
            async || {
                admin.get(&log).await.json["Members"].as_array().is_some_and(|m| {
                    m.iter().any(|e| {
                        e["MessageId"]
                            .as_str()
                            .is_some_and(|id| id.ends_with("ResourcePoweredOn"))
                    })
                })
            },
        )
        .await;
        lab.reset("ForceOff").await;
        lab.stop().await;
    })
    .await
    .expect("took too long");
}

/// The vendor Python clients' venvs (scripts/python-clients.sh, idempotent).
async fn persona_python(venv: &str) -> PathBuf {
    run(&mut Command::new(repo().join("scripts/python-clients.sh"))).await;
    repo().join("target/persona-venvs").join(venv).join("bin/python")
}

/// A per-VM endpoint for the lab's guest; returns where it listens.
async fn persona_endpoint(lab: &Lab, persona: &str, ip: &str, user: &str, password: &str) -> String {
    let r = lab
        .admin()
        .post(
            "/redfish/v1/Managers/BMC/Oem/Redfin/BmcEndpoints",
            json!({"SystemId": lab.uuid, "Persona": persona, "Address": format!("{ip}:0"),
                   "UserName": user, "Password": password}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    r.json["ListeningOn"].as_str().expect("listening").to_owned()
}

/// A vendor client's virtual media boot (tests/personas/*_vmedia_boot.py)
/// must boot the guest from the ISO once, then from its disk again.
async fn vendor_vmedia_boot(
    name: &str,
    persona: &str,
    ip: &str,
    venv: &str,
    script: &str,
    url_of: fn(&str) -> String,
) {
    let python = persona_python(venv).await;
    let env = [("GUEST_BOOT", "firmware"), ("GUEST_BOOT_ORDER", "hd")];
    let lab = Lab::start(name, true, &env).await;
    let server = serve("build-boot-iso.sh", "/persona-boot.iso").await;
    let at = persona_endpoint(&lab, persona, ip, "vendor", "vendor-pass-1").await;
    let out = tokio::time::timeout(
        Duration::from_secs(300),
        Command::new(&python)
            .arg(repo().join("tests/personas").join(script))
            .arg(url_of(&at))
            .arg("vendor")
            .arg("vendor-pass-1")
            .arg(server.url("/persona-boot.iso"))
            .env("PYTHONWARNINGS", "ignore")
            .output(),
    )
    .await
    .expect("client timed out")
    .expect("client runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("PASS powered on"), "{stdout}");
    // The guest really booted the inserted ISO...
    wait_source(&lab.serial, "cdrom").await;
    assert_eq!(lab.domstate().await, "running");
    // ...once: the next restart boots the disk.
    lab.reset("ForceRestart").await;
    wait_source(&lab.serial, "disk").await;
    lab.stop().await;
}

#[tokio::test]
async fn idrac9_persona_boots_the_virtual_cd_for_sushy_dell() {
    tokio::time::timeout(Duration::from_secs(480), async {
        vendor_vmedia_boot(
            "redfin-idrac",
            "idrac9",
            "127.0.0.2",
            "sushy",
            "idrac_vmedia_boot.py",
            |at| format!("https://{at}"),
        )
        .await;
    })
    .await
    .expect("took too long");
}

#[tokio::test]
async fn ilo5_persona_boots_the_virtual_cd_for_proliantutils() {
    tokio::time::timeout(Duration::from_secs(480), async {
        vendor_vmedia_boot(
            "redfin-ilo",
            "ilo5",
            "127.0.0.3",
            "proliantutils",
            "ilo_vmedia_boot.py",
            str::to_owned,
        )
        .await;
    })
    .await
    .expect("took too long");
}
