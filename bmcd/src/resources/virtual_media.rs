//! `VirtualMedia` of a system, under its manager (where Ironic and vendor tools
//! look) and under the system itself (where newer clients look).

use crate::json;
use serde_json::Value;

use super::{collection, status_ok};
use crate::body::{Context, Fields};
use crate::error::RedfishError;
use crate::media::{Insert, Slot, SlotKind, SlotState};
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
        route!(PATCH "/redfish/v1/Managers/{id}/VirtualMedia/{slot}", Required::CONFIGURE_MANAGER, patch_virtual_media),
        route!(GET "/redfish/v1/Managers/{id}/VirtualMedia/{slot}/Certificates", Required::LOGIN, get_certificate_collection),
        route!(POST "/redfish/v1/Managers/{id}/VirtualMedia/{slot}/Certificates", Required::CONFIGURE_MANAGER, post_certificate),
        route!(GET "/redfish/v1/Managers/{id}/VirtualMedia/{slot}/Certificates/{cert}", Required::LOGIN, get_certificate),
        route!(DELETE "/redfish/v1/Managers/{id}/VirtualMedia/{slot}/Certificates/{cert}", Required::CONFIGURE_MANAGER, delete_certificate),
        route!(GET "/redfish/v1/Systems/{id}/VirtualMedia", Required::LOGIN, get_virtual_media_collection),
        route!(GET "/redfish/v1/Systems/{id}/VirtualMedia/{slot}", Required::LOGIN, get_virtual_media),
        route!(POST "/redfish/v1/Systems/{id}/VirtualMedia/{slot}/Actions/VirtualMedia.InsertMedia", Required::CONFIGURE_MANAGER, post_virtual_media_insert),
        route!(POST "/redfish/v1/Systems/{id}/VirtualMedia/{slot}/Actions/VirtualMedia.EjectMedia", Required::CONFIGURE_MANAGER, post_virtual_media_eject),
        route!(PATCH "/redfish/v1/Systems/{id}/VirtualMedia/{slot}", Required::CONFIGURE_MANAGER, patch_virtual_media),
        route!(GET "/redfish/v1/Systems/{id}/VirtualMedia/{slot}/Certificates", Required::LOGIN, get_certificate_collection),
        route!(POST "/redfish/v1/Systems/{id}/VirtualMedia/{slot}/Certificates", Required::CONFIGURE_MANAGER, post_certificate),
        route!(GET "/redfish/v1/Systems/{id}/VirtualMedia/{slot}/Certificates/{cert}", Required::LOGIN, get_certificate),
        route!(DELETE "/redfish/v1/Systems/{id}/VirtualMedia/{slot}/Certificates/{cert}", Required::CONFIGURE_MANAGER, delete_certificate),
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
    let (name, description, media_types) = match (st.slot.kind, &st.slot.drive) {
        (SlotKind::Cd, Some(drive)) => (
            format!("Virtual CD ({drive})"),
            "Virtual CD/DVD drive of the system",
            json!(["CD", "DVD"]),
        ),
        (SlotKind::Cd, None) => (
            "Virtual CD".to_owned(),
            "Virtual CD/DVD drive of the BMC: the system gets the drive with its first medium",
            json!(["CD", "DVD"]),
        ),
        (SlotKind::Usb, _) => (
            "Virtual USB stick".to_owned(),
            "A read-only USB stick plugged into the system",
            json!(["USBStick"]),
        ),
    };
    json!({
        "@odata.id": uri,
        "@odata.type": schemas::VIRTUAL_MEDIA.odata_type(),
        "Id": st.slot.id,
        "Name": name,
        "Description": description,
        "MediaTypes": media_types,
        "Image": st.image,
        "ImageName": image_name,
        "Inserted": st.inserted,
        "WriteProtected": st.write_protected,
        "ConnectedVia": if st.inserted { "URI" } else { "NotConnected" },
        "TransferMethod": "Upload",
        "TransferProtocolType": protocol,
        "VerifyCertificate": st.verify_certificate,
        "Certificates": super::link(&format!("{uri}/Certificates")),
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

async fn patch_virtual_media(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    let verify = body.bool("VerifyCertificate")?;
    for read_only in [
        "Image",
        "Inserted",
        "WriteProtected",
        "MediaTypes",
        "ConnectedVia",
    ] {
        body.read_only(read_only)?;
    }
    body.finish()?;
    let (sys, slot) = slot_of(&req).await?;
    if let Some(v) = verify {
        req.app
            .store
            .set_media_verify_certificate(sys.id.clone(), slot.id.clone(), v)
            .await?;
    }
    get_virtual_media(req).await
}

fn certificates_uri(req: &Request) -> String {
    format!("{}/VirtualMedia/{}/Certificates", base_uri(req), req.param(1))
}

async fn get_certificate_collection(req: Request) -> Result<Reply, RedfishError> {
    let (sys, slot) = slot_of(&req).await?;
    let uri = certificates_uri(&req);
    let certs = req.app.store.media_certificates(sys.id, slot.id).await?;
    Ok(Reply::ok(collection(
        &schemas::CERTIFICATE_COLLECTION,
        &uri,
        "Trusted certificates for HTTPS images",
        certs.into_iter().map(|(id, _)| format!("{uri}/{id}")),
    )))
}

fn certificate_json(uri: &str, id: i64, pem: &str) -> Value {
    json!({
        "@odata.id": format!("{uri}/{id}"),
        "@odata.type": schemas::CERTIFICATE.odata_type(),
        "Id": id.to_string(),
        "Name": format!("Trusted certificate {id}"),
        "CertificateString": pem,
        "CertificateType": "PEM",
    })
}

async fn post_certificate(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    let pem = body.string("CertificateString")?;
    let kind = body.enumerated("CertificateType", |t| {
        (t == "PEM" || t == "PEMchain").then_some(())
    })?;
    let pem = body.required("CertificateString", pem)?;
    let _ = kind;
    body.finish()?;
    use rustls_pki_types::pem::PemObject;
    let parsed: Result<Vec<_>, _> =
        rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    if !matches!(&parsed, Ok(certs) if !certs.is_empty()) {
        return Err(RedfishError::bad_request(
            crate::error::Message::new(
                &crate::registries::base::PROPERTY_VALUE_FORMAT_ERROR,
                &["(certificate)", "CertificateString"],
            )
            .resolution("Give one or more X.509 certificates in PEM form."),
        ));
    }
    let (sys, slot) = slot_of(&req).await?;
    let id = req
        .app
        .store
        .add_media_certificate(sys.id, slot.id, pem.clone())
        .await?;
    let uri = certificates_uri(&req);
    Ok(Reply::created(
        &format!("{uri}/{id}"),
        certificate_json(&uri, id, &pem),
    ))
}

async fn find_certificate(req: &Request) -> Result<(ComputerSystem, Slot, i64, String), RedfishError> {
    let (sys, slot) = slot_of(req).await?;
    let wanted = req.param(2);
    let certs = req
        .app
        .store
        .media_certificates(sys.id.clone(), slot.id.clone())
        .await?;
    let (id, pem) = certs
        .into_iter()
        .find(|(id, _)| id.to_string() == wanted)
        .ok_or_else(|| RedfishError::not_found("Certificate", wanted))?;
    Ok((sys, slot, id, pem))
}

async fn get_certificate(req: Request) -> Result<Reply, RedfishError> {
    let (_, _, id, pem) = find_certificate(&req).await?;
    Ok(Reply::ok(certificate_json(&certificates_uri(&req), id, &pem)))
}

async fn delete_certificate(req: Request) -> Result<Reply, RedfishError> {
    let (sys, slot, id, _) = find_certificate(&req).await?;
    req.app
        .store
        .delete_media_certificate(sys.id, slot.id, id)
        .await?;
    Ok(Reply::NoContent)
}
