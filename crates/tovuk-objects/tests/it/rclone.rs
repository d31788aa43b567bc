//! rclone (Debian's package, which `scripts/test` installs) against the in-process server: uploads of
//! a tree and of multipart files, listings, whole and ranged reads, checks, server-side copies,
//! deletes and refusals, each read back. rclone is configured by environment variables only.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{APP_ONE, APP_TWO, REGION, TestGate, TestServer, read_head, signed_headers, write_head};

/// The remote's name in `RCLONE_CONFIG_<NAME>_*`; paths are `tovuk:<bucket>/<key>`.
const REMOTE: &str = "TOVUK";
/// The big file: eight 5 MiB parts when rclone is told to switch to multipart at 5 MiB.
const LARGE_BYTES: usize = 40 << 20;
const LARGE_SEED: u64 = 3;
/// Uploaded from stdin (unknown size): three parts, the last one short.
const STREAMED_BYTES: usize = 12 << 20;
const MULTIPART_FLAGS: [&str; 4] = ["--s3-upload-cutoff", "5Mi", "--s3-chunk-size", "5Mi"];

/// rclone with a remote for one credential, a HOME of its own and nothing from the caller's environment.
struct Rclone {
    endpoint: String,
    access_key: String,
    secret: String,
    home: PathBuf,
}

impl Rclone {
    fn with_credential(&self, access_key: &str, secret: &str) -> Rclone {
        Rclone {
            endpoint: self.endpoint.clone(),
            access_key: access_key.to_owned(),
            secret: secret.to_owned(),
            home: self.home.clone(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let var = |option: &str| format!("RCLONE_CONFIG_{REMOTE}_{option}");
        let mut command = Command::new("rclone");
        // A clean environment: AWS_* or a CA bundle variable of the caller's would change what rclone does.
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("RCLONE_CONFIG", "/dev/null")
            .env(var("TYPE"), "s3")
            .env(var("PROVIDER"), "Other")
            .env(var("ENDPOINT"), &self.endpoint)
            .env(var("REGION"), REGION)
            .env(var("ACCESS_KEY_ID"), &self.access_key)
            .env(var("SECRET_ACCESS_KEY"), &self.secret)
            .env(var("FORCE_PATH_STYLE"), "true")
            // One attempt: a request the server gets wrong must fail the test, not be retried into passing.
            .env("RCLONE_RETRIES", "1")
            .env("RCLONE_LOW_LEVEL_RETRIES", "1");
        // Deliberately no NO_CHECK_BUCKET: rclone "creates" the bucket before single-file writes and
        // copies, and the server must answer that as S3 does for a bucket the caller owns.
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run rclone")
    }

    /// Runs rclone, asserts it succeeded, and returns its stdout and stderr.
    fn ok(&self, args: &[&str]) -> (Vec<u8>, String) {
        let output = self.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "rclone {args:?} failed ({}):\n{stderr}", output.status);
        (output.stdout, stderr)
    }

    fn text(&self, args: &[&str]) -> String {
        String::from_utf8(self.ok(args).0).expect("utf-8 output")
    }

    /// `lsf` output as sorted lines.
    fn lsf(&self, args: &[&str]) -> Vec<String> {
        let mut lines: Vec<String> =
            self.text(&[&["lsf"], args].concat()).lines().map(str::to_owned).filter(|line| !line.is_empty()).collect();
        lines.sort();
        lines
    }

    /// Runs rclone expecting failure and returns its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!output.status.success(), "rclone {args:?} should have failed:\n{stderr}");
        stderr
    }

    /// Runs rclone with `input` on stdin.
    fn with_stdin(&self, args: &[&str], input: &[u8]) -> String {
        let mut command = self.command(args);
        let mut child =
            command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn rclone");
        let mut stdin = child.stdin.take().expect("stdin");
        // Written from another thread while this one collects the output; an rclone that stops reading
        // (it failed) breaks the pipe, and its stderr says why.
        let (written, output) = std::thread::scope(|scope| {
            let writer = scope.spawn(move || stdin.write_all(input));
            let output = child.wait_with_output().expect("wait rclone");
            (writer.join().expect("stdin writer"), output)
        });
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "rclone {args:?} failed ({}):\n{stderr}", output.status);
        written.expect("write stdin");
        stderr
    }
}

fn remote(path: &str) -> String {
    format!("{}:{}/{path}", REMOTE.to_ascii_lowercase(), APP_ONE.bucket)
}

/// Deterministic bytes that do not compress or repeat (xorshift64).
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// Whole-object equality without printing megabytes when it fails (and faster than hashing in a debug build).
fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    let first_difference = got.iter().zip(want).position(|(a, b)| a != b);
    assert!(
        got.len() == want.len() && first_difference.is_none(),
        "{what}: got {} bytes, want {}; first difference at {first_difference:?}",
        got.len(),
        want.len()
    );
}

