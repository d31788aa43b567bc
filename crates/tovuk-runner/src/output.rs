//! An instance's output. The sandbox writes stdout and stderr to files in the instance's
//! directory, not to pipes: a pipe would close with the platform and take the app down
//! with it (SIGPIPE). The runner follows the files into the app's log; where it left off
//! is kept beside each file, so an adopted instance goes on where the last run stopped.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use tovuk_api_types::LogStream;

const STREAMS: [(LogStream, &str); 2] = [(LogStream::Stdout, "stdout.log"), (LogStream::Stderr, "stderr.log")];
/// How often the files are read for new lines while the app prints...
const FOLLOW_EVERY: Duration = Duration::from_millis(100);
/// ...backing off to this while it is quiet: two hundred idle apps cost next to nothing.
const FOLLOW_IDLE: Duration = Duration::from_secs(2);
/// A file read to its end past this size starts again from empty (the app appends, so
/// its next line lands at the start); only lines written in that instant can be lost.
const ROTATE_AT: u64 = 8 << 20;
/// A line is cut at this many bytes as it is read; the rest of it is dropped and counted.
pub(crate) const LONGEST_LINE: usize = 16 << 10;
/// Read at most this much of one file per pass, so one chatty app cannot stall the rest.
const READ_AT_MOST: u64 = 1 << 20;
/// Unread output past this is skipped (and counted): an app printing faster than the
/// platform reads does not fill the disk or stall its log for minutes.
const MOST_BACKLOG: u64 = 8 << 20;
/// What is still read of a skipped backlog: its end, the app's latest lines.
const READ_AFTER_SKIP: u64 = 64 << 10;
/// Lines per second one stream may add to the app's log; more are dropped and counted.
pub(crate) const LINES_PER_SECOND: u32 = 1000;

type OnLine = Box<dyn Fn(LogStream, String) + Send + Sync>;

/// One output file and how far it has been read.
struct Followed {
    stream: LogStream,
    path: PathBuf,
    offset: u64,
    /// The line being read, up to [`LONGEST_LINE`] bytes.
    partial: Vec<u8>,
    /// Bytes of the line being read past [`LONGEST_LINE`], dropped.
    cut: u64,
    /// Reading resumed mid-line after a skip: the rest of that line is not a line.
    resync: bool,
    lines: LineBudget,
}

/// A token bucket of lines per second, counting what it drops.
struct LineBudget {
    tokens: f64,
    refilled: std::time::Instant,
    dropped: u64,
}

impl LineBudget {
    fn new() -> LineBudget {
        LineBudget { tokens: f64::from(LINES_PER_SECOND), refilled: std::time::Instant::now(), dropped: 0 }
    }

    /// Whether one more line may pass now.
    fn take(&mut self) -> bool {
        let now = std::time::Instant::now();
        let rate = f64::from(LINES_PER_SECOND);
        self.tokens = (self.tokens + now.duration_since(self.refilled).as_secs_f64() * rate).min(rate);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.dropped += 1;
            false
        }
    }
}

impl Followed {
    fn offset_path(&self) -> PathBuf {
        self.path.with_extension("offset")
    }

    fn resume(stream: LogStream, path: PathBuf) -> Followed {
        let mut followed =
            Followed { stream, path, offset: 0, partial: Vec::new(), cut: 0, resync: false, lines: LineBudget::new() };
        followed.offset =
            std::fs::read_to_string(followed.offset_path()).ok().and_then(|text| text.trim().parse().ok()).unwrap_or(0);
        followed
    }

    /// Passes on every whole line written since the last call.
    /// Returns whether anything new was there.
    fn read_new(&mut self, on_line: &OnLine) -> bool {
        // A stat, not an open, for the common case: nothing new.
        if std::fs::metadata(&self.path).is_ok_and(|meta| meta.len() == self.offset) {
            return false;
        }
        let Ok(mut file) = File::options().read(true).write(true).open(&self.path) else { return false };
        let Ok(len) = file.metadata().map(|meta| meta.len()) else { return false };
        if len < self.offset {
            // Started again from empty.
            self.offset = 0;
            self.partial.clear();
        }
        if len == self.offset {
            return false;
        }
        if len - self.offset > MOST_BACKLOG {
            // Far behind: what the app printed meanwhile is skipped, not read late; its
            // latest lines are read from the next line start on.
            let skipped = len - READ_AFTER_SKIP - self.offset;
            let _ = rustix::fs::fallocate(
                &file,
                rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
                self.offset,
                skipped,
            );
            self.offset += skipped;
            self.partial.clear();
            self.cut = 0;
            self.resync = true;
            self.emit(
                format!("[tovuk: {skipped} bytes of output skipped: the app printed faster than its log is read]"),
                on_line,
            );
            let _ = std::fs::write(self.offset_path(), self.offset.to_string());
            return true;
        }
        let mut chunk = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err()
            || (&mut file).take(READ_AT_MOST).read_to_end(&mut chunk).is_err()
        {
            return false;
        }
        let read_from = self.offset;
        self.offset += chunk.len() as u64;
        // What was read is gone from the disk: the app may print its secrets, and the log
        // keeps only the masked lines. Punching a hole leaves the file's size (where the
        // app appends) as it is.
        let _ = rustix::fs::fallocate(
            &file,
            rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
            read_from,
            chunk.len() as u64,
        );
        self.split(&chunk, on_line);
        if self.offset >= ROTATE_AT
            && self.offset == len
            && File::options().write(true).open(&self.path).and_then(|file| file.set_len(0)).is_ok()
        {
            self.offset = 0;
        }
        let _ = std::fs::write(self.offset_path(), self.offset.to_string());
        true
    }
}

