//! `TaskService`, its `Tasks` and the task monitors clients poll.

use crate::json;
use hyper::StatusCode;
use serde_json::Value;

use super::{collection, link, status_ok};
use crate::error::{Message, RedfishError};
use crate::privilege::Required;
use crate::registries::base;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::schemas;
use crate::store::TaskRecord;
use crate::time::{now_unix, rfc3339};

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish/v1/TaskService", Required::LOGIN, get_task_service),
        route!(GET "/redfish/v1/TaskService/Tasks", Required::LOGIN, get_task_collection),
        route!(GET "/redfish/v1/TaskService/Tasks/{id}", Required::LOGIN, get_task),
        route!(GET "/redfish/v1/TaskService/TaskMonitors/{id}", Required::LOGIN, get_task_monitor),
    ]
}

const TASKS: &str = "/redfish/v1/TaskService/Tasks";
const MONITORS: &str = "/redfish/v1/TaskService/TaskMonitors";

pub fn monitor_uri(t: &TaskRecord) -> String {
    format!("{MONITORS}/{}", t.id)
}

pub fn task_json(t: &TaskRecord) -> Value {
    let mut v = json!({
        "@odata.id": format!("{TASKS}/{}", t.id),
        "@odata.type": schemas::TASK.odata_type(),
        "Id": t.id.to_string(),
        "Name": t.name,
        "TaskState": t.state,
        "TaskStatus": t.status,
        "PercentComplete": t.percent,
        "StartTime": rfc3339(t.started),
        "TaskMonitor": monitor_uri(t),
        "Messages": crate::tasks::messages(t),
    });
    if let Some(end) = t.ended {
        v["EndTime"] = json!(rfc3339(end));
    }
    v
}

fn find(req: &Request) -> Result<TaskRecord, RedfishError> {
    let id = req.param(0);
    id.parse::<i64>()
        .ok()
        .and_then(|n| req.app.tasks.get(n))
        .ok_or_else(|| RedfishError::not_found("Task", id))
}

async fn get_task_service(_req: Request) -> Result<Reply, RedfishError> {
    Ok(Reply::ok(json!({
        "@odata.id": "/redfish/v1/TaskService",
        "@odata.type": schemas::TASK_SERVICE.odata_type(),
        "Id": "TaskService",
        "Name": "Task Service",
        "ServiceEnabled": true,
        "CompletedTaskOverWritePolicy": "Oldest",
        "LifeCycleEventOnTaskStateChange": true,
        "DateTime": rfc3339(now_unix()),
        "Status": status_ok(),
        "Tasks": link(TASKS),
    })))
}

async fn get_task_collection(req: Request) -> Result<Reply, RedfishError> {
    Ok(Reply::ok(collection(
        &schemas::TASK_COLLECTION,
        TASKS,
        "Task Collection",
        req.app.tasks.list().iter().map(|t| format!("{TASKS}/{}", t.id)),
    )))
}

async fn get_task(req: Request) -> Result<Reply, RedfishError> {
    Ok(Reply::ok(task_json(&find(&req)?)))
}

/// While the task runs: 202 and the task. Once done: the outcome of the
/// operation itself, as the client would have had it synchronously.
async fn get_task_monitor(req: Request) -> Result<Reply, RedfishError> {
    let t = find(&req)?;
    if t.ended.is_none() {
        return Ok(Reply::accepted(&monitor_uri(&t), task_json(&t)));
    }
    if t.state == "Completed" {
        return Ok(Reply::NoContent);
    }
    let status = if t.state == "Interrupted" {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::BAD_REQUEST
    };
    let mut err = RedfishError::new(status, Message::new(&base::OPERATION_FAILED, &[]));
    err.messages.clear();
    for m in &t.messages {
        // Messages were rendered when stored; keep their text.
        err.messages.push(Message::stored(m.clone()));
    }
    if err.messages.is_empty() {
        err.messages.push(Message::new(&base::GENERAL_ERROR, &[]));
    }
    Err(err)
}
