//! Reading the server config text into a `PriceTable`, stopping at the first problem in file order.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::meter::REMOVED_METERS;
use crate::table::DEFAULT_CURRENCY;
use crate::{Meter, PriceTable, PricingError};
use tovuk_manifest::did_you_mean;

/// The server config's price table; `[build]` is the other section it knows (read by the server).
const PRICING: &str = "pricing";
/// The key in `[pricing]` that is not a meter.
const CURRENCY: &str = "currency";

/// Problems found so far, each at a byte offset. Reading goes on after the
/// first so that the one reported is the earliest in the file, whatever
/// order the TOML map iterates in.
#[derive(Default)]
struct Problems(Vec<(usize, String)>);

impl Problems {
    fn push(&mut self, offset: usize, message: String) {
        self.0.push((offset, message));
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn into_result(self, file: &str, text: &str) -> Result<(), PricingError> {
        // `min_by_key` keeps the first of equal offsets, so ties follow reading order.
        match self.0.into_iter().min_by_key(|(offset, _)| *offset) {
            Some((offset, message)) => Err(PricingError::at(file, text, offset, message)),
            None => Ok(()),
        }
    }
}

/// The table in `text`, `None` when it has no `[pricing]` table.
pub(crate) fn read_config(text: &str, file: &str) -> Result<Option<PriceTable>, PricingError> {
    // A byte-order mark is invisible in editors, so positions ignore it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let root = DeTable::parse(text).map_err(|error| {
        let offset = error.span().map_or(0, |span| span.start);
        let message = format!("invalid TOML: {}", error.message().trim_end_matches('\n'));
        PricingError::at(file, text, offset, message)
    })?;
    let mut problems = Problems::default();
    let mut pricing = None;
    for (key, value) in root.get_ref().iter() {
        let name = key.get_ref().as_ref();
        // `[build]` and `[retention]` are read by the server; nothing else is known.
        if name == "build" || name == "retention" {
            continue;
        }
        if name != PRICING {
            problems.push(
                key.span().start,
                format!("unknown section `{name}`: the server config knows `[pricing]`, `[build]` and `[retention]`"),
            );
            continue;
        }
        match value.get_ref() {
            DeValue::Table(table) => pricing = Some((table, value.span())),
            other => problems.push(
                value.span().start,
                format!("`pricing` must be a table (a `[pricing]` section), found {}", type_name(other)),
            ),
        }
    }
    let table = pricing.and_then(|(table, header)| read_pricing(table, header, &mut problems));
    problems.into_result(file, text)?;
    Ok(table)
}

/// `[pricing]`, whose span (`header`) is where the table was declared.
fn read_pricing(table: &DeTable<'_>, header: Range<usize>, problems: &mut Problems) -> Option<PriceTable> {
    let currency = read_currency(table, problems);
    let mut prices = BTreeMap::new();
    for (key, value) in table.iter() {
        let name = key.get_ref().as_ref();
        if name == CURRENCY {
            continue;
        }
        match Meter::from_name(name) {
            Some(meter) => {
                if let Some(price) = read_price(meter, value, &currency, problems) {
                    prices.insert(meter, price);
                }
            }
            None => match Meter::removed(name) {
                Some(why) => problems.push(key.span().start, removed_meter(name, why, table)),
                None => problems.push(key.span().start, unknown_meter(name)),
            },
        }
    }
    if !problems.is_empty() {
        // A misspelt or invalid key would also show up as a missing meter;
        // its own error says more.
        return None;
    }
    let missing: Vec<Meter> = Meter::ALL.into_iter().filter(|meter| !prices.contains_key(meter)).collect();
    if let Some(first) = missing.first() {
        let more = match missing.len() - 1 {
            0 => String::new(),
            others => format!(" (and {others} more)"),
        };
        problems.push(
            header.start,
            format!(
                "no price for `{first}`{more}: every meter needs a price; \
                 add `{first} = 0` to [pricing] to make it free"
            ),
        );
        return None;
    }
    Some(PriceTable::new(currency, prices))
}

