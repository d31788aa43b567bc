//! boto3 from PyPI against the in-process server, configured only by the app's environment.

use crate::support::{APP_ONE, APP_TWO, TestGate, TestServer, boto3_python, files_under, run_python};

/// Runs a driver script on a blocking thread (the server keeps serving on the runtime) and prints its output.
async fn run_script(server: &TestServer, script: &'static str, extra: Vec<(&'static str, String)>) -> String {
    let Some(python) = boto3_python() else { return String::from("skipped") };
    let endpoint = server.endpoint();
    let output =
        tokio::task::spawn_blocking(move || run_python(&python, script, &endpoint, &extra)).await.expect("python task");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    println!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{script} failed:\n{stdout}");
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn boto3_conformance() {
    let server = TestServer::start(TestGate::default()).await;
    let extra = vec![
        ("OTHER_BUCKET", APP_TWO.bucket.to_owned()),
        ("OTHER_ACCESS_KEY", APP_TWO.access_key.to_owned()),
        ("OTHER_SECRET", APP_TWO.secret.to_owned()),
        ("ONLY_CASE", std::env::var("ONLY_CASE").unwrap_or_default()),
    ];
    if run_script(&server, "boto3_conformance.py", extra).await == "skipped" {
        return;
    }

    assert!(server.gate.class_a.load(std::sync::atomic::Ordering::SeqCst) > 1000, "puts and lists are class A");
    assert!(server.gate.class_b.load(std::sync::atomic::Ordering::SeqCst) > 10, "gets and heads are class B");

    // Keys never become paths: a bucket holds only its index and id-named bodies.
    for file in files_under(&server.root.join(APP_ONE.bucket)) {
        let id_named = ["data/", "parts/"].iter().any(|dir| {
            file.strip_prefix(dir).is_some_and(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        });
        assert!(file == "index.redb" || id_named, "unexpected file in the bucket directory: {file}");
    }
    for file in files_under(&server.root) {
        assert!(file.starts_with(APP_ONE.bucket) || file.starts_with(APP_TWO.bucket), "file outside buckets: {file}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn class_a_cap_surfaces_as_quota_exceeded_in_boto3() {
    let server = TestServer::start(TestGate { class_a_cap: Some(3), ..TestGate::default() }).await;
    let stdout = run_script(&server, "boto3_quota.py", vec![("CLASS_A_CAP", "3".to_owned())]).await;
    if stdout != "skipped" {
        assert!(
            stdout.contains("refused: QuotaExceeded: bucket `app-one-files` reached its cap of 3 class A operations")
        );
    }
}
