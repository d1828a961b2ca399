//! libvirt domain events, turned into [`SystemEvent`]s on a broadcast channel.
//! The protocol client's reader thread delivers them; libvirt.so dispatches
//! callbacks from its default event loop, on a thread of its own. Either way the
//! handler only copies two integers and a UUID into a non-blocking channel.

use tokio::sync::broadcast;

use super::client::event_ids;
use super::wire;
use crate::model::{LifecycleEvent, SystemEvent};

/// A `VIR_DOMAIN_EVENT_*` event and detail in Redfish's words.
fn lifecycle(event: i32, detail: i32) -> LifecycleEvent {
    // virDomainEventType and the details bmcd tells apart (libvirt-domain.h).
    const DEFINED: i32 = 0;
    const DEFINED_ADDED: i32 = 0;
    const UNDEFINED: i32 = 1;
    const STARTED: i32 = 2;
    const SUSPENDED: i32 = 3;
    const RESUMED: i32 = 4;
    const STOPPED: i32 = 5;
    const STOPPED_CRASHED: i32 = 2;
    const SHUTDOWN: i32 = 6;
    const PMSUSPENDED: i32 = 7;
    const CRASHED: i32 = 8;
    match event {
        DEFINED if detail == DEFINED_ADDED => LifecycleEvent::Created,
        DEFINED => LifecycleEvent::Defined,
        UNDEFINED => LifecycleEvent::Undefined,
        STARTED => LifecycleEvent::Started,
        SUSPENDED | PMSUSPENDED => LifecycleEvent::Suspended,
        RESUMED => LifecycleEvent::Resumed,
        STOPPED if detail == STOPPED_CRASHED => LifecycleEvent::Crashed,
        STOPPED => LifecycleEvent::Stopped,
        SHUTDOWN => LifecycleEvent::ShuttingDown,
        CRASHED => LifecycleEvent::Crashed,
        _ => LifecycleEvent::Other,
    }
}

/// Registers for lifecycle and device events on a protocol connection; its
/// reader thread delivers them.
pub fn subscribe_protocol(conn: &wire::Connection, tx: broadcast::Sender<SystemEvent>) -> bool {
    conn.set_event_sink(Box::new(move |event| {
        let event = match event {
            wire::DomainEvent::Lifecycle { uuid, event, detail } => SystemEvent {
                system_id: uuid,
                event: lifecycle(event, detail),
            },
            wire::DomainEvent::Devices { uuid } => SystemEvent {
                system_id: uuid,
                event: LifecycleEvent::DevicesChanged,
            },
        };
        let _ = tx.send(event);
    }));
    if conn.register_domain_event(event_ids::LIFECYCLE).is_err() {
        return false;
    }
    for id in [
        event_ids::TRAY_CHANGE,
        event_ids::DEVICE_ADDED,
        event_ids::DEVICE_REMOVED,
    ] {
        if conn.register_domain_event(id).is_err() {
            tracing::debug!(event_id = id, "libvirt device event not available");
        }
    }
    true
}

#[cfg(feature = "libvirt-library")]
pub use library::{start_event_loop, subscribe_library};

#[cfg(feature = "libvirt-library")]
mod library {
    use std::ffi::{c_int, c_void, CStr};
    use std::sync::Once;

    use tokio::sync::broadcast;
    use virt::connect::Connect;

    use super::lifecycle;
    use crate::model::{LifecycleEvent, SystemEvent};

    static EVENT_LOOP: Once = Once::new();

