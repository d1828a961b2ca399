//! The composition catalog, as OEM collections: `Oem/Redfin/Images` (base
//! volumes systems are made from) and `Oem/Redfin/Profiles` (what a system is
//! made of). Systems themselves are composed with `POST /redfish/v1/Systems`
//! and deleted with `DELETE /redfish/v1/Systems/{id}` (systems.rs).

use crate::json;
use serde_json::Value;

use super::link;
use crate::body::{Context, Fields};
use crate::error::RedfishError;
use crate::model::{BootMode, VolumeFormat};
use crate::privilege::Required;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::store::{ImageRecord, ProfileRecord, StoreError};
use crate::time::now_unix;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish/v1/Oem/Redfin/Images", Required::LOGIN, get_image_collection),
        route!(POST "/redfish/v1/Oem/Redfin/Images", Required::CONFIGURE_COMPONENTS, post_image),
        route!(GET "/redfish/v1/Oem/Redfin/Images/{image}", Required::LOGIN, get_image),
        route!(DELETE "/redfish/v1/Oem/Redfin/Images/{image}", Required::CONFIGURE_COMPONENTS, delete_image),
        route!(GET "/redfish/v1/Oem/Redfin/Profiles", Required::LOGIN, get_profile_collection),
        route!(POST "/redfish/v1/Oem/Redfin/Profiles", Required::CONFIGURE_COMPONENTS, post_profile),
        route!(GET "/redfish/v1/Oem/Redfin/Profiles/{profile}", Required::LOGIN, get_profile),
        route!(DELETE "/redfish/v1/Oem/Redfin/Profiles/{profile}", Required::CONFIGURE_COMPONENTS, delete_profile),
    ]
}

pub const IMAGES: &str = "/redfish/v1/Oem/Redfin/Images";
pub const PROFILES: &str = "/redfish/v1/Oem/Redfin/Profiles";
/// Smallest memory a profile can give: 64 MiB.
const MIN_MEMORY_MIB: i64 = 64;

fn oem_collection(odata_type: &str, uri: &str, name: &str, members: Vec<String>) -> Value {
    let members: Vec<Value> = members.iter().map(|m| link(m)).collect();
    json!({
        "@odata.id": uri,
        "@odata.type": odata_type,
        "Name": name,
        "Members@odata.count": members.len(),
        "Members": members,
    })
}

/// An image or profile id: one URI segment.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !id.starts_with('.')
}

fn check_id(id: &str) -> Result<(), RedfishError> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(RedfishError::property_value_incorrect(
            "Id",
            id,
            "An id has letters, digits, '-', '_' and '.' only (at most 64, not starting with '.').",
        ))
    }
}

fn conflict<'a>(kind: &'a str, id: &'a str) -> impl Fn(StoreError) -> RedfishError + 'a {
    move |e| match e {
        StoreError::Conflict(_) => RedfishError::already_exists(kind, "Id", id),
        other => other.into(),
    }
}

// ---- images -----------------------------------------------------------

fn image_json(i: &ImageRecord, format: Option<VolumeFormat>, capacity: Option<u64>) -> Value {
    json!({
        "@odata.id": format!("{IMAGES}/{}", i.id),
        "@odata.type": "#RedfinImage.v1_0_0.RedfinImage",
        "Id": i.id,
        "Name": i.id,
        "Description": i.description,
        "OperatingSystem": i.os,
        "Format": format.map(VolumeFormat::as_str),
        "CapacityBytes": capacity,
        "Links": { "Volume": link(&super::storage::volume_uri(&i.pool, &i.volume)) },
    })
}

async fn get_image_collection(req: Request) -> Result<Reply, RedfishError> {
    let images = req.app.store.images().await?;
    Ok(Reply::ok(oem_collection(
        "#RedfinImageCollection.RedfinImageCollection",
        IMAGES,
        "Image Collection",
        images.iter().map(|i| format!("{IMAGES}/{}", i.id)).collect(),
    )))
}

pub async fn image(req: &Request, id: &str) -> Result<ImageRecord, RedfishError> {
    req.app
        .store
        .images()
        .await?
        .into_iter()
        .find(|i| i.id == id)
        .ok_or_else(|| RedfishError::not_found("RedfinImage", id))
}

async fn get_image(req: Request) -> Result<Reply, RedfishError> {
    let i = image(&req, req.param(0)).await?;
    // The volume may be gone from its pool; the image still shows.
    let v = req
        .app
        .hypervisor
        .volume(i.pool.clone(), i.volume.clone())
        .await
        .ok();
    Ok(Reply::ok(image_json(
        &i,
        v.as_ref().and_then(|v| v.format),
        v.as_ref().map(|v| v.capacity_bytes),
    )))
}

