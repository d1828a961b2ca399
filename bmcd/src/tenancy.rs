//! Projects (tenants): what a caller who belongs to a project may reach.
//!
//! An account without a project serves the whole appliance, as before. An
//! account of a project sees its project's systems (those composed in it),
//! the images, profiles and volumes made in it (plus the shared images and
//! profiles), its own project, its own account and sessions, and the tasks
//! of its systems; everything else answers as if it did not exist (404), so
//! that nothing of another project, or of the appliance, shows. Its role
//! counts within the project: `ConfigureManager` on its systems' managers
//! (virtual media, their BMC reset), never on the appliance's BMC, and never
//! `ConfigureUsers`.
//!
//! The checks run centrally, for every request and every `$expand`ed read
//! ([`check_route`]), and collections are cut to what the caller may see
//! ([`filter_collection`]) before paging and expansion.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use crate::app::App;
use crate::auth::Principal;
use crate::error::RedfishError;

/// How far a request reaches once it is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The caller belongs to no project: the whole service.
    Service,
    /// A project member on a resource that is not one of its systems'.
    Project,
    /// A project member on one of its own systems (or its manager): its
    /// role's `ConfigureManager` counts there.
    OwnSystem,
}

/// The systems composed in `project`.
pub async fn owned_systems(app: &App, project: &str) -> Result<HashSet<String>, RedfishError> {
    owned_systems_in(&app.store, project).await
}

/// [`owned_systems`] for a caller that holds the store, not the `App` (the
/// console socket's SSH authorization).
pub async fn owned_systems_in(
    store: &crate::store::Store,
    project: &str,
) -> Result<HashSet<String>, RedfishError> {
    Ok(store
        .composed_systems()
        .await?
        .into_iter()
        .filter(|r| r.project.as_deref() == Some(project))
        .map(|r| r.system_id)
        .collect())
}

/// The project of a caller on the aggregate listener.
pub fn project_of(principal: Option<&Principal>) -> Option<&str> {
    principal.and_then(|p| p.project.as_deref())
}

/// The system a resource URI belongs to (`/Systems/{id}`, `/Chassis/{id}`,
/// `/Managers/{id}` but the BMC's), if any.
pub fn system_of_uri(uri: &str) -> Option<&str> {
    let rest = uri.strip_prefix("/redfish/v1/")?;
    let mut parts = rest.split('/');
    let family = parts.next()?;
    let id = parts.next().filter(|id| !id.is_empty())?;
    match family {
        "Systems" | "Chassis" => Some(id),
        "Managers" if id != crate::resources::managers::BMC_ID => Some(id),
        _ => None,
    }
}

/// A catalog entry (image, profile) is shared (made by an account of no
/// project) or `project`'s own.
fn shared_or_own(owner: Option<&str>, project: &str) -> bool {
    owner.is_none_or(|o| o == project)
}

fn hidden(path: &str) -> RedfishError {
    RedfishError::no_such_uri(path)
}

/// Decides whether a project member may use route `template` (matched on
/// `path`); the answer for a member of no project is always `Service`.
pub async fn check_route(
    app: &Arc<App>,
    principal: &Principal,
    template: &str,
    path: &str,
) -> Result<Reach, RedfishError> {
    let Some(project) = principal.project.as_deref() else {
        return Ok(Reach::Service);
    };
    // The service's vocabulary and one's own login and account.
    let open = [
        "/redfish",
        "/redfish/v1",
        "/redfish/v1/odata",
        "/redfish/v1/$metadata",
        "/redfish/v1/Systems",
        "/redfish/v1/Chassis",
        "/redfish/v1/Managers",
        "/redfish/v1/Storage",
        "/redfish/v1/Storage/{pool}",
        "/redfish/v1/Storage/{pool}/Volumes",
        "/redfish/v1/TaskService",
        "/redfish/v1/TaskService/Tasks",
        "/redfish/v1/Oem/Redfin/Images",
        "/redfish/v1/Oem/Redfin/Profiles",
        "/redfish/v1/Oem/Redfin/Projects",
    ];
    let service_prefixes = [
        "/redfish/v1/Registries",
        "/redfish/v1/JsonSchemas",
        "/redfish/v1/SessionService",
        "/redfish/v1/AccountService",
        "/ui",
    ];
    if open.contains(&template) || service_prefixes.iter().any(|p| template.starts_with(p)) {
        return Ok(Reach::Project);
    }
    if let Some(system) = system_of_uri(template).and(system_of_uri(path)) {
        return if owned_systems(app, project).await?.contains(system) {
            Ok(Reach::OwnSystem)
        } else {
            Err(hidden(path))
        };
    }
    let last = path.rsplit('/').next().unwrap_or_default();
    let visible = match template {
        "/redfish/v1/TaskService/Tasks/{id}" | "/redfish/v1/TaskService/TaskMonitors/{id}" => {
            let owned = owned_systems(app, project).await?;
            last.parse::<i64>()
                .ok()
                .and_then(|id| app.tasks.get(id))
                .and_then(|t| system_of_uri(&t.target).map(|s| owned.contains(s)))
                .unwrap_or(false)
        }
        "/redfish/v1/Oem/Redfin/Projects/{id}" => last == project,
        "/redfish/v1/Oem/Redfin/Images/{image}" => app
            .store
            .images()
            .await?
            .iter()
            .any(|i| i.id == last && shared_or_own(i.project.as_deref(), project)),
        "/redfish/v1/Oem/Redfin/Profiles/{profile}" => app
            .store
            .profiles()
            .await?
            .iter()
            .any(|p| p.id == last && shared_or_own(p.project.as_deref(), project)),
        t if t.starts_with("/redfish/v1/Storage/{pool}/Volumes/{volume}") => {
            let mut parts = path.trim_start_matches("/redfish/v1/Storage/").split('/');
            let pool = parts.next().unwrap_or_default();
            let volume = parts.nth(1).unwrap_or_default();
            app.store
                .volume_projects()
                .await?
                .iter()
                .any(|(p, v, owner)| p == pool && v == volume && owner == project)
        }
        _ => false,
    };
    if visible {
        Ok(Reach::Project)
    } else {
        Err(hidden(path))
    }
}

