//! `tovuk pricing` and `tovuk usage`: what each meter costs, and what was used this period.

use super::CommandResult;
use crate::args::GlobalArgs;
use crate::exit::ExitStatus;
use crate::{connect, output};
use tovuk_api_types::{MeterUsage, UsageReport};

pub(crate) async fn pricing(global: &GlobalArgs) -> CommandResult {
    let client = connect::client(global.target.as_deref())?;
    let pricing = client.pricing().await?;
    if global.json {
        output::json(&pricing);
        return Ok(ExitStatus::Success);
    }
    output::line(format!("prices in {} per unit, billed per {} (UTC)", pricing.currency, pricing.period));
    let rows: Vec<Vec<String>> = pricing
        .meters
        .iter()
        .map(|meter| {
            vec![meter.meter.clone(), meter.unit.clone(), meter.unit_price.to_string(), meter.incurred_by.clone()]
        })
        .collect();
    output::line(output::table(&["METER", "UNIT", "UNIT PRICE", "INCURRED BY"], &rows));
    output::note("next: tovuk deploy --dry-run   (the meters and estimate of your service)");
    Ok(ExitStatus::Success)
}

pub(crate) async fn usage(app: Option<&str>, global: &GlobalArgs) -> CommandResult {
    let client = connect::client(global.target.as_deref())?;
    let report = client.usage(app).await?;
    if global.json {
        output::json(&report);
        return Ok(ExitStatus::Success);
    }
    print_usage(&report);
    Ok(ExitStatus::Success)
}

fn rows(meters: &[MeterUsage]) -> Vec<Vec<String>> {
    meters
        .iter()
        .map(|meter| vec![meter.meter.clone(), format!("{} {}", meter.quantity, meter.unit), meter.amount.to_string()])
        .collect()
}

fn print_usage(report: &UsageReport) {
    let usage = &report.account_usage;
    output::line(format!(
        "usage for {} ({} to {}): {} {}",
        usage.period.name, usage.period.start, usage.period.end, usage.total, usage.currency
    ));
    for app in &usage.apps {
        output::line(format!("\napp `{}`: {} {}", app.app, app.total, usage.currency));
        if app.meters.is_empty() {
            output::line("  nothing used yet this period");
        } else {
            output::line(output::table(&["METER", "QUANTITY", "AMOUNT"], &rows(&app.meters)));
        }
    }
    if !report.events.is_empty() {
        output::line("\ncaps that stopped usage:");
        for event in &report.events {
            output::line(format!(
                "  {}  {} at {} of {}: {} stopped",
                event.at, event.meter, event.used, event.limit, event.stopped
            ));
        }
    }
}
