//! Outbound URLs from clients (virtual media `Image`, `SimpleUpdate` `ImageURI`, event
//! `Destination`) and redirect `Location`s from remote servers: parsing is idempotent on its
//! own normalized form, and the address rule never panics.
#![no_main]

use bmcd::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(n) = fuzzing::url(s) {
        assert_eq!(fuzzing::url(&n).as_deref(), Ok(n.as_str()), "for {s:?}");
        assert!(n.starts_with("http://") || n.starts_with("https://"));
    }
    let _ = bmcd::outbound::check_url(s);
    let (base, location) = s.split_once('\n').unwrap_or(("http://h/dir/f.iso?q", s));
    if let Ok(n) = fuzzing::url_join(base, location) {
        assert_eq!(
            fuzzing::url(&n).as_deref(),
            Ok(n.as_str()),
            "{base:?} + {location:?}"
        );
    }
});
