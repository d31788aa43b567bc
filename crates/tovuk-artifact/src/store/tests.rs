//! Tests for sealing and verifying artifacts on disk: round trip, tampering, missing files.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, VerifyingKey};

use crate::{
    ArtifactError, ArtifactManifest, ArtifactPaths, BuildKey, Expected, SIGNATURE_DOMAIN, Verification, canonical_json,
    create_temp_archive, digest_file, pack, read_manifest, seal, sign, verify,
};

struct Sealed {
    _temp: tempfile::TempDir,
    artifacts_dir: PathBuf,
    key: BuildKey,
    manifest: ArtifactManifest,
}

impl Sealed {
    fn paths(&self) -> ArtifactPaths {
        ArtifactPaths::for_deploy(&self.artifacts_dir, &self.manifest.digest, &self.manifest.deploy_id).expect("paths")
    }

    fn expected(&self) -> Expected<'_> {
        Expected { app: &self.manifest.app, deploy_id: &self.manifest.deploy_id, commit_sha: &self.manifest.commit_sha }
    }

    fn verify(&self) -> Verification {
        verify(&self.artifacts_dir, &self.manifest.digest, &self.expected(), &self.key.verifying_key()).expect("verify")
    }
}

fn manifest(files: u64) -> ArtifactManifest {
    ArtifactManifest::new(
        "hello-http".to_owned(),
        "dep_01".to_owned(),
        "bld_01".to_owned(),
        "0123456789abcdef0123456789abcdef01234567".to_owned(),
        "2025-01-01T00:00:00Z".to_owned(),
        Some("./bin/start".to_owned()),
        files,
    )
}

/// Packs a small tree into a temp archive in `artifacts/` and seals it.
fn pack_and_seal() -> Sealed {
    let temp = tempfile::tempdir().expect("tempdir");
    let root = temp.path().join("checkout");
    fs::create_dir_all(root.join("bin")).expect("create dirs");
    fs::write(root.join("bin/start"), "#!/bin/sh\n").expect("write file");
    fs::write(root.join("server.js"), "console.log('hi')").expect("write file");
    let artifacts_dir = temp.path().join("data/artifacts");
    let keys_dir = temp.path().join("data/keys");
    let key = BuildKey::load_or_create(&keys_dir).expect("build key");

    let (temp_archive, archive_file) = create_temp_archive(&artifacts_dir).expect("temp archive");
    // Buffered, as the builder does: pack must flush it.
    let summary = pack(&root, &[], &|_| false, std::io::BufWriter::new(archive_file)).expect("pack");
    let manifest = seal(&artifacts_dir, &temp_archive, manifest(summary.files), &key).expect("seal");
    Sealed { _temp: temp, artifacts_dir, key, manifest }
}

fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = fs::read(path).expect("read file");
    bytes[offset] ^= 0x01;
    fs::write(path, bytes).expect("write file");
}

#[test]
fn pack_seal_verify_round_trip() {
    let sealed = pack_and_seal();
    let paths = sealed.paths();
    let (digest, size_bytes) = digest_file(&paths.archive).expect("digest");
    assert_eq!(sealed.manifest.digest, digest);
    assert_eq!(sealed.manifest.size_bytes, size_bytes);
    assert_eq!(sealed.manifest.files, 2);
    assert_eq!(
        sealed.verify(),
        Verification {
            ok: true,
            digest_ok: true,
            signature_ok: true,
            bound_ok: true,
            manifest: Some(sealed.manifest.clone()),
            expected_digest: digest.clone(),
            actual_digest: Some(digest.clone()),
            problem: None,
        }
    );
    assert_eq!(read_manifest(&sealed.artifacts_dir, &digest, "dep_01").expect("manifest"), sealed.manifest);
    // The stored manifest is exactly the canonical JSON, and the stored signature is `sign` of it.
    assert_eq!(fs::read(&paths.manifest).expect("read file"), canonical_json(&sealed.manifest));
    assert_eq!(
        fs::read_to_string(&paths.signature).expect("read entry"),
        format!("{}\n", sign(&sealed.key, &sealed.manifest))
    );
    // Exactly the three files: the temp archive was moved, and temp files are gone.
    let mut names: Vec<String> = fs::read_dir(&sealed.artifacts_dir)
        .expect("read artifacts dir")
        .map(|entry| entry.expect("entry").file_name().into_string().expect("utf-8 name"))
        .collect();
    names.sort();
    let hex_digest = digest.strip_prefix("sha256:").expect("prefix");
    assert_eq!(
        names,
        [format!("{hex_digest}.dep_01.json"), format!("{hex_digest}.dep_01.sig"), format!("{hex_digest}.tar.zst")]
    );
}

