//! `tovuk sqlite snapshot|snapshots|restore|query`: an operator's hands on an app's SQLite databases.

use super::CommandResult;
use crate::args::{GlobalArgs, SqliteCommand};
use crate::exit::ExitStatus;
use crate::{connect, output};

pub(crate) async fn run(command: SqliteCommand, global: &GlobalArgs) -> CommandResult {
    let client = connect::client(global.target.as_deref())?;
    match command {
        SqliteCommand::Snapshot { app, binding } => {
            let snapshot = client.sqlite_snapshot(&app, &binding).await?;
            if global.json {
                output::json(&snapshot);
            } else {
                output::line(format!("snapshot {} of {app} {binding}: {} bytes", snapshot.id, snapshot.size_bytes));
                output::note(format!("restore it with: tovuk sqlite restore {app} {binding} {}", snapshot.id));
            }
        }
        SqliteCommand::Snapshots { app, binding } => {
            let list = client.sqlite_snapshots(&app, &binding).await?;
            if global.json {
                output::json(&list);
            } else if list.snapshots.is_empty() {
                output::line(format!("{app} {binding} has no snapshots"));
                output::note(format!("next: tovuk sqlite snapshot {app} {binding}"));
            } else {
                let rows: Vec<Vec<String>> = list
                    .snapshots
                    .iter()
                    .map(|snapshot| {
                        vec![snapshot.id.clone(), snapshot.created_at.clone(), snapshot.size_bytes.to_string()]
                    })
                    .collect();
                output::line(output::table(&["SNAPSHOT", "CREATED", "BYTES"], &rows));
            }
        }
        SqliteCommand::Restore { app, binding, snapshot } => {
            let restored = client.sqlite_restore(&app, &binding, &snapshot).await?;
            if global.json {
                output::json(&restored);
            } else {
                output::line(format!(
                    "restored {app} {binding} from {} ({} instances restarted)",
                    restored.snapshot, restored.restarted_instances
                ));
                output::note(format!(
                    "the database as it was is snapshot {}; to go back: tovuk sqlite restore {app} {binding} {}",
                    restored.previous.id, restored.previous.id
                ));
            }
        }
        SqliteCommand::Query { app, binding, sql, write } => {
            let result = client.sqlite_query(&app, &binding, &sql, write).await?;
            if global.json {
                output::json(&result);
                return Ok(ExitStatus::Success);
            }
            let rows: Vec<Vec<String>> = result
                .rows
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|value| match value {
                            serde_json::Value::String(text) => text.clone(),
                            serde_json::Value::Null => "NULL".to_owned(),
                            other => other.to_string(),
                        })
                        .collect()
                })
                .collect();
            if !result.columns.is_empty() {
                let header: Vec<&str> = result.columns.iter().map(String::as_str).collect();
                output::line(output::table(&header, &rows));
            }
            if write {
                output::note(format!("{} rows changed", result.changes));
            }
            if result.truncated {
                output::note("more rows than shown: add a LIMIT or --json");
            }
        }
    }
    Ok(ExitStatus::Success)
}
