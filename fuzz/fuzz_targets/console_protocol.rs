//! The console redeem protocol (one JSON object per line on bmcd's console socket): what bmcd
//! reads from console-proxy (`Redeem`, `Closed`) and console-proxy from bmcd (`Answer`). What
//! parses serializes and parses back to the same value. A request line (`Request::parse`: a
//! `Redeem` or an `AuthorizeSerial`) too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redfin_console_protocol::{Answer, Closed, Redeem, Request, MAX_LINE_BYTES};
use serde::de::DeserializeOwned;
use serde::Serialize;

fn round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(line: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<T>(line) {
        let text = serde_json::to_string(&v).expect("serializes");
        assert!(!text.contains('\n'), "one line");
        assert_eq!(serde_json::from_str::<T>(&text).expect("parses back"), v);
    }
}

fuzz_target!(|data: &[u8]| {
    let line = &data[..data.len().min(MAX_LINE_BYTES)];
    round_trip::<Redeem>(line);
    round_trip::<Answer>(line);
    round_trip::<Closed>(line);
    if let Ok(r) = Request::parse(line) {
        let again = r.to_line().expect("serializes");
        assert_eq!(again.iter().filter(|b| **b == b'\n').count(), 1, "one line");
        assert_eq!(Request::parse(&again).expect("parses back"), r);
    }
});