#[test]
fn canonical_json_has_struct_field_order() {
    let mut manifest = manifest(3);
    manifest.digest = format!("sha256:{}", "ab".repeat(32));
    manifest.size_bytes = 42;
    assert_eq!(
        String::from_utf8(canonical_json(&manifest)).expect("utf-8"),
        format!(
            r#"{{"schema":1,"app":"hello-http","deploy_id":"dep_01","build_id":"bld_01","commit_sha":"0123456789abcdef0123456789abcdef01234567","digest":"sha256:{}","size_bytes":42,"created_at":"2025-01-01T00:00:00Z","run_command":"./bin/start","format":"tar+zstd","files":3}}"#,
            "ab".repeat(32)
        )
    );
}

#[test]
fn signature_is_domain_separated() {
    let key = BuildKey::from_seed([1; 32]);
    let manifest = manifest(1);
    let mut signature_bytes = [0u8; 64];
    hex::decode_to_slice(sign(&key, &manifest), &mut signature_bytes).expect("hex");
    let signature = Signature::from_bytes(&signature_bytes);
    let json = canonical_json(&manifest);
    let verifying_key: VerifyingKey = key.verifying_key();
    assert!(verifying_key.verify_strict(&json, &signature).is_err(), "bare JSON must not verify");
    let mut message = SIGNATURE_DOMAIN.to_vec();
    message.extend_from_slice(&json);
    assert!(verifying_key.verify_strict(&message, &signature).is_ok());
    assert_eq!(SIGNATURE_DOMAIN, b"tovuk-artifact-v1\n");
}

#[test]
fn changed_archive_fails_the_digest_check() {
    let sealed = pack_and_seal();
    flip_byte(&sealed.paths().archive, 10);
    let verification = sealed.verify();
    assert!(!verification.ok);
    assert!(!verification.digest_ok);
    assert!(verification.signature_ok);
    assert_ne!(verification.actual_digest.as_deref(), Some(sealed.manifest.digest.as_str()));
    let problem = verification.problem.expect("problem");
    assert!(problem.ends_with(&format!("not `{}`: it was changed after signing", sealed.manifest.digest)), "{problem}");
}

#[test]
fn changed_manifest_fails_the_signature_check() {
    let sealed = pack_and_seal();
    let manifest_path = sealed.paths().manifest;
    // A change that keeps valid JSON: the run command now points elsewhere.
    let tampered = fs::read_to_string(&manifest_path).expect("read entry").replace("./bin/start", "./bin/evil!");
    fs::write(&manifest_path, tampered).expect("write file");
    let verification = sealed.verify();
    assert!(!verification.ok);
    assert!(!verification.signature_ok);
    assert!(verification.digest_ok);
    assert_eq!(
        verification.problem,
        Some(format!(
            "the manifest `{}` does not verify under the build key: it was changed after signing, or signed by another key",
            manifest_path.display()
        ))
    );
    // Any single flipped byte.
    let sealed = pack_and_seal();
    flip_byte(&sealed.paths().manifest, 5);
    let verification = sealed.verify();
    assert!(!verification.ok);
    assert!(!verification.signature_ok);
}

#[test]
fn signature_by_another_key_fails() {
    let sealed = pack_and_seal();
    let other_key = BuildKey::from_seed([9; 32]);
    fs::write(sealed.paths().signature, sign(&other_key, &sealed.manifest)).expect("write file");
    let verification = sealed.verify();
    assert!(!verification.ok);
    assert!(!verification.signature_ok);
    assert!(verification.digest_ok);
    // And the genuine signature under another verifying key fails too.
    let sealed = pack_and_seal();
    let verification =
        verify(&sealed.artifacts_dir, &sealed.manifest.digest, &sealed.expected(), &other_key.verifying_key())
            .expect("verify");
    assert!(!verification.ok);
    assert!(!verification.signature_ok);
}

#[test]
fn garbage_signature_file_fails() {
    let sealed = pack_and_seal();
    fs::write(sealed.paths().signature, "not a signature").expect("write file");
    let verification = sealed.verify();
    assert!(!verification.signature_ok);
    assert_eq!(
        verification.problem,
        Some(format!("the signature `{}` is not 128 hex characters", sealed.paths().signature.display()))
    );
}

