//! The accept loop and one task per connection: read what the socket has, run every complete
//! command as one batch, write the replies in order, repeat. A connection reads no more while
//! its batch is in flight, so a client that pipelines without reading gets TCP backpressure
//! instead of an unbounded reply buffer.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::commands::connection::{self, Env, NOAUTH, Session};
use crate::commands::{self, Class, Cmd, Op};
use crate::resp::{Decoder, Reply};
use crate::{Gate, Kv};

/// Most commands run as one batch; bounds the replies held per connection.
const MAX_BATCH: usize = 1024;
/// Read-buffer growth step.
const READ_CHUNK: usize = 64 << 10;

pub async fn serve(
    kv: Arc<Kv>,
    listener: TcpListener,
    scope: Option<String>,
    gate: Arc<dyn Gate>,
    stop: CancellationToken,
) {
    let tracker = TaskTracker::new();
    let scope: Option<Arc<str>> = scope.map(Into::into);
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let conn = Conn::new(kv.clone(), gate.clone(), scope.clone(), stop.clone(), stream);
                tracker.spawn(conn.run());
            }
            // Out of file descriptors and the like: back off instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

/// A reply position in a batch: answered already, or waiting for the data command's result.
enum Slot {
    Ready(Reply),
    Data,
}

struct Conn {
    kv: Arc<Kv>,
    gate: Arc<dyn Gate>,
    scope: Option<Arc<str>>,
    stop: CancellationToken,
    stream: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    decoder: Decoder,
    session: Session,
}

impl Conn {
    fn new(
        kv: Arc<Kv>,
        gate: Arc<dyn Gate>,
        scope: Option<Arc<str>>,
        stop: CancellationToken,
        stream: TcpStream,
    ) -> Conn {
        let id = kv.next_client_id.fetch_add(1, Ordering::Relaxed) + 1;
        Conn {
            kv,
            gate,
            scope,
            stop,
            stream,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: BytesMut::with_capacity(READ_CHUNK),
            decoder: Decoder::default(),
            session: Session::new(id),
        }
    }

    async fn run(mut self) {
        self.kv.connected.fetch_add(1, Ordering::Relaxed);
        let _ = self.serve().await;
        self.kv.connected.fetch_sub(1, Ordering::Relaxed);
    }

