//! console-proxy's WebSocket sessions: a client's bytes after the upgrade, read with the proxy's
//! frame and message limits and sorted as the session sorts them (data, control, close, error).
#![no_main]

use console_proxy::fuzzing::{ws_session, MAX_MESSAGE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = ws_session(data);
    assert!(s.closed != s.error, "a session ends one way");
    let total: usize = s.data.iter().sum();
    assert!(total <= data.len(), "more data than bytes received");
    assert!(s.data.iter().all(|&n| n <= MAX_MESSAGE));
});
