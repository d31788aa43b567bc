//! Safe unpacking of uploaded source archives (tar inside zstd), refused whole on the first problem.
//!
//! `tovuk deploy` without git uploads the project as an archive; the server unpacks it into
//! a fresh directory and imports that into the app's repository. The archive comes from a
//! client, so every entry is checked on its raw header bytes before anything is written,
//! and nothing is left to the tar crate's own unpacking:
//!
//! - paths are relative, UTF-8, without NUL, `..` or `.git` components, and short enough;
//! - only regular files, directories and symlinks are accepted;
//! - symlinks stay inside the root however the kernel resolves them (see [`check_symlink`]);
//! - nothing is ever written through a symlink or under a file: the unpacked tree is tracked
//!   in memory and files are created with `O_EXCL`;
//! - entry counts and sizes are checked against the limits from the headers, before the
//!   data is read, so a bomb is refused without being decompressed.

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tar::EntryType;

/// The first bytes of every zstd frame (RFC 8878, section 3.1.1).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// The largest decoder window accepted, as a power of two (8 MiB): it bounds the memory
/// one upload can make the server allocate. zstd levels 1 to 19 stay within it;
/// `--ultra` and `--long` archives are refused as corrupt.
const WINDOW_LOG_MAX: u32 = 23;
/// The most bytes one PAX extended header may carry; real ones hold a path and a few times.
const MAX_PAX_BYTES: u64 = 64 * 1024;
/// How much entry data is copied per read.
const COPY_BUFFER_BYTES: usize = 64 * 1024;

/// What one upload may unpack to. Every limit is checked before the data that would cross it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// The total size of all regular files.
    pub max_unpacked_bytes: u64,
    /// The number of archive members plus the parent directories created for them.
    pub max_files: u64,
    /// The size of one regular file.
    pub max_file_bytes: u64,
    /// The length of one path or symlink target, in bytes.
    pub max_path_bytes: usize,
    /// How many directories deep one path may be.
    pub max_path_depth: usize,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_unpacked_bytes: 1 << 30,
            max_files: 100_000,
            max_file_bytes: 512 << 20,
            max_path_bytes: tovuk_manifest::MAX_PATH_BYTES,
            max_path_depth: tovuk_manifest::MAX_PATH_DEPTH,
        }
    }
}

/// What a successful [`unpack`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unpacked {
    /// Regular files and symlinks (directories are not counted).
    pub files: u64,
    /// The total size of the regular files.
    pub bytes: u64,
}

/// Why an upload was refused. Every variant except `DestNotEmpty` and `Io` is the
/// client's doing (a 4xx); those two are the server's.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("the upload is not a zstd-compressed archive; upload the archive `tovuk deploy` packs")]
    NotZstd,
    #[error("the archive is truncated or corrupt: {reason}; run `tovuk deploy` again")]
    Corrupt { reason: String },
    #[error(
        "archive entry `{path}` has an unsafe path: {reason}; only relative paths inside the project can be uploaded"
    )]
    UnsafePath { path: String, reason: String },
    #[error(
        "archive entry `{path}` is a {kind}; only regular files, directories and symlinks can be uploaded, so exclude it in `.tovukignore`"
    )]
    SpecialFile { path: String, kind: &'static str },
    #[error(
        "symlink `{path}` points outside the project (`{target}`); make it a relative link to a path inside the project, or exclude it in `.tovukignore`"
    )]
    SymlinkOutside { path: String, target: String },
    #[error("symlink `{path}` has an unsafe target `{target}`: {reason}; exclude it in `.tovukignore` or fix the link")]
    UnsafeSymlink { path: String, target: String, reason: String },
    #[error(
        "the archive has more than {limit} entries (files, directories and symlinks); exclude generated files in `.tovukignore` or `[build] exclude`"
    )]
    TooManyFiles { limit: u64 },
    #[error(
        "the archive unpacks to more than {}; exclude generated files and data in `.tovukignore` or `[build] exclude`",
        format_bytes(*limit)
    )]
    TooLarge { limit: u64 },
    #[error(
        "archive entry `{path}` is {}, over the {} limit for one file; exclude it in `.tovukignore` or `[build] exclude`",
        format_bytes(*size),
        format_bytes(*limit)
    )]
    FileTooLarge { path: String, size: u64, limit: u64 },
    #[error("archive entry `{path}` appears twice; pack the project with `tovuk deploy`")]
    Duplicate { path: String },
    #[error(
        "archive entry `{path}` would be written inside `{ancestor}`, which is a {ancestor_kind}; writing through it is refused, so exclude one of them"
    )]
    Conflict { path: String, ancestor: String, ancestor_kind: &'static str },
    #[error("cannot unpack into `{}`: the directory is not empty; unpack into a fresh directory", dest.display())]
    DestNotEmpty { dest: PathBuf },
    #[error("failed to write `{}` while unpacking: {source}; check the server's disk space and permissions", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ArchiveError {
    /// A stable, snake_case code for the API's error body and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ArchiveError::NotZstd => "archive_not_zstd",
            ArchiveError::Corrupt { .. } => "archive_corrupt",
            ArchiveError::UnsafePath { .. } => "archive_unsafe_path",
            ArchiveError::SpecialFile { .. } => "archive_special_file",
            ArchiveError::SymlinkOutside { .. } => "archive_symlink_outside",
            ArchiveError::UnsafeSymlink { .. } => "archive_unsafe_symlink",
            ArchiveError::TooManyFiles { .. } => "archive_too_many_files",
            ArchiveError::TooLarge { .. } => "archive_too_large",
            ArchiveError::FileTooLarge { .. } => "archive_file_too_large",
            ArchiveError::Duplicate { .. } => "archive_duplicate_path",
            ArchiveError::Conflict { .. } => "archive_path_conflict",
            ArchiveError::DestNotEmpty { .. } => "archive_dest_not_empty",
            ArchiveError::Io { .. } => "archive_io",
        }
    }

    /// Whether the server, not the upload, is at fault (a 5xx rather than a 4xx).
    pub fn is_server_fault(&self) -> bool {
        matches!(self, ArchiveError::DestNotEmpty { .. } | ArchiveError::Io { .. })
    }
}

