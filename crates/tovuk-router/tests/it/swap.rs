//! Hot swaps of the route table while requests are in flight.

use crate::support::{
    TestRouter, empty_body, proxy, read_text, send, spawn_backend, spawn_text_backend, text_body, wait_for,
};
use hyper::header::HOST;
use hyper::{Request, Response};
use std::sync::Arc;
use tokio::sync::Semaphore;

#[tokio::test]
async fn swap_during_a_slow_request_finishes_it_on_the_old_backend() {
    let stack = TestRouter::start().await;
    // The old backend answers only when the test releases it: a slow request, without sleeping.
    let release = Arc::new(Semaphore::new(0));
    let backend_release = Arc::clone(&release);
    let old = spawn_backend(move |_request| {
        let release = Arc::clone(&backend_release);
        async move {
            let _permit = release.acquire().await.expect("semaphore stays open");
            Response::new(text_body("old answer"))
        }
    })
    .await;
    let new = spawn_text_backend("new answer").await;
    stack.publish(&[("app", proxy(old))]);

    let (router_addr, host) = (stack.addr, stack.host("app"));
    let slow_request = tokio::spawn(async move {
        let request = Request::get("/slow").header(HOST, host).body(empty_body()).expect("request");
        read_text(send(router_addr, request).await.into_body()).await
    });
    wait_for("the slow request to reach the old backend", || stack.router.in_flight(old) == 1).await;

    stack.publish(&[("app", proxy(new))]);
    let (_, _, body) = stack.get(&stack.host("app"), "/").await;
    assert_eq!(body, "new answer", "the next request goes to the new backend");
    assert_eq!(stack.router.in_flight(old), 1, "the swap does not drop the old request");

    release.add_permits(1);
    assert_eq!(slow_request.await.expect("slow request task"), "old answer");
    wait_for("the old backend to drain", || stack.router.in_flight(old) == 0).await;
    assert_eq!(stack.router.in_flight(new), 0);
}

#[tokio::test]
async fn shutdown_lets_the_in_flight_request_finish() {
    let stack = TestRouter::start().await;
    let release = Arc::new(Semaphore::new(0));
    let backend_release = Arc::clone(&release);
    let backend = spawn_backend(move |_request| {
        let release = Arc::clone(&backend_release);
        async move {
            let _permit = release.acquire().await.expect("semaphore stays open");
            Response::new(text_body("finished"))
        }
    })
    .await;
    stack.publish(&[("app", proxy(backend))]);

    let (router_addr, host) = (stack.addr, stack.host("app"));
    let request = tokio::spawn(async move {
        let request = Request::get("/").header(HOST, host).body(empty_body()).expect("request");
        read_text(send(router_addr, request).await.into_body()).await
    });
    wait_for("the request to reach the backend", || stack.router.in_flight(backend) == 1).await;

    stack.shutdown.trigger();
    wait_for("the listener to close", || std::net::TcpStream::connect(stack.addr).is_err()).await;
    release.add_permits(1);
    assert_eq!(request.await.expect("request task"), "finished");
    assert!(stack.shutdown.join(crate::support::DEADLINE).await, "the router stops once the request is done");
}
