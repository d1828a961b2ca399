//! The vendor personas, driven by the vendors' own client code from PyPI
//! against per-VM BMC endpoints of a bmcd on libvirt's test driver:
//! sushy with its Dell extension and sushy-oem-idrac against iDRAC 9,
//! proliantutils against iLO 5. After each client run, the aggregate
//! endpoint (the canonical model, read from libvirt) must show what the
//! client did.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::StatusCode;
use redfin_tests::{tiny_iso, Client, ImageServer, ServedFile, TempDir, TestBmc};
use serde_json::{json, Value};
use tokio::process::Command;

const UUID: &str = "00000000-0000-4000-8000-00000000000a";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One running domain with a disk, a CD drive, a USB controller and a NIC.
fn node(dir: &Path) -> String {
    let xml = format!(
        "<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>1</threads>\
         <active>2</active><mhz>2000</mhz><model>x86_64</model></cpu><memory>16777216</memory>\
         <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\
         <name>lab-node</name><uuid>{UUID}</uuid><memory unit='MiB'>1024</memory><vcpu>2</vcpu>\
         <os><type arch='x86_64' machine='q35'>hvm</type></os>\
         <devices>\
           <disk type='file' device='disk'><source file='/var/lib/redfin/lab.qcow2'/><target dev='vda' bus='virtio'/></disk>\
           <disk type='file' device='cdrom'><target dev='sda' bus='sata'/><readonly/></disk>\
           <controller type='usb' model='qemu-xhci'/>\
           <interface type='network'><mac address='52:54:00:aa:bb:01'/><source network='default'/><model type='virtio'/></interface>\
         </devices><test:runstate>1</test:runstate></domain></node>"
    );
    let file = dir.join("node.xml");
    std::fs::write(&file, xml).expect("write node");
    format!("test://{}", file.display())
}

/// A Python venv under target/ with `packages` from PyPI, made once.
async fn venv(name: &str, packages: &[&str], probe: &str) -> PathBuf {
    let dir = repo().join("target/persona-venvs").join(name);
    let python = dir.join("bin/python");
    let ready = async || {
        Command::new(&python)
            .args(["-c", probe])
            .status()
            .await
            .is_ok_and(|s| s.success())
    };
    if !ready().await {
        let _ = std::fs::remove_dir_all(&dir);
        let made = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&dir)
            .status()
            .await;
        assert!(
            made.is_ok_and(|s| s.success()),
            "python3 -m venv {}",
            dir.display()
        );
        let out = tokio::time::timeout(
            Duration::from_secs(300),
            Command::new(dir.join("bin/pip"))
                .args(["install", "-q", "--disable-pip-version-check"])
                .args(packages)
                .output(),
        )
        .await
        .expect("pip install timed out")
        .expect("pip runs");
        assert!(
            out.status.success(),
            "pip install {packages:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(ready().await, "{probe} fails in the new venv");
    }
    python
}

struct Lab {
    _dir: TempDir,
    bmc: TestBmc,
    admin: Client,
    _images: ImageServer,
    iso: String,
}

async fn lab(tag: &str) -> Lab {
    let dir = TempDir::new(tag);
    let uri = node(dir.path());
    let bmc = TestBmc::start(&dir.path().join("state"), &uri).await;
    let admin = bmc.admin();
    let images = ImageServer::start(vec![ServedFile {
        path: "/boot.iso".into(),
        body: tiny_iso(64 << 10),
        credentials: None,
    }])
    .await;
    let iso = images.url("/boot.iso");
    Lab {
        _dir: dir,
        bmc,
        admin,
        _images: images,
        iso,
    }
}

/// Adds a per-VM endpoint and returns where it listens.
async fn endpoint(
    admin: &Client,
    id: &str,
    persona: &str,
    address: &str,
    user: &str,
    password: &str,
) -> String {
    let r = admin
        .post(
            "/redfish/v1/Managers/BMC/Oem/Redfin/BmcEndpoints",
            json!({"Id": id, "SystemId": "lab-node", "Persona": persona, "Address": address,
                   "UserName": user, "Password": password}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(r.json["SystemId"], UUID);
    r.json["ListeningOn"].as_str().expect("listening").to_owned()
}

async fn run_client(python: &Path, script: &str, args: &[&str]) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(240),
        Command::new(python)
            .arg(repo().join("tests/personas").join(script))
            .args(args)
            .env("PYTHONWARNINGS", "ignore")
            .output(),
    )
    .await
    .expect("client timed out")
    .expect("client runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn canonical(admin: &Client, path: &str) -> Value {
    let r = admin.get(path).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.json);
    r.json
}

