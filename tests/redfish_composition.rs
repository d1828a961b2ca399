//! Storage pools and volumes as service-level Storage, the images catalog,
//! profiles and system composition against libvirt's test driver: create,
//! attach, detach, resize and delete volumes; compose and delete systems;
//! quotas and each kind of bad input.

use std::time::Duration;

use hyper::StatusCode;
use redfin_tests::{test_node, Client, TempDir, TestBmc};
use serde_json::{json, Value};

/// A test-driver node with `n` domains (see `test_node`) and a storage pool
/// `images` holding a 64 MiB raw base volume.
fn node_with_pool(dir: &std::path::Path, n: usize) -> (String, Vec<redfin_tests::TestDomain>) {
    let (uri, doms) = test_node(dir, n);
    let file = dir.join("node.xml");
    let xml = std::fs::read_to_string(&file).expect("node file");
    let pool = "  <pool type='dir'><name>images</name><uuid>11111111-0000-4000-8000-000000000001</uuid>\
        <capacity unit='GiB'>100</capacity><allocation>0</allocation><available unit='GiB'>100</available>\
        <source/><target><path>/images</path></target>\
        <volume type='file'><name>base.raw</name><capacity unit='MiB'>64</capacity>\
        <allocation unit='MiB'>64</allocation><target><path>/images/base.raw</path><format type='raw'/></target></volume>\
        </pool>\n</node>\n";
    std::fs::write(&file, xml.replace("</node>\n", pool)).expect("write node file");
    (uri, doms)
}

fn assert_error(r: &redfin_tests::Resp, status: StatusCode, message: &str) {
    assert_eq!(r.status, status, "{:?}", r.json);
    assert!(
        r.message_id().ends_with(&format!(".{message}")),
        "expected {message}, got {:?}",
        r.json
    );
}

