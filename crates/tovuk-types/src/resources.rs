//! Where each kind of resource lives, as the app and the operator see it: one place for the
//! names the runner gives an app and the control plane shows.

/// The port the KV answers on inside an app's own network (the Redis default).
pub const KV_PORT: u16 = 6379;
/// The port the object storage (S3 API) answers on inside an app's own network.
pub const OBJECTS_PORT: u16 = 9000;
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
