//! `LogServices` of the BMC (event log, audit log) and of each system.

use crate::json;
use serde_json::Value;

use super::{collection, link, status_ok};
use crate::body::{Context, Fields};
use crate::error::{Message, RedfishError};
use crate::logs::{self, AUDIT_LOG, EVENT_LOG};
use crate::privilege::Required;
use crate::registries::base;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::schemas;
use crate::store::LogRecord;
use crate::time::{now_unix, rfc3339};

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish/v1/Managers/{id}/LogServices", Required::LOGIN, get_log_service_collection),
        route!(GET "/redfish/v1/Managers/{id}/LogServices/{log}", Required::LOGIN, get_log_service),
        route!(GET "/redfish/v1/Managers/{id}/LogServices/{log}/Entries", Required::LOGIN, get_log_entry_collection)
            .accepting(&["$filter"]),
        route!(GET "/redfish/v1/Managers/{id}/LogServices/{log}/Entries/{entry}", Required::LOGIN, get_log_entry),
        route!(POST "/redfish/v1/Managers/{id}/LogServices/{log}/Actions/LogService.ClearLog", Required::CONFIGURE_MANAGER, post_log_service_clear_log),
        route!(GET "/redfish/v1/Systems/{id}/LogServices", Required::LOGIN, get_log_service_collection),
        route!(GET "/redfish/v1/Systems/{id}/LogServices/{log}", Required::LOGIN, get_log_service),
        route!(GET "/redfish/v1/Systems/{id}/LogServices/{log}/Entries", Required::LOGIN, get_log_entry_collection)
            .accepting(&["$filter"]),
        route!(GET "/redfish/v1/Systems/{id}/LogServices/{log}/Entries/{entry}", Required::LOGIN, get_log_entry),
        route!(POST "/redfish/v1/Systems/{id}/LogServices/{log}/Actions/LogService.ClearLog", Required::CONFIGURE_COMPONENTS, post_log_service_clear_log),
    ]
}

/// One log service as addressed by a request.
struct Log {
    /// `/redfish/v1/.../LogServices/<id>`.
    uri: String,
    id: &'static str,
    name: &'static str,
    description: &'static str,
    /// The store's name of the log.
    store_name: String,
    /// Audit entries are `Oem` entries; the others are events.
    audit: bool,
}

const BMC_LOGS: &[(&str, &str, &str)] = &[
    (
        "EventLog",
        "BMC Event Log",
        "What happened: system power, boot, media and task events",
    ),
    (
        "AuditLog",
        "BMC Audit Log",
        "Every state-changing request: who, from where, what and the outcome",
    ),
];

fn base_uri(req: &Request) -> String {
    let parent = if req.path.starts_with("/redfish/v1/Managers/") {
        "Managers"
    } else {
        "Systems"
    };
    format!("/redfish/v1/{parent}/{}/LogServices", req.param(0))
}

/// The log services of the addressed BMC or system.
async fn logs_of(req: &Request) -> Result<Vec<Log>, RedfishError> {
    let base = base_uri(req);
    if req.path.starts_with("/redfish/v1/Managers/") && req.param(0) == super::managers::BMC_ID {
        return Ok(BMC_LOGS
            .iter()
            .map(|(id, name, description)| Log {
                uri: format!("{base}/{id}"),
                id,
                name,
                description,
                store_name: if *id == "AuditLog" { AUDIT_LOG } else { EVENT_LOG }.to_owned(),
                audit: *id == "AuditLog",
            })
            .collect());
    }
    // A per-VM BMC (the manager of one system) keeps that system's log, as a
    // server's BMC keeps its SEL.
    let system = match req.app.hypervisor.system(req.param(0).to_owned()).await {
        Ok(s) => s,
        Err(crate::model::HypervisorError::SystemNotFound(_)) => {
            return Err(RedfishError::not_found("LogServiceCollection", req.param(0)))
        }
        Err(e) => return Err(e.into()),
    };
    Ok(vec![Log {
        uri: format!("{base}/Log"),
        id: "Log",
        name: "System Log",
        description: "Power, boot, media and crash events of this system",
        store_name: logs::system_log(&system.id),
        audit: false,
    }])
}

async fn log_of(req: &Request) -> Result<Log, RedfishError> {
    let wanted = req.param(1);
    logs_of(req)
        .await?
        .into_iter()
        .find(|l| l.id == wanted)
        .ok_or_else(|| RedfishError::not_found("LogService", wanted))
}

