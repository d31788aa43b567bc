//! Tests of the default table and of every `PriceTable::parse` error, with its position.

use crate::table::BUILT_IN_PRICES;
use crate::{DEFAULT_PRICING, Meter, PriceTable, PricingError};

/// A complete `[pricing]` table (every meter at 1) with `extra` lines
/// appended inside it, starting on line `3 + Meter::ALL.len()`.
fn complete_table(extra: &str) -> String {
    let mut text = String::from("# operator config\n[pricing]\n");
    for meter in Meter::ALL {
        text.push_str(&format!("{meter} = 1\n"));
    }
    text.push_str(extra);
    text
}

/// The first line after `complete_table`'s meters.
const EXTRA_LINE: usize = 3 + Meter::ALL.len();

#[track_caller]
fn error(text: &str) -> PricingError {
    match PriceTable::parse(text, "server.toml") {
        Ok(table) => panic!("expected an error, parsed {table:?}"),
        Err(error) => error,
    }
}

#[track_caller]
fn assert_error(text: &str, line: usize, column: usize, message: &str) {
    let error = error(text);
    assert_eq!((error.line, error.column), (line, column), "{error}");
    assert_eq!(error.message, message, "{error}");
    assert_eq!(error.file, "server.toml");
}

#[test]
fn default_table_parses_and_prices_every_meter() {
    let parsed = match PriceTable::parse(DEFAULT_PRICING, "default_pricing.toml") {
        Ok(table) => table,
        Err(error) => panic!("DEFAULT_PRICING must parse: {error}"),
    };
    assert_eq!(parsed.currency(), "USD");
    assert_eq!(parsed.period(), "month");
    let metered: Vec<Meter> = parsed.iter().map(|(meter, _)| meter).collect();
    assert_eq!(metered, Meter::ALL, "every meter, in canonical order");
    for (meter, price) in parsed.iter() {
        assert!(price > 0.0 && price < 1.0, "{meter} = {price}");
    }
    // The code copy used if the file ever broke says the same.
    for (meter, price) in BUILT_IN_PRICES {
        assert_eq!(parsed.price(meter), price, "{meter}");
    }
    assert_eq!(PriceTable::default_table(), parsed);
    assert_eq!(PriceTable::default(), parsed);
    assert_eq!(parsed.price(Meter::EgressBytes) * 1e9, 0.02);
}

#[test]
fn without_pricing_the_default_table_applies() {
    let default = PriceTable::default_table();
    for text in ["", "# nothing configured yet\n", "\u{feff}"] {
        assert_eq!(PriceTable::parse(text, "server.toml"), Ok(default.clone()), "{text:?}");
    }
}

#[test]
fn an_operator_table_replaces_every_price() {
    let text = complete_table("currency = \"EUR\"\n")
        .replace("cpu_ms = 1", "cpu_ms = 0.5")
        .replace("kv_writes = 1", "kv_writes = 0");
    let table = match PriceTable::parse(&text, "server.toml") {
        Ok(table) => table,
        Err(error) => panic!("{error}"),
    };
    assert_eq!(table.currency(), "EUR");
    assert_eq!(table.period(), "month");
    assert_eq!(table.price(Meter::CpuMs), 0.5);
    assert_eq!(table.price(Meter::KvWrites), 0.0);
    assert_eq!(table.price(Meter::Requests), 1.0);
    // Underscores, exponents and -0 are all plain numbers.
    let text = complete_table("")
        .replace("requests = 1", "requests = 3e-7")
        .replace("build_minutes = 1", "build_minutes = 1_000");
    let text = text.replace("state_reads = 1", "state_reads = -0.0");
    let table = match PriceTable::parse(&text, "server.toml") {
        Ok(table) => table,
        Err(error) => panic!("{error}"),
    };
    assert_eq!(table.price(Meter::Requests), 3e-7);
    assert_eq!(table.price(Meter::BuildMinutes), 1000.0);
    assert!(table.price(Meter::StateReads).is_sign_positive());
}

#[test]
fn toml_syntax_errors_carry_their_position() {
    let syntax = error("[pricing]\nrequests = = 1\n");
    assert_eq!(syntax.line, 2);
    assert!(syntax.message.starts_with("invalid TOML: "), "{syntax}");
    assert!(syntax.to_string().starts_with("server.toml:2:"), "{syntax}");
    // A key given twice is a TOML error, at the second one.
    let duplicate = error("[pricing]\nrequests = 1\nrequests = 2\n");
    assert_eq!(duplicate.line, 3, "{duplicate}");
}

#[test]
fn a_price_that_is_not_a_number() {
    let text = complete_table("").replace("requests = 1", "requests = \"0.30\"");
    assert_error(
        &text,
        3,
        12,
        "price of `requests` must be a number (a unit price in USD per request), found a string",
    );
    let text = complete_table("currency = \"EUR\"\n").replace("cpu_ms = 1", "cpu_ms = true");
    assert_error(&text, 5, 10, "price of `cpu_ms` must be a number (a unit price in EUR per ms), found a boolean");
}

#[test]
fn negative_and_non_finite_prices() {
    let text = complete_table("").replace("cpu_ms = 1", "cpu_ms = -0.5");
    assert_error(&text, 5, 10, "price of `cpu_ms` is negative; prices are ≥ 0 (use 0 for free)");
    let text = complete_table("").replace("cpu_ms = 1", "cpu_ms = -inf");
    assert_error(&text, 5, 10, "price of `cpu_ms` is negative; prices are ≥ 0 (use 0 for free)");
    for value in ["nan", "inf", "+inf"] {
        let text = complete_table("").replace("kv_reads = 1", &format!("kv_reads = {value}"));
        assert_error(&text, 9, 12, "price of `kv_reads` is not a finite number; prices are ≥ 0 (use 0 for free)");
    }
}

