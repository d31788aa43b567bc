//! `tovuk hook NAME`: what git runs as the platform's managed hooks.
//!
//! It relays git's input (and, while a push is in quarantine, where its objects are) to
//! the platform, prints the lines it answers (git shows them as `remote: ...`) and
//! exits non-zero when the platform refuses, which makes git leave every ref unchanged.

use crate::exit::ExitStatus;
use std::io::BufRead;
use tovuk_api_types::{BuildLogEvent, DeployEvent, HookRequest, RefUpdate, hook_env};
use tovuk_client::Client;

pub(crate) fn run(name: &str) -> ExitStatus {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return refuse(&format!("cannot start: {error}")),
    };
    runtime.block_on(relay(name))
}

fn refuse(why: &str) -> ExitStatus {
    eprintln!("tovuk: this push could not be checked, so it was refused: {why}");
    eprintln!("hint: try again; if it keeps failing, check the platform with `tovuk status`");
    ExitStatus::Failure
}

async fn relay(name: &str) -> ExitStatus {
    let (Ok(url), Ok(secret)) = (std::env::var(hook_env::URL), std::env::var(hook_env::PUSH_SECRET)) else {
        return refuse("this hook runs only inside a push to tovuk");
    };
    let mut updates = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { return refuse("git's hook input could not be read") };
        let mut fields = line.split_whitespace();
        if let (Some(old), Some(new), Some(ref_name)) = (fields.next(), fields.next(), fields.next()) {
            updates.push(RefUpdate { old: old.to_owned(), new: new.to_owned(), ref_name: ref_name.to_owned() });
        }
    }
    let request = HookRequest {
        updates,
        object_directory: std::env::var("GIT_OBJECT_DIRECTORY").ok(),
        alternate_object_directories: std::env::var("GIT_ALTERNATE_OBJECT_DIRECTORIES").ok(),
    };
    let client = match Client::new(&url, None) {
        Ok(client) => client,
        Err(error) => return refuse(&error.to_string()),
    };
    match client.run_hook(name, &secret, &request).await {
        Ok(response) => {
            for line in &response.lines {
                eprintln!("{line}");
            }
            if !response.accept {
                return ExitStatus::Failure;
            }
            if name == "post-receive" && !response.deploys.is_empty() {
                if detached() {
                    for deploy in &response.deploys {
                        eprintln!("detached (-o detach): follow it with: tovuk deploy follow {deploy}");
                    }
                } else if let Ok(follower) = Client::new(&url, Some(secret.clone())) {
                    for deploy in &response.deploys {
                        follow(&follower, deploy).await;
                    }
                }
            }
            // The refs moved whatever the deploy does: the push itself succeeded.
            ExitStatus::Success
        }
        Err(error) => refuse(&error.to_string()),
    }
}

/// Whether the push asked not to wait for its deploy (`git push -o detach`).
fn detached() -> bool {
    let count: usize = std::env::var("GIT_PUSH_OPTION_COUNT").ok().and_then(|count| count.parse().ok()).unwrap_or(0);
    (0..count).any(|index| {
        std::env::var(format!("GIT_PUSH_OPTION_{index}"))
            .is_ok_and(|option| option == "detach" || option == "tovuk.detach")
    })
}

/// Prints a deploy's build output and states as they happen, until it runs or fails; a
/// failure ends with its first actionable line, where it failed, and the retry command.
async fn follow(client: &Client, deploy: &str) {
    eprintln!("following deploy {deploy} (git push -o detach returns at once)");
    let build = async {
        let Ok(mut logs) = client.build_logs(deploy, true).await else { return };
        while let Ok(Some(event)) = logs.next().await {
            if let BuildLogEvent::Log(line) = event {
                eprintln!("  {:<12} {}", line.phase, line.line);
            }
        }
    };
    let states = async {
        let Ok(mut events) = client.deploy_events(deploy, true).await else { return None };
        let mut last = None;
        while let Ok(Some(event)) = events.next().await {
            match event {
                DeployEvent::StateChanged(progress) => {
                    eprintln!("{:>8}  {}", format!("+{:.1}s", progress.elapsed_ms as f64 / 1000.0), progress.state);
                }
                DeployEvent::Heartbeat(_) => {}
                DeployEvent::Result(progress) => last = Some(progress),
            }
        }
        last
    };
    let ((), result) = tokio::join!(build, states);
    let Some(result) = result else {
        eprintln!("the deploy's progress could not be followed; see: tovuk deploy follow {deploy}");
        return;
    };
    match &result.failure {
        None => eprintln!("deploy {deploy} is {}", result.state),
        Some(failure) => {
            let phase = failure.phase.map(|phase| format!(" at {phase}")).unwrap_or_default();
            eprintln!("deploy {deploy} {}{phase}: {}", result.state, failure.reason);
            if let Some(line) = &failure.first_actionable_line {
                eprintln!("  {line}");
            }
            eprintln!("the pushed commit is kept either way; the app serves what it served before");
            eprintln!("retry: tovuk deploy retry {deploy} --follow   (or fix, commit and push again)");
        }
    }
}
