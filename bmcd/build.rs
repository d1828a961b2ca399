//! Compresses the web UI's files (bmcd/webui) with `gzip -9 -n` into OUT_DIR,
//! where `resources::webui` embeds them. Without a `gzip` program the files
//! are embedded as they are (and served uncompressed). Nothing without the
//! `webui` feature.

use std::path::Path;
use std::process::Command;

const FILES: &[&str] = &["index.html", "app.css", "app.js"];

fn main() {
    println!("cargo:rerun-if-changed=webui");
    if std::env::var_os("CARGO_FEATURE_WEBUI").is_none() {
        return;
    }
    let out = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".to_owned());
    let mut table = String::from("&[\n");
    for name in FILES {
        let src = Path::new("webui").join(name);
        println!("cargo:rerun-if-changed={}", src.display());
        let abs = std::fs::canonicalize(&src).unwrap_or(src.clone());
        let gz = Command::new("gzip")
            .args(["-9", "-n", "-c"])
            .arg(&abs)
            .output()
            .ok()
            .filter(|o| o.status.success() && !o.stdout.is_empty());
        let (path, gzip) = match gz {
            Some(o) => {
                let dst = Path::new(&out).join(format!("{name}.gz"));
                if std::fs::write(&dst, o.stdout).is_err() {
                    (abs, false)
                } else {
                    (dst, true)
                }
            }
            None => (abs, false),
        };
        table.push_str(&format!(
            "    ({name:?}, include_bytes!({:?}), {gzip}),\n",
            path.display().to_string()
        ));
    }
    table.push_str("]\n");
    if let Err(e) = std::fs::write(Path::new(&out).join("webui_files.rs"), table) {
        println!("cargo:warning=cannot write the web UI table: {e}");
    }
}
