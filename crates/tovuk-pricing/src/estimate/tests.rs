//! Tests of meter plans, expected quantities and estimate arithmetic, on manifests that pass `tovuk check`.

use std::collections::BTreeMap;

use tovuk_manifest::{Manifest, check_bytes};

use crate::{BillingEstimate, Meter, PriceTable, cost, estimate, expected_quantities, meter_plan};

#[track_caller]
fn manifest(text: &str) -> Manifest {
    match check_bytes("tovuk.toml", text.as_bytes()) {
        (Some(manifest), _) => manifest,
        (None, report) => panic!("test manifest must pass the check: {report:#?}"),
    }
}

const STATIC_SITE: &str = "\
[app]
name = \"site\"
kind = \"static\"
capabilities = [\"http\"]

[expected]
requests_per_month = 1000000
egress_gb_per_month = 5
";

const WEB_WITH_DATA: &str = "\
[app]
name = \"shop\"
kind = \"web\"
capabilities = [\"http\", \"sqlite\", \"kv\"]

[run]
command = \"./server\"

[health]
path = \"/health\"

[[resources]]
kind = \"sqlite\"
binding = \"DB\"

[[resources]]
kind = \"kv\"
binding = \"CACHE\"

[limits]
memory_mb = 512
instances = 2

[expected]
requests_per_month = 2000000
cpu_hours_per_month = 10
storage_gb = 3
kv_operations_per_month = 400000
queue_messages_per_month = 50
";

const WORKER: &str = "\
[app]
name = \"jobs\"
kind = \"worker\"
capabilities = [\"queues\"]

[run]
command = \"./worker\"

[[resources]]
kind = \"queue\"
binding = \"JOBS\"
";

#[test]
fn static_app_with_http_has_no_process_meters() {
    assert_eq!(
        meter_plan(&manifest(STATIC_SITE)),
        [Meter::Requests, Meter::EgressBytes, Meter::BuildMinutes, Meter::StorageGbMonth]
    );
}

#[test]
fn web_app_with_sqlite_and_kv() {
    assert_eq!(
        meter_plan(&manifest(WEB_WITH_DATA)),
        [
            Meter::Requests,
            Meter::EgressBytes,
            Meter::CpuMs,
            Meter::MemoryGbS,
            Meter::BuildMinutes,
            // SQLite adds no meter: its database is a file in the volume, billed as storage.
            Meter::StorageGbMonth,
            Meter::KvReads,
            Meter::KvWrites,
        ]
    );
}

#[test]
fn worker_without_http_has_no_request_meters() {
    assert_eq!(
        meter_plan(&manifest(WORKER)),
        [Meter::CpuMs, Meter::MemoryGbS, Meter::BuildMinutes, Meter::StorageGbMonth, Meter::QueueMessages]
    );
}

#[test]
fn expected_quantities_map_from_expected_and_limits() {
    let quantities = expected_quantities(&manifest(WEB_WITH_DATA), &BTreeMap::new());
    let expected: BTreeMap<Meter, f64> = [
        (Meter::Requests, 2_000_000.0),
        (Meter::EgressBytes, 0.0),
        (Meter::CpuMs, 36_000_000.0),
        // 512 MiB × 2 instances, always on: 1 GB × 730 h × 3600 s.
        (Meter::MemoryGbS, 2_628_000.0),
        (Meter::BuildMinutes, 0.0),
        (Meter::StorageGbMonth, 3.0),
        (Meter::KvReads, 400_000.0),
        (Meter::KvWrites, 0.0),
    ]
    .into_iter()
    .collect();
    // `queue_messages_per_month` is declared but the app is not billed on queues.
    assert_eq!(quantities, expected);

    let quantities = expected_quantities(&manifest(STATIC_SITE), &BTreeMap::new());
    assert_eq!(quantities.get(&Meter::EgressBytes), Some(&5e9));
    assert_eq!(quantities.get(&Meter::MemoryGbS), None);
}

#[test]
fn memory_defaults_to_256_mb_and_one_instance() {
    let quantities = expected_quantities(&manifest(WORKER), &BTreeMap::new());
    assert_eq!(quantities.get(&Meter::MemoryGbS), Some(&(0.25 * 730.0 * 3600.0)));
    assert_eq!(quantities.get(&Meter::QueueMessages), Some(&0.0));
}

#[test]
fn background_processes_are_priced_like_instances() {
    let text = format!("{WORKER}\n[[processes]]\nname = \"clock\"\ncommand = \"./clock\"\ninstances = 2\n");
    let quantities = expected_quantities(&manifest(&text), &BTreeMap::new());
    assert_eq!(quantities.get(&Meter::MemoryGbS), Some(&(0.25 * 3.0 * 730.0 * 3600.0)));
}

#[test]
fn overrides_replace_planned_values_only() {
    let overrides: BTreeMap<Meter, f64> =
        [(Meter::MemoryGbS, 10.0), (Meter::BuildMinutes, 120.0), (Meter::Requests, 5.0)].into_iter().collect();
    let quantities = expected_quantities(&manifest(WORKER), &overrides);
    assert_eq!(quantities.get(&Meter::MemoryGbS), Some(&10.0));
    assert_eq!(quantities.get(&Meter::BuildMinutes), Some(&120.0));
    assert_eq!(quantities.get(&Meter::Requests), None, "a worker is not billed on requests");
}

#[test]
fn estimate_prices_each_planned_meter() {
    let table = PriceTable::default_table();
    let manifest = manifest(STATIC_SITE);
    let plan = meter_plan(&manifest);
    let mut quantities = expected_quantities(&manifest, &BTreeMap::new());
    quantities.insert(Meter::BuildMinutes, 30.0);
    let BillingEstimate { line_items, total, currency, period } = estimate(&table, &plan, &quantities);
    assert_eq!((currency.as_str(), period.as_str()), ("USD", "month"));
    let amounts: Vec<(Meter, &str, f64, f64)> =
        line_items.iter().map(|item| (item.meter, item.unit, item.expected_quantity, item.amount)).collect();
    assert_eq!(
        amounts,
        [
            (Meter::Requests, "request", 1_000_000.0, 0.3),
            (Meter::EgressBytes, "byte", 5e9, 0.1),
            (Meter::BuildMinutes, "minute", 30.0, 0.15),
            (Meter::StorageGbMonth, "GB-month", 0.0, 0.0),
        ]
    );
    assert_eq!(line_items[0].unit_price, 0.0000003);
    assert_eq!(total, 0.55);
}

#[test]
fn amounts_and_totals_are_rounded_to_six_decimals() {
    let text = format!("[pricing]\n{}", Meter::ALL.iter().map(|meter| format!("{meter} = 0.1\n")).collect::<String>())
        .replace("cpu_ms = 0.1", "cpu_ms = 0.2");
    let table = match PriceTable::parse(&text, "server.toml") {
        Ok(table) => table,
        Err(error) => panic!("{error}"),
    };
    let quantities: BTreeMap<Meter, f64> =
        [(Meter::Requests, 1.0), (Meter::CpuMs, 1.0), (Meter::KvReads, 1.0 / 3.0)].into_iter().collect();
    let result = estimate(&table, &[Meter::Requests, Meter::CpuMs, Meter::KvReads, Meter::KvWrites], &quantities);
    let amounts: Vec<f64> = result.line_items.iter().map(|item| item.amount).collect();
    assert_eq!(amounts, [0.1, 0.2, 0.033333, 0.0]);
    // 0.1 + 0.2 alone would be 0.30000000000000004.
    assert_eq!(result.total, 0.333333);
    assert_eq!(cost(&table, &quantities), 0.333333);
    let usage: BTreeMap<Meter, f64> = [(Meter::Requests, 1.0), (Meter::CpuMs, 1.0)].into_iter().collect();
    assert_eq!(cost(&table, &usage), 0.3);
    assert_eq!(cost(&table, &BTreeMap::new()), 0.0);
}
