//! `UpdateService`: firmware update of the BMC itself (multipart push and
//! `SimpleUpdate` over HTTPS) and `FirmwareInventory` with its two banks. On a
//! per-VM endpoint: the inventory its persona's BMC lists (its own firmware
//! and the system's BIOS), which that BMC cannot update, so no update action.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{collection, link};
use crate::body::{Context, Fields};
use crate::error::{Message, RedfishError};
use crate::firmware::boot::Bank;
use crate::firmware::inventory::{FirmwareInventory, RunsOn, SoftwareItem};
use crate::firmware::package::{self, Span};
use crate::firmware::{self as fw, Source};
use crate::outbound::FetchRequest;
use crate::privilege::Required;
use crate::registries::base;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::schemas;

const SERVICE: &str = "/redfish/v1/UpdateService";
const INVENTORY: &str = "/redfish/v1/UpdateService/FirmwareInventory";
pub const MULTIPART: &str = "/redfish/v1/UpdateService/update-multipart";
const SIMPLE_UPDATE: &str = "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate";
const SIMPLE_UPDATE_INFO: &str = "/redfish/v1/UpdateService/SimpleUpdateActionInfo";
const ACTION: &str = "UpdateService.SimpleUpdate";
const MANAGER: &str = "/redfish/v1/Managers/BMC";

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish/v1/UpdateService", Required::LOGIN, get_update_service),
        route!(GET "/redfish/v1/UpdateService/FirmwareInventory", Required::LOGIN, get_inventory),
        route!(GET "/redfish/v1/UpdateService/FirmwareInventory/{id}", Required::LOGIN, get_inventory_item),
        route!(GET "/redfish/v1/UpdateService/SimpleUpdateActionInfo", Required::LOGIN, get_simple_update_info),
        route!(POST "/redfish/v1/UpdateService/update-multipart", Required::CONFIGURE_MANAGER, post_multipart).upload(),
        route!(POST "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate", Required::CONFIGURE_MANAGER, post_simple_update),
    ]
}

/// The firmware the BMC a request reaches lists: the appliance's, or the
/// endpoint's persona's.
fn inventory(req: &Request) -> Arc<dyn FirmwareInventory> {
    match &req.endpoint {
        Some(ep) => crate::personas::firmware_inventory(ep.persona),
        None => Arc::clone(&req.app.firmware) as Arc<dyn FirmwareInventory>,
    }
}

async fn get_update_service(req: Request) -> Result<Reply, RedfishError> {
    let inventory = inventory(&req);
    let enabled = inventory.updates();
    let mut v = json!({
        "@odata.id": SERVICE,
        "@odata.type": schemas::UPDATE_SERVICE.odata_type(),
        "Id": "UpdateService",
        "Name": "Update Service",
        "ServiceEnabled": enabled,
        "Status": { "State": if enabled { "Enabled" } else { "Disabled" }, "Health": "OK" },
        "FirmwareInventory": link(INVENTORY),
    });
    if req.endpoint.is_some() {
        // A per-VM BMC lists its firmware but cannot apply an update: no action.
        v["Description"] =
            json!("The firmware of this BMC and of its system. It is not updated through this BMC.");
        return Ok(Reply::ok(v));
    }
    v["Description"] = json!(
        "Firmware update of this BMC: signed packages written to the inactive bank, tried once at the next start."
    );
    v["Actions"] = json!({
        "#UpdateService.SimpleUpdate": {
            "target": SIMPLE_UPDATE,
            "@Redfish.ActionInfo": SIMPLE_UPDATE_INFO,
        }
    });
    // The package's signature is what is trusted, not the server it came from.
    v["VerifyRemoteServerCertificate"] = json!(false);
    if req.app.firmware.enabled() {
        v["MultipartHttpPushUri"] = json!(MULTIPART);
        v["MaxImageSizeBytes"] = json!(req.app.firmware.max_package_bytes());
    }
    Ok(Reply::ok(v))
}

/// The inventory's members (blocking reads off the async runtime).
async fn software(req: &Request) -> Vec<SoftwareItem> {
    let inventory = inventory(req);
    tokio::task::spawn_blocking(move || inventory.software())
        .await
        .unwrap_or_default()
}

async fn get_inventory(req: Request) -> Result<Reply, RedfishError> {
    let members = software(&req)
        .await
        .into_iter()
        .map(|item| format!("{INVENTORY}/{}", item.id));
    Ok(Reply::ok(collection(
        &schemas::SOFTWARE_INVENTORY_COLLECTION,
        INVENTORY,
        "Firmware Inventory",
        members,
    )))
}

