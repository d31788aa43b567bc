//! Tests for `parse_env_file` and `render_template`: the accepted syntax, each error with its line, and the template round trip.

use zeroize::Zeroizing;

use crate::{EnvEntry, EnvFileError, EnvValue, TemplateEntry, parse_env_file, render_template};

fn set(value: &str) -> EnvValue {
    EnvValue::Set(Zeroizing::new(value.to_owned()))
}

/// The single entry parsed from `text`.
fn one(text: &str) -> EnvValue {
    let mut entries = parse_env_file(text).unwrap_or_else(|error| panic!("{text:?}: {error}"));
    assert_eq!(entries.len(), 1, "{text:?}");
    entries.remove(0).value
}

#[test]
fn value_syntax_table() {
    let cases: &[(&str, EnvValue)] = &[
        ("A=", EnvValue::Keep),
        ("A=   ", EnvValue::Keep),
        ("A=\t", EnvValue::Keep),
        ("A= # only a comment", EnvValue::Keep),
        ("A=\"\"", set("")),
        ("A=''", set("")),
        ("A=value", set("value")),
        ("A=  padded value\t ", set("padded value")),
        ("A = spaced", set("spaced")),
        ("A=x # comment", set("x")),
        ("A=x\t# comment", set("x")),
        ("A=x#not-a-comment", set("x#not-a-comment")),
        ("A=#hash", set("#hash")),
        ("A=it's", set("it's")),
        ("A=say \"hi\"", set("say \"hi\"")),
        ("A=a=b=c", set("a=b=c")),
        ("A=\" padded \"", set(" padded ")),
        ("A=\"x # not a comment\"", set("x # not a comment")),
        ("A=\"q\\\"q\"", set("q\"q")),
        ("A=\"b\\\\s\"", set("b\\s")),
        ("A=\"C:\\dir\\n\"", set("C:\\dir\\n")),
        ("A=\"ends in backslash\\\\\"", set("ends in backslash\\")),
        ("A=\"v\" # comment", set("v")),
        ("A=\"v\"   ", set("v")),
        ("A='lit \\\" $x'", set("lit \\\" $x")),
        ("A='v' # comment", set("v")),
        ("A=  \"quoted after spaces\"", set("quoted after spaces")),
        ("export A=exported", set("exported")),
        ("export\tA=tabbed", set("tabbed")),
        ("  A=indented", set("indented")),
        ("A=ünï 🔑", set("ünï 🔑")),
    ];
    for (text, expected) in cases {
        assert_eq!(&one(text), expected, "{text:?}");
    }
}

#[test]
fn a_variable_may_be_called_export() {
    let entries = parse_env_file("export=1\n").expect("parse");
    assert_eq!(entries[0].name, "export");
}

#[test]
fn whole_file_with_comments_blanks_crlf_and_bom() {
    let text = "\u{feff}# header\r\n\r\n   # indented comment\r\nexport DATABASE_URL=postgres://db\r\nKEEP_ME=\r\nEMPTY=\"\"\r\n\tSPACED = 'x y' \r\n";
    let entries = parse_env_file(text).expect("parse");
    assert_eq!(
        entries,
        vec![
            EnvEntry { line: 4, name: "DATABASE_URL".to_owned(), value: set("postgres://db") },
            EnvEntry { line: 5, name: "KEEP_ME".to_owned(), value: EnvValue::Keep },
            EnvEntry { line: 6, name: "EMPTY".to_owned(), value: set("") },
            EnvEntry { line: 7, name: "SPACED".to_owned(), value: set("x y") },
        ]
    );
    assert_eq!(parse_env_file("").expect("parse"), vec![]);
    assert_eq!(parse_env_file("\u{feff}").expect("parse"), vec![]);
    assert_eq!(parse_env_file("A=1").expect("parse").len(), 1, "no final newline");
}

fn error(text: &str) -> EnvFileError {
    parse_env_file(text).expect_err(text)
}

