//! `/redfish/v1/Registries`: the message registries bmcd's messages and events
//! come from, and the BIOS attribute registry.

use crate::json;

use super::collection;
use crate::error::RedfishError;
use crate::privilege::Required;
use crate::registries::{self, registry_document};
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::schemas;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish/v1/Registries", Required::LOGIN, get_registry_file_collection),
        route!(GET "/redfish/v1/Registries/{id}", Required::LOGIN, get_registry_file),
        route!(GET "/redfish/v1/Registries/{id}/{file}", Required::LOGIN, get_registry),
    ]
}

const BIOS: &str = super::bios::REGISTRY_ID;

async fn get_registry_file_collection(_req: Request) -> Result<Reply, RedfishError> {
    let mut members: Vec<String> = registries::ALL
        .iter()
        .map(|r| format!("/redfish/v1/Registries/{}", r.prefix))
        .collect();
    members.push(format!("/redfish/v1/Registries/{BIOS}"));
    Ok(Reply::ok(collection(
        &schemas::MESSAGE_REGISTRY_FILE_COLLECTION,
        "/redfish/v1/Registries",
        "Message Registry File Collection",
        members,
    )))
}

async fn get_registry_file(req: Request) -> Result<Reply, RedfishError> {
    let id = req.param(0);
    if id == BIOS {
        return Ok(Reply::ok(json!({
            "@odata.id": format!("/redfish/v1/Registries/{BIOS}"),
            "@odata.type": schemas::MESSAGE_REGISTRY_FILE.odata_type(),
            "Id": BIOS,
            "Name": "BIOS Attribute Registry File",
            "Description": "The BIOS attributes of Redfin virtual machines",
            "Languages": ["en"],
            "Registry": super::bios::ATTRIBUTE_REGISTRY,
            "Location": [{ "Language": "en", "Uri": format!("/redfish/v1/Registries/{BIOS}/{BIOS}") }],
        })));
    }
    let reg = registries::by_prefix(id).ok_or_else(|| RedfishError::not_found("MessageRegistryFile", id))?;
    let registry = format!("{}.{}", reg.prefix, reg.version);
    let mut location = json!({
        "Language": "en",
        "Uri": format!("/redfish/v1/Registries/{0}/{0}", reg.prefix),
    });
    // Only the DMTF's registries are published; Redfin's own is served here only.
    if reg.owner == "DMTF" {
        location["PublicationUri"] = json!(format!("https://redfish.dmtf.org/registries/{registry}.json"));
    }
    Ok(Reply::ok(json!({
        "@odata.id": format!("/redfish/v1/Registries/{}", reg.prefix),
        "@odata.type": schemas::MESSAGE_REGISTRY_FILE.odata_type(),
        "Id": reg.prefix,
        "Name": format!("{} File", reg.name),
        "Description": format!("The {} {} message registry", reg.owner, reg.prefix),
        "Languages": ["en"],
        "Registry": registry,
        "Location": [location],
    })))
}

async fn get_registry(req: Request) -> Result<Reply, RedfishError> {
    let (id, file) = (req.param(0), req.param(1));
    if id == BIOS && file == BIOS {
        return Ok(Reply::ok(super::bios::attribute_registry_document()));
    }
    // A registry document is served as published: its Id is the registry's
    // versioned name, so it carries no @odata.id of its own.
    match registries::by_prefix(id) {
        Some(reg) if file == reg.prefix => Ok(Reply::ok(registry_document(reg))),
        _ => Err(RedfishError::not_found("MessageRegistry", file)),
    }
}
