//! Rows behind composition: the images catalog, profiles and the systems bmcd
//! composed (their life cycle state and what they count against quotas).

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// A base image: a volume of a pool that composed systems overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub id: String,
    pub pool: String,
    pub volume: String,
    /// The operating system it holds, as the operator names it.
    pub os: String,
    pub description: String,
    pub created: i64,
    /// The project that registered it; `None`: shared by every project.
    pub project: Option<String>,
}

/// A profile: what a composed system is made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileRecord {
    pub id: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    /// Size of the system's boot disk (the image overlay, or an empty disk).
    pub disk_bytes: u64,
    /// libvirt network of the one NIC; `None`: user-mode networking; `""`: no NIC.
    pub network: Option<String>,
    /// `UEFI` or `Legacy`.
    pub firmware: String,
    /// Persona of the system's own BMC endpoint (`generic`, `ilo5`, `idrac9`).
    pub persona: Option<String>,
    /// Direct kernel boot: kernel, initrd and command line on the host.
    pub kernel: Option<String>,
    pub initrd: Option<String>,
    pub cmdline: Option<String>,
    pub created: i64,
    /// The project that made it; `None`: shared by every project.
    #[serde(default)]
    pub project: Option<String>,
}

/// A system bmcd composed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposedRecord {
    pub system_id: String,
    pub name: String,
    pub profile: String,
    pub image: Option<String>,
    /// `Creating`, `Ready`, `Error` or `Deleting`.
    pub state: String,
    /// Why it is in `Error`, or what it is doing.
    pub message: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disk_bytes: u64,
    /// Volumes made for it (`pool/volume`), removed with it.
    pub volumes: Vec<String>,
    pub created: i64,
    /// The project it belongs to; `None`: the whole service's.
    pub project: Option<String>,
}

fn composed_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ComposedRecord> {
    let volumes: String = r.get(9)?;
    Ok(ComposedRecord {
        system_id: r.get(0)?,
        name: r.get(1)?,
        profile: r.get(2)?,
        image: r.get(3)?,
        state: r.get(4)?,
        message: r.get(5)?,
        vcpus: r.get(6)?,
        memory_mib: r.get::<_, i64>(7)? as u64,
        disk_bytes: r.get::<_, i64>(8)? as u64,
        volumes: serde_json::from_str(&volumes).unwrap_or_default(),
        created: r.get(10)?,
        project: r.get(11)?,
    })
}

const COMPOSED_COLUMNS: &str =
    "system_id, name, profile, image, state, message, vcpus, memory_mib, disk_bytes, volumes, created, project";