    /// Registers libvirt's default event loop implementation and starts the thread
    /// that runs it. Must happen before the connection is opened; idempotent.
    pub fn start_event_loop() {
        EVENT_LOOP.call_once(|| {
            if virt::event::event_register_default_impl().is_err() {
                tracing::warn!(
                    "libvirt event loop unavailable; changes made outside bmcd are seen on the next read only"
                );
                return;
            }
            let spawned = std::thread::Builder::new()
                .name("libvirt-events".into())
                .spawn(|| loop {
                    if virt::event::event_run_default_impl().is_err() {
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the libvirt event thread");
            }
        });
    }

    /// The opaque pointer libvirt hands back to the callback.
    type Opaque = broadcast::Sender<SystemEvent>;

    unsafe extern "C" fn on_lifecycle(
        _conn: virt::sys::virConnectPtr,
        dom: virt::sys::virDomainPtr,
        event: c_int,
        detail: c_int,
        opaque: *mut c_void,
    ) -> c_int {
        if opaque.is_null() || dom.is_null() {
            return 0;
        }
        // SAFETY: `opaque` is the Box<Opaque> leaked in `subscribe`; libvirt keeps it
        // alive until `free_opaque` runs, after the last callback.
        let tx = unsafe { &*(opaque as *const Opaque) };
        // SAFETY: `dom` is this callback's domain.
        let Some(uuid) = (unsafe { uuid_of(dom) }) else {
            return 0;
        };
        // No receivers is fine: nobody is listening right now.
        let _ = tx.send(SystemEvent {
            system_id: uuid,
            event: lifecycle(event, detail),
        });
        0
    }

    /// The domain's UUID, from inside a callback.
    ///
    /// # Safety
    /// `dom` must be the domain pointer libvirt passed to the running callback.
    unsafe fn uuid_of(dom: virt::sys::virDomainPtr) -> Option<String> {
        let mut buf = [0 as std::ffi::c_char; 37];
        // SAFETY: `dom` is valid for the duration of the callback and `buf` holds
        // VIR_UUID_STRING_BUFLEN (37) bytes, as virDomainGetUUIDString requires.
        let rc = unsafe { virt::sys::virDomainGetUUIDString(dom, buf.as_mut_ptr()) };
        if rc < 0 {
            return None;
        }
        // SAFETY: on success libvirt wrote a NUL-terminated string into `buf`.
        Some(
            unsafe { CStr::from_ptr(buf.as_ptr()) }
                .to_string_lossy()
                .into_owned(),
        )
    }

    /// A device came or went (`DEVICE_ADDED`, `DEVICE_REMOVED`): a USB stick plugged
    /// in or pulled out by something other than bmcd, say.
    unsafe extern "C" fn on_device(
        _conn: virt::sys::virConnectPtr,
        dom: virt::sys::virDomainPtr,
        _alias: *const std::ffi::c_char,
        opaque: *mut c_void,
    ) -> c_int {
        if opaque.is_null() || dom.is_null() {
            return 0;
        }
        // SAFETY: as in `on_lifecycle`.
        let tx = unsafe { &*(opaque as *const Opaque) };
        // SAFETY: `dom` is this callback's domain.
        if let Some(uuid) = unsafe { uuid_of(dom) } {
            let _ = tx.send(SystemEvent {
                system_id: uuid,
                event: LifecycleEvent::DevicesChanged,
            });
        }
        0
    }

    /// A CD drive's tray opened or closed (`TRAY_CHANGE`): its medium changes.
    unsafe extern "C" fn on_tray(
        conn: virt::sys::virConnectPtr,
        dom: virt::sys::virDomainPtr,
        alias: *const std::ffi::c_char,
        _reason: c_int,
        opaque: *mut c_void,
    ) -> c_int {
        // SAFETY: the same arguments, minus the reason.
        unsafe { on_device(conn, dom, alias, opaque) }
    }

    unsafe extern "C" fn free_opaque(opaque: *mut c_void) {
        if !opaque.is_null() {
            // SAFETY: the pointer came from Box::into_raw in `subscribe` and libvirt
            // calls this exactly once.
            drop(unsafe { Box::from_raw(opaque as *mut Opaque) });
        }
    }

    type GenericCallback =
        unsafe extern "C" fn(virt::sys::virConnectPtr, virt::sys::virDomainPtr, *mut c_void);

    /// Registers one callback for one event id, with its own copy of `tx`.
    ///
    /// # Safety
    /// `cb` must be a function with the signature libvirt documents for `event_id`,
    /// cast to the generic callback type (which is how the C API takes them all).
    unsafe fn register(conn: &Connect, event_id: u32, cb: GenericCallback, tx: &Opaque) -> bool {
        let opaque = Box::into_raw(Box::new(tx.clone())) as *mut c_void;
        // SAFETY: the caller vouches for `cb`; `opaque` is freed by `free_opaque`.
        let rc = unsafe {
            virt::sys::virConnectDomainEventRegisterAny(
                conn.as_ptr(),
                std::ptr::null_mut(),
                event_id as c_int,
                Some(cb),
                opaque,
                Some(free_opaque),
            )
        };
        if rc < 0 {
            // SAFETY: registration failed, so libvirt did not take ownership.
            drop(unsafe { Box::from_raw(opaque as *mut Opaque) });
            return false;
        }
        true
    }

    /// Subscribes `tx` to every domain's lifecycle events on `conn`, and to the
    /// device events that change its virtual media (tray moves, devices added or
    /// removed). Only the lifecycle events are essential.
    pub fn subscribe_library(conn: &Connect, tx: broadcast::Sender<SystemEvent>) -> bool {
        type Lifecycle = unsafe extern "C" fn(
            virt::sys::virConnectPtr,
            virt::sys::virDomainPtr,
            c_int,
            c_int,
            *mut c_void,
        ) -> c_int;
        type Tray = unsafe extern "C" fn(
            virt::sys::virConnectPtr,
            virt::sys::virDomainPtr,
            *const std::ffi::c_char,
            c_int,
            *mut c_void,
        ) -> c_int;
        type Device = unsafe extern "C" fn(
            virt::sys::virConnectPtr,
            virt::sys::virDomainPtr,
            *const std::ffi::c_char,
            *mut c_void,
        ) -> c_int;
        // SAFETY: each callback has the signature libvirt documents for its event
        // id (virConnectDomainEventCallback, ...TrayChangeCallback,
        // ...DeviceAddedCallback, ...DeviceRemovedCallback).
        unsafe {
            let lifecycle = std::mem::transmute::<Lifecycle, GenericCallback>(on_lifecycle);
            if !register(conn, virt::sys::VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle, &tx) {
                return false;
            }
            let tray = std::mem::transmute::<Tray, GenericCallback>(on_tray);
            let device = std::mem::transmute::<Device, GenericCallback>(on_device);
            let others = [
                (virt::sys::VIR_DOMAIN_EVENT_ID_TRAY_CHANGE, tray),
                (virt::sys::VIR_DOMAIN_EVENT_ID_DEVICE_ADDED, device),
                (virt::sys::VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, device),
            ];
            for (id, cb) in others {
                if !register(conn, id, cb, &tx) {
                    tracing::debug!(event_id = id, "libvirt device event not available");
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_codes_map_to_redfish_words() {
        assert_eq!(lifecycle(2, 0), LifecycleEvent::Started);
        assert_eq!(lifecycle(5, 2), LifecycleEvent::Crashed);
        assert_eq!(lifecycle(5, 0), LifecycleEvent::Stopped);
        assert_eq!(lifecycle(0, 0), LifecycleEvent::Created);
        assert_eq!(lifecycle(0, 1), LifecycleEvent::Defined);
        assert_eq!(lifecycle(99, 0), LifecycleEvent::Other);
    }

    #[cfg(feature = "libvirt-library")]
    #[test]
    fn lifecycle_numbers_match_libvirt_headers() {
        use virt::sys;
        let cases = [
            (sys::VIR_DOMAIN_EVENT_STARTED, 0, LifecycleEvent::Started),
            (
                sys::VIR_DOMAIN_EVENT_STOPPED,
                sys::VIR_DOMAIN_EVENT_STOPPED_CRASHED,
                LifecycleEvent::Crashed,
            ),
            (
                sys::VIR_DOMAIN_EVENT_DEFINED,
                sys::VIR_DOMAIN_EVENT_DEFINED_ADDED,
                LifecycleEvent::Created,
            ),
            (sys::VIR_DOMAIN_EVENT_SHUTDOWN, 0, LifecycleEvent::ShuttingDown),
            (sys::VIR_DOMAIN_EVENT_PMSUSPENDED, 0, LifecycleEvent::Suspended),
            (sys::VIR_DOMAIN_EVENT_CRASHED, 0, LifecycleEvent::Crashed),
            (sys::VIR_DOMAIN_EVENT_UNDEFINED, 0, LifecycleEvent::Undefined),
            (sys::VIR_DOMAIN_EVENT_RESUMED, 0, LifecycleEvent::Resumed),
        ];
        for (event, detail, want) in cases {
            assert_eq!(
                lifecycle(event as i32, detail as i32),
                want,
                "event {event}, detail {detail}"
            );
        }
    }
}
