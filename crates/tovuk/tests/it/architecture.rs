//! The dependency rules of ARCHITECTURE.md, checked against every crate's `Cargo.toml`:
//! the codemap lists exactly Cargo's edges, and no edge breaks a rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Edges = BTreeMap<String, BTreeSet<String>>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Each workspace crate and the tovuk crates it depends on (`[dependencies]` only: tests
/// may use more).
fn cargo_edges() -> Edges {
    let mut edges = Edges::new();
    for entry in std::fs::read_dir(root().join("crates")).expect("crates dir") {
        let manifest = entry.expect("entry").path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else { continue };
        let parsed: toml::Table =
            toml::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", manifest.display()));
        let name = parsed["package"]["name"].as_str().expect("package name").to_owned();
        let deps = parsed.get("dependencies").and_then(toml::Value::as_table).cloned().unwrap_or_default();
        let ours = deps.keys().filter(|dep| is_crate_name(dep)).cloned().collect();
        edges.insert(name, ours);
    }
    assert!(edges.len() >= 15, "{edges:?}");
    edges
}

fn is_crate_name(word: &str) -> bool {
    word == "tovuk"
        || word.strip_prefix("tovuk-").is_some_and(|rest| rest.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
}

/// The edges ARCHITECTURE.md's codemap block draws: `a, b ─► c, d ─► e; f ─► g`, with
/// `(...)` remarks ignored. A line without an arrow names crates with no edges.
fn codemap_edges(text: &str) -> Edges {
    let start = text.find("## Codemap").expect("a Codemap section");
    let block = &text[start..];
    let open = block.find("```\n").expect("a code block") + 4;
    let close = open + block[open..].find("```").expect("the block's end");
    let mut edges = Edges::new();
    for line in block[open..close].lines() {
        let mut depth = 0usize;
        let line: String = line
            .chars()
            .filter(|ch| {
                match ch {
                    '(' => depth += 1,
                    ')' => depth = depth.saturating_sub(1),
                    _ => return depth == 0,
                }
                false
            })
            .collect();
        for clause in line.split(';') {
            let segments: Vec<Vec<String>> = clause
                .split('─')
                .map(|segment| {
                    segment
                        .trim_start_matches('►')
                        .split(',')
                        .map(str::trim)
                        .filter(|word| is_crate_name(word))
                        .map(str::to_owned)
                        .collect()
                })
                .collect();
            for crate_name in segments.iter().flatten() {
                edges.entry(crate_name.clone()).or_default();
            }
            for pair in segments.windows(2) {
                for from in &pair[0] {
                    edges.entry(from.clone()).or_default().extend(pair[1].iter().cloned());
                }
            }
        }
    }
    edges
}

fn architecture() -> String {
    std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md")
}

#[test]
fn the_codemap_draws_exactly_cargos_edges() {
    let cargo = cargo_edges();
    let drawn = codemap_edges(&architecture());
    let mut problems = Vec::new();
    for name in cargo.keys().chain(drawn.keys()).collect::<BTreeSet<_>>() {
        let real = cargo.get(name).cloned().unwrap_or_default();
        let shown = drawn.get(name).cloned().unwrap_or_default();
        if !cargo.contains_key(name) {
            problems.push(format!("the codemap names `{name}`, which is not a crate"));
        }
        if !drawn.contains_key(name) {
            problems.push(format!("the codemap does not name `{name}`"));
        }
        for missing in real.difference(&shown) {
            problems.push(format!("`{name}` depends on `{missing}`; the codemap does not draw it"));
        }
        for extra in shown.difference(&real) {
            problems.push(format!("the codemap draws `{name}` ─► `{extra}`, which Cargo.toml does not have"));
        }
    }
    assert!(problems.is_empty(), "ARCHITECTURE.md's codemap and Cargo disagree:\n{}", problems.join("\n"));
}

/// Every crate `name` reaches through its dependencies.
fn reachable(edges: &Edges, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&str> = edges.get(name).into_iter().flatten().map(String::as_str).collect();
    while let Some(next) = stack.pop() {
        if seen.insert(next.to_owned()) {
            stack.extend(edges.get(next).into_iter().flatten().map(String::as_str));
        }
    }
    seen
}

/// The rules as `(rule, broken edges)`, so a failure names the rule it breaks.
fn broken_rules(edges: &Edges) -> Vec<String> {
    let server_crates = [
        "tovuk-store",
        "tovuk-control",
        "tovuk-server",
        "tovuk-builder",
        "tovuk-runner",
        "tovuk-router",
        "tovuk-git",
        "tovuk-sandbox",
        "tovuk-daemon",
        "tovuk-meter",
        "tovuk-artifact",
    ];
    let mut broken = Vec::new();
    for (name, deps) in edges {
        if deps.contains("tovuk-store") && name != "tovuk-control" {
            broken.push(format!(
                "only tovuk-control opens the store (the other roles reach state through the API): {name} ─► tovuk-store"
            ));
        }
        let allowed: &[&str] = match name.as_str() {
            "tovuk-types" => &[],
            "tovuk-manifest" => &["tovuk-types"],
            _ => continue,
        };
        for dep in deps.iter().filter(|dep| !allowed.contains(&dep.as_str())) {
            broken.push(format!("{name} is pure and depends on no other tovuk crate: {name} ─► {dep}"));
        }
    }
    for dep in reachable(edges, "tovuk-cli").iter().filter(|dep| server_crates.contains(&dep.as_str())) {
        broken.push(format!("the CLI depends on no server crate: tovuk-cli reaches {dep}"));
    }
    for role in ["tovuk-builder", "tovuk-runner", "tovuk-router"] {
        for dep in reachable(edges, role).iter().filter(|dep| matches!(dep.as_str(), "tovuk-store" | "tovuk-control")) {
            broken.push(format!("{role} reaches state only through the API: it reaches {dep}"));
        }
    }
    for name in edges.keys() {
        if reachable(edges, name).contains(name) {
            broken.push(format!("no dependency cycles: {name} depends on itself through its dependencies"));
        }
    }
    broken
}

#[test]
fn no_dependency_breaks_a_rule_of_the_architecture() {
    let broken = broken_rules(&cargo_edges());
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn each_rule_catches_the_edge_it_forbids() {
    let cargo = cargo_edges();
    for (from, to, rule) in [
        ("tovuk-server", "tovuk-store", "only tovuk-control opens the store"),
        ("tovuk-manifest", "tovuk-secrets", "is pure"),
        ("tovuk-client", "tovuk-control", "the CLI depends on no server crate"),
        ("tovuk-router", "tovuk-control", "reaches state only through the API"),
        ("tovuk-types", "tovuk-cli", "no dependency cycles"),
    ] {
        let mut edges = cargo.clone();
        edges.entry(from.to_owned()).or_default().insert(to.to_owned());
        let broken = broken_rules(&edges);
        assert!(broken.iter().any(|line| line.contains(rule)), "{from} ─► {to} should break `{rule}`: {broken:?}");
    }
    // The codemap parser reads chains, lists, remarks and clauses.
    let drawn = codemap_edges(
        "## Codemap\n```\na-x\ntovuk-a, tovuk-b ─► tovuk-c ─► tovuk-d (remark, tovuk-e);  tovuk-f ─► tovuk-g\n```\n",
    );
    let pairs: Vec<(String, String)> =
        drawn.iter().flat_map(|(from, to)| to.iter().map(|to| (from.clone(), to.clone()))).collect();
    let expected = [("tovuk-a", "tovuk-c"), ("tovuk-b", "tovuk-c"), ("tovuk-c", "tovuk-d"), ("tovuk-f", "tovuk-g")];
    assert_eq!(pairs, expected.map(|(from, to)| (from.to_owned(), to.to_owned())));
}

#[test]
fn the_documented_data_directory_is_the_layout_the_code_uses() {
    let text = architecture();
    let start = text.find("## Data directory").expect("a Data directory section");
    let block = &text[start..];
    let open = block.find("```\n").expect("a code block") + 4;
    let close = open + block[open..].find("```").expect("the block's end");
    let documented: BTreeSet<String> =
        block[open..close].lines().filter_map(|line| line.split_whitespace().next()).map(str::to_owned).collect();

    let layout = tovuk_types::DataLayout::new("<data>");
    let path = |path: PathBuf| path.display().to_string();
    let dir = |path: PathBuf| format!("{}/", path.display());
    let keys = layout.keys_dir();
    let used: BTreeSet<String> = [
        path(layout.state_file()),
        path(layout.admin_token_file()),
        path(layout.server_file()),
        path(layout.listeners_socket()),
        path(layout.repo("<app>")),
        dir(layout.hooks_dir()),
        path(keys.join(tovuk_artifact::KEY_FILE_NAME)),
        path(keys.join(tovuk_secrets::MASTER_KEY_FILE)),
        path(layout.node_secret_file()),
        dir(layout.work_dir()),
        dir(layout.cache_dir("<app>", "")).trim_end_matches('/').to_owned() + "/",
        format!("{}/<sha256>.*", layout.artifacts_dir().display()),
        dir(layout.release_dir("<app>", "<deploy>")),
        dir(layout.instance_dir("<deploy>", 0)),
        dir(layout.volume_dir("<app>")),
        path(layout.volume_image("<app>")),
        path(layout.kv_file()),
        path(layout.queues_file()),
        path(layout.state_objects_file()),
        path(layout.sessions_file()),
        dir(layout.objects_dir()),
        dir(layout.snapshots_dir("<resource>")),
    ]
    .into_iter()
    .collect();
    assert_eq!(documented, used, "ARCHITECTURE.md's data directory and DataLayout differ");
}
