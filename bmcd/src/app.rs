//! Shared state of the running service, handed to every request.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::auth::Authority;
use crate::boot::BootService;
use crate::consoles::ConsoleService;
use crate::events::EventService;
use crate::logs::Logs;
use crate::media::MediaService;
use crate::model::Hypervisor;
use crate::router::Router;
use crate::store::Store;
use crate::tasks::Tasks;

/// Facts about this BMC itself.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    /// `ServiceRoot.UUID`, kept across restarts.
    pub uuid: String,
    pub host_name: String,
    pub https: SocketAddr,
    pub http_redirect: Option<SocketAddr>,
    pub firmware_version: &'static str,
    pub libvirt_uri: String,
}

pub struct App {
    /// The HTTPS certificate and the client CAs (CertificateService).
    pub certificates: Arc<crate::certificates::Certificates>,
    pub hypervisor: Arc<dyn Hypervisor>,
    /// The libvirt hosts behind `hypervisor`: their state and placement.
    pub hosts: Arc<crate::libvirt::hosts::HostPool>,
    pub auth: Arc<Authority>,
    pub store: Store,
    pub boot: Arc<BootService>,
    pub tasks: Arc<Tasks>,
    pub media: Arc<MediaService>,
    pub firmware: Arc<crate::firmware::FirmwareService>,
    pub events: Arc<EventService>,
    pub logs: Arc<Logs>,
    pub consoles: Arc<ConsoleService>,
    pub router: Router,
    /// The personas' own routes (OEM resources and actions).
    pub personas: crate::personas::Routers,
    /// The listeners of the per-VM BMC endpoints.
    pub endpoints: crate::personas::endpoints::EndpointManager,
    /// `Manager.Reset` of the BMC and of each per-VM BMC.
    pub manager_resets: crate::manager_reset::ManagerResets,
    pub service: ServiceInfo,
    pub max_body_bytes: usize,
    /// Event subscriptions that may exist (`max-subscriptions`).
    pub max_subscriptions: usize,
    /// Request rate limits per client address and per user.
    pub rate_limits: crate::rate_limit::RateLimits,
    /// Serializes conditional writes (`If-Match`), so that of several writers
    /// holding the same ETag exactly one succeeds.
    pub conditional_writes: tokio::sync::Mutex<()>,
    /// System composition: profiles, images, quotas and life cycle.
    pub composition: crate::composition::Composer,
}
