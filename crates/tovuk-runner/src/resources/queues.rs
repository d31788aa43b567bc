//! Queues for the apps on this machine: their API served next to the KV and the object
//! storage (`127.0.0.1:9650` in an instance's network, or a port of the host's loopback), a
//! push dispatcher per queue with a consumer, and the operator's commands.

use super::{Gate, ResourceHost};
use crate::deliver::Consumers;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use tokio_util::sync::CancellationToken;
use tovuk_api_types::{
    ApiError, ErrorCode, QueueConsumer, QueueDelivery, QueueInfo, QueueMessage, ReleaseResource, ResourceStatus,
};
use tovuk_daemon::Shutdown;
use tovuk_manifest::{Manifest, ResourceKind};
use tovuk_queue::{Deliver, PushConfig, QueueConfig, Queues};

/// The queues this runner serves, and the dispatchers delivering them.
pub(super) struct QueueHost {
    pub(super) queues: Arc<Queues>,
    /// The push dispatcher of each queue with a consumer, by queue id.
    dispatchers: Mutex<HashMap<String, CancellationToken>>,
    /// Cancelled when the platform stops: every dispatcher's parent.
    stop: CancellationToken,
    /// The listener on the host's loopback, for instances on the host's network.
    host_port: OnceLock<Option<u16>>,
    /// How deliveries reach consumer apps (set once the runner is attached).
    consumers: OnceLock<Arc<Consumers>>,
}

impl QueueHost {
    /// Opens the queue store in `file`; its writer runs under `shutdown`.
    pub(super) fn open(file: &Path, shutdown: &Shutdown) -> QueueHost {
        let stop = CancellationToken::new();
        let (backend, writer) = tovuk_queue::SqliteBackend::open(file, stop.clone());
        let (waiting, stopping) = (shutdown.clone(), stop.clone());
        shutdown.spawn("queue-writer", async move {
            tokio::pin!(writer);
            tokio::select! {
                () = &mut writer => return Ok(()),
                () = waiting.wait() => stopping.cancel(),
            }
            // It finishes the group it holds, then ends.
            writer.await;
            Ok(())
        });
        QueueHost {
            queues: Queues::new(backend),
            dispatchers: Mutex::default(),
            stop,
            host_port: OnceLock::new(),
            consumers: OnceLock::new(),
        }
    }
}

fn internal(what: &str, error: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::Internal, format!("{what}: {error}"))
}

impl ResourceHost {
    /// The port of the queue API for an instance (its own network's, or the host's).
    pub(super) fn queue_port(&self, on_host_network: bool) -> Option<u16> {
        if on_host_network { self.queue_host_port() } else { Some(tovuk_types::resources::QUEUES_PORT) }
    }

    /// Serves the queue API on `listener` for `scope` (None: the host's loopback) until `stop`.
    pub(super) fn serve_queues(
        &self,
        listener: tokio::net::TcpListener,
        scope: Option<String>,
        stop: CancellationToken,
    ) {
        let gate = Arc::new(Gate {
            registry: self.registry.clone(),
            meters: self.meters.clone(),
            objects: self.objects.clone(),
        });
        let queues = self.queues.queues.clone();
        self.shutdown.spawn("queue-endpoint", async move {
            queues.serve(listener, scope, gate, stop).await;
            Ok(())
        });
    }

    fn queue_host_port(&self) -> Option<u16> {
        *self.queues.host_port.get_or_init(|| {
            let (listener, port) = super::loopback_listener("queues")?;
            self.serve_queues(listener, None, self.queues.stop.clone());
            Some(port)
        })
    }

    /// Sets how each queue of `app`'s release is delivered, as its tovuk.toml declares, and
    /// runs a dispatcher for each with a consumer; queues of the app the release no longer
    /// has stop being delivered (their messages stay).
    pub(crate) fn configure_queues(
        &self,
        runner: &Arc<crate::Runner>,
        app: &str,
        resources: &[ReleaseResource],
        manifest: &Manifest,
    ) {
        let host = &self.queues;
        let consumers = host.consumers.get_or_init(|| Arc::new(Consumers::new(Arc::downgrade(runner)))).clone();
        let queues: Vec<&ReleaseResource> =
            resources.iter().filter(|resource| resource.kind == ResourceKind::Queue.as_str()).collect();
        let id_of = |binding: &str| queues.iter().find(|queue| queue.binding == binding).map(|queue| queue.id.clone());
        for queue in &queues {
            let declared = manifest
                .resources()
                .iter()
                .find(|resource| resource.kind == ResourceKind::Queue && resource.binding == queue.binding)
                .and_then(|resource| resource.queue.clone());
            let settings = declared.unwrap_or(tovuk_manifest::QueueSettings {
                consumer: None,
                max_retries: tovuk_manifest::DEFAULT_MAX_RETRIES,
                dead_letter: None,
            });
            let push = settings.consumer.map(|consumer| PushConfig {
                consumer: consumer.app,
                path: consumer.path,
                batch_size: usize::try_from(consumer.batch_size).unwrap_or(1).max(1),
                max_wait: consumer.max_wait,
                timeout: consumer.delivery_timeout,
            });
            let pushed = push.is_some();
            host.queues.configure(QueueConfig {
                id: queue.id.clone(),
                app: app.to_owned(),
                binding: queue.binding.clone(),
                max_retries: settings.max_retries,
                dead_letter: settings.dead_letter.as_deref().and_then(id_of),
                dead_letter_binding: settings.dead_letter,
                push,
            });
            if pushed {
                self.dispatch(&queue.id, consumers.clone());
            } else {
                self.stop_dispatching(&queue.id);
            }
        }
        for gone in host.queues.configs_of(app) {
            if !queues.iter().any(|queue| queue.id == gone.id) {
                self.stop_dispatching(&gone.id);
                host.queues.unconfigure(&gone.id);
            }
        }
    }

