//! Packing a project for `tovuk deploy`: a deterministic tar+zstd stream of the selected files.
//!
//! Only what the content determines goes in: paths, bytes, the execute bit and symlink
//! targets. Times, owners and other mode bits are fixed, so the same tree always gives
//! the same bytes (and the same upload can be recognised).

#[cfg(test)]
mod tests;

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// zstd's default level: fast, and within the server's decoder window (8 MiB).
const ZSTD_LEVEL: i32 = 3;

/// What [`pack`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Packed {
    /// Regular files and symlinks.
    pub files: u64,
    /// The uncompressed size of the regular files.
    pub bytes: u64,
}

/// Writes `files` (relative to `dir`) as a deterministic tar+zstd stream: sorted, mtime 0,
/// uid/gid 0, mode 0644/0755, symlinks stored as symlinks; the same tree gives the same bytes.
///
/// A symlink the server would refuse (absolute, leaving the project, or with `..` after a
/// name) is refused here first, with the same fix.
pub(crate) fn pack(dir: &Path, files: &[String], out: impl Write) -> Result<Packed, String> {
    let write_failed = |error: io::Error| format!("failed to write the archive: {error}");
    let mut paths: Vec<&str> = files.iter().map(String::as_str).collect();
    paths.sort_unstable();
    paths.dedup();

    let mut encoder = zstd::Encoder::new(out, ZSTD_LEVEL).map_err(write_failed)?;
    // The checksum lets the server tell a damaged upload from a valid archive.
    encoder.include_checksum(true).map_err(write_failed)?;
    let mut builder = tar::Builder::new(encoder);
    let mut packed = Packed { files: 0, bytes: 0 };
    for path in paths {
        let full = dir.join(path);
        let cannot_read = |error: io::Error| format!("cannot read `{}`: {error}", full.display());
        let metadata = fs::symlink_metadata(&full).map_err(cannot_read)?;
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        if metadata.file_type().is_symlink() {
            let target = fs::read_link(&full).map_err(cannot_read)?;
            let target = check_symlink(path, &target)?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            builder
                .append_link(&mut header, path, target)
                .map_err(|error| format!("failed to pack symlink `{path}`: {error}"))?;
        } else if metadata.is_file() {
            let file = fs::File::open(&full).map_err(cannot_read)?;
            // Sized from the open file, so the header and the data agree even if the
            // path was replaced since the listing.
            let metadata = file.metadata().map_err(cannot_read)?;
            let size = metadata.len();
            let executable = metadata.permissions().mode() & 0o111 != 0;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(if executable { 0o755 } else { 0o644 });
            header.set_size(size);
            builder
                .append_data(&mut header, path, ExactReader { inner: file, remaining: size })
                .map_err(|error| format!("failed to pack `{path}`: {error}"))?;
            packed.bytes += size;
        } else {
            return Err(format!(
                "cannot pack `{path}`: it is not a regular file or a symlink; list only files and symlinks"
            ));
        }
        packed.files += 1;
    }
    let encoder = builder.into_inner().map_err(write_failed)?;
    encoder.finish().map_err(write_failed)?;
    Ok(packed)
}

/// The server's symlink rule (`tovuk-git`'s `check_symlink`), checked before uploading:
/// relative, `..` only before the first name, and never above the project root.
fn check_symlink<'a>(path: &str, target: &'a Path) -> Result<&'a str, String> {
    let Some(text) = target.to_str() else {
        return Err(format!(
            "cannot pack symlink `{path}`: its target is not valid UTF-8; fix the link or exclude it in `.tovukignore`"
        ));
    };
    let outside = || {
        format!(
            "symlink `{path}` points outside the project (`{text}`), which the server refuses; make it a relative link to a path inside the project, or exclude it in `.tovukignore`"
        )
    };
    if text.starts_with('/') {
        return Err(outside());
    }
    let depth = path.matches('/').count();
    let mut n_up = 0;
    let mut seen_name = false;
    for component in text.split('/') {
        match component {
            "" | "." => {}
            ".." if seen_name => {
                return Err(format!(
                    "symlink `{path}` has `..` after a name in its target (`{text}`), which the server refuses; write the target without it, or exclude it in `.tovukignore`"
                ));
            }
            ".." => {
                n_up += 1;
                if n_up > depth {
                    return Err(outside());
                }
            }
            _ => seen_name = true,
        }
    }
    Ok(text)
}

/// Reads exactly `remaining` bytes: a file that shrank after its header was written
/// is an error instead of a silently corrupt archive, and one that grew is cut off.
struct ExactReader<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buffer.is_empty() {
            return Ok(0);
        }
        let len = buffer.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n_read = self.inner.read(&mut buffer[..len])?;
        if n_read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was being packed; run `tovuk deploy` again",
            ));
        }
        self.remaining -= n_read as u64;
        Ok(n_read)
    }
}