#[test]
fn unknown_meter_suggests_a_close_name() {
    let known = Meter::names().join(", ");
    let text = complete_table("reqests = 1\n");
    assert_error(
        &text,
        EXTRA_LINE,
        1,
        &format!("unknown meter `reqests`; did you mean `requests`? known meters: {known}"),
    );
    let text = complete_table("  bandwidth = 1\n");
    assert_error(&text, EXTRA_LINE, 3, &format!("unknown meter `bandwidth`; known meters: {known}"));
    let text = complete_table("curency = \"USD\"\n");
    assert_error(
        &text,
        EXTRA_LINE,
        1,
        &format!("unknown meter `curency`; did you mean `currency`? known meters: {known}"),
    );
}

#[test]
fn a_removed_meter_is_refused_saying_why_and_which_lines_to_delete() {
    let why = "the platform cannot count the rows of a SQLite database (a file in the app's volume that the app \
               opens with its own SQLite library) and never bills an estimate, so SQLite is billed as storage, \
               `storage_gb_month`";
    // A table written before the meter was removed: complete but for the removal.
    let text = complete_table("sqlite_rows_read = 0.000000001\n");
    assert_error(
        &text,
        EXTRA_LINE,
        1,
        &format!("meter `sqlite_rows_read` was removed: {why}; delete the `sqlite_rows_read` line from [pricing]"),
    );
    // Both, in either order: the first line is reported and the fix names both,
    // so one restart finds them all.
    let text = complete_table("sqlite_rows_written = 0.000001\nsqlite_rows_read = 0.000000001\n");
    assert_error(
        &text,
        EXTRA_LINE,
        1,
        &format!(
            "meter `sqlite_rows_written` was removed: {why}; \
             delete the `sqlite_rows_read` and `sqlite_rows_written` lines from [pricing]"
        ),
    );
    // It comes before the meters a short old table leaves unpriced.
    let error = error("[pricing]\nrequests = 1\nsqlite_rows_read = 1\n");
    assert_eq!((error.line, error.column), (3, 1), "{error}");
    assert!(error.message.starts_with("meter `sqlite_rows_read` was removed"), "{error}");
}

#[test]
fn the_earliest_problem_is_reported() {
    // Keys iterate sorted, not in file order; the error must still be the first line.
    let text = "[pricing]\nzzz = 1\naaa = 1\n";
    let error = error(text);
    assert_eq!(error.line, 2, "{error}");
    assert!(error.message.starts_with("unknown meter `zzz`"), "{error}");
}

#[test]
fn a_missing_meter_is_reported_at_the_pricing_header() {
    let text = complete_table("").replace("kv_writes = 1\n", "");
    assert_error(
        &text,
        2,
        1,
        "no price for `kv_writes`: every meter needs a price; add `kv_writes = 0` to [pricing] to make it free",
    );
    let text = "# prices\n\n[pricing]\ncurrency = \"USD\"\nrequests = 0.1\n";
    assert_error(
        text,
        3,
        1,
        "no price for `egress_bytes` (and 14 more): every meter needs a price; \
         add `egress_bytes = 0` to [pricing] to make it free",
    );
    // A misspelling is the real problem, not the meter it leaves unpriced.
    let text = complete_table("").replace("kv_writes = 1", "kv_wrtes = 1");
    let error = error(&text);
    assert!(error.message.starts_with("unknown meter `kv_wrtes`; did you mean `kv_writes`?"), "{error}");
}

#[test]
fn unknown_sections_are_refused() {
    let text = format!("[server]\nlisten = \"0.0.0.0\"\n\n{}", complete_table(""));
    assert_error(
        &text,
        1,
        2,
        "unknown section `server`: the server config knows `[pricing]`, `[build]` and `[retention]`",
    );
    let text = format!("{}\n[princing]\nrequests = 1\n", complete_table(""));
    assert_error(
        &text,
        EXTRA_LINE + 1,
        2,
        "unknown section `princing`: the server config knows `[pricing]`, `[build]` and `[retention]`",
    );
    let text = "debug = true\n";
    assert_error(
        text,
        1,
        1,
        "unknown section `debug`: the server config knows `[pricing]`, `[build]` and `[retention]`",
    );
    assert_error("pricing = 3\n", 1, 11, "`pricing` must be a table (a `[pricing]` section), found an integer");
}

#[test]
fn currency_must_be_three_uppercase_letters() {
    let text = complete_table("currency = \"usd\"\n");
    assert_error(
        &text,
        EXTRA_LINE,
        12,
        "currency `usd` must be 3 uppercase letters (an ISO 4217 code); write it as currency = \"USD\"",
    );
    let text = complete_table("currency = \"DOLLARS\"\n");
    assert_error(
        &text,
        EXTRA_LINE,
        12,
        "currency `DOLLARS` must be 3 uppercase letters (an ISO 4217 code); write it as currency = \"USD\"",
    );
    let text = complete_table("currency = 840\n");
    assert_error(&text, EXTRA_LINE, 12, "`currency` in [pricing] must be a string such as \"USD\", found an integer");
    let table = PriceTable::parse(&complete_table("currency = \"JPY\"\n"), "server.toml");
    assert_eq!(table.map(|table| table.currency().to_owned()), Ok("JPY".to_owned()));
}
