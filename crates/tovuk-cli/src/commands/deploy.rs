//! `tovuk deploy [DIR]` (upload without git) and `tovuk deploy list|show|cancel`.

use super::ops::short;
use super::{CliError, CommandResult};
use crate::args::{DeployArgs, DeployCommand, GlobalArgs};
use crate::exit::ExitStatus;
use crate::project_files::{self, Declared};
use crate::{archive, connect, output};
use tovuk_api_types::{Deploy, DeployEvent, DeployFailure, ErrorCode};
use tovuk_manifest::MANIFEST_FILE;

pub(crate) async fn run(args: DeployArgs, global: &GlobalArgs) -> CommandResult {
    match args.command {
        Some(command) => manage(command, global).await,
        None => upload(&args, global).await,
    }
}

async fn manage(command: DeployCommand, global: &GlobalArgs) -> CommandResult {
    let client = connect::client(global.target.as_deref())?;
    match command {
        DeployCommand::List { app, limit } => {
            let list = client.list_deploys(&app, Some(limit)).await?;
            if global.json {
                output::json(&list);
                return Ok(ExitStatus::Success);
            }
            if list.deploys.is_empty() {
                output::note(format!("no deploys yet for `{app}`"));
                output::note(format!("next: tovuk source remote {app}   (then git push), or tovuk deploy --app {app}"));
                return Ok(ExitStatus::Success);
            }
            let rows: Vec<Vec<String>> = list
                .deploys
                .iter()
                .map(|deploy| {
                    vec![
                        deploy.id.clone(),
                        deploy.state.to_string(),
                        source_text(deploy),
                        deploy.build_job.id.clone(),
                        deploy.created_at.clone(),
                    ]
                })
                .collect();
            output::line(output::table(&["ID", "STATE", "SOURCE", "BUILD JOB", "CREATED"], &rows));
        }
        DeployCommand::Show { id } => {
            let id = newest_unless_given(&client, id, None).await?;
            let deploy = client.show_deploy(&id).await?;
            if global.json {
                output::json(&deploy);
            } else {
                print_deploy(&deploy);
            }
        }
        DeployCommand::Follow { id } => {
            let id = newest_unless_given(&client, id, None).await?;
            return follow(&client, &id, global).await;
        }
        DeployCommand::Retry { id, follow: then_follow } => {
            let deploy = client.retry_deploy(&id).await?;
            if global.json && !then_follow {
                output::json(&deploy);
            }
            if report_blocked(&deploy, global) {
                return Ok(ExitStatus::Failure);
            }
            if global.json && !then_follow {
                return Ok(ExitStatus::Success);
            }
            if !global.json {
                output::line(format!("deploy {} queued: a retry of {id} ({})", deploy.id, source_text(&deploy)));
            }
            if then_follow {
                return follow(&client, &deploy.id, global).await;
            }
            output::note(format!("next: tovuk deploy follow {}", deploy.id));
        }
        DeployCommand::Cancel { id } => {
            let deploy = client.cancel_deploy(&id).await?;
            if global.json {
                output::json(&deploy);
            } else {
                output::line(format!("cancelled deploy {} of `{}`", deploy.id, deploy.app));
            }
        }
    }
    Ok(ExitStatus::Success)
}

/// Follows a deploy until it settles: `running` exits 0, `failed` or `cancelled` exit 1.
pub(crate) async fn follow(client: &tovuk_client::Client, id: &str, global: &GlobalArgs) -> CommandResult {
    let mut events = client.deploy_events(id, true).await?;
    let mut status = ExitStatus::Success;
    while let Some(event) = events.next().await? {
        if global.json {
            output::line(serde_json::to_string(&event).unwrap_or_default());
        }
        let (kind, progress) = match &event {
            DeployEvent::StateChanged(progress) => ("", progress),
            DeployEvent::Heartbeat(progress) => ("still ", progress),
            DeployEvent::Result(progress) => ("result", progress),
        };
        if kind == "result" {
            if matches!(progress.state.as_str(), "failed" | "cancelled") {
                status = ExitStatus::Failure;
            }
            if !global.json {
                let mut summary = format!("deploy {} is {}", progress.deploy_id, progress.state);
                if let Some(failure) = &progress.failure {
                    let phase = failure.phase.map(|phase| format!(" in {phase}")).unwrap_or_default();
                    summary.push_str(&format!(": {}{phase}", failure.reason));
                    if let Some(line) = &failure.first_actionable_line {
                        summary.push_str(&format!("\n  {line}"));
                    }
                    // A release that failed to go live is explained by what the app printed.
                    if let Some(lines) = blocked_lines(&progress.deploy_id, failure) {
                        summary.push('\n');
                        summary.push_str(&lines.join("\n"));
                    } else if failure.phase == Some(tovuk_api_types::DeployState::Deploying) {
                        summary.push_str(&format!("\nnext: tovuk logs {}", progress.app));
                    } else {
                        summary.push_str(&format!("\nnext: tovuk logs --build {}", progress.deploy_id));
                    }
                }
                output::note(summary);
            }
            continue;
        }
        if !global.json {
            output::line(format!(
                "{:>8}  {}  {}  {kind}{}",
                format!("+{:.1}s", progress.elapsed_ms as f64 / 1000.0),
                progress.deploy_id,
                progress.build_id,
                progress.state
            ));
        }
    }
    Ok(status)
}

