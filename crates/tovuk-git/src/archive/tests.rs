//! Unpacking tests: a round trip, then every refused archive leaves the destination empty.

use super::*;
use std::os::unix::fs::PermissionsExt;
use tempfile::TempDir;

/// Builds tar streams entry by entry from raw headers, so paths `tar::Builder` refuses
/// (`..`, absolute) can be written.
#[derive(Default)]
struct RawTar {
    bytes: Vec<u8>,
}

impl RawTar {
    fn entry(mut self, name: &[u8], entry_type: EntryType, data: &[u8], link: &[u8], mode: u32) -> Self {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        header.set_entry_type(entry_type);
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_cksum();
        self.bytes.extend_from_slice(header.as_bytes());
        self.bytes.extend_from_slice(data);
        self.bytes.resize(self.bytes.len().next_multiple_of(512), 0);
        self
    }

    fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(name.as_bytes(), EntryType::Regular, data, b"", 0o644)
    }

    fn dir(self, name: &str) -> Self {
        self.entry(name.as_bytes(), EntryType::Directory, b"", b"", 0o755)
    }

    fn symlink(self, name: &str, target: &str) -> Self {
        self.entry(name.as_bytes(), EntryType::Symlink, b"", target.as_bytes(), 0o777)
    }

    fn of_type(self, name: &str, entry_type: EntryType) -> Self {
        self.entry(name.as_bytes(), entry_type, b"", b"", 0o644)
    }

    /// An extension header (`L`, `K`, `x`) for the next entry.
    fn extension(self, entry_type: EntryType, data: &[u8]) -> Self {
        self.entry(b"././@LongLink", entry_type, data, b"", 0o644)
    }

    fn zst(mut self) -> Vec<u8> {
        self.bytes.extend_from_slice(&[0; 1024]);
        zstd::encode_all(self.bytes.as_slice(), 3).expect("compress")
    }
}

fn pax_record(key: &str, value: &str) -> Vec<u8> {
    // The length prefix counts itself, so find the length that is consistent.
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while format!("{len}{body}").len() != len {
        len += 1;
    }
    format!("{len}{body}").into_bytes()
}

fn unpack_fresh(archive: &[u8], limits: &ArchiveLimits) -> (TempDir, Result<Unpacked, ArchiveError>) {
    let dest = TempDir::new().expect("temp dir");
    let result = unpack(archive, dest.path(), limits);
    (dest, result)
}

/// Unpacks `archive`, expects a refusal, and checks that nothing was left behind.
fn refused(archive: &[u8], limits: &ArchiveLimits) -> ArchiveError {
    let (dest, result) = unpack_fresh(archive, limits);
    let error = result.expect_err("the archive should be refused");
    let left: Vec<_> =
        fs::read_dir(dest.path()).expect("read dest").map(|entry| entry.expect("entry").path()).collect();
    assert!(left.is_empty(), "{error}: left behind {left:?}");
    error
}

fn defaults() -> ArchiveLimits {
    ArchiveLimits::default()
}

/// Every refusal starts with a good file, so "dest is empty" proves the clean-up.
fn after_good_file() -> RawTar {
    RawTar::default().file("good/readme.md", b"hello\n")
}

fn assert_unsafe_path(error: ArchiveError, expected_reason: &str) {
    assert_eq!(error.code(), "archive_unsafe_path", "{error}");
    let ArchiveError::UnsafePath { reason, .. } = &error else { panic!("{error:?}") };
    assert!(reason.contains(expected_reason), "{error}");
}

