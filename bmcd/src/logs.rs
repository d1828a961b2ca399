//! Logs: the BMC's event log (everything that happened), one log per system
//! (power, boot, media, crashes) and the audit trail of every state-changing
//! request (who, from where, what, with which outcome). Entries are written by
//! a background task in batches, so recording never delays a response, and each
//! log keeps its newest `keep` entries.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::store::{LogRecord, Store};
use crate::time::now_unix;

pub const EVENT_LOG: &str = "events";
pub const AUDIT_LOG: &str = "audit";

/// The log of one system.
pub fn system_log(system_id: &str) -> String {
    format!("system:{system_id}")
}

enum Msg {
    Entry(LogRecord),
    /// Write everything received so far, then answer.
    Flush(oneshot::Sender<()>),
}

pub struct Logs {
    tx: mpsc::Sender<Msg>,
    pub keep: i64,
}

impl Logs {
    /// Starts the writer task.
    pub fn start(store: Store, keep: i64) -> (Arc<Logs>, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Msg>(4096);
        let writer = tokio::spawn(async move {
            let mut batch = Vec::new();
            while let Some(first) = rx.recv().await {
                let mut flushed = Vec::new();
                match first {
                    Msg::Entry(e) => batch.push(e),
                    Msg::Flush(done) => flushed.push(done),
                }
                // Gather what arrives within a short window into one transaction.
                let window = tokio::time::sleep(Duration::from_millis(50));
                tokio::pin!(window);
                while flushed.is_empty() && batch.len() < 512 {
                    tokio::select! {
                        more = rx.recv() => match more {
                            Some(Msg::Entry(e)) => batch.push(e),
                            Some(Msg::Flush(done)) => flushed.push(done),
                            None => break,
                        },
                        _ = &mut window => break,
                    }
                }
                if !batch.is_empty() {
                    if let Err(e) = store.append_logs(std::mem::take(&mut batch), keep).await {
                        tracing::error!(error = %e, "could not write log entries");
                    }
                }
                for done in flushed {
                    let _ = done.send(());
                }
            }
        });
        (Arc::new(Logs { tx, keep }), writer)
    }

    pub fn record(&self, entry: LogRecord) {
        if self.tx.try_send(Msg::Entry(entry)).is_err() {
            tracing::warn!("log writer is behind; an entry was dropped");
        }
    }

    /// Waits until every entry recorded so far is written (at shutdown).
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), written).await;
        }
    }

    /// An entry of an event (for the event log and the origin system's log).
    pub fn event(&self, severity: &str, message: &str, message_id: &str, args: &[String], origin: &str) {
        let mut logs = vec![EVENT_LOG.to_owned()];
        // A system's own events, and those of its BMC, go to its log too.
        let system = origin
            .strip_prefix("/redfish/v1/Systems/")
            .or_else(|| origin.strip_prefix("/redfish/v1/Managers/"))
            .map(|rest| rest.split('/').next().unwrap_or(rest))
            .filter(|id| *id != crate::resources::managers::BMC_ID);
        if let Some(id) = system {
            logs.push(system_log(id));
        }
        for log in logs {
            self.record(LogRecord {
                id: 0,
                log,
                created: now_unix(),
                severity: severity.to_owned(),
                message: message.to_owned(),
                message_id: message_id.to_owned(),
                args: args.to_vec(),
                origin: origin.to_owned(),
            });
        }
    }

    /// An audit entry for a state-changing request. Never carries a body.
    pub fn audit(&self, user: &str, client: &str, method: &str, path: &str, status: u16) {
        let severity = match status {
            500.. => "Critical",
            400.. => "Warning",
            _ => "OK",
        };
        self.record(LogRecord {
            id: 0,
            log: AUDIT_LOG.to_owned(),
            created: now_unix(),
            severity: severity.to_owned(),
            message: format!("{user} from {client}: {method} {path} answered {status}"),
            message_id: format!(
                "{}.{}.{}",
                crate::registries::audit::PREFIX,
                crate::registries::audit::VERSION,
                crate::registries::audit::REQUEST_AUDITED.key
            ),
            args: vec![
                user.to_owned(),
                client.to_owned(),
                method.to_owned(),
                path.to_owned(),
                status.to_string(),
            ],
            // A request path may name an action, not a resource: no link.
            origin: String::new(),
        });
    }
}
