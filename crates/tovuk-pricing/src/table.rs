//! `PriceTable`: the operator's unit price for every meter, and the default table tovuk ships.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::{Meter, PricingError, read};

/// The default `[pricing]` table, in the server config's own format, so
/// `tovuk pricing` can show operators a complete table to copy and edit.
pub const DEFAULT_PRICING: &str = include_str!("default_pricing.toml");

/// The currency when `[pricing]` does not name one.
pub const DEFAULT_CURRENCY: &str = "USD";

/// The billing period every price and estimate is for: a calendar month, UTC.
pub const BILLING_PERIOD: &str = "month";

/// `DEFAULT_PRICING` as code, used only if that file ever fails to parse;
/// a test keeps the two equal.
const BUILT_IN_PRICES: [(Meter, f64); 16] = [
    (Meter::Requests, 0.0000003),
    (Meter::EgressBytes, 0.00000000002),
    (Meter::CpuMs, 0.00000002),
    (Meter::MemoryGbS, 0.0000025),
    (Meter::BuildMinutes, 0.005),
    (Meter::StorageGbMonth, 0.15),
    (Meter::KvReads, 0.0000005),
    (Meter::KvWrites, 0.000005),
    (Meter::QueueMessages, 0.0000004),
    (Meter::CronInvocations, 0.0000003),
    (Meter::ObjectClassAOps, 0.0000045),
    (Meter::ObjectClassBOps, 0.00000036),
    (Meter::ObjectStorageGbMonth, 0.015),
    (Meter::StateReads, 0.0000002),
    (Meter::StateWrites, 0.000001),
    (Meter::ServiceBindingCalls, 0.0000001),
];

/// A unit price for every meter, in one currency, for one billing period.
/// Only built by parsing or from the defaults, so every meter has a
/// finite price ≥ 0.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    currency: String,
    period: String,
    prices: BTreeMap<Meter, f64>,
}

impl PriceTable {
    /// Parses the server's config file; `file` is its display path for errors.
    /// Without a `[pricing]` table the default table applies.
    pub fn parse(text: &str, file: &str) -> Result<PriceTable, PricingError> {
        Ok(read::read_config(text, file)?.unwrap_or_else(PriceTable::default_table))
    }

    /// The table from `DEFAULT_PRICING`.
    pub fn default_table() -> PriceTable {
        // The file is compiled in and a test parses it; the built-in copy
        // only keeps a broken edit from taking the server down.
        match read::read_config(DEFAULT_PRICING, "default_pricing.toml") {
            Ok(Some(table)) => table,
            Ok(None) | Err(_) => PriceTable::built_in(),
        }
    }

    fn built_in() -> PriceTable {
        PriceTable::new(DEFAULT_CURRENCY.to_owned(), BUILT_IN_PRICES.into_iter().collect())
    }

    /// Called by the reader once every meter has a valid price.
    pub(crate) fn new(currency: String, prices: BTreeMap<Meter, f64>) -> PriceTable {
        PriceTable { currency, period: BILLING_PERIOD.to_owned(), prices }
    }

    /// ISO 4217 code, such as `USD`.
    pub fn currency(&self) -> &str {
        &self.currency
    }

    /// Always `month`: a calendar month, UTC.
    pub fn period(&self) -> &str {
        &self.period
    }

    /// The price of one `meter.unit()`.
    pub fn price(&self, meter: Meter) -> f64 {
        // Every meter is priced by construction; 0 keeps this total anyway.
        self.prices.get(&meter).copied().unwrap_or(0.0)
    }

    /// Every meter with its price, in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = (Meter, f64)> + '_ {
        self.prices.iter().map(|(meter, price)| (*meter, *price))
    }
}

impl Default for PriceTable {
    fn default() -> Self {
        PriceTable::default_table()
    }
}
