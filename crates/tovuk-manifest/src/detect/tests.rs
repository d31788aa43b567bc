//! Detection from a project's own files: each language, the Procfile, and what is refused.

use crate::{ProjectRoot, check_detected, detect};

fn root(files: &[(&str, &str)]) -> ProjectRoot {
    ProjectRoot {
        names: files.iter().map(|(name, _)| (*name).to_owned()).collect(),
        files: files.iter().map(|(name, text)| ((*name).to_owned(), text.as_bytes().to_vec())).collect(),
    }
}

/// Detects and checks, asserting the detected contract passes the check.
fn detected(files: &[(&str, &str)]) -> crate::Manifest {
    let (manifest, report) = check_detected("shop", &root(files));
    assert!(report.ok(), "{}", crate::render_human(&report));
    manifest.expect("a manifest")
}

#[test]
fn a_python_app_runs_its_procfile_web_command_from_a_venv() {
    let manifest =
        detected(&[("Procfile", "web: gunicorn shop.wsgi --log-file -\n"), ("requirements.txt", "gunicorn\n")]);
    assert_eq!(manifest.name(), "shop");
    assert_eq!(manifest.run_command(), Some("gunicorn shop.wsgi --log-file -"));
    assert_eq!(
        manifest.build().build.as_deref(),
        Some(
            "test -x .venv/bin/python || python3 -m venv .venv && pip install --disable-pip-version-check -r requirements.txt"
        )
    );
    assert_eq!(manifest.health().map(|health| health.path.as_str()), Some("/"));
}

#[test]
fn django_collects_static_files_and_a_runtime_version_is_a_warning() {
    let files = [
        ("Procfile", "web: gunicorn shop.wsgi\nrelease: python manage.py migrate\nworker: celery -A shop worker\n"),
        ("requirements.txt", "Django>=5\ngunicorn\n"),
        ("manage.py", ""),
        ("runtime.txt", "python-3.9.1\n"),
    ];
    let (manifest, report) = check_detected("shop", &root(&files));
    let manifest = manifest.expect("manifest");
    assert_eq!(manifest.release().map(|release| release.command.as_str()), Some("python manage.py migrate"));
    let build = manifest.build().build.clone().expect("build");
    assert!(
        build.starts_with("test -x .venv/bin/python") && build.ends_with("python manage.py collectstatic --noinput"),
        "{build}"
    );
    let warnings: Vec<&str> = report.warnings().iter().map(|warning| warning.message.as_str()).collect();
    // Which version runs is the server's: the check says the build compares them.
    assert!(warnings.iter().any(|w| w.starts_with("runtime.txt asks for Python 3.9.1;")), "{warnings:?}");
    let workers: Vec<(&str, &str, u32)> = manifest
        .processes()
        .iter()
        .map(|process| (process.name.as_str(), process.command.as_str(), process.instances))
        .collect();
    assert_eq!(workers, [("worker", "celery -A shop worker", 1)], "the Procfile's worker: runs next to the web");
    assert!(!warnings.iter().any(|w| w.contains("release")), "{warnings:?}");
    let detection = report.detected().expect("detected");
    assert_eq!(detection.language, "python");
    let asked = crate::RuntimeRequest { tool: "python3", file: "runtime.txt", asked: "3.9.1".into() };
    assert_eq!(detection.requested_runtime, Some(asked));
    assert!(detection.reasons.iter().any(|reason| reason.starts_with("Procfile: web:")), "{:?}", detection.reasons);
    let rendered = crate::render_human(&report);
    assert!(rendered.starts_with("no tovuk.toml: detected a python app\n"), "{rendered}");
}

