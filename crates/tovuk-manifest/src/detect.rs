//! The contract of a project without `tovuk.toml`, detected from the files its ecosystem
//! already has: a `Procfile`, and Python, Node, Rust, Go or static-site files.
//!
//! Detection writes the `tovuk.toml` it stands for (what `tovuk init` saves for editing), so
//! everything downstream checks, builds and runs one kind of contract. Each choice comes
//! with the reason shown in the push output, `tovuk check` and `deploy --dry-run`.

mod runtime;

use crate::names::check_process_name;
pub use runtime::{RuntimeRequest, printed_version};
use std::collections::BTreeMap;

/// The files at the project root detection reads; a caller passes those that exist.
pub const DETECTION_FILES: [&str; 11] = [
    "Procfile",
    "requirements.txt",
    "pyproject.toml",
    "runtime.txt",
    ".python-version",
    "package.json",
    "Cargo.toml",
    "go.mod",
    "manage.py",
    "index.html",
    "package-lock.json",
];

/// What detection reads: the names at the project root, and the contents of those of
/// [`DETECTION_FILES`] that exist ([`ProjectRoot::wanted`]); each is read capped at
/// [`crate::MAX_MANIFEST_BYTES`] (a larger one is read as that much).
#[derive(Debug, Clone, Default)]
pub struct ProjectRoot {
    pub names: Vec<String>,
    pub files: BTreeMap<String, Vec<u8>>,
}

impl ProjectRoot {
    /// A root with these top-level names, whose detection files are still to be read.
    pub fn with_names(names: Vec<String>) -> ProjectRoot {
        ProjectRoot { names, files: BTreeMap::new() }
    }

    /// The detection files present at the root: the ones a caller reads into `files`
    /// (a lock file only counts by its presence and may stay unread).
    pub fn wanted(&self) -> Vec<&'static str> {
        DETECTION_FILES.into_iter().filter(|name| self.has(name) && *name != "package-lock.json").collect()
    }

    fn has(&self, name: &str) -> bool {
        self.names.iter().any(|present| present == name)
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.files.get(name).and_then(|bytes| std::str::from_utf8(bytes).ok())
    }
}

/// A detected contract: the manifest text, what it was detected from, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Detection {
    /// `python`, `node`, `rust`, `go`, `static` or `procfile`.
    pub language: &'static str,
    /// One line per choice: the file it came from and what it set.
    pub reasons: Vec<String>,
    /// The `tovuk.toml` it stands for.
    pub manifest: String,
    /// The programs its build and run commands need from the platform.
    pub tools: Vec<&'static str>,
    /// The runtime version the project's files ask for, which the build compares with the
    /// version the platform has.
    #[serde(skip)]
    pub requested_runtime: Option<RuntimeRequest>,
    /// Things the project asks for that the platform does not do as asked.
    #[serde(skip)]
    pub(crate) warnings: Vec<String>,
}

/// Why nothing could be detected: a sentence, and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotDetected {
    pub message: String,
    pub next: String,
}

/// One `Procfile` line per process type.
fn procfile(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once(':'))
        .map(|(name, command)| (name.trim().to_owned(), command.trim().to_owned()))
        .filter(|(name, command)| !name.is_empty() && !command.is_empty())
        .collect()
}