/// For a deploy blocked on missing config: one line per name with the command that sets
/// it, then the retry. `None` for any other failure.
fn blocked_lines(deploy_id: &str, failure: &DeployFailure) -> Option<Vec<String>> {
    if failure.blockers.is_empty() {
        return None;
    }
    let mut lines: Vec<String> = failure
        .blockers
        .iter()
        .map(|blocker| format!("  {} ({}): {}", blocker.name, blocker.needed_by, blocker.next))
        .collect();
    lines.push(format!("then: tovuk deploy retry {deploy_id} --follow"));
    Some(lines)
}

/// Prints a just-created deploy that was stopped before building (missing config, a cap
/// reached); true if it was.
fn report_blocked(deploy: &Deploy, global: &GlobalArgs) -> bool {
    let Some(failure) = &deploy.failure else { return false };
    let Some(lines) = blocked_lines(&deploy.id, failure) else {
        if failure.reason != tovuk_api_types::FailureReason::CapReached {
            return false;
        }
        if !global.json {
            output::line(format!(
                "deploy {} refused before building: {}",
                deploy.id,
                failure.first_actionable_line.as_deref().unwrap_or("a cap is reached")
            ));
            output::note(format!("next: tovuk caps list {}", deploy.app));
        }
        return true;
    };
    if !global.json {
        output::line(format!(
            "deploy {} blocked before building: {}",
            deploy.id,
            failure.first_actionable_line.as_deref().unwrap_or("missing required config")
        ));
        for line in lines {
            output::note(line);
        }
    }
    true
}

fn source_text(deploy: &Deploy) -> String {
    let forced = if deploy.source.forced { " (force-push)" } else { "" };
    let name = deploy.source.ref_name.strip_prefix("refs/heads/").unwrap_or(&deploy.source.ref_name);
    format!("{} {name} at {}{forced}", deploy.source.kind, short(&deploy.source.sha))
}

fn print_deploy(deploy: &Deploy) {
    output::line(format!("deploy {} of `{}`", deploy.id, deploy.app));
    output::line(format!("state:        {}", deploy.state));
    output::line(format!("source:       {} ({})", source_text(deploy), deploy.source.operation_id));
    output::line(format!("commit:       {}", deploy.source.sha));
    output::line(format!("build job:    {}", deploy.build_job.id));
    output::line(format!("final build:  {}", output::or_dash(deploy.final_build.status.map(|status| status.as_str()))));
    output::line(format!(
        "operations:   source {} -> build {} -> deploy {}",
        deploy.operations.source, deploy.operations.build, deploy.operations.deploy
    ));
    if let Some(failure) = &deploy.failure {
        let phase = failure.phase.map(|phase| format!(" in {phase}")).unwrap_or_default();
        let code = failure.exit_code.map(|code| format!(", exit code {code}")).unwrap_or_default();
        output::line(format!("failure:      {}{phase}{code}", failure.reason));
        if let Some(line) = &failure.first_actionable_line {
            output::line(format!("              {line}"));
        }
        for line in blocked_lines(&deploy.id, failure).unwrap_or_default() {
            output::line(format!("            {line}"));
        }
    }
    if let Some(artifact) = &deploy.artifact {
        output::line(format!("artifact:     {} ({} bytes)", artifact.digest, artifact.size_bytes));
    }
    if let Some(apply) = &deploy.apply {
        output::line("apply:");
        for line in apply.render() {
            output::line(format!("  {line}"));
        }
    }
    if let Some(instance) = &deploy.instance {
        let exit = instance.last_exit_code.map(|code| format!(", last exit code {code}")).unwrap_or_default();
        output::line(format!("instance:     {} ({} restarts{exit})", instance.status, instance.restarts));
        if instance.status == tovuk_api_types::InstanceStatus::Crashing {
            output::note(format!("the app is crash-looping and answers 503; see: tovuk logs {}", deploy.app));
        }
    }
    output::line("state changes:");
    for change in &deploy.state_changes {
        output::line(format!("  {:<15} {}", change.state, change.at));
    }
    if !deploy.phases.is_empty() {
        output::line("phases:");
        for phase in &deploy.phases {
            output::line(format!(
                "  {:<13} {:<10} {} -> {}",
                phase.phase,
                phase.status,
                phase.started_at,
                output::or_dash(phase.ended_at.as_deref())
            ));
        }
    }
    if deploy.failure.as_ref().is_some_and(|failure| failure.blockers.is_empty()) {
        output::note(format!("next: tovuk logs --build {}", deploy.id));
    }
}

