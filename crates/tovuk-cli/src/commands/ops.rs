//! `tovuk ops list|show`: operation records.

use super::CommandResult;
use crate::args::{GlobalArgs, OpsCommand};
use crate::exit::ExitStatus;
use crate::{connect, output};
use tovuk_api_types::Operation;

fn source_text(op: &Operation) -> String {
    match &op.source {
        Some(source) => {
            let forced = if source.forced { " (force-push)" } else { "" };
            format!("{} {} at {}{forced}", source.kind, source.ref_name, short(&source.sha))
        }
        None => "-".to_owned(),
    }
}

pub(crate) fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

pub(crate) async fn run(command: OpsCommand, global: &GlobalArgs) -> CommandResult {
    let client = connect::client(global.target.as_deref())?;
    match command {
        OpsCommand::List { app } => {
            let list = client.list_operations(&app).await?;
            if global.json {
                output::json(&list);
                return Ok(ExitStatus::Success);
            }
            if list.operations.is_empty() {
                output::note(format!("no operations yet for `{app}`; push to it to make some"));
                return Ok(ExitStatus::Success);
            }
            let rows: Vec<Vec<String>> = list
                .operations
                .iter()
                .map(|op| {
                    vec![
                        op.id.clone(),
                        op.kind.to_string(),
                        op.status.to_string(),
                        op.deploy_id.clone(),
                        source_text(op),
                        op.created_at.clone(),
                    ]
                })
                .collect();
            output::line(output::table(&["ID", "KIND", "STATUS", "DEPLOY", "SOURCE", "CREATED"], &rows));
        }
        OpsCommand::Show { id } => {
            let op = client.show_operation(&id).await?;
            if global.json {
                output::json(&op);
                return Ok(ExitStatus::Success);
            }
            output::line(format!("operation {} ({} of app `{}`)", op.id, op.kind, op.app));
            output::line(format!("status:   {}", op.status));
            output::line(format!("deploy:   {}", op.deploy_id));
            output::line(format!("source:   {}", source_text(&op)));
            output::line(format!("parent:   {}", output::or_dash(op.parent_id.as_deref())));
            output::line(format!(
                "children: {}",
                if op.child_ids.is_empty() { "-".to_owned() } else { op.child_ids.join(", ") }
            ));
            output::line(format!("created:  {}", op.created_at));
        }
    }
    Ok(ExitStatus::Success)
}
