//! Meters: the closed set of things the platform counts and bills, and what makes an app incur each.

#[cfg(test)]
mod tests;

use std::fmt;

use tovuk_manifest::Capability;

/// One billed quantity. The declaration order is the canonical order of
/// price tables, plans and estimates (`Ord` follows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Meter {
    Requests,
    EgressBytes,
    CpuMs,
    MemoryGbS,
    BuildMinutes,
    StorageGbMonth,
    KvReads,
    KvWrites,
    QueueMessages,
    CronInvocations,
    ObjectClassAOps,
    ObjectClassBOps,
    ObjectStorageGbMonth,
    StateReads,
    StateWrites,
    ServiceBindingCalls,
}

/// Meters tovuk had and removed, each with why. A meter the platform cannot
/// measure honestly is removed rather than estimated; a price table that still
/// prices one is refused with the reason, so no operator believes they bill for it.
pub(crate) const REMOVED_METERS: [(&str, &str); 2] =
    [("sqlite_rows_read", SQLITE_ROWS_REMOVED), ("sqlite_rows_written", SQLITE_ROWS_REMOVED)];

const SQLITE_ROWS_REMOVED: &str = "the platform cannot count the rows of a SQLite database (a file in the app's \
     volume that the app opens with its own SQLite library) and never bills an estimate, so SQLite is billed as \
     storage, `storage_gb_month`";

/// What makes an app billed on a meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Incurrence {
    /// Every app: builds and storage exist whatever the kind.
    Always,
    /// Apps whose kind runs a process (`web` and `worker`).
    Process,
    /// Apps that list this capability in `[app] capabilities`.
    Capability(Capability),
}

impl Meter {
    /// Every meter, in canonical order.
    pub const ALL: [Meter; 16] = [
        Meter::Requests,
        Meter::EgressBytes,
        Meter::CpuMs,
        Meter::MemoryGbS,
        Meter::BuildMinutes,
        Meter::StorageGbMonth,
        Meter::KvReads,
        Meter::KvWrites,
        Meter::QueueMessages,
        Meter::CronInvocations,
        Meter::ObjectClassAOps,
        Meter::ObjectClassBOps,
        Meter::ObjectStorageGbMonth,
        Meter::StateReads,
        Meter::StateWrites,
        Meter::ServiceBindingCalls,
    ];

