//! Tests for `pack`: determinism, selection, exclusion, symlinks and modes, on real files.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use crate::{ArtifactError, PackSummary, pack};

fn write(root: &Path, relative: &str, contents: &str) {
    let path = root.join(relative);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create dirs");
    }
    fs::write(path, contents).expect("write file");
}

fn set_mode(root: &Path, relative: &str, mode: u32) {
    fs::set_permissions(root.join(relative), fs::Permissions::from_mode(mode)).expect("chmod");
}

fn nothing_excluded(_: &str) -> bool {
    false
}

fn pack_to_vec(root: &Path, outputs: &[&str], is_excluded: &dyn Fn(&str) -> bool) -> Result<Vec<u8>, ArtifactError> {
    let outputs: Vec<String> = outputs.iter().map(|output| (*output).to_owned()).collect();
    let mut archive = Vec::new();
    pack(root, &outputs, is_excluded, &mut archive)?;
    Ok(archive)
}

/// One line per entry: type, mode, uid/gid, mtime, path, and size or link target.
fn list(archive: &[u8]) -> Vec<String> {
    let decoder = zstd::Decoder::new(archive).expect("decoder");
    let mut tar_archive = tar::Archive::new(decoder);
    let mut lines = Vec::new();
    for entry in tar_archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let header = entry.header().clone();
        let path = entry.path().expect("entry path").display().to_string();
        let kind = match header.entry_type() {
            tar::EntryType::Directory => "dir",
            tar::EntryType::Regular => "file",
            tar::EntryType::Symlink => "link",
            other => panic!("unexpected entry type {other:?}"),
        };
        let detail = match header.entry_type() {
            tar::EntryType::Symlink => {
                format!("-> {}", entry.link_name().expect("link name").expect("symlink has a target").display())
            }
            tar::EntryType::Regular => {
                let mut contents = String::new();
                entry.read_to_string(&mut contents).expect("read entry");
                format!("{contents:?}")
            }
            _ => String::new(),
        };
        lines.push(
            format!(
                "{kind} {:04o} {}:{} {} {path} {detail}",
                header.mode().expect("mode"),
                header.uid().expect("uid"),
                header.gid().expect("gid"),
                header.mtime().expect("mtime")
            )
            .trim_end()
            .to_owned(),
        );
    }
    lines
}

fn sample_tree(root: &Path) {
    write(root, "server.js", "console.log('hi')");
    write(root, "bin/start", "#!/bin/sh\nexec node server.js\n");
    set_mode(root, "bin/start", 0o750);
    write(root, "dist/app.js", "app");
    write(root, "dist/assets/logo.svg", "<svg/>");
    write(root, "node_modules/left-pad/index.js", "pad");
    write(root, ".env", "SECRET=1");
    fs::create_dir_all(root.join("empty")).expect("create dirs");
    symlink("dist/app.js", root.join("current.js")).expect("symlink");
}

#[test]
fn packs_everything_sorted_with_fixed_metadata() {
    let temp = tempfile::tempdir().expect("tempdir");
    sample_tree(temp.path());
    let archive = pack_to_vec(temp.path(), &[], &nothing_excluded).expect("pack");
    assert_eq!(
        list(&archive),
        [
            "file 0644 0:0 0 .env \"SECRET=1\"",
            "dir 0755 0:0 0 bin",
            "file 0755 0:0 0 bin/start \"#!/bin/sh\\nexec node server.js\\n\"",
            "link 0777 0:0 0 current.js -> dist/app.js",
            "dir 0755 0:0 0 dist",
            "file 0644 0:0 0 dist/app.js \"app\"",
            "dir 0755 0:0 0 dist/assets",
            "file 0644 0:0 0 dist/assets/logo.svg \"<svg/>\"",
            "dir 0755 0:0 0 empty",
            "dir 0755 0:0 0 node_modules",
            "dir 0755 0:0 0 node_modules/left-pad",
            "file 0644 0:0 0 node_modules/left-pad/index.js \"pad\"",
            "file 0644 0:0 0 server.js \"console.log('hi')\"",
        ]
    );
}

