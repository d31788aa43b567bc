//! `.tovukignore` matching and the upload selection, on real files in a temp dir.

use super::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A directory under the system temp dir, removed on drop. (The CLI has no `tempfile`
/// dependency, and these tests need little more than this.)
pub(crate) struct TestDir {
    path: PathBuf,
}

impl TestDir {
    pub(crate) fn new() -> TestDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("tovuk-cli-test-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create test dir");
        TestDir { path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` at `relative`, creating parents.
    pub(crate) fn write(&self, relative: &str, contents: &str) -> &TestDir {
        let path = self.path.join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create parents");
        std::fs::write(path, contents).expect("write");
        self
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Which of `paths` (`name/` for directories) the ignore file `rules` excludes, evaluated
/// like the walk does: last match wins, and nothing below an excluded directory survives.
fn excluded_by(rules: &str, paths: &[&str]) -> Vec<String> {
    let rules = IgnoreFile::parse(rules).expect("valid ignore file");
    let mut excluded: Vec<String> = Vec::new();
    for path in paths {
        let is_dir = path.ends_with('/');
        let path = path.trim_end_matches('/');
        let under_excluded = excluded.iter().any(|dir| path.starts_with(&format!("{dir}/")));
        let is_excluded = rules.verdict(path, is_dir).unwrap_or(false);
        if is_excluded || under_excluded {
            excluded.push(path.to_owned());
        }
    }
    excluded
}

#[track_caller]
fn check(rules: &str, paths: &[&str], expected: &[&str]) {
    assert_eq!(excluded_by(rules, paths), expected, "rules: {rules:?}");
}

#[test]
fn ignore_patterns() {
    let tree = ["a.log", "src/", "src/b.log", "src/main.rs", "logs/", "logs/keep.txt", "doc/", "doc/logs"];
    check("*.log", &tree, &["a.log", "src/b.log"]);
    check("/*.log", &tree, &["a.log"]);
    check("src/*.log", &tree, &["src/b.log"]);
    check("logs", &tree, &["logs", "logs/keep.txt", "doc/logs"]);
    check("logs/", &tree, &["logs", "logs/keep.txt"]);
    check("/logs/", &tree, &["logs", "logs/keep.txt"]);
    check("**/logs", &tree, &["logs", "logs/keep.txt", "doc/logs"]);
    check("logs/**", &tree, &["logs/keep.txt"]);
    check("src/**/*.rs", &tree, &["src/main.rs"]);
    check("?.log", &tree, &["a.log", "src/b.log"]);
    check("/?.log", &tree, &["a.log"]);
    check("# comment\n\n   \n", &tree, &[]);
    check("\\#notes", &["#notes"], &["#notes"]);
    check("*.log\n!src/b.log", &tree, &["a.log"]);
    check("!src/b.log\n*.log", &tree, &["a.log", "src/b.log"]);
    // An excluded directory is not descended into, so `!` cannot reach inside it (as in git).
    check("logs/\n!logs/keep.txt", &tree, &["logs", "logs/keep.txt"]);
    // A `!` on a directory does not re-include files excluded by name below it.
    check("*.log\n!src", &tree, &["a.log", "src/b.log"]);
    check("/", &tree, &[]);
}

#[test]
fn ignore_lines_are_parsed() {
    // A negated, anchored, directory-only line, and trailing spaces trimmed.
    let tree = ["build/", "build/app", "docs/", "docs/a.md", "docs/a.md.bak", "x/build/"];
    // As in git: `*` still matches the files inside the re-included directory.
    check("*\n!/build/\n", &tree, &["build/app", "docs", "docs/a.md", "docs/a.md.bak", "x/build"]);
    check("docs/*.md  \n", &tree, &["docs/a.md"]);
    // Character classes, which the hand-written parser did not support.
    check("docs/[ab].md", &tree, &["docs/a.md"]);
    // An unclosed class is a literal name, as in git.
    check("[unclosed", &["[unclosed", "u"], &["[unclosed"]);
}

#[test]
fn upload_files_skips_git_secrets_generated_output_and_ignored_paths() {
    let project = TestDir::new();
    project
        .write("tovuk.toml", "name = \"hello\"\n")
        .write("src/main.rs", "fn main() {}\n")
        .write("src/generated.rs", "// generated\n")
        .write(".env", "SECRET=1\n")
        .write(".env.example", "SECRET=\n")
        .write("target/debug/app", "binary")
        .write("node_modules/left-pad/index.js", "module.exports = 1;\n")
        .write(".git/config", "[core]\n")
        .write("vendor/.git", "gitdir: ../.git/modules/vendor\n")
        .write("vendor/lib.rs", "//! vendored\n")
        .write("dist/index.html", "<html></html>\n")
        .write("tmp/scratch.txt", "scratch\n")
        .write("notes/tmp/keep.txt", "nested tmp is not anchored\n")
        .write("debug.log", "log\n")
        .write("logs/important.log", "keep me\n")
        .write("fixtures/big.bin", "big\n")
        .write("fixtures/small.bin", "small\n")
        .write(
            ".tovukignore",
            "# scratch space\n/tmp/\n*.log\n!important.log\n!dist/\nsrc/generated.rs\ntovuk.toml\n.tovukignore\n",
        );
    let files =
        upload_files(project.path(), &Declared { excludes: vec!["fixtures/big.bin".to_owned()], includes: vec![] })
            .expect("list");
    assert_eq!(
        files,
        [
            ".env.example",
            ".tovukignore",
            "dist/index.html",
            "fixtures/small.bin",
            "logs/important.log",
            "notes/tmp/keep.txt",
            "src/main.rs",
            "tovuk.toml",
            "vendor/lib.rs",
        ]
    );
}

#[test]
fn manifest_excludes_use_the_manifest_glob_rules() {
    let project = TestDir::new();
    project.write("tovuk.toml", "").write("assets/raw/a.psd", "").write("assets/b.png", "").write("x/cache/y", "");
    let excludes = ["assets/raw".to_owned(), "cache/".to_owned()];
    assert_eq!(
        upload_files(project.path(), &Declared { excludes: excludes.to_vec(), includes: vec![] }).expect("list"),
        ["assets/b.png", "tovuk.toml"]
    );
}

#[test]
fn symlinks_are_listed_and_not_followed() {
    let project = TestDir::new();
    project.write("real/file.txt", "x");
    std::os::unix::fs::symlink("real", project.path().join("linked-dir")).expect("symlink");
    std::os::unix::fs::symlink("real/file.txt", project.path().join("linked-file")).expect("symlink");
    let files = upload_files(project.path(), &Declared::default()).expect("list");
    assert_eq!(files, ["linked-dir", "linked-file", "real/file.txt"]);
}

#[test]
fn list_without_git_uses_the_upload_selection() {
    let project = TestDir::new();
    project.write("tovuk.toml", "").write("keep.txt", "").write("skip.txt", "").write(".tovukignore", "skip.txt\n");
    // A temp dir is not inside a git work tree, so this is the non-git branch.
    assert_eq!(list(project.path(), &Declared::default()).expect("list"), [".tovukignore", "keep.txt", "tovuk.toml"]);
}

#[test]
fn declared_includes_ship_what_the_built_in_excludes_would_leave_out() {
    let project = TestDir::new();
    project
        .write("tovuk.toml", "")
        .write("dist/index.html", "<p>hi</p>")
        .write("build/out.txt", "x")
        .write(".env", "S=1");
    let plain = upload_files(project.path(), &Declared::default()).expect("list");
    assert_eq!(plain, ["tovuk.toml"]);
    let declared = Declared { excludes: vec![], includes: vec!["dist/".to_owned()] };
    assert_eq!(upload_files(project.path(), &declared).expect("list"), ["dist/index.html", "tovuk.toml"]);

    let manifest =
        "[app]\nname = \"site\"\nkind = \"static\"\ncapabilities = [\"http\"]\n\n[static]\nroot = \"dist\"\n";
    let (parsed, report) = tovuk_manifest::check_bytes("tovuk.toml", manifest.as_bytes());
    let parsed = parsed.unwrap_or_else(|| panic!("valid static manifest: {}", tovuk_manifest::render_human(&report)));
    let from_manifest = Declared::from_manifest(&parsed);
    assert_eq!(upload_files(project.path(), &from_manifest).expect("list"), ["dist/index.html", "tovuk.toml"]);
}
