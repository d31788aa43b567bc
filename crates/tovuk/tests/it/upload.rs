//! `tovuk deploy [DIR]`: archive uploads without git, and what the server refuses.

use crate::support::{Platform, UserEnv, bearer, git_output, http_bytes, project, web_manifest};

/// The files of the last upload, read from the server's repository with git.
fn uploaded_tree(platform: &Platform, app: &str) -> Vec<String> {
    let repo = platform.data_dir().join("repos").join(format!("{app}.git"));
    let output = git_output(&repo, &["ls-tree", "-r", "--name-only", "refs/tovuk/uploads"]);
    String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn deploy_uploads_the_project_without_secrets_or_build_output() {
    let platform = Platform::start();
    platform.create_app("hello");
    let dir = project(&[
        ("tovuk.toml", &web_manifest("hello")),
        ("server.sh", "echo hi\n"),
        ("src/main.rs", "fn main() {}\n"),
        (".env", "SECRET=hunter2\n"),
        ("target/debug/hello", "binary"),
        ("node_modules/x/index.js", "x"),
        ("notes/todo.txt", "ignored by .tovukignore"),
        (".tovukignore", "notes/\n"),
    ]);
    let listed = platform.tovuk().args(["deploy", "--list-files"]).current_dir(dir.path()).run().success();
    let listed: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(listed, [".tovukignore", "server.sh", "src/main.rs", "tovuk.toml"]);
    let json = platform.tovuk().args(["deploy", "--list-files", "--json"]).arg(dir.path()).run().success().json();
    assert_eq!(json["count"], 4);
    assert_eq!(
        platform.tovuk().args(["deploy", "list", "hello", "--json"]).run().success().json()["deploys"],
        serde_json::json!([]),
        "--list-files uploads nothing"
    );

    let run = platform.tovuk().args(["deploy"]).current_dir(dir.path()).run().success();
    assert!(run.stdout.contains("queued"), "{}", run.stdout);
    assert_eq!(uploaded_tree(&platform, "hello"), listed);

    let accepted = platform.tovuk().args(["deploy", "--json"]).arg(dir.path()).run().success().json();
    assert_eq!(accepted["duplicate"], true, "the same files again make no new deploy");
    let deploy = &accepted["deploy"];
    assert_eq!(deploy["source"]["kind"], "archive");
    assert_eq!(deploy["state_changes"][0]["state"], "queued");
    let ops = platform
        .tovuk()
        .args(["ops", "show", accepted["source_operation_id"].as_str().expect("op"), "--json"])
        .run()
        .success()
        .json();
    assert_eq!(ops["kind"], "source");

    std::fs::write(dir.path().join("server.sh"), "echo changed\n").expect("edit");
    let changed = platform.tovuk().args(["deploy", "--json"]).arg(dir.path()).run().success().json();
    assert_eq!(changed["duplicate"], false);
    let deploys = platform.tovuk().args(["deploy", "list", "hello", "--json"]).run().success().json();
    assert_eq!(deploys["deploys"].as_array().expect("deploys").len(), 2);
}

#[test]
fn a_failing_contract_uploads_nothing() {
    let platform = Platform::start();
    platform.create_app("hello");
    let dir = project(&[("tovuk.toml", "[app]\nname = \"hello\"\nkind = \"web\"\n")]);
    let run = platform.tovuk().args(["deploy"]).arg(dir.path()).run().code(1);
    assert!(run.stderr.contains("nothing was uploaded"), "{}", run.stderr);
    let json = platform.tovuk().args(["deploy", "--json"]).arg(dir.path()).run().code(1).json();
    assert_eq!(json["ok"], false, "--json prints the check report");
    let deploys = platform.tovuk().args(["deploy", "list", "hello", "--json"]).run().success().json();
    assert_eq!(deploys["deploys"], serde_json::json!([]));
    assert!(uploaded_tree(&platform, "hello").is_empty());
}

/// One tar entry, written with raw header bytes so any path or type can be built.
struct Entry<'a> {
    path: &'a [u8],
    kind: tar::EntryType,
    data: &'a [u8],
    link: &'a [u8],
}

fn archive(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut tar_bytes = Vec::new();
    {
        let mut builder = tar::Builder::new(&mut tar_bytes);
        for entry in entries {
            let mut header = tar::Header::new_old();
            header.as_old_mut().name[..entry.path.len()].copy_from_slice(entry.path);
            header.as_old_mut().linkname[..entry.link.len()].copy_from_slice(entry.link);
            header.set_entry_type(entry.kind);
            header.set_mode(0o644);
            header.set_size(entry.data.len() as u64);
            header.set_cksum();
            builder.append(&header, entry.data).expect("append");
        }
        builder.finish().expect("finish");
    }
    zstd::encode_all(&tar_bytes[..], 3).expect("zstd")
}

fn file<'a>(path: &'a str, data: &'a str) -> Entry<'a> {
    Entry { path: path.as_bytes(), kind: tar::EntryType::Regular, data: data.as_bytes(), link: b"" }
}