#[test]
fn a_node_app_installs_from_its_lock_file_builds_and_starts_with_npm() {
    let package =
        r#"{"name": "shop", "scripts": {"build": "tsc", "start": "node dist/index.js"}, "engines": {"node": ">=18"}}"#;
    let manifest = detected(&[("package.json", package), ("package-lock.json", "")]);
    assert_eq!(manifest.build().build.as_deref(), Some("npm ci && npm run build"));
    let (_, report) = check_detected("shop", &root(&[("package.json", package)]));
    let asked = report.detected().and_then(|detected| detected.requested_runtime.clone());
    assert_eq!(asked, Some(crate::RuntimeRequest { tool: "node", file: "package.json", asked: ">=18".into() }));
    assert_eq!(manifest.run_command(), Some("npm start"));
    let manifest = detected(&[("package.json", r#"{"main": "app.js"}"#)]);
    assert_eq!(manifest.build().build.as_deref(), Some("npm install"));
    assert_eq!(manifest.run_command(), Some("node app.js"));
    // The Procfile wins over package.json.
    let manifest = detected(&[("package.json", package), ("Procfile", "web: node server.js")]);
    assert_eq!(manifest.run_command(), Some("node server.js"));
}

#[test]
fn a_rust_app_builds_in_release_caches_target_and_ships_the_binary_and_its_files() {
    let cargo = "[package]\nname = \"shop-api\"\nversion = \"0.1.0\"\n";
    let manifest = detected(&[("Cargo.toml", cargo), ("Cargo.lock", ""), ("static", ""), ("src", "")]);
    assert_eq!(manifest.build().build.as_deref(), Some("cargo build --release --locked"));
    assert_eq!(manifest.run_command(), Some("./target/release/shop-api"));
    assert_eq!(manifest.build().output, ["target/release/shop-api", "static"]);
    assert_eq!(manifest.build().cache, ["target"]);
    let named = "[package]\nname = \"x\"\n[[bin]]\nname = \"server\"\npath = \"src/main.rs\"\n";
    assert_eq!(detected(&[("Cargo.toml", named)]).run_command(), Some("./target/release/server"));
}

#[test]
fn go_static_and_procfile_only_projects_are_detected() {
    let manifest = detected(&[("go.mod", "module github.com/acme/shop-api\n\ngo 1.22\n")]);
    assert_eq!(manifest.build().build.as_deref(), Some("go build -o bin/shop-api ."));
    assert_eq!(manifest.run_command(), Some("./bin/shop-api"));
    let manifest = detected(&[("index.html", "<h1>hi</h1>")]);
    assert_eq!(manifest.kind(), crate::AppKind::Static);
    let manifest = detected(&[("Procfile", "web: ./server --port $PORT")]);
    assert_eq!(manifest.run_command(), Some("./server --port $PORT"));
    assert_eq!(manifest.build().build, None);
}

#[test]
fn what_cannot_be_detected_says_what_to_add() {
    for (files, expected) in [
        (vec![("README.md", "hi")], "nothing to detect"),
        (vec![("requirements.txt", "flask")], "not how to start it"),
        (vec![("package.json", "{not json")], "package.json cannot be read"),
        (vec![("Cargo.toml", "[workspace]\nmembers = [\"a\"]\n")], "which binary"),
        (
            vec![("Cargo.toml", "[package]\nname = \"a\"\n[[bin]]\nname = \"x\"\n[[bin]]\nname = \"y\"\n")],
            "several binaries",
        ),
    ] {
        let (manifest, report) = check_detected("shop", &root(&files));
        assert!(manifest.is_none());
        let error = &report.errors()[0];
        assert!(error.message.contains(expected), "{}", error.message);
        assert!(error.next.as_deref().is_some_and(|next| !next.is_empty()));
        assert_eq!(error.code, crate::Code::ManifestMissing);
    }
    // A Procfile line with quotes and backslashes survives into TOML.
    let procfile = r#"web: sh -c "echo \"hi\" && exec ./server""#;
    let detection = detect("shop", &root(&[("Procfile", procfile)])).expect("detected");
    assert!(
        detection.manifest.contains(r#"command = "sh -c \"echo \\\"hi\\\" && exec ./server\"""#),
        "{}",
        detection.manifest
    );
}

#[test]
fn a_procfile_with_only_background_processes_is_a_worker_app() {
    let files = [("Procfile", "worker: python work.py\nclock: python clock.py\n"), ("requirements.txt", "")];
    let (manifest, report) = check_detected("jobs", &root(&files));
    let manifest = manifest.unwrap_or_else(|| panic!("{report:?}"));
    assert_eq!(manifest.kind(), crate::AppKind::Worker);
    assert_eq!(manifest.run_command(), Some("python work.py"));
    assert_eq!(manifest.health(), None);
    let names: Vec<&str> = manifest.processes().iter().map(|process| process.name.as_str()).collect();
    assert_eq!(names, ["clock"]);
    // A process type whose name cannot be a process name is named, not run.
    let files = [("Procfile", "web: ./server\nWeird Name: ./x\n")];
    let (manifest, report) = check_detected("jobs", &root(&files));
    assert!(manifest.is_some_and(|manifest| manifest.processes().is_empty()));
    let warnings: Vec<&str> = report.warnings().iter().map(|warning| warning.message.as_str()).collect();
    assert!(warnings.iter().any(|w| w.contains("Weird Name")), "{warnings:?}");
}