async fn idrac_with(python: PathBuf, tag: &str, extension: &str) {
    let lab = lab(tag).await;
    let at = endpoint(&lab.admin, "drac", "iDRAC9", "127.0.0.2:0", "root", "calvin-123").await;
    let out = run_client(
        &python,
        "idrac_sushy.py",
        &[&format!("https://{at}"), "root", "calvin-123", &lab.iso],
    )
    .await;
    assert!(
        out.contains(&format!("INFO Dell extension from {extension}")),
        "{out}"
    );
    for step in [
        "PASS one-time virtual CD boot through ImportSystemConfiguration",
        "PASS eject virtual media",
        "PASS BIOS job applied at the power-on",
        "PASS power off at the end",
    ] {
        assert!(out.contains(step), "missing '{step}' in:\n{out}");
    }
    // What the client did, as the canonical model (libvirt) shows it.
    let sys = canonical(&lab.admin, &format!("/redfish/v1/Systems/{UUID}")).await;
    assert_eq!(sys["PowerState"], "Off");
    let bios = canonical(&lab.admin, &format!("/redfish/v1/Systems/{UUID}/Bios")).await;
    assert_eq!(bios["Attributes"]["SystemSerialNumber"], "DELL-SN-42");
    let cd = canonical(&lab.admin, &format!("/redfish/v1/Systems/{UUID}/VirtualMedia/Cd")).await;
    assert_eq!(cd["Inserted"], false);
    // The one-time CD boot was used up by the power-on.
    assert_eq!(
        sys["Boot"]["BootSourceOverrideEnabled"], "Disabled",
        "{}",
        sys["Boot"]
    );
    // The endpoint's own account does not open the aggregate endpoint.
    let r = lab
        .bmc
        .client()
        .basic("root", "calvin-123")
        .get("/redfish/v1/Systems")
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    lab.bmc.stop().await;
}

#[tokio::test]
async fn idrac9_persona_with_sushy_dell_extension() {
    tokio::time::timeout(Duration::from_secs(600), async {
        let python = venv("sushy", &["sushy==5.14.0"], "import sushy.oem.dell").await;
        idrac_with(python, "persona-idrac-sushy", "sushy.oem.dell").await;
    })
    .await
    .expect("took too long");
}

#[tokio::test]
async fn idrac9_persona_with_sushy_oem_idrac() {
    tokio::time::timeout(Duration::from_secs(600), async {
        let python = venv(
            "sushy-oem-idrac",
            &["sushy==5.14.0", "sushy-oem-idrac==6.0.0"],
            "import sushy_oem_idrac",
        )
        .await;
        idrac_with(python, "persona-idrac-oem", "sushy_oem_idrac").await;
    })
    .await
    .expect("took too long");
}

#[tokio::test]
async fn ilo5_persona_with_proliantutils() {
    tokio::time::timeout(Duration::from_secs(600), async {
        // proliantutils 2.16.3 needs these pins to import (see docs/personas.md).
        let python = venv(
            "proliantutils",
            &[
                "proliantutils==2.16.3",
                "pysnmp-lextudio==5.0.34",
                "pyasn1==0.6.0",
                "pyasn1-modules==0.4.0",
                "sushy==5.14.0",
            ],
            "import proliantutils.redfish.redfish",
        )
        .await;
        let lab = lab("persona-ilo").await;
        let at = endpoint(
            &lab.admin,
            "ilo",
            "iLO5",
            "127.0.0.3:0",
            "Administrator",
            "password-1",
        )
        .await;
        let out = run_client(
            &python,
            "ilo_proliantutils.py",
            &[&at, "Administrator", "password-1", &lab.iso],
        )
        .await;
        for step in [
            "PASS one-time boot CDROM",
            "PASS power on, PostState InPost",
            "PASS eject virtual media CDROM",
            "PASS boot mode and BIOS setting applied at power-on",
            "PASS secure boot on after a reset",
        ] {
            assert!(out.contains(step), "missing '{step}' in:\n{out}");
        }
        let sys = canonical(&lab.admin, &format!("/redfish/v1/Systems/{UUID}")).await;
        assert_eq!(sys["PowerState"], "Off");
        assert_eq!(sys["Boot"]["BootSourceOverrideMode"], "UEFI");
        let sb = canonical(&lab.admin, &format!("/redfish/v1/Systems/{UUID}/SecureBoot")).await;
        assert_eq!(sb["SecureBootEnable"], true);
        lab.bmc.stop().await;
    })
    .await
    .expect("took too long");
}