#[test]
fn round_trip_keeps_contents_modes_and_symlinks() {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8], mode: u32| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        builder.append_data(&mut header, path, data).expect("append");
    };
    add("tovuk.toml", b"name = \"hello\"\n", 0o600);
    add("bin/start", b"#!/bin/sh\n", 0o700);
    add("src/deep/nested/lib.rs", b"//! lib\n", 0o644);
    let long_name = format!("{}/file.txt", "long-directory-name".repeat(8));
    add(&long_name, b"long", 0o644);
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(EntryType::Symlink);
    link.set_size(0);
    builder.append_link(&mut link, "src/current", "deep/nested").expect("link");
    let mut up_link = tar::Header::new_gnu();
    up_link.set_entry_type(EntryType::Symlink);
    up_link.set_size(0);
    builder.append_link(&mut up_link, "src/deep/config", "../../tovuk.toml").expect("link");
    let archive = zstd::encode_all(builder.into_inner().expect("finish").as_slice(), 3).expect("compress");

    let (dest, result) = unpack_fresh(&archive, &defaults());
    let unpacked = result.expect("unpack");
    assert_eq!(unpacked, Unpacked { files: 6, bytes: 15 + 10 + 8 + 4 });
    let root = dest.path();
    assert_eq!(fs::read(root.join("tovuk.toml")).expect("read"), b"name = \"hello\"\n");
    assert_eq!(fs::read(root.join(&long_name)).expect("read"), b"long");
    let mode = |path: &str| fs::metadata(root.join(path)).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode("tovuk.toml"), 0o644);
    assert_eq!(mode("bin/start"), 0o755);
    assert_eq!(mode("src/deep"), 0o755);
    assert_eq!(fs::read_link(root.join("src/current")).expect("link"), Path::new("deep/nested"));
    assert_eq!(fs::read(root.join("src/deep/config")).expect("through link"), b"name = \"hello\"\n");
}

#[test]
fn directory_entries_and_dot_slash_prefixes_are_accepted() {
    let archive = RawTar::default().dir("./").dir("./src/").file("./src/main.rs", b"fn main() {}\n").dir("src").zst();
    let (dest, result) = unpack_fresh(&archive, &defaults());
    assert_eq!(result.expect("unpack"), Unpacked { files: 1, bytes: 13 });
    assert!(dest.path().join("src/main.rs").is_file());
}

#[test]
fn pax_and_long_names_are_honoured() {
    let archive = RawTar::default()
        .extension(EntryType::XHeader, &pax_record("path", "from/pax.txt"))
        .file("ignored-header-name", b"pax")
        .extension(EntryType::GNULongName, b"from/long-name.txt\0")
        .file("ignored-too", b"gnu")
        .zst();
    let (dest, result) = unpack_fresh(&archive, &defaults());
    result.expect("unpack");
    assert_eq!(fs::read(dest.path().join("from/pax.txt")).expect("read"), b"pax");
    assert_eq!(fs::read(dest.path().join("from/long-name.txt")).expect("read"), b"gnu");
    assert!(!dest.path().join("ignored-header-name").exists());
}

#[test]
fn parent_dir_component_is_refused() {
    assert_unsafe_path(refused(&after_good_file().file("../x", b"evil").zst(), &defaults()), "`..`");
}

#[test]
fn absolute_path_is_refused() {
    assert_unsafe_path(refused(&after_good_file().file("/etc/x", b"evil").zst(), &defaults()), "absolute");
}

#[test]
fn parent_dir_inside_the_path_is_refused() {
    assert_unsafe_path(refused(&after_good_file().file("a/../../x", b"evil").zst(), &defaults()), "`..`");
}

#[test]
fn parent_dir_in_a_pax_path_is_refused() {
    let archive = after_good_file()
        .extension(EntryType::XHeader, &pax_record("path", "../escaped"))
        .file("harmless", b"evil")
        .zst();
    assert_unsafe_path(refused(&archive, &defaults()), "`..`");
}

#[test]
fn absolute_gnu_long_name_is_refused() {
    let archive = after_good_file().extension(EntryType::GNULongName, b"/etc/cron.d/x\0").file("harmless", b"x").zst();
    assert_unsafe_path(refused(&archive, &defaults()), "absolute");
}

#[test]
fn nul_inside_a_long_name_is_refused() {
    let archive = after_good_file().extension(EntryType::GNULongName, b"a\0b\0").file("harmless", b"x").zst();
    assert_unsafe_path(refused(&archive, &defaults()), "NUL");
}

#[test]
fn git_directory_is_refused() {
    let archive = after_good_file().file("sub/.GIT/config", b"[core]\n").zst();
    assert_unsafe_path(refused(&archive, &defaults()), "`.git`");
}

#[test]
fn path_over_the_limit_is_refused() {
    let limits = ArchiveLimits { max_path_bytes: 20, ..defaults() };
    assert_unsafe_path(refused(&after_good_file().file("a-name-that-is-too-long", b"x").zst(), &limits), "longer");
}

