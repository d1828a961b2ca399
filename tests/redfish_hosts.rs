//! Several libvirt hosts behind one bmcd (each a test-driver node here): their
//! systems in one Systems collection, actions reaching the right host, each
//! host as an AggregationSource, placement of composed systems (labels,
//! spread, binpack, a host named by the client, no room), a host that cannot
//! be reached reported as such, and the same host served once it appears.

use std::path::Path;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use redfin_tests::{test_node, Client, TempDir, TestBmc};
use serde_json::{json, Value};

const SOURCES: &str = "/redfish/v1/AggregationService/AggregationSources";

/// A test-driver node of `n` domains named `{prefix}-N`, with `memory_gib` of
/// host memory, and a storage pool `images`. Its UUIDs differ per `tag`.
fn host_node(dir: &Path, prefix: &str, tag: u8, n: usize, memory_gib: u64) -> String {
    std::fs::create_dir_all(dir).expect("dir");
    let (_, _) = test_node(dir, n);
    let file = dir.join("node.xml");
    let pool = "  <pool type='dir'><name>images</name><uuid>11111111-0000-4000-8000-0000000000TT</uuid>\
        <capacity unit='GiB'>100</capacity><allocation>0</allocation><available unit='GiB'>100</available>\
        <source/><target><path>/images</path></target></pool>\n</node>\n"
        .replace("TT", &format!("{tag:02x}"));
    let xml = std::fs::read_to_string(&file)
        .expect("node file")
        .replace(
            "00000000-0000-4000-8000-",
            &format!("00000000-0000-4000-80{tag:02x}-"),
        )
        .replace("<name>vm-", &format!("<name>{prefix}-"))
        .replace("redfin/vm-", &format!("redfin/{prefix}-"))
        .replace(
            "<memory>16777216</memory>",
            &format!("<memory>{}</memory>", memory_gib << 20),
        )
        .replace("</node>\n", &pool);
    std::fs::write(&file, xml).expect("write node file");
    format!("test://{}", file.display())
}

