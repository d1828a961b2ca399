//! Update packages and how they arrive.
//!
//! A package is a POSIX tar archive of:
//!
//! - `manifest.json`: `{"format": "redfin-update-1", "compatible": "...", "version": "...",
//!   "files": [{"name": "rootfs.img", "sha256": "<hex>", "size": N}]}`;
//! - `manifest.sig`: the 64-byte Ed25519 signature of `manifest.json`, exactly as stored;
//! - the files the manifest lists; `rootfs.img` (the file system image of one bank) is required.
//!
//! The signature covers the manifest, and the manifest the SHA-256 of every payload file, so a
//! verified manifest vouches for every byte. Nothing else may be in the archive.
//!
//! A multipart upload (`multipart/form-data`) is first written to a file; [`parse_multipart`]
//! then finds its parts as byte ranges of that file, so a payload of hundreds of MiB never sits
//! in memory. All functions here do blocking I/O: call them from `spawn_blocking`.

use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt as _;

use base64::Engine as _;
use ring::digest;
use ring::signature::{UnparsedPublicKey, ED25519};
use serde::Deserialize;

/// The manifest format this bmcd understands.
pub const FORMAT: &str = "redfin-update-1";
/// The payload written to a bank.
pub const ROOTFS: &str = "rootfs.img";
const MANIFEST: &str = "manifest.json";
const SIGNATURE: &str = "manifest.sig";
const MAX_MANIFEST: u64 = 64 << 10;
const MAX_ENTRIES: usize = 16;
const MAX_PARTS: usize = 8;
const MAX_PART_HEADERS: usize = 8 << 10;
/// Largest `UpdateParameters` part.
pub const MAX_PARAMETERS: u64 = 64 << 10;
const CHUNK: usize = 1 << 20;

/// A byte range of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub offset: u64,
    pub len: u64,
}

/// Why a package or an upload was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageError {
    /// Not a well-formed multipart body or tar archive.
    Malformed(String),
    /// The manifest's signature is missing or not made by a trusted key.
    Signature(String),
    /// The manifest is unreadable or does not fit this BMC.
    Manifest(String),
    /// A payload file does not match the manifest.
    Hash(String),
    Io(String),
}

impl fmt::Display for PackageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackageError::Malformed(m) => write!(f, "The update package is malformed: {m}."),
            PackageError::Signature(m) => write!(f, "The update package's signature is not valid: {m}."),
            PackageError::Manifest(m) => write!(f, "The update package's manifest is not acceptable: {m}."),
            PackageError::Hash(m) => write!(
                f,
                "The update package's content does not match its manifest: {m}."
            ),
            PackageError::Io(m) => write!(f, "Reading the update package failed: {m}."),
        }
    }
}

impl std::error::Error for PackageError {}

fn io(e: std::io::Error) -> PackageError {
    PackageError::Io(e.to_string())
}

/// A base64 Ed25519 public key (32 raw bytes).
pub fn parse_public_key(text: &str) -> Option<[u8; 32]> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    raw.try_into().ok()
}

// ---------------------------------------------------------------------------------------------
// multipart/form-data

/// The `boundary` of a `multipart/form-data` content type.
pub fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let media = params.next()?.trim();
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .filter(|b| !b.is_empty() && b.len() <= 70)
}

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// `name` of its `Content-Disposition`.
    pub name: String,
    pub body: Span,
}

fn find_all(hay: &[u8], needle: &[u8], base: u64, out: &mut Vec<u64>) {
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..].iter().position(|&b| b == needle[0]) {
            None => break,
            Some(p) => {
                let j = i + p;
                if j + needle.len() <= hay.len() && hay[j..j + needle.len()] == *needle {
                    out.push(base + j as u64);
                }
                i = j + 1;
            }
        }
    }
}