async fn get_inventory_item(req: Request) -> Result<Reply, RedfishError> {
    let id = req.param(0).to_owned();
    let item = software(&req)
        .await
        .into_iter()
        .find(|item| item.id == id)
        .ok_or_else(|| RedfishError::not_found("SoftwareInventory", &id))?;
    let related = match (&req.endpoint, item.runs_on) {
        (None, _) => MANAGER.to_owned(),
        (Some(ep), RunsOn::Manager) => format!("/redfish/v1/Managers/{}", ep.system_id),
        (Some(ep), RunsOn::System) => format!("/redfish/v1/Systems/{}", ep.system_id),
    };
    Ok(Reply::ok(software_json(&item, &related)))
}

/// A `SoftwareInventory` resource.
fn software_json(item: &SoftwareItem, related: &str) -> Value {
    let mut v = json!({
        "@odata.id": format!("{INVENTORY}/{}", item.id),
        "@odata.type": schemas::SOFTWARE_INVENTORY.odata_type(),
        "Id": item.id,
        "Name": item.name,
        "Description": item.description,
        "SoftwareId": item.software_id,
        "Manufacturer": item.manufacturer,
        "Version": item.version,
        "Updateable": item.updateable,
        "WriteProtected": item.write_protected,
        "Status": { "State": item.state, "Health": item.health },
        "RelatedItem": [link(related)],
        "RelatedItem@odata.count": 1,
    });
    if let Some(scheme) = item.version_scheme {
        v["VersionScheme"] = json!(scheme.as_str());
    }
    if let Some(release) = item.release_type {
        v["ReleaseType"] = json!(release);
    }
    if let Some(date) = &item.release_date {
        v["ReleaseDate"] = json!(date);
    }
    if let Some(active) = item.active {
        v["Active"] = json!(active);
    }
    if let Some(staged) = item.staged {
        v["Staged"] = json!(staged);
    }
    if let Some(reset) = item.reset_required_on_update {
        v["ResetRequiredOnUpdate"] = json!(reset);
    }
    v
}

async fn get_simple_update_info(_req: Request) -> Result<Reply, RedfishError> {
    Ok(Reply::ok(json!({
        "@odata.id": SIMPLE_UPDATE_INFO,
        "@odata.type": schemas::ACTION_INFO.odata_type(),
        "Id": "SimpleUpdateActionInfo",
        "Name": "SimpleUpdate Action Info",
        "Parameters": [
            { "Name": "ImageURI", "Required": true, "DataType": "String" },
            { "Name": "TransferProtocol", "Required": false, "DataType": "String", "AllowableValues": ["HTTPS"] },
            { "Name": "Targets", "Required": false, "DataType": "StringArray" },
            { "Name": "Username", "Required": false, "DataType": "String" },
            { "Name": "Password", "Required": false, "DataType": "String" },
        ],
    })))
}

/// `Targets`: the inactive bank's inventory URI or the BMC's manager.
fn parse_targets(
    value: Option<Value>,
    name: &str,
    action: Option<&'static str>,
) -> Result<Option<Bank>, RedfishError> {
    let type_error = |v: &Value| match action {
        Some(a) => RedfishError::action_parameter_value_type(&v.to_string(), name, a),
        None => RedfishError::property_value_type(&v.to_string(), name),
    };
    let not_in_list = |v: &str| match action {
        Some(a) => RedfishError::action_parameter_value_not_in_list(v, name, a),
        None => RedfishError::property_value_not_in_list(v, name),
    };
    let Some(value) = value else { return Ok(None) };
    let Value::Array(items) = &value else {
        return Err(type_error(&value));
    };
    let mut bank = None;
    for item in items {
        let Value::String(uri) = item else {
            return Err(type_error(item));
        };
        let uri = uri.trim_end_matches('/');
        let named = Bank::BOTH.into_iter().find(|b| fw::inventory_uri(*b) == uri);
        match named {
            Some(b) => bank = Some(b),
            None if uri == MANAGER => {}
            None => return Err(not_in_list(uri)),
        }
    }
    Ok(bank)
}

fn unrecognized_upload(e: &package::PackageError) -> RedfishError {
    RedfishError::bad_request(
        Message::new(&base::UNRECOGNIZED_REQUEST_BODY, &[]).resolution(format!(
        "{e} Send multipart/form-data with the parts UpdateParameters (JSON) and UpdateFile (the package)."
    )),
    )
}

