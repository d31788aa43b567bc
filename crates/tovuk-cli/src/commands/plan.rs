//! `tovuk deploy --dry-run`: the contract checked here, then the server's plan of what a
//! deploy would do. Nothing is uploaded or changed.

use super::{CliError, CommandResult};
use crate::args::GlobalArgs;
use crate::exit::ExitStatus;
use crate::{connect, output};
use std::collections::BTreeMap;
use tovuk_api_types::{DeployPlan, PlanRequest};

/// `--expect METER=QTY` flags as quantities by meter name (the server knows the meters).
fn expectations(flags: &[String]) -> Result<BTreeMap<String, f64>, CliError> {
    let mut expected = BTreeMap::new();
    for flag in flags {
        let parsed =
            flag.split_once('=').and_then(|(meter, quantity)| Some((meter, quantity.trim().parse::<f64>().ok()?)));
        let Some((meter, quantity)) = parsed else {
            return Err(CliError::usage(format!("`--expect {flag}` is not METER=QUANTITY"))
                .next("tovuk deploy --dry-run --expect requests=1000000"));
        };
        expected.insert(meter.trim().to_owned(), quantity);
    }
    Ok(expected)
}

/// Asks the server what deploying `manifest` (the project's, or `detected`) as `app` would do.
pub(crate) async fn dry_run(
    manifest: &str,
    detected: Option<&tovuk_manifest::Detection>,
    app: &str,
    expect: &[String],
    global: &GlobalArgs,
) -> CommandResult {
    let manifest = manifest.to_owned();
    let request = PlanRequest { app: app.to_owned(), manifest, expected: expectations(expect)? };
    let client = connect::client(global.target.as_deref())?;
    let plan = client.plan(&request).await?;
    let status = if plan.ok { ExitStatus::Success } else { ExitStatus::Failure };
    if global.json {
        let mut json = serde_json::to_value(&plan).unwrap_or_default();
        if let (Some(object), Some(detected)) = (json.as_object_mut(), detected) {
            object.insert("detected".into(), serde_json::to_value(detected).unwrap_or_default());
        }
        output::json(&json);
    } else {
        if let Some(detected) = detected {
            output::line(format!("no tovuk.toml: detected a {} app", detected.language));
            for reason in &detected.reasons {
                output::line(format!("  {reason}"));
            }
        }
        print_plan(&plan);
    }
    Ok(status)
}

fn print_plan(plan: &DeployPlan) {
    let exists = if plan.app_exists { "" } else { " (does not exist yet)" };
    output::line(format!("deploy plan for `{}`{exists}: nothing was changed", plan.app));
    output::line(format!("service URL:   {}", plan.service_url));
    output::line(format!("capabilities:  enabled {}", plan.capabilities.enabled.join(", ")));
    output::line(format!("               disabled {}", plan.capabilities.disabled.join(", ")));
    let limits = &plan.limits;
    output::line(format!(
        "limits:        memory {} MB, {} cpu, {} instance(s), {} s per request, /data {} MB, build phase {} s",
        limits.app.memory_mb,
        limits.app.cpu_cores,
        limits.app.instances,
        limits.app.request_timeout_secs,
        limits.app.data_mb,
        limits.platform.build_timeout_secs
    ));
    for (meter, cap) in &limits.caps {
        output::line(format!("cap:           {meter} {cap} per period"));
    }
    let estimate = &plan.billing_estimate;
    output::line(format!("billing estimate per {} ({}):", estimate.period, estimate.currency));
    let rows: Vec<Vec<String>> = estimate
        .line_items
        .iter()
        .map(|item| {
            vec![
                item.meter.clone(),
                item.unit_price.to_string(),
                format!("{} {}", item.expected_quantity, item.unit),
                item.amount.to_string(),
            ]
        })
        .collect();
    output::line(output::table(&["METER", "UNIT PRICE", "EXPECTED", "AMOUNT"], &rows));
    output::line(format!("total: {} {}", estimate.total, estimate.currency));
    output::line(format!("used this period: {} {}", plan.usage.total, estimate.currency));
    if plan.required_fixes.is_empty() {
        output::line("nothing blocks this deploy");
    } else {
        output::line("blocked until:");
        for fix in &plan.required_fixes {
            output::line(format!("  {}: {}", fix.kind, fix.message));
        }
    }
    for next in &plan.next {
        output::note(format!("next: {next}"));
    }
}
