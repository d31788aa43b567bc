//! Billing estimates: which meters a manifest is billed on, its expected monthly quantities, and their cost.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use tovuk_manifest::Manifest;

use crate::{Incurrence, Meter, PriceTable};

/// Memory assumed per instance when `[limits] memory_mb` is unset.
pub use tovuk_manifest::DEFAULT_MEMORY_MB;
/// Hours in the billing month used for always-on instances (365 × 24 / 12).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// Amounts keep six decimals: finer than any currency's smallest unit, and
/// coarse enough to hide float noise such as 0.30000000000000004.
const DECIMALS: f64 = 1e6;

/// One meter's share of an estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct LineItem {
    pub meter: Meter,
    /// `meter.unit()`, so renderers need not look it up.
    pub unit: &'static str,
    /// Price of one unit, in the estimate's currency.
    pub unit_price: f64,
    /// Units expected in one billing period.
    pub expected_quantity: f64,
    /// `unit_price × expected_quantity`, rounded to 6 decimals.
    pub amount: f64,
}

/// What a service is expected to cost for one billing period.
#[derive(Debug, Clone, PartialEq)]
pub struct BillingEstimate {
    /// One item per planned meter, in canonical order.
    pub line_items: Vec<LineItem>,
    /// Sum of the item amounts, rounded to 6 decimals.
    pub total: f64,
    pub currency: String,
    /// Always `month`.
    pub period: String,
}

/// The meters `manifest` will be billed on, in canonical order: those every
/// app incurs, the process meters when its kind runs one, and those of each
/// listed capability.
pub fn meter_plan(manifest: &Manifest) -> Vec<Meter> {
    Meter::ALL
        .into_iter()
        .filter(|meter| match meter.incurred_by() {
            Incurrence::Always => true,
            Incurrence::Process => manifest.kind().runs_process(),
            Incurrence::Capability(capability) => manifest.has_capability(capability),
        })
        .collect()
}

/// The expected monthly quantity of each planned meter, from `[expected]`
/// and `[limits]`; meters without an expectation are 0. `overrides` (from
/// `--expect METER=QTY`) replace any value; overrides of meters outside the
/// plan are ignored, since the service is not billed on them.
pub fn expected_quantities(manifest: &Manifest, overrides: &BTreeMap<Meter, f64>) -> BTreeMap<Meter, f64> {
    meter_plan(manifest)
        .into_iter()
        .map(|meter| {
            let quantity = overrides.get(&meter).copied().unwrap_or_else(|| declared_quantity(manifest, meter));
            (meter, quantity)
        })
        .collect()
}

/// What the manifest itself says about `meter`'s monthly quantity.
fn declared_quantity(manifest: &Manifest, meter: Meter) -> f64 {
    let expected = manifest.expected();
    let declared = match meter {
        Meter::Requests => expected.requests_per_month,
        Meter::EgressBytes => expected.egress_gb_per_month.map(|gb| gb * 1e9),
        Meter::CpuMs => expected.cpu_hours_per_month.map(|hours| hours * 3.6e6),
        Meter::MemoryGbS => Some(always_on_memory_gb_s(manifest)),
        Meter::StorageGbMonth => expected.storage_gb,
        // `[expected]` has one number per resource kind; it is read as the
        // kind's cheaper, commoner operation rather than split by guesswork.
        Meter::KvReads => expected.kv_operations_per_month,
        Meter::QueueMessages => expected.queue_messages_per_month,
        Meter::CronInvocations => expected.cron_runs_per_month,
        Meter::ObjectClassBOps => expected.object_storage_operations_per_month,
        Meter::BuildMinutes
        | Meter::KvWrites
        | Meter::ObjectClassAOps
        | Meter::ObjectStorageGbMonth
        | Meter::StateReads
        | Meter::StateWrites
        | Meter::ServiceBindingCalls => None,
    };
    declared.unwrap_or(0.0)
}

/// Memory of every instance and background process, kept resident for the whole month.
fn always_on_memory_gb_s(manifest: &Manifest) -> f64 {
    let limits = manifest.limits();
    let memory_gb = f64::from(limits.memory_mb.unwrap_or(DEFAULT_MEMORY_MB)) / 1024.0;
    let processes: u32 = manifest.processes().iter().map(|process| process.instances).sum();
    let instances = f64::from(limits.instances.unwrap_or(1)) + f64::from(processes);
    memory_gb * instances * HOURS_PER_MONTH * 3600.0
}

/// Prices `quantities` of the planned meters: one line item per meter in
/// `plan` (a missing quantity is 0).
pub fn estimate(table: &PriceTable, plan: &[Meter], quantities: &BTreeMap<Meter, f64>) -> BillingEstimate {
    let line_items: Vec<LineItem> = plan
        .iter()
        .map(|&meter| {
            let unit_price = table.price(meter);
            let expected_quantity = quantities.get(&meter).copied().unwrap_or(0.0);
            LineItem {
                meter,
                unit: meter.unit(),
                unit_price,
                expected_quantity,
                amount: round_amount(unit_price * expected_quantity),
            }
        })
        .collect();
    // Summing the rounded amounts keeps the total equal to what the items show.
    let total = round_amount(line_items.iter().map(|item| item.amount).sum());
    BillingEstimate { line_items, total, currency: table.currency().to_owned(), period: table.period().to_owned() }
}

/// The cost of actual `usage`, rounded like an estimate.
pub fn cost(table: &PriceTable, usage: &BTreeMap<Meter, f64>) -> f64 {
    round_amount(usage.iter().map(|(meter, quantity)| round_amount(table.price(*meter) * quantity)).sum())
}

fn round_amount(amount: f64) -> f64 {
    let scaled = (amount * DECIMALS).round();
    if !scaled.is_finite() {
        // Too large to scale: no float noise worth hiding at this size.
        return amount;
    }
    // `+ 0.0` turns -0.0 (a tiny negative rounded away) into 0.
    scaled / DECIMALS + 0.0
}
