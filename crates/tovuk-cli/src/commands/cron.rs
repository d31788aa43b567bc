//! `tovuk cron list|history|run`: an app's cron jobs, their runs, and a run now.

use super::CommandResult;
use crate::args::{CronCommand, GlobalArgs};
use crate::exit::ExitStatus;
use crate::{connect, output};
use std::time::Duration;
use tovuk_api_types::{AppLogEvent, CronRun, CronRunStatus};

/// How often a followed run is asked whether it ended.
const FOLLOW_POLL: Duration = Duration::from_millis(500);
/// How long output that reaches the log after the run ended is still waited for.
const LAST_LINES_WAIT: Duration = Duration::from_secs(2);

pub(crate) async fn run(command: CronCommand, global: &GlobalArgs) -> CommandResult {
    let client = connect::client(global.target.as_deref())?;
    match command {
        CronCommand::List { app } => {
            let list = client.cron_jobs(&app).await?;
            if global.json {
                output::json(&list);
            } else if list.jobs.is_empty() {
                output::line(format!("{app} has no cron jobs"));
                output::note(
                    "declare one in tovuk.toml: [[resources]] kind = \"cron\" with schedule and command, then deploy",
                );
            } else {
                let rows: Vec<Vec<String>> = list
                    .jobs
                    .iter()
                    .map(|job| {
                        vec![
                            job.binding.clone(),
                            output::or_dash(job.schedule.as_deref()),
                            job.next_run_at.clone().unwrap_or_else(|| format!("- ({})", job.status)),
                            job.last_run.as_ref().map_or_else(|| "-".to_owned(), |run| run.scheduled_at.clone()),
                            job.last_run.as_ref().map_or_else(|| "-".to_owned(), outcome),
                            output::or_dash(job.command.as_deref()),
                        ]
                    })
                    .collect();
                output::line(output::table(
                    &["BINDING", "SCHEDULE", "NEXT RUN", "LAST RUN", "STATUS", "COMMAND"],
                    &rows,
                ));
            }
        }
        CronCommand::History { app, binding, limit } => {
            let history = client.cron_history(&app, binding.as_deref(), limit).await?;
            if global.json {
                output::json(&history);
            } else if history.runs.is_empty() {
                output::line(format!("{app} has no cron runs yet"));
            } else {
                let rows: Vec<Vec<String>> = history
                    .runs
                    .iter()
                    .map(|run| {
                        vec![
                            run.id.clone(),
                            run.binding.clone(),
                            run.trigger.to_string(),
                            run.scheduled_at.clone(),
                            run.duration_ms.map_or_else(|| "-".to_owned(), |ms| format!("{:.1}s", ms as f64 / 1000.0)),
                            outcome(run),
                            output::or_dash(run.reason.as_deref()),
                        ]
                    })
                    .collect();
                output::line(output::table(
                    &["RUN", "BINDING", "TRIGGER", "SCHEDULED", "TOOK", "STATUS", "REASON"],
                    &rows,
                ));
            }
        }
        CronCommand::Run { app, binding, follow } => {
            // Followed from before the run starts, so none of its lines is missed.
            let mut logs = if follow { Some(client.app_logs(&app, true, 0).await?) } else { None };
            let started = client.cron_run_now(&app, &binding).await?;
            let (Some(logs), CronRunStatus::Running) = (logs.as_mut(), started.status) else {
                return Ok(said(&started, global));
            };
            if !global.json {
                output::note(format!("run {} of {binding} started; its output follows", started.id));
            }
            let label = format!("{}.cron.{binding}/", started.deploy_id.as_deref().unwrap_or_default());
            let mut ended = None;
            let mut poll = tokio::time::interval(FOLLOW_POLL);
            let mut last_lines = None;
            loop {
                let wait_lines = async {
                    match last_lines {
                        Some(deadline) => tokio::time::sleep_until(deadline).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    event = logs.next() => match event? {
                        Some(event) => print_line(&event, &label, global),
                        None => break,
                    },
                    _ = poll.tick(), if ended.is_none() => {
                        let now = client.cron_run(&app, &started.id).await?;
                        if now.status != CronRunStatus::Running {
                            ended = Some(now);
                            last_lines = Some(tokio::time::Instant::now() + LAST_LINES_WAIT);
                        }
                    }
                    () = wait_lines => break,
                }
            }
            let ended = match ended {
                Some(ended) => ended,
                None => client.cron_run(&app, &started.id).await?,
            };
            if global.json {
                output::line(serde_json::json!({"type": "result", "data": ended}).to_string());
                return Ok(exit_of(&ended));
            }
            return Ok(said(&ended, global));
        }
    }
    Ok(ExitStatus::Success)
}

/// A line of the followed run's output (the app's other lines are left out).
fn print_line(event: &AppLogEvent, label: &str, global: &GlobalArgs) {
    let AppLogEvent::Log(line) = event;
    if !line.instance.starts_with(label) {
        return;
    }
    if global.json {
        output::line(serde_json::to_string(event).unwrap_or_default());
    } else {
        output::line(&line.line);
    }
}

/// Prints what became of a run; exit 0 when it started (or, followed, succeeded).
fn said(run: &CronRun, global: &GlobalArgs) -> ExitStatus {
    if global.json {
        output::json(run);
        return exit_of(run);
    }
    let line = match run.status {
        CronRunStatus::Running => {
            format!("run {} of {} started (scheduled at {})", run.id, run.binding, run.scheduled_at)
        }
        _ => format!("run {} of {}: {}", run.id, run.binding, outcome(run)),
    };
    output::line(line);
    if let Some(reason) = &run.reason {
        output::note(reason);
    }
    if run.status == CronRunStatus::Running {
        output::note(format!("see how it ends: tovuk cron history {} {}", run.app, run.binding));
    } else if run.status != CronRunStatus::Succeeded {
        output::note(format!("its output: tovuk logs {}", run.app));
    }
    exit_of(run)
}

fn exit_of(run: &CronRun) -> ExitStatus {
    match run.status {
        CronRunStatus::Running | CronRunStatus::Succeeded => ExitStatus::Success,
        _ => ExitStatus::Failure,
    }
}

/// `succeeded`, `failed (exit 3)`, `skipped`...
fn outcome(run: &CronRun) -> String {
    match run.exit_code {
        Some(code) if run.status == CronRunStatus::Failed => format!("{} (exit {code})", run.status),
        _ => run.status.to_string(),
    }
}
