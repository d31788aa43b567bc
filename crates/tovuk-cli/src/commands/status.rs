//! `tovuk status`: platform API availability, never a project's health.

use super::CommandResult;
use crate::args::GlobalArgs;
use crate::exit::ExitStatus;
use crate::{connect, output};

pub(crate) async fn run(global: &GlobalArgs) -> CommandResult {
    let client = connect::client(global.target.as_deref())?;
    let status = client.status().await?;
    let exit = if status.status == "ok" { ExitStatus::Success } else { ExitStatus::Failure };
    if global.json {
        output::json(&status);
        return Ok(exit);
    }
    output::line(format!("tovuk {} at {}: {}", status.version, client.base_url(), status.status));
    output::line(format!("up {}s, since {}", status.uptime_seconds, status.started_at));
    let store_state = match (&status.store.error, status.store.latency_ms) {
        (Some(error), _) => format!("not answering: {error}"),
        (None, Some(ms)) => format!("ok ({ms:.1} ms)"),
        (None, None) => "ok".to_owned(),
    };
    let mut rows = vec![vec!["store".to_owned(), status.store.kind.clone(), store_state]];
    rows.extend(
        status
            .roles
            .iter()
            .map(|role| vec![role.name.clone(), role.state.to_string(), output::or_dash(role.address.as_deref())]),
    );
    output::line(output::table(&["PART", "STATE", "DETAIL"], &rows));
    Ok(exit)
}
