//! Serves a tovuk-kv database on a loopback port, for benchmarks and manual checks:
//! `cargo run --release -p tovuk-kv --example kv_serve -- <db-file> <port> <password>`.
//! The password opens keyspace `res_example`; admission is unlimited.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tovuk_kv::{Gate, Keyspace, Kv};

struct OnePassword(String);

impl Gate for OnePassword {
    fn authenticate(&self, _scope: Option<&str>, _user: Option<&str>, password: &str) -> Option<Keyspace> {
        (password == self.0).then(|| Keyspace { id: "res_example".into(), app: "example".into() })
    }

    fn admit(&self, _: &Keyspace, _: u64, _: u64) -> Result<(), String> {
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(port), Some(password)) = (args.next(), args.next(), args.next()) else {
        return Err("usage: kv_serve <db-file> <port> <password>".into());
    };
    let kv = Kv::open(std::path::Path::new(&path))?;
    let listener = TcpListener::bind(("127.0.0.1", port.parse::<u16>()?)).await?;
    let stop = CancellationToken::new();
    let ctrl_c = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        ctrl_c.cancel();
    });
    kv.serve(listener, None, Arc::new(OnePassword(password)), stop).await;
    Ok(())
}
