//! Operation records: the source, build and deploy steps of every accepted source.

use crate::auth::{Caller, app_for};
use crate::views::operation_view;
use crate::{ApiFailure, ControlState};
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use tovuk_api_types::{ErrorCode, Operation, OperationList};
use tovuk_store::OperationRecord;

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    limit: Option<u32>,
}

async fn with_children(state: &ControlState, op: OperationRecord) -> Result<Operation, ApiFailure> {
    let children = state.store().child_operations(&op.id).await?;
    Ok(operation_view(op, children.into_iter().map(|child| child.id.to_string()).collect()))
}

pub(crate) async fn list(
    State(state): State<ControlState>,
    caller: Caller,
    Path(app): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<OperationList>, ApiFailure> {
    let app = app_for(&state, &caller, &app).await?;
    let limit = query.limit.unwrap_or(150).clamp(1, 3000);
    let mut operations = Vec::new();
    for op in state.store().list_operations(&app.id, limit).await? {
        operations.push(with_children(&state, op).await?);
    }
    Ok(Json(OperationList { operations }))
}

pub(crate) async fn show(
    State(state): State<ControlState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Operation>, ApiFailure> {
    match state.store().find_operation(&id).await? {
        Some(op) if caller.may_act_on(op.app_id.as_str()) => Ok(Json(with_children(&state, op).await?)),
        Some(op) => Err(caller.forbidden_for(&op.app_name)),
        None => {
            Err(ApiFailure::new(ErrorCode::OperationNotFound, format!("there is no operation `{}`", id.escape_debug()))
                .next("tovuk ops list APP"))
        }
    }
}
