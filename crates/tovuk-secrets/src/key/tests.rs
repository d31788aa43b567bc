//! Tests for `MasterKey`: the key file (creation, mode, refusals) and sealing (round trip, wrong key, tampering, context binding).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::{KeyError, MASTER_KEY_FILE, MasterKey, OpenError, SealContext};

const CONTEXT: SealContext<'static> = SealContext { app_id: "app_01", name: "DATABASE_URL", version: 3 };

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
}

fn new_key() -> (tempfile::TempDir, MasterKey) {
    let temp = tempfile::tempdir().expect("tempdir");
    let key = MasterKey::create(temp.path()).expect("create");
    (temp, key)
}

#[test]
fn create_writes_32_bytes_0600_and_load_gives_the_same_key() {
    let temp = tempfile::tempdir().expect("tempdir");
    let keys_dir = temp.path().join("data/keys");
    let created = MasterKey::create(&keys_dir).expect("create");
    let key_path = keys_dir.join(MASTER_KEY_FILE);

    assert_eq!(mode(&key_path), 0o600);
    assert_eq!(mode(&keys_dir), 0o700);
    assert_eq!(fs::read(&key_path).expect("read").len(), 32);
    // Only the key: the temp file is gone.
    assert_eq!(fs::read_dir(&keys_dir).expect("read dir").count(), 1);

    let loaded = MasterKey::load(&keys_dir).expect("load");
    assert_eq!(loaded.key_id(), created.key_id());
    let sealed = created.seal(&CONTEXT, "postgres://u:p@db/app").expect("seal");
    assert_eq!(loaded.open(&CONTEXT, &sealed).expect("open").as_str(), "postgres://u:p@db/app");
}

#[test]
fn key_id_is_sk_and_16_hex_and_debug_shows_only_it() {
    let (_temp, key) = new_key();
    let id = key.key_id();
    assert!(id.starts_with("sk_"), "{id}");
    assert_eq!(id.len(), 3 + 16, "{id}");
    assert!(id[3..].chars().all(|ch| matches!(ch, '0'..='9' | 'a'..='f')), "{id}");
    assert_eq!(format!("{key:?}"), format!("MasterKey {{ key_id: {id:?}, .. }}"));
}

#[test]
fn key_id_is_sha256_of_domain_and_key() {
    use sha2::{Digest, Sha256};
    let (temp, key) = new_key();
    let bytes = fs::read(temp.path().join(MASTER_KEY_FILE)).expect("read");
    let digest = Sha256::new().chain_update(b"tovuk secrets key id\0").chain_update(&bytes).finalize();
    assert_eq!(key.key_id(), format!("sk_{}", hex::encode(&digest[..8])));
}

#[test]
fn create_refuses_to_overwrite_an_existing_key() {
    let (temp, key) = new_key();
    let key_path = temp.path().join(MASTER_KEY_FILE);
    let before = fs::read(&key_path).expect("read");

    let error = MasterKey::create(temp.path()).expect_err("must refuse");
    assert!(matches!(&error, KeyError::Exists { path } if *path == key_path), "{error}");
    assert!(error.to_string().contains("already exists"), "{error}");
    assert_eq!(fs::read(&key_path).expect("read"), before, "key file untouched");
    assert_eq!(MasterKey::load(temp.path()).expect("load").key_id(), key.key_id());
}

#[test]
fn separate_keys_differ() {
    let (_first_dir, first) = new_key();
    let (_second_dir, second) = new_key();
    assert_ne!(first.key_id(), second.key_id());
}

#[test]
fn load_of_a_missing_key_says_restore_from_backup() {
    let temp = tempfile::tempdir().expect("tempdir");
    let error = MasterKey::load(temp.path()).expect_err("missing");
    let key_path = temp.path().join(MASTER_KEY_FILE);
    assert!(matches!(&error, KeyError::Missing { path } if *path == key_path), "{error}");
    assert_eq!(
        error.to_string(),
        format!(
            "the secrets master key {} is missing: restore it from your backup (without it the stored secrets cannot be read); nothing was changed",
            key_path.display()
        )
    );
    assert_eq!(fs::read_dir(temp.path()).expect("read dir").count(), 0, "load creates nothing");
}

#[test]
fn load_of_a_short_or_long_key_is_wrong_length() {
    for len in [0usize, 31, 33, 64] {
        let temp = tempfile::tempdir().expect("tempdir");
        let key_path = temp.path().join(MASTER_KEY_FILE);
        fs::write(&key_path, vec![7u8; len]).expect("write");
        fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600)).expect("chmod");
        let error = MasterKey::load(temp.path()).expect_err("wrong length");
        assert!(matches!(&error, KeyError::WrongLength { len: found, .. } if *found == len as u64), "{error}");
        let message = error.to_string();
        assert!(message.contains(&key_path.display().to_string()), "{message}");
        assert!(message.contains("must be exactly 32"), "{message}");
        assert!(message.contains("restore it from your backup"), "{message}");
    }
}

