//! Virtual media: the CD drives of a system as `VirtualMedia` slots. Inserting
//! an image downloads it (a Task: bounded, hashed, cached by content), then puts
//! it into the drive of the running system. A failure at any step leaves the
//! drive as it was and ends the task in `Exception` with the reason.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::error::{Message, RedfishError};
use crate::model::{ComputerSystem, DriveKind, Hypervisor};
use crate::outbound::{self as fetch, FetchError, FetchRequest};
use crate::registries::base;
use crate::store::{MediaRecord, Store, TaskRecord};
use crate::tasks::{TaskState, Tasks};

/// What kind of medium a slot takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    /// A CD drive of the system: the medium changes, the drive stays.
    Cd,
    /// A USB port: a read-only USB stick is plugged in and pulled out.
    Usb,
}

/// One virtual media slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// `Cd`, `Cd2`, ... in device order; `Usb`.
    pub id: String,
    pub kind: SlotKind,
    /// The CD drive's target device (`sda`, `hdc`); none for USB.
    pub drive: Option<String>,
}

/// What a slot holds right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotState {
    pub slot: Slot,
    pub inserted: bool,
    /// The URL it was inserted from, or the file libvirt reports when the
    /// medium was put there by something other than this BMC.
    pub image: Option<String>,
    pub write_protected: bool,
    /// An insert is downloading into this slot.
    pub busy: bool,
    /// HTTPS images must present a certificate the slot's certificates vouch for.
    pub verify_certificate: bool,
}

pub fn slots(sys: &ComputerSystem) -> Vec<Slot> {
    let mut out: Vec<Slot> = sys
        .drives
        .iter()
        .filter(|d| d.kind == DriveKind::Cdrom)
        .enumerate()
        .map(|(i, d)| Slot {
            id: if i == 0 {
                "Cd".to_owned()
            } else {
                format!("Cd{}", i + 1)
            },
            kind: SlotKind::Cd,
            drive: Some(d.id.clone()),
        })
        .collect();
    // Every BMC offers a virtual CD: a system defined without a CD drive still
    // has the slot, and gets a drive when something is first put in it.
    if out.is_empty() && !sys.direct_kernel_boot {
        out.push(Slot {
            id: "Cd".to_owned(),
            kind: SlotKind::Cd,
            drive: None,
        });
    }
    if sys.usb_controller {
        out.push(Slot {
            id: "Usb".to_owned(),
            kind: SlotKind::Usb,
            drive: None,
        });
    }
    out
}

/// The USB disk that holds `path`, if plugged in.
fn usb_drive_with(sys: &ComputerSystem, path: &str) -> Option<String> {
    sys.drives
        .iter()
        .find(|d| d.kind == DriveKind::Disk && d.bus == "usb" && d.source.as_deref() == Some(path))
        .map(|d| d.id.clone())
}

/// How an attached medium is taken out again.
enum Undo {
    EmptyCd(String),
    Unplug(String),
}

/// An `InsertMedia` request, checked.
#[derive(Debug, Clone)]
pub struct Insert {
    pub image: String,
    pub user_name: Option<String>,
    pub password: Option<String>,
    pub write_protected: bool,
}

pub struct MediaService {
    hypervisor: Arc<dyn Hypervisor>,
    events: Arc<crate::events::EventService>,
    store: Store,
    tasks: Arc<Tasks>,
    cache_dir: PathBuf,
    max_image_bytes: u64,
    busy: Mutex<HashSet<(String, String)>>,
    /// What each system's slots held when last looked at (slot id, image), to
    /// tell changes made outside bmcd (see [`MediaService::watch`]).
    seen: Mutex<HashMap<String, SlotContents>>,
}

/// Each slot's id and the image it holds.
type SlotContents = Vec<(String, Option<String>)>;

/// How long after start-up the watcher first looks at every system, so that
/// the first look does not compete with the first requests.
const FIRST_LOOK_AFTER: Duration = Duration::from_secs(2);

