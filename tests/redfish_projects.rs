//! Projects (tenants): accounts of a project see and act on their project's
//! systems, profiles, images and volumes only; list, get, act and console on
//! another project's system (or the appliance's own resources) all answer as
//! if they did not exist; project quotas; who may manage projects; a project
//! is deleted only once empty.

use hyper::StatusCode;
use redfin_tests::{test_node, Client, TempDir, TestBmc};
use serde_json::{json, Value};

const PROJECTS: &str = "/redfish/v1/Oem/Redfin/Projects";
const PASSWORD: &str = "project-pass-1";

fn members(v: &Value) -> Vec<String> {
    v["Members"]
        .as_array()
        .unwrap_or_else(|| panic!("members: {v}"))
        .iter()
        .map(|m| m["@odata.id"].as_str().expect("id").to_owned())
        .collect()
}

fn node_with_pool(dir: &std::path::Path) -> String {
    let (uri, _) = test_node(dir, 2);
    let file = dir.join("node.xml");
    let xml = std::fs::read_to_string(&file).expect("node file");
    let pool = "  <pool type='dir'><name>images</name><uuid>11111111-0000-4000-8000-000000000001</uuid>\
        <capacity unit='GiB'>100</capacity><allocation>0</allocation><available unit='GiB'>100</available>\
        <source/><target><path>/images</path></target></pool>\n</node>\n";
    std::fs::write(&file, xml.replace("</node>\n", pool)).expect("write node file");
    uri
}

