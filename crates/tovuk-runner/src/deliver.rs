//! Push delivery's way into consumer apps: a POST to one of the app's serving instances,
//! in turn, inside its own network (as health probes reach it), never through the router.
//! State calls take the same way in (`resources::states`).

use crate::Runner;
use crate::instance::{Instance, Life};
use http_body_util::BodyExt;
use std::sync::Weak;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tovuk_queue::{Delivery, MAX_ANSWER_BYTES};

/// The consumer apps this runner serves.
pub(crate) struct Consumers {
    pub runner: Weak<Runner>,
    /// Round robin over an app's instances.
    pub turn: AtomicUsize,
}

impl Consumers {
    pub fn new(runner: Weak<Runner>) -> Consumers {
        Consumers { runner, turn: AtomicUsize::new(0) }
    }

    /// The instances of `app`'s current deploy that run its `[run]` command and are up
    /// (`[[processes]]` have no listener of their own).
    pub fn instances(&self, app: &str) -> Vec<Instance> {
        let Some(runner) = self.runner.upgrade() else { return Vec::new() };
        runner.serving.lock().map_or_else(
            |_| Vec::new(),
            |serving| {
                serving
                    .get(app)
                    .into_iter()
                    .flatten()
                    .filter(|instance| instance.launch.process.is_none())
                    .filter(|instance| matches!(instance.life(), Life::Running { .. }))
                    .cloned()
                    .collect()
            },
        )
    }
}

#[async_trait::async_trait]
impl tovuk_queue::Deliver for Consumers {
    fn available(&self, app: &str) -> bool {
        !self.instances(app).is_empty()
    }

    async fn post(
        &self,
        app: &str,
        path: &str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Delivery {
        let instances = self.instances(app);
        if instances.is_empty() {
            return Delivery::Unavailable;
        }
        let instance = &instances[self.turn.fetch_add(1, Ordering::Relaxed) % instances.len()];
        match tokio::time::timeout(timeout, post_once(instance, path, headers, body)).await {
            Ok(Ok((status, body))) => Delivery::Answered { status, body },
            Ok(Err(why)) => Delivery::Failed(why),
            Err(_) => Delivery::Failed(format!(
                "the consumer did not answer within {} (delivery_timeout)",
                tovuk_manifest::format_duration(timeout)
            )),
        }
    }
}

async fn post_once(
    instance: &Instance,
    path: &str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>), String> {
    let addr = instance.addr();
    let netns = instance.netns();
    // Never the host's loopback for an instance with a network of its own.
    if netns.is_none() && instance.launch.network != tovuk_sandbox::Network::Host {
        return Err("the consumer's sandbox is starting".to_owned());
    }
    let stream = tovuk_sandbox::network::connect(netns.as_deref(), addr)
        .await
        .map_err(|error| format!("cannot connect to the consumer on $PORT ({}): {error}", instance.launch.port))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|error| format!("the consumer did not take the connection: {error}"))?;
    let host = if instance.launch.host.is_empty() { addr.to_string() } else { instance.launch.host.clone() };
    let mut request = hyper::Request::post(path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, "tovuk-queue");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let request = request
        .body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
        .map_err(|error| format!("{path} is not a path a delivery can be sent to: {error}"))?;
    // The connection is driven beside the request, here: no task per delivery.
    let exchange = async {
        let response = sender.send_request(request).await.map_err(|error| format!("the consumer hung up: {error}"))?;
        let status = response.status().as_u16();
        let body = match http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES).collect().await {
            Ok(collected) => collected.to_bytes().to_vec(),
            // A success whose retry list cannot be read must not ack what it may list.
            Err(error) if (200..300).contains(&status) => {
                return Err(format!(
                    "the consumer answered {status} but its body could not be read whole (at most {} KiB): {error}",
                    MAX_ANSWER_BYTES / 1024
                ));
            }
            Err(_) => Vec::new(),
        };
        Ok::<_, String>((status, body))
    };
    tokio::pin!(exchange, connection);
    tokio::select! {
        answer = &mut exchange => answer,
        // The connection ended (an app that closes after answering): the answer, if any, is in.
        _ = &mut connection => exchange.await,
    }
}