/// Finds the parts of the multipart body in `file[0..len]`.
pub fn parse_multipart(file: &File, len: u64, boundary: &str) -> Result<Vec<Part>, PackageError> {
    // Every delimiter is CRLF "--" boundary; the first one may start the body, so the body is
    // scanned as if it began with CRLF (positions below count those two bytes).
    let delimiter = format!("\r\n--{boundary}").into_bytes();
    let mut found = Vec::new();
    let mut window: Vec<u8> = b"\r\n".to_vec();
    let mut window_start = 0u64; // position of window[0] in the virtual stream
    let mut offset = 0u64;
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let want = CHUNK.min((len - offset) as usize);
        if want == 0 {
            find_all(&window, &delimiter, window_start, &mut found);
            break;
        }
        file.read_exact_at(&mut chunk[..want], offset).map_err(io)?;
        offset += want as u64;
        window.extend_from_slice(&chunk[..want]);
        find_all(&window, &delimiter, window_start, &mut found);
        // Keep what could still begin a delimiter.
        let keep = (delimiter.len() - 1).min(window.len());
        let drop = window.len() - keep;
        window.drain(..drop);
        window_start += drop as u64;
        if found.len() > MAX_PARTS + 1 {
            return Err(PackageError::Malformed("too many parts".into()));
        }
    }
    found.dedup();
    if found.is_empty() {
        return Err(PackageError::Malformed(
            "no multipart boundary in the body".into(),
        ));
    }
    // A delimiter is followed by "--" (the end) or CRLF (a part); the boundary text followed by
    // anything else is content.
    let mut real = Vec::new();
    for &d in &found {
        let after = d + delimiter.len() as u64 - 2; // file offset just past the boundary
        if after + 2 > len {
            return Err(PackageError::Malformed("the body ends inside a boundary".into()));
        }
        let mut tail = [0u8; 2];
        file.read_exact_at(&mut tail, after).map_err(io)?;
        if &tail == b"--" {
            real.push((d, after, true));
            break;
        }
        if &tail == b"\r\n" {
            real.push((d, after, false));
        }
    }
    let mut parts = Vec::new();
    for (i, &(_, after, close)) in real.iter().enumerate() {
        if close {
            break;
        }
        let Some(&(next, _, _)) = real.get(i + 1) else {
            return Err(PackageError::Malformed(
                "the last part has no closing boundary".into(),
            ));
        };
        let start = after + 2;
        let end = next - 2; // the CRLF before the next delimiter belongs to it
        if end < start {
            return Err(PackageError::Malformed("a part is cut short".into()));
        }
        let head_len = ((end - start) as usize).min(MAX_PART_HEADERS);
        let mut head = vec![0u8; head_len];
        file.read_exact_at(&mut head, start).map_err(io)?;
        let split = head
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| (p, p + 4))
            .or_else(|| head.starts_with(b"\r\n").then_some((0, 2)))
            .ok_or_else(|| PackageError::Malformed("a part's headers are too long or not ended".into()))?;
        let headers = String::from_utf8_lossy(&head[..split.0]).into_owned();
        let name = part_name(&headers)
            .ok_or_else(|| PackageError::Malformed("a part has no Content-Disposition name".into()))?;
        parts.push(Part {
            name,
            body: Span {
                offset: start + split.1 as u64,
                len: end - start - split.1 as u64,
            },
        });
        if parts.len() > MAX_PARTS {
            return Err(PackageError::Malformed("too many parts".into()));
        }
    }
    Ok(parts)
}

fn part_name(headers: &str) -> Option<String> {
    let disposition = headers.split("\r\n").find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case("content-disposition").then_some(v)
    })?;
    let mut params = disposition.split(';');
    if !params.next()?.trim().eq_ignore_ascii_case("form-data") {
        return None;
    }
    params
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("name"))
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
}

/// Reads a small span into memory.
pub fn read_span(file: &File, span: Span, max: u64) -> Result<Vec<u8>, PackageError> {
    if span.len > max {
        return Err(PackageError::Malformed(format!(
            "a part of {} bytes is over the limit of {max}",
            span.len
        )));
    }
    let mut buf = vec![0u8; span.len as usize];
    file.read_exact_at(&mut buf, span.offset).map_err(io)?;
    Ok(buf)
}

// ---------------------------------------------------------------------------------------------
// tar

/// A regular file in a tar archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub data: Span,
}