/// The local tree uploaded first: nested prefixes, and names that need escaping in URLs and XML.
fn tree() -> BTreeMap<&'static str, Vec<u8>> {
    BTreeMap::from([
        ("top.txt", b"hello from the top\n".to_vec()),
        ("docs/readme.md", b"# docs\n".to_vec()),
        ("docs/guides/deep/setup.txt", b"step one, step two\n".to_vec()),
        ("photos/2024/a.jpg", pseudo_random(70_000, 1)),
        ("photos/2024/b.jpg", pseudo_random(1_234, 2)),
        ("notes/with space+plus&amp ünï.txt", b"odd names\n".to_vec()),
    ])
}

fn write_tree(dir: &Path, files: &BTreeMap<&str, Vec<u8>>) {
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    }
}

/// A raw signed HEAD of `key` (an ASCII key: it is not URI-encoded): status and headers. rclone neither
/// prints ETags nor tells a missing object from an empty directory.
fn head(addr: SocketAddr, key: &str) -> (u16, HashMap<String, String>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let path = format!("/{}/{key}", APP_ONE.bucket);
    let headers = signed_headers(&APP_ONE, "HEAD", &addr.to_string(), &path);
    write_head(&mut stream, "HEAD", &path, &headers);
    read_head(&mut stream)
}