/// A TOML basic string holding `value`.
fn quoted(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(values: &[String]) -> String {
    format!("[{}]", values.iter().map(|value| quoted(value)).collect::<Vec<_>>().join(", "))
}

/// What one language contributes before the manifest is written.
#[derive(Default)]
struct Plan {
    language: &'static str,
    build: Vec<String>,
    run: Option<String>,
    release: Option<String>,
    /// Procfile process types besides `web` and `release`: `[[processes]]`.
    processes: Vec<(String, String)>,
    /// No web process: the app is a `worker`.
    kind_worker: bool,
    output: Vec<String>,
    cache: Vec<String>,
    kind_static: bool,
    reasons: Vec<String>,
    warnings: Vec<String>,
    requested_runtime: Option<RuntimeRequest>,
}

/// Detects the contract of the project at `root`, deployed as `app`.
pub fn detect(app: &str, root: &ProjectRoot) -> Result<Detection, NotDetected> {
    let processes = root.text("Procfile").map(procfile).unwrap_or_default();
    let mut plan = if root.has("requirements.txt") || root.has("pyproject.toml") {
        python(root)
    } else if root.has("package.json") {
        node(root)?
    } else if root.has("Cargo.toml") {
        rust(root)?
    } else if root.has("go.mod") {
        go(root)
    } else if root.has("Procfile") {
        Plan { language: "procfile", ..Plan::default() }
    } else if root.has("index.html") {
        Plan {
            language: "static",
            kind_static: true,
            reasons: vec!["index.html: a static site, served by the router from the project root".into()],
            ..Plan::default()
        }
    } else {
        return Err(NotDetected {
            message: "no tovuk.toml, and nothing to detect a contract from: no Procfile, requirements.txt, \
                      pyproject.toml, package.json, Cargo.toml, go.mod or index.html at the project root"
                .into(),
            next: format!(
                "add the file your language uses, or write tovuk.toml (`tovuk init` writes one to edit); \
                 the smallest web app is:\n{}",
                crate::MINIMAL_MANIFEST
            ),
        });
    };
    if let Some(web) = processes.get("web") {
        plan.run = Some(web.clone());
        plan.reasons.push(format!("Procfile: web: {web} is the run command"));
    }
    for (name, command) in &processes {
        if name == "release" {
            plan.release = Some(command.clone());
            plan.reasons.push(format!("Procfile: release: {command} runs once per release, before it starts"));
        } else if name != "web" {
            if check_process_name(name).is_err() {
                plan.warnings.push(format!(
                    "Procfile `{name}: {command}` does not run: a process name uses a-z, 0-9, `-` and `_`, \
                     starting with a letter"
                ));
                continue;
            }
            plan.reasons.push(format!("Procfile: {name}: {command} runs next to it, with no traffic"));
            plan.processes.push((name.clone(), command.clone()));
        }
    }
    // Only background processes: `worker` (else the first by name) is the app's own, a worker.
    if plan.run.is_none() && !plan.kind_static && !plan.processes.is_empty() {
        let main = plan.processes.iter().position(|(name, _)| name == "worker").unwrap_or(0);
        let (name, command) = plan.processes.remove(main);
        plan.reasons.push(format!("Procfile: no web: process, so `{name}` makes it a worker app (no traffic)"));
        plan.run = Some(command);
        plan.kind_worker = true;
    }
    if plan.run.is_none() && !plan.kind_static {
        let fix = match plan.language {
            "python" => "add a Procfile with the web command, e.g. `web: gunicorn myproject.wsgi`",
            _ => "add a Procfile with the web command, e.g. `web: ./server`",
        };
        return Err(NotDetected {
            message: format!("detected a {} project, but not how to start it", plan.language),
            next: format!("{fix}; it must listen on $PORT"),
        });
    }
    Ok(write(app, plan))
}

fn write(app: &str, plan: Plan) -> Detection {
    let mut toml = format!(
        "# Detected by tovuk ({}). Edit it and commit it as tovuk.toml to take over.\n",
        plan.reasons.iter().map(|reason| reason.split(':').next().unwrap_or("")).collect::<Vec<_>>().join(", ")
    );
    let (kind, capabilities) = match (plan.kind_static, plan.kind_worker) {
        (true, _) => ("static", "[\"http\"]"),
        (false, true) => ("worker", "[]"),
        (false, false) => ("web", "[\"http\"]"),
    };
    toml.push_str(&format!("[app]\nname = {}\nkind = \"{kind}\"\ncapabilities = {capabilities}\n", quoted(app)));
    if !plan.build.is_empty() || !plan.output.is_empty() || !plan.cache.is_empty() {
        toml.push_str("\n[build]\n");
        if !plan.build.is_empty() {
            toml.push_str(&format!("build = {}\n", quoted(&plan.build.join(" && "))));
        }
        if !plan.output.is_empty() {
            toml.push_str(&format!("output = {}\n", list(&plan.output)));
        }
        if !plan.cache.is_empty() {
            toml.push_str(&format!("cache = {}\n", list(&plan.cache)));
        }
    }
    if let Some(run) = &plan.run {
        toml.push_str(&format!("\n[run]\ncommand = {}\n", quoted(run)));
        if let Some(release) = &plan.release {
            toml.push_str(&format!("\n[release]\ncommand = {}\n", quoted(release)));
        }
        for (name, command) in &plan.processes {
            toml.push_str(&format!("\n[[processes]]\nname = {}\ncommand = {}\n", quoted(name), quoted(command)));
        }
        if !plan.kind_worker {
            toml.push_str("\n[health]\npath = \"/\"\n");
        }
    } else {
        toml.push_str("\n[static]\nroot = \".\"\n");
    }
    let tools = match plan.language {
        "python" => vec!["python3"],
        "node" => vec!["node", "npm"],
        "rust" => vec!["cargo"],
        "go" => vec!["go"],
        _ => Vec::new(),
    };
    Detection {
        language: plan.language,
        reasons: plan.reasons,
        manifest: toml,
        tools,
        requested_runtime: plan.requested_runtime,
        warnings: plan.warnings,
    }
}

fn python(root: &ProjectRoot) -> Plan {
    let mut plan = Plan { language: "python", ..Plan::default() };
    // The virtualenv is cached between builds (and ships: the app runs from it), so a build
    // after a one-line change only checks that the requirements are installed.
    plan.build.push("test -x .venv/bin/python || python3 -m venv .venv".into());
    plan.cache.push(".venv".into());
    if root.has("requirements.txt") {
        plan.build.push("pip install --disable-pip-version-check -r requirements.txt".into());
        plan.reasons.push("requirements.txt: a Python app, installed into .venv with pip".into());
    } else {
        plan.build.push("pip install --disable-pip-version-check .".into());
        plan.reasons.push("pyproject.toml: a Python app, installed into .venv with pip".into());
    }
    let requirements = [root.text("requirements.txt"), root.text("pyproject.toml")];
    let django =
        root.has("manage.py") && requirements.iter().flatten().any(|text| text.to_ascii_lowercase().contains("django"));
    if django {
        plan.build.push("python manage.py collectstatic --noinput".into());
        plan.reasons.push("manage.py: Django, so its static files are collected at build".into());
    }
    // Both files name one version on their first line (pyenv may list fallbacks after it).
    let first_line = |text: &str| asked_text(text.lines().map(str::trim).find(|line| !line.is_empty()).unwrap_or(""));
    let asked = root
        .text("runtime.txt")
        .map(|text| ("runtime.txt", first_line(text).trim_start_matches("python-").to_owned()))
        .or_else(|| root.text(".python-version").map(|text| (".python-version", first_line(text))));
    if let Some((file, version)) = asked.filter(|(_, version)| !version.is_empty()) {
        plan.warnings.push(asked_warning(file, "Python", &version, "python3"));
        plan.requested_runtime = Some(RuntimeRequest { tool: "python3", file, asked: version });
    }
    plan
}

fn node(root: &ProjectRoot) -> Result<Plan, NotDetected> {
    let invalid = |why: String| NotDetected {
        message: format!("package.json cannot be read: {why}"),
        next: "fix package.json (it must be a JSON object), or write tovuk.toml".into(),
    };
    let text = root.text("package.json").ok_or_else(|| invalid("it is not UTF-8".into()))?;
    let package: serde_json::Value = serde_json::from_str(text).map_err(|error| invalid(error.to_string()))?;
    let scripts = package.get("scripts").and_then(serde_json::Value::as_object);
    let script = |name: &str| scripts.and_then(|scripts| scripts.get(name)).and_then(serde_json::Value::as_str);
    let mut plan = Plan { language: "node", ..Plan::default() };
    if root.has("package-lock.json") {
        plan.build.push("npm ci".into());
        plan.reasons.push("package-lock.json: a Node app, installed with npm ci".into());
    } else {
        plan.build.push("npm install".into());
        plan.reasons.push("package.json: a Node app, installed with npm install (no package-lock.json)".into());
    }
    if script("build").is_some() {
        plan.build.push("npm run build".into());
        plan.reasons.push("package.json: scripts.build runs at build".into());
    }
    if script("start").is_some() {
        plan.run = Some("npm start".into());
        plan.reasons.push("package.json: scripts.start is the run command (npm start)".into());
    } else if let Some(main) = package.get("main").and_then(serde_json::Value::as_str) {
        plan.run = Some(format!("node {main}"));
        plan.reasons.push(format!("package.json: main ({main}) is run with node"));
    } else if root.has("server.js") {
        plan.run = Some("node server.js".into());
        plan.reasons.push("server.js: run with node".into());
    }
    if let Some(engine) = package.pointer("/engines/node").and_then(serde_json::Value::as_str) {
        plan.warnings.push(asked_warning("package.json", "Node.js", engine, "node"));
        plan.requested_runtime = Some(RuntimeRequest { tool: "node", file: "package.json", asked: asked_text(engine) });
    }
    Ok(plan)
}

/// A version request as messages quote it: trimmed, and short (no real one is long).
fn asked_text(asked: &str) -> String {
    asked.trim().chars().take(100).collect()
}

/// What `tovuk check` can say of a runtime request: which version runs is the server's, and
/// only the build finds out.
fn asked_warning(file: &str, language: &str, asked: &str, tool: &str) -> String {
    format!(
        "{file} asks for {language} {}; the app builds and runs with the platform's {tool}, whatever its \
         version: the build compares the two, and when they differ its log names the version that will run",
        asked.trim()
    )
}

fn rust(root: &ProjectRoot) -> Result<Plan, NotDetected> {
    let invalid = |why: String| NotDetected {
        message: format!("Cargo.toml: {why}"),
        next: "write tovuk.toml with the build command and the binary to run (`tovuk init` starts one)".into(),
    };
    let text = root.text("Cargo.toml").ok_or_else(|| invalid("it is not UTF-8".into()))?;
    let cargo: toml::Table = text.parse().map_err(|error: toml::de::Error| invalid(error.message().to_owned()))?;
    let bins: Vec<&str> = cargo
        .get("bin")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|bin| bin.get("name").and_then(toml::Value::as_str))
        .collect();
    let package = cargo.get("package").and_then(|package| package.get("name")).and_then(toml::Value::as_str);
    let binary = match (bins.as_slice(), package) {
        ([one], _) => *one,
        ([], Some(package)) => package,
        ([], None) => return Err(invalid("a workspace without a [package]: which binary is the app?".into())),
        (_, _) => return Err(invalid(format!("several binaries ({}): which one is the app?", bins.join(", ")))),
    };
    let mut plan = Plan { language: "rust", ..Plan::default() };
    let locked = if root.has("Cargo.lock") { " --locked" } else { "" };
    plan.build.push(format!("cargo build --release{locked}"));
    plan.run = Some(format!("./target/release/{binary}"));
    plan.cache.push("target".into());
    plan.output.push(format!("target/release/{binary}"));
    plan.reasons.push(format!("Cargo.toml: a Rust app, built with cargo; ./target/release/{binary} runs"));
    // Files a web app reads at run time ship beside the binary.
    for dir in ["static", "public", "assets", "templates", "migrations", "config"] {
        if root.has(dir) {
            plan.output.push(dir.to_owned());
        }
    }
    Ok(plan)
}

fn go(root: &ProjectRoot) -> Plan {
    let module = root
        .text("go.mod")
        .and_then(|text| text.lines().find_map(|line| line.trim().strip_prefix("module ")))
        .map(|module| module.trim().trim_matches('"'))
        .unwrap_or("app");
    let name = module.rsplit('/').next().filter(|name| !name.is_empty()).unwrap_or("app");
    let name: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).collect();
    let name = if name.is_empty() || name.starts_with('.') { "app".to_owned() } else { name };
    Plan {
        language: "go",
        build: vec![format!("go build -o bin/{name} .")],
        run: Some(format!("./bin/{name}")),
        reasons: vec![format!("go.mod: a Go app ({module}), built with go build; ./bin/{name} runs")],
        ..Plan::default()
    }
}

#[cfg(test)]
mod tests;
