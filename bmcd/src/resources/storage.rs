//! Service-level `Storage`: every libvirt storage pool is a `Storage`
//! subsystem at `/redfish/v1/Storage/{pool}` whose `Volumes` are the pool's
//! volumes. Volumes are created (POST, qcow2 or raw), grown (PATCH
//! `CapacityBytes`), deleted, and attached to or detached from a system with
//! the OEM actions `Redfin.Attach` / `Redfin.Detach`; an attached volume is
//! also a `Drive` of the system.

use crate::json;
use serde_json::Value;

use super::{collection, link, status_ok};
use crate::body::{Context, Fields};
use crate::error::RedfishError;
use crate::model::{NewDisk, NewVolume, StoragePool, Volume, VolumeFormat};
use crate::privilege::Required;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::schemas;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish/v1/Storage", Required::LOGIN, get_storage_collection),
        route!(GET "/redfish/v1/Storage/{pool}", Required::LOGIN, get_storage),
        route!(GET "/redfish/v1/Storage/{pool}/Volumes", Required::LOGIN, get_volume_collection),
        route!(POST "/redfish/v1/Storage/{pool}/Volumes", Required::CONFIGURE_COMPONENTS, post_volume),
        route!(GET "/redfish/v1/Storage/{pool}/Volumes/{volume}", Required::LOGIN, get_volume),
        route!(PATCH "/redfish/v1/Storage/{pool}/Volumes/{volume}", Required::CONFIGURE_COMPONENTS, patch_volume),
        route!(DELETE "/redfish/v1/Storage/{pool}/Volumes/{volume}", Required::CONFIGURE_COMPONENTS, delete_volume),
        route!(POST "/redfish/v1/Storage/{pool}/Volumes/{volume}/Actions/Oem/Redfin.Attach", Required::CONFIGURE_COMPONENTS, post_attach),
        route!(POST "/redfish/v1/Storage/{pool}/Volumes/{volume}/Actions/Oem/Redfin.Detach", Required::CONFIGURE_COMPONENTS, post_detach),
    ]
}

const STORAGE: &str = "/redfish/v1/Storage";
pub const ATTACH_ACTION: &str = "Redfin.Attach";
pub const DETACH_ACTION: &str = "Redfin.Detach";
/// Smallest volume bmcd creates: one MiB.
const MIN_VOLUME_BYTES: i64 = 1 << 20;

pub fn volume_uri(pool: &str, volume: &str) -> String {
    format!("{STORAGE}/{pool}/Volumes/{volume}")
}

async fn pool_of(req: &Request) -> Result<StoragePool, RedfishError> {
    let id = req.param(0);
    req.app
        .hypervisor
        .storage_pools()
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or_else(|| RedfishError::not_found("Storage", id))
}

async fn get_storage_collection(req: Request) -> Result<Reply, RedfishError> {
    let pools = req.app.hypervisor.storage_pools().await?;
    Ok(Reply::ok(collection(
        &schemas::STORAGE_COLLECTION,
        STORAGE,
        "Storage Collection",
        pools.into_iter().map(|p| format!("{STORAGE}/{}", p.id)),
    )))
}

async fn get_storage(req: Request) -> Result<Reply, RedfishError> {
    let p = pool_of(&req).await?;
    let uri = format!("{STORAGE}/{}", p.id);
    Ok(Reply::ok(json!({
        "@odata.id": uri,
        "@odata.type": schemas::STORAGE.odata_type(),
        "Id": p.id,
        "Name": format!("Storage pool {}", p.id),
        "Description": "A libvirt storage pool",
        "Volumes": link(&format!("{uri}/Volumes")),
        "Status": if p.active {
            status_ok()
        } else {
            json!({ "State": "StandbyOffline", "Health": "OK" })
        },
        "Oem": { "Redfin": {
            "CapacityBytes": p.capacity_bytes,
            "AllocatedBytes": p.allocation_bytes,
            "AvailableBytes": p.available_bytes,
            "Path": p.path,
        }},
    })))
}

async fn get_volume_collection(req: Request) -> Result<Reply, RedfishError> {
    let p = pool_of(&req).await?;
    let volumes = req.app.hypervisor.volumes(p.id.clone()).await?;
    Ok(Reply::ok(collection(
        &schemas::VOLUME_COLLECTION,
        &format!("{STORAGE}/{}/Volumes", p.id),
        "Volume Collection",
        volumes.iter().map(|v| volume_uri(&p.id, &v.id)),
    )))
}