fn post_archive(platform: &Platform, app: &str, token: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let auth = bearer(token);
    let path = format!("/v1/apps/{app}/deploys");
    let (status, body) = http_bytes(&platform.api_addr(), "POST", &path, &[("Authorization", &auth)], body);
    (status, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
}

#[test]
fn unsafe_archives_are_refused_whole_and_change_nothing() {
    let platform = Platform::start_with(&["--max-unpacked-bytes", "1000000", "--max-upload-files", "50"]);
    let token = platform.create_app("hello");
    let manifest = web_manifest("hello");
    let good = file("tovuk.toml", &manifest);
    let zeros = vec![0u8; 2_000_000];
    let many: Vec<String> = (0..60).map(|i| format!("f{i}.txt")).collect();
    let mut too_many = vec![file("tovuk.toml", &manifest)];
    too_many.extend(many.iter().map(|name| file(name, "x")));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dot-dot", archive(&[file("tovuk.toml", &manifest), file("../escape.txt", "x")])),
        ("nested dot-dot", archive(&[file("tovuk.toml", &manifest), file("a/../../escape.txt", "x")])),
        ("absolute", archive(&[file("tovuk.toml", &manifest), file("/etc/escape.txt", "x")])),
        ("device", archive(&[good, Entry { path: b"dev", kind: tar::EntryType::Char, data: b"", link: b"" }])),
        (
            "symlink outside",
            archive(&[
                file("tovuk.toml", &manifest),
                Entry { path: b"passwd", kind: tar::EntryType::Symlink, data: b"", link: b"/etc/passwd" },
            ]),
        ),
        (
            "symlink climbing out",
            archive(&[
                file("tovuk.toml", &manifest),
                Entry { path: b"up", kind: tar::EntryType::Symlink, data: b"", link: b"../../x" },
            ]),
        ),
        (
            "bomb",
            archive(&[
                file("tovuk.toml", &manifest),
                Entry { path: b"zeros", kind: tar::EntryType::Regular, data: &zeros, link: b"" },
            ]),
        ),
        ("too many files", archive(&too_many)),
        ("not an archive", b"this is not zstd".to_vec()),
    ];
    for (name, body) in cases {
        let (status, json) = post_archive(&platform, "hello", &token, &body);
        assert_eq!(status, 422, "{name}: {json}");
        assert_eq!(json["error"]["code"], "bad_archive", "{name}: {json}");
        assert!(json["error"]["message"].as_str().expect("message").contains("refused whole"), "{name}");
    }
    assert!(uploaded_tree(&platform, "hello").is_empty(), "nothing was imported");
    let deploys = platform.tovuk().args(["deploy", "list", "hello", "--json"]).run().success().json();
    assert_eq!(deploys["deploys"], serde_json::json!([]));
    let work = platform.data_dir().join("work");
    let leftovers: Vec<_> = std::fs::read_dir(&work).map(|dir| dir.flatten().collect()).unwrap_or_default();
    assert!(leftovers.is_empty(), "upload scratch dirs are removed: {leftovers:?}");

    // A safe archive without a valid contract is refused by the check.
    let (status, json) = post_archive(&platform, "hello", &token, &archive(&[file("tovuk.toml", "[app]\n")]));
    assert_eq!((status, json["error"]["code"].as_str()), (422, Some("check_failed")), "{json}");
    assert_eq!(json["error"]["detail"]["ok"], false);
    // And a good one is accepted.
    let (status, json) = post_archive(&platform, "hello", &token, &archive(&[file("tovuk.toml", &manifest)]));
    assert_eq!(status, 201, "{json}");
}

#[test]
fn uploads_need_rights_on_the_app_and_fit_the_size_limit() {
    let platform = Platform::start_with(&["--max-upload-bytes", "4096"]);
    let one = platform.create_app("one");
    let two = platform.create_app("two");
    let body = archive(&[file("tovuk.toml", &web_manifest("two"))]);
    assert_eq!(post_archive(&platform, "two", &one, &body).0, 403);
    assert_eq!(post_archive(&platform, "two", "tovuk_nope", &body).0, 401);
    assert_eq!(post_archive(&platform, "ghost", &platform.admin_token(), &body).0, 404);
    let big: String = (0..20_000u32).map(|i| format!("{:x}", i.wrapping_mul(2_654_435_761))).collect();
    let (status, json) =
        post_archive(&platform, "two", &two, &archive(&[file("tovuk.toml", &web_manifest("two")), file("big", &big)]));
    assert_eq!((status, json["error"]["code"].as_str()), (413, Some("too_large")), "{json}");
    assert_eq!(post_archive(&platform, "two", &two, &body).0, 201);
}

#[test]
fn deploy_without_a_directory_or_app_explains_itself() {
    let user = UserEnv::new();
    let run = user.tovuk().args(["deploy", "/no/such/dir"]).run().code(2);
    assert!(run.stderr.contains("not a directory"), "{}", run.stderr);
    let empty = tempfile::tempdir().expect("tempdir");
    let run = user.tovuk().args(["deploy"]).arg(empty.path()).run().code(1);
    assert!(run.stderr.contains("tovuk.toml"), "{}", run.stderr);
}
