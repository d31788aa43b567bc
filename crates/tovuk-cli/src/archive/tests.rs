//! Packing tests: the bytes are deterministic and the archive keeps what the server needs.

use super::*;
use crate::project_files::{Declared, tests::TestDir, upload_files};
use std::os::unix::fs::symlink;

/// One archive member as the server would see it.
#[derive(Debug, PartialEq, Eq)]
struct Member {
    path: String,
    kind: char,
    mode: u32,
    link: Option<String>,
    data: Vec<u8>,
}

fn members(archive: &[u8]) -> Vec<Member> {
    let decoder = zstd::Decoder::new(archive).expect("zstd");
    let mut tar = tar::Archive::new(decoder);
    let mut members = Vec::new();
    for entry in tar.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let header = entry.header();
        assert_eq!(header.mtime().expect("mtime"), 0);
        assert_eq!(header.uid().expect("uid"), 0);
        assert_eq!(header.gid().expect("gid"), 0);
        let kind = header.entry_type().as_byte() as char;
        let mode = header.mode().expect("mode");
        let path = String::from_utf8(entry.path_bytes().into_owned()).expect("utf-8");
        let link = entry.link_name_bytes().map(|link| String::from_utf8(link.into_owned()).expect("utf-8"));
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("data");
        members.push(Member { path, kind, mode, link, data });
    }
    members
}

fn pack_to_vec(dir: &Path, files: &[String]) -> (Packed, Vec<u8>) {
    let mut out = Vec::new();
    let packed = pack(dir, files, &mut out).expect("pack");
    (packed, out)
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn packing_twice_gives_the_same_bytes() {
    let project = TestDir::new();
    project.write("tovuk.toml", "name = \"hello\"\n").write("src/main.rs", "fn main() {}\n");
    let files = upload_files(project.path(), &Declared::default()).expect("list");
    let (_, first) = pack_to_vec(project.path(), &files);

    // Times, the order of the list and the group/other bits must not matter.
    let main = project.path().join("src/main.rs");
    fs::File::options()
        .write(true)
        .open(&main)
        .expect("open")
        .set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
        .expect("touch");
    set_mode(&main, 0o600);
    let reversed: Vec<String> = files.iter().rev().cloned().collect();
    let (packed, second) = pack_to_vec(project.path(), &reversed);

    assert_eq!(first, second);
    assert_eq!(packed, Packed { files: 2, bytes: 15 + 13 });
}

#[test]
fn symlinks_and_the_execute_bit_are_kept() {
    let project = TestDir::new();
    project.write("bin/start", "#!/bin/sh\n").write("config/app.toml", "port = 8080\n").write("readme.md", "hi\n");
    set_mode(&project.path().join("bin/start"), 0o700);
    set_mode(&project.path().join("readme.md"), 0o600);
    symlink("../config/app.toml", project.path().join("bin/app.toml")).expect("symlink");
    symlink("config", project.path().join("current")).expect("symlink");
    let files = upload_files(project.path(), &Declared::default()).expect("list");

    let (packed, archive) = pack_to_vec(project.path(), &files);
    assert_eq!(packed, Packed { files: 5, bytes: 10 + 12 + 3 });
    let member = |path: &str, kind: char, mode: u32, link: Option<&str>, data: &str| Member {
        path: path.to_owned(),
        kind,
        mode,
        link: link.map(str::to_owned),
        data: data.as_bytes().to_vec(),
    };
    assert_eq!(
        members(&archive),
        [
            member("bin/app.toml", '2', 0o777, Some("../config/app.toml"), ""),
            member("bin/start", '0', 0o755, None, "#!/bin/sh\n"),
            member("config/app.toml", '0', 0o644, None, "port = 8080\n"),
            member("current", '2', 0o777, Some("config"), ""),
            member("readme.md", '0', 0o644, None, "hi\n"),
        ]
    );
}

#[test]
fn long_paths_survive() {
    let project = TestDir::new();
    let long = format!("{}/file.txt", "a-rather-long-directory-name".repeat(6));
    project.write(&long, "deep\n");
    let (_, archive) = pack_to_vec(project.path(), std::slice::from_ref(&long));
    assert_eq!(members(&archive)[0].path, long);
}

#[test]
fn symlinks_the_server_refuses_are_refused_first() {
    let project = TestDir::new();
    symlink("/etc/passwd", project.path().join("passwd")).expect("symlink");
    symlink("../../x", project.path().join("up")).expect("symlink");
    symlink("sub/../x", project.path().join("sideways")).expect("symlink");
    let error = |path: &str| pack(project.path(), &[path.to_owned()], Vec::new()).expect_err("refused");
    assert_eq!(
        error("passwd"),
        "symlink `passwd` points outside the project (`/etc/passwd`), which the server refuses; make it a relative link to a path inside the project, or exclude it in `.tovukignore`"
    );
    assert!(error("up").contains("points outside the project"));
    assert!(error("sideways").contains("`..` after a name"));
}

#[test]
fn a_missing_file_is_named() {
    let project = TestDir::new();
    let error = pack(project.path(), &["gone.txt".to_owned()], Vec::new()).expect_err("refused");
    assert!(error.starts_with("cannot read `") && error.contains("gone.txt"), "{error}");
}

#[test]
fn a_file_that_shrinks_while_packing_is_an_error() {
    let mut reader = ExactReader { inner: b"abc".as_slice(), remaining: 5 };
    let mut data = Vec::new();
    let error = reader.read_to_end(&mut data).expect_err("short");
    assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
}
