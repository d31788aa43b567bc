//! `tovuk addon create|detach`: resources attached to an app itself, not by its tovuk.toml.

use super::CommandResult;
use crate::args::{AddonCommand, GlobalArgs};
use crate::exit::ExitStatus;
use crate::{connect, output};
use tovuk_api_types::{AddonCreateRequest, AddonResult, ResourceStatus};

pub(crate) async fn run(command: AddonCommand, global: &GlobalArgs) -> CommandResult {
    let client = connect::client(global.target.as_deref())?;
    let result = match command {
        AddonCommand::Create { app, kind, binding } => {
            client.create_addon(&app, &AddonCreateRequest { kind, binding }).await?
        }
        AddonCommand::Detach { app, binding } => client.detach_addon(&app, &binding).await?,
    };
    if global.json {
        output::json(&result);
    } else {
        print_result(&result);
    }
    Ok(ExitStatus::Success)
}

fn print_result(result: &AddonResult) {
    output::line(&result.message);
    if result.status == ResourceStatus::Active && !result.env.is_empty() {
        output::line(format!("it sets: {} (values are never shown)", result.env.join(", ")));
    }
    if let Some(release) = &result.release {
        output::line(format!("releasing the current artifact as deploy {} (no rebuild)", release.id));
    }
    for next in &result.next {
        output::note(format!("next: {next}"));
    }
}
