//! Redfish events: what happens to systems (libvirt lifecycle events, including
//! changes made outside bmcd) and tasks becomes Redfish `Event`s, published to
//! server-sent-event streams and to webhook subscribers through a durable
//! outbox in SQLite: an event is queued for every matching subscription in one
//! transaction before anything is sent, delivered with retries and exponential
//! backoff, and removed only once the subscriber answered 2xx.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::json;
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::{broadcast, Notify};

use crate::model::{Hypervisor, LifecycleEvent};
use crate::outbound::{self, Delivery};
use crate::registries::{self, MessageDef};
use crate::store::{OutboxRecord, Store, StoreError, SubscriptionRecord};
use crate::time::{now_unix, rfc3339};

/// Deliveries one subscriber's task takes from the outbox at a time.
const DELIVERIES_PER_TASK: i64 = 64;

/// One event, as SSE clients and subscribers get it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub event_id: u64,
    pub timestamp: i64,
    pub registry_prefix: &'static str,
    /// `ResourceEvent.1.5.0.ResourcePoweredOff`.
    pub message_id: String,
    pub message: String,
    pub args: Vec<String>,
    pub severity: &'static str,
    /// URI of the resource the event is about.
    pub origin: String,
    /// Schema family of that resource (`ComputerSystem`).
    pub resource_type: &'static str,
}

impl EventRecord {
    pub fn to_json(&self) -> Value {
        json!({
            "EventId": self.event_id.to_string(),
            "EventTimestamp": rfc3339(self.timestamp),
            "MessageId": self.message_id,
            "Message": self.message,
            "MessageArgs": self.args,
            "MessageSeverity": self.severity,
            "OriginOfCondition": { "@odata.id": self.origin },
        })
    }

    /// The `Event` resource carrying this event, with a subscriber's context.
    pub fn payload(&self, context: &str) -> Value {
        let mut record = self.to_json();
        record["MemberId"] = json!("0");
        json!({
            "@odata.type": "#Event.v1_11_0.Event",
            "Id": self.event_id.to_string(),
            "Name": "Redfin Event",
            "Context": context,
            "Events": [record],
        })
    }
}

/// How deliveries are retried (`EventService` properties).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPolicy {
    pub retry_attempts: u32,
    pub retry_interval_s: i64,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            retry_attempts: 5,
            retry_interval_s: 30,
        }
    }
}

/// A subscription's filters: an event matches when every non-empty list has it.
pub fn matches(sub: &SubscriptionRecord, ev: &EventRecord) -> bool {
    (sub.registry_prefixes.is_empty() || sub.registry_prefixes.iter().any(|p| p == ev.registry_prefix))
        && (sub.resource_types.is_empty() || sub.resource_types.iter().any(|t| t == ev.resource_type))
        && (sub.origin_resources.is_empty() || sub.origin_resources.contains(&ev.origin))
}

pub struct EventService {
    store: Store,
    logs: Arc<crate::logs::Logs>,
    stream: broadcast::Sender<Arc<EventRecord>>,
    next_id: AtomicU64,
    policy: Mutex<DeliveryPolicy>,
    wake: Notify,
}

impl EventService {
    pub async fn load(store: Store, logs: Arc<crate::logs::Logs>) -> Result<Arc<EventService>, StoreError> {
        let mut policy = DeliveryPolicy::default();
        if let Some(v) = store
            .setting("event_retry_attempts")
            .await?
            .and_then(|v| v.parse().ok())
        {
            policy.retry_attempts = v;
        }
        if let Some(v) = store
            .setting("event_retry_interval")
            .await?
            .and_then(|v| v.parse().ok())
        {
            policy.retry_interval_s = v;
        }
        let (stream, _) = broadcast::channel(1024);
        // Event ids grow across restarts: they start from the clock.
        let first = (now_unix().max(0) as u64) << 16;
        Ok(Arc::new(EventService {
            store,
            logs,
            stream,
            next_id: AtomicU64::new(first),
            policy: Mutex::new(policy),
            wake: Notify::new(),
        }))
    }