/// POST `{"Id", "Volume": "/redfish/v1/Storage/{pool}/Volumes/{volume}",
/// "OperatingSystem"?, "Description"?}`.
async fn post_image(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    let id = body.string("Id")?;
    let id = body.required("Id", id)?;
    let volume = body.string("Volume")?;
    let volume = body.required("Volume", volume)?;
    let os = body.string("OperatingSystem")?.unwrap_or_default();
    let description = body.string("Description")?.unwrap_or_default();
    body.finish()?;
    check_id(&id)?;
    let bad_volume = || {
        RedfishError::property_value_incorrect(
            "Volume",
            &volume,
            "Give a volume's URI: /redfish/v1/Storage/{pool}/Volumes/{volume}.",
        )
    };
    let rest = volume
        .strip_prefix("/redfish/v1/Storage/")
        .ok_or_else(bad_volume)?;
    let (pool, name) = rest.split_once("/Volumes/").ok_or_else(bad_volume)?;
    // A project registers its own volumes only.
    if let Some(project) = crate::tenancy::project_of(req.principal.as_ref()) {
        let owned = req.app.store.volume_projects().await?;
        if !owned
            .iter()
            .any(|(p, v, o)| p == pool && v == name && o == project)
        {
            return Err(bad_volume());
        }
    }
    if pool.contains('/') || name.contains('/') || pool.is_empty() || name.is_empty() {
        return Err(bad_volume());
    }
    let v = req
        .app
        .hypervisor
        .volume(pool.to_owned(), name.to_owned())
        .await
        .map_err(|e| match e {
            crate::model::HypervisorError::NotFound(..) => bad_volume(),
            other => other.into(),
        })?;
    let record = ImageRecord {
        id: id.clone(),
        pool: pool.to_owned(),
        volume: name.to_owned(),
        os,
        description,
        created: now_unix(),
        project: crate::tenancy::project_of(req.principal.as_ref()).map(str::to_owned),
    };
    req.app
        .store
        .insert_image(record.clone())
        .await
        .map_err(conflict("RedfinImage", &id))?;
    tracing::info!(image = %id, volume = %volume, "image registered");
    Ok(Reply::created(
        &format!("{IMAGES}/{id}"),
        image_json(&record, v.format, Some(v.capacity_bytes)),
    ))
}

async fn delete_image(req: Request) -> Result<Reply, RedfishError> {
    let i = image(&req, req.param(0)).await?;
    crate::tenancy::may_change(req.principal.as_ref(), i.project.as_deref())?;
    req.app.store.delete_image(i.id.clone()).await?;
    tracing::info!(image = %i.id, "image removed from the catalog (its volume is kept)");
    Ok(Reply::NoContent)
}

// ---- profiles ---------------------------------------------------------

fn profile_json(p: &ProfileRecord) -> Value {
    json!({
        "@odata.id": format!("{PROFILES}/{}", p.id),
        "@odata.type": "#RedfinProfile.v1_0_0.RedfinProfile",
        "Id": p.id,
        "Name": p.id,
        "ProcessorCount": p.vcpus,
        "MemoryMiB": p.memory_mib,
        "DiskCapacityBytes": p.disk_bytes,
        "Network": p.network,
        "Firmware": p.firmware,
        "Persona": p.persona,
        "Kernel": p.kernel,
        "Initrd": p.initrd,
        "KernelCommandLine": p.cmdline,
    })
}

async fn get_profile_collection(req: Request) -> Result<Reply, RedfishError> {
    let profiles = req.app.store.profiles().await?;
    Ok(Reply::ok(oem_collection(
        "#RedfinProfileCollection.RedfinProfileCollection",
        PROFILES,
        "Profile Collection",
        profiles.iter().map(|p| format!("{PROFILES}/{}", p.id)).collect(),
    )))
}

pub async fn profile(req: &Request, id: &str) -> Result<ProfileRecord, RedfishError> {
    req.app
        .store
        .profiles()
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or_else(|| RedfishError::not_found("RedfinProfile", id))
}

async fn get_profile(req: Request) -> Result<Reply, RedfishError> {
    let p = profile(&req, req.param(0)).await?;
    Ok(Reply::ok(profile_json(&p)))
}

fn positive(body: &mut Fields, key: &str, min: i64) -> Result<Option<u64>, RedfishError> {
    match body.integer(key)? {
        None => Ok(None),
        Some(n) if n >= min => Ok(Some(n as u64)),
        Some(n) => Err(RedfishError::property_value_out_of_range(&n.to_string(), key)
            .with_resolution(format!("Give at least {min}."))),
    }
}