/// Unpacks a tar+zstd stream into `dest` (an existing empty directory). Refused whole: on
/// any error `dest`'s contents are removed before returning, except for `DestNotEmpty`,
/// where nothing was written and the caller's files are left alone.
pub fn unpack(reader: impl Read, dest: &Path, limits: &ArchiveLimits) -> Result<Unpacked, ArchiveError> {
    let mut existing = fs::read_dir(dest).map_err(|source| ArchiveError::Io { path: dest.to_owned(), source })?;
    if existing.next().is_some() {
        return Err(ArchiveError::DestNotEmpty { dest: dest.to_owned() });
    }
    let result = unpack_into(reader, dest, limits);
    if result.is_err() {
        // Best effort: if removal fails too, the first error is the one worth reporting,
        // and the caller discards the directory anyway.
        remove_contents(dest);
    }
    result
}

fn unpack_into(mut reader: impl Read, dest: &Path, limits: &ArchiveLimits) -> Result<Unpacked, ArchiveError> {
    // Checking the magic first tells "not an archive at all" from "a damaged one".
    let mut magic = [0u8; 4];
    let n_read = read_up_to(&mut reader, &mut magic).map_err(corrupt)?;
    if n_read < magic.len() || magic != ZSTD_MAGIC {
        return Err(ArchiveError::NotZstd);
    }
    let mut decoder = zstd::Decoder::new(magic.as_slice().chain(reader)).map_err(corrupt)?;
    decoder.window_log_max(WINDOW_LOG_MAX).map_err(corrupt)?;
    let mut archive = tar::Archive::new(decoder);
    // Raw mode: extension headers come to us instead of being read whole into memory
    // by the tar crate, so their size can be bounded before reading them.
    let entries = archive.entries().map_err(corrupt)?.raw(true);

    let mut tree =
        Tree { dest, limits, nodes: HashMap::new(), n_entries: 0, unpacked: Unpacked { files: 0, bytes: 0 } };
    let mut pending = Extensions::default();
    for entry in entries {
        let mut entry = entry.map_err(corrupt)?;
        match entry.header().entry_type() {
            EntryType::GNULongName => {
                let name = read_extension(&mut entry, limits.max_path_bytes as u64 + 1, "long name")?;
                if pending.long_name.replace(name).is_some() {
                    return Err(corrupt_reason("two long names for one entry"));
                }
            }
            EntryType::GNULongLink => {
                let link = read_extension(&mut entry, limits.max_path_bytes as u64 + 1, "long link name")?;
                if pending.long_link.replace(link).is_some() {
                    return Err(corrupt_reason("two long link names for one entry"));
                }
            }
            EntryType::XHeader => {
                let pax = read_extension(&mut entry, MAX_PAX_BYTES, "pax header")?;
                if pending.pax.replace(pax).is_some() {
                    return Err(corrupt_reason("two pax headers for one entry"));
                }
            }
            EntryType::XGlobalHeader => {
                // Global headers carry defaults (times, owners) that are ignored anyway;
                // they count as entries so a stream of them cannot run forever.
                tree.count_entry()?;
                read_extension(&mut entry, MAX_PAX_BYTES, "global pax header")?;
            }
            _ => tree.add(&mut entry, std::mem::take(&mut pending))?,
        }
    }
    if pending.long_name.is_some() || pending.long_link.is_some() || pending.pax.is_some() {
        return Err(corrupt_reason("the archive ends with an extension header that describes no entry"));
    }
    Ok(tree.unpacked)
}

