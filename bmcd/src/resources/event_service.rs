//! `EventService`: subscriptions (webhooks), the server-sent event stream and
//! test events.

use crate::json;
use hyper::StatusCode;
use serde_json::Value;

use super::{collection, link, status_ok};
use crate::body::{Context, Fields};
use crate::error::{Message, RedfishError};
use crate::events::{DeliveryPolicy, Filter};
use crate::privilege::Required;
use crate::registries::base;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::schemas;
use crate::store::SubscriptionRecord;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish/v1/EventService", Required::LOGIN, get_event_service),
        route!(PATCH "/redfish/v1/EventService", Required::CONFIGURE_MANAGER, patch_event_service),
        route!(POST "/redfish/v1/EventService/Actions/EventService.SubmitTestEvent", Required::CONFIGURE_MANAGER, post_event_service_submit_test_event),
        route!(GET "/redfish/v1/EventService/SSE", Required::LOGIN, get_event_stream).accepting(&["$filter"]),
        route!(GET "/redfish/v1/EventService/Subscriptions", Required::LOGIN, get_subscription_collection),
        route!(POST "/redfish/v1/EventService/Subscriptions", Required::CONFIGURE_MANAGER, post_subscription),
        route!(GET "/redfish/v1/EventService/Subscriptions/{id}", Required::LOGIN, get_subscription),
        route!(PATCH "/redfish/v1/EventService/Subscriptions/{id}", Required::CONFIGURE_MANAGER, patch_subscription),
        route!(DELETE "/redfish/v1/EventService/Subscriptions/{id}", Required::CONFIGURE_MANAGER, delete_subscription),
        route!(POST "/redfish/v1/EventService/Subscriptions/{id}/Actions/EventDestination.SuspendSubscription", Required::CONFIGURE_MANAGER, post_subscription_suspend),
        route!(POST "/redfish/v1/EventService/Subscriptions/{id}/Actions/EventDestination.ResumeSubscription", Required::CONFIGURE_MANAGER, post_subscription_resume),
    ]
}

const SUBSCRIPTIONS: &str = "/redfish/v1/EventService/Subscriptions";
const PREFIXES: &[&str] = &["ResourceEvent", "TaskEvent", "Base"];
const RESOURCE_TYPES: &[&str] = &["ComputerSystem", "Task", "VirtualMedia"];
const POLICIES: &[&str] = &["TerminateAfterRetries", "SuspendRetries", "RetryForever"];

async fn get_event_service(req: Request) -> Result<Reply, RedfishError> {
    let p = req.app.events.policy();
    Ok(Reply::ok(json!({
        "@odata.id": "/redfish/v1/EventService",
        "@odata.type": schemas::EVENT_SERVICE.odata_type(),
        "Id": "EventService",
        "Name": "Event Service",
        "ServiceEnabled": true,
        "Status": status_ok(),
        "DeliveryRetryAttempts": p.retry_attempts,
        "DeliveryRetryIntervalSeconds": p.retry_interval_s,
        "EventFormatTypes": ["Event"],
        "RegistryPrefixes": PREFIXES,
        "ResourceTypes": RESOURCE_TYPES,
        "ServerSentEventUri": "/redfish/v1/EventService/SSE",
        "SSEFilterPropertiesSupported": {
            "EventFormatType": false,
            "MessageId": true,
            "MetricReportDefinition": false,
            "OriginResource": true,
            "RegistryPrefix": true,
            "ResourceType": true,
            "SubordinateResources": false,
        },
        // What subscriptions can ask for beyond the filters above: none of these.
        "ExcludeMessageId": false,
        "ExcludeRegistryPrefix": false,
        "IncludeOriginOfConditionSupported": false,
        "SubordinateResourcesSupported": false,
        "Subscriptions": link(SUBSCRIPTIONS),
        "Actions": {
            "#EventService.SubmitTestEvent": {
                "target": "/redfish/v1/EventService/Actions/EventService.SubmitTestEvent",
            },
        },
    })))
}

