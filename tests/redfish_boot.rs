//! Boot override, boot order, asset tag and location indicator against the
//! libvirt test driver: what GET shows is what the domain definition says, and a
//! one-time override ends when the system really starts.

use std::time::Duration;

use hyper::StatusCode;
use redfin_tests::{test_node, Client, TempDir, TestBmc};
use serde_json::{json, Value};

async fn system(admin: &Client, uuid: &str) -> Value {
    admin.get(&format!("/redfish/v1/Systems/{uuid}")).await.json
}

async fn wait_boot(admin: &Client, uuid: &str, enabled: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = system(admin, uuid).await;
        if s["Boot"]["BootSourceOverrideEnabled"] == enabled {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "BootSourceOverrideEnabled stayed {}",
            s["Boot"]["BootSourceOverrideEnabled"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn overrides_change_the_definition_and_once_ends_at_the_next_start() {
    let dir = TempDir::new("boot");
    let (uri, doms) = test_node(dir.path(), 2);
    let state = dir.path().join("state");
    let bmc = TestBmc::start(&state, &uri).await;
    let admin = bmc.admin();
    let (on, off) = (&doms[0].uuid, &doms[1].uuid);
    let path = |u: &str| format!("/redfish/v1/Systems/{u}");

    let s = system(&admin, on).await;
    assert_eq!(s["Boot"]["BootSourceOverrideEnabled"], "Disabled");
    assert_eq!(s["Boot"]["BootSourceOverrideTarget"], "None");
    assert_eq!(
        s["Boot"]["BootSourceOverrideTarget@Redfish.AllowableValues"],
        json!(["None", "Pxe", "Hdd", "Cd"])
    );
    assert_eq!(s["Boot"]["BootOrder"], json!(["vda"]));
    let opts = admin.get(&format!("{}/BootOptions", path(on))).await;
    assert_eq!(opts.json["Members@odata.count"], 3);
    let cd = admin.get(&format!("{}/BootOptions/sda", path(on))).await;
    assert_eq!(cd.json["Alias"], "Cd");

    // Continuous PXE until disabled.
    let r = admin
        .patch(
            &path(on),
            json!({"Boot": {"BootSourceOverrideEnabled": "Continuous", "BootSourceOverrideTarget": "Pxe"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.json["Boot"]["BootSourceOverrideTarget"], "Pxe");
    assert_eq!(r.json["Boot"]["BootOrder"][0], "NIC1");
    let r = admin
        .patch(
            &path(on),
            json!({"Boot": {"BootSourceOverrideEnabled": "Disabled"}}),
        )
        .await;
    assert_eq!(r.json["Boot"]["BootSourceOverrideEnabled"], "Disabled");
    assert_eq!(
        r.json["Boot"]["BootOrder"],
        json!(["vda"]),
        "original order restored"
    );

    // Once from CD on a running system: a forced restart is done cold, the
    // system starts from the CD, and the override ends with that start.
    let r = admin
        .patch(
            &path(on),
            json!({"Boot": {"BootSourceOverrideEnabled": "Once", "BootSourceOverrideTarget": "Cd"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.json["Boot"]["BootOrder"][0], "sda");
    let r = admin
        .post(
            &format!("{}/Actions/ComputerSystem.Reset", path(on)),
            json!({"ResetType": "ForceRestart"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let s = wait_boot(&admin, on, "Disabled").await;
    assert_eq!(s["Boot"]["BootSourceOverrideTarget"], "None");
    assert_eq!(s["Boot"]["BootOrder"], json!(["vda"]));
    assert_eq!(s["PowerState"], "On");

    // A target alone arms a one-time override; it survives a bmcd restart and
    // ends when the system is powered on.
    let r = admin
        .patch(&path(off), json!({"Boot": {"BootSourceOverrideTarget": "Hdd"}}))
        .await;
    assert_eq!(r.json["Boot"]["BootSourceOverrideEnabled"], "Once");
    bmc.stop().await;
    let bmc = TestBmc::start(&state, &uri).await;
    let admin = bmc.admin();
    // The test driver starts again from its node file, so its definition is
    // the original; the override record still stands.
    assert_eq!(
        system(&admin, off).await["Boot"]["BootSourceOverrideEnabled"],
        "Once"
    );
    let r = admin
        .post(
            &format!("{}/Actions/ComputerSystem.Reset", path(off)),
            json!({"ResetType": "On"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    wait_boot(&admin, off, "Disabled").await;

    // Bad input.
    let bad = [
        (
            json!({"Boot": {"BootSourceOverrideTarget": "Floppy"}}),
            "PropertyValueIncorrect",
        ),
        (
            json!({"Boot": {"BootSourceOverrideTarget": "Bogus"}}),
            "PropertyValueNotInList",
        ),
        (
            json!({"Boot": {"BootSourceOverrideEnabled": "Sometimes"}}),
            "PropertyValueNotInList",
        ),
        (
            json!({"Boot": {"BootSourceOverrideMode": "Hybrid"}}),
            "PropertyValueNotInList",
        ),
        (
            json!({"Boot": {"BootOrder": ["vda", "nope"]}}),
            "PropertyValueNotInList",
        ),
        (json!({"Boot": {"Bogus": 1}}), "PropertyUnknown"),
        (json!({"Boot": "Pxe"}), "PropertyValueTypeError"),
        (json!({"AssetTag": "x".repeat(65)}), "StringValueTooLong"),
    ];
    for (body, id) in bad {
        let r = admin.patch(&path(on), body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(r.message_id().ends_with(id), "{body}: {}", r.message_id());
    }

    // Explicit boot order, asset tag and indicator.
    let r = admin
        .patch(
            &path(on),
            json!({"Boot": {"BootOrder": ["NIC1", "vda"]}, "AssetTag": "rack-7", "LocationIndicatorActive": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.json["Boot"]["BootOrder"], json!(["NIC1", "vda"]));
    assert_eq!(r.json["AssetTag"], "rack-7");
    assert_eq!(r.json["IndicatorLED"], "Lit");
    let r = admin.patch(&path(on), json!({"IndicatorLED": "Off"})).await;
    assert_eq!(r.json["LocationIndicatorActive"], false);
    bmc.stop().await;
    let bmc = TestBmc::start(&state, &uri).await;
    assert_eq!(system(&bmc.admin(), on).await["AssetTag"], "rack-7");
    bmc.stop().await;
}