fn octal(field: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(field).ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

fn c_string(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// The regular files of the tar archive in `span` (ustar, GNU or pax headers).
pub fn tar_entries(file: &File, span: Span) -> Result<Vec<Entry>, PackageError> {
    read_tar(file, span, false)
}

/// Like [`tar_entries`], with files in relative subdirectories (`tls/https.crt`;
/// no `..`, no absolute paths); directory entries are skipped.
pub fn tar_tree(file: &File, span: Span) -> Result<Vec<Entry>, PackageError> {
    read_tar(file, span, true)
}

fn read_tar(file: &File, span: Span, nested: bool) -> Result<Vec<Entry>, PackageError> {
    let mut entries = Vec::new();
    let mut pos = 0u64;
    let mut header = [0u8; 512];
    while pos + 512 <= span.len {
        file.read_exact_at(&mut header, span.offset + pos).map_err(io)?;
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let stored = octal(&header[148..156])
            .ok_or_else(|| PackageError::Malformed("bad tar checksum field".into()))?;
        let sum: u64 = header
            .iter()
            .enumerate()
            .map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u64::from(b) })
            .sum();
        if sum != stored {
            return Err(PackageError::Malformed(
                "not a tar archive (header checksum)".into(),
            ));
        }
        let size =
            octal(&header[124..136]).ok_or_else(|| PackageError::Malformed("bad tar size field".into()))?;
        let data = pos + 512;
        let padded = size.div_ceil(512) * 512;
        if data + size > span.len {
            return Err(PackageError::Malformed("the archive is cut short".into()));
        }
        let mut name = c_string(&header[0..100]);
        if &header[257..262] == b"ustar" {
            let prefix = c_string(&header[345..500]);
            if !prefix.is_empty() {
                name = format!("{prefix}/{name}");
            }
        }
        let name = name.trim_start_matches("./").to_owned();
        match header[156] {
            b'0' | 0 => {
                let bad_path = if nested {
                    name.starts_with('/') || name.split('/').any(|c| c.is_empty() || c == "." || c == "..")
                } else {
                    name.contains('/')
                };
                if bad_path || name.is_empty() {
                    return Err(PackageError::Malformed(format!(
                        "unexpected file '{name}' in the archive"
                    )));
                }
                if entries.iter().any(|e: &Entry| e.name == name) {
                    return Err(PackageError::Malformed(format!(
                        "'{name}' is twice in the archive"
                    )));
                }
                entries.push(Entry {
                    name,
                    data: Span {
                        offset: span.offset + data,
                        len: size,
                    },
                });
                if entries.len() > MAX_ENTRIES {
                    return Err(PackageError::Malformed("too many files in the archive".into()));
                }
            }
            // pax extended headers, and the archive's own top directory.
            b'x' | b'g' => {}
            b'5' if name.is_empty() || name == "." || name == "./" || nested => {}
            t => {
                return Err(PackageError::Malformed(format!(
                    "'{name}' is not a regular file (type '{}')",
                    char::from(t)
                )))
            }
        }
        pos = data + padded;
    }
    Ok(entries)
}

// ---------------------------------------------------------------------------------------------
// manifest

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub compatible: String,
    pub version: String,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    pub name: String,
    pub sha256: String,
    pub size: u64,
}

/// A package whose signature and hashes were checked.
#[derive(Debug, Clone)]
pub struct Verified {
    pub manifest: Manifest,
    /// Where `rootfs.img` is in the file.
    pub rootfs: Span,
}

/// SHA-256 (lowercase hex) of a span, reporting bytes hashed.
pub fn sha256_span(file: &File, span: Span, progress: &dyn Fn(u64)) -> Result<String, PackageError> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    while done < span.len {
        let n = CHUNK.min((span.len - done) as usize);
        file.read_exact_at(&mut buf[..n], span.offset + done)
            .map_err(io)?;
        ctx.update(&buf[..n]);
        done += n as u64;
        progress(done);
    }
    Ok(ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect())
}