#[test]
fn missing_files_fail_verification_naming_the_file() {
    for (which, what) in [("archive", "archive"), ("manifest", "manifest"), ("signature", "signature")] {
        let sealed = pack_and_seal();
        let paths = sealed.paths();
        let path = match which {
            "archive" => paths.archive,
            "manifest" => paths.manifest,
            _ => paths.signature,
        };
        fs::remove_file(&path).expect("remove file");
        let verification = sealed.verify();
        assert!(!verification.ok, "{which}");
        assert_eq!(verification.problem, Some(format!("the {what} `{}` is missing", path.display())));
        if which == "archive" {
            assert!(!verification.digest_ok);
            assert!(verification.signature_ok);
            assert_eq!(verification.actual_digest, None);
        } else {
            assert!(verification.digest_ok);
            assert!(!verification.signature_ok);
        }
    }
}

#[test]
fn valid_manifest_copied_under_another_digest_fails() {
    let first = pack_and_seal();
    // A second artifact in the same directory, from different content.
    let root = first.artifacts_dir.parent().expect("parent").join("other-checkout");
    fs::create_dir_all(&root).expect("create dirs");
    fs::write(root.join("other.js"), "other").expect("write file");
    let (temp_archive, archive_file) = create_temp_archive(&first.artifacts_dir).expect("temp archive");
    let summary = pack(&root, &[], &|_| false, archive_file).expect("pack");
    let second = seal(&first.artifacts_dir, &temp_archive, manifest(summary.files), &first.key).expect("seal");
    let first_paths = first.paths();
    let second_paths = ArtifactPaths::for_deploy(&first.artifacts_dir, &second.digest, "dep_01").expect("paths");
    // Replace the second artifact's archive, manifest and signature with the first's.
    fs::copy(&first_paths.archive, &second_paths.archive).expect("copy");
    fs::copy(&first_paths.manifest, &second_paths.manifest).expect("copy");
    fs::copy(&first_paths.signature, &second_paths.signature).expect("copy");
    let verification =
        verify(&first.artifacts_dir, &second.digest, &first.expected(), &first.key.verifying_key()).expect("verify");
    assert!(!verification.ok);
    assert!(!verification.signature_ok);
    assert!(!verification.digest_ok);
    assert!(
        verification.problem.expect("problem").contains(&format!("is signed for artifact `{}`", first.manifest.digest))
    );
}

#[test]
fn archive_size_must_match_the_manifest() {
    // A manifest (correctly signed) that claims the wrong size.
    let sealed = pack_and_seal();
    let mut wrong = sealed.manifest.clone();
    wrong.size_bytes += 1;
    let paths = sealed.paths();
    fs::write(&paths.manifest, canonical_json(&wrong)).expect("write file");
    fs::write(&paths.signature, sign(&sealed.key, &wrong)).expect("write file");
    let verification = sealed.verify();
    assert!(!verification.ok);
    assert!(verification.signature_ok);
    assert!(!verification.digest_ok);
    assert!(verification.problem.expect("problem").ends_with(&format!("but the manifest says {}", wrong.size_bytes)));
}

#[test]
fn malformed_digests_are_refused() {
    let temp = tempfile::tempdir().expect("tempdir");
    let key = BuildKey::from_seed([1; 32]);
    for digest in [
        "",
        "sha256:",
        "abc",
        &format!("sha256:{}", "A".repeat(64)),
        &format!("sha256:{}", "a".repeat(63)),
        &format!("sha512:{}", "a".repeat(64)),
        &format!("sha256:../{}", "a".repeat(61)),
    ] {
        let error = ArtifactPaths::for_digest(temp.path(), digest).expect_err("for_digest should refuse this");
        assert_eq!(
            error.to_string(),
            format!(
                "artifact digest `{digest}` is not `sha256:` followed by 64 lowercase hex characters; pass the digest exactly as recorded on the deploy"
            )
        );
        let expected = Expected { app: "a", deploy_id: "dep_01", commit_sha: "c" };
        assert!(matches!(
            verify(temp.path(), digest, &expected, &key.verifying_key()),
            Err(ArtifactError::InvalidDigest { .. })
        ));
        assert!(matches!(read_manifest(temp.path(), digest, "dep_01"), Err(ArtifactError::InvalidDigest { .. })));
    }
}

