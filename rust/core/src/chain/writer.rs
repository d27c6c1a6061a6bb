//! Append-only log file writer with buffering, group commit and an fsync policy.
//!
//! Two independent settings decide what a crash can lose:
//!
//! - `sync_writes` (the original's `LoggerConfig.sync_writes`, default on): each append is
//!   handed to the operating system (`write(2)`) before the call returns, so killing the
//!   process loses nothing that was acknowledged. Off: lines collect in a 64 KiB user-space
//!   buffer, and a process crash loses what is still in it.
//! - the fsync policy, for an operating-system crash or power loss:
//!   - [`FsyncPolicy::Always`]: each append returns only after its line is written and
//!     `fdatasync`ed. Nothing acknowledged is lost. Concurrent appenders share one fsync
//!     (group commit: the first waiter writes and syncs everything queued, the others wait
//!     for it), so throughput grows with the number of writers.
//!   - [`FsyncPolicy::Interval`]: an fsync at most once per interval, done by the append
//!     that finds the interval elapsed, and by `flush`/`close`. Loses at most the last
//!     interval of entries.
//!   - [`FsyncPolicy::Never`]: the operating system decides when to write back; `flush` still
//!     fsyncs. Loses whatever the OS had not written back.
//!
//! An I/O error is sticky: every later append fails with it (fail closed: an audit log
//! that silently drops entries is worse than one that stops the caller).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// User-space buffer limit when `sync_writes` is off.
pub const BUFFER_LIMIT: usize = 64 * 1024;

/// When to `fdatasync` the log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    Always,
    Interval(Duration),
    Never,
}

/// Errors of the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// An I/O error, now sticky.
    Io(String),
    /// The writer was closed.
    Closed,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Io(m) => write!(f, "{m}"),
            WriteError::Closed => write!(f, "the audit log writer is closed"),
        }
    }
}

impl std::error::Error for WriteError {}

struct WState {
    file: Option<Arc<File>>,
    pending: Vec<u8>,
    /// Bytes queued, written to the OS and made durable, counted from the open.
    enqueued: u64,
    written: u64,
    synced: u64,
    busy: bool,
    last_sync: Instant,
    error: Option<String>,
    syncs: u64,
    writes: u64,
}

/// Counters of a writer, for tests and monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub enqueued: u64,
    pub written: u64,
    pub synced: u64,
    pub writes: u64,
    pub syncs: u64,
    /// Size of the file when it was opened.
    pub initial_size: u64,
}

/// A log file opened for appending.
pub struct LogWriter {
    path: PathBuf,
    policy: FsyncPolicy,
    sync_writes: bool,
    initial_size: u64,
    state: Mutex<WState>,
    cond: Condvar,
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriter")
            .field("path", &self.path)
            .field("policy", &self.policy)
            .field("sync_writes", &self.sync_writes)
            .finish()
    }
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> WriteError {
    WriteError::Io(format!("{what} {}: {e}", path.display()))
}

