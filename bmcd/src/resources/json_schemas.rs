//! `/redfish/v1/JsonSchemas`: where the schema of each resource is published.

use crate::json;

use super::collection;
use crate::error::RedfishError;
use crate::privilege::Required;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::schemas;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish/v1/JsonSchemas", Required::LOGIN, get_json_schema_file_collection),
        route!(GET "/redfish/v1/JsonSchemas/{id}", Required::LOGIN, get_json_schema_file),
    ]
}

async fn get_json_schema_file_collection(_req: Request) -> Result<Reply, RedfishError> {
    Ok(Reply::ok(collection(
        &schemas::JSON_SCHEMA_FILE_COLLECTION,
        "/redfish/v1/JsonSchemas",
        "JSON Schema File Collection",
        schemas::ALL
            .iter()
            .map(|s| format!("/redfish/v1/JsonSchemas/{}", s.family)),
    )))
}

async fn get_json_schema_file(req: Request) -> Result<Reply, RedfishError> {
    let family = req.param(0);
    let schema =
        schemas::by_family(family).ok_or_else(|| RedfishError::not_found("JsonSchemaFile", family))?;
    Ok(Reply::ok(json!({
        "@odata.id": format!("/redfish/v1/JsonSchemas/{}", schema.family),
        "@odata.type": schemas::JSON_SCHEMA_FILE.odata_type(),
        "Id": schema.family,
        "Name": format!("{} Schema File", schema.family),
        "Description": format!("{} schema published by DMTF", schema.family),
        "Schema": schema.odata_type(),
        "Languages": ["en"],
        "Location": [{ "Language": "en", "PublicationUri": schema.json_uri() }],
    })))
}