/// `currency`: three uppercase letters, `USD` when absent (or invalid, after reporting it).
fn read_currency(table: &DeTable<'_>, problems: &mut Problems) -> String {
    let Some(value) = lookup(table, CURRENCY) else {
        return DEFAULT_CURRENCY.to_owned();
    };
    let DeValue::String(code) = value.get_ref() else {
        problems.push(
            value.span().start,
            format!(
                "`currency` in [pricing] must be a string such as \"{DEFAULT_CURRENCY}\", found {}",
                type_name(value.get_ref())
            ),
        );
        return DEFAULT_CURRENCY.to_owned();
    };
    if code.len() == 3 && code.bytes().all(|byte| byte.is_ascii_uppercase()) {
        return code.to_string();
    }
    let fix = if code.chars().count() == 3 && code.chars().all(|ch| ch.is_ascii_alphabetic()) {
        format!("write it as currency = \"{}\"", code.to_ascii_uppercase())
    } else {
        format!("write it as currency = \"{DEFAULT_CURRENCY}\"")
    };
    problems
        .push(value.span().start, format!("currency `{code}` must be 3 uppercase letters (an ISO 4217 code); {fix}"));
    DEFAULT_CURRENCY.to_owned()
}

/// One meter's unit price: a finite number ≥ 0, integer or float.
fn read_price(meter: Meter, value: &Spanned<DeValue<'_>>, currency: &str, problems: &mut Problems) -> Option<f64> {
    let offset = value.span().start;
    let number = match value.get_ref() {
        DeValue::Integer(integer) => {
            i64::from_str_radix(integer.as_str(), integer.radix()).ok().map(|number| number as f64)
        }
        DeValue::Float(float) => float.as_str().parse::<f64>().ok(),
        other => {
            problems.push(
                offset,
                format!(
                    "price of `{meter}` must be a number (a unit price in {currency} per {}), found {}",
                    meter.unit(),
                    type_name(other)
                ),
            );
            return None;
        }
    };
    match number {
        Some(number) if number < 0.0 => {
            problems.push(offset, format!("price of `{meter}` is negative; prices are ≥ 0 (use 0 for free)"));
            None
        }
        // `+ 0.0` turns a written `-0.0` into 0, so it never prints as "-0".
        Some(number) if number.is_finite() => Some(number + 0.0),
        _ => {
            problems
                .push(offset, format!("price of `{meter}` is not a finite number; prices are ≥ 0 (use 0 for free)"));
            None
        }
    }
}

/// A meter tovuk removed, priced anyway: refused rather than ignored, so no
/// operator believes they bill for it. The fix names every removed meter the
/// table prices, so one restart finds them all.
fn removed_meter(name: &str, why: &str, table: &DeTable<'_>) -> String {
    let priced: Vec<String> = REMOVED_METERS
        .iter()
        .filter(|(removed, _)| lookup(table, removed).is_some())
        .map(|(removed, _)| format!("`{removed}`"))
        .collect();
    let lines = if priced.len() > 1 { "lines" } else { "line" };
    format!("meter `{name}` was removed: {why}; delete the {} {lines} from [pricing]", priced.join(" and "))
}

fn unknown_meter(name: &str) -> String {
    let known = Meter::names();
    let mut candidates = known.clone();
    candidates.push(CURRENCY);
    let hint = match did_you_mean(name, &candidates) {
        Some(close) => format!("did you mean `{close}`? "),
        None => String::new(),
    };
    format!("unknown meter `{name}`; {hint}known meters: {}", known.join(", "))
}

fn lookup<'t, 'i>(table: &'t DeTable<'i>, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
    table.iter().find(|(candidate, _)| candidate.get_ref().as_ref() == key).map(|(_, value)| value)
}

/// "an integer", "a string"… as the operator would say it.
fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}
