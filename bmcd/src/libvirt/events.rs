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
    let mut buf = [0 as std::ffi::c_char; 37];
    // SAFETY: `dom` is valid for the duration of the callback and `buf` holds
    // VIR_UUID_STRING_BUFLEN (37) bytes, as virDomainGetUUIDString requires.
    let rc = unsafe { virt::sys::virDomainGetUUIDString(dom, buf.as_mut_ptr()) };
    if rc < 0 {
        return 0;
    }
    // SAFETY: on success libvirt wrote a NUL-terminated string into `buf`.
    let uuid = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    // No receivers is fine: nobody is listening right now.
    let _ = tx.send(SystemEvent {
        system_id: uuid,
        event: lifecycle(event, detail),
    });
    0
}

unsafe extern "C" fn free_opaque(opaque: *mut c_void) {
    if !opaque.is_null() {
        // SAFETY: the pointer came from Box::into_raw in `subscribe` and libvirt
        // calls this exactly once.
        drop(unsafe { Box::from_raw(opaque as *mut Opaque) });
    }
}

/// Subscribes `tx` to every domain's lifecycle events on `conn`.
pub fn subscribe(conn: &Connect, tx: broadcast::Sender<SystemEvent>) -> bool {
    let opaque = Box::into_raw(Box::new(tx)) as *mut c_void;
    // SAFETY: the lifecycle callback has the signature libvirt documents for
    // VIR_DOMAIN_EVENT_ID_LIFECYCLE; the generic pointer type is how the C API
    // takes every callback kind. `opaque` is freed by `free_opaque`.
    let rc = unsafe {
        let cb: virt::sys::virConnectDomainEventGenericCallback = Some(std::mem::transmute::<
            unsafe extern "C" fn(
                virt::sys::virConnectPtr,
                virt::sys::virDomainPtr,
                c_int,
                c_int,
                *mut c_void,
            ) -> c_int,
            unsafe extern "C" fn(virt::sys::virConnectPtr, virt::sys::virDomainPtr, *mut c_void),
        >(on_lifecycle));
        virt::sys::virConnectDomainEventRegisterAny(
            conn.as_ptr(),
            std::ptr::null_mut(),
            virt::sys::VIR_DOMAIN_EVENT_ID_LIFECYCLE as c_int,
            cb,
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