/// Reads a multipart update body (`file[0..len]`): the `Targets` of its `UpdateParameters` part
/// and where its `UpdateFile` part (the package) is. Blocking I/O.
pub fn read_multipart(
    file: &std::fs::File,
    len: u64,
    boundary: &str,
) -> Result<(Option<Bank>, Span), RedfishError> {
    let parts = package::parse_multipart(file, len, boundary).map_err(|e| unrecognized_upload(&e))?;
    if let Some(unknown) = parts
        .iter()
        .find(|p| p.name != "UpdateParameters" && p.name != "UpdateFile")
    {
        return Err(RedfishError::property_unknown(&unknown.name));
    }
    for name in ["UpdateParameters", "UpdateFile"] {
        if parts.iter().filter(|p| p.name == name).count() > 1 {
            return Err(RedfishError::bad_request(Message::new(
                &base::PROPERTY_DUPLICATE,
                &[name],
            )));
        }
    }
    let params = parts
        .iter()
        .find(|p| p.name == "UpdateParameters")
        .map(|p| package::read_span(file, p.body, package::MAX_PARAMETERS))
        .transpose()
        .map_err(|e| unrecognized_upload(&e))?
        .ok_or_else(|| RedfishError::property_missing("UpdateParameters"))?;
    let span: Span = parts
        .iter()
        .find(|p| p.name == "UpdateFile")
        .map(|p| p.body)
        .ok_or_else(|| RedfishError::property_missing("UpdateFile"))?;
    let mut body = Fields::parse(&params, Context::Resource)?;
    let targets = parse_targets(body.take("Targets"), "Targets", None)?;
    let apply = body.string("@Redfish.OperationApplyTime")?;
    if let Some(a) = apply.filter(|a| a != "OnReset") {
        return Err(RedfishError::property_value_not_in_list(
            &a,
            "@Redfish.OperationApplyTime",
        ));
    }
    body.finish()?;
    if span.len == 0 {
        return Err(RedfishError::property_missing("UpdateFile"));
    }
    Ok((targets, span))
}

async fn post_multipart(mut req: Request) -> Result<Reply, RedfishError> {
    let firmware = Arc::clone(&req.app.firmware);
    if !firmware.enabled() {
        return Err(fw::not_configured());
    }
    let content_type = req
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let Some(boundary) = package::multipart_boundary(&content_type) else {
        return Err(RedfishError::unsupported_media_type(&content_type).expecting("multipart/form-data"));
    };
    let upload = req
        .upload
        .take()
        .ok_or_else(|| RedfishError::property_missing("UpdateFile"))?;
    let (upload, read) = tokio::task::spawn_blocking(move || {
        let read = std::fs::File::open(&upload.0)
            .and_then(|f| Ok((f.metadata()?.len(), f)))
            .map_err(|e| unrecognized_upload(&package::PackageError::Io(e.to_string())))
            .and_then(|(len, f)| read_multipart(&f, len, &boundary));
        (upload, read)
    })
    .await
    .map_err(|_| RedfishError::internal())?;
    let (targets, file) = read?;
    let task = firmware
        .update(
            Source::Upload {
                file: upload,
                span: file,
            },
            targets,
        )
        .await?;
    let monitor = super::task_service::monitor_uri(&task);
    Ok(Reply::accepted(&monitor, super::task_service::task_json(&task)))
}

async fn post_simple_update(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Action(ACTION))?;
    let uri = body.string("ImageURI")?;
    let protocol = body.enumerated("TransferProtocol", |p| (p == "HTTPS").then(|| p.to_owned()))?;
    let targets = parse_targets(body.take("Targets"), "Targets", Some(ACTION))?;
    let user_name = body.string("Username")?;
    let password = body.string("Password")?;
    let uri = body.required("ImageURI", uri)?;
    body.finish()?;
    let firmware = Arc::clone(&req.app.firmware);
    if !firmware.enabled() {
        return Err(fw::not_configured());
    }
    let _ = protocol;
    if !uri.to_ascii_lowercase().starts_with("https://") {
        return Err(
            RedfishError::action_parameter_value_not_in_list(&uri, "ImageURI", ACTION)
                .with_resolution("Only https:// image URIs are supported."),
        );
    }
    if let Err(e) = crate::outbound::check_url(&uri) {
        return Err(RedfishError::bad_request(
            Message::new(&base::ACTION_PARAMETER_VALUE_ERROR, &["ImageURI", ACTION])
                .resolution(e.to_string()),
        ));
    }
    let fetch = FetchRequest {
        url: uri,
        user_name,
        password,
        verify_certificate: false,
        ca_certificates: Vec::new(),
        max_bytes: firmware.max_package_bytes(),
        timeout: Duration::from_secs(3600),
    };
    let task = firmware.update(Source::Download(fetch), targets).await?;
    let monitor = super::task_service::monitor_uri(&task);
    Ok(Reply::accepted(&monitor, super::task_service::task_json(&task)))
}
