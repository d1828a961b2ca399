//! One file per Redfish resource family. Each declares its routes (path,
//! method, privilege, handler) and translates between Redfish JSON and the model.

pub mod account_service;
pub mod aggregation_service;
pub mod bios;
pub mod bmc_endpoints;
pub mod certificate_service;
pub mod chassis;
pub mod composition;
pub mod consoles;
pub mod event_service;
pub mod json_schemas;
pub mod log_services;
pub mod managers;
pub mod operations;
pub mod projects;
pub mod registries;
pub mod service_root;
pub mod session_service;
pub mod storage;
pub mod systems;
pub mod task_service;
pub mod update_service;
pub mod virtual_media;
#[cfg(feature = "webui")]
pub mod webui;

use crate::json;
use serde_json::Value;

use crate::schemas::Schema;

/// `{"@odata.id": uri}`.
pub fn link(uri: &str) -> Value {
    json!({ "@odata.id": uri })
}

/// A resource collection document.
pub fn collection(
    schema: &Schema,
    uri: &str,
    name: &str,
    members: impl IntoIterator<Item = String>,
) -> Value {
    let members: Vec<Value> = members.into_iter().map(|m| link(&m)).collect();
    json!({
        "@odata.id": uri,
        "@odata.type": schema.odata_type(),
        "Name": name,
        "Members@odata.count": members.len(),
        "Members": members,
    })
}

/// `Status` of an enabled, healthy component.
pub fn status_ok() -> Value {
    json!({ "State": "Enabled", "Health": "OK" })
}
