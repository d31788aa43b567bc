//! Deterministic packing of a build output directory into tar+zstd.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use tar::{EntryType, Header};

use crate::ArtifactError;

/// zstd level for archives. Fixed: the same tree must give the same bytes.
const ZSTD_LEVEL: i32 = 3;
/// How many symlinks resolving one link may pass through, as Linux's `MAXSYMLINKS`.
const MAX_SYMLINK_HOPS: usize = 40;

/// What [`pack`] put into the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackSummary {
    /// Regular files and symlinks (directories are not counted).
    pub files: u64,
    /// Total size of the regular files' contents, before compression.
    pub bytes: u64,
}

/// One archive entry, keyed by its `/`-separated path relative to the root.
enum Entry {
    Directory,
    File { path: PathBuf, executable: bool, size: u64, device: u64, inode: u64 },
    Symlink { target: PathBuf },
}

/// What [`pack_with`] allows beyond [`pack`], and the time its entries carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackOptions {
    /// The absolute path `root` has where it was built and where it runs: an absolute
    /// symlink under it is checked as the relative link it stands for.
    pub root_inside: Option<PathBuf>,
    /// Absolute directories every release sees read-only (the host's `/usr`, ...): an
    /// absolute symlink to a path that exists under one of them is kept.
    pub system_dirs: Vec<PathBuf>,
    /// Every entry's modification time, in seconds since the epoch (e.g. the commit's time):
    /// deterministic, yet it moves when the source does.
    pub mtime: u64,
}

/// [`pack_with`] with no absolute symlinks and every mtime 0.
pub fn pack(
    root: &Path,
    outputs: &[String],
    is_excluded: &dyn Fn(&str) -> bool,
    out: impl Write,
) -> Result<PackSummary, ArtifactError> {
    pack_with(root, outputs, is_excluded, &PackOptions::default(), out)
}

/// Packs the build output under `root` into `out` as tar+zstd, deterministically.
///
/// - Entries are sorted by path (bytewise), with `options.mtime`, uid/gid 0, no user or
///   group names; files are mode 0644, or 0755 when any execute bit is set;
///   directories are 0755. Paths in the archive are relative to `root`,
///   including for selected outputs (`dist/app.js`, not `app.js`).
/// - `outputs`: relative paths (files or directories) to keep; empty keeps
///   everything under `root`. The parent directories of an output are added
///   as directory entries. An output that does not exist, is absolute,
///   contains `..`, or goes through a symlink is an error.
/// - `is_excluded(path)`: called with `/`-separated relative paths without a
///   trailing slash; an excluded directory is skipped with everything under
///   it, and an output that is itself excluded (or under an excluded
///   directory) contributes nothing.
/// - Symlinks are stored as symlinks and never followed; one whose target
///   resolves outside `root` (absolute, or through `..`, or through other
///   links) is an error, except the absolute ones `options` allows. Device,
///   fifo and socket files are skipped. Hard links are stored as separate
///   regular files.
/// - File and directory names must be UTF-8.
pub fn pack_with(
    root: &Path,
    outputs: &[String],
    is_excluded: &dyn Fn(&str) -> bool,
    options: &PackOptions,
    out: impl Write,
) -> Result<PackSummary, ArtifactError> {
    let root_metadata =
        fs::metadata(root).map_err(|_| ArtifactError::RootNotADirectory { path: root.to_path_buf() })?;
    if !root_metadata.is_dir() {
        return Err(ArtifactError::RootNotADirectory { path: root.to_path_buf() });
    }

    let mut collector = Collector { root, is_excluded, options, entries: BTreeMap::new() };
    if outputs.is_empty() {
        collector.add_directory_contents(&[])?;
    } else {
        for output in outputs {
            collector.add_output(output)?;
        }
    }
    write_archive(root, &collector.entries, options.mtime, out)
}

struct Collector<'a> {
    root: &'a Path,
    is_excluded: &'a dyn Fn(&str) -> bool,
    options: &'a PackOptions,
    entries: BTreeMap<String, Entry>,
}

