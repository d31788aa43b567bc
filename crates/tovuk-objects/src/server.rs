//! HTTP/1.1 serving: accept loop, per-connection tasks, graceful stop.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use s3s::config::{S3Config, StaticConfigProvider};
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::Gate;
use crate::auth::Access;
use crate::s3::Service;
use crate::store::Objects;

/// A client that sends no complete request head within this is disconnected (slowloris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long in-flight requests may finish after `stop`.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

impl Objects {
    /// Serves S3 over HTTP/1.1 on `listener` until `stop` is cancelled, then lets in-flight requests
    /// finish for up to 10 s. `scope` is the app whose private network `listener` is on (None: loopback).
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        scope: Option<String>,
        gate: Arc<dyn Gate>,
        stop: CancellationToken,
    ) {
        let service = build_service(self, scope, gate);
        let graceful = GracefulShutdown::new();
        let mut connections = JoinSet::new();
        tracing::info!(addr = ?listener.local_addr().ok(), "serving object storage");
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                accepted = accept(&listener) => {
                    let Some(stream) = accepted else { continue };
                    let connection = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_READ_TIMEOUT)
                        .serve_connection(TokioIo::new(stream), panic_to_500(service.clone()));
                    let connection = graceful.watch(connection);
                    connections.spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!(%error, "connection ended with an error");
                        }
                    });
                }
                // Reap finished connections so the set does not grow with every client.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        tracing::info!(in_flight = connections.len(), "stopping object storage");
        if tokio::time::timeout(DRAIN_DEADLINE, graceful.shutdown()).await.is_err() {
            tracing::warn!("object storage connections outlived the drain deadline; closing them");
        }
        // Dropping the set aborts whatever is left.
        connections.abort_all();
    }
}

fn build_service(objects: Arc<Objects>, scope: Option<String>, gate: Arc<dyn Gate>) -> S3Service {
    let access = Access { objects: Arc::clone(&objects), gate: Arc::clone(&gate), scope };
    let mut builder = S3ServiceBuilder::new(Service { objects, gate });
    builder.set_auth(access.clone());
    builder.set_access(access);
    builder.set_config(Arc::new(StaticConfigProvider::new(Arc::new(config()))));
    builder.build()
}

/// s3s reads a browser-form upload (POST Object) into memory before any access check, so a form's
/// file part is refused outright (`EntityTooLarge`) and its fields are kept small: apps upload with
/// PUT or presigned PUT URLs instead.
fn config() -> S3Config {
    let mut config = S3Config::default();
    config.post_object_max_file_size = 0;
    config.form_max_field_size = 16 * 1024;
    config.form_max_fields_size = 64 * 1024;
    config.form_max_parts = 64;
    config
}

async fn accept(listener: &TcpListener) -> Option<tokio::net::TcpStream> {
    match listener.accept().await {
        Ok((stream, _)) => {
            let _ = stream.set_nodelay(true);
            Some(stream)
        }
        Err(error) => {
            // Typically EMFILE: back off instead of spinning.
            tracing::warn!(%error, "failed to accept a connection");
            tokio::time::sleep(Duration::from_millis(100)).await;
            None
        }
    }
}

type Response = hyper::Response<s3s::Body>;

/// Answers a request whose handler panicked with a 500 instead of dropping the connection.
fn panic_to_500(
    service: S3Service,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = Response,
    Error = s3s::HttpError,
    Future = futures_util::future::BoxFuture<'static, Result<Response, s3s::HttpError>>,
> + Clone {
    hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let service = service.clone();
        async move {
            let request = request.map(s3s::Body::from);
            match AssertUnwindSafe(service.call(request)).catch_unwind().await {
                Ok(result) => result,
                Err(_) => {
                    tracing::error!("object storage request handler panicked");
                    let mut response = hyper::Response::new(s3s::Body::empty());
                    *response.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
                    Ok(response)
                }
            }
        }
        .boxed()
    })
}