async fn account(admin: &Client, bmc: &TestBmc, user: &str, role: &str, project: &str) -> Client {
    let r = admin
        .post(
            "/redfish/v1/AccountService/Accounts",
            json!({"UserName": user, "Password": PASSWORD, "RoleId": role,
                   "Oem": {"Redfin": {"Project": project}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    assert_eq!(
        r.json["Oem"]["Redfin"]["Project"]["@odata.id"],
        format!("{PROJECTS}/{project}")
    );
    bmc.client().basic(user, PASSWORD)
}

async fn compose(c: &Client, name: &str, profile: &str) -> String {
    let r = c
        .post(
            "/redfish/v1/Systems",
            json!({"Name": name, "Oem": {"Redfin": {"Profile": profile}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{name}: {:?}", r.json);
    r.header("location").expect("location").to_owned()
}

fn assert_hidden(r: &redfin_tests::Resp, what: &str) {
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{what}: {:?}", r.json);
}

#[tokio::test]
async fn a_project_member_never_sees_another_projects_resources() {
    let dir = TempDir::new("projects");
    let uri = node_with_pool(dir.path());
    let mut config = TestBmc::config(&dir.path().join("state"), &uri);
    config.composition.pool = "images".into();
    let bmc = TestBmc::start_with(config).await;
    let admin = bmc.admin();

    // Projects, made by the service's administrator.
    for (id, max) in [("red", 2), ("blue", 4)] {
        let r = admin
            .post(
                PROJECTS,
                json!({"Id": id, "Description": "a team", "Quotas": {"MaxSystems": max}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
        assert_eq!(r.json["Quotas"]["MaxSystems"], max);
    }
    for (body, status) in [
        (json!({"Id": "red"}), StatusCode::CONFLICT),
        (json!({"Id": "a b"}), StatusCode::BAD_REQUEST),
        (
            json!({"Id": "x", "Quotas": {"MaxSystems": -1}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"Id": "x", "Quotas": {"MaxCPUs": 1}}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let r = admin.post(PROJECTS, body.clone()).await;
        assert_eq!(r.status, status, "{body}: {:?}", r.json);
        assert!(
            r.json["error"]["@Message.ExtendedInfo"].is_array(),
            "{:?}",
            r.json
        );
    }
    let r = admin
        .post(
            "/redfish/v1/AccountService/Accounts",
            json!({"UserName": "x", "Password": PASSWORD, "RoleId": "Operator",
                   "Oem": {"Redfin": {"Project": "green"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.json);

    let red = account(&admin, &bmc, "red-op", "Operator", "red").await;
    let red_ro = account(&admin, &bmc, "red-ro", "ReadOnly", "red").await;
    let blue = account(&admin, &bmc, "blue-admin", "Administrator", "blue").await;

    // A shared profile (the administrator's), and one of red's own.
    let r = admin
        .post(
            "/redfish/v1/Oem/Redfin/Profiles",
            json!({"Id": "small", "ProcessorCount": 1, "MemoryMiB": 256, "DiskCapacityBytes": 16 << 20}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let r = red
        .post(
            "/redfish/v1/Oem/Redfin/Profiles",
            json!({"Id": "red-only", "ProcessorCount": 1, "MemoryMiB": 128, "DiskCapacityBytes": 16 << 20}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    // Host files are not a project's to hand out.
    let r = red
        .post(
            "/redfish/v1/Oem/Redfin/Profiles",
            json!({"Id": "k", "ProcessorCount": 1, "MemoryMiB": 128, "DiskCapacityBytes": 16 << 20,
                   "Kernel": "/boot/vmlinuz"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.json);

    let red_1 = compose(&red, "red-1", "small").await;
    let blue_1 = compose(&blue, "blue-1", "small").await;
    let all = members(&admin.get("/redfish/v1/Systems").await.json);
    assert_eq!(all.len(), 4, "the administrator sees everything: {all:?}");

    // List: each project sees its own system only (not the test driver's
    // domains, which belong to no project).
    assert_eq!(
        members(&red.get("/redfish/v1/Systems").await.json),
        vec![red_1.clone()]
    );
    assert_eq!(
        members(&blue.get("/redfish/v1/Systems").await.json),
        vec![blue_1.clone()]
    );
    let expanded = red.get("/redfish/v1/Systems?$expand=.").await.json;
    assert_eq!(
        expanded["Members"].as_array().map(Vec::len),
        Some(1),
        "{expanded}"
    );
    assert_eq!(expanded["Members"][0]["Name"], "red-1");
    let root = red.get("/redfish/v1?$expand=.").await.json;
    assert_eq!(root["Systems"]["Members@odata.count"], 1, "{}", root["Systems"]);
    let blue_id = blue_1.rsplit('/').next().expect("id").to_owned();
    let chassis = members(&red.get("/redfish/v1/Chassis").await.json);
    assert!(!chassis.iter().any(|c| c.contains(&blue_id)), "{chassis:?}");
    assert_eq!(chassis.len(), 1);
    let managers = members(&red.get("/redfish/v1/Managers").await.json);
    assert_eq!(managers.len(), 1, "{managers:?}");

    // Get, act and console on blue's system: as if it did not exist.
    for path in [
        blue_1.clone(),
        format!("{blue_1}/Bios"),
        format!("/redfish/v1/Chassis/{blue_id}"),
        format!("/redfish/v1/Managers/{blue_id}"),
        format!("/redfish/v1/Managers/{blue_id}/VirtualMedia"),
    ] {
        assert_hidden(&red.get(&path).await, &path);
    }
    assert_hidden(
        &red.post(
            &format!("{blue_1}/Actions/ComputerSystem.Reset"),
            json!({"ResetType": "ForceOff"}),
        )
        .await,
        "reset",
    );
    assert_hidden(
        &red.post(
            &format!("{blue_1}/Actions/Oem/Redfin.ConsoleToken"),
            json!({"ConsoleType": "Serial"}),
        )
        .await,
        "console",
    );
    assert_hidden(&red.patch(&blue_1, json!({"AssetTag": "x"})).await, "patch");
    assert_hidden(&red.delete(&blue_1).await, "delete");
    assert_eq!(
        admin.get(&blue_1).await.json["Name"],
        "blue-1",
        "blue-1 untouched"
    );

    // Nor on blue's own per-VM BMC: red's account does not log in there.
    let port = std::net::TcpListener::bind(("127.0.0.6", 0))
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let r = admin
        .post(
            "/redfish/v1/Managers/BMC/Oem/Redfin/BmcEndpoints",
            json!({"Id": "blue-bmc", "SystemId": blue_id, "Persona": "generic",
                   "Address": format!("127.0.0.6:{port}")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let at: std::net::SocketAddr = format!("127.0.0.6:{port}").parse().expect("addr");
    let on_endpoint = |user: &str| Client::new(at).basic(user, PASSWORD);
    let r = on_endpoint("red-op")
        .get(&format!("/redfish/v1/Systems/{blue_id}"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.json);
    let r = on_endpoint("blue-admin")
        .get(&format!("/redfish/v1/Systems/{blue_id}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let r = admin
        .delete("/redfish/v1/Managers/BMC/Oem/Redfin/BmcEndpoints/blue-bmc")
        .await;
    assert!(r.status.is_success(), "{:?}", r.json);

    // The appliance's own resources are not a project's either.
    for path in [
        "/redfish/v1/Managers/BMC",
        "/redfish/v1/UpdateService",
        "/redfish/v1/CertificateService",
        "/redfish/v1/EventService",
        "/redfish/v1/AggregationService",
        "/redfish/v1/Systems/00000000-0000-4000-8000-000000000001",
    ] {
        assert_hidden(&blue.get(path).await, path);
    }
    assert_hidden(&red.get(&format!("{PROJECTS}/blue")).await, "blue's project");
    assert_eq!(
        members(&red.get(PROJECTS).await.json),
        vec![format!("{PROJECTS}/red")]
    );
    let p = red.get(&format!("{PROJECTS}/red")).await.json;
    assert_eq!(p["Usage"]["Systems"], 1);
    assert_eq!(p["Links"]["Accounts@odata.count"], 2);
    // A project's Administrator manages neither accounts nor projects.
    let accounts = members(&blue.get("/redfish/v1/AccountService/Accounts").await.json);
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    let r = blue
        .post(
            "/redfish/v1/AccountService/Accounts",
            json!({"UserName": "mine", "Password": PASSWORD, "RoleId": "Administrator"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.json);
    let r = blue
        .patch(&format!("{PROJECTS}/blue"), json!({"Quotas": {"MaxSystems": 99}}))
        .await;
    assert_ne!(r.status, StatusCode::OK, "{:?}", r.json);
    let sessions = blue.get("/redfish/v1/SessionService/Sessions").await;
    assert_eq!(sessions.status, StatusCode::OK);

    // Its own system: read, reset, virtual media (ConfigureManager on its own
    // system's manager), but a ReadOnly member only reads.
    let red_id = red_1.rsplit('/').next().expect("id").to_owned();
    assert_eq!(red.get(&red_1).await.json["Name"], "red-1");
    let r = red
        .post(
            &format!("{red_1}/Actions/ComputerSystem.Reset"),
            json!({"ResetType": "ForceOff"}),
        )
        .await;
    assert!(r.status.is_success(), "{:?}", r.json);
    let r = red
        .get(&format!("/redfish/v1/Managers/{red_id}/VirtualMedia"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let r = red_ro
        .post(
            &format!("{red_1}/Actions/ComputerSystem.Reset"),
            json!({"ResetType": "On"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.json);
    assert_eq!(red_ro.get(&red_1).await.status, StatusCode::OK);

    // Profiles: red's own is red's; the shared one is read by all, changed by none.
    let profiles = members(&blue.get("/redfish/v1/Oem/Redfin/Profiles").await.json);
    assert_eq!(profiles, vec!["/redfish/v1/Oem/Redfin/Profiles/small".to_owned()]);
    assert_hidden(
        &blue.get("/redfish/v1/Oem/Redfin/Profiles/red-only").await,
        "red's profile",
    );
    let r = blue
        .post(
            "/redfish/v1/Systems",
            json!({"Name": "b2", "Oem": {"Redfin": {"Profile": "red-only"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.json);
    let r = red.delete("/redfish/v1/Oem/Redfin/Profiles/small").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.json);
    // A system for another project cannot be asked for.
    let r = red
        .post(
            "/redfish/v1/Systems",
            json!({"Name": "r2", "Oem": {"Redfin": {"Profile": "small", "Project": "blue"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.json);

    // Volumes: red's disk and new volume are red's.
    let vols = "/redfish/v1/Storage/images/Volumes";
    let r = red
        .post(vols, json!({"Name": "red-data.qcow2", "CapacityBytes": 1 << 20}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let red_vols = members(&red.get(vols).await.json);
    assert!(
        red_vols.contains(&format!("{vols}/red-data.qcow2")),
        "{red_vols:?}"
    );
    assert!(
        red_vols.contains(&format!("{vols}/red-1-disk0.qcow2")),
        "{red_vols:?}"
    );
    let blue_vols = members(&blue.get(vols).await.json);
    assert!(!blue_vols.iter().any(|v| v.contains("red-")), "{blue_vols:?}");
    assert_hidden(&blue.get(&format!("{vols}/red-data.qcow2")).await, "red's volume");
    assert_hidden(
        &blue.delete(&format!("{vols}/red-data.qcow2")).await,
        "red's volume",
    );
    let r = red
        .post(
            &format!("{vols}/red-data.qcow2/Actions/Oem/Redfin.Attach"),
            json!({"System": blue_1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.json);
    // Images from another project's volume cannot be registered.
    let r = blue
        .post(
            "/redfish/v1/Oem/Redfin/Images",
            json!({"Id": "stolen", "Volume": format!("{vols}/red-data.qcow2")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.json);

    // Project quotas: red holds at most 2 systems.
    compose(&red, "red-2", "red-only").await;
    let r = red
        .post(
            "/redfish/v1/Systems",
            json!({"Name": "red-3", "Oem": {"Redfin": {"Profile": "small"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.json);
    assert!(r.json.to_string().contains("project 'red'"), "{:?}", r.json);
    // The administrator composes for a project by naming it; its quota counts.
    let r = admin
        .post(
            "/redfish/v1/Systems",
            json!({"Name": "red-4", "Oem": {"Redfin": {"Profile": "small", "Project": "red"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.json);
    let blue_2 = {
        let r = admin
            .post(
                "/redfish/v1/Systems",
                json!({"Name": "blue-2", "Oem": {"Redfin": {"Profile": "small", "Project": "blue"}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
        r.header("location").expect("location").to_owned()
    };
    assert!(members(&blue.get("/redfish/v1/Systems").await.json).contains(&blue_2));

    // A project is deleted only once nothing belongs to it.
    let r = admin.delete(&format!("{PROJECTS}/blue")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.json);
    for s in [&blue_1, &blue_2] {
        // Composed systems start at once; they are deleted when off.
        let off = admin
            .post(
                &format!("{s}/Actions/ComputerSystem.Reset"),
                json!({"ResetType": "ForceOff"}),
            )
            .await;
        assert!(
            off.status.is_success() || off.status == StatusCode::CONFLICT,
            "{:?}",
            off.json
        );
        let r = admin.delete(s).await;
        assert!(r.status.is_success(), "{:?}", r.json);
    }
    for a in members(&admin.get("/redfish/v1/AccountService/Accounts").await.json) {
        let acc = admin.get(&a).await.json;
        if acc["UserName"] == "blue-admin" {
            let r = admin
                .patch(&a, json!({"Oem": {"Redfin": {"Project": null}}}))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
            assert!(r.json["Oem"]["Redfin"]["Project"].is_null());
        }
    }
    // Out of its project, the account serves the whole service again.
    assert_eq!(members(&blue.get("/redfish/v1/Systems").await.json).len(), 4);
    let r = admin.delete(&format!("{PROJECTS}/blue")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
    bmc.stop().await;
}

#[tokio::test]
async fn projects_outlive_a_restart() {
    let dir = TempDir::new("projects-restart");
    let uri = node_with_pool(dir.path());
    let config = TestBmc::config(&dir.path().join("state"), &uri);
    let bmc = TestBmc::start_with(config.clone()).await;
    let admin = bmc.admin();
    let r = admin
        .post(PROJECTS, json!({"Id": "lab", "Quotas": {"MaxVCPUs": 3}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    account(&admin, &bmc, "lab-op", "Operator", "lab").await;
    bmc.stop().await;

    let bmc = TestBmc::start_with(config).await;
    let lab = bmc.client().basic("lab-op", PASSWORD);
    let p = lab.get(&format!("{PROJECTS}/lab")).await.json;
    assert_eq!(p["Quotas"]["MaxVCPUs"], 3);
    assert!(members(&lab.get("/redfish/v1/Systems").await.json).is_empty());
    assert_hidden(&lab.get("/redfish/v1/Managers/BMC").await, "the BMC");
    bmc.stop().await;
}

/// Asks bmcd's console socket what console-proxy asks for an SSH serial
/// console (the `AuthorizeSerial` line, as on the wire); returns the answer.
async fn authorize_serial(
    socket: &std::path::Path,
    user: &str,
    password: &str,
    system: Option<&str>,
) -> Value {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut stream = tokio::net::UnixStream::connect(socket)
        .await
        .expect("console socket");
    let mut line = serde_json::to_vec(&json!({
        "request": "AuthorizeSerial", "user": user, "password": password,
        "system": system, "client": "127.0.0.1",
    }))
    .expect("json");
    line.push(b'\n');
    stream.write_all(&line).await.expect("send");
    let mut answer = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        BufReader::new(&mut stream).read_line(&mut answer),
    )
    .await
    .expect("an answer in time")
    .expect("read");
    serde_json::from_str(&answer).expect("an answer")
}

/// The SSH serial console follows the same project rules: a member reaches
/// its own project's systems only, by UUID or name; another project's system
/// answers as one that does not exist. Logins are checked by bmcd.
#[tokio::test]
async fn ssh_serial_console_authorization_keeps_to_the_project() {
    let dir = TempDir::new("projects-ssh");
    let uri = node_with_pool(dir.path());
    let state = dir.path().join("state");
    let mut config = TestBmc::config(&state, &uri);
    config.composition.pool = "images".into();
    let bmc = TestBmc::start_with(config).await;
    let admin = bmc.admin();
    for id in ["red", "blue"] {
        let r = admin.post(PROJECTS, json!({"Id": id})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    }
    let red = account(&admin, &bmc, "red-op", "Operator", "red").await;
    let blue = account(&admin, &bmc, "blue-op", "Operator", "blue").await;
    let r = admin
        .post(
            "/redfish/v1/Oem/Redfin/Profiles",
            json!({"Id": "small", "ProcessorCount": 1, "MemoryMiB": 256, "DiskCapacityBytes": 16 << 20}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let red_1 = compose(&red, "red-1", "small").await;
    let blue_1 = compose(&blue, "blue-1", "small").await;
    let red_id = red_1.rsplit('/').next().expect("id");
    let blue_id = blue_1.rsplit('/').next().expect("id");
    let socket = state.join("console.sock");

    // The login alone.
    let a = authorize_serial(&socket, "red-op", PASSWORD, None).await;
    assert_eq!(a, json!({"result": "Authenticated", "user": "red-op"}));
    let a = authorize_serial(&socket, "red-op", "wrong-password-1", None).await;
    assert_eq!(a, json!({"result": "LoginFailed"}));
    let a = authorize_serial(&socket, "nobody", PASSWORD, Some(red_id)).await;
    assert_eq!(a, json!({"result": "LoginFailed"}));

    // Another project's system, by UUID or by name: as if it did not exist.
    for other in [blue_id, "blue-1"] {
        let a = authorize_serial(&socket, "red-op", PASSWORD, Some(other)).await;
        assert_eq!(
            a,
            json!({"result": "Refused", "reason": "no such system"}),
            "{other}"
        );
    }
    // Its own system, by UUID or name, gets past the project check (it is
    // not running: the test driver's systems have no console to open).
    for own in [red_id, "red-1"] {
        let a = authorize_serial(&socket, "red-op", PASSWORD, Some(own)).await;
        assert_eq!(a["result"], "Refused", "{a}");
        assert_ne!(a["reason"], "no such system", "{own}: {a}");
    }
    // The administrator (no project) reaches both.
    let a = authorize_serial(
        &socket,
        redfin_tests::ADMIN,
        redfin_tests::ADMIN_PASSWORD,
        Some("blue-1"),
    )
    .await;
    assert_ne!(a["reason"], "no such system", "{a}");

    // The failed logins are in the audit log, as a failed Redfish login is.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let log = admin
            .get("/redfish/v1/Managers/BMC/LogServices/AuditLog/Entries")
            .await
            .json
            .to_string();
        if log.matches("SSH serial console login answered 401").count() == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{log}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    bmc.stop().await;
}
