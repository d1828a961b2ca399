//! LogServices against the libvirt test driver: the event log, each system's
//! log, the audit trail of state-changing requests, paging, filters, retention.

use std::time::Duration;

use hyper::StatusCode;
use redfin_tests::{test_node, Client, TempDir, TestBmc};
use serde_json::{json, Value};

async fn entries(admin: &Client, uri: &str) -> Vec<Value> {
    admin.get(uri).await.json["Members"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn wait_entries(admin: &Client, uri: &str, at_least: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let e = entries(admin, uri).await;
        if e.len() >= at_least {
            return e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{uri}: {} entries",
            e.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn logs_record_events_and_every_state_changing_request() {
    let dir = TempDir::new("logs");
    let (uri, doms) = test_node(dir.path(), 2);
    let mut config = TestBmc::config(&dir.path().join("state"), &uri);
    config.log_retention = 6;
    let bmc = TestBmc::start_with(config).await;
    let admin = bmc.admin();
    let (a, b) = (&doms[0].uuid, &doms[1].uuid);

    let svc = admin.get("/redfish/v1/Managers/BMC/LogServices").await.json;
    assert_eq!(svc["Members@odata.count"], 2);
    let r = admin
        .post(
            &format!("/redfish/v1/Systems/{a}/Actions/ComputerSystem.Reset"),
            json!({"ResetType": "ForceOff"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // A failed login is audited too.
    let r = bmc
        .client()
        .post(
            "/redfish/v1/SessionService/Sessions",
            json!({"UserName": "admin", "Password": "nope"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let events = wait_entries(&admin, "/redfish/v1/Managers/BMC/LogServices/EventLog/Entries", 1).await;
    assert!(events.iter().any(|e| e["MessageId"]
        .as_str()
        .is_some_and(|m| m.ends_with("ResourcePoweredOff"))));
    let own = wait_entries(
        &admin,
        &format!("/redfish/v1/Systems/{a}/LogServices/Log/Entries"),
        1,
    )
    .await;
    assert_eq!(
        own[0]["Links"]["OriginOfCondition"]["@odata.id"],
        format!("/redfish/v1/Systems/{a}")
    );
    assert_eq!(
        entries(
            &admin,
            &format!("/redfish/v1/Systems/{b}/LogServices/Log/Entries")
        )
        .await
        .len(),
        0
    );

    let audit_uri = "/redfish/v1/Managers/BMC/LogServices/AuditLog/Entries";
    let audit = wait_entries(&admin, audit_uri, 2).await;
    let reset = audit
        .iter()
        .find(|e| e["MessageArgs"][2] == "POST" && e["MessageArgs"][4] == "204")
        .expect("reset audited");
    assert_eq!(reset["MessageArgs"][0], "admin");
    assert_eq!(reset["MessageArgs"][1], "127.0.0.1");
    assert_eq!(reset["EntryType"], "Oem");
    // Audit entries cite Redfin's own registry, served beside the DMTF ones.
    assert_eq!(reset["MessageId"], "RedfinAudit.1.0.0.RequestAudited");
    let registry = admin
        .get("/redfish/v1/Registries/RedfinAudit/RedfinAudit")
        .await
        .json;
    assert_eq!(registry["OwningEntity"], "Redfin");
    assert_eq!(
        registry["Messages"]["RequestAudited"]["Message"],
        "%1 from %2: %3 %4 answered %5"
    );
    let login = audit
        .iter()
        .find(|e| e["MessageArgs"][4] == "401")
        .expect("failed login audited");
    assert_eq!(login["MessageArgs"][0], "-");
    assert!(!login.to_string().contains("nope"), "no secrets in the audit log");
    let warnings = entries(
        &admin,
        &format!("{audit_uri}?$filter=Severity%20eq%20%27Warning%27"),
    )
    .await;
    assert_eq!(warnings.len(), 1);
    let r = admin
        .get(&format!("{audit_uri}?$filter=Message%20eq%20%27x%27"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Retention: the newest entries stay.
    for _ in 0..8 {
        admin
            .patch("/redfish/v1/AccountService", json!({"MinPasswordLength": 8}))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let audit = entries(&admin, audit_uri).await;
    assert_eq!(audit.len(), 6, "kept the newest 6");
    assert!(audit.iter().all(|e| e["MessageArgs"][2] == "PATCH"));

    // Paging works on any collection.
    let page = admin.get(&format!("{audit_uri}?$top=2&$skip=1")).await.json;
    assert_eq!(page["Members"].as_array().map(Vec::len), Some(2));
    assert_eq!(page["Members@odata.count"], 6);
    assert!(page["Members@odata.nextLink"]
        .as_str()
        .is_some_and(|l| l.contains("$skip=3")));
    let systems = admin.get("/redfish/v1/Systems?$top=1").await.json;
    assert_eq!(systems["Members"].as_array().map(Vec::len), Some(1));
    assert_eq!(systems["Members@odata.count"], 2);
    assert_eq!(
        admin.get("/redfish/v1/Systems?$top=x").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        admin.get("/redfish/v1/AccountService?$top=1").await.status,
        StatusCode::BAD_REQUEST
    );

    // Clearing: the event log yes, the audit trail no; a read-only user neither.
    let r = admin
        .post(
            "/redfish/v1/Managers/BMC/LogServices/AuditLog/Actions/LogService.ClearLog",
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    admin
        .post(
            "/redfish/v1/AccountService/Accounts",
            json!({"UserName": "ro", "Password": "ro-pass-123", "RoleId": "ReadOnly"}),
        )
        .await;
    let ro = bmc.client().basic("ro", "ro-pass-123");
    let clear = "/redfish/v1/Managers/BMC/LogServices/EventLog/Actions/LogService.ClearLog";
    assert_eq!(ro.post(clear, json!({})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(ro.get(audit_uri).await.status, StatusCode::OK);
    assert_eq!(admin.post(clear, json!({})).await.status, StatusCode::NO_CONTENT);
    assert!(
        entries(&admin, "/redfish/v1/Managers/BMC/LogServices/EventLog/Entries")
            .await
            .is_empty()
    );
    let audit_svc = admin
        .get("/redfish/v1/Managers/BMC/LogServices/AuditLog")
        .await
        .json;
    assert!(
        audit_svc.get("Actions").is_none(),
        "the audit log cannot be cleared"
    );

    // The next-page link keeps the filter; an empty page has none.
    let page = admin
        .get(&format!("{audit_uri}?$top=1&$filter=Severity%20eq%20%27OK%27"))
        .await
        .json;
    let next = page["Members@odata.nextLink"].as_str().unwrap_or("").to_owned();
    assert!(next.contains("$filter=Severity"), "{next}");
    let empty = admin.get(&format!("{audit_uri}?$top=0")).await.json;
    assert!(empty.get("Members@odata.nextLink").is_none());

    // The last requests before a clean stop are in the audit log after it.
    admin
        .patch("/redfish/v1/AccountService", json!({"MinPasswordLength": 9}))
        .await;
    let state = bmc.state_dir.clone();
    let uri = bmc.libvirt_uri.clone();
    bmc.stop().await;
    let bmc = TestBmc::start(&state, &uri).await;
    let admin = bmc.admin();
    let audit = entries(&admin, audit_uri).await;
    assert!(
        audit
            .iter()
            .any(|e| e["MessageArgs"][3] == "/redfish/v1/AccountService" && e["MessageArgs"][2] == "PATCH"),
        "{audit:?}"
    );
    assert_eq!(
        admin.get("/redfish/v1/AccountService").await.json["MinPasswordLength"],
        9
    );
    bmc.stop().await;
}
