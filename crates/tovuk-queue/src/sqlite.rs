//! The embedded backend: every queue in one SQLite file (WAL, `synchronous = FULL`).
//!
//! One writer task owns the only writing connection. It takes every operation waiting at
//! that moment, runs them in one transaction and commits once, then answers them: each
//! answer leaves only after the commit (and its fsync) returned, so nothing acknowledged is
//! lost to a crash. Reads for the operator and the dispatchers use a small pool of their own.

use crate::backend::{Backend, Counts, Leased, NewMessage, Policy, Settle, Settled, Settlement, Stored};
use crate::{LeaseId, QueueError};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, ConnectOptions, Row, SqliteConnection};
use std::future::Future;
use std::path::Path;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// The most operations one transaction takes.
const GROUP: usize = 512;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,   -- 0: live; 1: dead (kept, never delivered)
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    visible_at INTEGER NOT NULL,        -- ms; for a leased message, when its lease ends
    lease INTEGER,                      -- the current (or last, expired) lease's nonce
    last_error TEXT,
    enqueued_at INTEGER NOT NULL,
    dead_from TEXT                      -- the queue that dead-lettered it
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, state, visible_at, seq);
CREATE INDEX IF NOT EXISTS messages_dead ON messages (dead_from) WHERE dead_from IS NOT NULL;
";

/// The error a message's last attempt is recorded with when its lease ran out.
const LEASE_EXPIRED: &str = "its lease expired without an ack";

enum Op {
    Enqueue { queue: String, messages: Vec<NewMessage>, now: i64 },
    Lease { queue: String, max: usize, until: i64, now: i64, policy: Policy, nonce: i64 },
    Settle { queue: String, settlements: Vec<Settlement>, now: i64, policy: Policy },
    Release { queue: String, leases: Vec<LeaseId>, now: i64 },
    Purge { queue: String, dead_letter: bool },
    Redrive { queue: String, now: i64 },
}

enum Answer {
    Seqs(Vec<i64>),
    Leased(Vec<Leased>, u64),
    Settled(Vec<Settled>),
    Count(u64),
}

struct Job {
    op: Op,
    reply: oneshot::Sender<Result<Answer, QueueError>>,
}

/// Every queue in one SQLite file.
pub struct SqliteBackend {
    jobs: mpsc::UnboundedSender<Job>,
    reads: SqlitePool,
    /// True once the writer made the schema; an error when it could not open the file.
    ready: watch::Receiver<Option<Result<(), String>>>,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend").finish_non_exhaustive()
    }
}

fn options(file: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(file)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // Every commit fsyncs the WAL: a send is durable when it is answered.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .disable_statement_logging()
}

impl SqliteBackend {
    /// The store in `file` (made when missing), and its writer: the caller runs the future
    /// (as a task of its own) until `stop`; operations wait for it, and fail once it ended.
    pub fn open(
        file: &Path,
        stop: CancellationToken,
    ) -> (std::sync::Arc<SqliteBackend>, impl Future<Output = ()> + Send + 'static) {
        let (jobs, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready) = watch::channel(None);
        let reads = SqlitePoolOptions::new().max_connections(2).connect_lazy_with(options(file));
        let writer = write(options(file), rx, ready_tx, stop);
        (std::sync::Arc::new(SqliteBackend { jobs, reads, ready }), writer)
    }

    async fn run(&self, op: Op) -> Result<Answer, QueueError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { op, reply }).map_err(|_| QueueError::Closed)?;
        answer.await.map_err(|_| QueueError::Closed)?
    }

    /// Waits until the writer made the schema, so a read never meets a missing table.
    async fn readable(&self) -> Result<&SqlitePool, QueueError> {
        let mut ready = self.ready.clone();
        let state = ready.wait_for(Option::is_some).await.map_err(|_| QueueError::Closed)?;
        match state.as_ref() {
            Some(Err(error)) => Err(QueueError::Storage(error.clone())),
            _ => Ok(&self.reads),
        }
    }
}