/// The systems a volume is a disk of, with the drive's target device.
async fn attachments(req: &Request, v: &Volume) -> Result<Vec<(String, String)>, RedfishError> {
    let mut found = Vec::new();
    for s in req.app.hypervisor.list_systems().await? {
        // A system removed meanwhile holds nothing.
        let Ok(sys) = req.app.hypervisor.system(s.id.clone()).await else {
            continue;
        };
        for d in sys.disks() {
            if d.source.as_deref() == Some(v.path.as_str()) {
                found.push((sys.id.clone(), d.id.clone()));
            }
        }
    }
    Ok(found)
}

fn volume_json(v: &Volume, attached: &[(String, String)]) -> Value {
    let uri = volume_uri(&v.pool, &v.id);
    let drives: Vec<Value> = attached
        .iter()
        .map(|(sys, drive)| link(&format!("/redfish/v1/Systems/{sys}/Storage/1/Drives/{drive}")))
        .collect();
    let systems: Vec<Value> = attached
        .iter()
        .map(|(sys, _)| link(&format!("/redfish/v1/Systems/{sys}")))
        .collect();
    json!({
        "@odata.id": uri,
        "@odata.type": schemas::VOLUME.odata_type(),
        "Id": v.id,
        "Name": v.id,
        "CapacityBytes": v.capacity_bytes,
        "Status": status_ok(),
        "Links": {
            "OwningStorageResource": link(&format!("{STORAGE}/{}", v.pool)),
        },
        "Actions": { "Oem": {
            format!("#{ATTACH_ACTION}"): { "target": format!("{uri}/Actions/Oem/{ATTACH_ACTION}") },
            format!("#{DETACH_ACTION}"): { "target": format!("{uri}/Actions/Oem/{DETACH_ACTION}") },
        }},
        "Oem": { "Redfin": {
            "Format": v.format.map(VolumeFormat::as_str),
            "AllocatedBytes": v.allocation_bytes,
            "Path": v.path,
            "BackingPath": v.backing_path,
            "AttachedTo": systems,
            "Drives": drives,
        }},
    })
}

async fn get_volume(req: Request) -> Result<Reply, RedfishError> {
    let v = req
        .app
        .hypervisor
        .volume(req.param(0).to_owned(), req.param(1).to_owned())
        .await?;
    let attached = attachments(&req, &v).await?;
    Ok(Reply::ok(volume_json(&v, &attached)))
}

/// A volume name: one path segment a URI can carry as it is.
fn valid_volume_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `CapacityBytes`: a positive whole number of bytes, at least one MiB.
fn capacity(body: &mut Fields) -> Result<Option<u64>, RedfishError> {
    match body.integer("CapacityBytes")? {
        None => Ok(None),
        Some(n) if n >= MIN_VOLUME_BYTES => Ok(Some(n as u64)),
        Some(n) => Err(
            RedfishError::property_value_out_of_range(&n.to_string(), "CapacityBytes")
                .with_resolution("Give at least 1048576 bytes (1 MiB)."),
        ),
    }
}

async fn post_volume(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    let name = body.string("Name")?;
    let name = body.required("Name", name)?;
    let bytes = capacity(&mut body)?;
    let bytes = body.required("CapacityBytes", bytes)?;
    let mut format = VolumeFormat::Qcow2;
    if let Some(mut oem) = body.object("Oem")? {
        if let Some(mut redfin) = oem.object("Redfin")? {
            if let Some(f) = redfin.enumerated("Format", VolumeFormat::parse)? {
                format = f;
            }
            redfin.finish()?;
        }
        oem.finish()?;
    }
    body.finish()?;
    if !valid_volume_name(&name) {
        return Err(RedfishError::property_value_incorrect(
            "Name",
            &name,
            "A volume name has letters, digits, '-', '_' and '.' only (at most 128, not starting with '.').",
        ));
    }
    let p = pool_of(&req).await?;
    let v = req
        .app
        .hypervisor
        .create_volume(
            p.id.clone(),
            NewVolume {
                name,
                capacity_bytes: bytes,
                format,
                backing: None,
            },
        )
        .await?;
    if let Some(project) = crate::tenancy::project_of(req.principal.as_ref()) {
        req.app
            .store
            .set_volume_project(p.id.clone(), v.id.clone(), Some(project.to_owned()))
            .await?;
    }
    tracing::info!(pool = %p.id, volume = %v.id, bytes, format = format.as_str(), "volume created");
    Ok(Reply::created(&volume_uri(&p.id, &v.id), volume_json(&v, &[])))
}

