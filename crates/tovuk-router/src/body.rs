//! Body types: what the router answers with, and the two proxied streams it wraps.

use crate::in_flight::InFlightGuard;
use crate::pool::Checkout;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every response body the router sends: its own text, a file stream, or an app's stream.
pub(crate) type RouterBody = UnsyncBoxBody<Bytes, BoxError>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> RouterBody {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

pub(crate) fn empty() -> RouterBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// When the request body last moved: the upstream timeout counts idle time, not the
/// whole exchange, so a long upload that keeps flowing is never cut off.
#[derive(Debug)]
pub(crate) struct Activity {
    base: std::time::Instant,
    last_ms: std::sync::atomic::AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> std::sync::Arc<Self> {
        std::sync::Arc::new(Activity { base: std::time::Instant::now(), last_ms: std::sync::atomic::AtomicU64::new(0) })
    }

    fn touch(&self) {
        let now = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(now, std::sync::atomic::Ordering::Relaxed);
    }

    /// How long since the body last moved (or since the exchange began).
    pub(crate) fn idle(&self) -> std::time::Duration {
        let last = std::time::Duration::from_millis(self.last_ms.load(std::sync::atomic::Ordering::Relaxed));
        self.base.elapsed().saturating_sub(last)
    }
}

/// The client's request body on its way to the app, streamed frame by frame.
/// Its errors get their own type so a failed exchange can be blamed on the client.
#[derive(Debug)]
pub(crate) struct DownstreamBody(pub(crate) Incoming, pub(crate) std::sync::Arc<Activity>);

/// The client stopped sending its request body (disconnect, malformed chunking).
#[derive(Debug, thiserror::Error)]
#[error("client request body failed")]
pub(crate) struct DownstreamBodyError(#[source] hyper::Error);

impl Body for DownstreamBody {
    type Data = Bytes;
    type Error = DownstreamBodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.0).poll_frame(cx).map_err(DownstreamBodyError);
        if polled.is_ready() {
            self.1.touch();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

/// The app's response body on its way to the client. It holds the in-flight guard, so the
/// upstream counts as busy until the last byte is sent or the client goes away, and the
/// connection it arrives on, which goes back to the pool once the body has ended.
pub(crate) struct UpstreamBody {
    inner: Incoming,
    /// Taken when the body ends; a body dropped before its end takes its connection down.
    connection: Option<Checkout>,
    _in_flight: InFlightGuard,
    request_id: String,
    app: String,
    /// Counts the bytes sent as the app's egress.
    meter: Option<std::sync::Arc<tovuk_meter::AppMeter>>,
}

impl UpstreamBody {
    pub(crate) fn new(
        inner: Incoming,
        connection: Checkout,
        in_flight: InFlightGuard,
        request_id: String,
        app: String,
        meter: Option<std::sync::Arc<tovuk_meter::AppMeter>>,
    ) -> Self {
        Self { inner, connection: Some(connection), _in_flight: in_flight, request_id, app, meter }
    }

    /// The whole response has been read, so the connection can carry the next exchange.
    fn release_connection(&mut self) {
        if let Some(connection) = self.connection.take() {
            connection.release();
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // hyper stops polling a body whose length is used up, so the end is often seen here.
        if self.inner.is_end_stream() {
            self.release_connection();
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Err(error))) => {
                // The status line is already sent, so the only remedy left is to cut the
                // connection (hyper does that on this error); the log line says why.
                tracing::warn!(%error, request_id = %self.request_id, app = %self.app, source = "upstream", "app response body failed");
                Poll::Ready(Some(Err(Box::new(error))))
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(meter), Some(data)) = (&self.meter, frame.data_ref()) {
                    meter.add_egress(data.len() as u64);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                self.release_connection();
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