#[test]
fn path_deeper_than_the_limit_is_refused_before_anything_is_written() {
    // 2,000 directories in 4,001 bytes: under the length limit, far past the depth.
    let deep = format!("{}/f\0", vec!["a"; 2000].join("/"));
    let limits = ArchiveLimits { max_path_bytes: 8192, ..defaults() };
    let archive = after_good_file().extension(EntryType::GNULongName, deep.as_bytes()).file("harmless", b"x").zst();
    assert_unsafe_path(refused(&archive, &limits), "64 directories deep");
}

#[test]
fn empty_file_name_is_refused() {
    assert_unsafe_path(refused(&after_good_file().file("./", b"x").zst(), &defaults()), "empty");
}

#[test]
fn special_files_are_refused() {
    for (entry_type, kind) in [
        (EntryType::Char, "character device"),
        (EntryType::Block, "block device"),
        (EntryType::Fifo, "fifo"),
        (EntryType::Link, "hard link"),
        (EntryType::GNUSparse, "sparse file"),
        (EntryType::new(b'V'), "member of an unknown type"),
    ] {
        let error = refused(&after_good_file().of_type("dev/thing", entry_type).zst(), &defaults());
        assert_eq!(error.code(), "archive_special_file");
        assert!(matches!(&error, ArchiveError::SpecialFile { kind: found, .. } if *found == kind), "{error:?}");
    }
}

#[test]
fn hard_link_to_a_system_file_is_refused() {
    let archive = after_good_file().entry(b"passwd", EntryType::Link, b"", b"/etc/passwd", 0o644).zst();
    assert!(matches!(refused(&archive, &defaults()), ArchiveError::SpecialFile { kind: "hard link", .. }));
}

#[test]
fn pax_sparse_file_is_refused() {
    let archive =
        after_good_file().extension(EntryType::XHeader, &pax_record("GNU.sparse.major", "1")).file("sparse", b"").zst();
    assert!(matches!(refused(&archive, &defaults()), ArchiveError::SpecialFile { kind: "sparse file", .. }));
}

#[test]
fn absolute_symlink_is_refused() {
    let error = refused(&after_good_file().symlink("passwd", "/etc/passwd").zst(), &defaults());
    assert_eq!(error.code(), "archive_symlink_outside");
    assert_eq!(
        error.to_string(),
        "symlink `passwd` points outside the project (`/etc/passwd`); make it a relative link to a path inside the project, or exclude it in `.tovukignore`"
    );
}

#[test]
fn escaping_symlink_is_refused() {
    let error = refused(&after_good_file().symlink("sub/x", "../../x").zst(), &defaults());
    assert!(matches!(&error, ArchiveError::SymlinkOutside { path, target } if path == "sub/x" && target == "../../x"));
}

#[test]
fn symlink_to_the_root_is_accepted() {
    let archive = RawTar::default().symlink("sub/up", "..").symlink("sub/self", ".").zst();
    let (_dest, result) = unpack_fresh(&archive, &defaults());
    assert_eq!(result.expect("unpack").files, 2);
}

#[test]
fn parent_dir_after_a_symlink_in_a_target_is_refused() {
    // Lexically `sub/up/..` is `sub`, but the kernel resolves it to the root's parent.
    let archive = after_good_file().symlink("sub/up", "..").symlink("escape", "sub/up/..").zst();
    let error = refused(&archive, &defaults());
    assert_eq!(error.code(), "archive_unsafe_symlink", "{error}");
}

#[test]
fn writing_through_a_symlinked_directory_is_refused() {
    let archive = after_good_file().dir("real").symlink("link", "real").file("link/evil", b"x").zst();
    let error = refused(&archive, &defaults());
    assert_eq!(error.code(), "archive_path_conflict");
    assert!(matches!(&error, ArchiveError::Conflict { ancestor, ancestor_kind: "symlink", .. } if ancestor == "link"));
}

#[test]
fn writing_under_a_file_is_refused() {
    let archive = after_good_file().file("plain", b"x").file("plain/child", b"y").zst();
    assert!(matches!(refused(&archive, &defaults()), ArchiveError::Conflict { ancestor_kind: "file", .. }));
}

