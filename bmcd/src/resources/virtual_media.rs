//! `VirtualMedia` of a system, under its manager (where Ironic and vendor tools
//! look) and under the system itself (where newer clients look).

use serde_json::{json, Value};

use super::{collection, status_ok};
use crate::body::{Context, Fields};
use crate::error::RedfishError;
use crate::media::{Insert, Slot, SlotState};
use crate::model::ComputerSystem;
use crate::privilege::Required;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::schemas;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish/v1/Managers/{id}/VirtualMedia", Required::LOGIN, get_virtual_media_collection),
        route!(GET "/redfish/v1/Managers/{id}/VirtualMedia/{slot}", Required::LOGIN, get_virtual_media),
        route!(POST "/redfish/v1/Managers/{id}/VirtualMedia/{slot}/Actions/VirtualMedia.InsertMedia", Required::CONFIGURE_MANAGER, post_virtual_media_insert),
        route!(POST "/redfish/v1/Managers/{id}/VirtualMedia/{slot}/Actions/VirtualMedia.EjectMedia", Required::CONFIGURE_MANAGER, post_virtual_media_eject),
        route!(GET "/redfish/v1/Systems/{id}/VirtualMedia", Required::LOGIN, get_virtual_media_collection),
        route!(GET "/redfish/v1/Systems/{id}/VirtualMedia/{slot}", Required::LOGIN, get_virtual_media),
        route!(POST "/redfish/v1/Systems/{id}/VirtualMedia/{slot}/Actions/VirtualMedia.InsertMedia", Required::CONFIGURE_MANAGER, post_virtual_media_insert),
        route!(POST "/redfish/v1/Systems/{id}/VirtualMedia/{slot}/Actions/VirtualMedia.EjectMedia", Required::CONFIGURE_MANAGER, post_virtual_media_eject),
    ]
}

const INSERT: &str = "VirtualMedia.InsertMedia";
const EJECT: &str = "VirtualMedia.EjectMedia";

/// `/redfish/v1/Managers/{id}` or `/redfish/v1/Systems/{id}`: the part before
/// `/VirtualMedia`.
fn base_uri(req: &Request) -> String {
    let parent = if req.path.starts_with("/redfish/v1/Managers/") {
        "Managers"
    } else {
        "Systems"
    };
    format!("/redfish/v1/{parent}/{}", req.param(0))
}

async fn system_of(req: &Request) -> Result<ComputerSystem, RedfishError> {
    match req.app.hypervisor.system(req.param(0).to_owned()).await {
        Ok(s) => Ok(s),
        Err(crate::model::HypervisorError::SystemNotFound(_)) => {
            let kind = if req.path.starts_with("/redfish/v1/Managers/") {
                "Manager"
            } else {
                "ComputerSystem"
            };
            Err(RedfishError::not_found(kind, req.param(0)))
        }
        Err(e) => Err(e.into()),
    }
}

async fn slot_of(req: &Request) -> Result<(ComputerSystem, Slot), RedfishError> {
    let sys = system_of(req).await?;
    let slot = crate::media::slots(&sys)
        .into_iter()
        .find(|s| s.id == req.param(1))
        .ok_or_else(|| RedfishError::not_found("VirtualMedia", req.param(1)))?;
    Ok((sys, slot))
}