async fn upload(args: &DeployArgs, global: &GlobalArgs) -> CommandResult {
    let dir = args.dir.clone().unwrap_or_else(|| ".".into());
    if !dir.is_dir() {
        return Err(CliError::usage(format!("`{}` is not a directory", dir.display())).next("tovuk deploy PROJECT_DIR"));
    }
    let contract = crate::contract::read(&dir, args.app.as_deref())?;
    if contract.report.detected().is_some() && args.app.is_none() {
        return Err(CliError::usage(format!("`{}` has no tovuk.toml: name the app to deploy to", dir.display()))
            .next("tovuk deploy --app APP (the contract is detected), or write tovuk.toml with: tovuk init"));
    }
    let (manifest, mut report) = (contract.manifest, contract.report);
    let declared = manifest.as_ref().map(Declared::from_manifest).unwrap_or_default();
    let files = project_files::upload_files(&dir, &declared).map_err(CliError::usage)?;
    if args.list_files {
        if global.json {
            output::json(&serde_json::json!({ "count": files.len(), "files": files }));
        } else {
            for file in &files {
                output::line(file);
            }
            output::note(format!("{} files would be uploaded", files.len()));
        }
        return Ok(ExitStatus::Success);
    }

    // The same check the platform runs: a broken contract is caught before uploading.
    let Some(manifest) = manifest else { return Err(check_failed(&report, global)) };
    tovuk_manifest::check_files(&mut report, &manifest, MANIFEST_FILE, &files);
    if !report.ok() {
        return Err(check_failed(&report, global));
    }
    let app = args.app.clone().unwrap_or_else(|| manifest.name().to_owned());
    if args.dry_run {
        let text = contract.text.unwrap_or_default();
        return super::plan::dry_run(&text, report.detected(), &app, &args.expect, global).await;
    }
    let mut archive = Vec::new();
    let packed = archive::pack(&dir, &files, &mut archive).map_err(CliError::usage)?;
    let client = connect::client(global.target.as_deref())?;
    if !global.json {
        output::note(format!(
            "uploading {} files ({} bytes, {} packed) to `{app}`",
            packed.files,
            packed.bytes,
            archive.len()
        ));
    }
    let accepted = client.upload(&app, archive).await?;
    // Stopped before building (missing config, a cap reached): the answer says what to do.
    let stopped = accepted.deploy.failure.is_some();
    if global.json {
        if !args.follow || stopped {
            output::json(&accepted);
        }
    } else if !args.follow || stopped {
        // The same lines a `git push` of this source prints after `remote:`.
        for line in accepted.render() {
            output::line(line);
        }
    }
    if stopped {
        return Ok(ExitStatus::Failure);
    }
    if args.follow {
        if !global.json {
            output::note(format!("deploy {} accepted; following it", accepted.deploy.id));
        }
        return follow(&client, &accepted.deploy.id, global).await;
    }
    Ok(ExitStatus::Success)
}

/// A failed local check: the report is the output, and nothing was uploaded.
fn check_failed(report: &tovuk_manifest::CheckReport, global: &GlobalArgs) -> CliError {
    if global.json {
        output::json(report);
    } else {
        output::note(tovuk_manifest::render_human(report).trim_end());
    }
    CliError::failed(ErrorCode::CheckFailed, "nothing was uploaded: the contract check failed")
        .next("fix tovuk.toml (see `tovuk check`), then run `tovuk deploy` again")
        .already_printed(global.json)
}

/// `id`, or the newest deploy of `app` (default: the app of the project in the current
/// directory, by its tovuk.toml or the name its detected contract gives it).
pub(crate) async fn newest_unless_given(
    client: &tovuk_client::Client,
    id: Option<String>,
    app: Option<&str>,
) -> Result<String, CliError> {
    if let Some(id) = id.filter(|id| !id.is_empty()) {
        return Ok(id);
    }
    let app = match app {
        Some(app) => app.to_owned(),
        None => {
            let contract = crate::contract::read(std::path::Path::new("."), None)?;
            let Some(manifest) = contract.manifest else {
                return Err(CliError::usage("no deploy id given, and this directory has no project whose app to use")
                    .next("give the deploy id (tovuk deploy list APP), or run this in the project's directory"));
            };
            manifest.name().to_owned()
        }
    };
    let newest = client.list_deploys(&app, Some(1)).await?.deploys.into_iter().next();
    newest.map(|deploy| deploy.id).ok_or_else(|| {
        CliError::usage(format!("`{app}` has no deploys yet")).next(format!("tovuk deploy --app {app}, or git push"))
    })
}
