//! The bridge to `git http-backend`: git speaks the smart-HTTP protocol, we pass it a
//! validated path, the authenticated user and the platform's configuration.

use crate::git::{self, GitError};
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use std::any::Any;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::io::ReaderStream;
use tokio_util::sync::CancellationToken;

/// One smart-HTTP request, already authenticated and with a validated path.
pub struct BackendRequest {
    pub repos_root: PathBuf,
    /// A validated app name; the repository is `<repos_root>/<app>.git`.
    pub app: String,
    /// `info/refs`, `git-upload-pack` or `git-receive-pack`.
    pub service_path: &'static str,
    pub method: String,
    pub query: String,
    pub content_type: Option<String>,
    pub content_length: Option<String>,
    pub content_encoding: Option<String>,
    pub git_protocol: Option<String>,
    /// The authenticated token's id; git uses it in reflogs.
    pub remote_user: String,
    pub remote_addr: String,
    /// Config that outranks the repository's (`GIT_CONFIG_COUNT` pairs).
    pub config: Vec<(String, String)>,
    /// Extra environment for git and the hooks it runs.
    pub env: Vec<(String, String)>,
    /// The request body is cut off past this many bytes.
    pub max_body_bytes: u64,
    /// Shown to the pusher (as `remote:` lines) when git refuses a pack over
    /// `receive.maxInputSize`: git's own words name neither the limit nor a way around it.
    pub size_refusal_note: Option<String>,
    /// Dropped when git has exited: holds locks and push sessions for exactly that long.
    pub keepalive: Box<dyn Any + Send>,
}

/// Runs `git http-backend` for `request`, streaming `body` in and the answer out.
pub async fn serve_backend(request: BackendRequest, body: Body) -> Result<Response, GitError> {
    let mut command = git::isolated();
    command
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", &request.repos_root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", format!("/{}.git/{}", request.app, request.service_path))
        .env("REQUEST_METHOD", &request.method)
        .env("QUERY_STRING", &request.query)
        .env("REMOTE_USER", &request.remote_user)
        .env("REMOTE_ADDR", &request.remote_addr)
        .env("GIT_CONFIG_COUNT", request.config.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (i, (key, value)) in request.config.iter().enumerate() {
        command.env(format!("GIT_CONFIG_KEY_{i}"), key).env(format!("GIT_CONFIG_VALUE_{i}"), value);
    }
    for (name, value) in [
        ("CONTENT_TYPE", &request.content_type),
        // Only when the client sent one: chunked pushes have no length.
        ("CONTENT_LENGTH", &request.content_length),
        ("HTTP_CONTENT_ENCODING", &request.content_encoding),
        ("GIT_PROTOCOL", &request.git_protocol),
    ] {
        if let Some(value) = value {
            command.env(name, value);
        }
    }
    command.envs(request.env.iter().map(|(key, value)| (key, value)));
    let mut child = command.spawn().map_err(GitError::Spawn)?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(GitError::Failed { command: "http-backend".into(), stderr: "no pipes".into() });
    };

    let too_large = CancellationToken::new();
    let max_body_bytes = request.max_body_bytes;
    let cut_off = too_large.clone();
    tokio::spawn(async move {
        let mut body = body;
        let mut received: u64 = 0;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            let Ok(data) = frame.into_data() else { continue };
            received += data.len() as u64;
            if received > max_body_bytes {
                tracing::info!(received, max_body_bytes, "push body over the limit; stopping git");
                cut_off.cancel();
                break;
            }
            if stdin.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = stdin.shutdown().await;
    });
    let app = request.app.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::debug!(app = %app, "git: {line}");
        }
    });
    let keepalive = request.keepalive;
    tokio::spawn(async move {
        tokio::select! {
            _ = child.wait() => {}
            () = too_large.cancelled() => { let _ = child.kill().await; }
        }
        drop(keepalive);
    });

    let mut reader = BufReader::new(stdout);
    let mut builder = Response::builder();
    let mut status = StatusCode::OK;
    loop {
        let mut line = String::new();
        let read = reader.read_line(&mut line).await.map_err(GitError::Spawn)?;
        let line = line.trim_end_matches(['\r', '\n']);
        if read == 0 {
            return Err(GitError::Failed { command: "http-backend".into(), stderr: "it answered no headers".into() });
        }
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().and_then(|code| code.parse().ok());
            status = code.and_then(|code| StatusCode::from_u16(code).ok()).unwrap_or(StatusCode::BAD_GATEWAY);
        } else if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            builder = builder.header(name, value);
        }
    }
    let body = match request.size_refusal_note {
        Some(note) if request.service_path == "git-receive-pack" => {
            let (relayed, into) = tokio::io::duplex(64 * 1024);
            tokio::spawn(async move {
                if let Err(error) = crate::sideband::relay_receive_pack(reader, into, &note).await {
                    tracing::debug!(%error, "the push's answer was cut short");
                }
            });
            Body::from_stream(ReaderStream::new(relayed))
        }
        _ => Body::from_stream(ReaderStream::new(reader)),
    };
    builder
        .status(status)
        .body(body)
        .map_err(|error| GitError::Failed { command: "http-backend".into(), stderr: error.to_string() })
}
