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
/// How often the files are read for new lines.
const FOLLOW_EVERY: Duration = Duration::from_millis(100);
/// A file read to its end past this size starts again from empty (the app appends, so
/// its next line lands at the start); only lines written in that instant can be lost.
const ROTATE_AT: u64 = 8 << 20;
/// A line longer than this is passed on in pieces.
const LONGEST_LINE: usize = 64 << 10;
/// Read at most this much of one file per pass, so one chatty app cannot stall the rest.
const READ_AT_MOST: u64 = 1 << 20;

type OnLine = Box<dyn Fn(LogStream, String) + Send + Sync>;

/// One output file and how far it has been read.
struct Followed {
    stream: LogStream,
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Followed {
    fn offset_path(&self) -> PathBuf {
        self.path.with_extension("offset")
    }

    fn resume(stream: LogStream, path: PathBuf) -> Followed {
        let mut followed = Followed { stream, path, offset: 0, partial: Vec::new() };
        followed.offset =
            std::fs::read_to_string(followed.offset_path()).ok().and_then(|text| text.trim().parse().ok()).unwrap_or(0);
        followed
    }

    /// Passes on every whole line written since the last call.
    fn read_new(&mut self, on_line: &OnLine) {
        let Ok(mut file) = File::options().read(true).write(true).open(&self.path) else { return };
        let Ok(len) = file.metadata().map(|meta| meta.len()) else { return };
        if len < self.offset {
            // Started again from empty.
            self.offset = 0;
            self.partial.clear();
        }
        if len == self.offset {
            return;
        }
        let mut chunk = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err()
            || (&mut file).take(READ_AT_MOST).read_to_end(&mut chunk).is_err()
        {
            return;
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
        for byte in chunk {
            if byte == b'\n' || self.partial.len() >= LONGEST_LINE {
                let line = String::from_utf8_lossy(&self.partial).into_owned();
                self.partial.clear();
                on_line(self.stream, line);
                if byte == b'\n' {
                    continue;
                }
            }
            self.partial.push(byte);
        }
        if self.offset >= ROTATE_AT
            && self.offset == len
            && File::options().write(true).open(&self.path).and_then(|file| file.set_len(0)).is_ok()
        {
            self.offset = 0;
        }
        let _ = std::fs::write(self.offset_path(), self.offset.to_string());
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

    /// Passes on every line written so far.
    pub fn catch_up(&self) {
        if let Ok(mut streams) = self.streams.lock() {
            for followed in streams.iter_mut() {
                followed.read_new(&self.on_line);
            }
        }
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
    loop {
        let reader = output.clone();
        let _ = tokio::task::spawn_blocking(move || reader.catch_up()).await;
        tokio::select! {
            () = tokio::time::sleep(FOLLOW_EVERY) => {}
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
