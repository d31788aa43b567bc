//! Static apps: files from a release directory, and the paths that must not leave it.

use crate::support::{TestRouter, empty_body, read_text, send};
use hyper::header::HOST;
use hyper::{Method, Request, StatusCode};
use std::fs;
use tovuk_router::Target;

struct Site {
    _dir: tempfile::TempDir,
    stack: TestRouter,
}

/// A release with an index, a stylesheet and a docs directory, next to a secret outside it.
async fn start_site(with_404_page: bool) -> Site {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("release");
    fs::create_dir_all(root.join("docs")).expect("create release dirs");
    fs::write(root.join("index.html"), "<h1>home</h1>").expect("write index");
    fs::write(root.join("style.css"), "body { color: teal }").expect("write css");
    fs::write(root.join("docs/index.html"), "<h1>docs</h1>").expect("write docs index");
    fs::write(dir.path().join("secret.txt"), "TOP SECRET").expect("write secret");
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("leak.txt")).expect("symlink out");
    std::os::unix::fs::symlink(dir.path(), root.join("parent")).expect("symlink to parent dir");
    if with_404_page {
        fs::write(root.join("404.html"), "<h1>lost</h1>").expect("write 404 page");
    }
    let stack = TestRouter::start().await;
    stack.publish(&[("site", Target::Static { root })]);
    Site { _dir: dir, stack }
}

#[tokio::test]
async fn static_app_serves_index_and_files() {
    let site = start_site(false).await;
    let stack = &site.stack;
    let host = stack.host("site");

    let (status, headers, body) = stack.get(&host, "/").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "<h1>home</h1>"));
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");

    let (status, headers, body) = stack.get(&host, "/style.css").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "body { color: teal }"));
    assert_eq!(headers["content-type"], "text/css; charset=utf-8");
    assert_eq!(headers["content-length"], "20");

    let (status, headers, _) = stack.get(&host, "/docs?page=2").await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers["location"], "/docs/?page=2");
    let (status, _, body) = stack.get(&host, "/docs/").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "<h1>docs</h1>"));

    let request = Request::head("/style.css").header(HOST, &host).body(empty_body()).expect("request");
    let response = send(stack.addr, request).await;
    assert_eq!(response.headers()["content-length"], "20");
    assert_eq!(read_text(response.into_body()).await, "");

    let request =
        Request::builder().method(Method::POST).uri("/").header(HOST, &host).body(empty_body()).expect("request");
    let response = send(stack.addr, request).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET, HEAD");
}

#[tokio::test]
async fn missing_static_file_is_404() {
    let site = start_site(false).await;
    let (status, _, body) = site.stack.get(&site.stack.host("site"), "/missing.txt").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, "tovuk: app `site` has no file at `/missing.txt`\n");

    let site = start_site(true).await;
    let (status, headers, body) = site.stack.get(&site.stack.host("site"), "/missing.txt").await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_FOUND, "<h1>lost</h1>"));
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
}

#[tokio::test]
async fn static_paths_cannot_leave_the_release() {
    let site = start_site(false).await;
    let stack = &site.stack;
    let host = stack.host("site");
    for (path, expected_status) in [
        ("/../secret.txt", StatusCode::BAD_REQUEST),
        ("/docs/../../secret.txt", StatusCode::BAD_REQUEST),
        ("/%2e%2e/secret.txt", StatusCode::BAD_REQUEST),
        ("/%2E%2E/secret.txt", StatusCode::BAD_REQUEST),
        ("/docs/%2e%2e/%2e%2e/secret.txt", StatusCode::BAD_REQUEST),
        ("/%2e%2e%2fsecret.txt", StatusCode::BAD_REQUEST),
        ("/leak.txt", StatusCode::FORBIDDEN),
        ("/parent/secret.txt", StatusCode::FORBIDDEN),
    ] {
        let (status, _, body) = stack.get(&host, path).await;
        assert_eq!(status, expected_status, "{path}: {body}");
        assert!(!body.contains("TOP SECRET"), "{path} leaked the secret");
        assert_eq!(body, format!("tovuk: the path `{path}` is not allowed\n"));
    }
}
