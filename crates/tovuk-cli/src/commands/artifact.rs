//! `tovuk artifact show|verify DEPLOY_ID`.

use super::CommandResult;
use crate::args::{ArtifactCommand, GlobalArgs};
use crate::exit::ExitStatus;
use crate::{connect, output};

pub(crate) async fn run(command: ArtifactCommand, global: &GlobalArgs) -> CommandResult {
    let client = connect::client(global.target.as_deref())?;
    match command {
        ArtifactCommand::Show { id } => {
            let info = client.artifact(&id).await?;
            if global.json {
                output::json(&info);
                return Ok(ExitStatus::Success);
            }
            let field = |name: &str| info.manifest.get(name).map(|value| value.to_string()).unwrap_or_default();
            output::line(format!("artifact of deploy {}", info.deploy_id));
            for name in ["app", "build_id", "commit_sha", "digest", "size_bytes", "files", "created_at", "run_command"]
            {
                output::line(format!("{:<12} {}", format!("{name}:"), field(name).trim_matches('"')));
            }
            output::line(format!("{:<12} {}", "signature:", info.signature));
            output::line(format!("{:<12} {}", "signed by:", info.public_key));
            output::note(format!("next: tovuk artifact verify {}", info.deploy_id));
        }
        ArtifactCommand::Verify { id } => {
            let verification = client.verify_artifact(&id).await?;
            let status = if verification.ok { ExitStatus::Success } else { ExitStatus::Failure };
            if global.json {
                output::json(&verification);
                return Ok(status);
            }
            if verification.ok {
                output::line(format!(
                    "artifact of {} verified: signature ok, digest {} ok, signed for this deploy",
                    id, verification.expected_digest
                ));
            } else {
                output::line(format!(
                    "artifact of {} FAILED verification: signature {}, digest {}, {}",
                    id,
                    if verification.signature_ok { "ok" } else { "invalid" },
                    if verification.digest_ok { "ok" } else { "mismatch" },
                    if verification.bound_ok { "signed for this deploy" } else { "not signed for this deploy" }
                ));
                if let Some(problem) = &verification.problem {
                    output::note(format!("problem: {problem}"));
                }
                output::note("this artifact will not be started; rebuild it by pushing again");
            }
            return Ok(status);
        }
    }
    Ok(ExitStatus::Success)
}
