//! Tests for offset-to-position mapping.

use super::{LineIndex, Position, position_of_byte};

fn pos(text: &str, offset: usize) -> (u32, u32) {
    let Position { line, column } = LineIndex::new(text).position(offset);
    (line, column)
}

#[test]
fn first_byte_is_line_one_column_one() {
    assert_eq!(pos("abc", 0), (1, 1));
    assert_eq!(pos("", 0), (1, 1));
}

#[test]
fn offsets_after_newlines_start_new_lines() {
    let text = "a = 1\nbb = 2\n\nc";
    assert_eq!(pos(text, 5), (1, 6));
    assert_eq!(pos(text, 6), (2, 1));
    assert_eq!(pos(text, 9), (2, 4));
    assert_eq!(pos(text, 13), (3, 1));
    assert_eq!(pos(text, 14), (4, 1));
}

#[test]
fn columns_count_characters_not_bytes() {
    // "é" is two bytes; the `=` after it is the third character.
    assert_eq!(pos("é = 1", 3), (1, 3));
}

#[test]
fn out_of_range_offsets_are_clamped() {
    assert_eq!(pos("ab\ncd", 99), (2, 3));
    // Offset 1 is inside the two-byte "é"; it clamps back to its start.
    assert_eq!(pos("é", 1), (1, 1));
}

#[test]
fn crlf_lines_are_trimmed_in_line_text() {
    let index = LineIndex::new("a = 1\r\nb = 2\r\n");
    assert_eq!(index.line_text(1), "a = 1");
    assert_eq!(index.line_text(2), "b = 2");
    assert_eq!(index.line_text(3), "");
    assert_eq!(index.line_text(9), "");
}

#[test]
fn width_covers_the_first_line_of_a_span_and_is_never_zero() {
    let index = LineIndex::new("key = \"héllo\"\nnext");
    assert_eq!(index.width_on_first_line(&(6..14)), 7);
    assert_eq!(index.width_on_first_line(&(3..3)), 1);
    assert_eq!(index.width_on_first_line(&(0..20)), 13);
}

#[test]
fn bad_byte_position_counts_lines_and_characters_before_it() {
    let bytes = [b"[app]\nname = \"".as_slice(), &[0xff], b"\"\n"].concat();
    let Err(error) = std::str::from_utf8(&bytes) else {
        panic!("test input must be invalid UTF-8");
    };
    assert_eq!(position_of_byte(&bytes, error.valid_up_to()), Position { line: 2, column: 9 });
}
