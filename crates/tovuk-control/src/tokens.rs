//! API tokens: create (secret shown once), list (metadata only), revoke.

use crate::auth::{Caller, app_for};
use crate::http::ApiJson;
use crate::{ApiFailure, ControlState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use tovuk_api_types::{CreateTokenRequest, CreatedToken, ErrorCode, Token, TokenList};
use tovuk_store::{TokenRecord, TokenScope};

const MAX_TOKEN_NAME: usize = 100;

pub(crate) fn token_view(token: TokenRecord) -> Token {
    let (scope, app) = match token.scope {
        TokenScope::Admin => (tovuk_api_types::TokenScopeName::Admin, None),
        TokenScope::Deploy { app_name, .. } => (tovuk_api_types::TokenScopeName::Deploy, Some(app_name)),
    };
    Token {
        id: token.id.to_string(),
        name: token.name,
        scope,
        app,
        created_at: token.created_at,
        last_used_at: token.last_used_at,
        revoked_at: token.revoked_at,
    }
}

pub(crate) async fn create(
    State(state): State<ControlState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiFailure> {
    caller.require_admin("creating a token")?;
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > MAX_TOKEN_NAME || name.chars().any(char::is_control) {
        return Err(ApiFailure::new(
            ErrorCode::InvalidRequest,
            format!("a token name is 1-{MAX_TOKEN_NAME} printable characters"),
        )
        .next("tovuk token create --name ci-deploy"));
    }
    let scope = match &request.app {
        None => TokenScope::Admin,
        Some(app) => {
            let app = app_for(&state, &caller, app).await?;
            TokenScope::Deploy { app_id: app.id, app_name: app.name }
        }
    };
    let (token, secret) = state.store().create_token(name, scope).await?;
    tracing::info!(token_id = %token.id, scope = token.scope.as_str(), "token created");
    Ok((StatusCode::CREATED, Json(CreatedToken { token: token_view(token), secret })))
}

pub(crate) async fn list(State(state): State<ControlState>, caller: Caller) -> Result<Json<TokenList>, ApiFailure> {
    caller.require_admin("listing tokens")?;
    let tokens = state.store().list_tokens().await?.into_iter().map(token_view).collect();
    Ok(Json(TokenList { tokens }))
}

pub(crate) async fn revoke(
    State(state): State<ControlState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Token>, ApiFailure> {
    caller.require_admin("revoking a token")?;
    match state.store().revoke_token(&id).await? {
        Some(token) => {
            tracing::info!(token_id = %token.id, "token revoked");
            Ok(Json(token_view(token)))
        }
        None => Err(ApiFailure::new(ErrorCode::TokenNotFound, format!("there is no token `{}`", id.escape_debug()))
            .next("tovuk token list")),
    }
}
