//! `docs/cli.md` carries every command's `--help` verbatim; this test keeps it current.
//!
//! Run with `TOVUK_UPDATE_DOCS=1` to rewrite the file after changing a command.

use crate::support::UserEnv;

/// Every command path, in the order the reference lists them.
const COMMANDS: &[&[&str]] = &[
    &[],
    &["server"],
    &["status"],
    &["check"],
    &["app"],
    &["app", "create"],
    &["app", "list"],
    &["app", "show"],
    &["app", "update"],
    &["app", "status"],
    &["app", "inspect"],
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