/// A free port on a loopback address.
fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[tokio::test]
async fn endpoints_from_config_persist_and_keep_to_their_system() {
    let dir = TempDir::new("persona-config");
    let (uri, doms) = redfin_tests::test_node(dir.path(), 2);
    let drac_at = format!("127.0.0.2:{}", free_port("127.0.0.2"));
    let ilo_at = format!("127.0.0.3:{}", free_port("127.0.0.3"));
    let mut config = TestBmc::config(&dir.path().join("state"), &uri);
    config.endpoints = vec![
        bmcd::config::EndpointConfig {
            id: "rack1-node1".into(),
            system: doms[0].name.clone(),
            persona: "idrac9".into(),
            address: drac_at.clone(),
            user: Some("root".into()),
            password: Some("calvin-123".into()),
        },
        bmcd::config::EndpointConfig {
            id: "rack1-node2".into(),
            system: doms[1].uuid.clone(),
            persona: "ilo5".into(),
            address: ilo_at.clone(),
            user: None,
            password: None,
        },
    ];
    let bmc = TestBmc::start_with(config.clone()).await;
    let drac = Client::new(drac_at.parse().expect("addr")).basic("root", "calvin-123");
    let ilo =
        Client::new(ilo_at.parse().expect("addr")).basic(redfin_tests::ADMIN, redfin_tests::ADMIN_PASSWORD);

    // Each endpoint shows exactly its own system, under the vendor's id.
    let systems = drac.get("/redfish/v1/Systems").await;
    assert_eq!(
        systems.json["Members"],
        json!([{"@odata.id": "/redfish/v1/Systems/System.Embedded.1"}])
    );
    let sys = drac.get("/redfish/v1/Systems/System.Embedded.1").await;
    assert_eq!(sys.json["UUID"], doms[0].uuid);
    assert_eq!(sys.json["Manufacturer"], "Dell Inc.");
    let managers = ilo.get("/redfish/v1/Managers/").await;
    assert_eq!(
        managers.json["Members"],
        json!([{"@odata.id": "/redfish/v1/Managers/1/"}])
    );
    assert_eq!(ilo.get("/redfish/v1/systems/1").await.json["UUID"], doms[1].uuid);

    // Another VM's resources, and the aggregate BMC's manager, do not exist here.
    for path in [
        format!("/redfish/v1/Systems/{}", doms[1].uuid),
        "/redfish/v1/Managers/BMC".to_owned(),
    ] {
        let r = drac.get(&path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.message_id(), "IDRAC.2.8.SYS403", "{}", r.json);
    }
    // The endpoint's own account opens only its endpoint.
    assert_eq!(
        bmc.client()
            .basic("root", "calvin-123")
            .get("/redfish/v1/Systems")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        Client::new(ilo_at.parse().expect("addr"))
            .basic("root", "calvin-123")
            .get("/redfish/v1/Systems/1")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // iLO: errors in iLO's envelope; the root hides the manager type from
    // anonymous callers and names it to logged-in ones.
    let anon = Client::new(ilo_at.parse().expect("addr")).anonymous();
    let r = anon.get("/redfish/v1/Systems/1").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json["error"]["code"], "iLO.0.10.ExtendedInfo");
    assert!(anon.get("/redfish/v1/").await.json["Oem"]["Hpe"]["Manager"][0]["ManagerType"].is_null());
    assert_eq!(
        ilo.get("/redfish/v1/").await.json["Oem"]["Hpe"]["Manager"][0]["ManagerType"],
        "iLO 5"
    );
    // A power action in the wrong state: iLO's 400, iDRAC's 409 with PSU501.
    let r = ilo
        .post(
            "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
            json!({"ResetType": "ForceRestart"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.message_id(), "iLO.2.14.InvalidOperationForSystemState");
    let r = drac
        .post(
            "/redfish/v1/Systems/System.Embedded.1/Actions/ComputerSystem.Reset",
            json!({"ResetType": "On"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.json);
    assert_eq!(r.message_id(), "IDRAC.2.8.PSU501");

    // The ETag a persona shows is accepted back in If-Match.
    let etag = sys.header("etag").expect("etag").to_owned();
    let r = drac
        .clone()
        .header("if-match", &etag)
        .patch(
            "/redfish/v1/Systems/System.Embedded.1",
            json!({"AssetTag": "rack1"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.json);

    // Bad OEM API input gets Redfish errors and leaves nothing behind.
    let admin = bmc.admin();
    let oem = "/redfish/v1/Managers/BMC/Oem/Redfin/BmcEndpoints";
    for (body, status) in [
        (
            json!({"SystemId": "vm-1", "Persona": "ilo4", "Address": "127.0.0.4:0"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"SystemId": "nope", "Persona": "ilo5", "Address": "127.0.0.4:0"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"SystemId": "vm-1", "Persona": "ilo5", "Address": "not an address"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"SystemId": "vm-1", "Persona": "ilo5", "Address": drac_at}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"SystemId": "vm-1", "Persona": "ilo5", "Address": "127.0.0.4:0", "UserName": "x"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"SystemId": "vm-1", "Persona": "ilo5", "Address": "127.0.0.4:0", "Color": "red"}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let r = admin.post(oem, body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.json);
        assert!(!r.message_id().is_empty(), "{}", r.json);
    }
    assert_eq!(admin.get(oem).await.json["Members@odata.count"], 2);

    // A restart keeps the endpoints, their accounts and their listeners.
    bmc.stop().await;
    let bmc = TestBmc::start_with(config).await;
    let r = drac.get("/redfish/v1/Systems/System.Embedded.1").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["AssetTag"], "rack1");

    // Deleting an endpoint closes its listener and removes its account.
    let admin = bmc.admin();
    assert_eq!(
        admin.delete(&format!("{oem}/rack1-node1")).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(tokio::net::TcpStream::connect(&drac_at).await.is_err());
    let accounts = admin.get("/redfish/v1/AccountService/Accounts").await;
    assert_eq!(accounts.json["Members@odata.count"], 1, "{}", accounts.json);
    bmc.stop().await;
}

/// Every persona route declares its privilege: anonymous callers get 401 on
/// each, a ReadOnly account gets 403 on each one that changes something, and
/// nothing has changed afterwards.
#[tokio::test]
async fn every_persona_route_checks_its_privilege() {
    let dir = TempDir::new("persona-privileges");
    let uri = node(dir.path());
    let bmc = TestBmc::start(&dir.path().join("state"), &uri).await;
    let admin = bmc.admin();
    let r = admin
        .post(
            "/redfish/v1/AccountService/Accounts",
            json!({"UserName": "viewer", "Password": "viewer-pass-1", "RoleId": "ReadOnly"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let routers = bmcd::personas::Routers::new();
    for (persona, ip) in [("idrac9", "127.0.0.2"), ("ilo5", "127.0.0.3")] {
        let at = endpoint(
            &admin,
            persona,
            persona,
            &format!("{ip}:0"),
            "owner",
            "owner-pass-1",
        )
        .await;
        let addr = at.parse().expect("addr");
        let kind = bmcd::personas::PersonaKind::parse(persona).expect("persona");
        let mut checked = 0;
        for route in routers.of(kind).routes() {
            let path = route
                .path
                .replace("{slot}", "2")
                .replace("{jid}", "JID_000000000001")
                .replace("{id}", "JID_000000000001");
            let body = Some(bytes::Bytes::from_static(b"{}"));
            let anon = Client::new(addr)
                .anonymous()
                .raw(
                    route.method.clone(),
                    &path,
                    body.clone(),
                    Some("application/json"),
                )
                .await;
            assert_eq!(
                anon.status,
                StatusCode::UNAUTHORIZED,
                "{persona} {} {path}",
                route.method
            );
            let read_only = bmcd::privilege::Role::ReadOnly.privileges();
            if route.method != hyper::Method::GET && !route.required.allows(read_only) {
                let ro = Client::new(addr)
                    .basic("viewer", "viewer-pass-1")
                    .raw(route.method.clone(), &path, body, Some("application/json"))
                    .await;
                assert_eq!(
                    ro.status,
                    StatusCode::FORBIDDEN,
                    "{persona} {} {path}: {}",
                    route.method,
                    ro.json
                );
            }
            checked += 1;
        }
        assert!(checked >= 10, "{persona}: {checked} routes");
    }
    bmc.stop().await;
}

/// Each persona's BMC lists its own firmware and the system's BIOS in its
/// UpdateService, with the versions it shows elsewhere, and offers no update
/// it cannot apply.
#[tokio::test]
async fn each_persona_lists_its_firmware_and_bios() {
    let dir = TempDir::new("persona-firmware");
    let uri = node(dir.path());
    let bmc = TestBmc::start(&dir.path().join("state"), &uri).await;
    let admin = bmc.admin();
    let cases = [
        (
            "idrac9",
            "127.0.0.2",
            "/redfish/v1/Managers/iDRAC.Embedded.1",
            "/redfish/v1/Systems/System.Embedded.1",
            [
                (
                    "Installed-25227-7.00.00.173",
                    "Integrated Dell Remote Access Controller",
                    "7.00.00.173",
                    "25227",
                ),
                ("Installed-159-1.13.2", "BIOS", "1.13.2", "159"),
            ],
            "Dell Inc.",
        ),
        (
            "ilo5",
            "127.0.0.3",
            "/redfish/v1/Managers/1",
            "/redfish/v1/Systems/1",
            [
                ("1", "iLO 5", "2.72 Sep 04 2022", "iLO5"),
                ("2", "System ROM", "U32 v2.68 (07/14/2022)", "U32"),
            ],
            "HPE",
        ),
    ];
    for (persona, ip, manager, system, members, manufacturer) in cases {
        let at = endpoint(
            &admin,
            persona,
            persona,
            &format!("{ip}:0"),
            "owner",
            "owner-pass-1",
        )
        .await;
        let c = Client::new(at.parse().expect("addr")).basic("owner", "owner-pass-1");
        let root = c.get("/redfish/v1").await;
        assert_eq!(
            root.json["UpdateService"]["@odata.id"],
            "/redfish/v1/UpdateService"
        );
        let service = c.get("/redfish/v1/UpdateService").await;
        assert_eq!(service.status, StatusCode::OK, "{}", service.json);
        assert_eq!(
            service.json["FirmwareInventory"]["@odata.id"],
            "/redfish/v1/UpdateService/FirmwareInventory"
        );
        // It cannot apply an update: no action, no push URI, and the
        // aggregate's update routes are not there.
        assert!(service.json.get("Actions").is_none(), "{}", service.json);
        assert!(service.json.get("MultipartHttpPushUri").is_none());
        for path in [
            "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
            "/redfish/v1/UpdateService/update-multipart",
        ] {
            let r = c
                .post(path, json!({"ImageURI": "https://127.0.0.1/fw.bin"}))
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{persona} {path}: {}", r.json);
            assert!(!r.message_id().is_empty(), "{}", r.json);
        }
        let inventory = c.get("/redfish/v1/UpdateService/FirmwareInventory").await;
        let ids: Vec<String> = members
            .iter()
            .map(|(id, ..)| format!("/redfish/v1/UpdateService/FirmwareInventory/{id}"))
            .collect();
        assert_eq!(
            inventory.json["Members"],
            json!(ids.iter().map(|id| json!({"@odata.id": id})).collect::<Vec<_>>()),
            "{persona}"
        );
        for ((id, name, version, software_id), uri) in members.iter().zip(&ids) {
            let item = c.get(uri).await;
            assert_eq!(item.status, StatusCode::OK, "{}", item.json);
            assert_eq!(item.json["Id"], *id);
            assert_eq!(item.json["Name"], *name);
            assert_eq!(item.json["Version"], *version);
            assert_eq!(item.json["SoftwareId"], *software_id);
            assert_eq!(item.json["Manufacturer"], manufacturer);
            assert_eq!(item.json["Updateable"], false);
            assert_eq!(item.json["Status"]["State"], "Enabled");
            let related = item.json["RelatedItem"][0]["@odata.id"].as_str().unwrap_or("");
            assert!(
                related == manager || related == system,
                "{persona} {id}: {related}"
            );
        }
        // The same versions as the manager and the system show.
        let m = c.get(manager).await;
        let s = c.get(system).await;
        let bmc_version = members[0].2;
        let firmware = m.json["FirmwareVersion"].as_str().unwrap_or("");
        assert!(
            bmc_version.starts_with(firmware.trim_start_matches("iLO 5 v")),
            "{firmware}"
        );
        assert_eq!(s.json["BiosVersion"], members[1].2);
        assert_eq!(
            c.get("/redfish/v1/UpdateService/FirmwareInventory/BMC_BankA")
                .await
                .status,
            StatusCode::NOT_FOUND
        );
    }
    // The aggregate BMC's inventory is its own (no firmware banks configured here).
    let inventory = admin.get("/redfish/v1/UpdateService/FirmwareInventory").await;
    assert_eq!(inventory.json["Members"], json!([]));
    bmc.stop().await;
}
