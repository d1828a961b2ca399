//! Managers and chassis against the libvirt test driver: `Manager.Reset` of a
//! per-VM BMC, the BMC's network identity, the chassis' power, thermal and
//! sensors, and the virtual CD every BMC offers, even to a system defined
//! without a CD drive.

use std::net::SocketAddr;
use std::time::Duration;

use hyper::StatusCode;
use redfin_tests::{
    test_node, tiny_iso, Client, ImageServer, ServedFile, TempDir, TestBmc, ADMIN, ADMIN_PASSWORD,
};
use serde_json::{json, Value};

#[tokio::test]
async fn a_per_vm_bmc_reboots_without_its_system() {
    let dir = TempDir::new("mreset");
    let (uri, doms) = test_node(dir.path(), 2);
    let mut config = TestBmc::config(&dir.path().join("state"), &uri);
    config.system_bmc_reset_s = 2;
    let bmc = TestBmc::start_with(config).await;
    let admin = bmc.admin();
    let sys = &doms[0].uuid;
    let r = admin
        .post(
            "/redfish/v1/Managers/BMC/Oem/Redfin/BmcEndpoints",
            json!({"Id": "node1", "SystemId": sys, "Persona": "idrac9", "Address": "127.0.0.1:0"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let at: SocketAddr = r.json["ListeningOn"]
        .as_str()
        .expect("listening")
        .parse()
        .expect("addr");
    let vendor = Client::new(at).basic(ADMIN, ADMIN_PASSWORD);
    let idrac = "/redfish/v1/Managers/iDRAC.Embedded.1";
    let before = vendor.get(idrac).await;
    assert_eq!(before.status, StatusCode::OK);
    assert_eq!(
        before.json["Actions"]["#Manager.Reset"]["target"],
        format!("{idrac}/Actions/Manager.Reset")
    );
    let power_before = admin.get(&format!("/redfish/v1/Systems/{sys}")).await.json["PowerState"].clone();

    // Badly typed or unknown reset types are refused; nothing restarts.
    let r = vendor
        .post(
            &format!("{idrac}/Actions/Manager.Reset"),
            json!({"ResetType": "PowerCycle"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    let r = vendor
        .post(&format!("{idrac}/Actions/Manager.Reset"), json!({"ResetType": 1}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);

    // The reset as badfish and racadm do it, through the vendor endpoint.
    let r = vendor
        .post(
            &format!("{idrac}/Actions/Manager.Reset"),
            json!({"ResetType": "GracefulRestart"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    // The endpoint goes away; the aggregate BMC shows its manager starting.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(at).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the endpoint kept listening"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = admin.get(&format!("/redfish/v1/Managers/{sys}")).await.json;
    assert_eq!(m["Status"]["State"], "Starting", "{m}");
    assert!(m["LastResetTime"].is_string(), "{m}");
    // The system did not notice.
    let s = admin.get(&format!("/redfish/v1/Systems/{sys}")).await.json;
    assert_eq!(s["PowerState"], power_before);
    // It comes back on the same address.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(at).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the endpoint did not come back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(vendor.get(idrac).await.status, StatusCode::OK);
    let m = admin.get(&format!("/redfish/v1/Managers/{sys}")).await.json;
    assert_eq!(m["Status"]["State"], "Enabled", "{m}");
    // The system's log (also its BMC's) tells the story (log entries are
    // written in batches: wait for the last one).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let entries = admin
            .get(&format!("/redfish/v1/Managers/{sys}/LogServices/Log/Entries"))
            .await
            .json;
        let states: Vec<String> = entries["Members"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| {
                e["MessageId"]
                    .as_str()
                    .is_some_and(|m| m.ends_with("ResourceStateChanged"))
            })
            .map(|e| e["MessageArgs"][1].as_str().unwrap_or_default().to_owned())
            .collect();
        if states.len() >= 3 || tokio::time::Instant::now() > deadline {
            assert_eq!(states, vec!["Enabled", "Starting", "Enabled"], "{entries}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Dell's own spelling of it (racadm racreset, iDRAC's OEM card service).
    let card = "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/DelliDRACCardService";
    let r = vendor.get(card).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let target = r.json["Actions"]["#DelliDRACCardService.iDRACReset"]["target"]
        .as_str()
        .expect("target")
        .to_owned();
    let r = vendor.post(&target, json!({"Force": "Sometimes"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    let r = vendor.post(&target, json!({"Force": "Graceful"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        r.json["@Message.ExtendedInfo"][0]["MessageId"],
        "IDRAC.2.8.RAC064"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(at).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "the iDRAC kept listening");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A read-only account cannot reset a manager; an unknown one is 404.
    let r = admin
        .post(
            "/redfish/v1/AccountService/Accounts",
            json!({"UserName": "viewer", "Password": "viewer-pass-1", "RoleId": "ReadOnly"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let viewer = bmc.client().basic("viewer", "viewer-pass-1");
    let r = viewer
        .post(
            &format!("/redfish/v1/Managers/{sys}/Actions/Manager.Reset"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = admin
        .post(
            "/redfish/v1/Managers/00000000-0000-4000-8000-0000000000ff/Actions/Manager.Reset",
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    bmc.stop().await;
}

#[tokio::test]
async fn the_bmc_network_identity_is_settable_and_checked() {
    let dir = TempDir::new("bmcnic");
    let (uri, doms) = test_node(dir.path(), 1);
    let bmc = TestBmc::start(&dir.path().join("state"), &uri).await;
    let admin = bmc.admin();
    let nics = admin
        .get("/redfish/v1/Managers/BMC/EthernetInterfaces")
        .await
        .json;
    let nic = nics["Members"][0]["@odata.id"]
        .as_str()
        .expect("a NIC")
        .to_owned();
    let before = admin.get(&nic).await;
    assert!(before.json["NameServers"].is_array(), "{}", before.json);
    assert!(before.json.get("SpeedMbps").is_some(), "{}", before.json);
    assert!(before.header("allow").is_some_and(|a| a.contains("PATCH")));

    let r = admin
        .patch(&nic, json!({"HostName": "bmc-lab-7", "FQDN": "bmc-lab-7.lab.example", "StaticNameServers": ["10.0.0.53", "fd00::53"]}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["HostName"], "bmc-lab-7");
    assert_eq!(r.json["FQDN"], "bmc-lab-7.lab.example");
    assert_eq!(r.json["StaticNameServers"], json!(["10.0.0.53", "fd00::53"]));
    assert_eq!(r.json["NameServers"][0], "10.0.0.53");
    let proto = admin.get("/redfish/v1/Managers/BMC/NetworkProtocol").await.json;
    assert_eq!(proto["HostName"], "bmc-lab-7");
    assert_eq!(proto["SSH"]["ProtocolEnabled"], false);
    // The BMC of each system shares these interfaces.
    let sys_nic = nic.replace("/Managers/BMC/", &format!("/Managers/{}/", doms[0].uuid));
    assert_eq!(admin.get(&sys_nic).await.json["HostName"], "bmc-lab-7");

    for (body, message) in [
        (json!({"HostName": "bad_name!"}), "PropertyValueIncorrect"),
        (json!({"FQDN": "a..b"}), "PropertyValueIncorrect"),
        (
            json!({"StaticNameServers": ["dns.example"]}),
            "PropertyValueIncorrect",
        ),
        (json!({"StaticNameServers": "10.0.0.1"}), "PropertyValueTypeError"),
        (
            json!({"IPv4StaticAddresses": [{"Address": "10.0.0.9"}]}),
            "PropertyNotWritable",
        ),
        (json!({"MACAddress": "52:54:00:00:00:01"}), "PropertyNotWritable"),
        (json!({"Colour": "blue"}), "PropertyUnknown"),
    ] {
        let r = admin.patch(&nic, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.json);
        assert!(r.message_id().ends_with(message), "{body}: {}", r.json);
    }
    assert_eq!(
        admin.get(&nic).await.json["HostName"],
        "bmc-lab-7",
        "refused writes change nothing"
    );
    // Kept across a restart.
    let state = bmc.state_dir.clone();
    bmc.stop().await;
    let bmc = TestBmc::start(&state, &uri).await;
    assert_eq!(bmc.admin().get(&nic).await.json["FQDN"], "bmc-lab-7.lab.example");
    bmc.stop().await;
}

#[tokio::test]
async fn chassis_power_and_temperatures_follow_the_system() {
    let dir = TempDir::new("chassis");
    let (uri, doms) = test_node(dir.path(), 1);
    let bmc = TestBmc::start(&dir.path().join("state"), &uri).await;
    let admin = bmc.admin();
    let sys = &doms[0].uuid;
    let chassis = format!("/redfish/v1/Chassis/{sys}");
    let c = admin.get(&chassis).await.json;
    for link in [
        "Power",
        "Thermal",
        "PowerSubsystem",
        "ThermalSubsystem",
        "EnvironmentMetrics",
        "Sensors",
        "Controls",
    ] {
        let target = c[link]["@odata.id"]
            .as_str()
            .unwrap_or_else(|| panic!("{link} linked"));
        assert_eq!(admin.get(target).await.status, StatusCode::OK, "{target}");
    }
    assert!(c["SerialNumber"].as_str().is_some_and(|s| !s.is_empty()));

    let reading = |v: &Value| {
        v["PowerControl"][0]["PowerConsumedWatts"]
            .as_f64()
            .expect("watts")
    };
    let on = admin.get(&format!("{chassis}/Power")).await.json;
    assert!(doms[0].running);
    let sensor = admin
        .get(&format!("{chassis}/Sensors/PowerConsumption"))
        .await
        .json;
    assert_eq!(sensor["Reading"].as_f64(), Some(reading(&on)));
    assert_eq!(sensor["ReadingUnits"], "W");
    let cpu_on = admin.get(&format!("{chassis}/Sensors/CPUTemp")).await.json["Reading"]
        .as_f64()
        .expect("on: a reading");

    let r = admin
        .post(
            &format!("/redfish/v1/Systems/{sys}/Actions/ComputerSystem.Reset"),
            json!({"ResetType": "ForceOff"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let off = admin.get(&format!("{chassis}/Power")).await.json;
    assert!(reading(&off) < reading(&on), "off draws less: {off} vs {on}");
    let cpu_off = admin.get(&format!("{chassis}/Sensors/CPUTemp")).await.json;
    assert!(cpu_off["Reading"].is_null(), "{cpu_off}");
    assert!(cpu_on > 22.0);
    let metrics = admin.get(&format!("{chassis}/EnvironmentMetrics")).await.json;
    assert_eq!(metrics["PowerWatts"]["Reading"].as_f64(), Some(reading(&off)));

    // The chassis' indicator is the system's.
    let r = admin
        .patch(&chassis, json!({"LocationIndicatorActive": true}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let s = admin.get(&format!("/redfish/v1/Systems/{sys}")).await.json;
    assert_eq!(s["LocationIndicatorActive"], true);
    assert_eq!(s["IndicatorLED"], "Lit");
    let r = admin.patch(&chassis, json!({"IndicatorLED": "Off"})).await;
    assert_eq!(r.json["LocationIndicatorActive"], false);
    let r = admin.patch(&chassis, json!({"PowerState": "On"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        admin.get(&format!("{chassis}/Sensors/Nope")).await.status,
        StatusCode::NOT_FOUND
    );
    bmc.stop().await;
}

/// A node whose one domain has no CD drive, as many hand-made VMs are.
fn node_without_cd(dir: &std::path::Path, running: bool) -> (String, String) {
    let uuid = "00000000-0000-4000-8000-00000000c0d0";
    let xml = format!(
        "<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>1</threads>\
         <active>2</active><mhz>2000</mhz><model>x86_64</model></cpu><memory>16777216</memory>\
         <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\
         <name>bare</name><uuid>{uuid}</uuid><memory unit='MiB'>512</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>\
         <disk type='file' device='disk'><source file='/var/lib/redfin/bare.qcow2'/><target dev='vda' bus='virtio'/></disk>\
         </devices><test:runstate>{}</test:runstate></domain></node>",
        if running { 1 } else { 5 }
    );
    let file = dir.join("node.xml");
    std::fs::write(&file, xml).expect("node file");
    (format!("test://{}", file.display()), uuid.to_owned())
}

#[tokio::test]
async fn a_system_without_a_cd_drive_still_has_the_virtual_cd() {
    let dir = TempDir::new("nocd");
    let (uri, sys) = node_without_cd(dir.path(), false);
    let server = ImageServer::start(vec![ServedFile {
        path: "/boot.iso".into(),
        body: tiny_iso(64 << 10),
        credentials: None,
    }])
    .await;
    let bmc = TestBmc::start(&dir.path().join("state"), &uri).await;
    let admin = bmc.admin();
    let media = admin
        .get(&format!("/redfish/v1/Systems/{sys}/VirtualMedia"))
        .await
        .json;
    assert_eq!(media["Members@odata.count"], 1, "{media}");
    let cd = format!("/redfish/v1/Systems/{sys}/VirtualMedia/Cd");
    let slot = admin.get(&cd).await.json;
    assert_eq!(slot["Inserted"], false);
    assert_eq!(slot["MediaTypes"], json!(["CD", "DVD"]));
    // Ejecting the empty slot is harmless.
    let r = admin
        .post(&format!("{cd}/Actions/VirtualMedia.EjectMedia"), json!({}))
        .await;
    assert!(r.status.is_success(), "{}", r.json);

    // Boot from CD is offered, and choosing it gives the system an empty drive.
    let s = admin.get(&format!("/redfish/v1/Systems/{sys}")).await.json;
    assert!(s["Boot"]["BootSourceOverrideTarget@Redfish.AllowableValues"]
        .as_array()
        .expect("targets")
        .contains(&json!("Cd")));
    let r = admin
        .patch(
            &format!("/redfish/v1/Systems/{sys}"),
            json!({"Boot": {"BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Once"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["Boot"]["BootSourceOverrideTarget"], "Cd");
    let slot = admin.get(&cd).await.json;
    assert_eq!(slot["Inserted"], false);
    assert!(
        slot["Name"]
            .as_str()
            .is_some_and(|n| n.starts_with("Virtual CD (")),
        "a drive now: {slot}"
    );

    // Inserting works as on any CD drive.
    let r = admin
        .post(
            &format!("{cd}/Actions/VirtualMedia.InsertMedia"),
            json!({"Image": server.url("/boot.iso")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let slot = admin.get(&cd).await.json;
        if slot["Inserted"] == true {
            assert_eq!(slot["Image"], server.url("/boot.iso"));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not inserted: {slot}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bmc.stop().await;
}

#[tokio::test]
async fn inserting_into_a_drive_less_system_adds_the_drive_with_the_medium() {
    let dir = TempDir::new("nocd2");
    let (uri, sys) = node_without_cd(dir.path(), false);
    let server = ImageServer::start(vec![ServedFile {
        path: "/a.iso".into(),
        body: tiny_iso(64 << 10),
        credentials: None,
    }])
    .await;
    let bmc = TestBmc::start(&dir.path().join("state"), &uri).await;
    let admin = bmc.admin();
    let cd = format!("/redfish/v1/Systems/{sys}/VirtualMedia/Cd");
    let r = admin
        .post(
            &format!("{cd}/Actions/VirtualMedia.InsertMedia"),
            json!({"Image": server.url("/a.iso")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let slot = admin.get(&cd).await.json;
        if slot["Inserted"] == true {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not inserted: {slot}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = admin.get(&format!("/redfish/v1/Systems/{sys}")).await.json;
    assert!(s["Boot"]["BootSourceOverrideTarget@Redfish.AllowableValues"]
        .as_array()
        .expect("targets")
        .contains(&json!("Cd")));
    let r = admin
        .post(&format!("{cd}/Actions/VirtualMedia.EjectMedia"), json!({}))
        .await;
    assert!(r.status.is_success(), "{}", r.json);
    assert_eq!(admin.get(&cd).await.json["Inserted"], false);
    bmc.stop().await;
}

/// What the OCP Server Hardware Management profile reads (docs/conformance.md):
/// the system's inventory strings, a guest's addresses as the hypervisor
/// knows them, each manager's serial console, the chassis' power limit and
/// its three temperatures (intake, CPU, system board).
#[tokio::test]
async fn server_inventory_addresses_consoles_and_board_temperature() {
    let dir = TempDir::new("ocp-server");
    let bmc = TestBmc::start(&dir.path().join("state"), "test:///default").await;
    let admin = bmc.admin();
    let systems = admin.get("/redfish/v1/Systems").await.json;
    let uri = systems["Members"][0]["@odata.id"]
        .as_str()
        .expect("a system")
        .to_owned();
    let id = uri.rsplit('/').next().expect("id").to_owned();

    let s = admin.get(&uri).await.json;
    assert!(
        s["SerialNumber"].as_str().is_some_and(|v| v.starts_with("VM")),
        "{s}"
    );
    assert_eq!(s["BiosVersion"], "SeaBIOS");
    assert!(s["SKU"].is_string() && s["PartNumber"].is_string(), "{s}");
    assert!(
        s["ProcessorSummary"]["Model"]
            .as_str()
            .is_some_and(|m| m.ends_with("virtual CPU")),
        "{s}"
    );
    assert_eq!(
        admin.get(&format!("/redfish/v1/Chassis/{id}")).await.json["SerialNumber"],
        s["SerialNumber"]
    );

    // The test driver's running domain: its NIC's address, from libvirt.
    let nics = admin.get(&format!("{uri}/EthernetInterfaces")).await.json;
    let nic_uri = nics["Members"][0]["@odata.id"]
        .as_str()
        .expect("a NIC")
        .to_owned();
    let nic = admin.get(&nic_uri).await.json;
    assert_eq!(
        nic["IPv4Addresses"],
        json!([{"Address": "192.168.122.3", "SubnetMask": "255.255.255.0", "AddressOrigin": "DHCP", "Gateway": null}]),
        "{nic}"
    );
    assert!(
        nic["HostName"].is_null() && nic["NameServers"] == json!([]),
        "{nic}"
    );
    // Off: the hypervisor knows no address.
    let r = admin
        .post(
            &format!("{uri}/Actions/ComputerSystem.Reset"),
            json!({"ResetType": "ForceOff"}),
        )
        .await;
    assert!(r.status.is_success(), "{:?}", r.json);
    assert_eq!(admin.get(&nic_uri).await.json["IPv4Addresses"], json!([]));

    let bmc_manager = admin.get("/redfish/v1/Managers/BMC").await.json;
    assert_eq!(bmc_manager["SerialConsole"]["ServiceEnabled"], false);
    let manager = admin.get(&format!("/redfish/v1/Managers/{id}")).await.json;
    assert_eq!(manager["SerialConsole"]["ConnectTypesSupported"], json!(["Oem"]));

    let power = admin.get(&format!("/redfish/v1/Chassis/{id}/Power")).await.json;
    assert_eq!(
        power["PowerControl"][0]["PowerLimit"]["LimitException"],
        "NoAction"
    );
    let thermal = admin.get(&format!("/redfish/v1/Chassis/{id}/Thermal")).await.json;
    let contexts: Vec<&str> = thermal["Temperatures"]
        .as_array()
        .expect("temperatures")
        .iter()
        .filter_map(|t| t["PhysicalContext"].as_str())
        .collect();
    assert_eq!(contexts, ["Intake", "CPU", "SystemBoard"]);
    let board = admin
        .get(&format!("/redfish/v1/Chassis/{id}/Sensors/BoardTemp"))
        .await
        .json;
    assert_eq!(board["PhysicalContext"], "SystemBoard");
    assert_eq!(board["Reading"], thermal["Temperatures"][2]["ReadingCelsius"]);
    bmc.stop().await;
}

/// With `console-ssh-port` (console-proxy's SSH listener) each system's
/// manager lists SSH among its serial console's connect types, and the
/// system's SerialConsole describes the SSH service; without it, neither.
#[tokio::test]
async fn the_ssh_serial_console_is_advertised_only_when_configured() {
    let dir = TempDir::new("ssh-console-advert");
    let mut config = TestBmc::config(&dir.path().join("state"), "test:///default");
    config.console.ssh_port = Some(2222);
    let bmc = TestBmc::start_with(config).await;
    let admin = bmc.admin();
    let systems = admin.get("/redfish/v1/Systems").await.json;
    let uri = systems["Members"][0]["@odata.id"]
        .as_str()
        .expect("a system")
        .to_owned();
    let id = uri.rsplit('/').next().expect("id").to_owned();
    let manager = admin.get(&format!("/redfish/v1/Managers/{id}")).await.json;
    assert_eq!(
        manager["SerialConsole"]["ConnectTypesSupported"],
        json!(["SSH", "Oem"]),
        "{manager}"
    );
    let s = admin.get(&uri).await.json;
    let serial_console = &s["SerialConsole"];
    assert_eq!(
        serial_console["SSH"],
        json!({
            "ServiceEnabled": serial_console["WebSocket"]["ServiceEnabled"],
            "Port": 2222,
            "SharedWithManagerCLI": false,
            "HotKeySequenceDisplay": "Press ~. to exit console",
        }),
        "{s}"
    );
    // The appliance's own manager offers no console either way.
    let bmc_manager = admin.get("/redfish/v1/Managers/BMC").await.json;
    assert_eq!(bmc_manager["SerialConsole"]["ConnectTypesSupported"], json!([]));
    bmc.stop().await;

    let dir = TempDir::new("ssh-console-no-advert");
    let bmc = TestBmc::start(&dir.path().join("state"), "test:///default").await;
    let admin = bmc.admin();
    let manager = admin.get(&format!("/redfish/v1/Managers/{id}")).await.json;
    assert_eq!(manager["SerialConsole"]["ConnectTypesSupported"], json!(["Oem"]));
    let s = admin.get(&uri).await.json;
    assert!(s["SerialConsole"].get("SSH").is_none(), "{s}");
    bmc.stop().await;
}
