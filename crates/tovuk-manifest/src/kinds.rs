//! The closed sets of values in the manifest: app kinds, resource kinds and route auth modes.

use std::fmt;

use crate::Capability;

/// What an app is, which decides how it is started and reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppKind {
    /// An HTTP service the router sends traffic to; needs `[run]` and a `[health]` path.
    Web,
    /// A background process with no public traffic; needs `[run]`.
    Worker,
    /// Files served by the router itself; no process runs.
    Static,
}

impl AppKind {
    pub const ALL: [AppKind; 3] = [AppKind::Web, AppKind::Worker, AppKind::Static];

    pub fn as_str(self) -> &'static str {
        match self {
            AppKind::Web => "web",
            AppKind::Worker => "worker",
            AppKind::Static => "static",
        }
    }

    pub fn from_name(name: &str) -> Option<AppKind> {
        AppKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// Whether a process runs for this kind (and so `[run]` is required).
    pub fn runs_process(self) -> bool {
        matches!(self, AppKind::Web | AppKind::Worker)
    }

    /// Whether the router sends public traffic to this kind.
    pub fn serves_http(self) -> bool {
        matches!(self, AppKind::Web | AppKind::Static)
    }

    pub(crate) fn names() -> [&'static str; 3] {
        AppKind::ALL.map(AppKind::as_str)
    }
}

/// The kind of a `[[resources]]` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    Sqlite,
    ObjectStorage,
    Kv,
    Queue,
    Cron,
    State,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 6] = [
        ResourceKind::Sqlite,
        ResourceKind::ObjectStorage,
        ResourceKind::Kv,
        ResourceKind::Queue,
        ResourceKind::Cron,
        ResourceKind::State,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Sqlite => "sqlite",
            ResourceKind::ObjectStorage => "object-storage",
            ResourceKind::Kv => "kv",
            ResourceKind::Queue => "queue",
            ResourceKind::Cron => "cron",
            ResourceKind::State => "state",
        }
    }

    pub fn from_name(name: &str) -> Option<ResourceKind> {
        ResourceKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// The capability an app must list to use a resource of this kind.
    pub fn capability(self) -> Capability {
        match self {
            ResourceKind::Sqlite => Capability::Sqlite,
            ResourceKind::ObjectStorage => Capability::ObjectStorage,
            ResourceKind::Kv => Capability::Kv,
            ResourceKind::Queue => Capability::Queues,
            ResourceKind::Cron => Capability::Cron,
            ResourceKind::State => Capability::State,
        }
    }

    pub(crate) fn names() -> [&'static str; 6] {
        ResourceKind::ALL.map(ResourceKind::as_str)
    }

    /// The environment variables a resource bound as `binding` sets in the app, besides the
    /// conventional ones (`DATABASE_URL`, `AWS_*`, `REDIS_URL`) an app with one of a kind gets.
    pub fn variables(self, binding: &str) -> Vec<String> {
        let suffixes: &[&str] = match self {
            ResourceKind::Sqlite | ResourceKind::Kv => &[""],
            ResourceKind::ObjectStorage => &["", "_ENDPOINT", "_ACCESS_KEY_ID", "_SECRET_ACCESS_KEY", "_REGION"],
            ResourceKind::Queue | ResourceKind::State => &["_URL", "_TOKEN"],
            ResourceKind::Cron => &[],
        };
        suffixes.iter().map(|suffix| format!("{binding}{suffix}")).collect()
    }

    /// The conventional variables stock libraries read, set when an app has exactly one
    /// resource of this kind (and does not set them itself).
    pub fn conventional_variables(self) -> &'static [&'static str] {
        match self {
            ResourceKind::Sqlite => &["DATABASE_URL"],
            // boto3 reads the region from AWS_DEFAULT_REGION, other SDKs from AWS_REGION.
            ResourceKind::ObjectStorage => &[
                "AWS_ENDPOINT_URL_S3",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_REGION",
                "BUCKET_NAME",
                "AWS_DEFAULT_REGION",
            ],
            ResourceKind::Kv => &["REDIS_URL"],
            ResourceKind::Queue | ResourceKind::Cron | ResourceKind::State => &[],
        }
    }
}

/// The variables a `[[bindings]]` entry bound as `binding` sets in the app.
pub fn service_binding_variables(binding: &str) -> Vec<String> {
    vec![format!("{binding}_URL"), format!("{binding}_TOKEN")]
}

/// Who may call a route, enforced by the router before the app sees the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RouteAuth {
    /// Anyone.
    #[default]
    None,
    /// Anyone; a valid session is passed on to the app when present.
    Optional,
    /// Only requests with a valid session.
    Session,
    /// Only requests carrying a capability token for this app.
    Capability,
}

impl RouteAuth {
    pub const ALL: [RouteAuth; 4] = [RouteAuth::None, RouteAuth::Optional, RouteAuth::Session, RouteAuth::Capability];

    pub fn as_str(self) -> &'static str {
        match self {
            RouteAuth::None => "none",
            RouteAuth::Optional => "optional",
            RouteAuth::Session => "session",
            RouteAuth::Capability => "capability",
        }
    }

    pub fn from_name(name: &str) -> Option<RouteAuth> {
        RouteAuth::ALL.into_iter().find(|auth| auth.as_str() == name)
    }

    pub(crate) fn names() -> [&'static str; 4] {
        RouteAuth::ALL.map(RouteAuth::as_str)
    }
}

macro_rules! display_as_str {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}

display_as_str!(AppKind, ResourceKind, RouteAuth);
