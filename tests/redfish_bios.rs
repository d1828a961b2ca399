//! Bios, Bios/Settings and SecureBoot against the libvirt test driver: settings
//! land in the stored definition, show as pending, and become current at the
//! next reset.

use hyper::StatusCode;
use redfin_tests::{test_node, TempDir, TestBmc};
use serde_json::json;

#[tokio::test]
async fn bios_settings_apply_at_the_next_reset() {
    let dir = TempDir::new("bios");
    let (uri, doms) = test_node(dir.path(), 1);
    let bmc = TestBmc::start(&dir.path().join("state"), &uri).await;
    let admin = bmc.admin();
    let sys = format!("/redfish/v1/Systems/{}", doms[0].uuid);
    let bios = format!("{sys}/Bios");
    let settings = format!("{bios}/Settings");

    let b = admin.get(&bios).await.json;
    assert_eq!(b["AttributeRegistry"], "RedfinBiosAttributeRegistry.1.0.0");
    assert_eq!(b["Attributes"]["BootMode"], "LegacyBios");
    assert_eq!(b["Attributes"]["SecureBoot"], "Disabled");
    assert_eq!(b["@Redfish.Settings"]["SettingsObject"]["@odata.id"], settings);
    let reg = admin
        .get("/redfish/v1/Registries/BiosAttributeRegistry/BiosAttributeRegistry")
        .await
        .json;
    assert_eq!(
        reg["RegistryEntries"]["Attributes"].as_array().map(Vec::len),
        Some(5)
    );

    // Secure Boot needs UEFI.
    let r = admin
        .patch(&format!("{sys}/SecureBoot"), json!({"SecureBootEnable": true}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = admin
        .patch(&settings, json!({"Attributes": {"SecureBoot": "Enabled"}}))
        .await;
    assert!(
        r.message_id().ends_with("PropertyValueConflict"),
        "{}",
        r.message_id()
    );

    // Pending settings: the stored definition changes, the running system not yet.
    let r = admin
        .patch(
            &settings,
            json!({
                "Attributes": {"BootMode": "Uefi", "SystemSerialNumber": "SN-0042", "SystemProductName": "Lab node"},
                "@Redfish.SettingsApplyTime": {"ApplyTime": "OnReset"}
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.json["Attributes"]["BootMode"], "Uefi");
    assert_eq!(r.json["Attributes"]["SystemSerialNumber"], "SN-0042");
    let r = admin
        .patch(&format!("{sys}/SecureBoot"), json!({"SecureBootEnable": true}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.json["SecureBootEnable"], true);
    let b = admin.get(&bios).await.json;
    assert_eq!(b["Attributes"]["BootMode"], "LegacyBios", "not before the reset");
    assert_eq!(
        admin.get(&sys).await.json["Boot"]["BootSourceOverrideMode"],
        "UEFI"
    );

    // The reset makes them current.
    let r = admin
        .post(
            &format!("{sys}/Actions/ComputerSystem.Reset"),
            json!({"ResetType": "ForceRestart"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let b = admin.get(&bios).await.json;
    assert_eq!(b["Attributes"]["BootMode"], "Uefi");
    assert_eq!(b["Attributes"]["SecureBoot"], "Enabled");
    assert_eq!(b["Attributes"]["SystemSerialNumber"], "SN-0042");
    let sb = admin.get(&format!("{sys}/SecureBoot")).await.json;
    assert_eq!(sb["SecureBootCurrentBoot"], "Enabled");

    // Keys: back to the firmware's defaults; deleting them is the guest's job.
    let keys = format!("{sys}/SecureBoot/Actions/SecureBoot.ResetKeys");
    let r = admin
        .post(&keys, json!({"ResetKeysType": "ResetAllKeysToDefault"}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
    let r = admin.post(&keys, json!({"ResetKeysType": "DeletePK"})).await;
    assert!(r.message_id().ends_with("ActionParameterNotSupported"));
    let r = admin.post(&keys, json!({"ResetKeysType": "Shred"})).await;
    assert!(r.message_id().ends_with("ActionParameterValueNotInList"));

    // Bad input.
    let bad = [
        (
            json!({"Attributes": {"BootMode": "Floppy"}}),
            "PropertyValueNotInList",
        ),
        (json!({"Attributes": {"Overclock": "Max"}}), "PropertyUnknown"),
        (
            json!({"Attributes": {"SystemSerialNumber": "x".repeat(65)}}),
            "PropertyValueIncorrect",
        ),
        (
            json!({"Attributes": {"SystemSerialNumber": 7}}),
            "PropertyValueTypeError",
        ),
        (
            json!({"@Redfish.SettingsApplyTime": {"ApplyTime": "Immediate"}}),
            "PropertyValueNotInList",
        ),
    ];
    for (body, id) in bad {
        let r = admin.patch(&settings, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(r.message_id().ends_with(id), "{body}: {}", r.message_id());
    }

    // Back to legacy BIOS through the Boot property; Secure Boot goes with UEFI.
    let r = admin
        .patch(&sys, json!({"Boot": {"BootSourceOverrideMode": "Legacy"}}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let pending = admin.get(&settings).await.json;
    assert_eq!(pending["Attributes"]["BootMode"], "LegacyBios");
    assert_eq!(pending["Attributes"]["SecureBoot"], "Disabled");
    let r = admin
        .post(&format!("{bios}/Actions/Bios.ResetBios"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        admin.get(&settings).await.json["Attributes"]["SystemSerialNumber"],
        ""
    );
    bmc.stop().await;
}