async fn get_log_service_collection(req: Request) -> Result<Reply, RedfishError> {
    let logs = logs_of(&req).await?;
    Ok(Reply::ok(collection(
        &schemas::LOG_SERVICE_COLLECTION,
        &base_uri(&req),
        "Log Services",
        logs.into_iter().map(|l| l.uri),
    )))
}

async fn get_log_service(req: Request) -> Result<Reply, RedfishError> {
    let log = log_of(&req).await?;
    let mut body = json!({
        "@odata.id": log.uri,
        "@odata.type": schemas::LOG_SERVICE.odata_type(),
        "Id": log.id,
        "Name": log.name,
        "Description": log.description,
        "ServiceEnabled": true,
        "MaxNumberOfRecords": req.app.logs.keep,
        "OverWritePolicy": "WrapsWhenFull",
        "LogEntryType": if log.audit { "OEM" } else { "Event" },
        "DateTime": rfc3339(now_unix()),
        "DateTimeLocalOffset": "+00:00",
        "Status": status_ok(),
        "Entries": link(&format!("{}/Entries", log.uri)),
    });
    if !log.audit {
        body["Actions"] = json!({
            "#LogService.ClearLog": { "target": format!("{}/Actions/LogService.ClearLog", log.uri) },
        });
    }
    Ok(Reply::ok(body))
}

fn entry_json(log: &Log, e: &LogRecord) -> Value {
    let mut v = json!({
        "@odata.id": format!("{}/Entries/{}", log.uri, e.id),
        "@odata.type": schemas::LOG_ENTRY.odata_type(),
        "Id": e.id.to_string(),
        "Name": format!("Log Entry {}", e.id),
        "Created": rfc3339(e.created),
        "EntryType": if log.audit { "Oem" } else { "Event" },
        "Severity": e.severity,
        "Message": e.message,
        "MessageArgs": e.args,
    });
    if !e.origin.is_empty() {
        v["Links"] = json!({ "OriginOfCondition": link(&e.origin) });
    }
    if log.audit {
        v["OemRecordFormat"] = json!("RedfinAudit");
    }
    if !e.message_id.is_empty() {
        v["MessageId"] = json!(e.message_id);
    }
    v
}

/// A `$filter` over log entries: clauses `Property op 'value'` joined by `and`,
/// with `eq`/`ne` on Severity, MessageId and EntryType, and `eq`, `ne`, `gt`,
/// `ge`, `lt`, `le` on Created (RFC 3339 date-times compare as text).
pub(crate) struct EntryFilter(pub(crate) Vec<(String, String, String)>);

impl EntryFilter {
    pub(crate) fn parse(text: &str) -> Result<EntryFilter, String> {
        let mut clauses = Vec::new();
        let lower = text.to_ascii_lowercase();
        if lower.contains(" or ") {
            return Err("'or' is not supported on log entries".into());
        }
        let mut rest = text;
        loop {
            let (clause, tail) = match rest.to_ascii_lowercase().find(" and ") {
                Some(i) => (&rest[..i], Some(&rest[i + 5..])),
                None => (rest, None),
            };
            let mut words = clause.trim().splitn(3, ' ');
            let (Some(prop), Some(op), Some(value)) = (words.next(), words.next(), words.next()) else {
                return Err(format!("'{}' is not 'Property op value'", clause.trim()));
            };
            let op = op.to_ascii_lowercase();
            let ordered = matches!(op.as_str(), "gt" | "ge" | "lt" | "le");
            match (prop, op.as_str()) {
                ("Severity" | "MessageId" | "EntryType", "eq" | "ne") => {}
                ("Created", _) if ordered || op == "eq" || op == "ne" => {}
                _ => return Err(format!("'{prop} {op}' is not supported")),
            }
            clauses.push((prop.to_owned(), op, value.trim().trim_matches('\'').to_owned()));
            match tail {
                Some(t) => rest = t,
                None => break,
            }
        }
        Ok(EntryFilter(clauses))
    }