impl Collector<'_> {
    fn add_output(&mut self, output: &str) -> Result<(), ArtifactError> {
        let components = normalize_output(output)?;
        if components.is_empty() {
            // `.`: the whole root.
            return self.add_directory_contents(&[]);
        }
        // An output under an excluded directory, or excluded itself, adds nothing.
        if (1..=components.len()).any(|len| (self.is_excluded)(&components[..len].join("/"))) {
            return Ok(());
        }
        // Every ancestor must be a real directory: following a symlinked
        // ancestor could leave the root.
        for len in 1..components.len() {
            let relative = components[..len].join("/");
            let metadata = self.symlink_metadata_for_output(output, &relative)?;
            if metadata.file_type().is_symlink() {
                return Err(ArtifactError::InvalidOutput {
                    output: output.to_owned(),
                    reason: format!("goes through the symlink `{relative}`; list the path it points to instead"),
                });
            }
            if !metadata.is_dir() {
                return Err(ArtifactError::OutputNotFound { output: output.to_owned(), root: self.root.to_path_buf() });
            }
        }
        for len in 1..components.len() {
            self.entries.entry(components[..len].join("/")).or_insert(Entry::Directory);
        }
        let relative = components.join("/");
        let metadata = self.symlink_metadata_for_output(output, &relative)?;
        self.add_path(&components, metadata)
    }

    fn symlink_metadata_for_output(&self, output: &str, relative: &str) -> Result<Metadata, ArtifactError> {
        let path = self.root.join(relative);
        fs::symlink_metadata(&path).map_err(|error| match error.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => {
                ArtifactError::OutputNotFound { output: output.to_owned(), root: self.root.to_path_buf() }
            }
            _ => ArtifactError::io("read build output", path, error),
        })
    }

    /// Adds the entry at `components` (not excluded, metadata read without following links).
    fn add_path(&mut self, components: &[String], metadata: Metadata) -> Result<(), ArtifactError> {
        let relative = components.join("/");
        let path = self.root.join(&relative);
        let file_type = metadata.file_type();
        if file_type.is_symlink() {
            let target = fs::read_link(&path).map_err(|source| ArtifactError::io("read symlink", &path, source))?;
            check_symlink_stays_inside(self.root, self.options, components, &target)?;
            self.entries.insert(relative, Entry::Symlink { target });
        } else if file_type.is_dir() {
            self.entries.insert(relative, Entry::Directory);
            self.add_directory_contents(components)?;
        } else if file_type.is_file() {
            let executable = metadata.permissions().mode() & 0o111 != 0;
            self.entries.insert(
                relative,
                Entry::File { path, executable, size: metadata.len(), device: metadata.dev(), inode: metadata.ino() },
            );
        }
        // Devices, fifos and sockets are not build output: skipped.
        Ok(())
    }

    fn add_directory_contents(&mut self, components: &[String]) -> Result<(), ArtifactError> {
        let directory = self.root.join(components.join("/"));
        let read_dir =
            fs::read_dir(&directory).map_err(|source| ArtifactError::io("read directory", &directory, source))?;
        for dir_entry in read_dir {
            let dir_entry = dir_entry.map_err(|source| ArtifactError::io("read directory", &directory, source))?;
            let file_name = dir_entry.file_name();
            let Some(name) = file_name.to_str() else {
                let mut relative: PathBuf = components.iter().collect();
                relative.push(&file_name);
                return Err(ArtifactError::NonUtf8Path { path: relative });
            };
            let mut child = components.to_vec();
            child.push(name.to_owned());
            if (self.is_excluded)(&child.join("/")) {
                continue;
            }
            // DirEntry::metadata does not follow symlinks.
            let metadata = dir_entry
                .metadata()
                .map_err(|source| ArtifactError::io("read metadata of", dir_entry.path(), source))?;
            self.add_path(&child, metadata)?;
        }
        Ok(())
    }
}

/// Splits an output into normal components; refuses empty, absolute and `..` outputs.
fn normalize_output(output: &str) -> Result<Vec<String>, ArtifactError> {
    let invalid = |reason: &str| ArtifactError::InvalidOutput { output: output.to_owned(), reason: reason.to_owned() };
    if output.trim().is_empty() {
        return Err(invalid("is empty"));
    }
    let mut components = Vec::new();
    for component in Path::new(output).components() {
        match component {
            Component::Normal(name) => match name.to_str() {
                Some(name) => components.push(name.to_owned()),
                None => return Err(invalid("is not valid UTF-8")),
            },
            Component::CurDir => {}
            Component::ParentDir => return Err(invalid("contains `..`; outputs must stay inside the checkout")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(invalid("is absolute; list it relative to the checkout"));
            }
        }
    }
    Ok(components)
}

