//! Keep-alive HTTP/1.1 connections to app instances, kept per upstream address. Each serving
//! thread has its own pool, so the connection tasks it spawns run on that thread.
//!
//! A request takes an idle connection that is ready for another exchange, or opens one; the
//! connection goes back when the response body has been read to its end. No task, timer or
//! connecting state runs per request: the hand-off is one short lock each way.

use crate::body::DownstreamBody;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

/// How long an idle connection to an app is kept; apps commonly close theirs after 60 s+.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often connections idle past `IDLE_TIMEOUT` (or closed by the app) are dropped.
const REAP_INTERVAL: Duration = Duration::from_secs(10);

type Sender = SendRequest<DownstreamBody>;

/// Why an exchange got no response.
#[derive(Debug)]
pub(crate) enum ExchangeError {
    /// The TCP connect did not complete within the connect timeout.
    ConnectTimedOut,
    /// The TCP connect failed (refused, unreachable, out of descriptors).
    Connect(std::io::Error),
    /// The connection failed while the request was sent or the response read.
    Http(hyper::Error),
}

/// Where a new connection to an instance is made: its address, in its network namespace
/// (the host's when `None`). Addresses are unique across namespaces, so they key the pool.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dial<'a> {
    pub addr: SocketAddr,
    pub netns: Option<&'a std::path::Path>,
}

/// Idle connections per upstream.
pub(crate) struct Pool {
    idle: Mutex<HashMap<SocketAddr, Vec<Idle>>>,
    connect_timeout: Duration,
    reaper_started: AtomicBool,
}

struct Idle {
    sender: Sender,
    since: Instant,
}

/// A connection in use for one exchange; `release` hands it back for the next one.
pub(crate) struct Checkout {
    sender: Sender,
    upstream: SocketAddr,
    pool: Arc<Pool>,
}

impl Checkout {
    /// Returns the connection to the pool; call only once the response body has ended.
    /// A connection the app closed meanwhile is dropped instead.
    pub(crate) fn release(self) {
        if self.sender.is_closed() {
            return;
        }
        let Checkout { sender, upstream, pool } = self;
        pool.put(upstream, sender);
    }
}

impl Pool {
    pub(crate) fn new(connect_timeout: Duration) -> Arc<Self> {
        Arc::new(Pool { idle: Mutex::default(), connect_timeout, reaper_started: AtomicBool::new(false) })
    }

    /// Sends `request` to `upstream` on an idle connection, or on a new one. A request that an
    /// idle connection closed before it was written (the app timed the connection out just then)
    /// is sent again on a new connection, as nothing of it reached the app.
    pub(crate) async fn send(
        self: &Arc<Self>,
        dial: Dial<'_>,
        mut request: Request<DownstreamBody>,
    ) -> Result<(Response<Incoming>, Checkout), ExchangeError> {
        let upstream = dial.addr;
        if let Some(mut sender) = self.take(upstream) {
            match sender.try_send_request(request).await {
                Ok(response) => return Ok((response, self.checkout(upstream, sender))),
                Err(mut error) => match error.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(ExchangeError::Http(error.into_error())),
                },
            }
        }
        let mut sender = self.connect(upstream, dial.netns).await?;
        let response = sender.send_request(request).await.map_err(ExchangeError::Http)?;
        Ok((response, self.checkout(upstream, sender)))
    }

    fn checkout(self: &Arc<Self>, upstream: SocketAddr, sender: Sender) -> Checkout {
        Checkout { sender, upstream, pool: Arc::clone(self) }
    }

    /// The most recently used idle connection that is ready, dropping closed and stale ones on
    /// the way. One still finishing its last exchange is left for a later request.
    fn take(&self, upstream: SocketAddr) -> Option<Sender> {
        let mut idle = self.lock();
        let connections = idle.get_mut(&upstream)?;
        let now = Instant::now();
        let mut idx = connections.len();
        while idx > 0 {
            idx -= 1;
            let connection = &connections[idx];
            if connection.sender.is_closed() || now.duration_since(connection.since) >= IDLE_TIMEOUT {
                connections.swap_remove(idx);
            } else if connection.sender.is_ready() {
                return Some(connections.swap_remove(idx).sender);
            }
        }
        None
    }

    fn put(self: &Arc<Self>, upstream: SocketAddr, sender: Sender) {
        self.lock().entry(upstream).or_default().push(Idle { sender, since: Instant::now() });
        self.start_reaper();
    }

    /// Connections to an instance that gets no more traffic (replaced, stopped) are found by
    /// no `take`; a task started with the first idle connection drops them.
    fn start_reaper(self: &Arc<Self>) {
        if self.reaper_started.load(Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        if self.reaper_started.swap(true, Ordering::Relaxed) {
            return;
        }
        runtime.spawn(reap(Arc::downgrade(self)));
    }

    async fn connect(&self, upstream: SocketAddr, netns: Option<&std::path::Path>) -> Result<Sender, ExchangeError> {
        let connecting = tovuk_sandbox::network::connect(netns, upstream);
        let stream = match tokio::time::timeout(self.connect_timeout, connecting).await {
            Err(_elapsed) => return Err(ExchangeError::ConnectTimedOut),
            Ok(Err(error)) => return Err(ExchangeError::Connect(error)),
            Ok(Ok(stream)) => stream,
        };
        // Same reason as on accepted sockets: small writes must not wait for delayed ACKs.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, %upstream, "failed to set TCP_NODELAY");
        }
        let (sender, connection) =
            http1::Builder::new().handshake(TokioIo::new(stream)).await.map_err(ExchangeError::Http)?;
        tokio::spawn(async move {
            // Upgrades hand the socket to a tunnel; this ends when the app or the router closes.
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%error, %upstream, source = "upstream", "app connection closed with an error");
            }
        });
        Ok(sender)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Vec<Idle>>> {
        // Each update is one statement, so a poisoned map is still consistent.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Drops idle connections that are stale or closed, until the pool itself is dropped.
async fn reap(pool: Weak<Pool>) {
    let mut interval = tokio::time::interval(REAP_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        let now = Instant::now();
        pool.lock().retain(|_, connections| {
            connections.retain(|connection| {
                !connection.sender.is_closed() && now.duration_since(connection.since) < IDLE_TIMEOUT
            });
            !connections.is_empty()
        });
    }
}