fn media_json(base: &str, st: &SlotState) -> Value {
    let uri = format!("{base}/VirtualMedia/{}", st.slot.id);
    let image_name = st
        .image
        .as_deref()
        .and_then(|i| i.rsplit('/').next())
        .filter(|n| !n.is_empty());
    let protocol = st.image.as_deref().and_then(|i| {
        if i.starts_with("https://") {
            Some("HTTPS")
        } else if i.starts_with("http://") {
            Some("HTTP")
        } else {
            None
        }
    });
    json!({
        "@odata.id": uri,
        "@odata.type": schemas::VIRTUAL_MEDIA.odata_type(),
        "Id": st.slot.id,
        "Name": format!("Virtual CD ({})", st.slot.drive),
        "Description": "Virtual CD/DVD drive of the system",
        "MediaTypes": ["CD", "DVD"],
        "Image": st.image,
        "ImageName": image_name,
        "Inserted": st.inserted,
        "WriteProtected": st.write_protected,
        "ConnectedVia": if st.inserted { "URI" } else { "NotConnected" },
        "TransferMethod": "Upload",
        "TransferProtocolType": protocol,
        "Status": if st.busy { json!({"State": "Updating", "Health": "OK"}) } else { status_ok() },
        "Actions": {
            format!("#{INSERT}"): { "target": format!("{uri}/Actions/{INSERT}") },
            format!("#{EJECT}"): { "target": format!("{uri}/Actions/{EJECT}") },
        },
    })
}

async fn get_virtual_media_collection(req: Request) -> Result<Reply, RedfishError> {
    let sys = system_of(&req).await?;
    let uri = format!("{}/VirtualMedia", base_uri(&req));
    Ok(Reply::ok(collection(
        &schemas::VIRTUAL_MEDIA_COLLECTION,
        &uri,
        "Virtual Media Collection",
        crate::media::slots(&sys)
            .into_iter()
            .map(|s| format!("{uri}/{}", s.id)),
    )))
}

async fn get_virtual_media(req: Request) -> Result<Reply, RedfishError> {
    let (sys, slot) = slot_of(&req).await?;
    let states = req.app.media.states(&sys).await?;
    let st = states
        .into_iter()
        .find(|s| s.slot == slot)
        .ok_or_else(|| RedfishError::not_found("VirtualMedia", &slot.id))?;
    Ok(Reply::ok(media_json(&base_uri(&req), &st)))
}

async fn post_virtual_media_insert(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Action(INSERT))?;
    let image = body.string("Image")?;
    let inserted = body.bool("Inserted")?;
    let write_protected = body.bool("WriteProtected")?;
    let method = body.enumerated("TransferMethod", |m| match m {
        "Stream" | "Upload" => Some(m.to_owned()),
        _ => None,
    })?;
    let protocol = body.enumerated("TransferProtocolType", |p| match p {
        "HTTP" | "HTTPS" => Some(p.to_owned()),
        _ => None,
    })?;
    let user_name = body.string("UserName")?;
    let password = body.string("Password")?;
    let image = body.required("Image", image)?;
    body.finish()?;
    let _ = method;
    if inserted == Some(false) {
        return Err(RedfishError::action_parameter_value_not_in_list(
            "false", "Inserted", INSERT,
        ));
    }
    if write_protected == Some(false) {
        return Err(RedfishError::action_parameter_value_not_in_list(
            "false",
            "WriteProtected",
            INSERT,
        ));
    }
    if let Some(p) = protocol {
        let scheme = if image.to_ascii_lowercase().starts_with("https://") {
            "HTTPS"
        } else {
            "HTTP"
        };
        if p != scheme {
            return Err(RedfishError::action_parameter_value_not_in_list(
                &p,
                "TransferProtocolType",
                INSERT,
            ));
        }
    }
    let (sys, slot) = slot_of(&req).await?;
    let target = format!("{}/VirtualMedia/{}", base_uri(&req), slot.id);
    let task = req
        .app
        .media
        .insert(
            &sys,
            &slot,
            &target,
            Insert {
                image,
                user_name,
                password,
                write_protected: true,
                verify_certificate: false,
            },
        )
        .await?;
    let monitor = super::task_service::monitor_uri(&task);
    Ok(Reply::accepted(&monitor, super::task_service::task_json(&task)))
}

async fn post_virtual_media_eject(req: Request) -> Result<Reply, RedfishError> {
    let body = Fields::parse(&req.body, Context::Action(EJECT))?;
    body.finish()?;
    let (sys, slot) = slot_of(&req).await?;
    req.app.media.eject(&sys, &slot).await?;
    Ok(Reply::NoContent)
}