/// Resolves a symlink's target the way the kernel would, one component at a
/// time and following links found on the way, and fails if it ever steps
/// outside `root`. A lexical check alone is not enough: in `a/link/../x`,
/// `..` applies to where `a/link` points, not to `a`. An absolute target (the
/// link's own or one met on the way) goes on from the root when it lies under
/// `options.root_inside`, and ends the walk when it names an existing path under
/// one of `options.system_dirs`; any other is outside.
fn check_symlink_stays_inside(
    root: &Path,
    options: &PackOptions,
    link_components: &[String],
    target: &Path,
) -> Result<(), ArtifactError> {
    let link_relative = link_components.join("/");
    let escapes = || ArtifactError::SymlinkEscapes { path: link_relative.clone(), target: target.to_path_buf() };
    // Resolution starts in the link's directory.
    let mut current: Vec<OsString> =
        link_components[..link_components.len().saturating_sub(1)].iter().map(OsString::from).collect();
    let mut pending: VecDeque<OsString> = VecDeque::new();
    let follow = |current: &mut Vec<OsString>, pending: &mut VecDeque<OsString>, next: &Path| {
        if !next.is_absolute() {
            return push_front_components(pending, next).map(|()| false);
        }
        if let Some(relative) = options.root_inside.as_deref().and_then(|inside| next.strip_prefix(inside).ok()) {
            current.clear();
            return push_front_components(pending, relative).map(|()| false);
        }
        // Into the system: the rest must stay there, plainly, and exist.
        let mut full = next.to_path_buf();
        full.extend(pending.iter());
        let plain = full.components().all(|part| matches!(part, Component::RootDir | Component::Normal(_)));
        let system = options.system_dirs.iter().any(|dir| full.starts_with(dir));
        if plain && system && full.exists() { Ok(true) } else { Err(()) }
    };
    if follow(&mut current, &mut pending, target).map_err(|()| escapes())? {
        return Ok(());
    }
    let mut hops = 0;
    while let Some(component) = pending.pop_front() {
        if component == "." {
            continue;
        }
        if component == ".." {
            if current.pop().is_none() {
                return Err(escapes());
            }
            continue;
        }
        current.push(component);
        let path: PathBuf = std::iter::once(root.as_os_str().to_owned()).chain(current.iter().cloned()).collect();
        match fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                current.pop();
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(ArtifactError::SymlinkLoop { path: link_relative, max: MAX_SYMLINK_HOPS });
                }
                let next = fs::read_link(&path).map_err(|source| ArtifactError::io("read symlink", &path, source))?;
                if follow(&mut current, &mut pending, &next).map_err(|()| escapes())? {
                    return Ok(());
                }
            }
            // A missing component (a dangling link) or a file: nothing further to follow,
            // and the remaining components are still checked lexically.
            Ok(_) => {}
            Err(error) if matches!(error.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {}
            Err(source) => return Err(ArtifactError::io("resolve symlink", &path, source)),
        }
    }
    Ok(())
}

/// Puts `target`'s components in front of `pending`; `Err` for an absolute target.
fn push_front_components(pending: &mut VecDeque<OsString>, target: &Path) -> Result<(), ()> {
    let mut components = Vec::new();
    for component in target.components() {
        match component {
            Component::Normal(name) => components.push(name.to_owned()),
            Component::CurDir => components.push(OsString::from(".")),
            Component::ParentDir => components.push(OsString::from("..")),
            Component::RootDir | Component::Prefix(_) => return Err(()),
        }
    }
    for component in components.into_iter().rev() {
        pending.push_front(component);
    }
    Ok(())
}

fn write_archive(
    root: &Path,
    entries: &BTreeMap<String, Entry>,
    mtime: u64,
    out: impl Write,
) -> Result<PackSummary, ArtifactError> {
    let archive_error = |source: io::Error| ArtifactError::io("write archive for", root, source);
    let encoder = zstd::Encoder::new(out, ZSTD_LEVEL).map_err(archive_error)?;
    let mut builder = tar::Builder::new(encoder);
    let mut summary = PackSummary { files: 0, bytes: 0 };
    for (relative, entry) in entries {
        match entry {
            Entry::Directory => {
                let mut header = header(EntryType::Directory, 0o755, 0, mtime);
                builder.append_data(&mut header, relative, io::empty()).map_err(archive_error)?;
            }
            Entry::Symlink { target } => {
                let mut header = header(EntryType::Symlink, 0o777, 0, mtime);
                builder.append_link(&mut header, relative, target).map_err(archive_error)?;
                summary.files += 1;
            }
            Entry::File { path, executable, size, device, inode } => {
                let file = open_unchanged(relative, path, *device, *inode)?;
                let mode = if *executable { 0o755 } else { 0o644 };
                let mut header = header(EntryType::Regular, mode, *size, mtime);
                let mut reader = ExactReader { inner: file.take(*size), remaining: *size };
                builder.append_data(&mut header, relative, &mut reader).map_err(|source| {
                    if source.kind() == io::ErrorKind::UnexpectedEof {
                        ArtifactError::FileChanged { path: relative.clone() }
                    } else {
                        archive_error(source)
                    }
                })?;
                summary.files += 1;
                summary.bytes += size;
            }
        }
    }
    let encoder = builder.into_inner().map_err(archive_error)?;
    // Flush explicitly: a `BufWriter` would otherwise flush on drop and lose the error.
    let mut out = encoder.finish().map_err(archive_error)?;
    out.flush().map_err(archive_error)?;
    Ok(summary)
}

fn header(entry_type: EntryType, mode: u32, size: u64, mtime: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// Opens a file collected earlier and checks it is still the same inode, so a
/// file swapped for a symlink in between is not followed.
fn open_unchanged(relative: &str, path: &Path, device: u64, inode: u64) -> Result<File, ArtifactError> {
    let file = File::open(path).map_err(|source| ArtifactError::io("open", path, source))?;
    let metadata = file.metadata().map_err(|source| ArtifactError::io("read metadata of", path, source))?;
    if metadata.dev() != device || metadata.ino() != inode {
        return Err(ArtifactError::FileChanged { path: relative.to_owned() });
    }
    Ok(file)
}

/// Reads exactly `remaining` bytes, failing with `UnexpectedEof` if the file shrank:
/// a short entry would corrupt the tar stream.
struct ExactReader<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let read = self.inner.read(buf)?;
        if read == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while packing"));
        }
        self.remaining -= read as u64;
        Ok(read)
    }
}