impl Followed {
    /// Passes on the lines `chunk` ends: a line is cut at [`LONGEST_LINE`] bytes (passed on
    /// then, the rest dropped and counted), at most [`LINES_PER_SECOND`] a second; what is
    /// dropped is said in the log.
    fn split(&mut self, chunk: &[u8], on_line: &OnLine) {
        for &byte in chunk {
            if self.resync {
                self.resync = byte != b'\n';
                continue;
            }
            if byte == b'\n' {
                if self.cut > 0 {
                    let cut = std::mem::take(&mut self.cut);
                    self.emit(format!("[tovuk: {cut} more bytes of that line dropped]"), on_line);
                } else {
                    let line = String::from_utf8_lossy(&self.partial).into_owned();
                    self.emit(line, on_line);
                }
                self.partial.clear();
            } else if self.cut > 0 {
                self.cut += 1;
            } else if self.partial.len() < LONGEST_LINE {
                self.partial.push(byte);
            } else {
                // Passed on now: a line that never ends is never held whole.
                let line = String::from_utf8_lossy(&self.partial).into_owned();
                self.emit(format!("{line} [tovuk: line cut at {LONGEST_LINE} bytes]"), on_line);
                self.partial.clear();
                self.cut = 1;
            }
        }
    }

    fn emit(&mut self, line: String, on_line: &OnLine) {
        let dropped_before = self.lines.dropped;
        if self.lines.take() {
            if dropped_before > 0 {
                self.lines.dropped = 0;
                on_line(
                    self.stream,
                    format!("[tovuk: {dropped_before} lines dropped: more than {LINES_PER_SECOND} lines a second]"),
                );
            }
            on_line(self.stream, line);
        }
    }
}

/// The output files of one instance, with where each was read to.
pub(crate) struct Output {
    dir: PathBuf,
    streams: Mutex<Vec<Followed>>,
    on_line: OnLine,
}

impl Output {
    /// The output of the instance in `dir`. `fresh` starts from empty files (a new
    /// instance); otherwise reading resumes where it was (an adopted one).
    pub fn open(dir: &Path, fresh: bool, on_line: OnLine) -> std::io::Result<Output> {
        std::fs::create_dir_all(dir)?;
        let mut streams = Vec::new();
        for (stream, name) in STREAMS {
            let path = dir.join(name);
            if fresh {
                File::create(&path)?;
                let _ = std::fs::remove_file(path.with_extension("offset"));
            }
            streams.push(Followed::resume(stream, path));
        }
        Ok(Output { dir: dir.to_owned(), streams: Mutex::new(streams), on_line })
    }

    /// The files a new process writes its stdout and stderr to, appending.
    pub fn files(&self) -> std::io::Result<(File, File)> {
        let open = |name: &str| File::options().create(true).append(true).open(self.dir.join(name));
        Ok((open(STREAMS[0].1)?, open(STREAMS[1].1)?))
    }

    /// Adds a line of the platform's own to the app's log.
    pub fn say(&self, line: &str) {
        (self.on_line)(LogStream::Platform, line.to_owned());
    }

    /// Whether a stream's file holds more than was read (one `stat` per stream).
    fn has_new(&self) -> bool {
        self.streams.lock().is_ok_and(|streams| {
            streams
                .iter()
                .any(|followed| std::fs::metadata(&followed.path).is_ok_and(|meta| meta.len() != followed.offset))
        })
    }

    /// Passes on every line written so far; whether there was anything new.
    pub fn catch_up(&self) -> bool {
        let mut any = false;
        if let Ok(mut streams) = self.streams.lock() {
            for followed in streams.iter_mut() {
                any |= followed.read_new(&self.on_line);
            }
        }
        any
    }
}