/// The writer: opens the file, makes the schema, then applies operations in groups.
async fn write(
    options: SqliteConnectOptions,
    mut rx: mpsc::UnboundedReceiver<Job>,
    ready: watch::Sender<Option<Result<(), String>>>,
    stop: CancellationToken,
) {
    let opened = async {
        let mut connection = options.connect().await?;
        sqlx::raw_sql(SCHEMA).execute(&mut connection).await?;
        Ok::<_, sqlx::Error>(connection)
    };
    let mut connection = match opened.await {
        Ok(connection) => {
            let _ = ready.send(Some(Ok(())));
            connection
        }
        Err(error) => {
            tracing::error!(%error, "cannot open the queue store; every queue operation fails");
            let _ = ready.send(Some(Err(error.to_string())));
            // Answer (with the error) until stopped: callers never hang on a store that is not there.
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    job = rx.recv() => match job {
                        Some(job) => { let _ = job.reply.send(Err(QueueError::Storage(error.to_string()))); }
                        None => return,
                    },
                }
            }
        }
    };
    let mut group = Vec::with_capacity(GROUP);
    loop {
        let first = tokio::select! {
            () = stop.cancelled() => break,
            job = rx.recv() => job,
        };
        let Some(first) = first else { break };
        group.push(first);
        while group.len() < GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        apply_group(&mut connection, &mut group).await;
    }
    let _ = sqlx::Connection::close(connection).await;
}

/// One transaction for the whole group; should one operation fail, each runs again alone
/// so only its own caller sees the error.
async fn apply_group(connection: &mut SqliteConnection, group: &mut Vec<Job>) {
    match in_transaction(connection, group.iter().map(|job| &job.op)).await {
        Ok(answers) => {
            for (job, answer) in group.drain(..).zip(answers) {
                let _ = job.reply.send(Ok(answer));
            }
        }
        Err(_) if group.len() > 1 => {
            for job in group.drain(..) {
                let answer = in_transaction(connection, std::iter::once(&job.op)).await;
                let _ = job.reply.send(answer.and_then(|mut answers| answers.pop().ok_or(QueueError::Closed)));
            }
        }
        Err(error) => {
            tracing::warn!(%error, "a queue operation failed");
            for job in group.drain(..) {
                let _ = job.reply.send(Err(QueueError::Storage(error.to_string())));
            }
        }
    }
}

async fn in_transaction<'o>(
    connection: &mut SqliteConnection,
    ops: impl Iterator<Item = &'o Op>,
) -> Result<Vec<Answer>, QueueError> {
    sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut *connection).await?;
    let mut answers = Vec::new();
    for op in ops {
        match apply(connection, op).await {
            Ok(answer) => answers.push(answer),
            Err(error) => {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *connection).await;
                return Err(error);
            }
        }
    }
    if let Err(error) = sqlx::raw_sql("COMMIT").execute(&mut *connection).await {
        // Not durable: nobody is told it was.
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *connection).await;
        return Err(error.into());
    }
    Ok(answers)
}

async fn apply(connection: &mut SqliteConnection, op: &Op) -> Result<Answer, QueueError> {
    match op {
        Op::Enqueue { queue, messages, now } => enqueue(connection, queue, messages, *now).await.map(Answer::Seqs),
        Op::Lease { queue, max, until, now, policy, nonce } => {
            let dead = dead_letter_expired(connection, queue, *now, policy).await?;
            let leased = lease(connection, queue, *max, *until, *now, *nonce).await?;
            Ok(Answer::Leased(leased, dead))
        }
        Op::Settle { queue, settlements, now, policy } => {
            settle(connection, queue, settlements, *now, policy).await.map(Answer::Settled)
        }
        Op::Release { queue, leases, now } => {
            for lease in leases {
                sqlx::query(
                    "UPDATE messages SET lease = NULL, visible_at = ?, attempts = attempts - 1
                     WHERE seq = ? AND queue = ? AND state = 0 AND lease = ? AND attempts = ?",
                )
                .bind(now)
                .bind(lease.seq)
                .bind(queue)
                .bind(lease.nonce)
                .bind(lease.attempt)
                .execute(&mut *connection)
                .await?;
            }
            Ok(Answer::Count(0))
        }
        Op::Purge { queue, dead_letter } => {
            let sql = if *dead_letter {
                "DELETE FROM messages WHERE dead_from = ?"
            } else {
                "DELETE FROM messages WHERE queue = ? AND state = 0"
            };
            let done = sqlx::query(sql).bind(queue).execute(&mut *connection).await?;
            Ok(Answer::Count(done.rows_affected()))
        }
        Op::Redrive { queue, now } => {
            let done = sqlx::query(
                "UPDATE messages SET queue = ?, state = 0, attempts = 0, dead_from = NULL, lease = NULL, visible_at = ?
                 WHERE dead_from = ? AND NOT (state = 0 AND lease IS NOT NULL AND visible_at > ?)",
            )
            .bind(queue)
            .bind(now)
            .bind(queue)
            .bind(now)
            .execute(&mut *connection)
            .await?;
            Ok(Answer::Count(done.rows_affected()))
        }
    }
}