/// Extension headers seen since the last entry; they describe the next one.
#[derive(Default)]
struct Extensions {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

/// What an unpacked path is, so later entries are checked against it without touching the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Dir,
    File,
    Symlink,
}

/// The tree written so far. `dest` starts empty and only this code writes to it, so
/// `nodes` is exactly what is on disk.
struct Tree<'a> {
    dest: &'a Path,
    limits: &'a ArchiveLimits,
    /// Keyed by the normalized relative path (`a/b`).
    nodes: HashMap<String, Node>,
    /// Members plus implicitly created parents; bounds both inodes and the work per upload.
    n_entries: u64,
    unpacked: Unpacked,
}

impl Tree<'_> {
    fn count_entry(&mut self) -> Result<(), ArchiveError> {
        self.n_entries += 1;
        if self.n_entries > self.limits.max_files {
            return Err(ArchiveError::TooManyFiles { limit: self.limits.max_files });
        }
        Ok(())
    }

    fn add<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, extensions: Extensions) -> Result<(), ArchiveError> {
        self.count_entry()?;
        // Copied out of the header so `entry` can be read from afterwards.
        let header = entry.header();
        let entry_type = header.entry_type();
        let header_path = header.path_bytes().into_owned();
        let header_link = header.link_name_bytes().map(|bytes| bytes.into_owned());
        let header_mode = header.mode();
        let size = entry.size();

        let mut pax_path = None;
        let mut pax_link = None;
        if let Some(pax) = &extensions.pax {
            for extension in tar::PaxExtensions::new(pax) {
                let extension = extension.map_err(corrupt)?;
                match extension.key_bytes() {
                    b"path" => pax_path = Some(extension.value_bytes().to_vec()),
                    b"linkpath" => pax_link = Some(extension.value_bytes().to_vec()),
                    // In raw mode the tar crate reads the header's size, so a disagreeing
                    // PAX size would make the two parsers see different archives.
                    b"size" if extension.value_bytes() != size.to_string().as_bytes() => {
                        return Err(corrupt_reason("a pax size that disagrees with the header"));
                    }
                    key if key.starts_with(b"GNU.sparse.") => {
                        return Err(ArchiveError::SpecialFile { path: display(&header_path), kind: "sparse file" });
                    }
                    // Times, owners, xattrs and comments are ignored.
                    _ => {}
                }
            }
        }
        let raw_path = extensions.long_name.or(pax_path).unwrap_or(header_path);
        let components = normalize_path(&raw_path, self.limits)?;
        let path = components.join("/");

        let kind = match entry_type {
            EntryType::Regular => Node::File,
            EntryType::Directory => Node::Dir,
            EntryType::Symlink => Node::Symlink,
            other => {
                let kind = match other {
                    EntryType::Link => "hard link",
                    EntryType::Char => "character device",
                    EntryType::Block => "block device",
                    EntryType::Fifo => "fifo",
                    EntryType::Continuous => "contiguous file",
                    EntryType::GNUSparse => "sparse file",
                    _ => "member of an unknown type",
                };
                return Err(ArchiveError::SpecialFile { path: display(&raw_path), kind });
            }
        };
        if kind != Node::File && size != 0 {
            return Err(corrupt_reason(&format!("the non-file entry `{path}` carries {size} bytes of data")));
        }
        if components.is_empty() {
            // `./` as a directory is the root itself, which exists.
            if kind == Node::Dir {
                return Ok(());
            }
            return Err(ArchiveError::UnsafePath { path: display(&raw_path), reason: "the path is empty".to_owned() });
        }

        self.create_parents(&components, &path)?;
        match (self.nodes.get(&path), kind) {
            (Some(Node::Dir), Node::Dir) => return Ok(()),
            (Some(_), _) => return Err(ArchiveError::Duplicate { path }),
            (None, _) => {}
        }
        let full = self.dest.join(&path);
        match kind {
            Node::Dir => create_dir(&full)?,
            Node::Symlink => {
                let raw_target = extensions.long_link.or(pax_link).or(header_link).unwrap_or_default();
                let target = check_symlink(&path, &raw_target, components.len() - 1, self.limits)?;
                std::os::unix::fs::symlink(&target, &full).map_err(|source| ArchiveError::Io { path: full, source })?;
                self.unpacked.files += 1;
            }
            Node::File => {
                if size > self.limits.max_file_bytes {
                    return Err(ArchiveError::FileTooLarge { path, size, limit: self.limits.max_file_bytes });
                }
                if self.unpacked.bytes.saturating_add(size) > self.limits.max_unpacked_bytes {
                    return Err(ArchiveError::TooLarge { limit: self.limits.max_unpacked_bytes });
                }
                // Any execute bit makes it executable; everything else about the mode is ignored.
                let executable = header_mode.map_err(corrupt)? & 0o111 != 0;
                write_file(entry, &full, &path, size, if executable { 0o755 } else { 0o644 })?;
                self.unpacked.files += 1;
                self.unpacked.bytes += size;
            }
        }
        self.nodes.insert(path, kind);
        Ok(())
    }

    /// Creates the missing parents of `components`, refusing to pass through a symlink or a file.
    fn create_parents(&mut self, components: &[String], path: &str) -> Result<(), ArchiveError> {
        for depth in 1..components.len() {
            let ancestor = components[..depth].join("/");
            match self.nodes.get(&ancestor) {
                Some(Node::Dir) => {}
                Some(Node::Symlink) => {
                    return Err(ArchiveError::Conflict { path: path.to_owned(), ancestor, ancestor_kind: "symlink" });
                }
                Some(Node::File) => {
                    return Err(ArchiveError::Conflict { path: path.to_owned(), ancestor, ancestor_kind: "file" });
                }
                None => {
                    self.count_entry()?;
                    create_dir(&self.dest.join(&ancestor))?;
                    self.nodes.insert(ancestor, Node::Dir);
                }
            }
        }
        Ok(())
    }
}

