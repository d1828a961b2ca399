//! `/redfish`, the service root, the OData service document and `$metadata`.

use crate::json;
use bytes::Bytes;

use super::link;
use crate::error::RedfishError;
use crate::privilege::Required;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::schemas;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish", Required::Open, get_redfish),
        route!(GET "/redfish/v1", Required::Open, get_service_root),
        route!(GET "/redfish/v1/odata", Required::Open, get_odata),
        route!(GET "/redfish/v1/$metadata", Required::Open, get_metadata),
    ]
}

pub const REDFISH_VERSION: &str = "1.22.0";

async fn get_redfish(_req: Request) -> Result<Reply, RedfishError> {
    Ok(Reply::ok(json!({ "v1": "/redfish/v1/" })))
}

async fn get_service_root(req: Request) -> Result<Reply, RedfishError> {
    let s = &req.app.service;
    Ok(Reply::ok(json!({
        "@odata.id": "/redfish/v1",
        "@odata.type": schemas::SERVICE_ROOT.odata_type(),
        "Id": "RootService",
        "Name": "Redfin Redfish Service",
        "RedfishVersion": REDFISH_VERSION,
        "UUID": s.uuid,
        "Product": "Redfin BMC",
        "Vendor": "Redfin",
        "ServiceIdentification": s.host_name,
        "ProtocolFeaturesSupported": {
            "ExpandQuery": { "ExpandAll": true, "NoLinks": true, "Links": true, "Levels": true, "MaxLevels": 1 },
            "FilterQuery": false,
            "SelectQuery": false,
            "OnlyMemberQuery": false,
            "ExcerptQuery": false,
            "TopSkipQuery": true,
            // Many requests at once, on separate connections or one after the other on one.
            "MultipleHTTPRequests": true,
        },
        "Systems": link("/redfish/v1/Systems"),
        "Chassis": link("/redfish/v1/Chassis"),
        "Storage": link("/redfish/v1/Storage"),
        "AggregationService": link("/redfish/v1/AggregationService"),
        "Managers": link("/redfish/v1/Managers"),
        "SessionService": link("/redfish/v1/SessionService"),
        "AccountService": link("/redfish/v1/AccountService"),
        "CertificateService": link("/redfish/v1/CertificateService"),
        "Registries": link("/redfish/v1/Registries"),
        "Tasks": link("/redfish/v1/TaskService"),
        "UpdateService": link("/redfish/v1/UpdateService"),
        "EventService": link("/redfish/v1/EventService"),
        "JsonSchemas": link("/redfish/v1/JsonSchemas"),
        "Links": { "Sessions": link("/redfish/v1/SessionService/Sessions") },
    })))
}

async fn get_odata(_req: Request) -> Result<Reply, RedfishError> {
    let sets = [
        ("Systems", "/redfish/v1/Systems"),
        ("Chassis", "/redfish/v1/Chassis"),
        ("Storage", "/redfish/v1/Storage"),
        ("AggregationService", "/redfish/v1/AggregationService"),
        ("Managers", "/redfish/v1/Managers"),
        ("SessionService", "/redfish/v1/SessionService"),
        ("AccountService", "/redfish/v1/AccountService"),
        ("CertificateService", "/redfish/v1/CertificateService"),
        ("Registries", "/redfish/v1/Registries"),
        ("TaskService", "/redfish/v1/TaskService"),
        ("UpdateService", "/redfish/v1/UpdateService"),
        ("EventService", "/redfish/v1/EventService"),
        ("JsonSchemas", "/redfish/v1/JsonSchemas"),
    ];
    let mut value = vec![json!({ "name": "Service", "kind": "Singleton", "url": "/redfish/v1/" })];
    value.extend(
        sets.iter()
            .map(|(name, url)| json!({ "name": name, "kind": "Singleton", "url": url })),
    );
    Ok(Reply::ok(json!({
        "@odata.context": "/redfish/v1/$metadata",
        "value": value,
    })))
}

async fn get_metadata(_req: Request) -> Result<Reply, RedfishError> {
    Ok(Reply::Raw {
        content_type: "application/xml",
        body: Bytes::from(schemas::metadata_document()),
    })
}
