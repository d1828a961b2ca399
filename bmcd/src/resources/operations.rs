//! Operations endpoints outside the Redfish tree: `/metrics` (Prometheus),
//! `/health` (liveness) and `/ready` (readiness).

use std::time::Duration;

use bytes::Bytes;
use hyper::StatusCode;

use crate::config::MetricsAuth;
use crate::error::{Message, RedfishError};
use crate::privilege::Required;
use crate::registries::base;
use crate::route;
use crate::router::{Reply, Request, Route};

pub const METRICS_PATH: &str = "/metrics";

/// How long a readiness probe waits for each dependency.
const READY_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a scrape waits for libvirt's statistics before answering without them.
const STATISTICS_TIMEOUT: Duration = Duration::from_secs(10);

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/metrics", Required::LOGIN, get_metrics),
        route!(GET "/health", Required::Open, get_health),
        route!(GET "/ready", Required::Open, get_ready),
    ]
}

/// With `metrics-auth = "none"`, `/metrics` is open like `/health`.
pub fn apply_metrics_auth(routes: &mut [Route], auth: MetricsAuth) {
    if auth == MetricsAuth::None {
        for r in routes.iter_mut().filter(|r| r.path == METRICS_PATH) {
            r.required = Required::Open;
        }
    }
}

const TEXT: &str = "text/plain; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn get_metrics(req: Request) -> Result<Reply, RedfishError> {
    let app = &req.app;
    let systems = match tokio::time::timeout(STATISTICS_TIMEOUT, app.hypervisor.statistics()).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "no libvirt statistics for this scrape");
            None
        }
        Err(_) => None,
    };
    let process = tokio::task::spawn_blocking(crate::metrics::process_facts)
        .await
        .unwrap_or_default();
    let text = crate::metrics::render(&process, systems.as_deref());
    Ok(Reply::Raw {
        content_type: PROMETHEUS_TEXT,
        body: Bytes::from(text),
    })
}

/// Liveness: the process accepts, reads and answers.
async fn get_health(_req: Request) -> Result<Reply, RedfishError> {
    Ok(Reply::Raw {
        content_type: TEXT,
        body: Bytes::from_static(b"ok\n"),
    })
}

/// Readiness: the state database takes writes and libvirt answers; 503 with
/// the reason otherwise.
async fn get_ready(req: Request) -> Result<Reply, RedfishError> {
    let app = &req.app;
    let (store, libvirt) = tokio::join!(
        tokio::time::timeout(READY_TIMEOUT, app.store.check_writable()),
        tokio::time::timeout(READY_TIMEOUT, app.hypervisor.ping()),
    );
    let mut reasons = Vec::new();
    match store {
        Ok(Ok(())) => {}
        Ok(Err(e)) => reasons.push(format!("state database not writable: {e}")),
        Err(_) => reasons.push("state database did not answer in time".to_owned()),
    }
    match libvirt {
        Ok(Ok(())) => {}
        Ok(Err(e)) => reasons.push(format!("libvirt unreachable: {e}")),
        Err(_) => reasons.push("libvirt did not answer in time".to_owned()),
    }
    if reasons.is_empty() {
        return Ok(Reply::Raw {
            content_type: TEXT,
            body: Bytes::from_static(b"ready\n"),
        });
    }
    let mut e = RedfishError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        Message::new(&base::SERVICE_TEMPORARILY_UNAVAILABLE, &["5"]).resolution(reasons.join("; ")),
    );
    e.retry_after = Some(5);
    Err(e)
}
