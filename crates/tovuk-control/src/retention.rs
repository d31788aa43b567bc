//! What is kept of an app's past releases (`[retention] releases` in the server config):
//! its newest deploys that served stay rollback targets; the artifacts nothing keeps are
//! removed after each build and each deploy that goes live, and a rollback to a deploy whose
//! artifact was removed is refused saying why.

use crate::{ApiFailure, ControlState};
use tovuk_api_types::ErrorCode;
use tovuk_store::AppRecord;
use tovuk_types::DeployState;

/// Removes the app's artifacts that nothing keeps, in the background.
pub(crate) fn collect_soon(state: &ControlState, app_id: &str) {
    let collector = state.clone();
    let app_id = app_id.to_owned();
    state.spawn_task("artifact-collection", async move {
        if let Err(error) = collect(&collector, &app_id).await {
            tracing::warn!(%error, app_id, "cannot collect old artifacts");
        }
    });
}

/// Removes each artifact of the app that no deploy keeps (see
/// `Store::artifacts_to_collect`): its archive and every build's manifest and signature.
async fn collect(state: &ControlState, app_id: &str) -> Result<(), tovuk_store::StoreError> {
    let dir = state.artifacts_dir();
    for digest in state.store().artifacts_to_collect(app_id).await? {
        let Ok(paths) = tovuk_artifact::ArtifactPaths::for_digest(&dir, &digest) else { continue };
        // Every build's own manifest pair beside the archive (`<hex>.<deploy>.json|sig`).
        let hex = digest.trim_start_matches("sha256:");
        let pairs: Vec<(std::path::PathBuf, String)> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let rest = name.strip_prefix(hex)?.strip_prefix('.')?;
                let deploy = rest.strip_suffix(".json").or_else(|| rest.strip_suffix(".sig"))?;
                Some((entry.path(), deploy.to_owned()))
            })
            .collect();
        // A build with identical output may have sealed this archive and not reported yet.
        let sealers: Vec<String> = pairs.iter().map(|(_, deploy)| deploy.clone()).collect();
        if state.store().any_building(&sealers).await? {
            continue;
        }
        for path in [&paths.archive, &paths.signature, &paths.manifest] {
            let _ = std::fs::remove_file(path);
        }
        for (path, _) in &pairs {
            let _ = std::fs::remove_file(path);
        }
        tracing::info!(app_id, digest, "old artifact collected");
    }
    Ok(())
}

/// Refuses a rollback to `target` when it is a deploy of `app` that served but whose artifact
/// is no longer kept, naming the kept ones; anything else is `config_release::rollback`'s to
/// answer.
pub(crate) async fn refuse_removed_target(
    state: &ControlState,
    app: &AppRecord,
    target: Option<&str>,
) -> Result<(), ApiFailure> {
    let Some(target) = target else { return Ok(()) };
    let Some(deploy) = state.store().find_deploy(target).await? else { return Ok(()) };
    if deploy.app_id != app.id || deploy.state != DeployState::Superseded {
        return Ok(());
    }
    let targets = state.store().rollback_targets(app.id.as_str()).await?;
    let retry = format!("tovuk deploy retry {target}");
    let kept = state.store().releases_kept();
    let listed = if targets.is_empty() { "none".to_owned() } else { targets.join(", ") };
    let instead = match targets.iter().find(|kept| *kept != target) {
        Some(newest) => format!(
            "roll back to a kept one (tovuk rollback {} {newest}), or build its commit again: {retry}",
            app.name
        ),
        None => format!("build its commit again: {retry}"),
    };
    if !targets.iter().any(|kept| kept == target) {
        return Err(ApiFailure::new(
            ErrorCode::InvalidState,
            format!(
                "`{target}` served `{}` before, but its artifact was removed: the server keeps the artifacts of \
                 the newest {kept} deploys that served before the current one ([retention] releases in the server \
                 config); those it can roll back to, newest first: {listed}",
                app.name
            ),
        )
        .next(instead));
    }
    let archive = deploy.artifact.as_ref().and_then(|(digest, _)| {
        tovuk_artifact::ArtifactPaths::for_digest(&state.artifacts_dir(), digest).ok().map(|paths| paths.archive)
    });
    if archive.is_some_and(|archive| !archive.exists()) {
        return Err(ApiFailure::new(
            ErrorCode::InvalidState,
            format!("`{target}` cannot be rolled back to: its artifact is missing from the platform's data directory"),
        )
        .next(instead));
    }
    Ok(())
}
