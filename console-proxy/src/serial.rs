//! The serial console of a domain through libvirt (`virDomainOpenConsole`).
//!
//! `virt` calls block, so each session's console runs on a thread of its own
//! with its own libvirt connection; bytes cross to the async side on bounded
//! channels. The stream is non-blocking and polled every few milliseconds:
//! libvirt's default event loop moves incoming data into it; [`open`] makes
//! sure it runs (see [`crate::start_libvirt_event_loop`]) before the
//! connection opens.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use virt::connect::Connect;
use virt::stream::Stream;

const POLL: Duration = Duration::from_millis(10);

/// An open serial console.
pub struct SerialConsole {
    pub to_guest: mpsc::Sender<Bytes>,
    pub from_guest: mpsc::Receiver<Bytes>,
    pub guard: StopGuard,
}

/// Stops the console thread when dropped.
pub struct StopGuard(Arc<AtomicBool>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Opens the first serial console of domain `uuid` on `uri`.
pub async fn open(uri: String, uuid: String) -> Result<SerialConsole, String> {
    crate::start_libvirt_event_loop().map_err(|e| format!("libvirt event loop unavailable: {e}"))?;
    let (to_guest, mut outgoing) = mpsc::channel::<Bytes>(64);
    let (incoming, from_guest) = mpsc::channel::<Bytes>(64);
    let (ready_tx, ready) = oneshot::channel::<Result<(), String>>();
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = Arc::clone(&stop);
    std::thread::Builder::new()
        .name("serial-console".into())
        .spawn(move || {
            let opened = (|| -> Result<(Connect, Stream), String> {
                let conn = Connect::open(Some(&uri))
                    .map_err(|e| format!("cannot open libvirt connection: {}", e.message()))?;
                let dom = match conn.lookup_domain_by_uuid_string(&uuid) {
                    Ok(d) => d,
                    Err(e) => {
                        return Err(format!("no such domain: {}", e.message()));
                    }
                };
                let stream = match Stream::new(&conn, virt::sys::VIR_STREAM_NONBLOCK) {
                    Ok(s) => s,
                    Err(e) => {
                        return Err(format!("cannot make a stream: {}", e.message()));
                    }
                };
                if let Err(e) = dom.open_console(None, &stream, 0) {
                    let _ = stream.abort();
                    return Err(format!("cannot open the console: {}", e.message()));
                }
                Ok((conn, stream))
            })();
            let (conn, stream) = match opened {
                Ok(x) => x,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            pump(&stream, &mut outgoing, &incoming, &thread_stop);
            let _ = stream.abort();
            drop(conn);
        })
        .map_err(|e| format!("cannot start a console thread: {e}"))?;
    match ready.await {
        Ok(Ok(())) => Ok(SerialConsole {
            to_guest,
            from_guest,
            guard: StopGuard(stop),
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("the console thread ended".into()),
    }
}

/// Moves bytes both ways until either side ends or `stop` is set.
fn pump(
    stream: &Stream,
    outgoing: &mut mpsc::Receiver<Bytes>,
    incoming: &mpsc::Sender<Bytes>,
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    while !stop.load(Ordering::SeqCst) {
        let mut busy = false;
        // Guest -> client.
        loop {
            match stream.recv(&mut buf) {
                Ok(n) if n > 0 => {
                    busy = true;
                    let chunk = Bytes::copy_from_slice(buf.get(..n as usize).unwrap_or_default());
                    if incoming.blocking_send(chunk).is_err() {
                        return;
                    }
                }
                Ok(0) => return, // end of stream: the domain stopped
                Ok(_) => break,  // -2: nothing to read now
                Err(e) => {
                    tracing::debug!(error = %e.message(), "serial console stream ended");
                    return;
                }
            }
        }
        // Client -> guest.
        match outgoing.try_recv() {
            Ok(data) => {
                busy = true;
                let mut rest: &[u8] = &data;
                while !rest.is_empty() {
                    match stream.send(rest) {
                        Ok(n) if n > 0 => rest = rest.get(n as usize..).unwrap_or_default(),
                        Ok(_) => {
                            if stop.load(Ordering::SeqCst) {
                                return;
                            }
                            std::thread::sleep(POLL);
                        }
                        Err(_) => return,
                    }
                }
            }
            Err(mpsc::error::TryRecvError::Empty) => {}
            Err(mpsc::error::TryRecvError::Disconnected) => return,
        }
        if !busy {
            std::thread::sleep(POLL);
        }
    }
}
