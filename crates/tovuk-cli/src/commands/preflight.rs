//! `tovuk preflight APP` (and `tovuk app preflight`): the project's contract, checked here,
//! then against the app's config by the platform's deploy gate; every blocker with the
//! command that clears it, and the runtime evidence of what serves now. Deploys nothing.

use super::{CliError, CommandResult};
use crate::args::{GlobalArgs, PreflightArgs};
use crate::exit::ExitStatus;
use crate::{connect, output};
use tovuk_api_types::PreflightRequest;

pub(crate) async fn run(args: &PreflightArgs, global: &GlobalArgs) -> CommandResult {
    let contract = crate::contract::read(&args.dir, Some(&args.app))?;
    let (Some(_), true, Some(text)) = (&contract.manifest, contract.report.ok(), contract.text) else {
        output::note(tovuk_manifest::render_human(&contract.report).trim_end());
        return Err(CliError::usage(format!(
            "{} does not pass the contract check: nothing to preflight",
            contract.display
        ))
        .next(format!("fix it (tovuk check {}), then: tovuk preflight {}", args.dir.display(), args.app)));
    };
    let client = connect::client(global.target.as_deref())?;
    let preflight = client.preflight(&args.app, &PreflightRequest { manifest: text }).await?;
    let status = if preflight.blockers.is_empty() { ExitStatus::Success } else { ExitStatus::Failure };
    if global.json {
        output::json(&preflight);
        return Ok(status);
    }
    match preflight.blockers.len() {
        0 => output::line(format!("`{}` is ready: a deploy of this contract passes the gate", preflight.app)),
        count => output::line(format!(
            "`{}` is blocked: {count} blocker(s), each with the command that clears it",
            preflight.app
        )),
    }
    for blocker in &preflight.blockers {
        let what = if blocker.name.is_empty() { String::new() } else { format!(" {}", blocker.name) };
        output::line(format!("  {} [{}]{what}: {}", blocker.kind, blocker.capability, blocker.needed_by));
        output::line(format!(
            "      expected {}; observed {} (check {})",
            blocker.expected, blocker.observed, blocker.check
        ));
        output::line(format!("      next: {}", blocker.next));
    }
    super::app::print_evidence(preflight.runtime_evidence.as_ref());
    Ok(status)
}
