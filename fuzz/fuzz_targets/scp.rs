//! iDRAC Server Configuration Profiles (`ImportSystemConfiguration`'s `ImportBuffer`), XML or
//! JSON.
#![no_main]

use bmcd::personas::idrac9::scp_attributes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(attributes) = scp_attributes(text) {
        if !text.trim().starts_with('{') {
            // One attribute per `<Attribute` element, each value from within the document.
            assert!(attributes.len() <= text.matches("<Attribute").count());
            for (_, _, value) in &attributes {
                assert!(value.len() <= text.len());
            }
        }
    }
});
