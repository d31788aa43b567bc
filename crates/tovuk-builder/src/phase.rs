//! Running one phase command in the sandbox: its output streamed to the control plane as
//! it comes, a deadline, and a stop when the deploy is cancelled or the platform stops.

use crate::logs::{ActionableLine, Admit, LineSplitter, LogBudget};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tovuk_api_types::{BuildLogLine, DeployState, LogBatch, LogStream};
use tovuk_client::Client;
use tovuk_daemon::Shutdown;
use tovuk_sandbox::SandboxSpec;
use tovuk_secrets::Masker;

/// How often buffered lines are shipped; also how often the build learns of a cancel.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Lines shipped in one request at most.
const BATCH_LINES: usize = 500;

/// Ships a build's log lines to the control plane, within the build's byte budget.
pub(crate) struct LogShipper<'a> {
    client: &'a Client,
    deploy_id: String,
    budget: LogBudget,
    pending: Vec<BuildLogLine>,
    /// Hides the build's secret values; phases split their output with it too.
    masker: Arc<Masker>,
}

impl<'a> LogShipper<'a> {
    pub(crate) fn new(client: &'a Client, deploy_id: &str, limit: usize) -> Self {
        LogShipper {
            client,
            deploy_id: deploy_id.to_owned(),
            budget: LogBudget::new(limit),
            pending: Vec::new(),
            masker: Arc::default(),
        }
    }

    /// From now on, hide these values in every line.
    pub(crate) fn mask_with(&mut self, masker: Arc<Masker>) {
        self.masker = masker;
    }

    /// Queues a line of `phase` from `stream`.
    pub(crate) fn line(&mut self, phase: DeployState, stream: LogStream, line: String) {
        let line = match self.masker.mask(&line) {
            std::borrow::Cow::Borrowed(_) => line,
            std::borrow::Cow::Owned(masked) => masked,
        };
        let text = match self.budget.admit(line) {
            Admit::Store(text) => text,
            Admit::Marker(marker) => marker,
            Admit::Drop => return,
        };
        self.pending.push(BuildLogLine {
            seq: 0,
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            phase,
            stream,
            line: text,
        });
    }

    /// Sends what is queued (or a heartbeat); true when the deploy was cancelled.
    pub(crate) async fn flush(&mut self) -> bool {
        loop {
            let take = self.pending.len().min(BATCH_LINES);
            let batch = LogBatch { lines: self.pending.drain(..take).collect() };
            match self.client.send_build_logs(&self.deploy_id, &batch).await {
                Ok(control) if control.cancelled => return true,
                Ok(_) => {}
                Err(error) => tracing::warn!(deploy_id = %self.deploy_id, %error, "cannot ship build logs"),
            }
            if self.pending.is_empty() {
                return false;
            }
        }
    }

    /// The note on dropped output, once the build is over.
    pub(crate) fn finish(&mut self, phase: DeployState) {
        if let Some(summary) = self.budget.summary() {
            self.pending.push(BuildLogLine {
                seq: 0,
                at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                phase,
                stream: LogStream::Platform,
                line: summary,
            });
        }
    }
}

/// How a phase command ended.
pub(crate) enum PhaseEnd {
    Exited {
        code: i32,
        actionable: Option<String>,
    },
    TimedOut {
        actionable: Option<String>,
    },
    Cancelled,
    /// The platform is shutting down.
    Stopped,
    /// The sandbox could not start the command.
    NotStarted(String),
    /// bubblewrap (or nsenter, joining the build's network) failed while making the sandbox
    /// (its first line says why), before the command ran: under load the kernel can refuse a
    /// new namespace's set-up for a moment, so the phase may simply be started again.
    SandboxFailed(String),
}

/// Runs `command` with `/bin/sh -c` in the sandbox described by `spec`.
pub(crate) async fn run(
    spec: &SandboxSpec,
    phase: DeployState,
    command: &str,
    timeout: Duration,
    logs: &mut LogShipper<'_>,
    shutdown: &Shutdown,
) -> PhaseEnd {
    let mut sandboxed = tovuk_sandbox::command(spec, "/bin/sh", &["-c", command]);
    sandboxed.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = match tovuk_sandbox::start(spec, sandboxed).await {
        Ok(started) => started.child,
        // A network the kernel would not set up for a moment is tried again, like bubblewrap's.
        Err(error) if error.to_string().starts_with(tovuk_sandbox::NETWORK_FAILED) => {
            return PhaseEnd::SandboxFailed(error.to_string());
        }
        Err(error) => return PhaseEnd::NotStarted(error.to_string()),
    };
    let (tx, mut rx) = mpsc::channel::<(LogStream, Vec<u8>)>(64);
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(pump(stdout, LogStream::Stdout, tx.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(pump(stderr, LogStream::Stderr, tx.clone()));
    }
    drop(tx);

    let mut splitters = [LineSplitter::masking(logs.masker.clone()), LineSplitter::masking(logs.masker.clone())];
    let mut actionable = ActionableLine::default();
    // bubblewrap's own error is the first line, on stderr, when it fails before the command runs.
    let mut first_line: Option<(LogStream, String)> = None;
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    let mut output_open = true;
    let mut exit: Option<i32> = None;
    loop {
        tokio::select! {
            chunk = rx.recv(), if output_open => match chunk {
                Some((stream, bytes)) => {
                    let splitter = &mut splitters[usize::from(stream == LogStream::Stderr)];
                    for line in splitter.push(&bytes) {
                        actionable.observe(&line);
                        if first_line.is_none() {
                            first_line = Some((stream, line.clone()));
                        }
                        logs.line(phase, stream, line);
                    }
                }
                None => output_open = false,
            },
            status = child.wait(), if exit.is_none() => {
                // Killed by a signal (the OOM killer, say): report 128 + signal, as shells do.
                exit = Some(status.map(|status| status.code().unwrap_or(137)).unwrap_or(1));
            }
            _ = tick.tick() => {
                if logs.flush().await {
                    let _ = child.kill().await;
                    return PhaseEnd::Cancelled;
                }
            }
            () = &mut deadline => {
                let _ = child.kill().await;
                flush_tails(&mut splitters, &mut actionable, logs, phase);
                return PhaseEnd::TimedOut { actionable: actionable.best() };
            }
            () = shutdown.wait() => {
                let _ = child.kill().await;
                return PhaseEnd::Stopped;
            }
        }
        if let (Some(code), false) = (exit, output_open) {
            flush_tails(&mut splitters, &mut actionable, logs, phase);
            if let Some((LogStream::Stderr, line)) = &first_line
                && code != 0
                && (line.starts_with("bwrap: ") || line.starts_with("nsenter: "))
            {
                return PhaseEnd::SandboxFailed(line.clone());
            }
            return PhaseEnd::Exited { code, actionable: actionable.best() };
        }
    }
}

fn flush_tails(
    splitters: &mut [LineSplitter; 2],
    actionable: &mut ActionableLine,
    logs: &mut LogShipper<'_>,
    phase: DeployState,
) {
    for (splitter, stream) in splitters.iter_mut().zip([LogStream::Stdout, LogStream::Stderr]) {
        if let Some(line) = splitter.finish() {
            actionable.observe(&line);
            logs.line(phase, stream, line);
        }
    }
}

/// Copies one output stream into the channel in chunks, so memory stays flat whatever
/// the command prints.
async fn pump(mut reader: impl AsyncReadExt + Unpin, stream: LogStream, tx: mpsc::Sender<(LogStream, Vec<u8>)>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send((stream, buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
        }
    }
}
