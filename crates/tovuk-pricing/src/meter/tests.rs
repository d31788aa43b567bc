//! Tests of meter names, units and what incurs each meter.

use tovuk_manifest::Capability;

use crate::{Incurrence, Meter};

#[test]
fn names_round_trip_in_canonical_order() {
    let names = Meter::names();
    assert_eq!(names.len(), Meter::ALL.len());
    assert_eq!(names[0], "requests");
    assert_eq!(names[15], "service_binding_calls");
    for meter in Meter::ALL {
        assert_eq!(Meter::from_name(meter.as_str()), Some(meter));
        assert_eq!(meter.to_string(), meter.as_str());
    }
    assert_eq!(Meter::from_name("Requests"), None);
    assert_eq!(Meter::from_name("egress-bytes"), None);
    // `Ord` is the canonical order, so sorted maps print in it.
    let mut sorted = Meter::ALL;
    sorted.sort();
    assert_eq!(sorted, Meter::ALL);
}

#[test]
fn units_and_descriptions() {
    assert_eq!(Meter::Requests.unit(), "request");
    assert_eq!(Meter::EgressBytes.unit(), "byte");
    assert_eq!(Meter::CpuMs.unit(), "ms");
    assert_eq!(Meter::MemoryGbS.unit(), "GB-second");
    assert_eq!(Meter::StorageGbMonth.unit(), "GB-month");
    assert_eq!(Meter::ObjectClassAOps.unit(), "operation");
    assert_eq!(Meter::CronInvocations.unit(), "invocation");
    assert_eq!(Meter::ServiceBindingCalls.unit(), "call");
    for meter in Meter::ALL {
        let description = meter.description();
        assert!(description.ends_with('.') && description.contains("by the"), "{meter}: {description}");
    }
}

#[test]
fn incurrence_and_its_text() {
    assert_eq!(Meter::Requests.incurred_by(), Incurrence::Capability(Capability::Http));
    assert_eq!(Meter::CpuMs.incurred_by(), Incurrence::Process);
    assert_eq!(Meter::BuildMinutes.incurred_by(), Incurrence::Always);
    assert_eq!(Meter::ObjectStorageGbMonth.incurred_by(), Incurrence::Capability(Capability::ObjectStorage));
    assert_eq!(Meter::Requests.incurred_by_text(), "capability `http`");
    assert_eq!(Meter::ServiceBindingCalls.incurred_by_text(), "capability `service-bindings`");
    assert_eq!(Meter::MemoryGbS.incurred_by_text(), "every web or worker instance");
    assert_eq!(Meter::StorageGbMonth.incurred_by_text(), "every app");
}

#[test]
fn removed_meters_are_not_meters_and_say_why() {
    for name in ["sqlite_rows_read", "sqlite_rows_written"] {
        assert_eq!(Meter::from_name(name), None, "{name}");
        assert!(!Meter::names().contains(&name), "{name}");
        let why = Meter::removed(name).unwrap_or_else(|| panic!("`{name}` has no reason"));
        assert!(why.contains("its own SQLite library") && why.contains("`storage_gb_month`"), "{why}");
    }
    assert_eq!(Meter::removed("requests"), None, "a meter is not removed");
    assert_eq!(Meter::removed("bandwidth"), None);
}
