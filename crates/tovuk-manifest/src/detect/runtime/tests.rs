//! Which versions a runtime request accepts, and the version read from `--version` output.

use super::{RuntimeRequest, printed_version};

fn python(asked: &str) -> RuntimeRequest {
    RuntimeRequest { tool: "python3", file: "runtime.txt", asked: asked.to_owned() }
}

fn node(asked: &str) -> RuntimeRequest {
    RuntimeRequest { tool: "node", file: "package.json", asked: asked.to_owned() }
}

#[test]
fn the_version_is_read_from_what_the_tool_prints() {
    assert_eq!(printed_version("Python 3.12.1\n"), Some("3.12.1"));
    assert_eq!(printed_version("v20.11.1\n"), Some("20.11.1"));
    assert_eq!(printed_version("\nPython 3.13.0rc1"), Some("3.13.0rc1"));
    assert_eq!(printed_version("command not found"), None);
    assert_eq!(printed_version(""), None);
}

#[test]
fn a_python_request_accepts_the_versions_it_is_a_prefix_of() {
    for (asked, version, accepted) in [
        ("3.11", "3.11.4", true),
        ("3.11", "3.11.0", true),
        ("3.11.4", "3.11.4", true),
        ("python-3.11.4", "3.11.4", true),
        ("3", "3.12.1", true),
        ("3.11.x", "3.11.9", true),
        ("3.11\n3.10\n", "3.11.2", true),
        ("system", "3.12.1", true),
        ("3.11", "3.12.1", false),
        ("3.11", "3.1.1", false),
        ("3.1", "3.11.1", false),
        ("3.11.4", "3.11.5", false),
        ("3.11.4", "3.11", false),
        ("2.7.18", "3.12.1", false),
        ("3.13", "3.13.0rc1", true),
        ("pypy3.10", "3.10.12", false),
        ("", "3.12.1", false),
        ("x", "3.12.1", false),
    ] {
        assert_eq!(python(asked).accepts(version), accepted, "{asked:?} of {version}");
    }
}

#[test]
fn a_node_request_is_an_npm_range() {
    for (asked, version, accepted) in [
        (">=18", "20.11.1", true),
        (">=18", "16.20.2", false),
        (">= 18", "18.0.0", true),
        ("18.x", "18.19.1", true),
        ("18.x", "20.11.1", false),
        ("18.X.x", "18.1.0", true),
        ("^20.1", "20.11.1", true),
        ("^20.1", "20.0.5", false),
        ("^20.1", "21.0.0", false),
        ("~18.19", "18.19.9", true),
        ("~18.19", "18.20.0", false),
        ("18", "18.19.1", true),
        ("18", "19.0.0", false),
        ("18.19.1", "18.19.1", true),
        ("18.19.1", "18.19.2", false),
        ("v20", "20.11.1", true),
        (">=18 <21", "20.11.1", true),
        (">=18 <21", "21.1.0", false),
        (">=18.0.0 <=20", "20.99.0", true),
        ("16 || 18 || 20", "20.11.1", true),
        ("16 || 18", "20.11.1", false),
        ("18 - 20", "20.5.0", true),
        ("18 - 20", "21.0.0", false),
        ("*", "22.0.0", true),
        ("", "22.0.0", true),
        (">18", "18.5.0", false),
        (">18", "19.0.0", true),
        ("lts/*", "20.11.1", false),
        (">=", "20.11.1", false),
        (">=18", "garbage", false),
    ] {
        assert_eq!(node(asked).accepts(version), accepted, "{asked:?} of {version}");
    }
}
