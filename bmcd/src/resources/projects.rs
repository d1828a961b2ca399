//! `Oem/Redfin/Projects`: the projects (tenants) of the appliance, each with
//! its quotas, what its systems use of them, its accounts and its systems.
//! Accounts join a project through `Oem.Redfin.Project` on the account
//! (AccountService); what a project's member reaches is [`crate::tenancy`]'s.

use crate::json;
use hyper::StatusCode;
use serde_json::Value;

use super::link;
use crate::body::{Context, Fields};
use crate::error::{Message, RedfishError};
use crate::privilege::Required;
use crate::registries::base;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::store::ProjectRecord;
use crate::time::now_unix;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish/v1/Oem/Redfin/Projects", Required::LOGIN, get_project_collection),
        route!(POST "/redfish/v1/Oem/Redfin/Projects", Required::CONFIGURE_USERS, post_project),
        route!(GET "/redfish/v1/Oem/Redfin/Projects/{id}", Required::LOGIN, get_project),
        route!(PATCH "/redfish/v1/Oem/Redfin/Projects/{id}", Required::CONFIGURE_USERS, patch_project),
        route!(DELETE "/redfish/v1/Oem/Redfin/Projects/{id}", Required::CONFIGURE_USERS, delete_project),
    ]
}

pub const PROJECTS: &str = "/redfish/v1/Oem/Redfin/Projects";
const ODATA_TYPE: &str = "#RedfinProject.v1_0_0.RedfinProject";

async fn get_project_collection(req: Request) -> Result<Reply, RedfishError> {
    let projects = req.app.store.projects().await?;
    let members: Vec<Value> = projects
        .iter()
        .map(|p| link(&format!("{PROJECTS}/{}", p.id)))
        .collect();
    Ok(Reply::ok(json!({
        "@odata.id": PROJECTS,
        "@odata.type": "#RedfinProjectCollection.RedfinProjectCollection",
        "Name": "Project Collection",
        "Members@odata.count": members.len(),
        "Members": members,
    })))
}

async fn find(req: &Request) -> Result<ProjectRecord, RedfishError> {
    let id = req.param(0);
    req.app
        .store
        .project(id.to_owned())
        .await?
        .ok_or_else(|| RedfishError::not_found("RedfinProject", id))
}

async fn project_json(req: &Request, p: &ProjectRecord) -> Result<Value, RedfishError> {
    let systems: Vec<_> = req
        .app
        .store
        .composed_systems()
        .await?
        .into_iter()
        .filter(|r| r.project.as_deref() == Some(p.id.as_str()))
        .collect();
    let used = crate::composition::usage(&systems);
    let accounts: Vec<Value> = req
        .app
        .auth
        .accounts()
        .into_iter()
        .filter(|a| a.project.as_deref() == Some(p.id.as_str()))
        .map(|a| link(&format!("/redfish/v1/AccountService/Accounts/{}", a.id)))
        .collect();
    let system_links: Vec<Value> = systems
        .iter()
        .map(|r| link(&format!("/redfish/v1/Systems/{}", r.system_id)))
        .collect();
    Ok(json!({
        "@odata.id": format!("{PROJECTS}/{}", p.id),
        "@odata.type": ODATA_TYPE,
        "Id": p.id,
        "Name": p.id,
        "Description": p.description,
        "Quotas": {
            "MaxSystems": p.max_systems,
            "MaxVCPUs": p.max_vcpus,
            "MaxMemoryMiB": p.max_memory_mib,
            "MaxDiskGiB": p.max_disk_gib,
        },
        "Usage": {
            "Systems": used.systems,
            "VCPUs": used.vcpus,
            "MemoryMiB": used.memory_mib,
            "DiskBytes": used.disk_bytes,
        },
        "Links": {
            "Accounts@odata.count": accounts.len(),
            "Accounts": accounts,
            "Systems@odata.count": system_links.len(),
            "Systems": system_links,
        },
    }))
}

async fn get_project(req: Request) -> Result<Reply, RedfishError> {
    let p = find(&req).await?;
    Ok(Reply::ok(project_json(&req, &p).await?))
}

/// `Quotas` of a body: each a non-negative integer.
fn quotas(body: &mut Fields, p: &mut ProjectRecord) -> Result<(), RedfishError> {
    let Some(mut q) = body.object("Quotas")? else {
        return Ok(());
    };
    let mut number = |key: &str| -> Result<Option<u64>, RedfishError> {
        match q.integer(key)? {
            None => Ok(None),
            Some(n) if n >= 0 => Ok(Some(n as u64)),
            Some(n) => Err(RedfishError::property_value_out_of_range(
                &n.to_string(),
                &format!("Quotas/{key}"),
            )),
        }
    };
    if let Some(n) = number("MaxSystems")? {
        p.max_systems = n.min(u64::from(u32::MAX)) as u32;
    }
    if let Some(n) = number("MaxVCPUs")? {
        p.max_vcpus = n.min(u64::from(u32::MAX)) as u32;
    }
    if let Some(n) = number("MaxMemoryMiB")? {
        p.max_memory_mib = n;
    }
    if let Some(n) = number("MaxDiskGiB")? {
        p.max_disk_gib = n;
    }
    q.finish()
}

/// POST `{"Id", "Description"?, "Quotas"?: {"MaxSystems", "MaxVCPUs",
/// "MaxMemoryMiB", "MaxDiskGiB"}}`; quotas left out are the service's.
async fn post_project(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    let id = body.string("Id")?;
    let id = body.required("Id", id)?;
    let c = &req.app.composition.config;
    let mut p = ProjectRecord {
        id: id.clone(),
        description: body.string("Description")?.unwrap_or_default(),
        max_systems: c.max_systems,
        max_vcpus: c.max_vcpus,
        max_memory_mib: c.max_memory_mib,
        max_disk_gib: c.max_disk_gib,
        created: now_unix(),
    };
    quotas(&mut body, &mut p)?;
    body.finish()?;
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(RedfishError::property_value_incorrect(
            "Id",
            &id,
            "A project id has 1 to 64 letters, digits, '-' and '_'.",
        ));
    }
    match req.app.store.insert_project(p.clone()).await {
        Ok(()) => {}
        Err(crate::store::StoreError::Conflict(_)) => {
            return Err(RedfishError::already_exists("RedfinProject", "Id", &id))
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(project = %id, "project created");
    Ok(Reply::created(
        &format!("{PROJECTS}/{id}"),
        project_json(&req, &p).await?,
    ))
}

async fn patch_project(req: Request) -> Result<Reply, RedfishError> {
    let mut p = find(&req).await?;
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    if let Some(d) = body.string("Description")? {
        p.description = d;
    }
    quotas(&mut body, &mut p)?;
    body.read_only("Id")?;
    body.finish()?;
    req.app.store.update_project(p.clone()).await?;
    tracing::info!(project = %p.id, "project modified");
    Ok(Reply::ok(project_json(&req, &p).await?))
}

async fn delete_project(req: Request) -> Result<Reply, RedfishError> {
    let p = find(&req).await?;
    match req.app.store.delete_project(p.id.clone()).await? {
        Ok(_) => {
            tracing::info!(project = %p.id, "project deleted");
            Ok(Reply::NoContent)
        }
        Err(what) => Err(RedfishError::new(
            StatusCode::CONFLICT,
            Message::new(&base::RESOURCE_IN_USE, &[]).resolution(format!(
                "The project still holds {what}; delete them or move the accounts out first."
            )),
        )),
    }
}
