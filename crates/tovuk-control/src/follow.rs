//! `GET /v1/deploys/{id}/events`: a deploy's state changes as they happen (server push),
//! with a heartbeat every 5 s during long phases, ending when the deploy settles.
//! NDJSON over chunked HTTP; following a finished deploy replays it and ends.

use crate::auth::Caller;
use crate::deploys::deploy_for;
use crate::views::failure_view;
use crate::{ApiFailure, ControlState};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tovuk_api_types::{DeployEvent, DeployProgress};
use tovuk_store::DeployRecord;
use tovuk_types::DeployState;

const HEARTBEAT: Duration = Duration::from_secs(5);

#[derive(Debug, Deserialize)]
pub(crate) struct FollowQuery {
    #[serde(default)]
    follow: bool,
}

/// States a follower waits for: the deploy will not move on by itself from these.
fn settled(state: DeployState) -> bool {
    matches!(state, DeployState::Running | DeployState::Failed | DeployState::Cancelled | DeployState::Superseded)
}

/// Milliseconds from `since` to `until` (now when `None`).
fn elapsed_ms(since: &str, until: Option<&str>) -> u64 {
    let parse = |text: &str| chrono::DateTime::parse_from_rfc3339(text).map(|time| time.with_timezone(&chrono::Utc));
    let end = until.and_then(|until| parse(until).ok()).unwrap_or_else(chrono::Utc::now);
    parse(since).map(|start| (end - start).num_milliseconds().max(0) as u64).unwrap_or(0)
}

fn progress(deploy: &DeployRecord, state: DeployState, at: &str, elapsed_ms: u64) -> DeployProgress {
    DeployProgress {
        deploy_id: deploy.id.to_string(),
        build_id: deploy.build_job_id.to_string(),
        app: deploy.app_name.clone(),
        state,
        at: at.to_owned(),
        elapsed_ms,
        failure: if state == DeployState::Failed {
            deploy.failure.clone().map(|failure| failure_view(failure, &deploy.app_name))
        } else {
            None
        },
    }
}

fn encode(event: &DeployEvent) -> Result<Bytes, Infallible> {
    let mut line = serde_json::to_vec(event).unwrap_or_default();
    line.push(b'\n');
    Ok(Bytes::from(line))
}

pub(crate) async fn events(
    State(state): State<ControlState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<FollowQuery>,
) -> Result<Response, ApiFailure> {
    let deploy = deploy_for(&state, &caller, &id).await?;
    // Subscribe before the first read, so a change in between is not missed.
    let mut changes = state.inner.deploy_changes.subscribe();
    let (tx, rx) = mpsc::channel(32);
    state.clone().spawn_stream("deploy-follow", async move {
        let mut sent = 0;
        let mut deploy = deploy;
        loop {
            for (entered, at) in deploy.events.iter().skip(sent) {
                // The time the state was entered, so a replay shows the same figures as the live run.
                let event = DeployEvent::StateChanged(progress(
                    &deploy,
                    *entered,
                    at,
                    elapsed_ms(&deploy.created_at, Some(at)),
                ));
                if tx.send(encode(&event)).await.is_err() {
                    return;
                }
            }
            sent = deploy.events.len();
            let entered_at = deploy.events.last().map(|(_, at)| at.clone()).unwrap_or_default();
            if settled(deploy.state) || !query.follow {
                let event = DeployEvent::Result(progress(
                    &deploy,
                    deploy.state,
                    &entered_at,
                    elapsed_ms(&deploy.created_at, Some(&entered_at)),
                ));
                let _ = tx.send(encode(&event)).await;
                return;
            }
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = tokio::time::sleep(HEARTBEAT) => {
                    let event =
                        DeployEvent::Heartbeat(progress(&deploy, deploy.state, &entered_at, elapsed_ms(&deploy.created_at, None)));
                    if tx.send(encode(&event)).await.is_err() {
                        return;
                    }
                }
            }
            match state.store().find_deploy(deploy.id.as_str()).await {
                Ok(Some(now)) => deploy = now,
                _ => return,
            }
        }
    });
    let mut response = Response::new(Body::from_stream(ReceiverStream::new(rx)));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    Ok(response)
}