fn members(v: &Value) -> Vec<String> {
    v["Members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["@odata.id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn volumes_are_created_attached_detached_and_deleted() {
    let dir = TempDir::new("storage");
    let (uri, doms) = node_with_pool(dir.path(), 2);
    let bmc = TestBmc::start(&dir.path().join("state"), &uri).await;
    let admin = bmc.admin();
    let off = &doms[1].uuid; // vm-2 is shut off

    let root = admin.get("/redfish/v1").await.json;
    assert_eq!(root["Storage"]["@odata.id"], "/redfish/v1/Storage");
    let pools = members(&admin.get("/redfish/v1/Storage").await.json);
    assert!(
        pools.contains(&"/redfish/v1/Storage/images".to_owned()),
        "{pools:?}"
    );
    let pool = admin.get("/redfish/v1/Storage/images").await.json;
    assert_eq!(pool["@odata.type"], "#Storage.v1_21_0.Storage");
    assert_eq!(pool["Volumes"]["@odata.id"], "/redfish/v1/Storage/images/Volumes");
    assert_eq!(pool["Oem"]["Redfin"]["Path"], "/images");
    assert_error(
        &admin.get("/redfish/v1/Storage/nope").await,
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
    );
    let vols = "/redfish/v1/Storage/images/Volumes";
    assert!(members(&admin.get(vols).await.json).contains(&format!("{vols}/base.raw")));
    let base = admin.get(&format!("{vols}/base.raw")).await.json;
    assert_eq!(base["CapacityBytes"], 64 << 20);
    assert_eq!(base["Oem"]["Redfin"]["Format"], "raw");

    // Create: qcow2 by default, raw on request.
    let r = admin
        .post(vols, json!({"Name": "data.qcow2", "CapacityBytes": 64 << 20}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let data = format!("{vols}/data.qcow2");
    assert_eq!(r.header("location"), Some(data.as_str()));
    assert_eq!(r.json["@odata.type"], "#Volume.v1_10_2.Volume");
    assert_eq!(r.json["Oem"]["Redfin"]["Format"], "qcow2");
    let r = admin
        .post(
            vols,
            json!({"Name": "scratch.raw", "CapacityBytes": 2 << 20, "Oem": {"Redfin": {"Format": "raw"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    assert_eq!(r.json["Oem"]["Redfin"]["Format"], "raw");
    assert_eq!(r.json["CapacityBytes"], 2 << 20);

    // Bad input, each with its own message.
    for (body, status, message) in [
        (
            json!({"CapacityBytes": 1 << 20}),
            StatusCode::BAD_REQUEST,
            "PropertyMissing",
        ),
        (json!({"Name": "x"}), StatusCode::BAD_REQUEST, "PropertyMissing"),
        (
            json!({"Name": "x", "CapacityBytes": "big"}),
            StatusCode::BAD_REQUEST,
            "PropertyValueTypeError",
        ),
        (
            json!({"Name": "x", "CapacityBytes": 10}),
            StatusCode::BAD_REQUEST,
            "PropertyValueOutOfRange",
        ),
        (
            json!({"Name": "../x", "CapacityBytes": 1 << 20}),
            StatusCode::BAD_REQUEST,
            "PropertyValueIncorrect",
        ),
        (
            json!({"Name": "x", "CapacityBytes": 1 << 20, "Oem": {"Redfin": {"Format": "vmdk"}}}),
            StatusCode::BAD_REQUEST,
            "PropertyValueNotInList",
        ),
        (
            json!({"Name": "x", "CapacityBytes": 1 << 20, "Color": "red"}),
            StatusCode::BAD_REQUEST,
            "PropertyUnknown",
        ),
        (
            json!({"Name": "data.qcow2", "CapacityBytes": 1 << 20}),
            StatusCode::CONFLICT,
            "ResourceAlreadyExists",
        ),
    ] {
        let r = admin.post(vols, body.clone()).await;
        assert_error(&r, status, message);
    }
    assert_error(
        &admin
            .post(
                "/redfish/v1/Storage/nope/Volumes",
                json!({"Name": "x", "CapacityBytes": 1 << 20}),
            )
            .await,
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
    );

    // Resize: grow only. libvirt's test driver cannot resize at all, and says so.
    assert_error(
        &admin.patch(&data, json!({"CapacityBytes": 32 << 20})).await,
        StatusCode::BAD_REQUEST,
        "PropertyValueIncorrect",
    );
    let same = admin.patch(&data, json!({"CapacityBytes": 64 << 20})).await;
    assert_eq!(same.status, StatusCode::OK, "{:?}", same.json);
    assert_error(
        &admin.patch(&data, json!({"CapacityBytes": 128 << 20})).await,
        StatusCode::BAD_REQUEST,
        "ActionNotSupported",
    );

    // Attach to a system: it becomes a drive of the system.
    let attach = format!("{data}/Actions/Oem/Redfin.Attach");
    let detach = format!("{data}/Actions/Oem/Redfin.Detach");
    let system = format!("/redfish/v1/Systems/{off}");
    let r = admin.post(&attach, json!({"System": system})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
    let storage = admin.get(&format!("{system}/Storage/1")).await.json;
    let drives: Vec<&str> = storage["Drives"]
        .as_array()
        .expect("drives")
        .iter()
        .filter_map(|d| d["@odata.id"].as_str())
        .collect();
    assert!(
        drives.contains(&format!("{system}/Storage/1/Drives/vdb").as_str()),
        "{drives:?}"
    );
    let v = admin.get(&data).await.json;
    assert_eq!(v["Oem"]["Redfin"]["AttachedTo"][0]["@odata.id"], system);
    assert_eq!(
        v["Oem"]["Redfin"]["Drives"][0]["@odata.id"],
        format!("{system}/Storage/1/Drives/vdb")
    );
    assert_error(
        &admin.post(&attach, json!({"System": system})).await,
        StatusCode::CONFLICT,
        "ResourceInUse",
    );
    assert_error(&admin.delete(&data).await, StatusCode::CONFLICT, "ResourceInUse");
    assert_error(
        &admin
            .post(
                &attach,
                json!({"System": "/redfish/v1/Systems/00000000-0000-4000-8000-0000000000ff"}),
            )
            .await,
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
    );
    assert_error(
        &admin.post(&attach, json!({})).await,
        StatusCode::BAD_REQUEST,
        "ActionParameterMissing",
    );

    // Detach, then delete.
    let r = admin.post(&detach, json!({"System": system})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
    let storage = admin.get(&format!("{system}/Storage/1")).await.json;
    assert_eq!(storage["Drives@odata.count"], 1);
    assert_error(
        &admin.post(&detach, json!({"System": system})).await,
        StatusCode::BAD_REQUEST,
        "ActionParameterValueNotInList",
    );
    assert_eq!(admin.delete(&data).await.status, StatusCode::NO_CONTENT);
    assert_error(&admin.get(&data).await, StatusCode::NOT_FOUND, "ResourceNotFound");

    // A read-only account reads but does not change storage.
    let r = admin
        .post(
            "/redfish/v1/AccountService/Accounts",
            json!({"UserName": "viewer", "Password": "viewer-pass-1", "RoleId": "ReadOnly"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let viewer = bmc.client().basic("viewer", "viewer-pass-1");
    assert_eq!(viewer.get(vols).await.status, StatusCode::OK);
    assert_eq!(
        viewer
            .post(vols, json!({"Name": "y", "CapacityBytes": 1 << 20}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        viewer.delete(&format!("{vols}/scratch.raw")).await.status,
        StatusCode::FORBIDDEN
    );
    bmc.stop().await;
}

/// Waits until the composed system at `uri` has left `Creating`.
async fn composed_state(admin: &Client, uri: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = admin.get(uri).await.json;
        if s["Oem"]["Redfin"]["Composition"]["State"] != "Creating" {
            return s;
        }
        assert!(tokio::time::Instant::now() < deadline, "still Creating: {s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn compose(admin: &Client, name: &str, profile: &str) -> redfin_tests::Resp {
    admin
        .post(
            "/redfish/v1/Systems",
            json!({"Name": name, "Oem": {"Redfin": {"Profile": profile, "Image": "tiny"}}}),
        )
        .await
}

#[tokio::test]
async fn systems_are_composed_from_profiles_and_images_within_quotas() {
    let dir = TempDir::new("compose");
    let (uri, doms) = node_with_pool(dir.path(), 1);
    let mut config = TestBmc::config(&dir.path().join("state"), &uri);
    config.composition.pool = "images".into();
    config.composition.max_systems = 2;
    config.composition.max_vcpus = 4;
    config.composition.max_memory_mib = 4096;
    config.composition.max_disk_gib = 1;
    let bmc = TestBmc::start_with(config).await;
    let admin = bmc.admin();
    let images = "/redfish/v1/Oem/Redfin/Images";
    let profiles = "/redfish/v1/Oem/Redfin/Profiles";

    // The images catalog.
    let r = admin
        .post(
            images,
            json!({"Id": "tiny", "Volume": "/redfish/v1/Storage/images/Volumes/base.raw",
                   "OperatingSystem": "Linux", "Description": "a tiny base"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    assert_eq!(r.header("location"), Some("/redfish/v1/Oem/Redfin/Images/tiny"));
    assert_eq!(r.json["Format"], "raw");
    assert_eq!(r.json["CapacityBytes"], 64 << 20);
    assert_eq!(
        members(&admin.get(images).await.json),
        vec![format!("{images}/tiny")]
    );
    for (body, status, message) in [
        (
            json!({"Id": "x", "Volume": "base.raw"}),
            StatusCode::BAD_REQUEST,
            "PropertyValueIncorrect",
        ),
        (
            json!({"Id": "x", "Volume": "/redfish/v1/Storage/images/Volumes/nope"}),
            StatusCode::BAD_REQUEST,
            "PropertyValueIncorrect",
        ),
        (
            json!({"Volume": "/redfish/v1/Storage/images/Volumes/base.raw"}),
            StatusCode::BAD_REQUEST,
            "PropertyMissing",
        ),
        (
            json!({"Id": "tiny", "Volume": "/redfish/v1/Storage/images/Volumes/base.raw"}),
            StatusCode::CONFLICT,
            "ResourceAlreadyExists",
        ),
    ] {
        assert_error(&admin.post(images, body).await, status, message);
    }
    // The base volume of an image is kept from deletion.
    assert_error(
        &admin.delete("/redfish/v1/Storage/images/Volumes/base.raw").await,
        StatusCode::CONFLICT,
        "ResourceCannotBeDeleted",
    );

    // Profiles.
    let r = admin
        .post(
            profiles,
            json!({"Id": "small", "ProcessorCount": 2, "MemoryMiB": 512, "DiskCapacityBytes": 128 << 20}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    assert_eq!(r.json["Firmware"], "Legacy");
    let r = admin
        .post(
            profiles,
            json!({"Id": "big", "ProcessorCount": 3, "MemoryMiB": 512, "DiskCapacityBytes": 128 << 20,
                   "Firmware": "Legacy", "Network": "default"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    for (body, message) in [
        (
            json!({"Id": "p", "ProcessorCount": 1, "MemoryMiB": 10, "DiskCapacityBytes": 1 << 20}),
            "PropertyValueOutOfRange",
        ),
        (
            json!({"Id": "p", "ProcessorCount": 99, "MemoryMiB": 512, "DiskCapacityBytes": 1 << 20}),
            "PropertyValueOutOfRange",
        ),
        (
            json!({"Id": "p", "ProcessorCount": 1, "MemoryMiB": 512, "DiskCapacityBytes": 1 << 20, "Firmware": "BIOS"}),
            "PropertyValueNotInList",
        ),
        (
            json!({"Id": "p", "ProcessorCount": 1, "MemoryMiB": 512, "DiskCapacityBytes": 1 << 20, "Persona": "hal9000"}),
            "PropertyValueNotInList",
        ),
        (
            json!({"Id": "p", "ProcessorCount": 1, "MemoryMiB": 512, "DiskCapacityBytes": 1 << 20, "Initrd": "/boot/initrd"}),
            "PropertyMissing",
        ),
        (
            json!({"Id": "p", "ProcessorCount": 1, "MemoryMiB": 512, "DiskCapacityBytes": 1 << 20, "Kernel": "vmlinuz"}),
            "PropertyValueIncorrect",
        ),
        (
            json!({"Id": "p", "ProcessorCount": 1, "MemoryMiB": 512}),
            "PropertyMissing",
        ),
        (
            json!({"Id": "p/q", "ProcessorCount": 1, "MemoryMiB": 512, "DiskCapacityBytes": 1 << 20}),
            "PropertyValueIncorrect",
        ),
    ] {
        assert_error(
            &admin.post(profiles, body).await,
            StatusCode::BAD_REQUEST,
            message,
        );
    }

    // Compose: a copy-on-write overlay of the image, a new domain, started.
    let r = compose(&admin, "web-1", "small").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let web1 = r.header("location").expect("location").to_owned();
    assert!(web1.starts_with("/redfish/v1/Systems/"));
    assert_eq!(r.json["Name"], "web-1");
    let s = composed_state(&admin, &web1).await;
    assert_eq!(s["Oem"]["Redfin"]["Composition"]["State"], "Ready", "{s:?}");
    assert_eq!(s["Status"]["State"], "Enabled");
    assert_eq!(s["Status"]["Health"], "OK");
    assert_eq!(s["PowerState"], "On");
    assert_eq!(s["ProcessorSummary"]["LogicalProcessorCount"], 2);
    assert_eq!(s["MemorySummary"]["TotalSystemMemoryGiB"], 0.5);
    assert_eq!(
        s["Oem"]["Redfin"]["Composition"]["Profile"]["@odata.id"],
        "/redfish/v1/Oem/Redfin/Profiles/small"
    );
    assert!(members(&admin.get("/redfish/v1/Systems").await.json).contains(&web1));
    let disk = admin
        .get("/redfish/v1/Storage/images/Volumes/web-1-disk0.qcow2")
        .await
        .json;
    assert_eq!(disk["Oem"]["Redfin"]["Format"], "qcow2");
    assert_eq!(disk["Oem"]["Redfin"]["BackingPath"], "/images/base.raw");
    assert_eq!(disk["CapacityBytes"], 128 << 20);
    assert_eq!(disk["Oem"]["Redfin"]["AttachedTo"][0]["@odata.id"], web1);

    // Bad requests.
    assert_error(
        &compose(&admin, "web-1", "small").await,
        StatusCode::CONFLICT,
        "ResourceAlreadyExists",
    );
    assert_error(
        &compose(&admin, "vm-1", "small").await,
        StatusCode::CONFLICT,
        "ResourceAlreadyExists",
    );
    assert_error(
        &compose(&admin, "bad name", "small").await,
        StatusCode::BAD_REQUEST,
        "PropertyValueIncorrect",
    );
    assert_error(
        &compose(&admin, "web-9", "nope").await,
        StatusCode::BAD_REQUEST,
        "PropertyValueNotInList",
    );
    assert_error(
        &admin.post("/redfish/v1/Systems", json!({"Name": "web-9"})).await,
        StatusCode::BAD_REQUEST,
        "PropertyMissing",
    );
    assert_error(
        &admin
            .post(
                "/redfish/v1/Systems",
                json!({"Name": "web-9", "Oem": {"Redfin": {"Profile": "small", "Image": "nope"}}}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "PropertyValueNotInList",
    );

    // Quotas: vCPUs first (2 used + 3 > 4), then the number of systems.
    let r = compose(&admin, "big-1", "big").await;
    assert_error(&r, StatusCode::CONFLICT, "ResourceExhaustion");
    let text = r.json.to_string();
    assert!(text.contains("max-vcpus"), "{text}");
    let r = compose(&admin, "web-2", "small").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let web2 = r.header("location").expect("location").to_owned();
    composed_state(&admin, &web2).await;
    let r = compose(&admin, "web-3", "small").await;
    assert_error(&r, StatusCode::CONFLICT, "ResourceExhaustion");
    assert!(r.json.to_string().contains("max-systems"), "{:?}", r.json);
    // Nothing is left behind by a refusal.
    assert_error(
        &admin
            .get("/redfish/v1/Storage/images/Volumes/web-3-disk0.qcow2")
            .await,
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
    );

    // Delete: refused while on and for systems bmcd did not compose.
    assert_error(&admin.delete(&web1).await, StatusCode::CONFLICT, "ResourceInUse");
    assert_error(
        &admin
            .delete(&format!("/redfish/v1/Systems/{}", doms[0].uuid))
            .await,
        StatusCode::CONFLICT,
        "ResourceCannotBeDeleted",
    );
    let viewer_denied = bmc.client().delete(&web1).await;
    assert_eq!(viewer_denied.status, StatusCode::UNAUTHORIZED);
    let r = admin
        .post(
            &format!("{web1}/Actions/ComputerSystem.Reset"),
            json!({"ResetType": "ForceOff"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(admin.delete(&web1).await.status, StatusCode::NO_CONTENT);
    assert_error(&admin.get(&web1).await, StatusCode::NOT_FOUND, "ResourceNotFound");
    assert_error(
        &admin
            .get("/redfish/v1/Storage/images/Volumes/web-1-disk0.qcow2")
            .await,
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
    );
    assert!(!members(&admin.get("/redfish/v1/Systems").await.json).contains(&web1));
    assert_error(
        &admin
            .delete("/redfish/v1/Systems/00000000-0000-4000-8000-0000000000ff")
            .await,
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
    );

    // The freed quota takes a new system.
    let r = compose(&admin, "web-3", "small").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);

    // A profile with a persona gives the system its own BMC endpoint, which
    // goes with the system.
    let web3 = r.header("location").expect("location").to_owned();
    composed_state(&admin, &web3).await;
    let r = admin
        .post(
            &format!("{web3}/Actions/ComputerSystem.Reset"),
            json!({"ResetType": "ForceOff"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(admin.delete(&web3).await.status, StatusCode::NO_CONTENT);
    let r = admin
        .post(
            profiles,
            json!({"Id": "ilo", "ProcessorCount": 1, "MemoryMiB": 256, "DiskCapacityBytes": 16 << 20,
                   "Persona": "ilo5"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    assert_eq!(r.json["Persona"], "ilo5");
    assert_error(
        &admin
            .post(
                "/redfish/v1/Systems",
                json!({"Name": "ilo-1", "Oem": {"Redfin": {"Profile": "ilo"}}}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "PropertyMissing",
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let r = admin
        .post(
            "/redfish/v1/Systems",
            json!({"Name": "ilo-1", "Oem": {"Redfin": {"Profile": "ilo", "BmcAddress": format!("127.0.0.1:{port}")}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let ilo = r.header("location").expect("location").to_owned();
    let ilo_id = ilo.rsplit('/').next().expect("id").to_owned();
    let s = composed_state(&admin, &ilo).await;
    assert_eq!(s["Oem"]["Redfin"]["Composition"]["State"], "Ready", "{s:?}");
    let endpoints = "/redfish/v1/Managers/BMC/Oem/Redfin/BmcEndpoints";
    let listed = members(&admin.get(endpoints).await.json);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let e = admin.get(&listed[0]).await.json;
    assert_eq!(e["SystemId"], ilo_id.as_str());
    assert_eq!(e["Status"]["State"], "Enabled");
    let own =
        Client::new(([127, 0, 0, 1], port).into()).basic(redfin_tests::ADMIN, redfin_tests::ADMIN_PASSWORD);
    let sys1 = own.get("/redfish/v1/Systems/1").await;
    assert_eq!(sys1.status, StatusCode::OK, "{:?}", sys1.json);
    assert_eq!(sys1.json["UUID"], ilo_id.as_str());
    // A VM's own BMC neither composes nor shows the appliance's storage.
    assert_eq!(own.get("/redfish/v1/Storage").await.status, StatusCode::NOT_FOUND);
    assert!(own.get("/redfish/v1").await.json.get("Storage").is_none());
    assert_eq!(
        own.post("/redfish/v1/Systems", json!({"Name": "x"})).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        own.delete("/redfish/v1/Systems/1").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let r = admin
        .post(
            &format!("{ilo}/Actions/ComputerSystem.Reset"),
            json!({"ResetType": "ForceOff"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(admin.delete(&ilo).await.status, StatusCode::NO_CONTENT);
    assert!(members(&admin.get(endpoints).await.json).is_empty());

    // Catalog entries go away; the image's volume stays.
    assert_eq!(
        admin.delete(&format!("{profiles}/big")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &admin.get(&format!("{profiles}/big")).await,
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
    );
    assert_eq!(
        admin.delete(&format!("{images}/tiny")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        admin
            .get("/redfish/v1/Storage/images/Volumes/base.raw")
            .await
            .status,
        StatusCode::OK
    );
    bmc.stop().await;
}

#[tokio::test]
async fn a_restart_forgets_systems_gone_from_libvirt() {
    let dir = TempDir::new("compose-restart");
    let (uri, _) = node_with_pool(dir.path(), 1);
    let mut config = TestBmc::config(&dir.path().join("state"), &uri);
    config.composition.pool = "images".into();
    config.composition.max_systems = 1;
    let bmc = TestBmc::start_with(config.clone()).await;
    let admin = bmc.admin();
    let r = admin
        .post(
            "/redfish/v1/Oem/Redfin/Profiles",
            json!({"Id": "small", "ProcessorCount": 1, "MemoryMiB": 256, "DiskCapacityBytes": 16 << 20}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let body = json!({"Name": "web-1", "Oem": {"Redfin": {"Profile": "small"}}});
    let r = admin.post("/redfish/v1/Systems", body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let web1 = r.header("location").expect("location").to_owned();
    composed_state(&admin, &web1).await;
    assert_error(
        &admin
            .post(
                "/redfish/v1/Systems",
                json!({"Name": "web-2", "Oem": {"Redfin": {"Profile": "small"}}}),
            )
            .await,
        StatusCode::CONFLICT,
        "ResourceExhaustion",
    );
    bmc.stop().await;

    // The test driver's domains live in the process: after a restart web-1 is
    // gone from libvirt, and bmcd forgets it rather than count it forever.
    let bmc = TestBmc::start_with(config).await;
    let admin = bmc.admin();
    assert_eq!(admin.get(&web1).await.status, StatusCode::NOT_FOUND);
    let r = admin.post("/redfish/v1/Systems", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    // The profile survived the restart.
    assert_eq!(
        admin.get("/redfish/v1/Oem/Redfin/Profiles/small").await.json["ProcessorCount"],
        1
    );
    bmc.stop().await;
}
