//! EventService against the libvirt test driver: webhook deliveries with
//! retries, exactly once; suspension and resumption; test events; the SSE
//! stream and its filter.

use std::time::Duration;

use bytes::Bytes;
use hyper::StatusCode;
use redfin_tests::{test_node, TempDir, TestBmc, WebhookReceiver};
use serde_json::{json, Value};

async fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn message_ids(bodies: &[Value]) -> Vec<String> {
    bodies
        .iter()
        .flat_map(|b| b["Events"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["MessageId"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn webhooks_get_each_event_once_after_retries() {
    let dir = TempDir::new("events");
    let (uri, doms) = test_node(dir.path(), 1);
    let bmc = TestBmc::start(&dir.path().join("state"), &uri).await;
    let admin = bmc.admin();
    let system = format!("/redfish/v1/Systems/{}", doms[0].uuid);

    let r = admin
        .patch(
            "/redfish/v1/EventService",
            json!({"DeliveryRetryAttempts": 5, "DeliveryRetryIntervalSeconds": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let es = admin.get("/redfish/v1/EventService").await.json;
    assert_eq!(es["ServerSentEventUri"], "/redfish/v1/EventService/SSE");

    // A receiver that fails its first three deliveries.
    let receiver = WebhookReceiver::start(3).await;
    let r = admin
        .post(
            "/redfish/v1/EventService/Subscriptions",
            json!({
                "Destination": receiver.url(),
                "Protocol": "Redfish",
                "Context": "lab-7",
                "RegistryPrefixes": ["ResourceEvent"],
                "OriginResources": [{"@odata.id": system}],
                "HttpHeaders": [{"X-Lab-Token": "t0k3n"}]
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let sub = r.header("location").expect("location").to_owned();
    assert_eq!(r.json["HttpHeaders"], json!([]), "headers are write-only");

    let r = admin
        .post(
            &format!("{system}/Actions/ComputerSystem.Reset"),
            json!({"ResetType": "ForceOff"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    eventually("a delivery after three failures", Duration::from_secs(20), || {
        !receiver.accepted().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 1, "exactly once: {accepted:?}");
    assert_eq!(receiver.attempts(), 4);
    let ev = &accepted[0];
    assert_eq!(ev["Context"], "lab-7");
    assert!(message_ids(&accepted)[0].ends_with("ResourcePoweredOff"), "{ev}");
    assert_eq!(ev["Events"][0]["OriginOfCondition"]["@odata.id"], system.as_str());

    // A test event reaches the subscriber too (its prefix matches).
    let r = admin
        .post(
            "/redfish/v1/EventService/Actions/EventService.SubmitTestEvent",
            json!({"MessageId": "ResourceEvent.1.5.0.ResourceChanged", "OriginOfCondition": system}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
    eventually("the test event", Duration::from_secs(10), || {
        receiver.accepted().len() == 2
    })
    .await;
    let r = admin
        .post(
            "/redfish/v1/EventService/Actions/EventService.SubmitTestEvent",
            json!({}),
        )
        .await;
    assert!(r.message_id().ends_with("ActionParameterMissing"));

    // Bad subscriptions.
    for (body, id) in [
        (json!({"Protocol": "Redfish"}), "PropertyMissing"),
        (
            json!({"Destination": "http://127.0.0.1:1/x", "Protocol": "FTP"}),
            "PropertyValueNotInList",
        ),
        (
            json!({"Destination": "file:///etc/passwd", "Protocol": "Redfish"}),
            "PropertyValueIncorrect",
        ),
        (
            json!({"Destination": "http://169.254.169.254/", "Protocol": "Redfish"}),
            "PropertyValueIncorrect",
        ),
        (
            json!({"Destination": "http://127.0.0.1:1/x", "Protocol": "Redfish", "RegistryPrefixes": ["Nope"]}),
            "PropertyValueNotInList",
        ),
    ] {
        let r = admin
            .post("/redfish/v1/EventService/Subscriptions", body.clone())
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(r.message_id().ends_with(id), "{body}: {}", r.message_id());
    }
    assert_eq!(admin.delete(&sub).await.status, StatusCode::NO_CONTENT);
    assert_eq!(admin.get(&sub).await.status, StatusCode::NOT_FOUND);
    bmc.stop().await;
}

#[tokio::test]
async fn a_subscriber_that_keeps_failing_is_suspended_and_can_be_resumed() {
    let dir = TempDir::new("events-dead");
    let (uri, _) = test_node(dir.path(), 1);
    let bmc = TestBmc::start(&dir.path().join("state"), &uri).await;
    let admin = bmc.admin();
    admin
        .patch(
            "/redfish/v1/EventService",
            json!({"DeliveryRetryAttempts": 1, "DeliveryRetryIntervalSeconds": 1}),
        )
        .await;
    let receiver = WebhookReceiver::start(2).await;
    let r = admin
        .post(
            "/redfish/v1/EventService/Subscriptions",
            json!({"Destination": receiver.url(), "Protocol": "Redfish"}),
        )
        .await;
    let sub = r.header("location").expect("location").to_owned();
    admin
        .post(
            "/redfish/v1/EventService/Actions/EventService.SubmitTestEvent",
            json!({"MessageId": "Base.1.20.0.Success"}),
        )
        .await;
    // One try and one retry, both refused: the subscription is suspended.
    let mut state = Value::Null;
    for _ in 0..100 {
        state = admin.get(&sub).await.json["Status"].clone();
        if state["State"] == "Disabled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state["State"], "Disabled", "{state}");
    assert_eq!(state["Health"], "Warning");
    assert_eq!(receiver.attempts(), 2);
    // Resuming delivers what was held back.
    let r = admin
        .post(
            &format!("{sub}/Actions/EventDestination.ResumeSubscription"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.json);
    eventually("the held-back event", Duration::from_secs(10), || {
        receiver.accepted().len() == 1
    })
    .await;
    assert_eq!(admin.get(&sub).await.json["Status"]["State"], "Enabled");
    bmc.stop().await;
}

#[tokio::test]
async fn the_sse_stream_carries_filtered_events() {
    let dir = TempDir::new("sse");
    let (uri, doms) = test_node(dir.path(), 2);
    let bmc = TestBmc::start(&dir.path().join("state"), &uri).await;
    let admin = bmc.admin();
    let watched = format!("/redfish/v1/Systems/{}", doms[0].uuid);
    let other = format!("/redfish/v1/Systems/{}", doms[1].uuid);
    let filter = format!("OriginResource eq '{watched}'")
        .replace(' ', "%20")
        .replace('\'', "%27");
    let mut stream = admin
        .stream(&format!("/redfish/v1/EventService/SSE?$filter={filter}"))
        .await;
    assert_eq!(stream.status, StatusCode::OK);
    // An event of another system, then one of the watched system.
    admin
        .post(
            &format!("{other}/Actions/ComputerSystem.Reset"),
            json!({"ResetType": "On"}),
        )
        .await;
    admin
        .post(
            &format!("{watched}/Actions/ComputerSystem.Reset"),
            json!({"ResetType": "ForceOff"}),
        )
        .await;
    let frame = tokio::time::timeout(Duration::from_secs(5), stream.next_event())
        .await
        .expect("an event within 5 s")
        .expect("stream open");
    assert!(frame["Events"][0]["MessageId"]
        .as_str()
        .is_some_and(|m| m.ends_with("ResourcePoweredOff")));
    assert_eq!(
        frame["Events"][0]["OriginOfCondition"]["@odata.id"],
        watched.as_str()
    );
    // A filter bmcd cannot evaluate is refused.
    let r = admin
        .get("/redfish/v1/EventService/SSE?$filter=Severity%20eq%20%27OK%27")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // And $filter stays refused where it is not supported.
    let r = admin.get("/redfish/v1/Systems?$filter=Id%20eq%20x").await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
    let _ = Bytes::new();
    bmc.stop().await;
}
