//! `Chassis`: one per system, the VM's virtual enclosure.

use serde_json::json;

use super::{collection, link};
use crate::error::RedfishError;
use crate::privilege::Required;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::schemas;

use super::systems::{power_state_json, system_status};

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish/v1/Chassis", Required::LOGIN, get_chassis_collection),
        route!(GET "/redfish/v1/Chassis/{id}", Required::LOGIN, get_chassis),
    ]
}

const CHASSIS: &str = "/redfish/v1/Chassis";

async fn get_chassis_collection(req: Request) -> Result<Reply, RedfishError> {
    let systems = req.app.hypervisor.list_systems().await?;
    Ok(Reply::ok(collection(
        &schemas::CHASSIS_COLLECTION,
        CHASSIS,
        "Chassis Collection",
        systems.into_iter().map(|s| format!("{CHASSIS}/{}", s.id)),
    )))
}

async fn get_chassis(req: Request) -> Result<Reply, RedfishError> {
    let id = req.param(0);
    let s = match req.app.hypervisor.system(id.to_owned()).await {
        Ok(s) => s,
        Err(crate::model::HypervisorError::SystemNotFound(_)) => {
            return Err(RedfishError::not_found("Chassis", id))
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Reply::ok(json!({
        "@odata.id": format!("{CHASSIS}/{}", s.id),
        "@odata.type": schemas::CHASSIS.odata_type(),
        "Id": s.id,
        "Name": format!("{} chassis", s.name),
        "ChassisType": "RackMount",
        "Manufacturer": "Redfin",
        "Model": "Virtual Chassis",
        "UUID": s.id,
        "PowerState": power_state_json(&s),
        "Status": system_status(&s),
        "Links": {
            "ComputerSystems": [link(&format!("/redfish/v1/Systems/{}", s.id))],
            "ManagedBy": [link(&format!("/redfish/v1/Managers/{}", s.id))],
        },
    })))
}