async fn enqueue(
    connection: &mut SqliteConnection,
    queue: &str,
    messages: &[NewMessage],
    now: i64,
) -> Result<Vec<i64>, QueueError> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = String::from("INSERT INTO messages (queue, body, visible_at, enqueued_at) VALUES ");
    sql.push_str(&vec!["(?, ?, ?, ?)"; messages.len()].join(", "));
    sql.push_str(" RETURNING seq");
    let mut insert = sqlx::query(AssertSqlSafe(sql));
    for message in messages {
        insert = insert.bind(queue).bind(&message.body).bind(message.visible_at).bind(now);
    }
    let mut seqs: Vec<i64> =
        insert.fetch_all(&mut *connection).await?.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>()?;
    // Rows take increasing sequence numbers in the order they are inserted.
    seqs.sort_unstable();
    Ok(seqs)
}

/// Dead-letters the messages whose last lease expired with no attempts left.
async fn dead_letter_expired(
    connection: &mut SqliteConnection,
    queue: &str,
    now: i64,
    policy: &Policy,
) -> Result<u64, QueueError> {
    let sql = match &policy.dead_letter {
        Some(_) => {
            "UPDATE messages SET queue = ?, dead_from = queue, attempts = 0, lease = NULL, visible_at = ?, last_error = ?
             WHERE queue = ? AND state = 0 AND lease IS NOT NULL AND visible_at <= ? AND attempts >= ?"
        }
        None => {
            "UPDATE messages SET state = 1, dead_from = queue, lease = NULL, visible_at = ?, last_error = ?
             WHERE queue = ? AND state = 0 AND lease IS NOT NULL AND visible_at <= ? AND attempts >= ?"
        }
    };
    let mut update = sqlx::query(sql);
    if let Some(target) = &policy.dead_letter {
        update = update.bind(target);
    }
    let done = update
        .bind(now)
        .bind(LEASE_EXPIRED)
        .bind(queue)
        .bind(now)
        .bind(policy.max_attempts)
        .execute(&mut *connection)
        .await?;
    Ok(done.rows_affected())
}

async fn lease(
    connection: &mut SqliteConnection,
    queue: &str,
    max: usize,
    until: i64,
    now: i64,
    nonce: i64,
) -> Result<Vec<Leased>, QueueError> {
    let rows = sqlx::query(
        "UPDATE messages SET lease = ?, visible_at = ?, attempts = attempts + 1,
             last_error = CASE WHEN lease IS NOT NULL THEN ? ELSE last_error END
         WHERE seq IN (SELECT seq FROM messages WHERE queue = ? AND state = 0 AND visible_at <= ?
                       ORDER BY visible_at, seq LIMIT ?)
         RETURNING seq, attempts, body, enqueued_at",
    )
    .bind(nonce)
    .bind(until)
    .bind(LEASE_EXPIRED)
    .bind(queue)
    .bind(now)
    .bind(i64::try_from(max).unwrap_or(i64::MAX))
    .fetch_all(&mut *connection)
    .await?;
    let mut leased = Vec::with_capacity(rows.len());
    for row in rows {
        let seq: i64 = row.try_get(0)?;
        let attempt: u32 = row.try_get(1)?;
        leased.push(Leased {
            lease: LeaseId { seq, attempt, nonce },
            body: row.try_get(2)?,
            enqueued_at: row.try_get(3)?,
        });
    }
    leased.sort_unstable_by_key(|leased| leased.lease.seq);
    Ok(leased)
}