async fn patch_volume(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    let bytes = capacity(&mut body)?;
    body.finish()?;
    let (pool, name) = (req.param(0).to_owned(), req.param(1).to_owned());
    let v = req.app.hypervisor.volume(pool.clone(), name.clone()).await?;
    if let Some(bytes) = bytes {
        if bytes < v.capacity_bytes {
            return Err(RedfishError::property_value_incorrect(
                "CapacityBytes",
                &bytes.to_string(),
                &format!(
                    "Volumes only grow: give at least the current {} bytes.",
                    v.capacity_bytes
                ),
            ));
        }
        if bytes > v.capacity_bytes {
            req.app
                .hypervisor
                .resize_volume(pool.clone(), name.clone(), bytes)
                .await?;
            tracing::info!(%pool, volume = %name, bytes, "volume resized");
        }
    }
    get_volume(req).await
}

async fn delete_volume(req: Request) -> Result<Reply, RedfishError> {
    let (pool, name) = (req.param(0).to_owned(), req.param(1).to_owned());
    let v = req.app.hypervisor.volume(pool.clone(), name.clone()).await?;
    if let Some(image) = req
        .app
        .store
        .images()
        .await?
        .into_iter()
        .find(|i| i.pool == pool && i.volume == name)
    {
        return Err(RedfishError::cannot_delete(&format!(
            "The volume is the base of image {}; delete the image first.",
            image.id
        )));
    }
    req.app.hypervisor.delete_volume(pool.clone(), v.id).await?;
    req.app
        .store
        .set_volume_project(pool.clone(), name.clone(), None)
        .await?;
    tracing::info!(%pool, volume = %name, "volume deleted");
    Ok(Reply::NoContent)
}

/// A project member attaches and detaches its volumes to its own systems only.
async fn check_system_reach(req: &Request, system: &str, action: &'static str) -> Result<(), RedfishError> {
    if let Some(project) = crate::tenancy::project_of(req.principal.as_ref()) {
        if !crate::tenancy::owned_systems(&req.app, project)
            .await?
            .contains(system)
        {
            return Err(RedfishError::action_parameter_value_not_in_list(
                system, "System", action,
            ));
        }
    }
    Ok(())
}

/// The `System` parameter: a system's URI (or its bare id).
fn system_param(body: &mut Fields, action: &'static str) -> Result<String, RedfishError> {
    let uri = body.string("System")?;
    let uri = body.required("System", uri)?;
    let id = uri.strip_prefix("/redfish/v1/Systems/").unwrap_or(&uri);
    if id.is_empty() || id.contains('/') {
        return Err(RedfishError::action_parameter_value_not_in_list(
            &uri, "System", action,
        ));
    }
    Ok(id.to_owned())
}

async fn post_attach(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Action(ATTACH_ACTION))?;
    let system = system_param(&mut body, ATTACH_ACTION)?;
    body.finish()?;
    check_system_reach(&req, &system, ATTACH_ACTION).await?;
    let v = req
        .app
        .hypervisor
        .volume(req.param(0).to_owned(), req.param(1).to_owned())
        .await?;
    let s = req.app.hypervisor.system(system).await?;
    let format = v.format.unwrap_or(VolumeFormat::Raw);
    let target = req
        .app
        .hypervisor
        .attach_volume(
            s.id.clone(),
            NewDisk {
                path: v.path.clone(),
                format,
            },
        )
        .await?;
    tracing::info!(system_id = %s.id, volume = %v.id, %target, "volume attached");
    Ok(Reply::NoContent)
}

async fn post_detach(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Action(DETACH_ACTION))?;
    let system = system_param(&mut body, DETACH_ACTION)?;
    body.finish()?;
    check_system_reach(&req, &system, DETACH_ACTION).await?;
    let v = req
        .app
        .hypervisor
        .volume(req.param(0).to_owned(), req.param(1).to_owned())
        .await?;
    let s = req.app.hypervisor.system(system).await?;
    let drive = s
        .disks()
        .find(|d| d.source.as_deref() == Some(v.path.as_str()))
        .ok_or_else(|| {
            RedfishError::action_parameter_value_not_in_list(&s.id, "System", DETACH_ACTION)
                .with_resolution("The volume is not attached to this system.")
        })?;
    req.app
        .hypervisor
        .unplug_disk(s.id.clone(), drive.id.clone())
        .await?;
    tracing::info!(system_id = %s.id, volume = %v.id, drive = %drive.id, "volume detached");
    Ok(Reply::NoContent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_names_are_single_safe_segments() {
        assert!(valid_volume_name("data-1.qcow2"));
        assert!(!valid_volume_name("../etc"));
        assert!(!valid_volume_name("a/b"));
        assert!(!valid_volume_name(".hidden"));
        assert!(!valid_volume_name(""));
    }
}