/// Follows the output until the instance is over (`over` turns true: stopped for good or
/// never started), then reads what is left and removes the instance's directory; or until
/// the platform stops, leaving the directory for the next start to adopt.
pub(crate) async fn follow(
    output: std::sync::Arc<Output>,
    mut over: tokio::sync::watch::Receiver<bool>,
    shutdown: tovuk_daemon::Shutdown,
) {
    let mut pause = FOLLOW_EVERY;
    loop {
        // Reading goes off the async threads only when there is something to read: a quiet
        // app costs a `stat` a second.
        let printed = if output.has_new() {
            let reader = output.clone();
            tokio::task::spawn_blocking(move || reader.catch_up()).await.unwrap_or(false)
        } else {
            false
        };
        pause = if printed { FOLLOW_EVERY } else { (pause * 2).min(FOLLOW_IDLE) };
        // Quiet apps are all looked at on the same whole-second ticks: one wake-up a second
        // for all of them, not one each.
        let wake =
            if pause == FOLLOW_IDLE { crate::next_tick(FOLLOW_IDLE) } else { tokio::time::Instant::now() + pause };
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            ended = over.wait_for(|over| *over) => {
                output.catch_up();
                if ended.is_ok() {
                    let _ = std::fs::remove_dir_all(&output.dir);
                }
                return;
            }
            () = shutdown.wait() => {
                output.catch_up();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Arc;

    fn collecting() -> (Arc<Mutex<Vec<String>>>, OnLine) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        (lines, Box::new(move |_, line| sink.lock().expect("lock").push(line)))
    }

    #[test]
    fn lines_are_passed_on_once_and_a_partial_line_waits_for_its_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (lines, on_line) = collecting();
        let output = Output::open(dir.path(), true, on_line).expect("open");
        let (mut stdout, _) = output.files().expect("files");
        stdout.write_all(b"one\ntw").expect("write");
        output.catch_up();
        stdout.write_all(b"o\nthree\n").expect("write");
        output.catch_up();
        output.catch_up();
        assert_eq!(*lines.lock().expect("lock"), ["one", "two", "three"]);
    }

    #[test]
    fn a_long_line_is_cut_as_it_is_read_and_a_flood_is_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (lines, on_line) = collecting();
        let output = Output::open(dir.path(), true, on_line).expect("open");
        let (mut stdout, _) = output.files().expect("files");
        // A line of 3 MiB with no end yet: its first part is passed on, the rest counted.
        stdout.write_all(&vec![b'a'; 3 << 20]).expect("write");
        for _ in 0..4 {
            output.catch_up();
        }
        {
            let lines = lines.lock().expect("lock");
            assert_eq!(lines.len(), 1);
            assert!(lines[0].starts_with("aaaa") && lines[0].ends_with("[tovuk: line cut at 16384 bytes]"));
            assert_eq!(lines[0].len(), LONGEST_LINE + " [tovuk: line cut at 16384 bytes]".len());
        }
        stdout.write_all(b"aaa\nnext\n").expect("write");
        output.catch_up();
        let expected_rest = (3 << 20) + 3 - LONGEST_LINE;
        assert_eq!(
            lines.lock().expect("lock")[1..],
            [format!("[tovuk: {expected_rest} more bytes of that line dropped]"), "next".to_owned()]
        );

        // A flood of short lines: a second's worth passes, the rest is counted.
        lines.lock().expect("lock").clear();
        let flood: Vec<u8> = (0..5000).flat_map(|n| format!("line {n}\n").into_bytes()).collect();
        stdout.write_all(&flood).expect("write");
        output.catch_up();
        std::thread::sleep(Duration::from_millis(1100));
        stdout.write_all(b"after\n").expect("write");
        output.catch_up();
        let lines = lines.lock().expect("lock");
        let passed = lines.iter().filter(|line| line.starts_with("line ")).count();
        assert!(passed < 5000, "{passed} lines passed");
        // Tokens come back while the flood is read, so there may be more than one marker.
        let dropped: usize = lines
            .iter()
            .filter_map(|line| line.strip_prefix("[tovuk: ")?.split_once(" lines dropped")?.0.parse::<usize>().ok())
            .sum();
        assert!(dropped > 0, "{lines:?}");
        assert_eq!(dropped, 5000 - passed, "every line is passed on or counted");
        assert_eq!(lines.last().map(String::as_str), Some("after"));
    }

    #[test]
    fn output_far_ahead_of_the_reader_is_skipped_and_said() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (lines, on_line) = collecting();
        let output = Output::open(dir.path(), true, on_line).expect("open");
        let (mut stdout, _) = output.files().expect("files");
        stdout.write_all(&vec![b'x'; (MOST_BACKLOG + 10) as usize]).expect("write");
        output.catch_up();
        stdout.write_all(b"\nlater\n").expect("write");
        output.catch_up();
        let lines = lines.lock().expect("lock");
        assert!(lines[0].contains("bytes of output skipped"), "{lines:?}");
        assert_eq!(lines.last().map(String::as_str), Some("later"));
    }

    #[test]
    fn an_adopted_instance_goes_on_where_the_last_run_stopped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, on_line) = collecting();
        let first = Output::open(dir.path(), true, on_line).expect("open");
        let (mut stdout, _) = first.files().expect("files");
        stdout.write_all(b"before\n").expect("write");
        first.catch_up();
        drop(first);
        stdout.write_all(b"while the platform was down\n").expect("write");
        let (lines, on_line) = collecting();
        let adopted = Output::open(dir.path(), false, on_line).expect("open");
        adopted.catch_up();
        assert_eq!(*lines.lock().expect("lock"), ["while the platform was down"]);
    }
}
