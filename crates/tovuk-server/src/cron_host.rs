//! Cron runs start on the runner of this server: the API's [`tovuk_control::CronHost`]
//! answered by the runner's [`tovuk_runner::ResourceHost`].

use std::sync::Arc;
use tovuk_api_types::CronStart;
use tovuk_control::{CronHost, HostFuture};

pub(crate) struct RunnerCron(pub Arc<tovuk_runner::ResourceHost>);

impl CronHost for RunnerCron {
    fn start<'a>(&'a self, run: &'a CronStart) -> HostFuture<'a, ()> {
        Box::pin(self.0.start_cron(run))
    }
}
