//! The configuration file: `toml_lite` (the TOML subset bmcd reads), then the file's keys over
//! the defaults, then validation.
#![no_main]

use bmcd::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = bmcd::toml_lite::parse(text) {
        assert!(v.is_object());
    }
    let mut config = Config::default();
    if config.apply_toml(text).is_ok() {
        let _ = config.validate();
    }
});