/// Whether a project member may change (delete) a catalog entry: only what
/// its project made, not the shared entries it can read.
pub fn may_change(principal: Option<&Principal>, owner: Option<&str>) -> Result<(), RedfishError> {
    match project_of(principal) {
        Some(p) if owner != Some(p) => Err(RedfishError::insufficient_privilege()),
        _ => Ok(()),
    }
}

/// Cuts a collection to the members a project member may see.
pub async fn filter_collection(
    app: &Arc<App>,
    project: &str,
    template: &str,
    body: &mut Value,
) -> Result<(), RedfishError> {
    let keep: Box<dyn Fn(&str) -> bool + Send> = match template {
        "/redfish/v1/Systems" | "/redfish/v1/Chassis" | "/redfish/v1/Managers" => {
            let owned = owned_systems(app, project).await?;
            Box::new(move |uri| system_of_uri(uri).is_some_and(|s| owned.contains(s)))
        }
        "/redfish/v1/TaskService/Tasks" => {
            let owned = owned_systems(app, project).await?;
            let tasks = app.tasks.clone();
            Box::new(move |uri| {
                uri.rsplit('/')
                    .next()
                    .and_then(|id| id.parse::<i64>().ok())
                    .and_then(|id| tasks.get(id))
                    .and_then(|t| system_of_uri(&t.target).map(|s| owned.contains(s)))
                    .unwrap_or(false)
            })
        }
        "/redfish/v1/Oem/Redfin/Images" => {
            let ids: HashSet<String> = app
                .store
                .images()
                .await?
                .into_iter()
                .filter(|i| shared_or_own(i.project.as_deref(), project))
                .map(|i| i.id)
                .collect();
            Box::new(move |uri| uri.rsplit('/').next().is_some_and(|id| ids.contains(id)))
        }
        "/redfish/v1/Oem/Redfin/Profiles" => {
            let ids: HashSet<String> = app
                .store
                .profiles()
                .await?
                .into_iter()
                .filter(|p| shared_or_own(p.project.as_deref(), project))
                .map(|p| p.id)
                .collect();
            Box::new(move |uri| uri.rsplit('/').next().is_some_and(|id| ids.contains(id)))
        }
        "/redfish/v1/Oem/Redfin/Projects" => {
            let own = format!("/redfish/v1/Oem/Redfin/Projects/{project}");
            Box::new(move |uri| uri == own)
        }
        "/redfish/v1/Storage/{pool}/Volumes" => {
            let owned: HashSet<String> = app
                .store
                .volume_projects()
                .await?
                .into_iter()
                .filter(|(_, _, p)| p == project)
                .map(|(pool, volume, _)| format!("/redfish/v1/Storage/{pool}/Volumes/{volume}"))
                .collect();
            Box::new(move |uri| owned.contains(uri))
        }
        _ => return Ok(()),
    };
    if let Some(members) = body.get_mut("Members").and_then(Value::as_array_mut) {
        members.retain(|m| m["@odata.id"].as_str().is_some_and(&keep));
        let n = members.len();
        body["Members@odata.count"] = Value::from(n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_uris_name_their_system() {
        assert_eq!(system_of_uri("/redfish/v1/Systems/abc"), Some("abc"));
        assert_eq!(system_of_uri("/redfish/v1/Systems/abc/Bios"), Some("abc"));
        assert_eq!(system_of_uri("/redfish/v1/Chassis/abc/Power"), Some("abc"));
        assert_eq!(
            system_of_uri("/redfish/v1/Managers/abc/VirtualMedia/Cd"),
            Some("abc")
        );
        assert_eq!(system_of_uri("/redfish/v1/Managers/BMC"), None);
        assert_eq!(system_of_uri("/redfish/v1/Systems"), None);
        assert_eq!(system_of_uri("/redfish/v1/Systems/"), None);
        assert_eq!(system_of_uri("/redfish/v1/UpdateService"), None);
    }
}
