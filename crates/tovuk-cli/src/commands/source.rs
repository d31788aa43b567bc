//! `tovuk source show|resolve-ref|commits|remote|refs`: the hosted repository.

use super::CommandResult;
use super::ops::short;
use crate::args::{GlobalArgs, SourceCommand};
use crate::exit::ExitStatus;
use crate::{connect, output};
use tovuk_api_types::Commit;

fn commit_line(commit: &Commit) -> String {
    format!("{}  {}  {}  {}", short(&commit.sha), commit.committed_at, commit.author_name, commit.subject)
}

pub(crate) async fn run(command: SourceCommand, global: &GlobalArgs) -> CommandResult {
    let client = connect::client(global.target.as_deref())?;
    match command {
        SourceCommand::Show { app } => {
            let summary = client.source_show(&app).await?;
            if global.json {
                output::json(&summary);
                return Ok(ExitStatus::Success);
            }
            output::line(format!("app:           {}", summary.app));
            output::line(format!("git remote:    {}", summary.git_remote));
            output::line(format!("deploy branch: {}", summary.deploy_branch));
            match &summary.head {
                Some(head) => output::line(format!("head:          {}", commit_line(head))),
                None => output::line("head:          - (nothing pushed yet)"),
            }
            output::line(format!("branches:      {}, tags: {}", summary.branch_count, summary.tag_count));
            match &summary.last_deploy {
                Some(deploy) => output::line(format!("last deploy:   {} ({})", deploy.id, deploy.state)),
                None => output::line("last deploy:   -"),
            }
            if summary.head.is_none() {
                output::note(format!(
                    "next: git remote add tovuk {} && git push tovuk {}",
                    summary.git_remote, summary.deploy_branch
                ));
            }
        }
        SourceCommand::ResolveRef { app, reference } => {
            let resolved = client.source_resolve(&app, &reference).await?;
            if global.json {
                output::json(&resolved);
            } else {
                output::line(format!("{} {}", resolved.sha, resolved.ref_name.as_deref().unwrap_or(&resolved.input)));
            }
        }
        SourceCommand::Commits { app, reference, limit } => {
            let list = client.source_commits(&app, reference.as_deref(), Some(limit)).await?;
            if global.json {
                output::json(&list);
            } else {
                for commit in &list.commits {
                    output::line(commit_line(commit));
                }
            }
        }
        SourceCommand::Remote { app } => {
            let remote = client.source_remote(&app).await?;
            if global.json {
                output::json(&remote);
            } else {
                output::line(&remote.url);
                output::note(format!("next: {}", remote.push_command));
            }
        }
        SourceCommand::Refs { app } => {
            let refs = client.source_refs(&app).await?;
            if global.json {
                output::json(&refs);
            } else if refs.refs.is_empty() {
                output::note(format!("no refs yet: nothing has been pushed to `{}`", refs.app));
            } else {
                for r in &refs.refs {
                    output::line(format!("{} {} {}", r.sha, r.object_type, r.name));
                }
            }
        }
    }
    Ok(ExitStatus::Success)
}