impl LogWriter {
    /// Open (create) `path` for appending.
    pub fn open(path: &Path, policy: FsyncPolicy, sync_writes: bool) -> Result<Self, WriteError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io_err(path, "cannot open", e))?;
        let initial_size = file
            .metadata()
            .map_err(|e| io_err(path, "cannot stat", e))?
            .len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            policy,
            sync_writes,
            initial_size,
            state: Mutex::new(WState {
                file: Some(Arc::new(file)),
                pending: Vec::with_capacity(BUFFER_LIMIT),
                enqueued: 0,
                written: 0,
                synced: 0,
                busy: false,
                last_sync: Instant::now(),
                error: None,
                syncs: 0,
                writes: 0,
            }),
            cond: Condvar::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn policy(&self) -> FsyncPolicy {
        self.policy
    }

    fn lock(&self) -> MutexGuard<'_, WState> {
        // A poisoned lock means a panic in another appender; the state is still consistent
        // (every update is a plain assignment), so keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn stats(&self) -> Stats {
        let g = self.lock();
        Stats {
            enqueued: g.enqueued,
            written: g.written,
            synced: g.synced,
            writes: g.writes,
            syncs: g.syncs,
            initial_size: self.initial_size,
        }
    }

    /// Current size of the file including queued bytes.
    pub fn size(&self) -> u64 {
        self.initial_size + self.lock().enqueued
    }

    /// Queue `data` (whole lines) and return its ticket for [`commit`](Self::commit). The
    /// order of enqueues is the order in the file.
    pub fn enqueue(&self, data: &[u8]) -> Result<u64, WriteError> {
        let mut g = self.lock();
        if let Some(e) = &g.error {
            return Err(WriteError::Io(e.clone()));
        }
        if g.file.is_none() {
            return Err(WriteError::Closed);
        }
        g.pending.extend_from_slice(data);
        g.enqueued += data.len() as u64;
        Ok(g.enqueued)
    }

    /// Make the bytes up to `ticket` as durable as the settings promise (see the module
    /// docs), writing and syncing on behalf of every appender queued so far.
    pub fn commit(&self, ticket: u64) -> Result<(), WriteError> {
        self.drive(ticket, false, false)
    }

    /// Queue and commit.
    pub fn append(&self, data: &[u8]) -> Result<(), WriteError> {
        let t = self.enqueue(data)?;
        self.commit(t)
    }

    /// Write everything queued and fsync it.
    pub fn flush(&self) -> Result<(), WriteError> {
        let t = self.lock().enqueued;
        self.drive(t, true, true)
    }

    /// Flush (fsync unless the policy is `Never`) and close the file. Later appends fail with
    /// [`WriteError::Closed`]; closing twice is fine.
    pub fn close(&self) -> Result<(), WriteError> {
        let t = self.lock().enqueued;
        if self.lock().file.is_some() {
            self.drive(t, true, self.policy != FsyncPolicy::Never)?;
        }
        let mut g = self.lock();
        while g.busy {
            g = self.cond.wait(g).unwrap_or_else(|p| p.into_inner());
        }
        g.file = None;
        Ok(())
    }

    fn drive(&self, ticket: u64, force_write: bool, force_sync: bool) -> Result<(), WriteError> {
        let mut g = self.lock();
        loop {
            if let Some(e) = &g.error {
                return Err(WriteError::Io(e.clone()));
            }
            let interval_due = match self.policy {
                FsyncPolicy::Interval(d) => g.last_sync.elapsed() >= d,
                _ => false,
            };
            let need_sync = force_sync || self.policy == FsyncPolicy::Always || interval_due;
            let need_write =
                force_write || need_sync || self.sync_writes || g.pending.len() >= BUFFER_LIMIT;
            let done = (!need_write || g.written >= ticket) && (!need_sync || g.synced >= ticket);
            if done {
                return Ok(());
            }
            if g.busy {
                g = self.cond.wait(g).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            let Some(file) = g.file.clone() else {
                return Err(WriteError::Closed);
            };
            // Become the leader: write and sync everything queued so far.
            g.busy = true;
            let buf = std::mem::take(&mut g.pending);
            let target = g.enqueued;
            drop(g);
            let mut res = Ok(());
            if !buf.is_empty() {
                res = (&*file)
                    .write_all(&buf)
                    .map_err(|e| io_err(&self.path, "cannot write", e));
            }
            if res.is_ok() && need_sync {
                res = file
                    .sync_data()
                    .map_err(|e| io_err(&self.path, "cannot fsync", e));
            }
            g = self.lock();
            g.busy = false;
            match res {
                Ok(()) => {
                    if !buf.is_empty() {
                        g.writes += 1;
                    }
                    g.written = target;
                    if need_sync {
                        g.synced = target;
                        g.syncs += 1;
                        g.last_sync = Instant::now();
                    }
                    if g.pending.is_empty() {
                        let mut buf = buf;
                        buf.clear();
                        g.pending = buf;
                    }
                }
                Err(WriteError::Io(m)) => g.error = Some(m),
                Err(WriteError::Closed) => g.error = Some("closed".into()),
            }
            self.cond.notify_all();
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        let g = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if let (Some(f), None) = (&g.file, &g.error) {
            if !g.pending.is_empty() {
                let _ = (&**f).write_all(&g.pending);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("proxilion-writer-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn always_writes_and_syncs_each_append() {
        let p = tmp("always");
        let w = LogWriter::open(&p, FsyncPolicy::Always, true).unwrap();
        w.append(b"a\n").unwrap();
        w.append(b"b\n").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"a\nb\n");
        let s = w.stats();
        assert_eq!((s.written, s.synced, s.syncs), (4, 4, 2));
        w.close().unwrap();
        assert_eq!(w.append(b"c\n"), Err(WriteError::Closed));
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn buffered_never_waits_for_flush() {
        let p = tmp("never");
        let w = LogWriter::open(&p, FsyncPolicy::Never, false).unwrap();
        w.append(b"a\n").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"");
        assert_eq!(w.size(), 2);
        w.flush().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"a\n");
        assert_eq!(w.stats().syncs, 1);
        // Reaching the buffer limit writes without a flush.
        let big = vec![b'x'; BUFFER_LIMIT];
        w.append(&big).unwrap();
        assert_eq!(std::fs::read(&p).unwrap().len(), 2 + BUFFER_LIMIT);
        // Closing writes what is buffered even under `Never`, without an fsync.
        w.append(b"z\n").unwrap();
        w.close().unwrap();
        assert_eq!(std::fs::read(&p).unwrap().len(), 4 + BUFFER_LIMIT);
        assert_eq!(w.stats().syncs, 1);
        drop(w);
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn interval_syncs_when_due() {
        let p = tmp("interval");
        let w = LogWriter::open(&p, FsyncPolicy::Interval(Duration::ZERO), true).unwrap();
        w.append(b"a\n").unwrap();
        assert_eq!(w.stats().syncs, 1);
        let w2 =
            LogWriter::open(&p, FsyncPolicy::Interval(Duration::from_secs(3600)), true).unwrap();
        w2.append(b"b\n").unwrap();
        let s = w2.stats();
        assert_eq!((s.written, s.syncs, s.initial_size), (2, 0, 2));
        w2.close().unwrap();
        assert_eq!(w2.stats().syncs, 1);
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn group_commit_from_threads_keeps_every_line() {
        let p = tmp("group");
        let w = Arc::new(LogWriter::open(&p, FsyncPolicy::Always, true).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let w = Arc::clone(&w);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        w.append(format!("{t}-{i}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 200);
        let s = w.stats();
        assert_eq!(s.synced, s.enqueued);
        assert!(s.syncs <= 200);
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn open_failure_is_an_error() {
        let e = LogWriter::open(
            Path::new("/nonexistent-dir/x/y.jsonl"),
            FsyncPolicy::Never,
            true,
        )
        .unwrap_err();
        assert!(matches!(e, WriteError::Io(m) if m.contains("cannot open")));
    }
}