#[test]
fn load_of_a_key_others_can_read_says_chmod_600() {
    let (temp, _key) = new_key();
    let key_path = temp.path().join(MASTER_KEY_FILE);
    for open_mode in [0o644, 0o640, 0o604, 0o601] {
        fs::set_permissions(&key_path, fs::Permissions::from_mode(open_mode)).expect("chmod");
        let error = MasterKey::load(temp.path()).expect_err("too open");
        assert!(matches!(&error, KeyError::TooOpen { mode, .. } if *mode == open_mode), "{error}");
        assert!(error.to_string().contains(&format!("chmod 600 {}", key_path.display())), "{error}");
    }
    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o400)).expect("chmod");
    MasterKey::load(temp.path()).expect("0400 is fine");
}

#[test]
fn seal_open_round_trip_including_empty_and_unicode() {
    let (_temp, key) = new_key();
    for value in ["", "x", "pässwörd 🔑", &"v".repeat(64 * 1024)] {
        let sealed = key.seal(&CONTEXT, value).expect("seal");
        assert_eq!(sealed.key_id, key.key_id());
        assert_eq!(sealed.nonce.len(), 24);
        assert_eq!(sealed.ciphertext.len(), value.len() + 16, "ciphertext plus tag");
        assert_eq!(key.open(&CONTEXT, &sealed).expect("open").as_str(), value);
    }
}

#[test]
fn two_seals_of_one_value_differ() {
    let (_temp, key) = new_key();
    let first = key.seal(&CONTEXT, "same value").expect("seal");
    let second = key.seal(&CONTEXT, "same value").expect("seal");
    assert_ne!(first.nonce, second.nonce);
    assert_ne!(first.ciphertext, second.ciphertext);
}

#[test]
fn another_key_gives_wrong_key_and_no_plaintext() {
    let (_first_dir, first) = new_key();
    let (_second_dir, second) = new_key();
    let sealed = first.seal(&CONTEXT, "canary-plaintext").expect("seal");

    let error = second.open(&CONTEXT, &sealed).expect_err("wrong key");
    assert_eq!(error, OpenError::WrongKey { expected: first.key_id(), actual: second.key_id() });
    assert!(!error.to_string().contains("canary"), "{error}");

    // A row that claims the right key id but was sealed by another key is corrupt, not plaintext.
    let forged = crate::Sealed { key_id: second.key_id(), ..sealed };
    assert_eq!(second.open(&CONTEXT, &forged), Err(OpenError::Corrupt));
}

#[test]
fn any_altered_byte_is_corrupt() {
    let (_temp, key) = new_key();
    let sealed = key.seal(&CONTEXT, "value").expect("seal");
    for index in 0..sealed.ciphertext.len() {
        let mut altered = sealed.clone();
        altered.ciphertext[index] ^= 0x01;
        assert_eq!(key.open(&CONTEXT, &altered), Err(OpenError::Corrupt), "byte {index}");
    }
    let mut altered = sealed.clone();
    altered.nonce[0] ^= 0x01;
    assert_eq!(key.open(&CONTEXT, &altered), Err(OpenError::Corrupt));

    let mut short_nonce = sealed.clone();
    short_nonce.nonce.pop();
    assert_eq!(key.open(&CONTEXT, &short_nonce), Err(OpenError::Corrupt));

    let mut truncated = sealed;
    truncated.ciphertext.truncate(10);
    assert_eq!(key.open(&CONTEXT, &truncated), Err(OpenError::Corrupt));

    assert_eq!(
        OpenError::Corrupt.to_string(),
        "the stored value can't be decrypted: it was altered or belongs to another app/name; set it again with `tovuk env set`"
    );
}

#[test]
fn a_value_opens_only_in_its_own_context() {
    let (_temp, key) = new_key();
    let sealed = key.seal(&CONTEXT, "value").expect("seal");
    let others = [
        SealContext { app_id: "app_02", ..CONTEXT },
        SealContext { name: "OTHER", ..CONTEXT },
        SealContext { version: 4, ..CONTEXT },
        SealContext { version: -3, ..CONTEXT },
    ];
    for other in others {
        assert_eq!(key.open(&other, &sealed), Err(OpenError::Corrupt), "{other:?}");
    }
    // Length prefixes: moving a byte from one field to the next changes the context.
    let split = key.seal(&SealContext { app_id: "ab", name: "c", version: 1 }, "value").expect("seal");
    assert_eq!(key.open(&SealContext { app_id: "a", name: "bc", version: 1 }, &split), Err(OpenError::Corrupt));
}

#[test]
fn invalid_utf8_plaintext_is_corrupt() {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};

    let (temp, key) = new_key();
    let bytes = fs::read(temp.path().join(MASTER_KEY_FILE)).expect("read");
    let cipher = XChaCha20Poly1305::new_from_slice(&bytes).expect("32-byte key");
    let nonce = XNonce::default();
    let aad = super::associated_data(&CONTEXT);
    let ciphertext = cipher.encrypt(&nonce, Payload { msg: &[0xff, 0xfe], aad: &aad }).expect("encrypt");
    let sealed = crate::Sealed { key_id: key.key_id(), nonce: nonce.to_vec(), ciphertext };
    assert_eq!(key.open(&CONTEXT, &sealed), Err(OpenError::Corrupt));
}
