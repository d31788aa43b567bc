//! `docs/cli.md` carries every command's `--help` verbatim; this test keeps it current.
//!
//! Run with `TOVUK_UPDATE_DOCS=1` to rewrite the file after changing a command.

use crate::support::UserEnv;

/// Every command path, in the order the reference lists them.
const COMMANDS: &[&[&str]] = &[
    &[],
    &["server"],
    &["status"],
    &["store"],
    &["store", "backup"],
    &["check"],
    &["init"],
    &["preflight"],
    &["rollback"],
    &["app"],
    &["app", "create"],
    &["app", "list"],
    &["app", "show"],
    &["app", "update"],
    &["app", "status"],
    &["app", "inspect"],
    &["app", "preflight"],
    &["app", "restart"],
    &["deploy"],
    &["deploy", "list"],
    &["deploy", "show"],
    &["deploy", "follow"],
    &["deploy", "retry"],
    &["deploy", "cancel"],
    &["ops"],
    &["ops", "list"],
    &["ops", "show"],
    &["source"],
    &["source", "show"],
    &["source", "resolve-ref"],
    &["source", "commits"],
    &["source", "remote"],
    &["source", "refs"],
    &["logs"],
    &["artifact"],
    &["artifact", "show"],
    &["artifact", "verify"],
    &["env"],
    &["env", "set"],
    &["env", "unset"],
    &["env", "list"],
    &["env", "history"],
    &["config"],
    &["config", "template"],
    &["config", "apply"],
    &["pricing"],
    &["usage"],
    &["caps"],
    &["caps", "set"],
    &["caps", "list"],
    &["caps", "unset"],
    &["service"],
    &["service", "show"],
    &["service", "list"],
    &["addon"],
    &["addon", "create"],
    &["addon", "detach"],
    &["sqlite"],
    &["sqlite", "snapshot"],
    &["sqlite", "snapshots"],
    &["sqlite", "restore"],
    &["sqlite", "query"],
    &["queue"],
    &["queue", "list"],
    &["queue", "show"],
    &["queue", "peek"],
    &["queue", "purge"],
    &["queue", "redrive"],
    &["cron"],
    &["cron", "list"],
    &["cron", "history"],
    &["cron", "run"],
    &["token"],
    &["token", "create"],
    &["token", "list"],
    &["token", "revoke"],
    &["target"],
    &["target", "add"],
    &["target", "list"],
    &["target", "use"],
    &["target", "remove"],
];

fn reference() -> String {
    let user = UserEnv::new();
    let mut out = String::from(
        "# CLI reference\n\n\
         Generated from `tovuk ... --help`; `TOVUK_UPDATE_DOCS=1 cargo test -p tovuk --test it docs` rewrites it.\n\
         Every command takes `--json` (one JSON document on stdout, errors included) and `--target NAME`.\n",
    );
    for command in COMMANDS {
        let run = user.tovuk().args(*command).arg("--help").env("COLUMNS", "100").run().success();
        let title = if command.is_empty() { "tovuk".to_owned() } else { format!("tovuk {}", command.join(" ")) };
        out.push_str(&format!("\n## `{title}`\n\n```text\n{}\n```\n", run.stdout.trim_end()));
    }
    out
}

#[test]
fn cli_reference_matches_every_commands_help() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md");
    let expected = reference();
    if std::env::var_os("TOVUK_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &expected).expect("write docs/cli.md");
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/cli.md is out of date: run `TOVUK_UPDATE_DOCS=1 cargo test -p tovuk --test it docs`"
    );
}

#[test]
fn the_reference_lists_every_command() {
    let user = UserEnv::new();
    let mut missing = Vec::new();
    for parent in COMMANDS.iter().filter(|command| command.len() < 2) {
        let help = user.tovuk().args(*parent).arg("--help").run().success().stdout;
        let listed = help.split("Commands:").nth(1).unwrap_or("").split("\n\n").next().unwrap_or("");
        // Command lines are indented two spaces; wrapped descriptions are indented more.
        for line in listed.lines().filter(|line| line.starts_with("  ") && !line.starts_with("   ")) {
            let Some(name) = line.split_whitespace().next() else { continue };
            let mut path: Vec<&str> = parent.to_vec();
            path.push(name);
            if name != "help" && !COMMANDS.contains(&path.as_slice()) {
                missing.push(path.join(" "));
            }
        }
    }
    assert!(missing.is_empty(), "add to COMMANDS in docs.rs: {missing:?}");
}

/// One section per fixed value set on the wire, from the types themselves.
fn values_reference() -> String {
    use tovuk_types::values::*;
    fn section<T: TextEnum>(out: &mut String, fields: &str) {
        out.push_str(&format!("\n## {}\n\n{fields}\n\n| value | meaning |\n|---|---|\n", T::WHAT));
        for value in T::ALL {
            out.push_str(&format!("| `{}` | {} |\n", value.as_str(), value.describe()));
        }
    }
    let mut out = String::from(
        "# Fixed values\n\n\
         Every field of the API that takes one of a fixed set of values, with the values.\n\
         Generated from the types (`tovuk-types`'s `values`); \
         `TOVUK_UPDATE_DOCS=1 cargo test -p tovuk --test it docs` rewrites it.\n\
         A value outside its set is refused with the list of values.\n",
    );
    section::<tovuk_types::DeployState>(
        &mut out,
        "`Deploy.state`, `state_changes[].state`, `failure.phase`, build phases, follow events.",
    );
    section::<FailureReason>(&mut out, "`Deploy.failure.reason`.");
    section::<PhaseStatus>(&mut out, "`Deploy.phases[].status`.");
    section::<FinalBuildStatus>(&mut out, "`Deploy.final_build.status` (`null` until the build is over).");
    section::<BuildOutcome>(&mut out, "How a builder reports a build's end (`/internal/v1/builds/{id}/finish`).");
    section::<InstanceStatus>(&mut out, "`AppStatus.instance.status` (`tovuk app status`, `tovuk app inspect`).");
    section::<LogStream>(&mut out, "`stream` of build log and app log lines.");
    section::<SourceKind>(&mut out, "`Deploy.source.kind`, `Operation.source.kind`.");
    section::<DeployKind>(&mut out, "`Deploy.kind`.");
    section::<OperationKind>(&mut out, "`Operation.kind`.");
    section::<OperationStatus>(&mut out, "`Operation.status`.");
    section::<TokenScopeName>(&mut out, "`Token.scope`.");
    section::<CapState>(&mut out, "`Cap.state` (`tovuk caps list`).");
    section::<RoleState>(&mut out, "`PlatformStatus.roles[].state` (`tovuk status`).");
    section::<tovuk_types::values::ResourceStatus>(
        &mut out,
        "`Service.resources[].status` (`tovuk service show`, `tovuk service list`).",
    );
    section::<CronRunStatus>(&mut out, "`CronRun.status` (`tovuk cron history`, `tovuk cron run`).");
    section::<CronTrigger>(&mut out, "`CronRun.trigger`.");
    out
}

#[test]
fn the_values_reference_lists_every_value_of_every_set() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/values.md");
    let expected = values_reference();
    if std::env::var_os("TOVUK_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &expected).expect("write docs/values.md");
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/values.md is out of date: run `TOVUK_UPDATE_DOCS=1 cargo test -p tovuk --test it docs`"
    );
}