async fn patch_event_service(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    let attempts = body.integer("DeliveryRetryAttempts")?;
    let interval = body.integer("DeliveryRetryIntervalSeconds")?;
    body.read_only("ServiceEnabled")?;
    body.finish()?;
    let mut p: DeliveryPolicy = req.app.events.policy();
    if let Some(a) = attempts {
        if !(0..=20).contains(&a) {
            return Err(RedfishError::property_value_out_of_range(
                &a.to_string(),
                "DeliveryRetryAttempts",
            ));
        }
        p.retry_attempts = a as u32;
    }
    if let Some(i) = interval {
        if !(1..=3600).contains(&i) {
            return Err(RedfishError::property_value_out_of_range(
                &i.to_string(),
                "DeliveryRetryIntervalSeconds",
            ));
        }
        p.retry_interval_s = i;
    }
    req.app.events.set_policy(p).await?;
    get_event_service(req).await
}

async fn post_event_service_submit_test_event(req: Request) -> Result<Reply, RedfishError> {
    const ACTION: &str = "EventService.SubmitTestEvent";
    let mut body = Fields::parse(&req.body, Context::Action(ACTION))?;
    let message_id = body.string("MessageId")?;
    let message = body.string("Message")?;
    let args = match body.take("MessageArgs") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(RedfishError::action_parameter_value_type(
                    &other.to_string(),
                    "MessageArgs",
                    ACTION,
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(RedfishError::action_parameter_value_type(
                &other.to_string(),
                "MessageArgs",
                ACTION,
            ))
        }
    };
    let origin = match body.take("OriginOfCondition") {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Object(o)) => o.get("@odata.id").and_then(Value::as_str).map(str::to_owned),
        Some(other) => {
            return Err(RedfishError::action_parameter_value_type(
                &other.to_string(),
                "OriginOfCondition",
                ACTION,
            ))
        }
    };
    let severity = body
        .enumerated("MessageSeverity", |s| match s {
            "OK" => Some("OK"),
            "Warning" => Some("Warning"),
            "Critical" => Some("Critical"),
            _ => None,
        })?
        .or(body.enumerated("Severity", |s| match s {
            "OK" => Some("OK"),
            "Warning" => Some("Warning"),
            "Critical" => Some("Critical"),
            _ => None,
        })?);
    for accepted in ["EventGroupId", "EventId", "EventTimestamp", "EventType"] {
        body.take(accepted);
    }
    let message_id = body.required("MessageId", message_id)?;
    body.finish()?;
    let prefix = match message_id.split('.').next() {
        Some("ResourceEvent") => "ResourceEvent",
        Some("TaskEvent") => "TaskEvent",
        Some("Base") => "Base",
        _ => "Test",
    };
    let origin = origin.unwrap_or_else(|| "/redfish/v1/EventService".to_owned());
    let resource_type = resource_type_of(&origin);
    let mut ev = req
        .app
        .events
        .event("Base", base::VERSION, &base::SUCCESS, &[], origin, resource_type);
    ev.registry_prefix = prefix;
    ev.message_id = message_id;
    ev.message = message.unwrap_or_else(|| "Test event.".to_owned());
    ev.args = args;
    ev.severity = severity.unwrap_or("OK");
    req.app.events.publish(ev).await?;
    Ok(Reply::NoContent)
}

/// The schema family of the resource a URI names, as far as events go.
fn resource_type_of(uri: &str) -> &'static str {
    let segments: Vec<&str> = uri.trim_end_matches('/').split('/').collect();
    match segments.as_slice() {
        ["", "redfish", "v1", "Systems", _] => "ComputerSystem",
        ["", "redfish", "v1", "TaskService", "Tasks", _] => "Task",
        [.., "VirtualMedia", _] => "VirtualMedia",
        _ => "EventService",
    }
}

async fn get_event_stream(req: Request) -> Result<Reply, RedfishError> {
    let mut filter = Filter::All;
    for pair in req.query.as_deref().unwrap_or("").split('&') {
        if let Some(value) = pair.strip_prefix("$filter=") {
            let decoded = crate::router::percent_decode(&value.replace('+', " ")).unwrap_or_default();
            filter = Filter::parse(&decoded).map_err(|why| {
                RedfishError::query_parameter_value_format(&decoded, "$filter").with(
                    Message::new(&base::QUERY_PARAMETER_VALUE_FORMAT_ERROR, &[&decoded, "$filter"])
                        .resolution(why),
                )
            })?;
        }
    }
    Ok(Reply::EventStream {
        events: req.app.events.listen(),
        filter,
    })
}