/// Splits a raw header path into safe components; an empty result is the root.
fn normalize_path(raw: &[u8], limits: &ArchiveLimits) -> Result<Vec<String>, ArchiveError> {
    let unsafe_path = |reason: &str| ArchiveError::UnsafePath { path: display(raw), reason: reason.to_owned() };
    if raw.is_empty() {
        return Err(unsafe_path("the path is empty"));
    }
    if raw.len() > limits.max_path_bytes {
        return Err(unsafe_path(&format!("the path is longer than {} bytes", limits.max_path_bytes)));
    }
    if raw.contains(&0) {
        return Err(unsafe_path("the path contains a NUL byte"));
    }
    let Ok(text) = std::str::from_utf8(raw) else {
        return Err(unsafe_path("the path is not valid UTF-8"));
    };
    if text.starts_with('/') {
        return Err(unsafe_path("the path is absolute"));
    }
    let mut components = Vec::new();
    for component in text.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err(unsafe_path("the path has a `..` component")),
            // Git would treat a `.git` in the tree as a repository of its own (or a
            // `gitdir:` pointer elsewhere) when the upload is imported.
            _ if component.eq_ignore_ascii_case(".git") => {
                return Err(unsafe_path("the path has a `.git` component"));
            }
            _ => components.push(component.to_owned()),
        }
        if components.len() > limits.max_path_depth {
            return Err(unsafe_path(&format!("the path is more than {} directories deep", limits.max_path_depth)));
        }
    }
    Ok(components)
}