/// Checks the package in `span`: the manifest's signature by one of `keys`, the manifest itself
/// (format, `compatible`, no file missing or extra) and every payload's size and SHA-256.
/// `progress(done, total)` counts payload bytes hashed.
pub fn verify(
    file: &File,
    span: Span,
    keys: &[[u8; 32]],
    compatible: &str,
    progress: &dyn Fn(u64, u64),
) -> Result<Verified, PackageError> {
    let entries = tar_entries(file, span)?;
    let find = |name: &str| entries.iter().find(|e| e.name == name);
    let manifest_entry = find(MANIFEST).ok_or_else(|| PackageError::Malformed("no manifest.json".into()))?;
    let manifest_bytes = read_span(file, manifest_entry.data, MAX_MANIFEST)?;
    let sig_entry = find(SIGNATURE)
        .ok_or_else(|| PackageError::Signature("the package is not signed (no manifest.sig)".into()))?;
    let sig = read_span(file, sig_entry.data, 64)?;
    if sig.len() != 64 {
        return Err(PackageError::Signature(
            "manifest.sig is not a 64-byte Ed25519 signature".into(),
        ));
    }
    if keys.is_empty() {
        return Err(PackageError::Signature(
            "this BMC has no trusted update keys".into(),
        ));
    }
    let trusted = keys.iter().any(|k| {
        UnparsedPublicKey::new(&ED25519, k)
            .verify(&manifest_bytes, &sig)
            .is_ok()
    });
    if !trusted {
        return Err(PackageError::Signature(
            "it was not made by a trusted key over this manifest".into(),
        ));
    }
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| PackageError::Manifest(format!("manifest.json: {e}")))?;
    if manifest.format != FORMAT {
        return Err(PackageError::Manifest(format!(
            "format '{}' is not {FORMAT}",
            manifest.format
        )));
    }
    if manifest.compatible != compatible {
        return Err(PackageError::Manifest(format!(
            "it is for '{}', this BMC is '{compatible}'",
            manifest.compatible
        )));
    }
    if manifest.version.is_empty() || manifest.version.len() > 64 {
        return Err(PackageError::Manifest("the version is empty or too long".into()));
    }
    for e in &entries {
        if e.name != MANIFEST && e.name != SIGNATURE && !manifest.files.iter().any(|f| f.name == e.name) {
            return Err(PackageError::Manifest(format!(
                "'{}' is in the archive but not in the manifest",
                e.name
            )));
        }
    }
    let total: u64 = manifest.files.iter().map(|f| f.size).sum();
    let mut done_before = 0u64;
    let mut rootfs = None;
    for f in &manifest.files {
        let e = find(&f.name).ok_or_else(|| PackageError::Hash(format!("'{}' is missing", f.name)))?;
        if e.data.len != f.size {
            return Err(PackageError::Hash(format!(
                "'{}' has {} bytes, the manifest says {}",
                f.name, e.data.len, f.size
            )));
        }
        let base = done_before;
        let got = sha256_span(file, e.data, &|n| progress(base + n, total))?;
        if !got.eq_ignore_ascii_case(&f.sha256) {
            return Err(PackageError::Hash(format!("SHA-256 of '{}' differs", f.name)));
        }
        done_before += f.size;
        if f.name == ROOTFS {
            rootfs = Some(e.data);
        }
    }
    let rootfs = rootfs.ok_or_else(|| PackageError::Manifest(format!("it has no {ROOTFS}")))?;
    Ok(Verified { manifest, rootfs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn temp(name: &str, bytes: &[u8]) -> (std::path::PathBuf, File) {
        let dir = std::env::temp_dir().join(format!("bmcd-pkg-{}-{name}", std::process::id()));
        let mut f = File::create(&dir).expect("create");
        f.write_all(bytes).expect("write");
        (dir.clone(), File::open(&dir).expect("open"))
    }

    #[test]
    fn multipart_parts_are_found_as_spans() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"UpdateParameters\"\r\nContent-Type: application/json\r\n\r\n{}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"UpdateFile\"; filename=\"p.tar\"\r\n\r\nA\r\n--XyZ-not\r\nB\r\n--XyZ--\r\n";
        let (path, f) = temp("mp", body);
        let parts = parse_multipart(&f, body.len() as u64, "XyZ").expect("parts");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "UpdateParameters");
        assert_eq!(read_span(&f, parts[0].body, 100).expect("read"), b"{}");
        assert_eq!(parts[1].name, "UpdateFile");
        assert_eq!(
            read_span(&f, parts[1].body, 100).expect("read"),
            b"A\r\n--XyZ-not\r\nB"
        );
        let _ = std::fs::remove_file(path);
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary=\"abc\"").as_deref(),
            Some("abc")
        );
        assert_eq!(multipart_boundary("application/json"), None);
    }

    #[test]
    fn truncated_multipart_is_refused() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"UpdateFile\"\r\n\r\nAAAA";
        let (path, f) = temp("mp2", body);
        assert!(parse_multipart(&f, body.len() as u64, "XyZ").is_err());
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn keys_are_32_bytes_of_base64() {
        assert!(parse_public_key(&base64::engine::general_purpose::STANDARD.encode([7u8; 32])).is_some());
        assert!(parse_public_key("AAAA").is_none());
        assert!(parse_public_key("not base64!").is_none());
    }
}