fn find(req: &Request, subs: &[SubscriptionRecord]) -> Result<SubscriptionRecord, RedfishError> {
    let id = req.param(0);
    subs.iter()
        .find(|s| s.id.to_string() == id)
        .cloned()
        .ok_or_else(|| RedfishError::not_found("EventDestination", id))
}

async fn subscription_json(req: &Request, s: &SubscriptionRecord) -> Result<Value, RedfishError> {
    let uri = format!("{SUBSCRIPTIONS}/{}", s.id);
    let (_pending, dead) = req.app.store.outbox_counts(s.id).await?;
    Ok(json!({
        "@odata.id": uri,
        "@odata.type": schemas::EVENT_DESTINATION.odata_type(),
        "Id": s.id.to_string(),
        "Name": "Event Subscription",
        "Destination": s.destination,
        "Context": s.context,
        "Protocol": "Redfish",
        "SubscriptionType": "RedfishEvent",
        "EventFormatType": "Event",
        "RegistryPrefixes": s.registry_prefixes,
        "ResourceTypes": s.resource_types,
        "OriginResources": s.origin_resources.iter().map(|o| link(o)).collect::<Vec<_>>(),
        "HttpHeaders": [],
        "DeliveryRetryPolicy": s.retry_policy,
        "VerifyCertificate": s.verify_certificate,
        "Status": {
            "State": if s.state == "Enabled" { "Enabled" } else { "Disabled" },
            "Health": if dead > 0 { "Warning" } else { "OK" },
        },
        "Actions": {
            "#EventDestination.SuspendSubscription": {
                "target": format!("{uri}/Actions/EventDestination.SuspendSubscription"),
            },
            "#EventDestination.ResumeSubscription": {
                "target": format!("{uri}/Actions/EventDestination.ResumeSubscription"),
            },
        },
    }))
}

async fn get_subscription_collection(req: Request) -> Result<Reply, RedfishError> {
    let subs = req.app.store.subscriptions().await?;
    Ok(Reply::ok(collection(
        &schemas::EVENT_DESTINATION_COLLECTION,
        SUBSCRIPTIONS,
        "Event Subscriptions",
        subs.iter().map(|s| format!("{SUBSCRIPTIONS}/{}", s.id)),
    )))
}

fn string_list(
    body: &mut Fields,
    key: &str,
    allowed: Option<&[&str]>,
) -> Result<Option<Vec<String>>, RedfishError> {
    match body.take(key) {
        None => Ok(None),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for item in items {
                let s = match item {
                    Value::String(s) => s,
                    Value::Object(o) => match o.get("@odata.id").and_then(Value::as_str) {
                        Some(s) => s.to_owned(),
                        None => return Err(RedfishError::property_value_type("{...}", key)),
                    },
                    other => return Err(RedfishError::property_value_type(&other.to_string(), key)),
                };
                if let Some(allowed) = allowed {
                    if !allowed.contains(&s.as_str()) {
                        return Err(RedfishError::property_value_not_in_list(&s, key));
                    }
                }
                out.push(s);
            }
            Ok(Some(out))
        }
        Some(other) => Err(RedfishError::property_value_type(&other.to_string(), key)),
    }
}

fn headers(body: &mut Fields) -> Result<Option<Vec<(String, String)>>, RedfishError> {
    let bad = |v: &Value| RedfishError::property_value_type(&v.to_string(), "HttpHeaders");
    match body.take("HttpHeaders") {
        None => Ok(None),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for item in &items {
                let Value::Object(o) = item else {
                    return Err(bad(item));
                };
                for (k, v) in o {
                    let Value::String(v) = v else {
                        return Err(bad(item));
                    };
                    out.push((k.clone(), v.clone()));
                }
            }
            Ok(Some(out))
        }
        Some(Value::Object(o)) => Ok(Some(
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect(),
        )),
        Some(other) => Err(bad(&other)),
    }
}

