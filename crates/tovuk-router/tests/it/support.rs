//! Test harness: a router on a loopback port, hyper backends, a one-shot client, raw sockets.

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Bytes, Incoming};
use hyper::header::{HOST, HeaderMap};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tovuk_daemon::Shutdown;
use tovuk_router::{Route, RouteTable, Router, Target, Timeouts};

/// How long any wait in these tests may take before it counts as a failure.
pub const DEADLINE: Duration = Duration::from_secs(10);

pub type TestBody = UnsyncBoxBody<Bytes, hyper::Error>;

pub fn text_body(text: impl Into<Bytes>) -> TestBody {
    Full::new(text.into()).map_err(|never| match never {}).boxed_unsync()
}

pub fn empty_body() -> TestBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A router serving on its own loopback port; dropping it shuts it down.
pub struct TestRouter {
    pub router: Router,
    pub addr: SocketAddr,
    pub shutdown: Shutdown,
}

impl TestRouter {
    pub async fn start() -> TestRouter {
        TestRouter::start_with(Timeouts::default()).await
    }

    pub async fn start_with(timeouts: Timeouts) -> TestRouter {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind router listener");
        let addr = listener.local_addr().expect("router listener address");
        let router = Router::with_timeouts("localhost", timeouts);
        let shutdown = Shutdown::new();
        let (serving_router, serving_shutdown) = (router.clone(), shutdown.clone());
        shutdown.spawn("router", async move { serving_router.serve(listener, serving_shutdown).await });
        TestRouter { router, addr, shutdown }
    }

    /// The `Host` a browser would send for `app` on this router's port.
    pub fn host(&self, app: &str) -> String {
        format!("{app}.localhost:{}", self.addr.port())
    }

    /// Publishes a table of `(app, target)` routes, each with deploy id `dep_<app>`.
    pub fn publish(&self, routes: &[(&str, Target)]) {
        let route_table: RouteTable = routes
            .iter()
            .map(|(app, target)| Route::new((*app).to_owned(), format!("dep_{app}"), target.clone(), None))
            .collect();
        self.router.publish(route_table);
    }

    pub async fn get(&self, host: &str, path: &str) -> (StatusCode, HeaderMap, String) {
        let request = Request::get(path).header(HOST, host).body(empty_body()).expect("request builds");
        let response = send(self.addr, request).await;
        let (parts, body) = response.into_parts();
        (parts.status, parts.headers, read_text(body).await)
    }
}

impl Drop for TestRouter {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// Serves `handler` on a fresh loopback port for the rest of the test.
pub async fn spawn_backend<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<TestBody>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind backend listener");
    let addr = listener.local_addr().expect("backend address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(request).await) }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).with_upgrades().await;
            });
        }
    });
    addr
}

/// A backend that always answers 200 with `text`.
pub async fn spawn_text_backend(text: &'static str) -> SocketAddr {
    spawn_backend(move |_request| async move { Response::new(text_body(text)) }).await
}

/// Sends one request on a fresh connection.
pub async fn send<B>(addr: SocketAddr, request: Request<B>) -> Response<Incoming>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.expect("connect to router");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("client handshake");
    tokio::spawn(connection);
    tokio::time::timeout(DEADLINE, sender.send_request(request))
        .await
        .expect("router answers before the deadline")
        .expect("router answers")
}

pub async fn read_bytes(body: Incoming) -> Bytes {
    tokio::time::timeout(DEADLINE, body.collect())
        .await
        .expect("body ends before the deadline")
        .expect("body reads")
        .to_bytes()
}

pub async fn read_text(body: Incoming) -> String {
    String::from_utf8(read_bytes(body).await.to_vec()).expect("body is UTF-8")
}

/// Writes `request` as is and reads until the router closes the connection.
pub async fn raw_exchange(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect to router");
    stream.write_all(request.as_bytes()).await.expect("write raw request");
    let mut answer = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer))
        .await
        .expect("router closes before the deadline")
        .expect("read raw answer");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Polls `condition` until it holds; panics naming `what` at the deadline.
pub async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let started = tokio::time::Instant::now();
    while !condition() {
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// An address where nothing listens: bound, then released.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind probe listener");
    listener.local_addr().expect("probe address")
}

pub fn proxy(upstream: SocketAddr) -> Target {
    Target::Proxy { upstreams: vec![tovuk_router::Upstream::host(upstream)] }
}
