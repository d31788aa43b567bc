//! `tovuk-pricing` owns the operator's price table and the billing estimate
//! shown by `tovuk pricing` and `tovuk deploy --dry-run`.
//!
//! The crate is pure: callers pass the server config's text and a checked
//! `Manifest`; nothing here reads files or knows about the store.
//!
//! ```text
//! server config text ─► PriceTable (one price per Meter, or the default table)
//! Manifest ─► meter_plan ─► expected_quantities (+ --expect overrides)
//!          ─► estimate(table, plan, quantities) ─► BillingEstimate
//! ```

mod error;
mod estimate;
mod meter;
mod read;
mod table;

pub use error::PricingError;
pub use estimate::{
    BillingEstimate, DEFAULT_MEMORY_MB, HOURS_PER_MONTH, LineItem, cost, estimate, expected_quantities, meter_plan,
};
pub use meter::{Incurrence, Meter};
pub use table::{BILLING_PERIOD, DEFAULT_CURRENCY, DEFAULT_PRICING, PriceTable};