#[test]
fn summary_counts_files_symlinks_and_content_bytes() {
    let temp = tempfile::tempdir().expect("tempdir");
    sample_tree(temp.path());
    let mut archive = Vec::new();
    let summary = pack(temp.path(), &[], &nothing_excluded, &mut archive).expect("pack");
    let content_bytes = ["console.log('hi')", "#!/bin/sh\nexec node server.js\n", "app", "<svg/>", "pad", "SECRET=1"]
        .iter()
        .map(|contents| contents.len() as u64)
        .sum();
    assert_eq!(summary, PackSummary { files: 7, bytes: content_bytes });
}

#[test]
fn same_tree_packs_to_identical_bytes() {
    let first = tempfile::tempdir().expect("tempdir");
    let second = tempfile::tempdir().expect("tempdir");
    sample_tree(first.path());
    // The same tree built in another order, at another time, with other directory modes.
    write(second.path(), "dist/assets/logo.svg", "<svg/>");
    write(second.path(), "node_modules/left-pad/index.js", "pad");
    write(second.path(), "dist/app.js", "app");
    fs::create_dir_all(second.path().join("empty")).expect("create dirs");
    set_mode(second.path(), "empty", 0o700);
    symlink("dist/app.js", second.path().join("current.js")).expect("symlink");
    write(second.path(), ".env", "SECRET=1");
    write(second.path(), "bin/start", "#!/bin/sh\nexec node server.js\n");
    set_mode(second.path(), "bin/start", 0o700);
    write(second.path(), "server.js", "console.log('hi')");
    set_mode(second.path(), "server.js", 0o600);

    let first_archive = pack_to_vec(first.path(), &[], &nothing_excluded).expect("pack");
    assert_eq!(first_archive, pack_to_vec(first.path(), &[], &nothing_excluded).expect("pack"));
    assert_eq!(first_archive, pack_to_vec(second.path(), &[], &nothing_excluded).expect("pack"));
}

#[test]
fn outputs_keep_listed_files_and_directories_with_their_parents() {
    let temp = tempfile::tempdir().expect("tempdir");
    sample_tree(temp.path());
    let archive =
        pack_to_vec(temp.path(), &["dist/assets", "./bin/start", "server.js"], &nothing_excluded).expect("pack");
    assert_eq!(
        list(&archive),
        [
            "dir 0755 0:0 0 bin",
            "file 0755 0:0 0 bin/start \"#!/bin/sh\\nexec node server.js\\n\"",
            "dir 0755 0:0 0 dist",
            "dir 0755 0:0 0 dist/assets",
            "file 0644 0:0 0 dist/assets/logo.svg \"<svg/>\"",
            "file 0644 0:0 0 server.js \"console.log('hi')\"",
        ]
    );
}

#[test]
fn overlapping_outputs_are_packed_once() {
    let temp = tempfile::tempdir().expect("tempdir");
    sample_tree(temp.path());
    let once = pack_to_vec(temp.path(), &["dist"], &nothing_excluded).expect("pack");
    let twice = pack_to_vec(temp.path(), &["dist", "dist/app.js", "dist/"], &nothing_excluded).expect("pack");
    assert_eq!(once, twice);
}

#[test]
fn missing_output_is_an_error_naming_it_and_the_fix() {
    let temp = tempfile::tempdir().expect("tempdir");
    sample_tree(temp.path());
    for output in ["build", "dist/missing.js", "server.js/inner"] {
        let error =
            pack_to_vec(temp.path(), &["dist", output], &nothing_excluded).expect_err("pack_to_vec should refuse this");
        assert!(matches!(&error, ArtifactError::OutputNotFound { output: named, .. } if named == output), "{error}");
        let message = error.to_string();
        assert!(message.starts_with(&format!("build output `{output}` does not exist under `")), "{message}");
        assert!(message.ends_with("; check [build] output in tovuk.toml"), "{message}");
    }
}