async fn post_subscription(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    let destination = body.string("Destination")?;
    let context = body.string("Context")?.unwrap_or_default();
    let protocol = body.enumerated("Protocol", |p| (p == "Redfish").then_some(()))?;
    let _ = body.enumerated("SubscriptionType", |p| (p == "RedfishEvent").then_some(()))?;
    let _ = body.enumerated("EventFormatType", |p| (p == "Event").then_some(()))?;
    let prefixes = string_list(&mut body, "RegistryPrefixes", Some(PREFIXES))?.unwrap_or_default();
    let types = string_list(&mut body, "ResourceTypes", Some(RESOURCE_TYPES))?.unwrap_or_default();
    let origins = string_list(&mut body, "OriginResources", None)?.unwrap_or_default();
    let http_headers = headers(&mut body)?.unwrap_or_default();
    let policy = body
        .enumerated("DeliveryRetryPolicy", |p| {
            POLICIES.iter().find(|x| **x == p).map(|x| (*x).to_owned())
        })?
        .unwrap_or_else(|| "SuspendRetries".to_owned());
    let verify = body.bool("VerifyCertificate")?.unwrap_or(false);
    let destination = body.required("Destination", destination)?;
    body.required("Protocol", protocol)?;
    body.finish()?;
    if let Err(e) = crate::outbound::check_url(&destination) {
        return Err(RedfishError::property_value_incorrect(
            "Destination",
            &destination,
            &e.to_string(),
        ));
    }
    let s = req
        .app
        .store
        .create_subscription(
            SubscriptionRecord {
                id: 0,
                destination,
                context,
                registry_prefixes: prefixes,
                resource_types: types,
                origin_resources: origins,
                http_headers,
                retry_policy: policy,
                state: "Enabled".to_owned(),
                verify_certificate: verify,
            },
            req.app.max_subscriptions,
        )
        .await?
        .ok_or_else(|| {
            RedfishError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Message::new(&base::EVENT_SUBSCRIPTION_LIMIT_EXCEEDED, &[]),
            )
        })?;
    tracing::info!(subscription = s.id, "event subscription created");
    let uri = format!("{SUBSCRIPTIONS}/{}", s.id);
    Ok(Reply::created(&uri, subscription_json(&req, &s).await?))
}

async fn get_subscription(req: Request) -> Result<Reply, RedfishError> {
    let subs = req.app.store.subscriptions().await?;
    let s = find(&req, &subs)?;
    Ok(Reply::ok(subscription_json(&req, &s).await?))
}

async fn patch_subscription(req: Request) -> Result<Reply, RedfishError> {
    let subs = req.app.store.subscriptions().await?;
    let mut s = find(&req, &subs)?;
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    if let Some(c) = body.string("Context")? {
        s.context = c;
    }
    if let Some(h) = headers(&mut body)? {
        s.http_headers = h;
    }
    if let Some(p) = body.enumerated("DeliveryRetryPolicy", |p| {
        POLICIES.iter().find(|x| **x == p).map(|x| (*x).to_owned())
    })? {
        s.retry_policy = p;
    }
    if let Some(v) = body.bool("VerifyCertificate")? {
        s.verify_certificate = v;
    }
    for read_only in [
        "Destination",
        "Protocol",
        "RegistryPrefixes",
        "ResourceTypes",
        "OriginResources",
    ] {
        body.read_only(read_only)?;
    }
    body.finish()?;
    let s = req.app.store.save_subscription(s).await?;
    Ok(Reply::ok(subscription_json(&req, &s).await?))
}

async fn delete_subscription(req: Request) -> Result<Reply, RedfishError> {
    let subs = req.app.store.subscriptions().await?;
    let s = find(&req, &subs)?;
    req.app.store.delete_subscription(s.id).await?;
    tracing::info!(subscription = s.id, "event subscription deleted");
    Ok(Reply::NoContent)
}

async fn post_subscription_suspend(req: Request) -> Result<Reply, RedfishError> {
    Fields::parse(&req.body, Context::Action("EventDestination.SuspendSubscription"))?.finish()?;
    let subs = req.app.store.subscriptions().await?;
    let mut s = find(&req, &subs)?;
    s.state = "Suspended".to_owned();
    req.app.store.save_subscription(s).await?;
    Ok(Reply::NoContent)
}

async fn post_subscription_resume(req: Request) -> Result<Reply, RedfishError> {
    const ACTION: &str = "EventDestination.ResumeSubscription";
    let mut body = Fields::parse(&req.body, Context::Action(ACTION))?;
    let deliver = body.bool("DeliverBufferedEvents")?.unwrap_or(true);
    body.finish()?;
    let subs = req.app.store.subscriptions().await?;
    let mut s = find(&req, &subs)?;
    s.state = "Enabled".to_owned();
    let id = s.id;
    req.app.store.save_subscription(s).await?;
    req.app.store.revive_events(id, deliver).await?;
    req.app.events.wake();
    Ok(Reply::NoContent)
}
