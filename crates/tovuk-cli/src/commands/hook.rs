//! `tovuk hook NAME`: what git runs as the platform's managed hooks.
//!
//! It relays git's input (and, while a push is in quarantine, where its objects are) to
//! the platform, prints the lines it answers (git shows them as `remote: ...`) and
//! exits non-zero when the platform refuses, which makes git leave every ref unchanged.

use crate::exit::ExitStatus;
use std::io::BufRead;
use tovuk_api_types::{HookRequest, RefUpdate, hook_env};
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
            if response.accept { ExitStatus::Success } else { ExitStatus::Failure }
        }
        Err(error) => refuse(&error.to_string()),
    }
}
