//! libvirt domain lifecycle events, turned into [`SystemEvent`]s on a broadcast
//! channel. libvirt dispatches callbacks from its default event loop, which runs
//! on a thread of its own; the callback only copies two integers and a UUID and
//! hands them to a non-blocking channel.

use std::ffi::{c_int, c_void, CStr};
use std::sync::Once;

use tokio::sync::broadcast;
use virt::connect::Connect;

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

fn lifecycle(event: c_int, detail: c_int) -> LifecycleEvent {
    use virt::sys;
    match event as u32 {
        sys::VIR_DOMAIN_EVENT_DEFINED => {
            if detail as u32 == sys::VIR_DOMAIN_EVENT_DEFINED_ADDED {
                LifecycleEvent::Created
            } else {
                LifecycleEvent::Defined
            }
        }
        sys::VIR_DOMAIN_EVENT_UNDEFINED => LifecycleEvent::Undefined,
        sys::VIR_DOMAIN_EVENT_STARTED => LifecycleEvent::Started,
        sys::VIR_DOMAIN_EVENT_SUSPENDED => LifecycleEvent::Suspended,
        sys::VIR_DOMAIN_EVENT_RESUMED => LifecycleEvent::Resumed,
        sys::VIR_DOMAIN_EVENT_STOPPED => {
            if detail as u32 == sys::VIR_DOMAIN_EVENT_STOPPED_CRASHED {
                LifecycleEvent::Crashed
            } else {
                LifecycleEvent::Stopped
            }
        }
        sys::VIR_DOMAIN_EVENT_SHUTDOWN => LifecycleEvent::ShuttingDown,
        sys::VIR_DOMAIN_EVENT_PMSUSPENDED => LifecycleEvent::Suspended,
        sys::VIR_DOMAIN_EVENT_CRASHED => LifecycleEvent::Crashed,
        _ => LifecycleEvent::Other,
    }
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

type GenericCallback = unsafe extern "C" fn(virt::sys::virConnectPtr, virt::sys::virDomainPtr, *mut c_void);

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
pub fn subscribe(conn: &Connect, tx: broadcast::Sender<SystemEvent>) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_codes_map_to_redfish_words() {
        use virt::sys;
        assert_eq!(
            lifecycle(sys::VIR_DOMAIN_EVENT_STARTED as c_int, 0),
            LifecycleEvent::Started
        );
        assert_eq!(
            lifecycle(
                sys::VIR_DOMAIN_EVENT_STOPPED as c_int,
                sys::VIR_DOMAIN_EVENT_STOPPED_CRASHED as c_int
            ),
            LifecycleEvent::Crashed
        );
        assert_eq!(
            lifecycle(sys::VIR_DOMAIN_EVENT_STOPPED as c_int, 0),
            LifecycleEvent::Stopped
        );
        assert_eq!(lifecycle(99, 0), LifecycleEvent::Other);
    }
}
