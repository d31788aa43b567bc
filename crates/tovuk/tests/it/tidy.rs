//! Repository checks that keep the code base navigable: module docs, no debugging leftovers.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_starts_with_a_module_doc_and_has_no_debug_leftovers() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    rust_files(&crates, &mut files);
    assert!(files.len() > 20);
    let mut problems = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        if !text.starts_with("//!") {
            problems.push(format!("{}: does not start with a `//!` line saying what it is for", file.display()));
        }
        for needle in [concat!("db", "g!("), concat!("to", "do!("), concat!("unimple", "mented!(")] {
            if text.contains(needle) {
                problems.push(format!("{}: contains `{needle}`", file.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