/// Checks a symlink target and returns it as text. `depth` is how many directories deep
/// the link itself sits.
///
/// Resolving lexically is not enough: the kernel resolves `..` after a symlink from the
/// symlink's target, so with `sub/up -> ..`, the target `sub/up/..` is lexically `sub` but
/// really the root's parent. So `..` is only accepted before the first name, where it
/// climbs real directories (nothing is written through a symlink), and never above the
/// root. The names after it may be symlinks, but each of those is confined the same way.
fn check_symlink(path: &str, raw: &[u8], depth: usize, limits: &ArchiveLimits) -> Result<String, ArchiveError> {
    let unsafe_symlink = |reason: &str| ArchiveError::UnsafeSymlink {
        path: path.to_owned(),
        target: display(raw),
        reason: reason.to_owned(),
    };
    if raw.is_empty() {
        return Err(unsafe_symlink("the target is empty"));
    }
    if raw.len() > limits.max_path_bytes {
        return Err(unsafe_symlink(&format!("the target is longer than {} bytes", limits.max_path_bytes)));
    }
    if raw.contains(&0) {
        return Err(unsafe_symlink("the target contains a NUL byte"));
    }
    let Ok(target) = std::str::from_utf8(raw) else {
        return Err(unsafe_symlink("the target is not valid UTF-8"));
    };
    let outside = || ArchiveError::SymlinkOutside { path: path.to_owned(), target: target.to_owned() };
    if target.starts_with('/') {
        return Err(outside());
    }
    let mut n_up = 0;
    let mut seen_name = false;
    for component in target.split('/') {
        match component {
            "" | "." => {}
            ".." if seen_name => {
                return Err(unsafe_symlink(
                    "`..` after a name can leave the project through another symlink; write the target without it",
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
    Ok(target.to_owned())
}

/// Copies exactly `size` bytes of `entry` into a new file at `full`.
fn write_file(entry: &mut impl Read, full: &Path, path: &str, size: u64, mode: u32) -> Result<(), ArchiveError> {
    let io_error = |source| ArchiveError::Io { path: full.to_owned(), source };
    // `create_new` is O_CREAT|O_EXCL: it never follows a symlink at the last component,
    // a second line of defence behind the tree check.
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(full).map_err(io_error)?;
    let mut buffer = vec![0u8; COPY_BUFFER_BYTES];
    let mut written = 0u64;
    while written < size {
        let n_read = match entry.read(&mut buffer) {
            Ok(0) => {
                return Err(corrupt_reason(&format!("`{path}` ends after {written} of its {size} bytes")));
            }
            Ok(n_read) => n_read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(corrupt(error)),
        };
        file.write_all(&buffer[..n_read]).map_err(io_error)?;
        written += n_read as u64;
    }
    // The umask may have narrowed the mode; the archive's contract is exactly 0644/0755.
    file.set_permissions(fs::Permissions::from_mode(mode)).map_err(io_error)
}

fn create_dir(full: &Path) -> Result<(), ArchiveError> {
    let io_error = |source| ArchiveError::Io { path: full.to_owned(), source };
    fs::DirBuilder::new().mode(0o755).create(full).map_err(io_error)?;
    fs::set_permissions(full, fs::Permissions::from_mode(0o755)).map_err(io_error)
}

/// Reads an extension header's data, refusing it beyond `limit` bytes without reading it.
fn read_extension(entry: &mut impl Read, limit: u64, what: &str) -> Result<Vec<u8>, ArchiveError> {
    let mut data = Vec::new();
    // One byte past the limit tells "at the limit" from "over it".
    entry.take(limit + 1).read_to_end(&mut data).map_err(corrupt)?;
    if data.len() as u64 > limit {
        return Err(corrupt_reason(&format!("a {what} of more than {limit} bytes")));
    }
    // GNU long names end in NUL; a NUL inside one is caught by the path checks.
    while data.last() == Some(&0) {
        data.pop();
    }
    Ok(data)
}

/// Like `read_exact`, but a short input is not an error: returns how many bytes were read.
fn read_up_to(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n_read) => filled += n_read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

fn remove_contents(dest: &Path) {
    let Ok(entries) = fs::read_dir(dest) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        // `file_type` does not follow symlinks, and `remove_dir_all` never follows them either.
        let _ = match entry.file_type() {
            Ok(file_type) if file_type.is_dir() => fs::remove_dir_all(&path),
            _ => fs::remove_file(&path),
        };
    }
}

fn corrupt(error: io::Error) -> ArchiveError {
    ArchiveError::Corrupt { reason: error.to_string() }
}

fn corrupt_reason(reason: &str) -> ArchiveError {
    ArchiveError::Corrupt { reason: reason.to_owned() }
}

/// Raw path bytes as text for a message, cut short so a hostile name cannot flood the log.
fn display(raw: &[u8]) -> String {
    const MAX_CHARS: usize = 200;
    let text = String::from_utf8_lossy(raw);
    if text.chars().count() <= MAX_CHARS {
        return text.into_owned();
    }
    let mut short: String = text.chars().take(MAX_CHARS).collect();
    short.push_str("...");
    short
}

/// `1073741824` as `1 GiB`, exact units only, so limits read the way they were configured.
fn format_bytes(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    format!("{bytes} bytes")
}
