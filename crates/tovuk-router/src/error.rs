//! Proxy failures, classified by who caused them: that decides the status and the log level.

use crate::body::DownstreamBodyError;
use crate::pool::ExchangeError;
use hyper::StatusCode;
use std::net::SocketAddr;
use std::time::Duration;

/// Who a failed exchange is blamed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The app instance: refused, reset, timed out or answered nonsense.
    Upstream,
    /// The client: went away or sent a broken body.
    Downstream,
    /// The router itself.
    Internal,
}

impl ErrorSource {
    /// The stable name logged in the `source` field.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorSource::Upstream => "upstream",
            ErrorSource::Downstream => "downstream",
            ErrorSource::Internal => "internal",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    #[error("failed to connect to upstream `{upstream}`")]
    UpstreamRefused {
        upstream: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("upstream `{upstream}` did not answer within {timeout:?}")]
    UpstreamTimeout { upstream: SocketAddr, timeout: Duration },
    #[error("exchange with upstream `{upstream}` failed")]
    UpstreamFailed {
        upstream: SocketAddr,
        #[source]
        source: hyper::Error,
    },
    #[error("upstream `{upstream}` switched protocols on a request that asked for no upgrade")]
    UnexpectedUpgrade { upstream: SocketAddr },
    #[error("client request body failed while it was sent upstream")]
    DownstreamBody {
        #[source]
        source: hyper::Error,
    },
    #[error("failed to build the upstream request")]
    UpstreamRequest {
        #[source]
        source: hyper::http::Error,
    },
}

impl ProxyError {
    /// Sorts a failed exchange: the client's own body failing is the client's fault, a connect
    /// timeout is a timeout, any other connect failure is a refusal.
    pub(crate) fn from_exchange(upstream: SocketAddr, connect_timeout: Duration, error: ExchangeError) -> ProxyError {
        match error {
            ExchangeError::ConnectTimedOut => ProxyError::UpstreamTimeout { upstream, timeout: connect_timeout },
            ExchangeError::Connect(error) if error.kind() == std::io::ErrorKind::TimedOut => {
                ProxyError::UpstreamTimeout { upstream, timeout: connect_timeout }
            }
            ExchangeError::Connect(source) => ProxyError::UpstreamRefused { upstream, source },
            ExchangeError::Http(source) if error_chain(&source).any(|cause| cause.is::<DownstreamBodyError>()) => {
                ProxyError::DownstreamBody { source }
            }
            ExchangeError::Http(source) => ProxyError::UpstreamFailed { upstream, source },
        }
    }

    pub(crate) fn error_source(&self) -> ErrorSource {
        match self {
            ProxyError::UpstreamRefused { .. }
            | ProxyError::UpstreamTimeout { .. }
            | ProxyError::UpstreamFailed { .. }
            | ProxyError::UnexpectedUpgrade { .. } => ErrorSource::Upstream,
            ProxyError::DownstreamBody { .. } => ErrorSource::Downstream,
            ProxyError::UpstreamRequest { .. } => ErrorSource::Internal,
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ProxyError::UpstreamRefused { .. }
            | ProxyError::UpstreamFailed { .. }
            | ProxyError::UnexpectedUpgrade { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::DownstreamBody { .. } => StatusCode::BAD_REQUEST,
            ProxyError::UpstreamRequest { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client is told, after `app `x``: short, and without internals.
    pub(crate) fn public_summary(&self) -> &'static str {
        match self {
            ProxyError::UpstreamRefused { .. } => "is not accepting connections",
            ProxyError::UpstreamTimeout { .. } => "did not answer in time",
            ProxyError::UpstreamFailed { .. } | ProxyError::UnexpectedUpgrade { .. } => {
                "closed the connection or sent an invalid response"
            }
            ProxyError::DownstreamBody { .. } => "did not receive the whole request body",
            ProxyError::UpstreamRequest { .. } => "could not be reached because of a router error",
        }
    }
}

/// `error` and each of its causes in turn.
fn error_chain<'error>(
    error: &'error (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'error (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |cause| cause.source())
}

/// The full chain on one line, for logs: `a: b: c`.
pub(crate) fn display_chain(error: &(dyn std::error::Error + 'static)) -> String {
    error_chain(error).map(ToString::to_string).collect::<Vec<_>>().join(": ")
}
