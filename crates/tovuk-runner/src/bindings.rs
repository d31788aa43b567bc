//! Service bindings as an app's instances see them: `$<B>_URL` is `http://<service>.internal`,
//! which the instance's hosts file points at its own loopback, where a forwarder the
//! platform runs in its network carries the call to the router's internal listener, saying
//! which app it comes from. On a machine without namespaces the app reaches the internal
//! listener on the host's loopback itself, and the router has only the token to go by.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use tovuk_daemon::Shutdown;
use tovuk_types::resources::{BINDINGS_PORT, CALLER_PREAMBLE};

/// Where the router's internal listener is, and the secret its forwarders prove themselves with.
#[derive(Clone)]
pub(crate) struct Internal {
    pub addr: SocketAddr,
    pub secret: Arc<str>,
}

/// The host name a service is called at.
pub(crate) fn service_host(service: &str) -> String {
    format!("{service}.internal")
}

/// `$<B>_URL` of a binding to `service`.
pub(crate) fn service_url(service: &str, internal: &Internal, on_host_network: bool) -> String {
    if on_host_network {
        format!("http://{}:{}", service_host(service), internal.addr.port())
    } else {
        format!("http://{}", service_host(service))
    }
}

/// The hosts file of an instance that calls `services`: the usual loopback names, and each
/// service's name on the loopback.
pub(crate) fn hosts_file(services: &[String]) -> String {
    let mut text = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for host in services {
        text.push_str(&format!("127.0.0.1\t{host}\n"));
    }
    text
}

/// Forwards connections to `http://<service>.internal` inside the network `netns` of one of
/// `app`'s instances to the router's internal listener, each first saying it comes from
/// `app`, until `stop` is cancelled.
pub(crate) async fn forward_in(
    netns: &Path,
    app: &str,
    internal: &Internal,
    stop: CancellationToken,
    shutdown: &Shutdown,
) -> std::io::Result<()> {
    let listener = tovuk_sandbox::network::listen_in(netns, SocketAddr::from(([127, 0, 0, 1], BINDINGS_PORT))).await?;
    let preamble = format!("{CALLER_PREAMBLE}{app} {}\r\n", internal.secret);
    let (target, task_shutdown) = (internal.addr, shutdown.clone());
    shutdown.spawn("binding-forwarder", async move {
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = task_shutdown.wait() => return Ok(()),
                accepted = listener.accept() => accepted,
            };
            let Ok((mut inside, _)) = accepted else { continue };
            let (preamble, stop, call_shutdown) = (preamble.clone(), stop.clone(), task_shutdown.clone());
            task_shutdown.spawn("binding-call", async move {
                let Ok(mut router) = tokio::net::TcpStream::connect(target).await else { return Ok(()) };
                if router.write_all(preamble.as_bytes()).await.is_err() {
                    return Ok(());
                }
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inside, &mut router) => {}
                    () = stop.cancelled() => {}
                    () = call_shutdown.wait() => {}
                }
                Ok(())
            });
        }
    });
    Ok(())
}