    fn accepts(&self, log: &Log, e: &LogRecord) -> bool {
        self.0.iter().all(|(prop, op, value)| {
            let created = rfc3339(e.created);
            let actual = match prop.as_str() {
                "Severity" => e.severity.as_str(),
                "MessageId" => e.message_id.as_str(),
                "EntryType" => {
                    if log.audit {
                        "Oem"
                    } else {
                        "Event"
                    }
                }
                _ => created.as_str(),
            };
            match op.as_str() {
                "eq" => actual == value,
                "ne" => actual != value,
                "gt" => actual > value.as_str(),
                "ge" => actual >= value.as_str(),
                "lt" => actual < value.as_str(),
                _ => actual <= value.as_str(),
            }
        })
    }
}

async fn get_log_entry_collection(req: Request) -> Result<Reply, RedfishError> {
    let log = log_of(&req).await?;
    let mut filter = EntryFilter(Vec::new());
    for pair in req.query.as_deref().unwrap_or("").split('&') {
        if let Some(value) = pair.strip_prefix("$filter=") {
            let text = crate::router::percent_decode(&value.replace('+', " ")).unwrap_or_default();
            filter = EntryFilter::parse(&text).map_err(|why| {
                RedfishError::bad_request(
                    Message::new(&base::QUERY_PARAMETER_VALUE_FORMAT_ERROR, &[&text, "$filter"])
                        .resolution(why),
                )
            })?;
        }
    }
    let entries = req.app.store.log_entries(log.store_name.clone()).await?;
    let uri = format!("{}/Entries", log.uri);
    let members: Vec<Value> = entries
        .iter()
        .filter(|e| filter.accepts(&log, e))
        .map(|e| entry_json(&log, e))
        .collect();
    Ok(Reply::ok(json!({
        "@odata.id": uri,
        "@odata.type": schemas::LOG_ENTRY_COLLECTION.odata_type(),
        "Name": format!("{} Entries", log.name),
        "Members@odata.count": members.len(),
        "Members": members,
    })))
}

async fn get_log_entry(req: Request) -> Result<Reply, RedfishError> {
    let log = log_of(&req).await?;
    let wanted = req.param(2);
    let entries = req.app.store.log_entries(log.store_name.clone()).await?;
    let e = entries
        .iter()
        .find(|e| e.id.to_string() == wanted)
        .ok_or_else(|| RedfishError::not_found("LogEntry", wanted))?;
    Ok(Reply::ok(entry_json(&log, e)))
}

async fn post_log_service_clear_log(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Action("LogService.ClearLog"))?;
    body.take("LogEntriesETag");
    body.finish()?;
    let log = log_of(&req).await?;
    if log.audit {
        // The audit trail is not erased through the interface it records.
        return Err(RedfishError::new(
            hyper::StatusCode::BAD_REQUEST,
            Message::new(&base::ACTION_NOT_SUPPORTED, &["LogService.ClearLog"])
                .resolution("The audit log only ages out (oldest entries first)."),
        ));
    }
    req.app.store.clear_log(log.store_name.clone()).await?;
    tracing::info!(log = log.id, "log cleared");
    Ok(Reply::NoContent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(audit: bool) -> Log {
        Log {
            uri: String::new(),
            id: "x",
            name: "x",
            description: "x",
            store_name: String::new(),
            audit,
        }
    }

    fn entry(severity: &str, created: i64) -> LogRecord {
        LogRecord {
            id: 1,
            log: String::new(),
            created,
            severity: severity.into(),
            message: String::new(),
            message_id: "ResourceEvent.1.5.0.ResourcePoweredOff".into(),
            args: vec![],
            origin: String::new(),
        }
    }

    #[test]
    fn entry_filters() {
        let f = EntryFilter::parse("Severity eq 'Critical' and Created ge '2026-01-01T00:00:00+00:00'")
            .expect("parses");
        assert!(f.accepts(&log(false), &entry("Critical", 1_800_000_000)));
        assert!(!f.accepts(&log(false), &entry("OK", 1_800_000_000)));
        assert!(!f.accepts(&log(false), &entry("Critical", 0)));
        let f = EntryFilter::parse("EntryType eq 'Oem'").expect("parses");
        assert!(f.accepts(&log(true), &entry("OK", 0)));
        assert!(!f.accepts(&log(false), &entry("OK", 0)));
        assert!(EntryFilter::parse("Message eq 'x'").is_err());
        assert!(EntryFilter::parse("Severity gt 'OK'").is_err());
        assert!(EntryFilter::parse("Severity eq 'OK' or Severity eq 'Warning'").is_err());
    }
}
