//! Capabilities: what an app declares it uses, so the platform can enable, meter and bill exactly that.

use std::fmt;

/// One platform capability. The manifest lists them explicitly under
/// `[app] capabilities`; anything the app uses must be listed there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Public HTTP traffic through the router: needed by `web` and `static` apps, routes and domains.
    Http,
    /// SQLite databases (`[[resources]] kind = "sqlite"`).
    Sqlite,
    /// Object storage buckets (`kind = "object-storage"`).
    ObjectStorage,
    /// Key-value namespaces (`kind = "kv"`).
    Kv,
    /// Queues (`kind = "queue"`).
    Queues,
    /// Scheduled jobs (`kind = "cron"`).
    Cron,
    /// Durable state (`kind = "state"`).
    State,
    /// Calls to other apps through `[[bindings]]`.
    ServiceBindings,
    /// Connections from the app to the internet. Nothing in the manifest
    /// implies it, so it is never reported as unused.
    OutboundNetwork,
}

impl Capability {
    /// Every capability, in the canonical order used in reports and fixes.
    pub const ALL: [Capability; 9] = [
        Capability::Http,
        Capability::Sqlite,
        Capability::ObjectStorage,
        Capability::Kv,
        Capability::Queues,
        Capability::Cron,
        Capability::State,
        Capability::ServiceBindings,
        Capability::OutboundNetwork,
    ];

    /// The kebab-case name used in `tovuk.toml` and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Http => "http",
            Capability::Sqlite => "sqlite",
            Capability::ObjectStorage => "object-storage",
            Capability::Kv => "kv",
            Capability::Queues => "queues",
            Capability::Cron => "cron",
            Capability::State => "state",
            Capability::ServiceBindings => "service-bindings",
            Capability::OutboundNetwork => "outbound-network",
        }
    }

    /// The capability spelled exactly `name`, if any.
    pub fn from_name(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|capability| capability.as_str() == name)
    }

    pub(crate) fn names() -> [&'static str; 9] {
        Capability::ALL.map(Capability::as_str)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
