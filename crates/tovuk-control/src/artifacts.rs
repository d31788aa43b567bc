//! `tovuk artifact show|verify`: a deploy's signed artifact, checked from the stored files.

use crate::auth::Caller;
use crate::deploys::deploy_for;
use crate::{ApiFailure, ControlState};
use axum::Json;
use axum::extract::{Path, State};
use tovuk_api_types::{ArtifactInfo, ArtifactVerification, ErrorCode};
use tovuk_store::DeployRecord;

fn digest_of(deploy: &DeployRecord) -> Result<String, ApiFailure> {
    deploy.artifact.as_ref().map(|(digest, _)| digest.clone()).ok_or_else(|| {
        ApiFailure::new(
            ErrorCode::InvalidState,
            format!("deploy {} has no artifact: it is {}", deploy.id, deploy.state),
        )
        .next(format!("tovuk deploy show {}", deploy.id))
    })
}

fn internal(what: &str, error: &dyn std::fmt::Display) -> ApiFailure {
    tracing::error!(%error, "{what}");
    ApiFailure::new(ErrorCode::Internal, what.to_owned()).next("tovuk status")
}

pub(crate) async fn show(
    State(state): State<ControlState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ArtifactInfo>, ApiFailure> {
    let deploy = deploy_for(&state, &caller, &id).await?;
    let digest = digest_of(&deploy)?;
    let built_by = crate::releases::built_by(&deploy);
    let artifacts = state.artifacts_dir();
    let keys = state.keys_dir();
    let info = tokio::task::spawn_blocking(move || -> Result<ArtifactInfo, String> {
        let paths =
            tovuk_artifact::ArtifactPaths::for_deploy(&artifacts, &digest, &built_by).map_err(|e| e.to_string())?;
        let manifest = std::fs::read(&paths.manifest).map_err(|e| format!("cannot read the artifact manifest: {e}"))?;
        let signature =
            std::fs::read_to_string(&paths.signature).map_err(|e| format!("cannot read the signature: {e}"))?;
        let public_key = tovuk_artifact::load_public_key(&keys).map_err(|e| e.to_string())?;
        Ok(ArtifactInfo {
            deploy_id: String::new(),
            manifest: serde_json::from_slice(&manifest).map_err(|e| format!("the manifest is not JSON: {e}"))?,
            signature: signature.trim().to_owned(),
            public_key: hex::encode(public_key.to_bytes()),
        })
    })
    .await
    .map_err(|error| internal("the artifact could not be read", &error))?
    .map_err(|error| {
        ApiFailure::new(ErrorCode::InvalidState, format!("the artifact of {id} cannot be shown: {error}"))
            .next(format!("tovuk artifact verify {id}"))
    })?;
    Ok(Json(ArtifactInfo { deploy_id: deploy.id.to_string(), ..info }))
}

pub(crate) async fn verify(
    State(state): State<ControlState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ArtifactVerification>, ApiFailure> {
    let deploy = deploy_for(&state, &caller, &id).await?;
    let digest = digest_of(&deploy)?;
    let built_by = crate::releases::built_by(&deploy);
    let (app, sha) = (deploy.app_name.clone(), deploy.sha.clone());
    let artifacts = state.artifacts_dir();
    let keys = state.keys_dir();
    let verification = tokio::task::spawn_blocking(move || {
        let key = tovuk_artifact::load_public_key(&keys)?;
        let expected = tovuk_artifact::Expected { app: &app, deploy_id: &built_by, commit_sha: &sha };
        tovuk_artifact::verify(&artifacts, &digest, &expected, &key)
    })
    .await
    .map_err(|error| internal("the artifact could not be verified", &error))?
    .map_err(|error| internal("the artifact could not be verified", &error))?;
    Ok(Json(ArtifactVerification {
        deploy_id: deploy.id.to_string(),
        ok: verification.ok,
        digest_ok: verification.digest_ok,
        signature_ok: verification.signature_ok,
        bound_ok: verification.bound_ok,
        expected_digest: verification.expected_digest,
        actual_digest: verification.actual_digest,
        problem: verification.problem,
    }))
}