    fn dispatch(&self, id: &str, consumers: Arc<Consumers>) {
        let mut dispatchers = self.queues.dispatchers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if dispatchers.get(id).is_some_and(|token| !token.is_cancelled()) {
            return;
        }
        let stop = self.queues.stop.child_token();
        dispatchers.insert(id.to_owned(), stop.clone());
        let (queues, id) = (self.queues.queues.clone(), id.to_owned());
        self.shutdown.spawn("queue-push", async move {
            queues.run_push(id, consumers, stop).await;
            Ok(())
        });
    }

    fn stop_dispatching(&self, id: &str) {
        let mut dispatchers = self.queues.dispatchers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(token) = dispatchers.remove(id) {
            token.cancel();
        }
    }

    /// The binding of a queue this runner was given, by its id.
    fn binding_of(&self, id: &str) -> Option<String> {
        self.registry.given.read().ok()?.get(id).map(|given| given.binding.clone())
    }

    /// `tovuk queue show`: where queue `resource_id` of `app` stands.
    pub async fn queue_info(
        &self,
        app: &str,
        resource_id: &str,
        binding: &str,
        status: ResourceStatus,
    ) -> Result<QueueInfo, ApiError> {
        let stats =
            self.queues.queues.stats(resource_id).await.map_err(|error| internal("cannot read the queue", error))?;
        let counts = stats.counts;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let now_ms = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
        let config = stats.config;
        let consumer = config.as_ref().and_then(|config| config.push.clone()).map(|push| {
            let available = self.queues.consumers.get().is_some_and(|consumers| consumers.available(&push.consumer));
            QueueConsumer {
                readiness: if available {
                    "ready".to_owned()
                } else {
                    format!(
                        "waiting: `{}` has no running instance, so deliveries wait (tovuk deploy --app {})",
                        push.consumer, push.consumer
                    )
                },
                app: push.consumer,
                path: push.path,
                batch_size: u32::try_from(push.batch_size).unwrap_or(u32::MAX),
                max_wait_ms: u64::try_from(push.max_wait.as_millis()).unwrap_or(u64::MAX),
                delivery_timeout_ms: u64::try_from(push.timeout.as_millis()).unwrap_or(u64::MAX),
            }
        });
        Ok(QueueInfo {
            app: app.to_owned(),
            binding: binding.to_owned(),
            id: resource_id.to_owned(),
            status,
            depth: counts.ready + counts.delayed,
            ready: counts.ready,
            delayed: counts.delayed,
            in_flight: counts.in_flight,
            dead_letter: counts.dead_letter,
            oldest_message_age_seconds: counts
                .oldest_enqueued_at
                .map(|at| u64::try_from(now_ms.saturating_sub(at) / 1000).unwrap_or(0)),
            size_bytes: counts.bytes,
            delivery: config
                .as_ref()
                .map(|config| if config.push.is_some() { QueueDelivery::Push } else { QueueDelivery::Pull }),
            consumer,
            max_retries: config.as_ref().map(|config| config.max_retries),
            dead_letter_queue: config.as_ref().and_then(|config| config.dead_letter_binding.clone()),
        })
    }

    /// `tovuk queue peek`: the first messages in delivery order (or the dead letters), leasing nothing.
    pub async fn queue_peek(
        &self,
        resource_id: &str,
        dead_letter: bool,
        limit: usize,
    ) -> Result<Vec<QueueMessage>, ApiError> {
        let stored = self
            .queues
            .queues
            .peek(resource_id, dead_letter, limit)
            .await
            .map_err(|error| internal("cannot read the queue", error))?;
        let time = |ms: i64| {
            chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        Ok(stored
            .into_iter()
            .map(|message| QueueMessage {
                id: format!("msg_{}", message.seq),
                queue: self.binding_of(&message.queue).unwrap_or(message.queue),
                attempts: message.attempts,
                body: serde_json::from_str(&message.body).unwrap_or(serde_json::Value::Null),
                enqueued_at: time(message.enqueued_at),
                visible_at: time(message.visible_at),
                in_flight: message.in_flight,
                last_error: message.last_error,
            })
            .collect())
    }

    /// `tovuk queue purge`: deletes the queue's messages (in flight too), or its dead letters.
    pub async fn queue_purge(&self, resource_id: &str, dead_letter: bool) -> Result<u64, ApiError> {
        self.queues
            .queues
            .purge(resource_id, dead_letter)
            .await
            .map_err(|error| internal("cannot purge the queue", error))
    }

    /// `tovuk queue redrive`: moves the queue's dead letters back into it, attempts reset.
    pub async fn queue_redrive(&self, resource_id: &str) -> Result<u64, ApiError> {
        self.queues.queues.redrive(resource_id).await.map_err(|error| internal("cannot redrive the queue", error))
    }

    /// Records what each queue holds, for `service show`.
    pub(super) async fn measure_queues(&self) {
        let given: Vec<(String, String)> = self.registry.given.read().map_or_else(
            |_| Vec::new(),
            |given| {
                given
                    .iter()
                    .filter(|(_, resource)| resource.kind == ResourceKind::Queue)
                    .map(|(id, resource)| (id.clone(), resource.app.clone()))
                    .collect()
            },
        );
        for (id, app) in given {
            if let Ok(stats) = self.queues.queues.stats(&id).await {
                self.meters.app(&app).set_resource_size(&id, stats.counts.bytes);
            }
        }
    }
}
