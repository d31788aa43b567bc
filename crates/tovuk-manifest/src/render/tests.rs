//! Tests for the human rendering of reports.

use crate::{check_bytes, missing_manifest_report, render_human};

fn render(text: &str) -> String {
    let (_, report) = check_bytes("tovuk.toml", text.as_bytes());
    render_human(&report)
}

#[test]
fn errors_show_the_line_a_caret_and_the_fix() {
    let text = "[app]\nname = \"my-api\"\nkind = \"webb\"\ncapabilities = [\"http\"]\n";
    assert_eq!(
        render(text),
        "\
error[invalid_value]: unknown kind `webb` in [app]; did you mean `web`?
 --> tovuk.toml:3:8
  |
3 | kind = \"webb\"
  |        ^^^^^^
  = next: kind = \"web\"

capabilities: http
error: check failed with 1 error
"
    );
}

#[test]
fn the_gutter_grows_with_the_line_number_and_tabs_keep_alignment() {
    let mut text = String::from("[app]\nname = \"a\"\nkind = \"worker\"\n[run]\ncommand = \"./w\"\n");
    text.push_str(&"\n".repeat(5));
    text.push_str("[health]\n\tpath = \"h\"\n");
    assert_eq!(
        render(&text),
        "\
error[invalid_value]: health path `h` must start with `/`
  --> tovuk.toml:12:9
   |
12 | \tpath = \"h\"
   | \t       ^^^
   = next: path = \"/h\"

error: check failed with 1 error
"
    );
}

#[test]
fn multi_line_fixes_are_indented_and_whole_file_findings_have_no_snippet() {
    let rendered = render_human(&missing_manifest_report("tovuk.toml"));
    assert!(rendered.starts_with(
        "error[manifest_missing]: `tovuk.toml` not found; every project needs one at its root\n --> tovuk.toml\n  = next: create tovuk.toml"
    ), "{rendered}");
    assert!(rendered.contains("\n          [app]\n          name = \"my-app\"\n"), "{rendered}");
    // Blank lines inside a fix stay blank, without trailing spaces.
    assert!(!rendered.lines().any(|line| line.ends_with(' ')), "{rendered}");
    assert!(rendered.ends_with("error: check failed with 1 error\n"), "{rendered}");
}

#[test]
fn passing_reports_say_so_and_count_warnings() {
    let clean = "[app]\nname = \"a\"\nkind = \"static\"\ncapabilities = [\"http\"]\n";
    assert_eq!(render(clean), "capabilities: http\ncheck passed\n");
    let warned = "[app]\nname = \"a\"\nkind = \"worker\"\n[run]\ncommand = \"./w\"\n";
    assert!(render(warned).ends_with("\ncheck passed with 1 warning\n"), "{}", render(warned));
}

#[test]
fn output_has_no_ansi_escapes() {
    let text = "[app]\nnmae = 1\n";
    assert!(!render(text).contains('\u{1b}'));
}