    async fn serve(&mut self) -> std::io::Result<()> {
        loop {
            let mut batch = Vec::new();
            let mut fatal = None;
            while batch.len() < MAX_BATCH {
                match self.decoder.decode(&mut self.rbuf, self.session.authenticated()) {
                    Ok(Some(args)) if args.is_empty() => {}
                    Ok(Some(args)) => {
                        batch.push(args);
                        // Until AUTH succeeds, limits are stricter: parse one command at a time.
                        if !self.session.authenticated() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        fatal = Some(e);
                        break;
                    }
                }
            }
            if batch.is_empty() && fatal.is_none() {
                if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
                    self.rbuf.reserve(READ_CHUNK);
                }
                let n = tokio::select! {
                    () = self.stop.cancelled() => return Ok(()),
                    n = self.stream.read_buf(&mut self.rbuf) => n?,
                };
                if n == 0 {
                    return Ok(());
                }
                continue;
            }
            self.process(batch).await?;
            if self.session.quit {
                return self.stream.shutdown().await;
            }
            if let Some(e) = fatal {
                // Redis answers a protocol error and then closes the connection.
                Reply::Error(e.0).encode(self.session.resp3, &mut self.wbuf);
                self.stream.write_all(&self.wbuf).await?;
                return self.stream.shutdown().await;
            }
        }
    }

    async fn process(&mut self, batch: Vec<Vec<Bytes>>) -> std::io::Result<()> {
        let mut slots = Vec::with_capacity(batch.len());
        let mut data = Vec::new();
        for args in batch {
            let Some(spec) = commands::lookup(&args[0]) else {
                slots.push(Slot::Ready(unknown_command(&args)));
                continue;
            };
            if !commands::arity_ok(spec.arity, args.len()) {
                slots.push(Slot::Ready(commands::wrong_args(spec.name)));
                continue;
            }
            if let Err(reply) = connection::check_subcommand(spec.op, &args) {
                slots.push(Slot::Ready(reply));
                continue;
            }
            if !self.session.authenticated() && !spec.no_auth {
                slots.push(Slot::Ready(Reply::err(NOAUTH)));
                continue;
            }
            if spec.class == Class::Connection {
                // These change who we are or how we encode: answer everything before them first.
                if matches!(spec.op, Op::Auth | Op::Hello | Op::Quit) {
                    self.flush(std::mem::take(&mut slots), std::mem::take(&mut data)).await?;
                }
                let reply = self.connection_command(spec.op, &args);
                slots.push(Slot::Ready(reply));
                if self.session.quit {
                    break;
                }
                continue;
            }
            let Some((keyspace, _)) = &self.session.keyspace else {
                slots.push(Slot::Ready(Reply::err(NOAUTH)));
                continue;
            };
            let (reads, writes) = commands::cost(spec.op, &args);
            if reads + writes > 0
                && let Err(msg) = self.gate.admit(keyspace, reads, writes)
            {
                slots.push(Slot::Ready(Reply::err(format!("ERR {msg}"))));
                continue;
            }
            data.push(Cmd { op: spec.op, writes: spec.class == Class::Write, args });
            slots.push(Slot::Data);
        }
        self.flush(slots, data).await
    }

    fn connection_command(&mut self, op: Op, args: &[Bytes]) -> Reply {
        let kv = self.kv.clone();
        let info = move |s: &Session| kv.info_sections(s);
        let env = Env { gate: &*self.gate, scope: self.scope.as_deref(), info: &info };
        connection::run(op, args, &mut self.session, &env)
    }

    /// Runs the batch's data commands (one commit if any writes), then writes every reply in order.
    async fn flush(&mut self, slots: Vec<Slot>, data: Vec<Cmd>) -> std::io::Result<()> {
        if slots.is_empty() {
            return Ok(());
        }
        let results = match (&self.session.keyspace, data.is_empty()) {
            (Some((_, ks)), false) => {
                let writes = data.iter().any(|c| c.writes);
                if writes { self.kv.store.write(ks.clone(), data).await } else { self.kv.store.read(ks.clone(), &data) }
            }
            _ => Ok(Vec::new()),
        };
        let mut results = match results {
            Ok(replies) => Ok(replies.into_iter()),
            Err(msg) => Err(msg),
        };
        for slot in slots {
            let reply = match slot {
                Slot::Ready(r) => r,
                Slot::Data => match &mut results {
                    Ok(replies) => replies.next().unwrap_or_else(|| Reply::err("ERR missing reply")),
                    Err(msg) => Reply::err(msg.clone()),
                },
            };
            reply.encode(self.session.resp3, &mut self.wbuf);
            if self.wbuf.len() >= READ_CHUNK {
                self.stream.write_all(&self.wbuf).await?;
                self.wbuf.clear();
            }
        }
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }
}

/// Redis 7's text: `unknown command 'x', with args beginning with: 'a' 'b' ` (args capped at 128 bytes).
fn unknown_command(args: &[Bytes]) -> Reply {
    let name = &args[0][..args[0].len().min(128)];
    let mut shown: Vec<u8> = Vec::new();
    for arg in &args[1..] {
        if shown.len() >= 128 {
            break;
        }
        let room = 128 - shown.len();
        shown.push(b'\'');
        shown.extend_from_slice(&arg[..arg.len().min(room)]);
        shown.extend_from_slice(b"' ");
    }
    Reply::err(format!(
        "ERR unknown command '{}', with args beginning with: {}",
        String::from_utf8_lossy(name),
        String::from_utf8_lossy(&shown)
    ))
}
