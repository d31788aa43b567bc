//! `tovuk app create|list|show|update|status|inspect|restart`.

use super::CommandResult;
use crate::args::{AppCommand, GlobalArgs};
use crate::exit::ExitStatus;
use crate::{connect, output};
use tovuk_api_types::App;
use tovuk_types::values::InstanceStatus;

pub(crate) async fn run(command: AppCommand, global: &GlobalArgs) -> CommandResult {
    let client = connect::client(global.target.as_deref())?;
    match command {
        AppCommand::Create { name, deploy_branch } => {
            let created = client.create_app(&name, Some(&deploy_branch)).await?;
            if global.json {
                output::json(&created);
                return Ok(ExitStatus::Success);
            }
            let app = &created.app;
            output::line(format!("created app `{}` ({})", app.name, app.id));
            output::line(format!("git remote:    {}", app.git_remote));
            output::line(format!("deploy branch: {}", app.deploy_branch));
            output::line(format!("deploy token:  {}", created.deploy_token.secret));
            output::note(format!(
                "\nThe deploy token ({}) is shown only now: store it where your pushes run.\nnext: git remote add tovuk {} && git push tovuk {}",
                created.deploy_token.token.id,
                remote_with_token(&app.git_remote, &created.deploy_token.secret),
                app.deploy_branch
            ));
        }
        AppCommand::List => {
            let list = client.list_apps().await?;
            if global.json {
                output::json(&list);
                return Ok(ExitStatus::Success);
            }
            if list.apps.is_empty() {
                output::note("no apps yet\nnext: tovuk app create my-api");
                return Ok(ExitStatus::Success);
            }
            let rows: Vec<Vec<String>> = list
                .apps
                .iter()
                .map(|app| vec![app.name.clone(), app.id.clone(), app.git_remote.clone(), app.created_at.clone()])
                .collect();
            output::line(output::table(&["NAME", "ID", "GIT REMOTE", "CREATED"], &rows));
        }
        AppCommand::Update { app, deploy_branch } => {
            let request = tovuk_api_types::UpdateAppRequest { deploy_branch };
            let app = client.update_app(&app, &request).await?;
            if global.json {
                output::json(&app);
            } else {
                output::line(format!("updated app `{}`", app.name));
                print_app(&app);
            }
        }
        AppCommand::Preflight(args) => return super::preflight::run(&args, global).await,
        AppCommand::Inspect { app } => {
            let inspection = client.app_inspect(&app).await?;
            if global.json {
                output::json(&inspection);
                return Ok(ExitStatus::Success);
            }
            print_status(&inspection.status);
            print_evidence(inspection.runtime_evidence.as_ref());
            if let Some(limits) = &inspection.limits {
                let said = |on: bool| if on { "" } else { " (NOT enforced here)" };
                output::line("limits per instance:");
                output::line(format!("  memory            {} MiB{}", limits.memory_mb, said(limits.enforced.memory)));
                output::line(format!("  cpu               {} cores{}", limits.cpu_cores, said(limits.enforced.cpu)));
                output::line(format!("  processes         {}{}", limits.pids, said(limits.enforced.pids)));
                output::line(format!("  /tmp              {} MiB{}", limits.tmp_mb, said(limits.enforced.tmp_size)));
                output::line(format!("  /data             {} MiB{}", limits.data_mb, said(limits.enforced.data_quota)));
                output::line(format!(
                    "  own network       {}",
                    if limits.enforced.network_isolation { "yes" } else { "no (NOT enforced here)" }
                ));
            }
        }
        AppCommand::Restart { app, follow } => {
            let release = client.restart_app(&app).await?;
            if global.json && !follow {
                output::json(&release);
                return Ok(ExitStatus::Success);
            }
            if !global.json {
                output::line(format!(
                    "releasing the current artifact of `{}` again as deploy {} (no rebuild)",
                    release.app, release.id
                ));
            }
            if follow {
                return super::deploy::follow(&client, &release.id, global).await;
            }
            output::note(format!("next: tovuk deploy follow {}", release.id));
        }
        AppCommand::Status { app } => {
            let status = client.app_status(&app).await?;
            if global.json {
                output::json(&status);
                return Ok(ExitStatus::Success);
            }
            print_status(&status);
            if status.runtime_evidence.is_some() {
                print_evidence(status.runtime_evidence.as_ref());
            }
        }
        AppCommand::Show { app } => {
            let app = client.show_app(&app).await?;
            if global.json {
                output::json(&app);
            } else {
                print_app(&app);
            }
        }
    }
    Ok(ExitStatus::Success)
}