    pub fn policy(&self) -> DeliveryPolicy {
        *self.policy.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub async fn set_policy(&self, p: DeliveryPolicy) -> Result<(), StoreError> {
        self.store
            .set_setting("event_retry_attempts", p.retry_attempts.to_string())
            .await?;
        self.store
            .set_setting("event_retry_interval", p.retry_interval_s.to_string())
            .await?;
        *self.policy.lock().unwrap_or_else(PoisonError::into_inner) = p;
        Ok(())
    }

    /// Makes the delivery loop look at the outbox now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A stream of every event from now on (for SSE).
    pub fn listen(&self) -> broadcast::Receiver<Arc<EventRecord>> {
        self.stream.subscribe()
    }

    /// Builds an event from a registry message.
    pub fn event(
        &self,
        prefix: &'static str,
        version: &'static str,
        def: &MessageDef,
        args: &[&str],
        origin: String,
        resource_type: &'static str,
    ) -> EventRecord {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        EventRecord {
            event_id: self.next_id.fetch_add(1, Ordering::SeqCst),
            timestamp: now_unix(),
            registry_prefix: prefix,
            message_id: format!("{prefix}.{version}.{}", def.key),
            message: registries::render(def, &args),
            args,
            severity: def.severity,
            origin,
            resource_type,
        }
    }

    /// Publishes an event: queued durably for every matching subscriber, then
    /// streamed.
    pub async fn publish(&self, ev: EventRecord) -> Result<(), StoreError> {
        let subs = self.store.subscriptions().await?;
        let rows: Vec<(i64, String)> = subs
            .iter()
            .filter(|s| s.state == "Enabled" && matches(s, &ev))
            .map(|s| (s.id, ev.payload(&s.context).to_string()))
            .collect();
        if !rows.is_empty() {
            self.store.enqueue_events(rows, now_unix()).await?;
            self.wake.notify_one();
        }
        tracing::debug!(message_id = %ev.message_id, origin = %ev.origin, "event");
        self.logs
            .event(ev.severity, &ev.message, &ev.message_id, &ev.args, &ev.origin);
        let _ = self.stream.send(Arc::new(ev));
        Ok(())
    }

    /// Publishes, logging a failure (for callers that cannot answer it).
    pub async fn publish_or_log(&self, ev: EventRecord) {
        if let Err(e) = self.publish(ev).await {
            tracing::error!(error = %e, "could not queue an event");
        }
    }

    /// Sends due deliveries until the process ends. Each subscriber is served
    /// by its own task, one delivery at a time and in order, so that a slow or
    /// hanging subscriber (each attempt bounded by `timeout`) holds up only its
    /// own deliveries.
    pub fn deliver(self: Arc<Self>, timeout: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let busy: Arc<Mutex<HashSet<i64>>> = Arc::default();
            loop {
                let sleep = match self.dispatch_due(&busy, timeout).await {
                    Ok(next) => next,
                    Err(e) => {
                        tracing::error!(error = %e, "event delivery failed to read the outbox");
                        Duration::from_secs(5)
                    }
                };
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(sleep) => {}
                }
            }
        })
    }

    /// Starts a delivery task for every subscriber with due deliveries and no
    /// task yet; returns how long to wait before looking again.
    async fn dispatch_due(
        self: &Arc<Self>,
        busy: &Arc<Mutex<HashSet<i64>>>,
        timeout: Duration,
    ) -> Result<Duration, StoreError> {
        let skip = || -> Vec<i64> {
            busy.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .copied()
                .collect()
        };
        let due = self
            .store
            .due_events(now_unix(), DELIVERIES_PER_TASK, skip())
            .await?;
        if !due.is_empty() {
            let subs = self.store.subscriptions().await?;
            let mut batches: Vec<(i64, Vec<OutboxRecord>)> = Vec::new();
            for row in due {
                match batches.iter_mut().find(|(id, _)| *id == row.subscription_id) {
                    Some((_, rows)) => rows.push(row),
                    None => batches.push((row.subscription_id, vec![row])),
                }
            }
            for (id, rows) in batches {
                let Some(sub) = subs.iter().find(|s| s.id == id).cloned() else {
                    for row in rows {
                        self.store.event_delivered(row.id).await?;
                    }
                    continue;
                };
                busy.lock().unwrap_or_else(PoisonError::into_inner).insert(id);
                let this = Arc::clone(self);
                let busy = Arc::clone(busy);
                tokio::spawn(async move {
                    if let Err(e) = this.deliver_to(&sub, rows, timeout).await {
                        tracing::error!(error = %e, subscription = sub.id, "event delivery failed to update the outbox");
                    }
                    busy.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&sub.id);
                    this.wake.notify_one();
                });
            }
        }
        Ok(match self.store.next_event_due(skip()).await? {
            Some(t) => Duration::from_secs((t - now_unix()).clamp(0, 60) as u64),
            None => Duration::from_secs(60),
        })
    }

    /// Delivers one subscriber's due events in order; stops at the first
    /// failure (the rest wait for the next pass, behind the retried one).
    async fn deliver_to(
        &self,
        sub: &SubscriptionRecord,
        rows: Vec<OutboxRecord>,
        timeout: Duration,
    ) -> Result<(), StoreError> {
        let policy = self.policy();
        for row in rows {
            let status = outbound::post_json(&Delivery {
                url: &sub.destination,
                headers: &sub.http_headers,
                body: Bytes::from(row.payload),
                verify_certificate: sub.verify_certificate,
                timeout,
            })
            .await;
            if matches!(status, Ok(s) if (200..300).contains(&s)) {
                self.store.event_delivered(row.id).await?;
                continue;
            }
            let attempts = row.attempts + 1;
            let forever = sub.retry_policy == "RetryForever";
            let give_up = !forever && attempts > policy.retry_attempts;
            let backoff = policy.retry_interval_s.max(1) << (attempts - 1).min(10);
            tracing::warn!(
                subscription = sub.id,
                attempts,
                give_up,
                outcome = ?status.map_err(|e| e.to_string()),
                "event delivery failed"
            );
            self.store
                .event_failed(row.id, attempts, now_unix() + backoff.min(3600), give_up)
                .await?;
            if give_up {
                let mut s = sub.clone();
                s.state = if sub.retry_policy == "TerminateAfterRetries" {
                    "Terminated".into()
                } else {
                    "Suspended".into()
                };
                if s.state == "Terminated" {
                    self.store.delete_subscription(s.id).await?;
                } else {
                    self.store.save_subscription(s).await?;
                }
            }
            break;
        }
        Ok(())
    }

    /// Turns the hypervisor's lifecycle events into Redfish events.
    pub fn follow(self: Arc<Self>, hypervisor: &dyn Hypervisor) -> tokio::task::JoinHandle<()> {
        let mut events = hypervisor.events();
        tokio::spawn(async move {
            use crate::registries::resource_event as re;
            loop {
                let ev = match events.recv().await {
                    Ok(ev) => ev,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "lifecycle events were dropped");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let origin = format!("/redfish/v1/Systems/{}", ev.system_id);
                let def = match ev.event {
                    LifecycleEvent::Started | LifecycleEvent::Resumed => &re::RESOURCE_POWERED_ON,
                    LifecycleEvent::Stopped => &re::RESOURCE_POWERED_OFF,
                    LifecycleEvent::ShuttingDown => &re::RESOURCE_POWERING_OFF,
                    LifecycleEvent::Crashed => &re::RESOURCE_STATUS_CHANGED_CRITICAL,
                    LifecycleEvent::Suspended => &re::RESOURCE_CHANGED,
                    LifecycleEvent::Defined => &re::RESOURCE_CHANGED,
                    LifecycleEvent::Created => &re::RESOURCE_CREATED,
                    LifecycleEvent::Undefined => &re::RESOURCE_REMOVED,
                    // The media watcher turns these into VirtualMedia events.
                    LifecycleEvent::DevicesChanged | LifecycleEvent::Other => continue,
                };
                let args: Vec<&str> = match def.param_types.len() {
                    0 => vec![],
                    1 => vec![origin.as_str()],
                    _ => vec![origin.as_str(), "Critical"],
                };
                let record = self.event(
                    re::PREFIX,
                    re::VERSION,
                    def,
                    &args,
                    origin.clone(),
                    "ComputerSystem",
                );
                self.publish_or_log(record).await;
            }
        })
    }
}

