//! A ustar writer for backups: regular files only, names up to 100 bytes,
//! mode 0600. (The reader is `firmware::package::tar_tree`.)

use std::io::{self, Write};

fn octal(field: &mut [u8], value: u64) {
    // Zero-padded octal, NUL-terminated, filling the field.
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    let bytes = text.as_bytes();
    let start = bytes.len().saturating_sub(digits);
    field[..digits].copy_from_slice(&bytes[start..]);
    field[digits] = 0;
}

/// Appends one file held in memory.
pub fn append<W: Write>(out: &mut W, name: &str, data: &[u8], mtime: u64) -> io::Result<()> {
    header(out, name, data.len() as u64, mtime)?;
    out.write_all(data)?;
    pad(out, data.len() as u64)
}

/// Appends the file at `path`, which must still be `size` bytes long.
pub fn append_file<W: Write>(
    out: &mut W,
    name: &str,
    path: &std::path::Path,
    size: u64,
    mtime: u64,
) -> io::Result<()> {
    header(out, name, size, mtime)?;
    // A plain loop: `io::copy` links its kernel-copy specializations.
    let mut file = io::Read::take(std::fs::File::open(path)?, size);
    let mut buf = vec![0u8; 64 << 10];
    let mut copied = 0u64;
    loop {
        let n = io::Read::read(&mut file, &mut buf)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        copied += n as u64;
    }
    if copied != size {
        return Err(io::Error::other(format!(
            "{} changed while it was backed up",
            path.display()
        )));
    }
    pad(out, size)
}

fn pad<W: Write>(out: &mut W, size: u64) -> io::Result<()> {
    let pad = (size.div_ceil(512) * 512 - size) as usize;
    out.write_all(&vec![0u8; pad])
}

fn header<W: Write>(out: &mut W, name: &str, size: u64, mtime: u64) -> io::Result<()> {
    if size >= 1 << 33 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("'{name}' is 8 GiB or larger, more than a ustar entry holds"),
        ));
    }
    let name_bytes = name.as_bytes();
    if name_bytes.is_empty() || name_bytes.len() > 100 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("archive name '{name}' must be 1 to 100 bytes"),
        ));
    }
    let mut h = [0u8; 512];
    h[..name_bytes.len()].copy_from_slice(name_bytes);
    octal(&mut h[100..108], 0o600);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    out.write_all(&h)
}

/// Ends the archive (two zero blocks).
pub fn finish<W: Write>(out: &mut W) -> io::Result<()> {
    out.write_all(&[0u8; 1024])
}