async fn settle(
    connection: &mut SqliteConnection,
    queue: &str,
    settlements: &[Settlement],
    now: i64,
    policy: &Policy,
) -> Result<Vec<Settled>, QueueError> {
    let mut outcomes = vec![Settled::Unknown; settlements.len()];
    // Acks in one statement: the rows it deleted are the leases that held.
    let acks: Vec<(usize, &LeaseId)> = settlements
        .iter()
        .enumerate()
        .filter(|(_, settlement)| matches!(settlement.action, Settle::Ack))
        .map(|(index, settlement)| (index, &settlement.lease))
        .collect();
    if !acks.is_empty() {
        let mut sql = String::from(
            "DELETE FROM messages WHERE queue = ? AND state = 0 AND visible_at > ? AND (seq, lease, attempts) IN (VALUES ",
        );
        sql.push_str(&vec!["(?, ?, ?)"; acks.len()].join(", "));
        sql.push_str(") RETURNING seq");
        let mut delete = sqlx::query(AssertSqlSafe(sql)).bind(queue).bind(now);
        for (_, lease) in &acks {
            delete = delete.bind(lease.seq).bind(lease.nonce).bind(lease.attempt);
        }
        let deleted: std::collections::HashSet<i64> =
            delete.fetch_all(&mut *connection).await?.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>()?;
        for (index, lease) in acks {
            outcomes[index] = if deleted.contains(&lease.seq) {
                Settled::Acked
            } else {
                why_not_held(connection, queue, lease, now).await?
            };
        }
    }
    for (index, settlement) in settlements.iter().enumerate() {
        let Settle::Retry { visible_at, error } = &settlement.action else { continue };
        let lease = &settlement.lease;
        let held = sqlx::query(
            "SELECT attempts FROM messages WHERE seq = ? AND queue = ? AND state = 0 AND lease = ? AND attempts = ? AND visible_at > ?",
        )
        .bind(lease.seq)
        .bind(queue)
        .bind(lease.nonce)
        .bind(lease.attempt)
        .bind(now)
        .fetch_optional(&mut *connection)
        .await?;
        outcomes[index] = match held {
            None => why_not_held(connection, queue, lease, now).await?,
            Some(_) if lease.attempt >= policy.max_attempts => {
                dead_letter(connection, queue, lease.seq, now, error, policy).await?;
                Settled::DeadLettered
            }
            Some(_) => {
                sqlx::query("UPDATE messages SET lease = NULL, visible_at = ?, last_error = ? WHERE seq = ?")
                    .bind(visible_at)
                    .bind(error)
                    .bind(lease.seq)
                    .execute(&mut *connection)
                    .await?;
                Settled::Retried
            }
        };
    }
    Ok(outcomes)
}

/// Why `lease` no longer holds its message: it expired (or the message went out again), or
/// nothing is known of it.
async fn why_not_held(
    connection: &mut SqliteConnection,
    queue: &str,
    lease: &LeaseId,
    now: i64,
) -> Result<Settled, QueueError> {
    let row = sqlx::query("SELECT attempts, lease, visible_at FROM messages WHERE seq = ? AND queue = ? AND state = 0")
        .bind(lease.seq)
        .bind(queue)
        .fetch_optional(&mut *connection)
        .await?;
    let Some(row) = row else { return Ok(Settled::Unknown) };
    let attempts: u32 = row.try_get(0)?;
    let nonce: Option<i64> = row.try_get(1)?;
    let visible_at: i64 = row.try_get(2)?;
    // Delivered again since, or still this lease but past its end.
    let delivered_again = attempts > lease.attempt;
    let ran_out = attempts == lease.attempt && nonce == Some(lease.nonce) && visible_at <= now;
    Ok(if delivered_again || ran_out { Settled::Expired } else { Settled::Unknown })
}

async fn dead_letter(
    connection: &mut SqliteConnection,
    queue: &str,
    seq: i64,
    now: i64,
    error: &str,
    policy: &Policy,
) -> Result<(), QueueError> {
    match &policy.dead_letter {
        Some(target) => sqlx::query(
            "UPDATE messages SET queue = ?, dead_from = ?, attempts = 0, lease = NULL, visible_at = ?, last_error = ?
                 WHERE seq = ?",
        )
        .bind(target)
        .bind(queue)
        .bind(now)
        .bind(error)
        .bind(seq)
        .execute(&mut *connection)
        .await?,
        None => {
            sqlx::query("UPDATE messages SET state = 1, dead_from = ?, lease = NULL, last_error = ? WHERE seq = ?")
                .bind(queue)
                .bind(error)
                .bind(seq)
                .execute(&mut *connection)
                .await?
        }
    };
    Ok(())
}

fn stored(row: &sqlx::sqlite::SqliteRow) -> Result<Stored, sqlx::Error> {
    Ok(Stored {
        seq: row.try_get("seq")?,
        queue: row.try_get("queue")?,
        attempts: row.try_get("attempts")?,
        body: row.try_get("body")?,
        enqueued_at: row.try_get("enqueued_at")?,
        visible_at: row.try_get("visible_at")?,
        in_flight: row.try_get("in_flight")?,
        last_error: row.try_get("last_error")?,
    })
}

fn count(value: Option<i64>) -> u64 {
    value.and_then(|value| u64::try_from(value).ok()).unwrap_or(0)
}

#[async_trait::async_trait]
impl Backend for SqliteBackend {
    async fn enqueue(&self, queue: &str, messages: Vec<NewMessage>, now: i64) -> Result<Vec<i64>, QueueError> {
        match self.run(Op::Enqueue { queue: queue.to_owned(), messages, now }).await? {
            Answer::Seqs(seqs) => Ok(seqs),
            _ => Err(QueueError::Storage("the writer answered another operation".into())),
        }
    }

