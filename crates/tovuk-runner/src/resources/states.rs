//! State objects for the apps on this machine: their API served next to the queues
//! (`127.0.0.1:9660` in an instance's network, or a port of the host's loopback), each call
//! delivered to one of the owning app's serving instances inside its own network, and each
//! storage operation admitted against the app's caps.

use super::{Gate, ResourceHost};
use crate::deliver::Consumers;
use http_body_util::BodyExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;
use tovuk_daemon::Shutdown;
use tovuk_manifest::ResourceKind;
use tovuk_meter::ResourceMeter;
use tovuk_state::{CallOutcome, CallRequest, Opened, States};

/// The most an instance's answer to a call may hold.
const MAX_ANSWER_BYTES: usize = tovuk_state::MAX_CALL_BODY_BYTES;

/// The State objects this runner serves.
pub(super) struct StateHost {
    pub(super) states: Arc<States>,
    /// Cancelled when the platform stops.
    stop: CancellationToken,
    /// The listener on the host's loopback, for instances on the host's network.
    host_port: OnceLock<Option<u16>>,
    /// How calls reach the owning apps' instances (set once the runner is attached).
    pub(super) instances: OnceLock<Arc<Consumers>>,
}

impl StateHost {
    /// Opens the State store in `file`; it closes when the platform stops.
    pub(super) async fn open(file: &Path, shutdown: &Shutdown) -> anyhow::Result<StateHost> {
        let states = States::open(file).await?;
        let stop = CancellationToken::new();
        let (waiting, stopping, closing) = (shutdown.clone(), stop.clone(), states.clone());
        shutdown.spawn("state-store", async move {
            waiting.wait().await;
            stopping.cancel();
            closing.close().await;
            Ok(())
        });
        Ok(StateHost { states, stop, host_port: OnceLock::new(), instances: OnceLock::new() })
    }
}

impl ResourceHost {
    /// The port of the State API for an instance (its own network's, or the host's).
    pub(super) fn state_port(&self, on_host_network: bool) -> Option<u16> {
        if on_host_network { self.state_host_port() } else { Some(tovuk_types::resources::STATE_PORT) }
    }

    /// Serves the State API on `listener` for `scope` (None: the host's loopback) until `stop`.
    pub(super) fn serve_states(
        &self,
        listener: tokio::net::TcpListener,
        scope: Option<String>,
        stop: CancellationToken,
    ) {
        let Some(instances) = self.runner().map(|runner| self.state_instances(&runner)) else {
            tracing::warn!("the State API is not served: the runner is not running");
            return;
        };
        let gate = Arc::new(Gate {
            registry: self.registry.clone(),
            meters: self.meters.clone(),
            objects: self.objects.clone(),
        });
        let states = self.states.states.clone();
        self.shutdown.spawn("state-endpoint", async move {
            states.serve(listener, scope, gate, instances, stop).await;
            Ok(())
        });
    }

    fn state_instances(&self, runner: &Arc<crate::Runner>) -> Arc<Consumers> {
        self.states.instances.get_or_init(|| Arc::new(Consumers::new(Arc::downgrade(runner)))).clone()
    }

    fn state_host_port(&self) -> Option<u16> {
        *self.states.host_port.get_or_init(|| {
            let (listener, port) = super::loopback_listener("State objects")?;
            self.serve_states(listener, None, self.states.stop.clone());
            Some(port)
        })
    }

    /// What each State resource of the runner holds, for metering and `service show`.
    pub(super) async fn measure_states(&self) {
        for (id, app) in self.registry.of_kind(ResourceKind::State) {
            if let Ok(stats) = self.states.states.stats(&id).await {
                self.meters.app(&app).set_resource_size(&id, stats.bytes);
            }
        }
    }
}

impl tovuk_state::Gate for Gate {
    fn open(&self, scope: Option<&str>, id: &str, token: &str) -> Option<Opened> {
        let (caller, owner, owned) = self.registry.open_state(scope, id, token)?;
        // Objects of an app that does not run here: its calls find no instance (503), in a
        // line of their own.
        let resource_id = owned.unwrap_or_else(|| format!("{id}.unserved"));
        Some(Opened { owner, resource_id, caller })
    }

    fn admit(&self, app: &str, id: &str, reads: u64, writes: u64) -> Result<(), String> {
        Gate::admit(self, app, id, ResourceMeter::StateWrites, writes)?;
        Gate::admit(self, app, id, ResourceMeter::StateReads, reads)
    }
}

#[async_trait::async_trait]
impl tovuk_state::Instances for Consumers {
    async fn call(&self, app: &str, request: CallRequest) -> CallOutcome {
        let instances = self.instances(app);
        if instances.is_empty() {
            return CallOutcome::NotSent(format!("no instance of `{app}` is running on this machine"));
        }
        let instance = &instances[self.turn.fetch_add(1, Ordering::Relaxed) % instances.len()];
        let timeout = request.timeout;
        match tokio::time::timeout(timeout, call_once(instance, request)).await {
            Ok(outcome) => outcome,
            Err(_) => CallOutcome::Interrupted(format!(
                "the instance did not answer within {}",
                tovuk_manifest::format_duration(timeout)
            )),
        }
    }
}

/// Sends one call to `instance`: NotSent until its first byte could have left, Interrupted after.
async fn call_once(instance: &crate::instance::Instance, call: CallRequest) -> CallOutcome {
    let addr = instance.addr();
    let netns = instance.netns();
    // Never the host's loopback for an instance with a network of its own.
    if netns.is_none() && instance.launch.network != tovuk_sandbox::Network::Host {
        return CallOutcome::NotSent("the instance's sandbox is starting".to_owned());
    }
    let stream = match tovuk_sandbox::network::connect(netns.as_deref(), addr).await {
        Ok(stream) => stream,
        Err(error) => return CallOutcome::NotSent(format!("cannot connect to the instance on $PORT: {error}")),
    };
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) =
        match hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(error) => return CallOutcome::NotSent(format!("the instance did not take the connection: {error}")),
        };
    let host = if instance.launch.host.is_empty() { addr.to_string() } else { instance.launch.host.clone() };
    let mut builder = hyper::Request::builder()
        .method(call.method)
        .uri(call.path_and_query.as_str())
        .header(hyper::header::HOST, host);
    for (name, value) in &call.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let request = match builder.body(http_body_util::Full::new(call.body)) {
        Ok(request) => request,
        Err(error) => return CallOutcome::NotSent(format!("the call cannot be sent as HTTP: {error}")),
    };
    let exchange = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| format!("the instance ended the connection during the call: {error}"))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
            .collect();
        let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|error| format!("the instance's answer could not be read: {error}"))?
            .to_bytes()
            .to_vec();
        Ok::<_, String>(CallOutcome::Answered { status, headers, body })
    };
    tokio::pin!(exchange, connection);
    let answer = tokio::select! {
        answer = &mut exchange => answer,
        // The connection ended (an app that closes after answering): the answer, if any, is in.
        _ = &mut connection => exchange.await,
    };
    answer.unwrap_or_else(CallOutcome::Interrupted)
}
