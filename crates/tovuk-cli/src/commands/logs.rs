//! `tovuk logs --build DEPLOY_ID [--follow]`: a build's log, streamed as the server
//! pushes it.

use super::CommandResult;
use crate::args::{GlobalArgs, LogsArgs};
use crate::exit::ExitStatus;
use crate::{connect, output};
use tovuk_api_types::BuildLogEvent;

pub(crate) async fn run(args: LogsArgs, global: &GlobalArgs) -> CommandResult {
    let client = connect::client(global.target.as_deref())?;
    let mut stream = client.build_logs(&args.build, args.follow).await?;
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
                            failure.phase.as_deref().map(|phase| format!(" in {phase}")).unwrap_or_default()
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