fn members(v: &Value) -> Vec<String> {
    v["Members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["@odata.id"].as_str().expect("id").to_owned())
        .collect()
}

fn accessed(v: &Value) -> Vec<String> {
    v["Links"]["ResourcesAccessed"]
        .as_array()
        .expect("ResourcesAccessed")
        .iter()
        .map(|m| m["@odata.id"].as_str().expect("id").to_owned())
        .collect()
}

fn host_config(name: &str, uri: &str, labels: &[&str]) -> bmcd::config::HostConfig {
    bmcd::config::HostConfig {
        name: name.to_owned(),
        libvirt_uri: uri.to_owned(),
        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
    }
}

async fn profile(admin: &Client, id: &str, memory_mib: u64) {
    let r = admin
        .post(
            "/redfish/v1/Oem/Redfin/Profiles",
            json!({"Id": id, "ProcessorCount": 1, "MemoryMiB": memory_mib, "DiskCapacityBytes": 16 << 20}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
}

/// Composes `name`; returns the new system's URI.
async fn compose(admin: &Client, name: &str, redfin: Value) -> String {
    let r = admin
        .post(
            "/redfish/v1/Systems",
            json!({"Name": name, "Oem": {"Redfin": redfin}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{name}: {:?}", r.json);
    r.header("location").expect("location").to_owned()
}

async fn systems_of(admin: &Client, host: &str) -> Vec<String> {
    let r = admin.get(&format!("{SOURCES}/{host}")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    accessed(&r.json)
}

fn assert_error(r: &redfin_tests::Resp, status: StatusCode, message: &str, mentions: &str) {
    assert_eq!(r.status, status, "{:?}", r.json);
    assert!(r.message_id().ends_with(&format!(".{message}")), "{:?}", r.json);
    assert!(r.json.to_string().contains(mentions), "{mentions}: {:?}", r.json);
}

#[tokio::test]
async fn systems_of_every_host_are_served_and_actions_reach_their_host() {
    let dir = TempDir::new("hosts");
    let local = host_node(&dir.path().join("a"), "a", 1, 2, 16);
    let rack2 = host_node(&dir.path().join("b"), "b", 2, 3, 16);
    let mut config = TestBmc::config(&dir.path().join("state"), &local);
    config.hosts = vec![host_config("rack2", &rack2, &["ssd"])];
    let bmc = TestBmc::start_with(config).await;
    let admin = bmc.admin();

    let all = members(&admin.get("/redfish/v1/Systems").await.json);
    assert_eq!(all.len(), 5, "{all:?}");
    let b2 = "/redfish/v1/Systems/00000000-0000-4000-8002-000000000002";
    assert!(all.contains(&b2.to_owned()), "{all:?}");

    // The aggregation service lists both hosts, each with its own systems.
    let root = admin.get("/redfish/v1").await.json;
    assert_eq!(
        root["AggregationService"]["@odata.id"],
        "/redfish/v1/AggregationService"
    );
    let service = admin.get("/redfish/v1/AggregationService").await.json;
    assert_eq!(service["Status"]["Health"], "OK");
    assert_eq!(
        members(&admin.get(SOURCES).await.json),
        vec![format!("{SOURCES}/local"), format!("{SOURCES}/rack2")]
    );
    let src = admin.get(&format!("{SOURCES}/rack2")).await.json;
    assert_eq!(src["@odata.type"], "#AggregationSource.v1_5_0.AggregationSource");
    assert_eq!(src["HostName"], rack2.as_str());
    assert_eq!(src["Status"]["State"], "Enabled");
    assert_eq!(src["Oem"]["Redfin"]["Labels"], json!(["ssd"]));
    assert_eq!(src["Oem"]["Redfin"]["Capacity"]["Systems"], 3);
    assert_eq!(src["Oem"]["Redfin"]["Capacity"]["MemoryMiB"], 16 << 10);
    assert_eq!(src["Oem"]["Redfin"]["Capacity"]["AllocatedMemoryMiB"], 3 * 512);
    let on_rack2 = accessed(&src);
    assert_eq!(on_rack2.len(), 3);
    assert!(on_rack2.contains(&b2.to_owned()));
    assert_eq!(systems_of(&admin, "local").await.len(), 2);
    let r = admin.get(&format!("{SOURCES}/rack9")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // A system of the second host is read and powered there.
    let s = admin.get(b2).await.json;
    assert_eq!(s["Name"], "b-2");
    assert_eq!(s["PowerState"], "Off");
    let r = admin
        .post(
            &format!("{b2}/Actions/ComputerSystem.Reset"),
            json!({"ResetType": "On"}),
        )
        .await;
    assert!(r.status.is_success(), "{:?}", r.json);
    assert_eq!(admin.get(b2).await.json["PowerState"], "On");
    // ... and the local host's systems are untouched by it.
    let a2 = "/redfish/v1/Systems/00000000-0000-4000-8001-000000000002";
    assert_eq!(admin.get(a2).await.json["PowerState"], "Off");

    // Storage pools of the second host are named after it.
    let pools = members(&admin.get("/redfish/v1/Storage").await.json);
    assert!(
        pools.contains(&"/redfish/v1/Storage/images".to_owned()),
        "{pools:?}"
    );
    assert!(
        pools.contains(&"/redfish/v1/Storage/images@rack2".to_owned()),
        "{pools:?}"
    );
    let r = admin
        .post(
            "/redfish/v1/Storage/images@rack2/Volumes",
            json!({"Name": "data.qcow2", "CapacityBytes": 1 << 20}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let vols = members(&admin.get("/redfish/v1/Storage/images@rack2/Volumes").await.json);
    assert_eq!(
        vols,
        vec!["/redfish/v1/Storage/images@rack2/Volumes/data.qcow2".to_owned()]
    );
    assert!(members(&admin.get("/redfish/v1/Storage/images/Volumes").await.json).is_empty());
    bmc.stop().await;
}

#[tokio::test]
async fn new_systems_are_placed_by_labels_and_policy() {
    let dir = TempDir::new("placement");
    // local: 4 GiB, 2 systems of 512 MiB (3 GiB free); big: 16 GiB, 1 system.
    let local = host_node(&dir.path().join("a"), "a", 3, 2, 4);
    let big = host_node(&dir.path().join("b"), "b", 4, 1, 16);
    let small = host_node(&dir.path().join("c"), "c", 5, 0, 2);
    let mut config = TestBmc::config(&dir.path().join("state"), &local);
    config.composition.pool = "images".into();
    config.hosts = vec![
        host_config("big", &big, &["ssd"]),
        host_config("small", &small, &["ssd", "gpu"]),
    ];
    let bmc = TestBmc::start_with(config.clone()).await;
    let admin = bmc.admin();
    profile(&admin, "p1", 1024).await;
    profile(&admin, "huge", 64 << 10).await;

    // Spread (the default): the host with the most free memory.
    let s1 = compose(&admin, "spread-1", json!({"Profile": "p1"})).await;
    assert!(systems_of(&admin, "big").await.contains(&s1));
    // Its disk went to the composition pool of that host.
    let disks = members(&admin.get("/redfish/v1/Storage/images@big/Volumes").await.json);
    assert_eq!(
        disks,
        vec!["/redfish/v1/Storage/images@big/Volumes/spread-1-disk0.qcow2".to_owned()]
    );
    // Labels: only `small` has a GPU.
    let s2 = compose(&admin, "gpu-1", json!({"Profile": "p1", "HostLabels": ["gpu"]})).await;
    assert!(systems_of(&admin, "small").await.contains(&s2));
    // A named host.
    let s3 = compose(&admin, "here-1", json!({"Profile": "p1", "Host": "local"})).await;
    assert!(systems_of(&admin, "local").await.contains(&s3));
    // The composed systems are served like the others.
    assert_eq!(admin.get(&s2).await.json["Name"], "gpu-1");

    // Refusals: nothing fits, an unknown host, an unknown label, a bad type.
    assert_error(
        &admin
            .post(
                "/redfish/v1/Systems",
                json!({"Name": "x", "Oem": {"Redfin": {"Profile": "huge"}}}),
            )
            .await,
        StatusCode::CONFLICT,
        "ResourceExhaustion",
        "MiB needed",
    );
    assert_error(
        &admin
            .post(
                "/redfish/v1/Systems",
                json!({"Name": "x", "Oem": {"Redfin": {"Profile": "p1", "Host": "rack9"}}}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "PropertyValueNotInList",
        "rack9",
    );
    assert_error(
        &admin
            .post(
                "/redfish/v1/Systems",
                json!({"Name": "x", "Oem": {"Redfin": {"Profile": "p1", "HostLabels": ["fpga"]}}}),
            )
            .await,
        StatusCode::CONFLICT,
        "ResourceExhaustion",
        "no label 'fpga'",
    );
    assert_error(
        &admin
            .post(
                "/redfish/v1/Systems",
                json!({"Name": "x", "Oem": {"Redfin": {"Profile": "p1", "HostLabels": "gpu"}}}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "PropertyValueTypeError",
        "HostLabels",
    );
    bmc.stop().await;

    // Binpack: the host with the least free memory that still fits. (The
    // test driver reads its node files afresh: the systems composed above are
    // gone.) With 150 % overcommit, small hands out 3 GiB, local 6 - 1 GiB,
    // big 24 - 0.5 GiB.
    config.composition.placement = bmcd::config::Placement::Binpack;
    config.composition.memory_overcommit_percent = 150;
    let bmc = TestBmc::start_with(config).await;
    let admin = bmc.admin();
    let mut packed = Vec::new();
    for n in 1..=3 {
        packed.push(compose(&admin, &format!("pack-{n}"), json!({"Profile": "p1"})).await);
    }
    let on_small = systems_of(&admin, "small").await;
    assert!(packed.iter().all(|p| on_small.contains(p)), "{on_small:?}");
    // small is full now: the next goes to local, the fullest that fits.
    let p4 = compose(&admin, "pack-4", json!({"Profile": "p1"})).await;
    assert!(systems_of(&admin, "local").await.contains(&p4));
    let small = admin.get(&format!("{SOURCES}/small")).await.json;
    assert_eq!(small["Oem"]["Redfin"]["Capacity"]["AllocatedMemoryMiB"], 3 << 10);
    assert_eq!(small["Oem"]["Redfin"]["Capacity"]["FreeMemoryMiB"], 0);
    bmc.stop().await;
}

#[tokio::test]
async fn a_host_that_cannot_be_reached_is_reported_and_served_once_it_appears() {
    let dir = TempDir::new("host-down");
    let local = host_node(&dir.path().join("a"), "a", 6, 1, 16);
    // The second host's node file does not exist yet: libvirt cannot open it.
    let later_dir = dir.path().join("later");
    let later_uri = format!("test://{}", later_dir.join("node.xml").display());
    let mut config = TestBmc::config(&dir.path().join("state"), &local);
    config.composition.pool = "images".into();
    config.hosts = vec![host_config("later", &later_uri, &[])];
    let bmc = TestBmc::start_with(config).await;
    let admin = bmc.admin();
    profile(&admin, "p1", 256).await;

    let src = admin.get(&format!("{SOURCES}/later")).await.json;
    assert_eq!(src["Status"]["State"], "UnavailableOffline", "{src}");
    assert_eq!(src["Status"]["Health"], "Critical");
    assert!(
        src["Oem"]["Redfin"]["UnreachableReason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{src}"
    );
    assert_eq!(
        admin.get("/redfish/v1/AggregationService").await.json["Status"]["Health"],
        "Warning"
    );
    // The local host is served meanwhile; placement leaves the host out and says why.
    assert_eq!(members(&admin.get("/redfish/v1/Systems").await.json).len(), 1);
    assert_error(
        &admin
            .post(
                "/redfish/v1/Systems",
                json!({"Name": "x", "Oem": {"Redfin": {"Profile": "p1", "Host": "later"}}}),
            )
            .await,
        StatusCode::CONFLICT,
        "ResourceExhaustion",
        "host 'later' is down",
    );

    // The host appears: within a few watch rounds it is up and its systems are served.
    let uri = host_node(&later_dir, "l", 7, 2, 16);
    assert_eq!(uri, later_uri);
    let t = Instant::now();
    loop {
        let src = admin.get(&format!("{SOURCES}/later")).await.json;
        if src["Status"]["State"] == "Enabled" {
            assert_eq!(accessed(&src).len(), 2);
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the host stayed down: {src}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(members(&admin.get("/redfish/v1/Systems").await.json).len(), 3);
    let s = compose(&admin, "late-1", json!({"Profile": "p1", "Host": "later"})).await;
    assert!(systems_of(&admin, "later").await.contains(&s));
    bmc.stop().await;
}

#[test]
fn host_names_are_checked() {
    let mut c = bmcd::config::Config::default();
    for (name, ok) in [
        ("rack-2_b", true),
        ("local", false),
        ("", false),
        ("a b", false),
        ("x/y", false),
    ] {
        c.hosts = vec![host_config(name, "test:///default", &[])];
        assert_eq!(c.validate().is_ok(), ok, "{name}");
    }
    c.hosts = vec![
        host_config("r", "test:///default", &[]),
        host_config("r", "test:///default", &[]),
    ];
    assert!(c.validate().is_err());
    let text =
        "libvirt-labels = [\"ssd\"]\n[[host]]\nname = \"r2\"\nlibvirt-uri = \"qemu+tcp://10.0.0.2/system\"\n\
                labels = [\"gpu\"]\n[composition]\nplacement = \"binpack\"\n";
    let mut c = bmcd::config::Config::default();
    c.apply_toml(text).expect("parses");
    assert_eq!(c.libvirt_labels, vec!["ssd".to_owned()]);
    assert_eq!(
        c.hosts,
        vec![host_config("r2", "qemu+tcp://10.0.0.2/system", &["gpu"])]
    );
    assert_eq!(c.composition.placement, bmcd::config::Placement::Binpack);
    assert!(c.apply_toml("[[host]]\nname = \"r\"\nuri = \"x\"\n").is_err());
    c.apply_toml("[composition]\nmemory-overcommit-percent = 150\n")
        .expect("parses");
    assert_eq!(c.composition.memory_overcommit_percent, 150);
    c.composition.memory_overcommit_percent = 0;
    assert!(c.validate().is_err());
}