    async fn lease(
        &self,
        queue: &str,
        max: usize,
        until: i64,
        now: i64,
        policy: &Policy,
    ) -> Result<(Vec<Leased>, u64), QueueError> {
        let nonce = crate::lease::new_nonce();
        let op = Op::Lease { queue: queue.to_owned(), max, until, now, policy: policy.clone(), nonce };
        match self.run(op).await? {
            Answer::Leased(leased, dead) => Ok((leased, dead)),
            _ => Err(QueueError::Storage("the writer answered another operation".into())),
        }
    }

    async fn settle(
        &self,
        queue: &str,
        settlements: Vec<Settlement>,
        now: i64,
        policy: &Policy,
    ) -> Result<Vec<Settled>, QueueError> {
        let op = Op::Settle { queue: queue.to_owned(), settlements, now, policy: policy.clone() };
        match self.run(op).await? {
            Answer::Settled(settled) => Ok(settled),
            _ => Err(QueueError::Storage("the writer answered another operation".into())),
        }
    }

    async fn release(&self, queue: &str, leases: Vec<LeaseId>, now: i64) -> Result<(), QueueError> {
        self.run(Op::Release { queue: queue.to_owned(), leases, now }).await.map(|_| ())
    }

    async fn next_visible(&self, queue: &str) -> Result<Option<i64>, QueueError> {
        let row = sqlx::query("SELECT MIN(visible_at) FROM messages WHERE queue = ? AND state = 0")
            .bind(queue)
            .fetch_one(self.readable().await?)
            .await?;
        Ok(row.try_get(0)?)
    }

    async fn counts(&self, queue: &str, now: i64) -> Result<Counts, QueueError> {
        let pool = self.readable().await?;
        let row = sqlx::query(
            "SELECT
                SUM(state = 0 AND visible_at <= ?),
                SUM(state = 0 AND lease IS NULL AND visible_at > ?),
                SUM(state = 0 AND lease IS NOT NULL AND visible_at > ?),
                MIN(CASE WHEN state = 0 THEN enqueued_at END),
                SUM(length(body))
             FROM messages WHERE queue = ?",
        )
        .bind(now)
        .bind(now)
        .bind(now)
        .bind(queue)
        .fetch_one(pool)
        .await?;
        let dead: i64 =
            sqlx::query_scalar("SELECT count(*) FROM messages WHERE dead_from = ?").bind(queue).fetch_one(pool).await?;
        Ok(Counts {
            ready: count(row.try_get(0)?),
            delayed: count(row.try_get(1)?),
            in_flight: count(row.try_get(2)?),
            dead_letter: count(Some(dead)),
            oldest_enqueued_at: row.try_get(3)?,
            bytes: count(row.try_get(4)?),
        })
    }

    async fn peek(&self, queue: &str, dead_letter: bool, limit: usize, now: i64) -> Result<Vec<Stored>, QueueError> {
        let sql = if dead_letter {
            "SELECT seq, queue, attempts, body, enqueued_at, visible_at,
                    (state = 0 AND lease IS NOT NULL AND visible_at > ?) AS in_flight, last_error
             FROM messages WHERE dead_from = ? ORDER BY seq LIMIT ?"
        } else {
            "SELECT seq, queue, attempts, body, enqueued_at, visible_at,
                    (lease IS NOT NULL AND visible_at > ?) AS in_flight, last_error
             FROM messages WHERE queue = ? AND state = 0 ORDER BY visible_at, seq LIMIT ?"
        };
        let rows = sqlx::query(sql)
            .bind(now)
            .bind(queue)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.readable().await?)
            .await?;
        Ok(rows.iter().map(stored).collect::<Result<_, _>>()?)
    }

    async fn purge(&self, queue: &str, dead_letter: bool) -> Result<u64, QueueError> {
        match self.run(Op::Purge { queue: queue.to_owned(), dead_letter }).await? {
            Answer::Count(count) => Ok(count),
            _ => Err(QueueError::Storage("the writer answered another operation".into())),
        }
    }

    async fn redrive(&self, queue: &str, now: i64) -> Result<u64, QueueError> {
        match self.run(Op::Redrive { queue: queue.to_owned(), now }).await? {
            Answer::Count(count) => Ok(count),
            _ => Err(QueueError::Storage("the writer answered another operation".into())),
        }
    }
}

#[cfg(test)]
mod tests;
