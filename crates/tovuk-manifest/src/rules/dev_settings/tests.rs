//! Tests for spotting development-only settings in commands.

use super::scan_command;

fn found(command: &str) -> Vec<String> {
    scan_command(command)
        .into_iter()
        .map(|finding| format!("{}@{}+{}", finding.what, finding.offset, finding.len))
        .collect()
}

#[test]
fn flags_each_development_pattern() {
    assert_eq!(found("cargo run"), ["`cargo run` without `--release`@0+9"]);
    assert_eq!(found("npm run dev"), ["`npm run dev`@0+11"]);
    assert_eq!(found("yarn dev"), ["`yarn dev`@0+8"]);
    assert_eq!(found("pnpm  dev"), ["`pnpm dev`@0+9"]);
    assert_eq!(found("npx nodemon server.js"), ["`nodemon`@4+7"]);
    assert_eq!(found("uvicorn app:app --reload"), ["`--reload`@16+8"]);
    assert_eq!(found("flask run --host 0.0.0.0"), ["`flask run`@0+9"]);
    assert_eq!(found("python manage.py runserver"), ["`manage.py runserver`@7+19"]);
    assert_eq!(found("./server --debug"), ["`--debug`@9+7"]);
    assert_eq!(found("NODE_ENV=development node index.js"), ["`NODE_ENV=development`@0+20"]);
    assert_eq!(found("next dev"), ["`next dev`@0+8"]);
}

#[test]
fn production_commands_are_clean() {
    for command in [
        "cargo run --release",
        "cargo run -r --bin api",
        "./target/release/my-api",
        "npm start",
        "npm run build",
        "gunicorn app:app",
        "NODE_ENV=production node index.js",
        "python -m http.server",
        "./debug-tool --debugger",
    ] {
        assert!(found(command).is_empty(), "{command}: {:?}", found(command));
    }
}

#[test]
fn reports_every_pattern_in_one_command() {
    assert_eq!(
        found("NODE_ENV=development nodemon --debug"),
        ["`NODE_ENV=development`@0+20", "`nodemon`@21+7", "`--debug`@29+7"]
    );
}