/// A `$filter` of an SSE stream, as Redfish defines it for events: clauses
/// `Property eq 'value'` joined by `or` (any) or `and` (all), over EventType,
/// MessageId, RegistryPrefix, ResourceType and OriginResource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    All,
    Any(Vec<(String, String)>),
    Every(Vec<(String, String)>),
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Filter::All);
        }
        let lower = text.to_ascii_lowercase();
        let (parts, any): (Vec<&str>, bool) = if lower.contains(" and ") && lower.contains(" or ") {
            return Err("mixing 'and' and 'or' is not supported".into());
        } else if lower.contains(" and ") {
            (split_keyword(text, " and "), false)
        } else {
            (split_keyword(text, " or "), true)
        };
        let mut clauses = Vec::new();
        for part in parts {
            let part = part.trim().trim_start_matches('(').trim_end_matches(')').trim();
            let mut words = part.splitn(3, ' ');
            let (Some(prop), Some(op), Some(value)) = (words.next(), words.next(), words.next()) else {
                return Err(format!("'{part}' is not 'Property eq value'"));
            };
            if !op.eq_ignore_ascii_case("eq") {
                return Err(format!("only 'eq' is supported, not '{op}'"));
            }
            let prop = match prop {
                "EventType" | "MessageId" | "RegistryPrefix" | "ResourceType" | "OriginResource" => prop,
                other => return Err(format!("'{other}' cannot be filtered on")),
            };
            let value = value.trim().trim_matches('\'').trim_matches('"');
            clauses.push((prop.to_owned(), value.to_owned()));
        }
        Ok(if any {
            Filter::Any(clauses)
        } else {
            Filter::Every(clauses)
        })
    }

    pub fn accepts(&self, ev: &EventRecord) -> bool {
        let one = |(prop, value): &(String, String)| match prop.as_str() {
            "EventType" => value == "Event" || value == "Alert",
            "MessageId" => ev.message_id == *value || ev.message_id.ends_with(&format!(".{value}")),
            "RegistryPrefix" => ev.registry_prefix == value,
            "ResourceType" => ev.resource_type == value,
            "OriginResource" => ev.origin == *value,
            _ => false,
        };
        match self {
            Filter::All => true,
            Filter::Any(c) => c.iter().any(one),
            Filter::Every(c) => c.iter().all(one),
        }
    }
}

