//! App logs: the runner sends what instances print; users read and follow them.
//! `GET /v1/apps/{app}/logs` is NDJSON over chunked HTTP; with `follow=true` it stays
//! open and pushes each line as it is stored.

use crate::auth::{Caller, app_for};
use crate::http::ApiJson;
use crate::{ApiFailure, ControlState};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use std::collections::HashMap;
use std::convert::Infallible;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tovuk_api_types::{AppLogBatch, AppLogEvent, AppLogLine};

/// Lines kept per app; older ones are dropped as new ones arrive.
const KEEP_LINES: i64 = 20_000;

fn view(app: &str, line: tovuk_store::AppLogLine) -> AppLogLine {
    AppLogLine {
        seq: line.seq,
        at: line.at,
        app: app.to_owned(),
        deploy_id: line.deploy_id,
        instance: line.instance,
        stream: line.stream,
        line: line.line,
    }
}

impl ControlState {
    fn app_log_channel(&self, app: &str) -> broadcast::Sender<AppLogLine> {
        let mut channels = self.inner.app_log_channels.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        channels.entry(app.to_owned()).or_insert_with(|| broadcast::channel(1024).0).clone()
    }
}

pub(crate) async fn append(
    State(state): State<ControlState>,
    ApiJson(batch): ApiJson<AppLogBatch>,
) -> Result<StatusCode, ApiFailure> {
    let mut by_app: HashMap<String, Vec<tovuk_store::AppLogLine>> = HashMap::new();
    for line in batch.lines {
        by_app.entry(line.app.clone()).or_default().push(tovuk_store::AppLogLine {
            seq: 0,
            at: line.at,
            deploy_id: line.deploy_id,
            instance: line.instance,
            stream: line.stream,
            line: line.line,
        });
    }
    for (app, lines) in by_app {
        let Some(record) = state.store().find_app(&app).await? else { continue };
        let stored = state.store().append_app_logs(record.id.as_str(), &lines, KEEP_LINES).await?;
        let sender = state.app_log_channel(&app);
        for line in stored {
            let _ = sender.send(view(&app, line));
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogQuery {
    #[serde(default)]
    follow: bool,
    /// How many of the newest stored lines to start with.
    #[serde(default = "default_tail")]
    tail: u32,
}

fn default_tail() -> u32 {
    200
}

fn encode(line: AppLogLine) -> Result<Bytes, Infallible> {
    let mut bytes = serde_json::to_vec(&AppLogEvent::Log(line)).unwrap_or_default();
    bytes.push(b'\n');
    Ok(Bytes::from(bytes))
}

pub(crate) async fn stream(
    State(state): State<ControlState>,
    caller: Caller,
    Path(app): Path<String>,
    Query(query): Query<LogQuery>,
) -> Result<Response, ApiFailure> {
    let app = app_for(&state, &caller, &app).await?;
    let live = query.follow.then(|| state.app_log_channel(&app.name).subscribe());
    let stored = state.store().app_logs(app.id.as_str(), 0, query.tail.clamp(1, 20_000)).await?;
    let (tx, rx) = mpsc::channel(64);
    let app_name = app.name.clone();
    state.clone().spawn_stream("app-log-follow", async move {
        let mut last = 0;
        for line in stored {
            last = line.seq;
            if tx.send(encode(view(&app_name, line))).await.is_err() {
                return;
            }
        }
        let Some(mut live) = live else { return };
        loop {
            match live.recv().await {
                Ok(line) if line.seq > last => {
                    last = line.seq;
                    if tx.send(encode(line)).await.is_err() {
                        return;
                    }
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    let mut response = Response::new(Body::from_stream(ReceiverStream::new(rx)));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    Ok(response)
}