/// Refuses URLs that can never work, before a task is made for them.
pub fn check_image_url(url: &str) -> Result<(), RedfishError> {
    let bad = |why: &str| {
        RedfishError::bad_request(
            Message::new(
                &base::ACTION_PARAMETER_VALUE_FORMAT_ERROR,
                &[url, "Image", "VirtualMedia.InsertMedia"],
            )
            .resolution(why),
        )
    };
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(bad("Give the image as an http:// or https:// URL."));
    }
    match fetch::check_url(url) {
        Ok(()) => Ok(()),
        Err(FetchError::Forbidden(why)) => Err(RedfishError::bad_request(
            Message::new(
                &base::ACTION_PARAMETER_VALUE_ERROR,
                &["Image", "VirtualMedia.InsertMedia"],
            )
            .resolution(format!("The BMC does not fetch from this address: {why}.")),
        )),
        Err(e) => Err(bad(&e.to_string())),
    }
}

fn fetch_failure(e: &FetchError) -> Message {
    let text = e.to_string();
    match e {
        FetchError::NotFound => Message::new(&base::RESOURCE_MISSING_AT_URI, &["Image"]).resolution(text),
        FetchError::Unauthorized => Message::new(&base::ACCESS_DENIED, &["Image"]).resolution(text),
        FetchError::Connect(_) | FetchError::Tls(_) | FetchError::Timeout => {
            Message::new(&base::COULD_NOT_ESTABLISH_CONNECTION, &["Image"]).resolution(text)
        }
        FetchError::TooLarge { .. } => Message::new(&base::PAYLOAD_TOO_LARGE, &[]).resolution(text),
        FetchError::Io(_) => Message::new(&base::INSUFFICIENT_STORAGE, &[]).resolution(text),
        _ => Message::new(&base::OPERATION_FAILED, &[]).resolution(text),
    }
}

impl MediaService {
    pub fn new(
        hypervisor: Arc<dyn Hypervisor>,
        store: Store,
        tasks: Arc<Tasks>,
        cache_dir: PathBuf,
        max_image_bytes: u64,
        events: Arc<crate::events::EventService>,
    ) -> Arc<MediaService> {
        Arc::new(MediaService {
            hypervisor,
            events,
            store,
            tasks,
            cache_dir,
            max_image_bytes,
            busy: Mutex::new(HashSet::new()),
            seen: Mutex::new(HashMap::new()),
        })
    }

    /// Notes what a system's slots hold now. Returns the slots whose medium
    /// changed since the last look by something other than bmcd (`own` false:
    /// slots bmcd is changing are left to bmcd), none on the first look.
    async fn look(&self, system_id: &str, own: bool) -> Vec<Slot> {
        let sys = match self.hypervisor.system(system_id.to_owned()).await {
            Ok(s) => s,
            Err(_) => {
                self.seen
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(system_id);
                return Vec::new();
            }
        };
        let Ok(states) = self.states(&sys).await else {
            return Vec::new();
        };
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let before = seen.get(system_id).cloned();
        let mut now = Vec::with_capacity(states.len());
        let mut changed = Vec::new();
        for st in states {
            let image = if st.inserted { st.image.clone() } else { None };
            let old = before
                .as_ref()
                .and_then(|b| b.iter().find(|(id, _)| *id == st.slot.id).map(|(_, i)| i.clone()));
            if st.busy && !own {
                // bmcd is changing this slot: it tells subscribers itself.
                now.push((st.slot.id.clone(), old.unwrap_or(image)));
                continue;
            }
            if before.is_some() && old.as_ref() != Some(&image) {
                changed.push(st.slot.clone());
            }
            now.push((st.slot.id.clone(), image));
        }
        seen.insert(system_id.to_owned(), now);
        changed
    }

