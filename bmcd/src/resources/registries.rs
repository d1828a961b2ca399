//! `/redfish/v1/Registries`: the message registries bmcd's messages come from.

use serde_json::json;

use super::collection;
use crate::error::RedfishError;
use crate::privilege::Required;
use crate::registries::{base, base_registry_document};
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

async fn get_registry_file_collection(_req: Request) -> Result<Reply, RedfishError> {
    Ok(Reply::ok(collection(
        &schemas::MESSAGE_REGISTRY_FILE_COLLECTION,
        "/redfish/v1/Registries",
        "Message Registry File Collection",
        [
            format!("/redfish/v1/Registries/{}", base::PREFIX),
            format!("/redfish/v1/Registries/{BIOS}"),
        ],
    )))
}

const BIOS: &str = super::bios::REGISTRY_ID;

async fn get_registry_file(req: Request) -> Result<Reply, RedfishError> {
    if req.param(0) == BIOS {
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
    if req.param(0) != base::PREFIX {
        return Err(RedfishError::not_found("MessageRegistryFile", req.param(0)));
    }
    let registry = format!("{}.{}", base::PREFIX, base::VERSION);
    Ok(Reply::ok(json!({
        "@odata.id": format!("/redfish/v1/Registries/{}", base::PREFIX),
        "@odata.type": schemas::MESSAGE_REGISTRY_FILE.odata_type(),
        "Id": base::PREFIX,
        "Name": "Base Message Registry File",
        "Description": "The DMTF Base message registry",
        "Languages": ["en"],
        "Registry": registry,
        "Location": [{
            "Language": "en",
            "Uri": format!("/redfish/v1/Registries/{0}/{0}", base::PREFIX),
            "PublicationUri": format!("https://redfish.dmtf.org/registries/{registry}.json"),
        }],
    })))
}

async fn get_registry(req: Request) -> Result<Reply, RedfishError> {
    if req.param(0) == BIOS && req.param(1) == BIOS {
        return Ok(Reply::ok(super::bios::attribute_registry_document()));
    }
    if req.param(0) != base::PREFIX || req.param(1) != base::PREFIX {
        return Err(RedfishError::not_found("MessageRegistry", req.param(1)));
    }
    // A registry document is served as published: its Id is the registry's
    // versioned name, so it carries no @odata.id of its own.
    Ok(Reply::ok(base_registry_document()))
}