#[test]
fn outputs_that_leave_the_root_are_refused() {
    let temp = tempfile::tempdir().expect("tempdir");
    sample_tree(temp.path());
    let cases = [
        (
            "../x",
            "build output `../x` contains `..`; outputs must stay inside the checkout; check [build] output in tovuk.toml",
        ),
        (
            "/etc",
            "build output `/etc` is absolute; list it relative to the checkout; check [build] output in tovuk.toml",
        ),
        ("  ", "build output `  ` is empty; check [build] output in tovuk.toml"),
    ];
    for (output, expected) in cases {
        let error = pack_to_vec(temp.path(), &[output], &nothing_excluded).expect_err("pack_to_vec should refuse this");
        assert_eq!(error.to_string(), expected);
    }
}

#[test]
fn output_through_a_symlinked_directory_is_refused() {
    let temp = tempfile::tempdir().expect("tempdir");
    sample_tree(temp.path());
    symlink("dist", temp.path().join("public")).expect("symlink");
    let error =
        pack_to_vec(temp.path(), &["public/app.js"], &nothing_excluded).expect_err("pack_to_vec should refuse this");
    assert_eq!(
        error.to_string(),
        "build output `public/app.js` goes through the symlink `public`; list the path it points to instead; check [build] output in tovuk.toml"
    );
    // The symlink itself as an output is kept as a symlink.
    let archive = pack_to_vec(temp.path(), &["public"], &nothing_excluded).expect("pack");
    assert_eq!(list(&archive), ["link 0777 0:0 0 public -> dist"]);
}

#[test]
fn excluded_paths_are_left_out() {
    let temp = tempfile::tempdir().expect("tempdir");
    sample_tree(temp.path());
    let is_excluded = |path: &str| path == "node_modules" || path == ".env" || path.ends_with(".svg");
    let archive = pack_to_vec(temp.path(), &[], &is_excluded).expect("pack");
    let paths: Vec<String> =
        list(&archive).iter().map(|line| line.split(' ').nth(4).expect("field").to_owned()).collect();
    assert_eq!(paths, ["bin", "bin/start", "current.js", "dist", "dist/app.js", "dist/assets", "empty", "server.js"]);
    // Exclusion applies inside outputs too, and an excluded output adds nothing.
    let archive = pack_to_vec(temp.path(), &["dist", "node_modules/left-pad"], &is_excluded).expect("pack");
    let paths: Vec<String> =
        list(&archive).iter().map(|line| line.split(' ').nth(4).expect("field").to_owned()).collect();
    assert_eq!(paths, ["dist", "dist/app.js", "dist/assets"]);
}

#[test]
fn excluded_directory_is_not_read() {
    let temp = tempfile::tempdir().expect("tempdir");
    sample_tree(temp.path());
    // An unreadable directory would fail the pack if it were walked.
    fs::create_dir_all(temp.path().join("private/inner")).expect("create dirs");
    set_mode(temp.path(), "private", 0o000);
    let result = pack_to_vec(temp.path(), &[], &|path: &str| path == "private");
    set_mode(temp.path(), "private", 0o755);
    result.expect("pack skips the excluded directory");
}

#[test]
fn executable_bit_is_kept_as_0755_and_everything_else_is_0644() {
    let temp = tempfile::tempdir().expect("tempdir");
    write(temp.path(), "owner-exec", "x");
    set_mode(temp.path(), "owner-exec", 0o744);
    write(temp.path(), "other-exec", "x");
    set_mode(temp.path(), "other-exec", 0o601);
    write(temp.path(), "plain", "x");
    set_mode(temp.path(), "plain", 0o664);
    write(temp.path(), "setuid", "x");
    set_mode(temp.path(), "setuid", 0o4755);
    let archive = pack_to_vec(temp.path(), &[], &nothing_excluded).expect("pack");
    assert_eq!(
        list(&archive),
        [
            "file 0755 0:0 0 other-exec \"x\"",
            "file 0755 0:0 0 owner-exec \"x\"",
            "file 0644 0:0 0 plain \"x\"",
            "file 0755 0:0 0 setuid \"x\"",
        ]
    );
}

