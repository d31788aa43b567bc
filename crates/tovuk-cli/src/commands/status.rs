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
        (Some(error), Some(_)) => format!("failing: reads answer, writes do not: {error}"),
        (Some(error), None) => format!("not answering: {error}"),
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
    let limits = &status.limits;
    let said = |on: bool| if on { "enforced" } else { "NOT enforced" };
    output::line(format!(
        "limits on apps and builds (cgroup {}): memory {}, cpu {}, pids {}, /tmp size {}, /data quota {}, own network {}, builds and outbound apps apart {}",
        limits.cgroup,
        said(limits.memory),
        said(limits.cpu),
        said(limits.pids),
        said(limits.tmp_size),
        said(limits.data_quota),
        said(limits.network_isolation),
        said(limits.outbound_isolation),
    ));
    for note in &limits.notes {
        output::line(format!("  {note}"));
    }
    Ok(exit)
}

/// `tovuk store backup PATH`: the copy is written beside PATH and renamed into place, so
/// PATH is either absent or a whole copy.
pub(crate) async fn store(command: crate::args::StoreCommand, global: &GlobalArgs) -> CommandResult {
    let crate::args::StoreCommand::Backup { path } = command;
    if path.exists() {
        return Err(super::CliError::usage(format!(
            "`{}` exists; name a new file (a backup never overwrites one)",
            path.display()
        )));
    }
    let client = connect::client(global.target.as_deref())?;
    let bytes = client.store_backup().await?;
    let partial = path.with_extension("partial");
    let written = std::fs::write(&partial, &bytes).and_then(|()| std::fs::rename(&partial, &path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(super::CliError::failed(
            tovuk_api_types::ErrorCode::InvalidRequest,
            format!("cannot write `{}`: {error}", path.display()),
        ));
    }
    if global.json {
        output::json(&serde_json::json!({ "path": path.display().to_string(), "bytes": bytes.len() }));
    } else {
        output::line(format!("state store backed up to {} ({} bytes)", path.display(), bytes.len()));
    }
    Ok(ExitStatus::Success)
}