fn split_keyword<'a>(text: &'a str, keyword: &str) -> Vec<&'a str> {
    let lower = text.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(i) = lower[start..].find(keyword) {
        out.push(&text[start..start + i]);
        start += i + keyword.len();
    }
    out.push(&text[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(prefix: &'static str, id: &str, origin: &str) -> EventRecord {
        EventRecord {
            event_id: 1,
            timestamp: 0,
            registry_prefix: prefix,
            message_id: format!("{prefix}.1.0.0.{id}"),
            message: String::new(),
            args: vec![],
            severity: "OK",
            origin: origin.into(),
            resource_type: "ComputerSystem",
        }
    }

    #[test]
    fn filters_select_events() {
        let ev = event("ResourceEvent", "ResourcePoweredOff", "/redfish/v1/Systems/a");
        let f =
            Filter::parse("RegistryPrefix eq 'ResourceEvent' and OriginResource eq '/redfish/v1/Systems/a'")
                .expect("parses");
        assert!(f.accepts(&ev));
        let f = Filter::parse("MessageId eq 'ResourcePoweredOn' or MessageId eq 'ResourcePoweredOff'")
            .expect("parses");
        assert!(f.accepts(&ev));
        let f = Filter::parse("OriginResource eq '/redfish/v1/Systems/b'").expect("parses");
        assert!(!f.accepts(&ev));
        assert!(Filter::parse("").expect("empty").accepts(&ev));
        assert!(Filter::parse("Severity eq 'OK'").is_err());
        assert!(Filter::parse("MessageId ne 'x'").is_err());
        assert!(Filter::parse("a eq 1 and b eq 2 or c eq 3").is_err());
    }

    #[test]
    fn subscriptions_filter_by_prefix_type_and_origin() {
        let ev = event("TaskEvent", "TaskStarted", "/redfish/v1/TaskService/Tasks/1");
        let mut sub = SubscriptionRecord {
            id: 1,
            destination: String::new(),
            context: String::new(),
            registry_prefixes: vec![],
            resource_types: vec![],
            origin_resources: vec![],
            http_headers: vec![],
            retry_policy: "SuspendRetries".into(),
            state: "Enabled".into(),
            verify_certificate: false,
        };
        assert!(matches(&sub, &ev));
        sub.registry_prefixes = vec!["ResourceEvent".into()];
        assert!(!matches(&sub, &ev));
        sub.registry_prefixes = vec!["TaskEvent".into()];
        sub.origin_resources = vec!["/redfish/v1/TaskService/Tasks/1".into()];
        assert!(matches(&sub, &ev));
    }
}
