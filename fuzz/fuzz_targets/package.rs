//! Update packages (ustar archives with a signed manifest): the tar reader, then the whole
//! verification. The harness signs whatever manifest the input carries with its own test key, so
//! that the checks after the signature (manifest format, files, sizes, hashes) are reached.
#![no_main]

#[path = "../common/scratch.rs"]
mod scratch;

use std::os::unix::fs::FileExt as _;

use bmcd::firmware::package::{read_span, tar_entries, verify, Span, FORMAT};
use libfuzzer_sys::fuzz_target;
use ring::signature::{Ed25519KeyPair, KeyPair as _};

const COMPATIBLE: &str = "redfin-fuzz";

fn key() -> &'static (Ed25519KeyPair, [u8; 32]) {
    static KEY: std::sync::OnceLock<(Ed25519KeyPair, [u8; 32])> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let pair = Ed25519KeyPair::from_seed_unchecked(&[7; 32]).expect("test key");
        let mut public = [0u8; 32];
        public.copy_from_slice(pair.public_key().as_ref());
        (pair, public)
    })
}

fuzz_target!(|data: &[u8]| {
    let file = scratch::file_with(data);
    let span = Span {
        offset: 0,
        len: data.len() as u64,
    };
    let Ok(entries) = tar_entries(file, span) else {
        return;
    };
    assert!(entries.len() <= 16);
    for (i, e) in entries.iter().enumerate() {
        assert!(
            e.data.offset + e.data.len <= span.len,
            "{} is beyond the archive",
            e.name
        );
        assert!(!e.name.is_empty() && !e.name.contains('/'), "{:?}", e.name);
        assert!(entries[..i].iter().all(|o| o.name != e.name), "{} twice", e.name);
    }
    let find = |name: &str| entries.iter().find(|e| e.name == name);
    if let (Some(manifest), Some(sig)) = (find("manifest.json"), find("manifest.sig")) {
        if sig.data.len == 64 {
            if let Ok(bytes) = read_span(file, manifest.data, 64 << 10) {
                let (pair, _) = key();
                file.write_all_at(pair.sign(&bytes).as_ref(), sig.data.offset)
                    .expect("sign");
            }
        }
    }
    let (_, public) = key();
    if let Ok(v) = verify(file, span, &[*public], COMPATIBLE, &|done, total| {
        assert!(done <= total)
    }) {
        assert_eq!(v.manifest.format, FORMAT);
        assert_eq!(v.manifest.compatible, COMPATIBLE);
        assert!(v.rootfs.offset + v.rootfs.len <= span.len);
    }
});