    /// Follows the hypervisor's events and tells subscribers when a slot's
    /// medium changed outside bmcd (`virsh change-media`, a USB stick attached
    /// by hand, a definition edited): `ResourceChanged` for the slot, as for
    /// bmcd's own inserts and ejects.
    pub fn watch(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        use crate::model::LifecycleEvent as E;
        let this = Arc::clone(self);
        let mut events = self.hypervisor.events();
        tokio::spawn(async move {
            tokio::time::sleep(FIRST_LOOK_AFTER).await;
            if let Ok(systems) = this.hypervisor.list_systems().await {
                for s in systems {
                    this.look(&s.id, false).await;
                }
            }
            loop {
                let ev = match events.recv().await {
                    Ok(ev) => ev,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                match ev.event {
                    E::Created | E::Defined | E::DevicesChanged | E::Started | E::Stopped => {
                        for slot in this.look(&ev.system_id, false).await {
                            tracing::info!(system_id = %ev.system_id, slot = %slot.id, "virtual media changed outside the BMC");
                            this.publish_change(&ev.system_id, &slot).await;
                        }
                    }
                    E::Undefined => {
                        this.seen
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remove(&ev.system_id);
                    }
                    _ => {}
                }
            }
        })
    }

    /// Tells subscribers that bmcd changed a slot's content.
    async fn media_changed(&self, system_id: &str, slot: &Slot) {
        // What the watcher compares against is now this.
        self.look(system_id, true).await;
        self.publish_change(system_id, slot).await;
    }

    async fn publish_change(&self, system_id: &str, slot: &Slot) {
        use crate::registries::resource_event as re;
        let ev = self.events.event(
            re::PREFIX,
            re::VERSION,
            &re::RESOURCE_CHANGED,
            &[],
            format!("/redfish/v1/Systems/{system_id}/VirtualMedia/{}", slot.id),
            "VirtualMedia",
        );
        self.events.publish_or_log(ev).await;
    }

    fn is_busy(&self, system: &str, slot: &str) -> bool {
        self.busy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&(system.to_owned(), slot.to_owned()))
    }

    fn set_busy(&self, system: &str, slot: &str, busy: bool) -> bool {
        let mut set = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (system.to_owned(), slot.to_owned());
        if busy {
            set.insert(key)
        } else {
            set.remove(&key)
        }
    }

    pub async fn states(&self, sys: &ComputerSystem) -> Result<Vec<SlotState>, RedfishError> {
        let records = self.store.media(sys.id.clone()).await?;
        let mut verify = Vec::new();
        for slot in slots(sys) {
            verify.push(
                self.store
                    .media_verify_certificate(sys.id.clone(), slot.id.clone())
                    .await?,
            );
        }
        Ok(slots(sys)
            .into_iter()
            .zip(verify)
            .map(|(slot, verify_certificate)| {
                let record = records.iter().find(|r| r.slot == slot.id);
                let source = match (&slot.drive, record) {
                    (Some(drive), _) => sys
                        .drives
                        .iter()
                        .find(|d| &d.id == drive)
                        .and_then(|d| d.source.clone()),
                    // A USB slot holds what bmcd plugged in, if it is still there.
                    (None, Some(r)) if slot.kind == SlotKind::Usb => {
                        usb_drive_with(sys, &r.cache_path).map(|_| r.cache_path.clone())
                    }
                    // A CD slot without a drive yet is empty.
                    (None, _) => None,
                };
                // The drive's real content decides; the record only names where
                // the BMC's own medium came from.
                let (image, write_protected) = match (&source, record) {
                    (Some(src), Some(r)) if *src == r.cache_path => {
                        (Some(r.image.clone()), r.write_protected)
                    }
                    (Some(src), _) => (Some(format!("file://{src}")), true),
                    (None, _) => (None, true),
                };
                SlotState {
                    verify_certificate,
                    busy: self.is_busy(&sys.id, &slot.id),
                    inserted: source.is_some(),
                    image,
                    write_protected,
                    slot,
                }
            })
            .collect())
    }

