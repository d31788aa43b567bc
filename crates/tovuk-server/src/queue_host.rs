//! The operator's queue commands reach the runner of this server: the API's
//! [`tovuk_control::QueueHost`] answered by the runner's [`tovuk_runner::ResourceHost`].

use std::sync::Arc;
use tovuk_api_types::{QueueInfo, QueueMessage};
use tovuk_control::{HostFuture, QueueHost, QueueTarget};

pub(crate) struct RunnerQueues(pub Arc<tovuk_runner::ResourceHost>);

impl QueueHost for RunnerQueues {
    fn info<'a>(&'a self, target: &'a QueueTarget) -> HostFuture<'a, QueueInfo> {
        Box::pin(self.0.queue_info(&target.app, &target.resource_id, &target.binding, target.status))
    }

    fn peek<'a>(
        &'a self,
        target: &'a QueueTarget,
        dead_letter: bool,
        limit: usize,
    ) -> HostFuture<'a, Vec<QueueMessage>> {
        Box::pin(self.0.queue_peek(&target.resource_id, dead_letter, limit))
    }

    fn purge<'a>(&'a self, target: &'a QueueTarget, dead_letter: bool) -> HostFuture<'a, u64> {
        Box::pin(self.0.queue_purge(&target.resource_id, dead_letter))
    }

    fn redrive<'a>(&'a self, target: &'a QueueTarget) -> HostFuture<'a, u64> {
        Box::pin(self.0.queue_redrive(&target.resource_id))
    }
}
