//! The scheduler: wakes at each active cron resource's next tick (UTC) and starts it. At
//! start it catches up on what the platform was down for: the newest missed tick runs once
//! if it passed at most [`ticks::CATCH_UP_WINDOW`] ago, the older ones make one `missed`
//! record. A deploy going live wakes it, so a new or changed schedule counts from then.

use super::{Job, all_jobs, parse_stamp, stamp, start_run, ticks};
use crate::ControlState;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::time::Duration;
use tovuk_daemon::Shutdown;
use tovuk_store::NewCronRun;
use tovuk_types::values::CronTrigger;

/// The longest the scheduler sleeps without looking at the deploys again.
const LOOK_AGAIN: Duration = Duration::from_secs(60);

/// Runs the cron resources' ticks until `shutdown`.
pub async fn run_cron(state: ControlState, shutdown: Shutdown) -> anyhow::Result<()> {
    let mut changes = state.inner.deploy_changes.subscribe();
    // The last tick dealt with, by resource id.
    let mut marks: HashMap<String, DateTime<Utc>> = HashMap::new();
    let mut first_pass = true;
    loop {
        let now = Utc::now();
        let mut wake = now + LOOK_AGAIN;
        match all_jobs(&state).await {
            Ok(jobs) => {
                marks.retain(|id, _| jobs.iter().any(|job| job.resource.id == *id));
                for job in &jobs {
                    let mark = match marks.get(&job.resource.id) {
                        Some(mark) => *mark,
                        None if first_pass => stored_mark(&state, job).await,
                        // Seen for the first time while running: its schedule counts from now.
                        None => now,
                    };
                    let mark = tick(&state, job, mark, now, first_pass).await;
                    marks.insert(job.resource.id.clone(), mark);
                    if let Some(next) = job.spec.schedule.next_after(&mark.max(now)) {
                        wake = wake.min(next);
                    }
                }
                first_pass = false;
            }
            Err(failure) => {
                tracing::warn!(error = %failure.0.message, "cannot read the cron jobs; trying again");
                wake = now + Duration::from_secs(5);
            }
        }
        let sleep = (wake - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            () = shutdown.wait() => return Ok(()),
            () = tokio::time::sleep(sleep) => {}
            changed = changes.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
            }
        }
    }
}

/// Where a job's schedule left off before this start: its last tick recorded, or when the
/// resource was made.
async fn stored_mark(state: &ControlState, job: &Job) -> DateTime<Utc> {
    let last = state.store().last_cron_tick(&job.resource.id).await.ok().flatten();
    let made = parse_stamp(&job.resource.created_at);
    last.as_deref().and_then(parse_stamp).into_iter().chain(made).max().unwrap_or_else(Utc::now)
}

/// Deals with the ticks of `job` after `mark` up to `now`; returns the new mark.
async fn tick(
    state: &ControlState,
    job: &Job,
    mark: DateTime<Utc>,
    now: DateTime<Utc>,
    at_start: bool,
) -> DateTime<Utc> {
    let Some(due) = ticks::due(&job.spec.schedule, mark, now) else { return mark };
    let plan = ticks::plan(&due, now);
    let why = if at_start { "while the platform was down" } else { "while the scheduler was behind" };
    if let Some(missed) = &plan.missed {
        let window = ticks::CATCH_UP_WINDOW.num_minutes();
        let reason = match missed.count {
            1 => format!(
                "the tick was missed {why} (at start, only the newest missed tick runs, within {window}m of it)"
            ),
            count => format!(
                "{}{count} ticks from {} to {} were missed {why} (at start, only the newest missed tick runs, within {window}m of it)",
                if missed.more { "at least " } else { "" },
                stamp(&missed.first),
                stamp(&missed.last),
            ),
        };
        let scheduled_at = stamp(&missed.last);
        let record = NewCronRun {
            app_id: job.app.id.as_str(),
            resource_id: &job.resource.id,
            binding: &job.resource.binding,
            deploy_id: None,
            trigger: CronTrigger::Schedule,
            scheduled_at: &scheduled_at,
            reason: None,
        };
        match state.store().record_missed_cron(&record, &reason).await {
            Ok(_) => tracing::warn!(app = %job.app.name, binding = %job.resource.binding, %reason, "cron ticks missed"),
            // Not recorded: the next start finds them again.
            Err(error) => {
                tracing::warn!(%error, app = %job.app.name, "cannot record missed cron ticks");
                return mark;
            }
        }
    }
    if let Some(run) = plan.run {
        let late = now - run > chrono::TimeDelta::seconds(1);
        let reason = (at_start && late).then(|| "caught up at start: the platform was down at its time".to_owned());
        let (state, job, scheduled_at) = (state.clone(), job.clone(), stamp(&run));
        // Started apart: a run that waits for its app to come back holds up no other tick.
        state.clone().spawn_task("cron-run", async move {
            if let Err(failure) = start_run(&state, &job, &scheduled_at, CronTrigger::Schedule, reason.as_deref()).await
            {
                tracing::warn!(app = %job.app.name, binding = %job.resource.binding, error = %failure.0.message, "cron tick not started");
            }
        });
    }
    due.last
}
