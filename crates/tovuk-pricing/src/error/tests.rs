//! Tests of error positions and display.

use super::{PricingError, line_column};

#[test]
fn positions_are_one_based_and_count_characters() {
    let text = "a = 1\nbé = 2\n";
    assert_eq!(line_column(text, 0), (1, 1));
    assert_eq!(line_column(text, 4), (1, 5));
    assert_eq!(line_column(text, 6), (2, 1));
    // `é` is two bytes but one column.
    assert_eq!(line_column(text, 10), (2, 4));
    // Inside `é`, and past the end: clamped.
    assert_eq!(line_column(text, 8), (2, 2));
    assert_eq!(line_column(text, 1000), (3, 1));
}

#[test]
fn display_is_file_line_column_message() {
    let error = PricingError::at("server.toml", "x\ny = 1\n", 6, "bad");
    assert_eq!(error.to_string(), "server.toml:2:5: bad");
}