#[test]
fn symlinks_inside_the_root_are_kept_as_symlinks() {
    let temp = tempfile::tempdir().expect("tempdir");
    write(temp.path(), "lib/real.so.1", "elf");
    symlink("real.so.1", temp.path().join("lib/real.so")).expect("symlink");
    symlink("../lib", temp.path().join("lib/self")).expect("symlink");
    symlink("./lib/real.so", temp.path().join("chain")).expect("symlink");
    symlink("lib/not-built-yet", temp.path().join("dangling")).expect("symlink");
    symlink(".", temp.path().join("here")).expect("symlink");
    let archive = pack_to_vec(temp.path(), &[], &nothing_excluded).expect("pack");
    assert_eq!(
        list(&archive),
        [
            "link 0777 0:0 0 chain -> ./lib/real.so",
            "link 0777 0:0 0 dangling -> lib/not-built-yet",
            "link 0777 0:0 0 here -> .",
            "dir 0755 0:0 0 lib",
            "link 0777 0:0 0 lib/real.so -> real.so.1",
            "file 0644 0:0 0 lib/real.so.1 \"elf\"",
            "link 0777 0:0 0 lib/self -> ../lib",
        ]
    );
}

#[test]
fn symlink_escaping_the_root_is_refused() {
    // (link, its target, other links made first)
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
    let cases: [Case; 5] = [
        ("up", "../outside", &[]),
        ("absolute", "/etc/passwd", &[]),
        ("deep", "dist/../../outside", &[]),
        // `..` applies to where `dist/parent` points (the root), so this leaves the root
        // although it looks like `dist/x` when read as text.
        ("through", "dist/parent/../x", &[("dist/parent", "..")]),
        // Through another link that is excluded from the archive.
        ("chained", "hop", &[("hop", "../../etc")]),
    ];
    for (link, target, other_links) in cases {
        let temp = tempfile::tempdir().expect("tempdir");
        let root = temp.path().join("root");
        write(&root, "dist/app.js", "app");
        for (other_link, other_target) in other_links {
            symlink(other_target, root.join(other_link)).expect("symlink");
        }
        symlink(target, root.join(link)).expect("symlink");
        let is_excluded = |path: &str| path == "hop" || path == "dist/parent";
        let error = pack_to_vec(&root, &[], &is_excluded).expect_err("pack_to_vec should refuse this");
        assert_eq!(
            error.to_string(),
            format!(
                "symlink `{link}` points to `{target}`, outside the build output and the system directories every release sees; make it a relative link to a file inside the output, or copy the file in"
            )
        );
    }
}

#[test]
fn symlink_loop_is_refused() {
    let temp = tempfile::tempdir().expect("tempdir");
    symlink("b", temp.path().join("a")).expect("symlink");
    symlink("a", temp.path().join("b")).expect("symlink");
    let error = pack_to_vec(temp.path(), &[], &nothing_excluded).expect_err("pack_to_vec should refuse this");
    assert!(matches!(error, ArtifactError::SymlinkLoop { .. }), "{error}");
}

#[test]
fn sockets_are_skipped() {
    let temp = tempfile::tempdir().expect("tempdir");
    write(temp.path(), "app.js", "app");
    let _listener = std::os::unix::net::UnixListener::bind(temp.path().join("app.sock")).expect("bind socket");
    let archive = pack_to_vec(temp.path(), &[], &nothing_excluded).expect("pack");
    assert_eq!(list(&archive), ["file 0644 0:0 0 app.js \"app\""]);
}