#[test]
fn errors_name_their_line_and_the_fix() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "# c\n\nJUST_A_WORD\n",
            3,
            "expected NAME=VALUE, found `JUST_A_WORD`; write one variable per line as NAME=VALUE, or start a comment with `#`",
        ),
        ("A=1\nB=\"open\n", 2, "the value opened with \" on this line is never closed; values are one line"),
        ("A='open", 1, "the value opened with ' on this line is never closed; values are one line"),
        (
            "A=\"v\" trailing",
            1,
            "there is text after the closing quote; put the whole value inside the quotes, or start a comment with `#`",
        ),
        ("A='v'x", 1, "there is text after the closing quote"),
        ("\n\nMY-VAR=1", 3, "`MY-VAR` is not a valid environment variable name: `-` is not allowed"),
        ("=value", 1, "the environment variable name is empty"),
        ("1A=x", 1, "starts with a digit"),
        ("A=1\nPORT=8080", 2, "`PORT` is set by the platform"),
        ("TOVUK_TOKEN=x", 1, "reserved for variables the platform sets"),
        ("export PATH=/bin", 1, "`PATH` is set by the sandbox"),
        ("A=1\nB=2\r\nA=3", 3, "`A` is also set on line 1; keep one"),
        ("A=\nA=", 2, "`A` is also set on line 1; keep one"),
        ("A=a\rb", 1, "the value of `A` spans several lines"),
        ("A=a\0b", 1, "the value of `A` contains a NUL byte"),
        ("B=1\nA=\"a\rb\"", 2, "the value of `A` spans several lines"),
    ];
    for (text, line, message) in cases {
        let found = error(text);
        assert_eq!(found.line, *line, "{text:?}: {found}");
        assert!(found.message.contains(message), "{text:?}: {found}");
        assert_eq!(found.to_string(), format!("line {line}: {}", found.message));
    }
}

#[test]
fn first_error_only() {
    let found = error("A=1\nBAD LINE\nPORT=1\n");
    assert_eq!(found.line, 2);
}

#[test]
fn a_line_without_equals_is_shown_cut_to_40_chars() {
    let found = error(&"W".repeat(100));
    assert!(found.message.contains(&format!("`{}…`", "W".repeat(40))), "{found}");
    assert!(!found.message.contains(&"W".repeat(41)), "{found}");
}

#[test]
fn errors_never_hold_the_value() {
    const CANARY: &str = "canary-s3cr3t";
    let texts = [
        format!("A=\"{CANARY}"),
        format!("A='{CANARY}"),
        format!("A=\"{CANARY}\" {CANARY}"),
        format!("PORT={CANARY}"),
        format!("MY-VAR={CANARY}"),
        format!("A={CANARY}\rmore"),
        format!("A={CANARY}\0"),
        format!("A={CANARY}{}", "x".repeat(70_000)),
        format!("A={CANARY}\nA={CANARY}"),
    ];
    for text in &texts {
        let found = error(text);
        assert!(!found.to_string().contains(CANARY), "{found}");
        assert!(!format!("{found:?}").contains(CANARY), "{found:?}");
    }
    let entries = parse_env_file(&format!("A={CANARY}")).expect("parse");
    assert!(!format!("{entries:?}").contains(CANARY), "Debug of a value must not show it");
}

#[test]
fn template_round_trips_to_all_keep() {
    let entries = vec![
        TemplateEntry { name: "DATABASE_URL".to_owned(), comment: "Postgres connection string".to_owned() },
        TemplateEntry { name: "API_KEY".to_owned(), comment: "set 2026-01-02\n\nrotated yearly".to_owned() },
        TemplateEntry { name: "NO_COMMENT".to_owned(), comment: String::new() },
    ];
    let template = render_template("shop", &entries);
    assert!(template.contains("tovuk config apply shop --file shop.env"), "{template}");
    assert!(template.contains("(NAME=) keeps what is set"), "{template}");
    assert!(template.contains("NAME=\"\" sets an empty string"), "{template}");
    assert!(template.contains("\n\n# Postgres connection string\nDATABASE_URL=\n"), "{template}");
    assert!(template.contains("\n\n# set 2026-01-02\n#\n# rotated yearly\nAPI_KEY=\n"), "{template}");
    assert!(template.ends_with("\n\nNO_COMMENT=\n"), "{template}");

    let parsed = parse_env_file(&template).expect("template parses");
    let names: Vec<&str> = parsed.iter().map(|entry| entry.name.as_str()).collect();
    assert_eq!(names, ["DATABASE_URL", "API_KEY", "NO_COMMENT"], "order as given");
    assert!(parsed.iter().all(|entry| entry.value == EnvValue::Keep));
}

#[test]
fn empty_template_parses_to_nothing() {
    assert_eq!(parse_env_file(&render_template("shop", &[])).expect("parse"), vec![]);
}