#[test]
fn replacing_a_symlink_with_a_file_is_refused() {
    let archive = after_good_file().symlink("config", "good/readme.md").file("config", b"x").zst();
    assert_eq!(refused(&archive, &defaults()).code(), "archive_duplicate_path");
}

#[test]
fn duplicate_file_is_refused() {
    let archive = after_good_file().file("good/readme.md", b"again").zst();
    assert!(matches!(refused(&archive, &defaults()), ArchiveError::Duplicate { path } if path == "good/readme.md"));
}

#[test]
fn too_many_files_are_refused() {
    let limits = ArchiveLimits { max_files: 4, ..defaults() };
    let mut tar = RawTar::default();
    for idx in 0..5 {
        tar = tar.file(&format!("file-{idx}"), b"x");
    }
    assert!(matches!(refused(&tar.zst(), &limits), ArchiveError::TooManyFiles { limit: 4 }));
}

#[test]
fn implicit_parent_directories_count_as_entries() {
    let limits = ArchiveLimits { max_files: 4, ..defaults() };
    let archive = RawTar::default().file("a/b/c/d/e", b"x").zst();
    assert_eq!(refused(&archive, &limits).code(), "archive_too_many_files");
}

#[test]
fn endless_global_headers_are_refused() {
    let limits = ArchiveLimits { max_files: 10, ..defaults() };
    let mut tar = after_good_file();
    for _ in 0..20 {
        tar = tar.extension(EntryType::XGlobalHeader, &pax_record("comment", "x"));
    }
    assert_eq!(refused(&tar.zst(), &limits).code(), "archive_too_many_files");
}

/// A stream of zeros behind a header that declares `size` bytes, compressed without
/// ever holding it in memory: the shape of an archive bomb.
fn zeros_bomb(size: u64) -> Vec<u8> {
    let encoder = zstd::Encoder::new(Vec::new(), 3).expect("encoder");
    let mut builder = tar::Builder::new(encoder);
    let mut readme = tar::Header::new_gnu();
    readme.set_size(6);
    readme.set_mode(0o644);
    builder.append_data(&mut readme, "good/readme.md", b"hello\n".as_slice()).expect("append");
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o644);
    builder.append_data(&mut header, "zeros.bin", io::repeat(0).take(size)).expect("append");
    builder.into_inner().expect("finish").finish().expect("compress")
}

#[test]
fn zeros_bomb_is_refused_before_it_is_written() {
    let archive = zeros_bomb(64 << 20);
    assert!(archive.len() < 64 * 1024, "the bomb compresses to {} bytes", archive.len());
    let limits = ArchiveLimits { max_unpacked_bytes: 1 << 20, ..defaults() };
    let error = refused(&archive, &limits);
    assert!(matches!(error, ArchiveError::TooLarge { limit } if limit == 1 << 20), "{error:?}");
    assert_eq!(
        error.to_string(),
        "the archive unpacks to more than 1 MiB; exclude generated files and data in `.tovukignore` or `[build] exclude`"
    );
}

#[test]
fn many_small_files_over_the_total_are_refused() {
    let limits = ArchiveLimits { max_unpacked_bytes: 10, ..defaults() };
    let archive = RawTar::default().file("a", b"123456").file("b", b"123456").zst();
    assert_eq!(refused(&archive, &limits).code(), "archive_too_large");
}

#[test]
fn oversized_file_is_refused() {
    let limits = ArchiveLimits { max_file_bytes: 1 << 20, ..defaults() };
    let error = refused(&zeros_bomb((1 << 20) + 1), &limits);
    assert!(
        matches!(&error, ArchiveError::FileTooLarge { path, size, limit } if path == "zeros.bin" && *size == (1 << 20) + 1 && *limit == 1 << 20),
        "{error:?}"
    );
    assert_eq!(error.code(), "archive_file_too_large");
}

#[test]
fn plain_tar_is_not_zstd() {
    let mut tar = after_good_file().bytes;
    tar.extend_from_slice(&[0; 1024]);
    assert!(matches!(refused(&tar, &defaults()), ArchiveError::NotZstd));
    assert!(matches!(refused(b"", &defaults()), ArchiveError::NotZstd));
}

