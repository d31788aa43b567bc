//! `GET /v1/deploys/{id}/build-logs`: a build's stored log, and with `follow=true` every
//! new line as it is stored, until the build ends. NDJSON over chunked HTTP: one
//! `{"type": "log"|"result", "data": ...}` event per line, `result` last.

use crate::auth::Caller;
use crate::builds::log_view;
use crate::deploys::deploy_for;
use crate::{ApiFailure, ControlState};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use std::convert::Infallible;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tovuk_api_types::{BuildLogEvent, BuildLogResult};
use tovuk_types::DeployState;

const PAGE: u32 = 2000;

#[derive(Debug, Deserialize)]
pub(crate) struct LogQuery {
    #[serde(default)]
    follow: bool,
    /// Only lines after this sequence number.
    #[serde(default)]
    after: i64,
}

fn encode(event: &BuildLogEvent) -> Bytes {
    let mut line = serde_json::to_vec(event).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

pub(crate) async fn stream(
    State(state): State<ControlState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<LogQuery>,
) -> Result<Response, ApiFailure> {
    let deploy = deploy_for(&state, &caller, &id).await?;
    // Subscribe before reading what is stored, so no line falls between the two.
    let building = matches!(
        deploy.state,
        DeployState::Queued | DeployState::Building | DeployState::Typechecking | DeployState::Testing
    );
    let live = (query.follow && building).then(|| state.log_channel(deploy.id.as_str()).subscribe());
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let deploy_id = deploy.id.to_string();
    state.clone().spawn_stream("build-log-follow", async move {
        let mut last = query.after;
        if !send_stored(&state, &deploy_id, &mut last, &tx).await {
            return;
        }
        if let Some(mut live) = live {
            loop {
                match live.recv().await {
                    Ok(BuildLogEvent::Log(line)) if line.seq > last => {
                        last = line.seq;
                        if tx.send(Ok(encode(&BuildLogEvent::Log(line)))).await.is_err() {
                            return;
                        }
                    }
                    Ok(BuildLogEvent::Log(_)) => {}
                    Ok(result @ BuildLogEvent::Result(_)) => {
                        // Lines stored just before the end may have raced the event.
                        if send_stored(&state, &deploy_id, &mut last, &tx).await {
                            let _ = tx.send(Ok(encode(&result))).await;
                        }
                        return;
                    }
                    // A slow follower missed some lines: they are in the store.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if !send_stored(&state, &deploy_id, &mut last, &tx).await {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        }
        send_result(&state, &deploy_id, &mut last, &tx).await;
    });
    let mut response = Response::new(Body::from_stream(ReceiverStream::new(rx)));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    Ok(response)
}

/// Sends stored lines after `last`. False when the follower went away.
async fn send_stored(
    state: &ControlState,
    deploy_id: &str,
    last: &mut i64,
    tx: &mpsc::Sender<Result<Bytes, Infallible>>,
) -> bool {
    loop {
        let Ok(page) = state.store().build_logs(deploy_id, *last, PAGE).await else { return false };
        let full = page.len() as u32 == PAGE;
        for stored in page {
            *last = stored.seq;
            if tx.send(Ok(encode(&BuildLogEvent::Log(log_view(stored))))).await.is_err() {
                return false;
            }
        }
        if !full {
            return true;
        }
    }
}

/// The closing event: the deploy's state as it is now.
async fn send_result(
    state: &ControlState,
    deploy_id: &str,
    last: &mut i64,
    tx: &mpsc::Sender<Result<Bytes, Infallible>>,
) {
    if !send_stored(state, deploy_id, last, tx).await {
        return;
    }
    if let Ok(Some(deploy)) = state.store().find_deploy(deploy_id).await {
        let result = BuildLogEvent::Result(BuildLogResult {
            deploy_id: deploy.id.to_string(),
            state: deploy.state,
            failure: deploy.failure.map(|failure| crate::views::failure_view(failure, &deploy.app_name)),
        });
        let _ = tx.send(Ok(encode(&result))).await;
    }
}
