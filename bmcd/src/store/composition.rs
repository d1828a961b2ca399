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
    })
}

const COMPOSED_COLUMNS: &str =
    "system_id, name, profile, image, state, message, vcpus, memory_mib, disk_bytes, volumes, created";

impl Store {
    pub async fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        self.call(|c| {
            let mut st =
                c.prepare("SELECT id, pool, volume, os, description, created FROM images ORDER BY id")?;
            let rows = st.query_map([], |r| {
                Ok(ImageRecord {
                    id: r.get(0)?,
                    pool: r.get(1)?,
                    volume: r.get(2)?,
                    os: r.get(3)?,
                    description: r.get(4)?,
                    created: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn insert_image(&self, i: ImageRecord) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO images(id, pool, volume, os, description, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![i.id, i.pool, i.volume, i.os, i.description, i.created],
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
                "INSERT INTO profiles(id, body, created) VALUES (?1, ?2, ?3)",
                params![p.id, body, p.created],
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
                &format!("INSERT INTO composed_systems({COMPOSED_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
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
                    r.created
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