    /// Starts an insert; returns the task that follows it.
    pub async fn insert(
        self: &Arc<Self>,
        sys: &ComputerSystem,
        slot: &Slot,
        target_uri: &str,
        req: Insert,
    ) -> Result<TaskRecord, RedfishError> {
        check_image_url(&req.image)?;
        if !self.set_busy(&sys.id, &slot.id, true) {
            return Err(RedfishError::new(
                hyper::StatusCode::CONFLICT,
                Message::new(&base::RESOURCE_IN_USE, &[])
                    .resolution("An image is already being inserted into this slot; wait for its task."),
            ));
        }
        let task = match self.tasks.create("Insert virtual media", target_uri).await {
            Ok(t) => t,
            Err(e) => {
                self.set_busy(&sys.id, &slot.id, false);
                return Err(e.into());
            }
        };
        let this = Arc::clone(self);
        let (system_id, slot) = (sys.id.clone(), slot.clone());
        let task_id = task.id;
        tokio::spawn(async move {
            let outcome = this.download_and_insert(&system_id, &slot, task_id, req).await;
            this.set_busy(&system_id, &slot.id, false);
            let (state, message) = match outcome {
                Ok(()) => (TaskState::Completed, Message::new(&base::SUCCESS, &[])),
                Err(m) => (TaskState::Exception, m),
            };
            if let Err(e) = this.tasks.finish(task_id, state, message).await {
                tracing::error!(task = task_id, error = %e, "could not record the end of a task");
            }
        });
        Ok(task)
    }

    async fn download_and_insert(
        &self,
        system_id: &str,
        slot: &Slot,
        task_id: i64,
        req: Insert,
    ) -> Result<(), Message> {
        let tasks = Arc::clone(&self.tasks);
        let progress = move |got: u64, total: Option<u64>| {
            if let Some(total) = total.filter(|t| *t > 0) {
                tasks.progress(task_id, ((got * 90) / total) as u8);
            }
        };
        let store_failed = |e: crate::store::StoreError| {
            Message::new(&base::OPERATION_FAILED, &[])
                .resolution(format!("Reading the slot's settings failed: {e}"))
        };
        let verify_certificate = self
            .store
            .media_verify_certificate(system_id.to_owned(), slot.id.clone())
            .await
            .map_err(store_failed)?;
        let ca_certificates = self
            .store
            .media_certificates(system_id.to_owned(), slot.id.clone())
            .await
            .map_err(store_failed)?
            .into_iter()
            .map(|(_, pem)| pem)
            .collect();
        let fetched = fetch::fetch(
            &FetchRequest {
                url: req.image.clone(),
                user_name: req.user_name.clone(),
                password: req.password.clone(),
                verify_certificate,
                ca_certificates,
                max_bytes: self.max_image_bytes,
                timeout: Duration::from_secs(3600),
            },
            &self.cache_dir,
            &progress,
        )
        .await
        .map_err(|e| {
            tracing::warn!(system_id, slot = %slot.id, error = %e, "virtual media download failed");
            fetch_failure(&e)
        })?;
        let path = fetched.path.to_string_lossy().into_owned();
        let attach_failed = |e: crate::model::HypervisorError| {
            tracing::warn!(system_id, slot = %slot.id, error = %e, "attaching virtual media failed");
            Message::new(&base::OPERATION_FAILED, &[]).resolution(format!("Attaching the image failed: {e}"))
        };
        // How to take the medium out again if recording it fails.
        let undo: Undo = match (slot.kind, &slot.drive) {
            (SlotKind::Cd, drive) => {
                let probe = fetched.path.clone();
                let is_iso = tokio::task::spawn_blocking(move || fetch::looks_like_iso9660(&probe))
                    .await
                    .unwrap_or(false);
                if !is_iso {
                    return Err(Message::new(
                        &base::ACTION_PARAMETER_VALUE_ERROR,
                        &["Image", "VirtualMedia.InsertMedia"],
                    )
                    .resolution("The downloaded file is not an ISO 9660 image; a CD slot needs one."));
                }
                match drive {
                    Some(drive) => {
                        self.hypervisor
                            .change_media(system_id.to_owned(), drive.clone(), Some(path.clone()))
                            .await
                            .map_err(attach_failed)?;
                        Undo::EmptyCd(drive.clone())
                    }
                    None => Undo::EmptyCd(
                        self.hypervisor
                            .add_cd_drive(system_id.to_owned(), Some(path.clone()))
                            .await
                            .map_err(attach_failed)?,
                    ),
                }
            }
            _ => {
                // A stick already in this slot comes out first.
                let old = self
                    .store
                    .media(system_id.to_owned())
                    .await
                    .ok()
                    .and_then(|rs| rs.into_iter().find(|r| r.slot == slot.id));
                if let Some(old) = old {
                    let sys = self
                        .hypervisor
                        .system(system_id.to_owned())
                        .await
                        .map_err(attach_failed)?;
                    if let Some(drive) = usb_drive_with(&sys, &old.cache_path) {
                        self.hypervisor
                            .unplug_disk(system_id.to_owned(), drive)
                            .await
                            .map_err(attach_failed)?;
                    }
                }
                let drive = self
                    .hypervisor
                    .plug_usb_disk(system_id.to_owned(), path.clone())
                    .await
                    .map_err(attach_failed)?;
                Undo::Unplug(drive)
            }
        };
        let record = MediaRecord {
            system_id: system_id.to_owned(),
            slot: slot.id.clone(),
            image: req.image,
            cache_path: path,
            sha256: fetched.sha256,
            write_protected: req.write_protected,
        };
        if let Err(e) = self.store.set_media(record).await {
            // Keep the drive and the record in step.
            let _ = match undo {
                Undo::EmptyCd(drive) => {
                    self.hypervisor
                        .change_media(system_id.to_owned(), drive, None)
                        .await
                }
                Undo::Unplug(drive) => self.hypervisor.unplug_disk(system_id.to_owned(), drive).await,
            };
            return Err(Message::new(&base::OPERATION_FAILED, &[])
                .resolution(format!("Recording the image failed: {e}")));
        }
        tracing::info!(system_id, slot = %slot.id, size = fetched.size, "virtual media inserted");
        self.media_changed(system_id, slot).await;
        Ok(())
    }

