//! `AggregationService` and its `AggregationSources`: the libvirt hosts whose
//! systems this BMC serves (the host of `libvirt-uri`, named `local`, and the
//! `[[host]]`s of the configuration). Each source tells whether its host can
//! be reached (and why not), which systems it holds, its labels and what its
//! systems take of its processors and memory. Hosts are configured, not added
//! through Redfish: the collection takes no POST.

use crate::json;
use serde_json::Value;

use super::{collection, link, status_ok};
use crate::error::RedfishError;
use crate::libvirt::hosts::HostStatus;
use crate::privilege::Required;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::schemas;
use crate::time::rfc3339;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish/v1/AggregationService", Required::LOGIN, get_aggregation_service),
        route!(GET "/redfish/v1/AggregationService/AggregationSources", Required::LOGIN, get_source_collection),
        route!(GET "/redfish/v1/AggregationService/AggregationSources/{host}", Required::LOGIN, get_source),
    ]
}

const SERVICE: &str = "/redfish/v1/AggregationService";
const SOURCES: &str = "/redfish/v1/AggregationService/AggregationSources";

async fn get_aggregation_service(req: Request) -> Result<Reply, RedfishError> {
    let hosts = req.app.hosts.hosts().await;
    let down = hosts.iter().filter(|h| !h.up).count();
    Ok(Reply::ok(json!({
        "@odata.id": SERVICE,
        "@odata.type": schemas::AGGREGATION_SERVICE.odata_type(),
        "Id": "AggregationService",
        "Name": "Aggregation Service",
        "Description": "The libvirt hosts whose systems this BMC serves",
        "ServiceEnabled": true,
        "Status": {
            "State": "Enabled",
            // A host that cannot be reached makes the service degraded.
            "Health": if down == 0 { "OK" } else { "Warning" },
        },
        "AggregationSources": link(SOURCES),
    })))
}

async fn get_source_collection(req: Request) -> Result<Reply, RedfishError> {
    let hosts = req.app.hosts.hosts().await;
    Ok(Reply::ok(collection(
        &schemas::AGGREGATION_SOURCE_COLLECTION,
        SOURCES,
        "Aggregation Source Collection",
        hosts.iter().map(|h| format!("{SOURCES}/{}", h.spec.name)),
    )))
}

async fn get_source(req: Request) -> Result<Reply, RedfishError> {
    let name = req.param(0);
    let hosts = req.app.hosts.hosts().await;
    let host = hosts
        .into_iter()
        .find(|h| h.spec.name == name)
        .ok_or_else(|| RedfishError::not_found("AggregationSource", name))?;
    let capacity = if host.up {
        req.app.hosts.capacity(&host.spec.name).await
    } else {
        None
    };
    Ok(Reply::ok(source_json(&host, capacity)))
}

fn source_json(h: &HostStatus, capacity: Option<crate::model::HostCapacity>) -> Value {
    let systems: Vec<Value> = h
        .systems
        .iter()
        .map(|s| link(&format!("/redfish/v1/Systems/{}", s.id)))
        .collect();
    let mut redfin = json!({
        "Labels": h.spec.labels,
        "Reachable": h.up,
        "StateChangedTime": rfc3339(h.since),
    });
    if let Some(why) = &h.error {
        redfin["UnreachableReason"] = json!(why);
    }
    if let Some(c) = capacity {
        redfin["Capacity"] = json!({
            "ProcessorCount": c.cpus,
            "MemoryMiB": c.memory_mib,
            "AllocatedVCPUs": c.allocated_vcpus,
            "AllocatedMemoryMiB": c.allocated_memory_mib,
            "FreeMemoryMiB": c.free_memory_mib(),
            "Systems": c.systems,
        });
    }
    json!({
        "@odata.id": format!("{SOURCES}/{}", h.spec.name),
        "@odata.type": schemas::AGGREGATION_SOURCE.odata_type(),
        "Id": h.spec.name,
        "Name": format!("libvirt host {}", h.spec.name),
        "HostName": h.spec.uri,
        "Status": if h.up {
            status_ok()
        } else {
            json!({ "State": "UnavailableOffline", "Health": "Critical" })
        },
        "Links": {
            "ResourcesAccessed@odata.count": systems.len(),
            "ResourcesAccessed": systems,
        },
        "Oem": { "Redfin": redfin },
    })
}