#[test]
fn long_paths_and_link_targets_survive() {
    let temp = tempfile::tempdir().expect("tempdir");
    let long_dir = "d".repeat(120);
    let long_file = format!("{long_dir}/{}", "f".repeat(120));
    write(temp.path(), &long_file, "x");
    symlink(&long_file, temp.path().join("link")).expect("symlink");
    let archive = pack_to_vec(temp.path(), &[], &nothing_excluded).expect("pack");
    assert_eq!(
        list(&archive),
        [
            format!("dir 0755 0:0 0 {long_dir}"),
            format!("file 0644 0:0 0 {long_file} \"x\""),
            format!("link 0777 0:0 0 link -> {long_file}"),
        ]
    );
}

#[test]
fn root_that_is_not_a_directory_is_refused() {
    let temp = tempfile::tempdir().expect("tempdir");
    let error =
        pack_to_vec(&temp.path().join("missing"), &[], &nothing_excluded).expect_err("pack_to_vec should refuse this");
    assert!(matches!(error, ArtifactError::RootNotADirectory { .. }), "{error}");
}

fn pack_with_options(root: &Path, options: &crate::PackOptions) -> Result<Vec<u8>, ArtifactError> {
    let mut archive = Vec::new();
    crate::pack_with(root, &[], &nothing_excluded, options, &mut archive)?;
    Ok(archive)
}

fn built_at_workspace() -> crate::PackOptions {
    crate::PackOptions {
        root_inside: Some("/workspace/source".into()),
        system_dirs: vec!["/usr".into(), "/bin".into()],
        mtime: 1_700_000_000,
    }
}

#[test]
fn absolute_symlinks_into_the_root_or_an_existing_system_path_are_kept_with_options() {
    let temp = tempfile::tempdir().expect("tempdir");
    let root = temp.path();
    write(root, ".venv/lib/python3/site.py", "x");
    // What `python3 -m venv` makes: links to the interpreter the run sandbox sees too,
    // and links to the project's own absolute path.
    symlink("/bin/sh", root.join(".venv/python3")).expect("symlink");
    symlink("python3", root.join(".venv/python")).expect("symlink");
    symlink("/workspace/source/.venv/lib", root.join(".venv/lib64")).expect("symlink");
    let archive = pack_with_options(root, &built_at_workspace()).expect("packed");
    let listed = list(&archive);
    assert!(listed.iter().any(|line| line.contains(".venv/python3 -> /bin/sh")), "{listed:?}");
    assert!(listed.iter().any(|line| line.contains(".venv/python -> python3")), "{listed:?}");
    assert!(listed.iter().any(|line| line.contains(".venv/lib64 -> /workspace/source/.venv/lib")), "{listed:?}");
    assert!(listed.iter().all(|line| line.contains("1700000000")), "every entry has the given mtime: {listed:?}");
    // Without the options, the same links are refused.
    assert!(matches!(pack_to_vec(root, &[], &nothing_excluded), Err(ArtifactError::SymlinkEscapes { .. })));
}

#[test]
fn absolute_symlinks_stay_refused_outside_the_root_missing_or_not_in_a_system_dir() {
    for target in [
        "/etc/passwd",
        "/usr/no/such/file",
        "/usr/../etc/passwd",
        "/workspace/source/../../etc/passwd",
        "/workspace/other",
    ] {
        let temp = tempfile::tempdir().expect("tempdir");
        write(temp.path(), "a.txt", "a");
        symlink(target, temp.path().join("link")).expect("symlink");
        let packed = pack_with_options(temp.path(), &built_at_workspace());
        assert!(matches!(packed, Err(ArtifactError::SymlinkEscapes { .. })), "{target}: {:?}", packed.map(|_| ()));
    }
    // Into the root, but out again through a link inside it.
    let temp = tempfile::tempdir().expect("tempdir");
    symlink("../..", temp.path().join("up")).expect("symlink");
    symlink("/workspace/source/up/etc", temp.path().join("link")).expect("symlink");
    assert!(pack_with_options(temp.path(), &built_at_workspace()).is_err());
}