    /// The snake_case name used as the key in `[pricing]`, in `--expect` and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Meter::Requests => "requests",
            Meter::EgressBytes => "egress_bytes",
            Meter::CpuMs => "cpu_ms",
            Meter::MemoryGbS => "memory_gb_s",
            Meter::BuildMinutes => "build_minutes",
            Meter::StorageGbMonth => "storage_gb_month",
            Meter::KvReads => "kv_reads",
            Meter::KvWrites => "kv_writes",
            Meter::QueueMessages => "queue_messages",
            Meter::CronInvocations => "cron_invocations",
            Meter::ObjectClassAOps => "object_class_a_ops",
            Meter::ObjectClassBOps => "object_class_b_ops",
            Meter::ObjectStorageGbMonth => "object_storage_gb_month",
            Meter::StateReads => "state_reads",
            Meter::StateWrites => "state_writes",
            Meter::ServiceBindingCalls => "service_binding_calls",
        }
    }

    /// The meter spelled exactly `name`, if any.
    pub fn from_name(name: &str) -> Option<Meter> {
        Meter::ALL.into_iter().find(|meter| meter.as_str() == name)
    }

    /// Why `name` is no longer a meter, when it is one tovuk removed.
    pub fn removed(name: &str) -> Option<&'static str> {
        REMOVED_METERS.iter().find(|(removed, _)| *removed == name).map(|(_, why)| *why)
    }

    /// Every meter name, in canonical order, for messages that list them.
    pub fn names() -> Vec<&'static str> {
        Meter::ALL.iter().map(|meter| meter.as_str()).collect()
    }

    /// The singular unit one price is quoted per ("price per request").
    pub fn unit(self) -> &'static str {
        match self {
            Meter::Requests => "request",
            Meter::EgressBytes => "byte",
            Meter::CpuMs => "ms",
            Meter::MemoryGbS => "GB-second",
            Meter::BuildMinutes => "minute",
            Meter::StorageGbMonth | Meter::ObjectStorageGbMonth => "GB-month",
            Meter::KvReads
            | Meter::KvWrites
            | Meter::ObjectClassAOps
            | Meter::ObjectClassBOps
            | Meter::StateReads
            | Meter::StateWrites => "operation",
            Meter::QueueMessages => "message",
            Meter::CronInvocations => "invocation",
            Meter::ServiceBindingCalls => "call",
        }
    }

    /// One sentence: what is counted, and which part of the platform counts it.
    pub fn description(self) -> &'static str {
        match self {
            Meter::Requests => "HTTP requests the router passes to the app, counted by the router.",
            Meter::EgressBytes => "Response bytes the router sends to clients for the app, counted by the router.",
            Meter::CpuMs => "CPU time of the app's instances in milliseconds, counted by the runner.",
            Meter::MemoryGbS => "Resident memory of the app's instances over time, sampled by the runner.",
            Meter::BuildMinutes => "Wall time of the app's builds, counted by the builder.",
            Meter::StorageGbMonth => {
                "The app's persistent volume and stored artifacts over time, measured by the platform."
            }
            Meter::KvReads => "Reads from the app's key-value namespaces, counted by the platform.",
            Meter::KvWrites => "Writes and deletes in the app's key-value namespaces, counted by the platform.",
            Meter::QueueMessages => "Messages sent to the app's queues, counted by the platform.",
            Meter::CronInvocations => "Runs of the app's scheduled jobs, counted by the scheduler.",
            Meter::ObjectClassAOps => "Writes and lists on the app's object storage buckets, counted by the platform.",
            Meter::ObjectClassBOps => "Reads from the app's object storage buckets, counted by the platform.",
            Meter::ObjectStorageGbMonth => {
                "Data held in the app's object storage buckets over time, measured by the platform."
            }
            Meter::StateReads => "Reads of the app's durable state, counted by the platform.",
            Meter::StateWrites => "Writes to the app's durable state, counted by the platform.",
            Meter::ServiceBindingCalls => {
                "Calls the app makes to other apps through [[bindings]], counted by the platform."
            }
        }
    }

    /// What makes an app billed on this meter.
    pub fn incurred_by(self) -> Incurrence {
        match self {
            Meter::Requests | Meter::EgressBytes => Incurrence::Capability(Capability::Http),
            Meter::CpuMs | Meter::MemoryGbS => Incurrence::Process,
            Meter::BuildMinutes | Meter::StorageGbMonth => Incurrence::Always,
            Meter::KvReads | Meter::KvWrites => Incurrence::Capability(Capability::Kv),
            Meter::QueueMessages => Incurrence::Capability(Capability::Queues),
            Meter::CronInvocations => Incurrence::Capability(Capability::Cron),
            Meter::ObjectClassAOps | Meter::ObjectClassBOps | Meter::ObjectStorageGbMonth => {
                Incurrence::Capability(Capability::ObjectStorage)
            }
            Meter::StateReads | Meter::StateWrites => Incurrence::Capability(Capability::State),
            Meter::ServiceBindingCalls => Incurrence::Capability(Capability::ServiceBindings),
        }
    }

    /// `incurred_by` as a phrase for tables: "capability `http`",
    /// "every web or worker instance", "every app".
    pub fn incurred_by_text(self) -> String {
        match self.incurred_by() {
            Incurrence::Always => "every app".to_owned(),
            Incurrence::Process => "every web or worker instance".to_owned(),
            Incurrence::Capability(capability) => format!("capability `{capability}`"),
        }
    }
}

impl fmt::Display for Meter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
