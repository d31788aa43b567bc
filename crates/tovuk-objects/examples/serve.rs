//! Serves a store for benchmarks: `cargo run --release -p tovuk-objects --example serve -- <root> <port>`.
//!
//! One fixed credential opens bucket `bench`: `AWS_ACCESS_KEY_ID=bench`, `AWS_SECRET_ACCESS_KEY=bench-secret`,
//! `AWS_ENDPOINT_URL_S3=http://127.0.0.1:<port>`, `BUCKET_NAME=bench`. No caps. Ctrl-C stops it.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tovuk_objects::{Bucket, Gate, Objects, OpClass};

const ACCESS_KEY: &str = "bench";
const SECRET_KEY: &str = "bench-secret";
const BUCKET: &str = "bench";

struct BenchGate;

impl Gate for BenchGate {
    fn credential(&self, _scope: Option<&str>, access_key: &str) -> Option<(String, Bucket)> {
        (access_key == ACCESS_KEY).then(|| {
            let bucket = Bucket { resource_id: "res_bench".into(), name: BUCKET.into(), app: "bench".into() };
            (SECRET_KEY.to_owned(), bucket)
        })
    }

    fn admit(&self, _bucket: &Bucket, _class: OpClass) -> Result<(), String> {
        Ok(())
    }

    fn admit_bytes(&self, _bucket: &Bucket, _held: u64, _incoming: u64) -> Result<(), String> {
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(root), Some(port)) = (args.next(), args.next()) else {
        eprintln!("usage: serve <root-dir> <port>");
        std::process::exit(2);
    };
    let port: u16 = port.parse()?;
    let objects = Objects::open(&PathBuf::from(root))?;
    objects.ensure_bucket(BUCKET)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("serving bucket `{BUCKET}` on http://{}", listener.local_addr()?);
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_signal.cancel();
    });
    let gate: Arc<dyn Gate> = Arc::new(BenchGate);
    objects.serve(listener, None, gate, stop).await;
    Ok(())
}