    pub async fn eject(&self, sys: &ComputerSystem, slot: &Slot) -> Result<(), RedfishError> {
        if !self.set_busy(&sys.id, &slot.id, true) {
            return Err(RedfishError::new(
                hyper::StatusCode::CONFLICT,
                Message::new(&base::RESOURCE_IN_USE, &[])
                    .resolution("An insert is in progress; wait for its task."),
            ));
        }
        let result = self.eject_now(sys, slot).await;
        self.set_busy(&sys.id, &slot.id, false);
        result
    }

    async fn eject_now(&self, sys: &ComputerSystem, slot: &Slot) -> Result<(), RedfishError> {
        match &slot.drive {
            Some(drive) => {
                self.hypervisor
                    .change_media(sys.id.clone(), drive.clone(), None)
                    .await?
            }
            // A CD slot without a drive holds nothing to take out.
            None if slot.kind == SlotKind::Cd => {}
            None => {
                let records = self.store.media(sys.id.clone()).await?;
                if let Some(r) = records.iter().find(|r| r.slot == slot.id) {
                    if let Some(drive) = usb_drive_with(sys, &r.cache_path) {
                        self.hypervisor.unplug_disk(sys.id.clone(), drive).await?;
                    }
                }
            }
        }
        self.store.delete_media(sys.id.clone(), slot.id.clone()).await?;
        tracing::info!(system_id = %sys.id, slot = %slot.id, "virtual media ejected");
        self.media_changed(&sys.id, slot).await;
        Ok(())
    }
}
