//! `UpdateService`: firmware update of the BMC itself (multipart push and
//! `SimpleUpdate` over HTTPS) and `FirmwareInventory` with its two banks.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{collection, link};
use crate::body::{Context, Fields};
use crate::error::{Message, RedfishError};
use crate::firmware::boot::Bank;
use crate::firmware::package::{self, Span};
use crate::firmware::{self as fw, BankState, Source};
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

async fn get_update_service(req: Request) -> Result<Reply, RedfishError> {
    let firmware = &req.app.firmware;
    let enabled = firmware.enabled();
    let mut v = json!({
        "@odata.id": SERVICE,
        "@odata.type": schemas::UPDATE_SERVICE.odata_type(),
        "Id": "UpdateService",
        "Name": "Update Service",
        "Description": "Firmware update of this BMC: signed packages written to the inactive bank, tried once at the next start.",
        "ServiceEnabled": enabled,
        "Status": { "State": if enabled { "Enabled" } else { "Disabled" }, "Health": "OK" },
        "FirmwareInventory": link(INVENTORY),
        "Actions": {
            "#UpdateService.SimpleUpdate": {
                "target": SIMPLE_UPDATE,
                "@Redfish.ActionInfo": SIMPLE_UPDATE_INFO,
            }
        },
        // The package's signature is what is trusted, not the server it came from.
        "VerifyRemoteServerCertificate": false,
    });
    if enabled {
        v["MultipartHttpPushUri"] = json!(MULTIPART);
        v["MaxImageSizeBytes"] = json!(firmware.max_package_bytes());
    }
    Ok(Reply::ok(v))
}

async fn banks(req: &Request) -> Vec<fw::BankView> {
    let firmware = Arc::clone(&req.app.firmware);
    tokio::task::spawn_blocking(move || firmware.banks())
        .await
        .unwrap_or_default()
}

async fn get_inventory(req: Request) -> Result<Reply, RedfishError> {
    let members = banks(&req).await.into_iter().map(|b| fw::inventory_uri(b.bank));
    Ok(Reply::ok(collection(
        &schemas::SOFTWARE_INVENTORY_COLLECTION,
        INVENTORY,
        "Firmware Inventory",
        members,
    )))
}

async fn get_inventory_item(req: Request) -> Result<Reply, RedfishError> {
    let id = req.param(0).to_owned();
    let b = banks(&req)
        .await
        .into_iter()
        .find(|b| b.bank.inventory_id() == id)
        .ok_or_else(|| RedfishError::not_found("SoftwareInventory", &id))?;
    let (state, health) = match (b.active, b.state) {
        (true, _) => ("Enabled", "OK"),
        (false, BankState::Failed) => ("Disabled", "Critical"),
        (false, BankState::Updating) => ("Updating", "OK"),
        (false, _) => ("StandbySpare", "OK"),
    };
    let letter = b.bank.letter().to_uppercase();
    let note = match (b.active, b.state) {
        (true, BankState::Staged) => " It runs on trial until bmcd reports healthy.",
        (false, BankState::Staged) => " It is booted once at the next start.",
        (false, BankState::Failed) => {
            " It was tried and did not come up healthy; the BMC went back to the other bank."
        }
        _ => "",
    };
    Ok(Reply::ok(json!({
        "@odata.id": fw::inventory_uri(b.bank),
        "@odata.type": schemas::SOFTWARE_INVENTORY.odata_type(),
        "Id": id,
        "Name": format!("BMC firmware, bank {letter}"),
        "Description": format!(
            "Redfin firmware image in bank {letter}{}.{note}",
            if b.active { " (running)" } else { "" }
        ),
        "SoftwareId": "redfin-bmc",
        "Manufacturer": "Redfin",
        "Version": b.version,
        "Updateable": !b.active,
        "WriteProtected": b.active,
        "Active": b.active,
        "Staged": !b.active && b.state == BankState::Staged,
        "ResetRequiredOnUpdate": true,
        "Status": { "State": state, "Health": health },
        "RelatedItem": [link(MANAGER)],
        "RelatedItem@odata.count": 1,
    })))
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