fn print_app(app: &App) {
    output::line(format!("name:          {}", app.name));
    output::line(format!("id:            {}", app.id));
    output::line(format!("git remote:    {}", app.git_remote));
    output::line(format!("deploy branch: {}", app.deploy_branch));
    output::line(format!("created:       {}", app.created_at));
}

/// The remote URL with the deploy token as its password, so `git push` needs no prompt.
fn remote_with_token(remote: &str, token: &str) -> String {
    match remote.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://deploy:{token}@{rest}"),
        None => remote.to_owned(),
    }
}

/// The runtime evidence block, field for field.
pub(crate) fn print_evidence(evidence: Option<&tovuk_api_types::RuntimeEvidence>) {
    let Some(evidence) = evidence else {
        output::line("runtime evidence: - (nothing has gone live yet)");
        return;
    };
    output::line("runtime evidence:");
    for (name, value) in [
        ("backend", evidence.backend.clone()),
        ("main_class", evidence.main_class.clone()),
        ("route_count", evidence.route_count.to_string()),
        ("auth_mode", evidence.auth_mode.clone()),
        ("csrf_mode", evidence.csrf_mode.clone()),
        ("token_support", evidence.token_support.clone()),
        ("capability_source", evidence.capability_source.clone()),
        ("provider_summary", evidence.provider_summary.clone()),
        ("cookie_security", evidence.cookie_security.clone()),
        ("auth_store", evidence.auth_store.clone()),
    ] {
        output::line(format!("  {name:<18} {value}"));
    }
}

fn print_status(status: &tovuk_api_types::AppStatus) {
    output::line(format!("app:         {}", status.app));
    output::line(format!("service url: {}", status.service_url));
    match &status.current_deploy {
        Some(deploy) => output::line(format!("deploy:      {} ({})", deploy.id, deploy.state)),
        None => output::line("deploy:      - (nothing has gone live yet)"),
    }
    match status.instances.as_slice() {
        [] => {}
        [instance] => {
            output::line(format!("instance:    {}", instance.status));
            output::line(format!("pid:         {}", instance.pid.map_or("-".to_owned(), |pid| pid.to_string())));
            output::line(format!("port:        {}", instance.port.map_or("-".to_owned(), |port| port.to_string())));
            output::line(format!("started:     {}", output::or_dash(instance.started_at.as_deref())));
            output::line(format!("restarts:    {}", instance.restarts));
            if let Some(reason) = &instance.reason {
                output::line(format!("reason:      {reason}"));
            }
        }
        several => {
            let healthy = several.iter().filter(|instance| instance.status == InstanceStatus::Healthy).count();
            output::line(format!("instances:   {} ({healthy} healthy)", several.len()));
            let rows: Vec<Vec<String>> = several
                .iter()
                .map(|instance| {
                    vec![
                        instance.slot.to_string(),
                        instance.process.clone().unwrap_or_else(|| "web".to_owned()),
                        instance.status.to_string(),
                        instance.pid.map_or("-".to_owned(), |pid| pid.to_string()),
                        output::or_dash(instance.started_at.as_deref()),
                        instance.restarts.to_string(),
                        output::or_dash(instance.reason.as_deref()),
                    ]
                })
                .collect();
            output::line(output::table(&["SLOT", "PROCESS", "STATUS", "PID", "STARTED", "RESTARTS", "REASON"], &rows));
        }
    }
}

/// `tovuk rollback APP [DEPLOY_ID]`.
pub(crate) async fn rollback(args: crate::args::RollbackArgs, global: &GlobalArgs) -> CommandResult {
    let client = connect::client(global.target.as_deref())?;
    let request =
        tovuk_api_types::RollbackRequest { deploy_id: args.deploy_id.clone(), current_config: args.current_config };
    let result = client.rollback(&args.app, &request).await?;
    if global.json && !args.follow {
        output::json(&result);
        return Ok(ExitStatus::Success);
    }
    if !global.json {
        let config = if result.target_config { "the config it ran with" } else { "the current config" };
        output::line(format!(
            "rolling `{}` back to the artifact of {} as deploy {}, with {config} (no rebuild)",
            result.app, result.target, result.deploy.id
        ));
        for line in &result.not_reverted {
            output::note(format!("not reverted: {line}"));
        }
    }
    if args.follow {
        return super::deploy::follow(&client, &result.deploy.id, global).await;
    }
    for next in &result.next {
        output::note(format!("next: {next}"));
    }
    Ok(ExitStatus::Success)
}
