//! `tovuk logs`: an app's output (`APP`), a build's log (`--build`) or a deploy's
//! lifecycle (`--deploy`), each streamed as the server pushes it with `--follow`.

use super::{CliError, CommandResult};
use crate::args::{GlobalArgs, LogsArgs};
use crate::exit::ExitStatus;
use crate::{connect, output};
use tovuk_api_types::BuildLogEvent;

pub(crate) async fn run(args: LogsArgs, global: &GlobalArgs) -> CommandResult {
    let client = connect::client(global.target.as_deref())?;
    if let Some(id) = &args.deploy {
        return lifecycle(&client, id, args.follow, global).await;
    }
    let Some(build) = args.build.clone() else {
        let app = args.app.as_deref().unwrap_or_default();
        let stream = match args.stream.as_deref() {
            None => None,
            Some(name) => Some(tovuk_api_types::LogStream::parse(name).ok_or_else(|| {
                CliError::usage(format!("`{name}` is not a log stream"))
                    .next("--stream stdout, stderr, platform or access")
            })?),
        };
        return app_output(&client, app, args.follow, args.tail, stream, global).await;
    };
    let build = super::deploy::newest_unless_given(&client, Some(build), args.app.as_deref()).await?;
    let mut stream = client.build_logs(&build, args.follow).await?;
    let mut status = ExitStatus::Success;
    while let Some(event) = stream.next().await? {
        if global.json {
            // NDJSON: one event per line, as the server sends them.
            output::line(serde_json::to_string(&event).unwrap_or_default());
        }
        match event {
            BuildLogEvent::Log(line) if !global.json => {
                let time = line.at.get(11..23).unwrap_or(&line.at);
                output::line(format!("{time} {:<12} {:<8} {}", line.phase, line.stream, line.line));
            }
            BuildLogEvent::Log(_) => {}
            BuildLogEvent::Result(result) => {
                if args.follow && matches!(result.state.as_str(), "failed" | "cancelled") {
                    status = ExitStatus::Failure;
                }
                if !global.json {
                    let mut summary = format!("deploy {} is {}", result.deploy_id, result.state);
                    if let Some(failure) = &result.failure {
                        summary.push_str(&format!(
                            " ({}{})",
                            failure.reason,
                            failure.phase.map(|phase| format!(" in {phase}")).unwrap_or_default()
                        ));
                        if let Some(line) = &failure.first_actionable_line {
                            summary.push_str(&format!("\n  first actionable line: {line}"));
                        }
                    }
                    output::note(summary);
                }
            }
        }
    }
    Ok(status)
}

/// An app's instances' output.
async fn app_output(
    client: &tovuk_client::Client,
    app: &str,
    follow: bool,
    tail: u32,
    only: Option<tovuk_api_types::LogStream>,
    global: &GlobalArgs,
) -> CommandResult {
    let mut stream = client.app_logs(app, follow, tail).await?;
    while let Some(event) = stream.next().await? {
        let tovuk_api_types::AppLogEvent::Log(line) = &event;
        if only.is_some_and(|only| line.stream != only) {
            continue;
        }
        if global.json {
            output::line(serde_json::to_string(&event).unwrap_or_default());
            continue;
        }
        let tovuk_api_types::AppLogEvent::Log(line) = event;
        let time = line.at.get(11..23).unwrap_or(&line.at);
        output::line(format!("{time} {} {:<6} {}", line.instance, line.stream, line.line));
    }
    Ok(ExitStatus::Success)
}

/// A deploy's lifecycle: each state it entered, when, and how it ended.
async fn lifecycle(client: &tovuk_client::Client, id: &str, follow: bool, global: &GlobalArgs) -> CommandResult {
    if follow {
        return super::deploy::follow(client, id, global).await;
    }
    let mut stream = client.deploy_events(id, false).await?;
    while let Some(event) = stream.next().await? {
        if global.json {
            output::line(serde_json::to_string(&event).unwrap_or_default());
            continue;
        }
        match event {
            tovuk_api_types::DeployEvent::StateChanged(progress) => {
                output::line(format!("{}  {}", progress.at, progress.state));
            }
            tovuk_api_types::DeployEvent::Result(progress) => {
                if let Some(failure) = progress.failure {
                    output::line(format!(
                        "failure: {}{}",
                        failure.reason,
                        failure.first_actionable_line.map(|line| format!(": {line}")).unwrap_or_default()
                    ));
                }
            }
            tovuk_api_types::DeployEvent::Heartbeat(_) => {}
        }
    }
    Ok(ExitStatus::Success)
}
