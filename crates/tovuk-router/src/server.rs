//! The accept loop, the serving threads and one HTTP/1.1 connection, with graceful shutdown.
//!
//! Connections are served on threads of the router's own, a few per core, like nginx's workers:
//! each runs a single-threaded runtime that drives its connections and has its own pool of app
//! connections, so a request and its exchange with the app run on one thread instead of waking
//! another thread at each hand-off between the client's connection and the app's. The accept
//! loop hands each new connection to a thread with about the fewest open ones (the only hand-off
//! between threads, once per connection). Route table, in-flight counts and meters stay shared.

use crate::pool::Pool;
use crate::router::{Entrance, Router};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;
use tovuk_daemon::{SHUTDOWN_DEADLINE, Shutdown};

/// Pause after a failed accept (typically out of file descriptors) so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Serving threads per core. More than one: the cores are shared with the apps and the other
/// roles, and a thread the kernel takes off its core stalls every connection it holds, so
/// smaller threads stall fewer of them and the kernel spreads them over the free cores. On
/// 2 cores (bench/router.sh) 1 per core gave about 23k req/s and a 5.5 ms p99, 2 per core
/// 32-35k and 4.3-4.7 ms, 4 per core 32.6k and 3.8 ms.
const THREADS_PER_CORE: usize = 4;
/// However many cores there are: past this, more threads only add memory and hand-offs.
const MAX_THREADS: usize = 64;

type Accepted = (std::net::TcpStream, SocketAddr);

/// What one serving thread keeps to itself.
pub(crate) struct Worker {
    /// Keep-alive connections to apps, driven by this thread's runtime.
    pub(crate) pool: Arc<Pool>,
    /// This thread's connections and tunnels; the thread ends once they have.
    pub(crate) tasks: TaskTracker,
}

/// A serving thread as the accept loop sees it.
struct Thread {
    connections: mpsc::UnboundedSender<Accepted>,
    /// Connections handed to the thread and not yet closed.
    open: Arc<AtomicUsize>,
    stopped: oneshot::Receiver<anyhow::Result<()>>,
}

/// Accepts on `listener` until `shutdown`, then waits for the serving threads to drain.
pub(crate) async fn serve(router: Router, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let count = (THREADS_PER_CORE * cores).min(MAX_THREADS);
    let mut threads = Vec::with_capacity(count);
    for index in 0..count {
        let (connections, incoming) = mpsc::unbounded_channel();
        let (stopped_tx, stopped) = oneshot::channel();
        let open = Arc::new(AtomicUsize::new(0));
        let (router, shutdown, thread_open) = (router.clone(), shutdown.clone(), Arc::clone(&open));
        std::thread::Builder::new().name(format!("tovuk-router-{index}")).spawn(move || {
            let _ = stopped_tx.send(run_thread(router, incoming, thread_open, shutdown));
        })?;
        threads.push(Thread { connections, open, stopped });
    }
    tracing::debug!(%address, threads = count, base_domain = router.base_domain(), "router accepting connections");
    loop {
        let accepted = tokio::select! {
            () = shutdown.wait() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, client_addr) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, %address, "failed to accept a connection");
                tokio::select! {
                    () = shutdown.wait() => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => continue,
                }
            }
        };
        // Deregistered from this runtime; the serving thread registers it with its own.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, %client_addr, "failed to hand a connection over");
                continue;
            }
        };
        let Some(thread) = pick(&threads) else { break };
        thread.open.fetch_add(1, Ordering::Relaxed);
        if thread.connections.send((stream, client_addr)).is_err() {
            thread.open.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!(%client_addr, "a router thread has stopped; connection dropped");
        }
    }
    drop(listener);
    let open: usize = threads.iter().map(|thread| thread.open.load(Ordering::Relaxed)).sum();
    tracing::info!(%address, in_flight_connections = open, "router stopped accepting; draining");
    let mut result = Ok(());
    for Thread { connections, stopped, .. } in threads {
        // With its sender gone the thread serves what it has, then stops.
        drop(connections);
        let stopped = stopped.await.unwrap_or_else(|_| Err(anyhow::anyhow!("a router thread panicked")));
        if let Err(error) = stopped {
            tracing::error!(error = format!("{error:#}"), %address, "router thread failed");
            result = Err(error);
        }
    }
    result
}

/// The first thread with at most one open connection more than the least busy one: under load
/// connections spread evenly, and when idle a client's successive connections land on the same
/// thread and so reuse its app connections.
fn pick(threads: &[Thread]) -> Option<&Thread> {
    let open = |thread: &Thread| thread.open.load(Ordering::Relaxed);
    let least = threads.iter().map(open).min()?;
    threads.iter().find(|thread| open(thread) <= least + 1)
}

/// One serving thread: its connections until the accept loop stops, then their drain.
fn run_thread(
    router: Router,
    mut incoming: mpsc::UnboundedReceiver<Accepted>,
    open: Arc<AtomicUsize>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let worker =
            Arc::new(Worker { pool: Pool::new(router.timeouts().upstream_connect), tasks: TaskTracker::new() });
        while let Some((stream, client_addr)) = incoming.recv().await {
            let stream = match TcpStream::from_std(stream) {
                Ok(stream) => stream,
                Err(error) => {
                    open.fetch_sub(1, Ordering::Relaxed);
                    tracing::warn!(%error, %client_addr, "failed to take a connection over");
                    continue;
                }
            };
            let connection = serve_connection(
                router.clone(),
                Arc::clone(&worker),
                stream,
                client_addr,
                Entrance::Public,
                shutdown.clone(),
            );
            let open = Arc::clone(&open);
            let connection = async move {
                let served = connection.await;
                open.fetch_sub(1, Ordering::Relaxed);
                served
            };
            shutdown.spawn("router connection", worker.tasks.track_future(connection));
        }
        let tasks = &worker.tasks;
        tasks.close();
        if tokio::time::timeout(SHUTDOWN_DEADLINE, tasks.wait()).await.is_err() {
            tracing::warn!(open_connections = tasks.len(), "router connections still open at the shutdown deadline");
        }
        Ok(())
    })
}