#[test]
fn zstd_of_something_else_is_corrupt() {
    let archive = zstd::encode_all(b"this is not a tar archive at all".repeat(20).as_slice(), 3).expect("compress");
    assert_eq!(refused(&archive, &defaults()).code(), "archive_corrupt");
}

#[test]
fn truncated_stream_is_corrupt() {
    // Incompressible data, so the first file is written before the cut is reached.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..400_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let archive = RawTar::default().file("first.bin", &noise).file("second.bin", &noise).zst();
    let cut = &archive[..archive.len() * 3 / 4];
    let error = refused(cut, &defaults());
    assert_eq!(error.code(), "archive_corrupt", "{error}");
}

#[test]
fn truncated_tar_inside_a_complete_frame_is_corrupt() {
    let mut tar = after_good_file().file("big", &[7; 4096]).bytes;
    tar.truncate(tar.len() - 2048);
    let archive = zstd::encode_all(tar.as_slice(), 3).expect("compress");
    let error = refused(&archive, &defaults());
    assert_eq!(error.code(), "archive_corrupt", "{error}");
}

#[test]
fn directory_with_data_is_corrupt() {
    let archive = after_good_file().entry(b"dir/", EntryType::Directory, b"data", b"", 0o755).zst();
    assert_eq!(refused(&archive, &defaults()).code(), "archive_corrupt");
}

#[test]
fn oversized_pax_header_is_corrupt() {
    let archive = after_good_file().extension(EntryType::XHeader, &vec![b'9'; 70_000]).file("x", b"x").zst();
    assert_eq!(refused(&archive, &defaults()).code(), "archive_corrupt");
}

#[test]
fn non_empty_destination_is_left_alone() {
    let dest = TempDir::new().expect("temp dir");
    fs::write(dest.path().join("keep"), b"mine").expect("write");
    let archive = after_good_file().zst();
    let error = unpack(archive.as_slice(), dest.path(), &defaults()).expect_err("refused");
    assert_eq!(error.code(), "archive_dest_not_empty");
    assert!(error.is_server_fault());
    assert_eq!(fs::read(dest.path().join("keep")).expect("read"), b"mine");
}

#[test]
fn error_codes_are_stable() {
    let errors = [
        ArchiveError::NotZstd,
        ArchiveError::Corrupt { reason: String::new() },
        ArchiveError::UnsafePath { path: String::new(), reason: String::new() },
        ArchiveError::SpecialFile { path: String::new(), kind: "fifo" },
        ArchiveError::SymlinkOutside { path: String::new(), target: String::new() },
        ArchiveError::UnsafeSymlink { path: String::new(), target: String::new(), reason: String::new() },
        ArchiveError::TooManyFiles { limit: 1 },
        ArchiveError::TooLarge { limit: 1 },
        ArchiveError::FileTooLarge { path: String::new(), size: 2, limit: 1 },
        ArchiveError::Duplicate { path: String::new() },
        ArchiveError::Conflict { path: String::new(), ancestor: String::new(), ancestor_kind: "file" },
        ArchiveError::DestNotEmpty { dest: PathBuf::new() },
        ArchiveError::Io { path: PathBuf::new(), source: io::Error::other("disk full") },
    ];
    let codes: Vec<&str> = errors.iter().map(ArchiveError::code).collect();
    assert_eq!(
        codes,
        [
            "archive_not_zstd",
            "archive_corrupt",
            "archive_unsafe_path",
            "archive_special_file",
            "archive_symlink_outside",
            "archive_unsafe_symlink",
            "archive_too_many_files",
            "archive_too_large",
            "archive_file_too_large",
            "archive_duplicate_path",
            "archive_path_conflict",
            "archive_dest_not_empty",
            "archive_io",
        ]
    );
}

#[test]
fn sizes_are_shown_in_exact_units() {
    assert_eq!(format_bytes(1 << 30), "1 GiB");
    assert_eq!(format_bytes(512 << 20), "512 MiB");
    assert_eq!(format_bytes(3 << 10), "3 KiB");
    assert_eq!(format_bytes(1000), "1000 bytes");
}
