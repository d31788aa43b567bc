//! The operator's SQLite commands reach the runner of this server: the API's
//! [`tovuk_control::SqliteHost`] answered by the runner's [`tovuk_runner::ResourceHost`].

use std::sync::Arc;
use tovuk_control::{HostFuture, SqliteHost, SqliteTarget};

pub(crate) struct RunnerSqlite(pub Arc<tovuk_runner::ResourceHost>);

impl SqliteHost for RunnerSqlite {
    fn snapshot<'a>(&'a self, target: &'a SqliteTarget) -> HostFuture<'a, tovuk_api_types::SqliteSnapshot> {
        Box::pin(self.0.sqlite_snapshot(&target.app, &target.resource_id, &target.binding))
    }

    fn snapshots<'a>(&'a self, target: &'a SqliteTarget) -> HostFuture<'a, Vec<tovuk_api_types::SqliteSnapshot>> {
        Box::pin(async move { self.0.sqlite_snapshots(&target.resource_id) })
    }

    fn restore<'a>(
        &'a self,
        target: &'a SqliteTarget,
        snapshot: &'a str,
    ) -> HostFuture<'a, tovuk_api_types::SqliteRestored> {
        Box::pin(self.0.sqlite_restore(&target.app, &target.resource_id, &target.binding, snapshot))
    }

    fn query<'a>(
        &'a self,
        target: &'a SqliteTarget,
        sql: &'a str,
        write: bool,
    ) -> HostFuture<'a, tovuk_api_types::SqliteQueryResult> {
        Box::pin(self.0.sqlite_query(&target.app, &target.binding, sql, write))
    }
}