fn host_path(body: &mut Fields, key: &str) -> Result<Option<String>, RedfishError> {
    match body.string(key)? {
        None => Ok(None),
        Some(p) if p.starts_with('/') && !p.contains('\0') => Ok(Some(p)),
        Some(p) => Err(RedfishError::property_value_incorrect(
            key,
            &p,
            "Give an absolute path on the hypervisor's host.",
        )),
    }
}

/// POST `{"Id", "ProcessorCount", "MemoryMiB", "DiskCapacityBytes",
/// "Network"?, "Firmware"?, "Persona"?, "Kernel"?, "Initrd"?, "KernelCommandLine"?}`.
async fn post_profile(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    let id = body.string("Id")?;
    let id = body.required("Id", id)?;
    let vcpus = positive(&mut body, "ProcessorCount", 1)?;
    let vcpus = body.required("ProcessorCount", vcpus)?;
    let memory = positive(&mut body, "MemoryMiB", MIN_MEMORY_MIB)?;
    let memory = body.required("MemoryMiB", memory)?;
    let disk = positive(&mut body, "DiskCapacityBytes", 1 << 20)?;
    let disk = body.required("DiskCapacityBytes", disk)?;
    let network = body.string("Network")?;
    let firmware = body
        .enumerated("Firmware", |m| match m {
            "UEFI" => Some(BootMode::UEFI),
            "Legacy" => Some(BootMode::Legacy),
            _ => None,
        })?
        .unwrap_or(BootMode::Legacy);
    let persona = body.enumerated("Persona", |p| {
        crate::personas::PersonaKind::parse(p).map(|k| k.as_str().to_owned())
    })?;
    let kernel = host_path(&mut body, "Kernel")?;
    let initrd = host_path(&mut body, "Initrd")?;
    let cmdline = body.string("KernelCommandLine")?;
    body.finish()?;
    check_id(&id)?;
    // Files of the host are the appliance administrator's to hand out.
    if kernel.is_some() && crate::tenancy::project_of(req.principal.as_ref()).is_some() {
        return Err(RedfishError::property_not_writable("Kernel").with_resolution(
            "Direct kernel boot reads files of the host: only an account of no project makes such profiles.",
        ));
    }
    let c = &req.app.composition.config;
    if vcpus > u64::from(c.max_vcpus) {
        return Err(
            RedfishError::property_value_out_of_range(&vcpus.to_string(), "ProcessorCount")
                .with_resolution(format!("The quota max-vcpus is {}.", c.max_vcpus)),
        );
    }
    if memory > c.max_memory_mib {
        return Err(
            RedfishError::property_value_out_of_range(&memory.to_string(), "MemoryMiB")
                .with_resolution(format!("The quota max-memory-mib is {}.", c.max_memory_mib)),
        );
    }
    if kernel.is_none() && (initrd.is_some() || cmdline.is_some()) {
        return Err(RedfishError::property_missing("Kernel")
            .with_resolution("Initrd and KernelCommandLine go with a Kernel (direct kernel boot)."));
    }
    if let Some(n) = &network {
        if !n.is_empty() && !valid_id(n) {
            return Err(RedfishError::property_value_incorrect(
                "Network",
                n,
                "Give a libvirt network's name, or \"\" for no NIC.",
            ));
        }
    }
    let record = ProfileRecord {
        id: id.clone(),
        vcpus: vcpus.min(u64::from(u32::MAX)) as u32,
        memory_mib: memory,
        disk_bytes: disk,
        network,
        firmware: match firmware {
            BootMode::UEFI => "UEFI".to_owned(),
            BootMode::Legacy => "Legacy".to_owned(),
        },
        persona,
        kernel,
        initrd,
        cmdline,
        created: now_unix(),
        project: crate::tenancy::project_of(req.principal.as_ref()).map(str::to_owned),
    };
    req.app
        .store
        .insert_profile(record.clone())
        .await
        .map_err(conflict("RedfinProfile", &id))?;
    tracing::info!(profile = %id, "profile created");
    Ok(Reply::created(&format!("{PROFILES}/{id}"), profile_json(&record)))
}

async fn delete_profile(req: Request) -> Result<Reply, RedfishError> {
    let p = profile(&req, req.param(0)).await?;
    crate::tenancy::may_change(req.principal.as_ref(), p.project.as_deref())?;
    req.app.store.delete_profile(p.id.clone()).await?;
    Ok(Reply::NoContent)
}
