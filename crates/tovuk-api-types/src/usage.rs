//! Pricing, metered usage, caps and the deploy plan on the wire. The fields the product
//! documents name (`accountUsage`, `billingEstimate`, `lineItems`, `meterPlan`,
//! `missingConfig`, `requiredFixes`, `unitPrice`, `expectedQuantity`) keep those exact names.

use crate::MissingConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tovuk_types::values::CapState;

/// `GET /v1/pricing`: the operator's price table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pricing {
    pub currency: String,
    /// `month`: a calendar month, UTC.
    pub period: String,
    pub meters: Vec<MeterPrice>,
}

/// One meter's unit price and what incurs it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeterPrice {
    pub meter: String,
    pub unit: String,
    pub unit_price: f64,
    /// `every app`, `every web or worker instance`, or `capability `http``...
    pub incurred_by: String,
    pub description: String,
}

/// A meter's quantity over a period and what it costs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeterUsage {
    pub meter: String,
    pub unit: String,
    pub quantity: f64,
    pub amount: f64,
}

/// One app's usage this period.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppUsage {
    pub app: String,
    pub meters: Vec<MeterUsage>,
    pub total: f64,
}

/// The billing period usage is counted in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsagePeriod {
    /// `2026-11`.
    pub name: String,
    pub start: String,
    pub end: String,
}

/// Usage for the current period: the account's totals per meter and each app's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountUsage {
    pub period: UsagePeriod,
    pub currency: String,
    pub meters: Vec<MeterUsage>,
    pub apps: Vec<AppUsage>,
    pub total: f64,
}

/// `GET /v1/usage[?app=APP]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageReport {
    pub account_usage: AccountUsage,
    /// Cap stops of the app asked about (empty for the whole account).
    pub events: Vec<CapEvent>,
}

/// A cap on one meter of an app, with this period's usage against it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cap {
    pub app: String,
    pub meter: String,
    pub limit: f64,
    pub used: f64,
    pub unit: String,
    /// `ok` or `reached` (the meter's usage is stopped).
    #[serde(with = "crate::text")]
    pub state: CapState,
    pub created_at: String,
    pub updated_at: String,
}

/// `GET /v1/apps/{app}/caps`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CapList {
    pub app: String,
    pub caps: Vec<Cap>,
    pub events: Vec<CapEvent>,
}

/// `PUT /v1/apps/{app}/caps/{meter}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetCapRequest {
    pub limit: f64,
}

/// A cap stopping usage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CapEvent {
    pub at: String,
    pub meter: String,
    pub limit: f64,
    pub used: f64,
    /// What was stopped: `requests`, `traffic`, `build`.
    pub stopped: String,
}

/// `POST /internal/v1/usage`: usage a role measured (the runner's CPU and memory).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UsageBatch {
    pub entries: Vec<UsageSample>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsageSample {
    pub app: String,
    pub meter: String,
    pub quantity: f64,
}

/// `POST /v1/plan`: what a deploy of this contract would do; changes nothing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PlanRequest {
    pub app: String,
    /// The `tovuk.toml` text.
    pub manifest: String,
    /// Expected monthly quantities by meter, over `[expected]` (from `--expect METER=QTY`).
    #[serde(default)]
    pub expected: BTreeMap<String, f64>,
}

/// What a deploy enables, is billed on and is limited by: recorded with each deploy, so a
/// dry-run's plan and the real deploy's can be compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployShape {
    pub capabilities: PlanCapabilities,
    pub meter_plan: Vec<PlannedMeter>,
    pub limits: PlanLimits,
    /// The contract's `[[routes]]` (empty: every path, no auth).
    #[serde(default)]
    pub routes: Vec<PlannedRoute>,
}

/// One `[[routes]]` entry of the contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedRoute {
    pub path: String,
    pub auth: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanCapabilities {
    pub enabled: Vec<String>,
    pub disabled: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedMeter {
    pub meter: String,
    pub unit: String,
    pub unit_price: f64,
    pub incurred_by: String,
}

/// Platform limits, the app's `[limits]` (defaults filled in), and its caps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanLimits {
    pub platform: PlatformLimits,
    pub app: AppLimits,
    /// Cap per meter (`null` entries are not listed).
    pub caps: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformLimits {
    pub max_push_bytes: u64,
    pub max_upload_bytes: u64,
    pub max_unpacked_bytes: u64,
    pub max_upload_files: u64,
    pub build_timeout_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppLimits {
    pub memory_mb: u32,
    pub cpu_cores: f64,
    pub instances: u32,
    pub request_timeout_secs: u64,
    /// The app's `/data` volume in MiB, shared by its instances.
    #[serde(default)]
    pub data_mb: u32,
}

/// `billingEstimate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingEstimate {
    pub line_items: Vec<LineItem>,
    pub total: f64,
    pub currency: String,
    pub period: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    pub meter: String,
    pub unit: String,
    pub unit_price: f64,
    pub expected_quantity: f64,
    pub amount: f64,
}

/// A fix the plan needs before a deploy can go through.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanFix {
    /// `contract`, `config`, `app` or `cap`.
    pub kind: String,
    pub message: String,
    pub line: Option<u64>,
    pub next: String,
}

/// The answer to `tovuk deploy --dry-run`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployPlan {
    pub app: String,
    pub app_exists: bool,
    /// True when nothing blocks the deploy.
    pub ok: bool,
    pub missing_config: Vec<MissingConfig>,
    pub required_fixes: Vec<PlanFix>,
    pub capabilities: PlanCapabilities,
    pub meter_plan: Vec<PlannedMeter>,
    pub limits: PlanLimits,
    pub usage: AppUsage,
    pub billing_estimate: BillingEstimate,
    pub service_url: String,
    pub next: Vec<String>,
}
