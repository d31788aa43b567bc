//! Where each kind of resource lives, as the app and the operator see it: one place for the
//! names the runner gives an app and the control plane shows.

/// The port the KV answers on inside an app's own network (the Redis default).
pub const KV_PORT: u16 = 6379;
/// The port the object storage (S3 API) answers on inside an app's own network.
pub const OBJECTS_PORT: u16 = 9000;
/// The port the queues' HTTP API answers on inside an app's own network.
pub const QUEUES_PORT: u16 = 9650;
/// The port the State objects' HTTP API answers on inside an app's own network.
pub const STATE_PORT: u16 = 9660;
/// The region the object storage signs with: the one every S3 SDK accepts.
pub const OBJECTS_REGION: &str = "us-east-1";

/// The database file of a SQLite resource, inside the app's sandbox (its volume is `/data`).
pub fn sqlite_path(binding: &str) -> String {
    format!("/data/sqlite/{binding}.db")
}

/// The same file, relative to the app's volume directory.
pub fn sqlite_volume_path(binding: &str) -> String {
    format!("sqlite/{binding}.db")
}

/// The bucket of an object storage resource: its id in the form S3 names take
/// (lowercase letters, digits and hyphens), unique on the platform.
pub fn bucket_name(resource_id: &str) -> String {
    resource_id.replace('_', "-")
}

/// The kind a `[[bindings]]` entry is recorded as among an app's resources.
pub const SERVICE_BINDING_KIND: &str = "service-binding";

/// What the platform's forwarder in an app's network writes before a service-binding call's
/// bytes on the router's internal listener: `TOVUK-CALLER <app> <secret>\r\n`, the app the
/// connection comes from and the secret only the platform's roles hold.
pub const CALLER_PREAMBLE: &str = "TOVUK-CALLER ";

/// Where a service binding's calls go inside an app's own network: `http://<service>.internal`,
/// which the app's hosts file points at this loopback address.
pub const BINDINGS_PORT: u16 = 80;

/// Where an app reaches the objects of its State resource `resource_id` (`B_URL`), the State
/// API listening on `port`.
pub fn state_url(port: u16, resource_id: &str) -> String {
    format!("http://127.0.0.1:{port}/state/{resource_id}")
}

/// Where an app reaches its queue `resource_id` (`B_URL`), the queue API listening on `port`.
pub fn queue_url(port: u16, resource_id: &str) -> String {
    format!("http://127.0.0.1:{port}/queues/{resource_id}")
}