impl Store {
    pub async fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        self.call(|c| {
            let mut st = c.prepare(
                "SELECT id, pool, volume, os, description, created, project FROM images ORDER BY id",
            )?;
            let rows = st.query_map([], |r| {
                Ok(ImageRecord {
                    id: r.get(0)?,
                    pool: r.get(1)?,
                    volume: r.get(2)?,
                    os: r.get(3)?,
                    description: r.get(4)?,
                    created: r.get(5)?,
                    project: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn insert_image(&self, i: ImageRecord) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO images(id, pool, volume, os, description, created, project) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![i.id, i.pool, i.volume, i.os, i.description, i.created, i.project],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn delete_image(&self, id: String) -> Result<bool, StoreError> {
        self.call(move |c| Ok(c.execute("DELETE FROM images WHERE id = ?1", [id])? > 0))
            .await
    }

    pub async fn profiles(&self) -> Result<Vec<ProfileRecord>, StoreError> {
        self.call(|c| {
            let mut st = c.prepare("SELECT body FROM profiles ORDER BY id")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for body in rows {
                let body = body?;
                out.push(serde_json::from_str(&body).map_err(|e| StoreError::Io(e.to_string()))?);
            }
            Ok(out)
        })
        .await
    }

    pub async fn insert_profile(&self, p: ProfileRecord) -> Result<(), StoreError> {
        self.call(move |c| {
            let body = serde_json::to_string(&p).map_err(|e| StoreError::Io(e.to_string()))?;
            c.execute(
                "INSERT INTO profiles(id, body, created, project) VALUES (?1, ?2, ?3, ?4)",
                params![p.id, body, p.created, p.project],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn delete_profile(&self, id: String) -> Result<bool, StoreError> {
        self.call(move |c| Ok(c.execute("DELETE FROM profiles WHERE id = ?1", [id])? > 0))
            .await
    }

    pub async fn composed_systems(&self) -> Result<Vec<ComposedRecord>, StoreError> {
        self.call(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {COMPOSED_COLUMNS} FROM composed_systems ORDER BY created, name"
            ))?;
            let rows = st.query_map([], composed_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn composed_system(&self, system_id: String) -> Result<Option<ComposedRecord>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                &format!("SELECT {COMPOSED_COLUMNS} FROM composed_systems WHERE system_id = ?1"),
                [system_id],
                composed_row,
            )
            .optional()?)
        })
        .await
    }

    /// Inserts a composed system; a taken name is a `Conflict`.
    pub async fn insert_composed(&self, r: ComposedRecord) -> Result<(), StoreError> {
        self.call(move |c| {
            let volumes = super::json_list(&r.volumes)?;
            c.execute(
                &format!("INSERT INTO composed_systems({COMPOSED_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
                params![
                    r.system_id,
                    r.name,
                    r.profile,
                    r.image,
                    r.state,
                    r.message,
                    r.vcpus,
                    r.memory_mib as i64,
                    r.disk_bytes as i64,
                    volumes,
                    r.created,
                    r.project
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Moves a composed system to another life cycle state.
    pub async fn set_composed_state(
        &self,
        system_id: String,
        state: &'static str,
        message: String,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "UPDATE composed_systems SET state = ?2, message = ?3 WHERE system_id = ?1",
                params![system_id, state, message],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn delete_composed(&self, system_id: String) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute("DELETE FROM composed_systems WHERE system_id = ?1", [system_id])?;
            Ok(())
        })
        .await
    }
}

/// A project (tenant): its own quotas over the systems composed in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRecord {
    pub id: String,
    pub description: String,
    pub max_systems: u32,
    pub max_vcpus: u32,
    pub max_memory_mib: u64,
    pub max_disk_gib: u64,
    pub created: i64,
}

fn project_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ProjectRecord> {
    Ok(ProjectRecord {
        id: r.get(0)?,
        description: r.get(1)?,
        max_systems: r.get(2)?,
        max_vcpus: r.get(3)?,
        max_memory_mib: r.get::<_, i64>(4)? as u64,
        max_disk_gib: r.get::<_, i64>(5)? as u64,
        created: r.get(6)?,
    })
}

const PROJECT_COLUMNS: &str =
    "id, description, max_systems, max_vcpus, max_memory_mib, max_disk_gib, created";

impl Store {
    pub async fn projects(&self) -> Result<Vec<ProjectRecord>, StoreError> {
        self.call(|c| {
            let mut st = c.prepare(&format!("SELECT {PROJECT_COLUMNS} FROM projects ORDER BY id"))?;
            let rows = st.query_map([], project_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn project(&self, id: String) -> Result<Option<ProjectRecord>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                &format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE id = ?1"),
                [id],
                project_row,
            )
            .optional()?)
        })
        .await
    }

    /// Inserts a project; a taken id is a `Conflict`.
    pub async fn insert_project(&self, p: ProjectRecord) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                &format!("INSERT INTO projects({PROJECT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                params![
                    p.id,
                    p.description,
                    p.max_systems,
                    p.max_vcpus,
                    p.max_memory_mib as i64,
                    p.max_disk_gib as i64,
                    p.created
                ],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn update_project(&self, p: ProjectRecord) -> Result<(), StoreError> {
        self.call(move |c| {
            let n = c.execute(
                "UPDATE projects SET description = ?2, max_systems = ?3, max_vcpus = ?4,
                        max_memory_mib = ?5, max_disk_gib = ?6 WHERE id = ?1",
                params![
                    p.id,
                    p.description,
                    p.max_systems,
                    p.max_vcpus,
                    p.max_memory_mib as i64,
                    p.max_disk_gib as i64
                ],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    /// Deletes a project that nothing belongs to any more: `Ok(false)` when
    /// there is no such project, `Err(what)` naming what still belongs to it.
    pub async fn delete_project(&self, id: String) -> Result<Result<bool, String>, StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            for (table, what) in [
                ("accounts", "accounts"),
                ("composed_systems", "systems"),
                ("images", "images"),
                ("profiles", "profiles"),
                ("volume_projects", "volumes"),
            ] {
                let n: i64 = tx.query_row(
                    &format!("SELECT COUNT(*) FROM {table} WHERE project = ?1"),
                    [&id],
                    |r| r.get(0),
                )?;
                if n > 0 {
                    return Ok(Err(format!("{n} {what}")));
                }
            }
            let n = tx.execute("DELETE FROM projects WHERE id = ?1", [&id])?;
            tx.commit()?;
            Ok(Ok(n > 0))
        })
        .await
    }

    /// The volumes (`pool`, `volume`) of each project.
    pub async fn volume_projects(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        self.call(|c| {
            let mut st = c.prepare("SELECT pool, volume, project FROM volume_projects")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Records (or, with `None`, forgets) the project of a volume.
    pub async fn set_volume_project(
        &self,
        pool: String,
        volume: String,
        project: Option<String>,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            match project {
                Some(p) => c.execute(
                    "INSERT OR REPLACE INTO volume_projects(pool, volume, project) VALUES (?1, ?2, ?3)",
                    params![pool, volume, p],
                )?,
                None => c.execute(
                    "DELETE FROM volume_projects WHERE pool = ?1 AND volume = ?2",
                    params![pool, volume],
                )?,
            };
            Ok(())
        })
        .await
    }
}