async fn serve_connection(
    router: Router,
    worker: Arc<Worker>,
    stream: TcpStream,
    client_addr: SocketAddr,
    entrance: Entrance,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    // Without TCP_NODELAY a kept-alive connection waits on delayed ACKs (~40 ms a round trip).
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, %client_addr, "failed to set TCP_NODELAY");
    }
    let header_read_timeout = router.timeouts().header_read;
    let service_shutdown = shutdown.clone();
    let entrance = Arc::new(entrance);
    let service = service_fn(move |request| {
        let router = router.clone();
        let worker = Arc::clone(&worker);
        let shutdown = service_shutdown.clone();
        let entrance = Arc::clone(&entrance);
        async move { Ok::<_, Infallible>(router.handle(request, client_addr, &entrance, &worker, &shutdown).await) }
    });
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_read_timeout).keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let mut draining = false;
    let result = loop {
        tokio::select! {
            result = connection.as_mut() => break result,
            // Finishes the request in progress, then closes instead of waiting for another.
            () = shutdown.wait(), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    };
    if let Err(error) = result {
        // Clients that vanish, send garbage or time out end here; the router is fine.
        tracing::debug!(%error, %client_addr, source = "downstream", "connection closed with an error");
    }
    Ok(())
}

/// Longest preamble line read, and how long it may take to arrive.
const PREAMBLE_MAX: usize = 512;
const PREAMBLE_WAIT: Duration = Duration::from_secs(5);

/// Serves the internal listener until `shutdown`: service-binding calls, on this runtime,
/// with one pool of app connections of its own. A connection that starts with a valid
/// caller preamble is that app's; one without is a caller the platform cannot place (an app
/// on the host's network), and its token alone decides.
pub(crate) async fn serve_internal(
    router: Router,
    listener: TcpListener,
    forwarder_secret: Arc<str>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let worker = Arc::new(Worker { pool: Pool::new(router.timeouts().upstream_connect), tasks: TaskTracker::new() });
    loop {
        let accepted = tokio::select! {
            () = shutdown.wait() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, client_addr) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "failed to accept an internal connection");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };
        let (router, connection_worker, secret, connection_shutdown) =
            (router.clone(), Arc::clone(&worker), Arc::clone(&forwarder_secret), shutdown.clone());
        let connection = async move {
            let mut stream = stream;
            let caller = match read_preamble(&mut stream, &secret).await {
                Ok(caller) => caller,
                Err(why) => {
                    tracing::info!(%client_addr, why, "internal connection refused");
                    return Ok(());
                }
            };
            let entrance = Entrance::Internal { caller: caller.map(Arc::from) };
            serve_connection(router, connection_worker, stream, client_addr, entrance, connection_shutdown).await
        };
        shutdown.spawn("internal connection", worker.tasks.track_future(connection));
    }
    worker.tasks.close();
    if tokio::time::timeout(SHUTDOWN_DEADLINE, worker.tasks.wait()).await.is_err() {
        tracing::warn!("internal connections still open at the shutdown deadline");
    }
    Ok(())
}

/// Consumes the caller preamble when the connection starts with one: `Some(app)` when it
/// carries the forwarders' secret, Err when it does not; `None` (nothing consumed) for a
/// plain HTTP request.
async fn read_preamble(stream: &mut TcpStream, secret: &str) -> Result<Option<String>, &'static str> {
    use tovuk_types::resources::CALLER_PREAMBLE;
    let deadline = tokio::time::Instant::now() + PREAMBLE_WAIT;
    let mut buffer = [0u8; PREAMBLE_MAX];
    let line_end = loop {
        let peeked = tokio::time::timeout_at(deadline, stream.peek(&mut buffer))
            .await
            .map_err(|_| "no request arrived in time")?
            .map_err(|_| "the connection failed")?;
        if peeked == 0 {
            return Err("closed before a request");
        }
        let seen = &buffer[..peeked];
        let prefix = CALLER_PREAMBLE.as_bytes();
        if !seen.starts_with(&prefix[..seen.len().min(prefix.len())]) {
            return Ok(None);
        }
        if let Some(end) = seen.windows(2).position(|pair| pair == b"\r\n") {
            break end;
        }
        if peeked == PREAMBLE_MAX {
            return Err("the caller preamble is too long");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let mut line = vec![0u8; line_end + 2];
    tokio::io::AsyncReadExt::read_exact(stream, &mut line).await.map_err(|_| "the connection failed")?;
    let text =
        std::str::from_utf8(&line[CALLER_PREAMBLE.len()..line_end]).map_err(|_| "a malformed caller preamble")?;
    let (app, proof) = text.split_once(' ').ok_or("a malformed caller preamble")?;
    // Compared without stopping at the first difference, so timing says nothing of it.
    let same =
        proof.len() == secret.len() && proof.bytes().zip(secret.bytes()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0;
    if !same {
        return Err("a caller preamble without the forwarders' secret");
    }
    Ok(Some(app.to_owned()))
}