/// The ETag the server stored for `key`.
fn etag(addr: SocketAddr, key: &str) -> String {
    let (status, headers) = head(addr, key);
    assert_eq!(status, 200, "HEAD {key}");
    headers.get("etag").expect("etag").trim_matches('"').to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rclone_conformance() {
    let found = Command::new("rclone").arg("version").output().is_ok_and(|output| output.status.success());
    // As with boto3: a missing client fails with the fix rather than skipping.
    assert!(found, "rclone is needed on PATH: run scripts/test, which installs it (apt-get install rclone)");
    let server = TestServer::start(TestGate::default()).await;
    let endpoint = server.endpoint();
    let addr = server.addr;
    // rclone blocks; the server keeps serving on the runtime's workers.
    let scenario = tokio::task::spawn_blocking(move || {
        let work = tempfile::tempdir().expect("work dir");
        let home = work.path().join("home");
        std::fs::create_dir(&home).expect("home");
        let rclone = Rclone { endpoint, access_key: APP_ONE.access_key.into(), secret: APP_ONE.secret.into(), home };
        let started = Instant::now();
        tree_round_trip(&rclone, work.path());
        multipart_round_trip(&rclone, work.path(), addr);
        server_side_copies(&rclone);
        deletes(&rclone, addr);
        refusals(&rclone, work.path(), addr);
        println!("rclone scenario took {:?}", started.elapsed());
    })
    .await;
    if let Err(error) = scenario {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// `copy` of a tree up, listings with and without recursion (both ListObjects versions, paged),
/// `lsjson`, `cat`, ranged `cat`, `size`, and `check` finding nothing, then finding a change.
fn tree_round_trip(rclone: &Rclone, work: &Path) {
    let files = tree();
    let src = work.join("tree");
    write_tree(&src, &files);
    let src = src.to_str().expect("utf-8 path");
    rclone.ok(&["copy", src, &remote("tree")]);

    let all: Vec<String> = files.keys().map(|name| (*name).to_owned()).collect();
    assert_eq!(rclone.lsf(&["-R", "--files-only", &remote("tree")]), all);
    // A page of two keys makes rclone follow markers (v1) and continuation tokens (v2), with and without
    // URL-encoded listings.
    for version in ["1", "2"] {
        for encode in ["true", "false"] {
            let flags = ["--s3-list-version", version, "--s3-list-url-encode", encode, "--s3-list-chunk", "2"];
            let listed = rclone.lsf(&[&["-R", "--files-only"], &flags[..], &[&remote("tree")]].concat());
            assert_eq!(listed, all, "list version {version}, url-encoded {encode}");
            // Without recursion rclone lists with delimiter `/`: files here, prefixes as directories.
            let top = rclone.lsf(&[&flags[..], &[&remote("tree")]].concat());
            assert_eq!(top, ["docs/", "notes/", "photos/", "top.txt"], "list version {version}, url-encoded {encode}");
        }
    }
    assert_eq!(rclone.lsf(&[&remote("tree/docs")]), ["guides/", "readme.md"]);
    assert_eq!(
        rclone.lsf(&["--dirs-only", "-R", &remote("tree")]),
        ["docs/", "docs/guides/", "docs/guides/deep/", "notes/", "photos/", "photos/2024/"]
    );
    // MD5s rclone computes of the local files, to compare with what the server reports (its ETags).
    let local_md5: BTreeMap<String, String> = rclone
        .text(&["md5sum", src])
        .lines()
        .filter_map(|line| line.split_once("  "))
        .map(|(md5, name)| (name.to_owned(), md5.to_owned()))
        .collect();
    assert_eq!(local_md5.len(), files.len());
    let listed: serde_json::Value =
        serde_json::from_str(&rclone.text(&["lsjson", "--hash", &remote("tree/photos/2024")])).expect("lsjson");
    let entries = listed.as_array().expect("lsjson array");
    assert_eq!(entries.len(), 2, "{listed}");
    for entry in entries {
        let name = format!("photos/2024/{}", entry["Name"].as_str().expect("name"));
        assert_eq!(entry["Size"], files[name.as_str()].len(), "{entry}");
        assert_eq!(entry["IsDir"], false, "{entry}");
        assert_eq!(entry["Hashes"]["md5"].as_str(), Some(local_md5[&name].as_str()), "{entry}");
    }

    for (name, bytes) in &files {
        assert_eq!(&rclone.ok(&["cat", &remote(&format!("tree/{name}"))]).0, bytes, "cat {name}");
    }
    let photo = &files["photos/2024/a.jpg"];
    let ranged = rclone.ok(&["cat", "--offset", "65000", "--count", "4321", &remote("tree/photos/2024/a.jpg")]).0;
    assert_eq!(ranged, photo[65_000..69_321]);
    let tail = rclone.ok(&["cat", "--tail", "100", &remote("tree/photos/2024/a.jpg")]).0;
    assert_eq!(tail, photo[photo.len() - 100..]);

    let size: serde_json::Value =
        serde_json::from_str(&rclone.text(&["size", "--json", &remote("tree")])).expect("size json");
    assert_eq!(size["count"], files.len(), "{size}");
    assert_eq!(size["bytes"], files.values().map(Vec::len).sum::<usize>(), "{size}");

    // `check` compares sizes and MD5s (the ETags); `--download` compares the bytes themselves.
    let (_, stderr) = rclone.ok(&["check", src, &remote("tree")]);
    assert!(stderr.contains("0 differences found"), "{stderr}");
    assert!(stderr.contains(&format!("{} matching files", files.len())), "{stderr}");
    rclone.ok(&["check", "--download", src, &remote("tree")]);
    // The same check notices a file that differs, so its passing above means something.
    std::fs::write(Path::new(src).join("top.txt"), b"hello from the TOP\n").expect("change a file");
    let stderr = rclone.fails(&["check", src, &remote("tree")]);
    assert!(stderr.contains("1 differences found"), "{stderr}");
    std::fs::write(Path::new(src).join("top.txt"), &files["top.txt"]).expect("restore the file");
}

/// A 40 MiB file sent as eight parts and a 12 MiB stream of unknown size, both read back byte for byte.
fn multipart_round_trip(rclone: &Rclone, work: &Path, addr: SocketAddr) {
    let large = pseudo_random(LARGE_BYTES, LARGE_SEED);
    let dir = work.join("big");
    std::fs::create_dir(&dir).expect("big dir");
    std::fs::write(dir.join("large.bin"), &large).expect("write large");
    let dir = dir.to_str().expect("utf-8 path");
    let (_, stderr) = rclone.ok(&[&["copy", "-vv", dir, &remote("big")], &MULTIPART_FLAGS[..]].concat());
    assert!(stderr.contains("multipart upload starting chunk 8 size 5Mi"), "{stderr}");
    // The server's own record: an S3 multipart ETag, `<md5 of the part md5s>-<parts>`.
    assert!(etag(addr, "big/large.bin").ends_with("-8"), "not stored as 8 parts");
    assert_same_bytes(&rclone.ok(&["cat", &remote("big/large.bin")]).0, &large, "big/large.bin");
    let ranged = rclone.ok(&["cat", "--offset", "20971000", "--count", "1000", &remote("big/large.bin")]).0;
    assert_eq!(ranged, large[20_971_000..20_972_000], "a range across a part boundary");
    let (_, stderr) = rclone.ok(&["check", dir, &remote("big")]);
    assert!(stderr.contains("0 differences found"), "{stderr}");

    let streamed = pseudo_random(STREAMED_BYTES, 4);
    rclone.with_stdin(&["rcat", "--s3-chunk-size", "5Mi", &remote("streamed.bin")], &streamed);
    assert!(etag(addr, "streamed.bin").ends_with("-3"), "not stored as 3 parts");
    assert_same_bytes(&rclone.ok(&["cat", &remote("streamed.bin")]).0, &streamed, "streamed.bin");
    assert_eq!(
        rclone.lsf(&["--files-only", "--format", "ps", &remote("")]),
        [format!("streamed.bin;{STREAMED_BYTES}")]
    );
}

/// `copyto`/`moveto` within the bucket are CopyObject: the log says so and the copies read back.
fn server_side_copies(rclone: &Rclone) {
    let (_, stderr) = rclone.ok(&["copyto", "-v", &remote("tree/top.txt"), &remote("copies/top.txt")]);
    assert!(stderr.contains("server-side copy"), "{stderr}");
    assert_eq!(rclone.ok(&["cat", &remote("copies/top.txt")]).0, tree()["top.txt"]);

    let (_, stderr) = rclone.ok(&["copyto", "-v", &remote("big/large.bin"), &remote("copies/large.bin")]);
    assert!(stderr.contains("server-side copy"), "{stderr}");
    let copy = rclone.ok(&["cat", &remote("copies/large.bin")]).0;
    assert_same_bytes(&copy, &pseudo_random(LARGE_BYTES, LARGE_SEED), "copies/large.bin");

    let odd = "tree/notes/with space+plus&amp ünï.txt";
    let (_, stderr) = rclone.ok(&["moveto", "-v", &remote(odd), &remote("copies/moved ü+.txt")]);
    assert!(stderr.contains("server-side copy"), "{stderr}");
    assert_eq!(rclone.ok(&["cat", &remote("copies/moved ü+.txt")]).0, b"odd names\n");
    assert_eq!(rclone.lsf(&[&remote("tree/notes")]), Vec::<String>::new());
    assert_eq!(rclone.lsf(&["-R", "--files-only", &remote("copies")]), ["large.bin", "moved ü+.txt", "top.txt"]);
    // The bucket exists and is the credential's, so rclone's CreateBucket before writing is harmless.
    rclone.ok(&["mkdir", &format!("{}:{}", REMOTE.to_ascii_lowercase(), APP_ONE.bucket)]);
}

/// `deletefile` removes one object, `delete` everything under a prefix; listings and a HEAD agree.
fn deletes(rclone: &Rclone, addr: SocketAddr) {
    rclone.ok(&["deletefile", &remote("copies/top.txt")]);
    assert_eq!(rclone.lsf(&["-R", "--files-only", &remote("copies")]), ["large.bin", "moved ü+.txt"]);
    assert_eq!(head(addr, "copies/top.txt").0, 404);

    rclone.ok(&["delete", &remote("tree/photos")]);
    assert_eq!(
        rclone.lsf(&["-R", "--files-only", &remote("tree")]),
        ["docs/guides/deep/setup.txt", "docs/readme.md", "top.txt"]
    );
    rclone.ok(&["delete", &remote("")]);
    assert_eq!(rclone.lsf(&["-R", &remote("")]), Vec::<String>::new());
    let size: serde_json::Value = serde_json::from_str(&rclone.text(&["size", "--json", &remote("")])).expect("size");
    assert_eq!((size["count"].as_u64(), size["bytes"].as_u64()), (Some(0), Some(0)), "{size}");
}

/// A wrong secret, an unknown key and another app's bucket are refused, and rclone says why.
fn refusals(rclone: &Rclone, work: &Path, addr: SocketAddr) {
    let wrong_secret = rclone.with_credential(APP_ONE.access_key, "not-the-secret");
    let stderr = wrong_secret.fails(&["lsf", &remote("")]);
    assert!(stderr.contains("SignatureDoesNotMatch"), "{stderr}");
    // `copy` lists first, a GET whose error body names the code (a HEAD's 403 has no body to read).
    let local = work.join("denied");
    write_tree(&local, &BTreeMap::from([("denied.txt", b"never stored\n".to_vec())]));
    let stderr = wrong_secret.fails(&["copy", local.to_str().expect("utf-8 path"), &remote("denied")]);
    assert!(stderr.contains("SignatureDoesNotMatch"), "{stderr}");
    assert_eq!(head(addr, "denied/denied.txt").0, 404);

    let unknown = rclone.with_credential("AKIAUNKNOWN", APP_ONE.secret);
    let stderr = unknown.fails(&["lsf", &remote("")]);
    assert!(stderr.contains("InvalidAccessKeyId"), "{stderr}");

    let other = format!("{}:{}", REMOTE.to_ascii_lowercase(), APP_TWO.bucket);
    let stderr = rclone.fails(&["lsf", &other]);
    assert!(stderr.contains("AccessDenied"), "{stderr}");
    let stderr = rclone.fails(&["mkdir", &other]);
    assert!(stderr.contains("AccessDenied"), "{stderr}");
}
