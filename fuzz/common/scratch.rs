//! One scratch file per process: the package parsers read files, as bmcd's uploads are
//! streamed to disk before they are parsed.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::sync::OnceLock;

/// The scratch file, holding `bytes` and nothing else.
pub fn file_with(bytes: &[u8]) -> &'static File {
    static FILE: OnceLock<File> = OnceLock::new();
    let f = FILE.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("redfin-fuzz-{}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("scratch file");
        let _ = std::fs::remove_file(&path);
        f
    });
    f.set_len(0).expect("truncate");
    f.write_all_at(bytes, 0).expect("write");
    f
}
