//! Rows behind the vendor personas: per-VM BMC endpoints, the vendor jobs a
//! persona reports, and vendor BIOS attributes that only a persona's
//! registry has.

use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};

/// One per-VM BMC endpoint: its own listener, persona and credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRecord {
    pub id: String,
    /// The ComputerSystem's Id (domain UUID).
    pub system_id: String,
    /// `generic`, `ilo5` or `idrac9`.
    pub persona: String,
    /// `ADDR:PORT` of its HTTPS listener.
    pub listen: String,
    /// The endpoint's own account, when it has one.
    pub user_name: Option<String>,
    pub created: i64,
}

/// The TLS server certificate of a per-VM BMC endpoint (PEM), its private
/// key, and the key of its pending certificate signing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointCertificateRecord {
    pub certificate: String,
    pub private_key: String,
    pub csr_key: Option<String>,
}

/// A vendor job (iDRAC `JID_...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub id: String,
    pub system_id: String,
    pub job_type: String,
    pub name: String,
    pub created: i64,
    pub state: String,
    pub percent: i64,
    pub message: String,
    pub message_id: String,
    pub completed: Option<i64>,
}

/// A persona-only BIOS attribute: its current value and the one pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeRecord {
    pub name: String,
    pub current: String,
    pub pending: Option<String>,
}

const ENDPOINT_COLUMNS: &str = "id, system_id, persona, listen, user_name, created";

fn endpoint_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EndpointRecord> {
    Ok(EndpointRecord {
        id: r.get(0)?,
        system_id: r.get(1)?,
        persona: r.get(2)?,
        listen: r.get(3)?,
        user_name: r.get(4)?,
        created: r.get(5)?,
    })
}

impl Store {
    pub async fn endpoints(&self) -> Result<Vec<EndpointRecord>, StoreError> {
        self.call(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {ENDPOINT_COLUMNS} FROM bmc_endpoints ORDER BY created, id"
            ))?;
            let rows = stmt.query_map([], endpoint_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Adds an endpoint; `Conflict` when its id or address is taken.
    pub async fn insert_endpoint(&self, e: EndpointRecord) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO bmc_endpoints(id, system_id, persona, listen, user_name, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![e.id, e.system_id, e.persona, e.listen, e.user_name, e.created],
            )?;
            Ok(())
        })
        .await
    }

    /// Deletes an endpoint and its certificate.
    pub async fn delete_endpoint(&self, id: String) -> Result<bool, StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM endpoint_certificates WHERE endpoint_id = ?1", [&id])?;
            let deleted = tx.execute("DELETE FROM bmc_endpoints WHERE id = ?1", [&id])? > 0;
            tx.commit()?;
            Ok(deleted)
        })
        .await
    }

    /// An endpoint's TLS certificate, if one was made or installed.
    pub async fn endpoint_certificate(
        &self,
        endpoint_id: String,
    ) -> Result<Option<EndpointCertificateRecord>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT certificate, private_key, csr_key FROM endpoint_certificates WHERE endpoint_id = ?1",
                [endpoint_id],
                |r| {
                    Ok(EndpointCertificateRecord {
                        certificate: r.get(0)?,
                        private_key: r.get(1)?,
                        csr_key: r.get(2)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    /// Stores an endpoint's certificate and key; the pending CSR key is
    /// dropped when `csr_used` (the certificate was signed for it).
    pub async fn set_endpoint_certificate(
        &self,
        endpoint_id: String,
        certificate: String,
        private_key: String,
        csr_used: bool,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO endpoint_certificates(endpoint_id, certificate, private_key, csr_key)
                 VALUES (?1, ?2, ?3, NULL)
                 ON CONFLICT(endpoint_id) DO UPDATE SET certificate = excluded.certificate,
                     private_key = excluded.private_key,
                     csr_key = CASE WHEN ?4 THEN NULL ELSE endpoint_certificates.csr_key END",
                params![endpoint_id, certificate, private_key, csr_used],
            )?;
            Ok(())
        })
        .await
    }

    /// Keeps the key of an endpoint's new certificate signing request
    /// (`Missing` when the endpoint has no certificate row).
    pub async fn set_endpoint_csr_key(&self, endpoint_id: String, key: String) -> Result<(), StoreError> {
        self.call(move |c| {
            let n = c.execute(
                "UPDATE endpoint_certificates SET csr_key = ?2 WHERE endpoint_id = ?1",
                params![endpoint_id, key],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    pub async fn jobs(&self, system_id: String) -> Result<Vec<JobRecord>, StoreError> {
        self.call(move |c| {
            let mut stmt = c.prepare(
                "SELECT id, system_id, job_type, name, created, state, percent, message, message_id, completed
                 FROM persona_jobs WHERE system_id = ?1 ORDER BY created, id",
            )?;
            let rows = stmt.query_map([system_id], |r| {
                Ok(JobRecord {
                    id: r.get(0)?,
                    system_id: r.get(1)?,
                    job_type: r.get(2)?,
                    name: r.get(3)?,
                    created: r.get(4)?,
                    state: r.get(5)?,
                    percent: r.get(6)?,
                    message: r.get(7)?,
                    message_id: r.get(8)?,
                    completed: r.get(9)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Inserts or replaces a job.
    pub async fn save_job(&self, j: JobRecord) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO persona_jobs(id, system_id, job_type, name, created, state, percent, message,
                                          message_id, completed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT(id) DO UPDATE SET state = excluded.state, percent = excluded.percent,
                     message = excluded.message, message_id = excluded.message_id,
                     completed = excluded.completed",
                params![
                    j.id,
                    j.system_id,
                    j.job_type,
                    j.name,
                    j.created,
                    j.state,
                    j.percent,
                    j.message,
                    j.message_id,
                    j.completed
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Deletes one job, or all of a system's jobs when `id` is `None`.
    pub async fn delete_jobs(&self, system_id: String, id: Option<String>) -> Result<usize, StoreError> {
        self.call(move |c| {
            Ok(match id {
                Some(id) => c.execute(
                    "DELETE FROM persona_jobs WHERE system_id = ?1 AND id = ?2",
                    params![system_id, id],
                )?,
                None => c.execute("DELETE FROM persona_jobs WHERE system_id = ?1", [system_id])?,
            })
        })
        .await
    }

    pub async fn persona_attributes(&self, system_id: String) -> Result<Vec<AttributeRecord>, StoreError> {
        self.call(move |c| {
            let mut stmt = c.prepare(
                "SELECT name, current, pending FROM persona_attributes WHERE system_id = ?1 ORDER BY name",
            )?;
            let rows = stmt.query_map([system_id], |r| {
                Ok(AttributeRecord {
                    name: r.get(0)?,
                    current: r.get(1)?,
                    pending: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn set_persona_attribute(
        &self,
        system_id: String,
        a: AttributeRecord,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO persona_attributes(system_id, name, current, pending) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(system_id, name) DO UPDATE SET current = excluded.current, pending = excluded.pending",
                params![system_id, a.name, a.current, a.pending],
            )?;
            Ok(())
        })
        .await
    }

    /// The row of one endpoint, if any.
    pub async fn endpoint(&self, id: String) -> Result<Option<EndpointRecord>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                &format!("SELECT {ENDPOINT_COLUMNS} FROM bmc_endpoints WHERE id = ?1"),
                [id],
                endpoint_row,
            )
            .optional()?)
        })
        .await
    }
}
