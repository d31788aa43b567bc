//! Tests for `BuildKey` and `load_public_key`: creation, modes, reloading and refusals.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::{ArtifactError, BuildKey, KEY_FILE_NAME, PUBLIC_KEY_FILE_NAME, load_public_key};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
}

#[test]
fn key_is_created_0600_in_a_0700_dir_and_reloads_to_the_same_public_key() {
    let temp = tempfile::tempdir().expect("tempdir");
    let keys_dir = temp.path().join("data/keys");
    let created = BuildKey::load_or_create(&keys_dir).expect("build key");

    assert_eq!(mode(&keys_dir), 0o700);
    assert_eq!(mode(&keys_dir.join(KEY_FILE_NAME)), 0o600);
    assert_eq!(mode(&keys_dir.join(PUBLIC_KEY_FILE_NAME)), 0o644);
    let key_file = fs::read_to_string(keys_dir.join(KEY_FILE_NAME)).expect("read entry");
    assert_eq!(key_file.len(), 65, "64 hex characters and a newline");
    assert_eq!(
        fs::read_to_string(keys_dir.join(PUBLIC_KEY_FILE_NAME)).expect("read entry"),
        format!("{}\n", created.public_key_hex())
    );
    // Only the two key files: temp files are cleaned up.
    assert_eq!(fs::read_dir(&keys_dir).expect("read dir").count(), 2);

    let reloaded = BuildKey::load_or_create(&keys_dir).expect("build key");
    assert_eq!(reloaded.public_key_hex(), created.public_key_hex());
    assert_eq!(reloaded.verifying_key(), created.verifying_key());
    assert_eq!(fs::read_to_string(keys_dir.join(KEY_FILE_NAME)).expect("read entry"), key_file, "never rewritten");
    assert_eq!(load_public_key(&keys_dir).expect("public key"), created.verifying_key());
}

#[test]
fn separate_keys_dirs_get_different_keys() {
    let first = tempfile::tempdir().expect("tempdir");
    let second = tempfile::tempdir().expect("tempdir");
    let first_key = BuildKey::load_or_create(first.path()).expect("build key");
    let second_key = BuildKey::load_or_create(second.path()).expect("build key");
    assert_ne!(first_key.public_key_hex(), second_key.public_key_hex());
}

#[test]
fn key_readable_by_others_is_refused_with_the_chmod_fix() {
    let temp = tempfile::tempdir().expect("tempdir");
    BuildKey::load_or_create(temp.path()).expect("build key");
    let key_path = temp.path().join(KEY_FILE_NAME);
    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o644)).expect("chmod");
    let error = BuildKey::load_or_create(temp.path()).expect_err("load_or_create should refuse this");
    assert!(matches!(error, ArtifactError::KeyPermissions { mode: 0o644, .. }), "{error}");
    assert_eq!(
        error.to_string(),
        format!(
            "build key `{path}` has mode 0644, so users other than its owner can read it; run `chmod 600 {path}`",
            path = key_path.display()
        )
    );
    assert_eq!(mode(&key_path), 0o644, "the file is left alone");
}

#[test]
fn malformed_key_is_refused_and_not_overwritten() {
    for contents in ["", "not hex at all", "abcd\n", &"zz".repeat(32)] {
        let temp = tempfile::tempdir().expect("tempdir");
        let key_path = temp.path().join(KEY_FILE_NAME);
        fs::write(&key_path, contents).expect("write file");
        fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600)).expect("chmod");
        let error = BuildKey::load_or_create(temp.path()).expect_err("load_or_create should refuse this");
        assert!(matches!(error, ArtifactError::MalformedKey { .. }), "{error}");
        let message = error.to_string();
        assert!(message.starts_with(&format!("build key `{}` is malformed (", key_path.display())), "{message}");
        assert!(message.contains("restore it from a backup, or delete it to create a new key"), "{message}");
        assert_eq!(fs::read_to_string(&key_path).expect("read entry"), contents);
    }
}

#[test]
fn group_writable_keys_dir_is_refused() {
    let temp = tempfile::tempdir().expect("tempdir");
    fs::set_permissions(temp.path(), fs::Permissions::from_mode(0o770)).expect("chmod");
    let error = BuildKey::load_or_create(temp.path()).expect_err("load_or_create should refuse this");
    assert!(matches!(error, ArtifactError::KeysDirPermissions { mode: 0o770, .. }), "{error}");
    assert!(error.to_string().ends_with(&format!("run `chmod 700 {}`", temp.path().display())), "{error}");
}

#[test]
fn stale_or_missing_public_key_is_rewritten_from_the_secret() {
    let temp = tempfile::tempdir().expect("tempdir");
    let build_key = BuildKey::load_or_create(temp.path()).expect("build key");
    let public_path = temp.path().join(PUBLIC_KEY_FILE_NAME);

    fs::write(&public_path, format!("{}\n", "00".repeat(32))).expect("write file");
    BuildKey::load_or_create(temp.path()).expect("build key");
    assert_eq!(load_public_key(temp.path()).expect("public key"), build_key.verifying_key());

    fs::remove_file(&public_path).expect("remove file");
    BuildKey::load_or_create(temp.path()).expect("build key");
    assert_eq!(load_public_key(temp.path()).expect("public key"), build_key.verifying_key());
    assert_eq!(mode(&public_path), 0o644);
}

#[test]
fn missing_public_key_names_the_path_and_the_fix() {
    let temp = tempfile::tempdir().expect("tempdir");
    let error = load_public_key(temp.path()).expect_err("load_public_key should refuse this");
    assert_eq!(
        error.to_string(),
        format!(
            "public build key `{}` not found; start the builder once to create the build key, or copy `build.ed25519.pub` from the builder's keys directory",
            temp.path().join(PUBLIC_KEY_FILE_NAME).display()
        )
    );
}

#[test]
fn malformed_public_key_is_refused() {
    let temp = tempfile::tempdir().expect("tempdir");
    fs::write(temp.path().join(PUBLIC_KEY_FILE_NAME), "12345").expect("write file");
    let error = load_public_key(temp.path()).expect_err("load_public_key should refuse this");
    assert!(matches!(error, ArtifactError::MalformedPublicKey { .. }), "{error}");
    assert!(error.to_string().contains("(expected 64 hex characters, found 5)"), "{error}");
}

#[test]
fn debug_shows_only_the_public_key() {
    let build_key = BuildKey::from_seed([7; 32]);
    let debug = format!("{build_key:?}");
    assert_eq!(debug, format!("BuildKey {{ public_key: {:?}, .. }}", build_key.public_key_hex()));
    assert!(!debug.contains(&hex::encode([7u8; 32])));
}