#[test]
fn digest_file_is_sha256_of_the_contents() {
    let temp = tempfile::tempdir().expect("tempdir");
    let path = temp.path().join("abc");
    fs::File::create(&path).expect("create").write_all(b"abc").expect("write");
    assert_eq!(
        digest_file(&path).expect("digest"),
        ("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_owned(), 3)
    );
}

#[test]
fn read_manifest_of_an_unknown_digest_is_not_found() {
    let temp = tempfile::tempdir().expect("tempdir");
    let digest = format!("sha256:{}", "0".repeat(64));
    let error = read_manifest(temp.path(), &digest, "dep_01").expect_err("read_manifest should refuse this");
    assert!(matches!(error, ArtifactError::ManifestNotFound { .. }), "{error}");
}

#[test]
fn seal_refuses_an_unsupported_schema() {
    let temp = tempfile::tempdir().expect("tempdir");
    let (temp_archive, _) = create_temp_archive(temp.path()).expect("temp archive");
    let mut manifest = manifest(0);
    manifest.schema = 2;
    let error =
        seal(temp.path(), &temp_archive, manifest, &BuildKey::from_seed([1; 32])).expect_err("seal should refuse this");
    assert_eq!(
        error.to_string(),
        "artifact manifest field `schema` is `2`, expected `1`; build the manifest with `ArtifactManifest::new`"
    );
}

#[test]
fn sealing_identical_output_twice_keeps_one_verifiable_artifact() {
    let sealed = pack_and_seal();
    let root = sealed.artifacts_dir.parent().expect("parent").parent().expect("parent").join("checkout");
    let (temp_archive, archive_file) = create_temp_archive(&sealed.artifacts_dir).expect("temp archive");
    let summary = pack(&root, &[], &|_| false, archive_file).expect("pack");
    let mut second = manifest(summary.files);
    second.deploy_id = "dep_02".to_owned();
    let second = seal(&sealed.artifacts_dir, &temp_archive, second, &sealed.key).expect("seal");
    assert_eq!(second.digest, sealed.manifest.digest);
    // One archive, and each build's own signed manifest beside it.
    assert!(sealed.verify().ok);
    assert_eq!(read_manifest(&sealed.artifacts_dir, &second.digest, "dep_02").expect("manifest").deploy_id, "dep_02");
    assert_eq!(read_manifest(&sealed.artifacts_dir, &second.digest, "dep_01").expect("manifest").deploy_id, "dep_01");
    let second_expected = Expected { deploy_id: "dep_02", ..sealed.expected() };
    let verified = verify(&sealed.artifacts_dir, &second.digest, &second_expected, &sealed.key.verifying_key());
    assert!(verified.expect("verify").ok);
}

#[test]
fn a_valid_artifact_of_another_app_deploy_or_commit_is_refused() {
    let sealed = pack_and_seal();
    let wrong = [
        Expected { app: "another-app", ..sealed.expected() },
        Expected { commit_sha: "fedcba9876543210fedcba9876543210fedcba98", ..sealed.expected() },
    ];
    for expected in wrong {
        let verification =
            verify(&sealed.artifacts_dir, &sealed.manifest.digest, &expected, &sealed.key.verifying_key())
                .expect("verify");
        assert!(!verification.ok && !verification.bound_ok && verification.signature_ok && verification.digest_ok);
        assert!(verification.problem.expect("problem").contains("it belongs to another deploy"));
    }
    // Another deploy's manifest copied over this one's: signed, same digest, wrong deploy.
    let mut other = sealed.manifest.clone();
    other.deploy_id = "dep_99".to_owned();
    let json = canonical_json(&other);
    let paths = sealed.paths();
    fs::write(&paths.manifest, &json).expect("write");
    fs::write(&paths.signature, format!("{}\n", sign(&sealed.key, &other))).expect("write");
    let verification = sealed.verify();
    assert!(!verification.ok && !verification.bound_ok, "{verification:?}");
}

#[test]
fn concurrent_seals_of_identical_output_leave_a_verifiable_pair() {
    let sealed = pack_and_seal();
    let root = sealed.artifacts_dir.parent().expect("data dir").parent().expect("temp dir").join("checkout");
    std::thread::scope(|scope| {
        for n in 0..8 {
            let (root, sealed) = (&root, &sealed);
            scope.spawn(move || {
                for round in 0..5 {
                    let (temp_archive, archive_file) =
                        create_temp_archive(&sealed.artifacts_dir).expect("temp archive");
                    let summary = pack(root, &[], &|_| false, archive_file).expect("pack");
                    let mut manifest = manifest(summary.files);
                    manifest.deploy_id = format!("dep_{n}_{round}");
                    seal(&sealed.artifacts_dir, &temp_archive, manifest, &sealed.key).expect("seal");
                }
            });
        }
    });
    assert_eq!(sealed.verify().problem, None);
    let left: Vec<_> = fs::read_dir(&sealed.artifacts_dir)
        .expect("read artifacts dir")
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");
}
