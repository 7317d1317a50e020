//! `[logger]`: log lines to stderr, stdout, a file, syslog, or nowhere, without
//! ever making a service wait for the reader. On stderr read by journald (under
//! systemd, or `type = journal`) each line starts with its priority, `<3>` to
//! `<7>` as sd-daemon(3) has it, and carries no timestamp: the journal keeps its own.
//!
//! A thread that logs only formats its line (simplelog's format, or a syslog frame)
//! and puts it in a queue of at most [`QUEUE_BYTES`]; one `log` thread writes the
//! queue out. A reader that stops reading (a stalled pipe, a frozen journal) blocks
//! that thread alone: the queue fills, further lines are dropped and counted, and
//! once the reader catches up a line says how many were lost. The DHCP and TFTP
//! loops, and the shutdown, never wait on a write.

use std::cell::RefCell;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use log::{Level, LevelFilter, Metadata, Record};
use simplelog::{ConfigBuilder, ThreadLogMode, WriteLogger};

use crate::config::{LogTarget, LoggerConfig};
use crate::syslog::{SyslogFormat, SyslogSink};

pub const SYSLOG_SOCKET: &str = "/dev/log";

/// The most log text waiting for the reader (about 8,000 lines): beyond it lines
/// are dropped and counted. A reader that keeps up never sees it.
pub const QUEUE_BYTES: usize = 1 << 20;

/// How long bootd, when it exits, waits for the log lines still queued to be
/// written: long enough for a reader that keeps up, short enough that a stalled
/// one does not hold the exit back.
pub const EXIT_FLUSH: Duration = Duration::from_millis(300);

/// Where the `log` thread writes lines. It may block: only that thread waits.
pub trait Sink: Send {
    fn write_line(&mut self, line: &[u8]);
    /// Opens the destination again (a log file renamed by logrotate); a sink with
    /// nothing to reopen has nothing to do.
    fn reopen(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// `type = file`: the file by its path, so that a rotation can be followed.
struct FileSink {
    path: std::path::PathBuf,
    file: std::fs::File,
}

impl FileSink {
    fn open(path: &Path) -> Result<FileSink, String> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| {
                format!(
                    "[logger] file = {}: cannot open the log file for appending: {e}",
                    path.display()
                )
            })?;
        Ok(FileSink {
            path: path.to_path_buf(),
            file,
        })
    }
}

impl Sink for FileSink {
    fn write_line(&mut self, line: &[u8]) {
        let _ = self.file.write_all(line);
    }

    /// Lines keep going to the old file when the new one cannot be opened.
    fn reopen(&mut self) -> Result<(), String> {
        *self = FileSink::open(&self.path)?;
        Ok(())
    }
}

/// stderr, stdout or a file: one `write_all` per line (a failed write loses that
/// line; there is nowhere to report it).
struct StreamSink<W: Write + Send>(W);

impl<W: Write + Send> Sink for StreamSink<W> {
    fn write_line(&mut self, line: &[u8]) {
        let _ = self.0.write_all(line);
        let _ = self.0.flush();
    }
}

enum Item {
    Line(Vec<u8>),
    /// Answered once every line queued before it has been written.
    Flush(Sender<()>),
    /// Reopen the sink, after the lines queued before it; a failure is said in
    /// the sink still open.
    Reopen,
}

/// The queue between the threads that log and the `log` thread: bounded in bytes,
/// never blocking the side that pushes.
pub struct LogQueue {
    sender: Sender<Item>,
    capacity: usize,
    queued: AtomicUsize,
    dropped: AtomicU64,
}

impl LogQueue {
    /// A queue holding at most `capacity` bytes of lines, and its receiving end.
    fn new(capacity: usize) -> (Arc<LogQueue>, Receiver<Item>) {
        // Unbounded in count: the bound is on bytes, kept by `queued`.
        let (sender, receiver) = crossbeam_channel::unbounded();
        let queue = LogQueue {
            sender,
            capacity,
            queued: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
        };
        (Arc::new(queue), receiver)
    }

    /// Queues `line`, or drops and counts it when the queue is full. A line longer
    /// than the whole queue is taken when the queue is empty, so no message is too
    /// long to ever be logged.
    fn push(&self, line: Vec<u8>) {
        let len = line.len();
        let reserved = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                (queued == 0 || queued.saturating_add(len) <= self.capacity)
                    .then_some(queued.saturating_add(len))
            });
        if reserved.is_err() || self.sender.send(Item::Line(line)).is_err() {
            if reserved.is_ok() {
                self.queued.fetch_sub(len, Ordering::AcqRel);
            }
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits up to `timeout` for every line queued so far to be written; false
    /// when the writer did not get there in time.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (done, wait) = crossbeam_channel::bounded(1);
        self.sender.send(Item::Flush(done)).is_ok() && wait.recv_timeout(timeout).is_ok()
    }
}

/// The `log` thread's loop: writes each queued line to `sink`; when the queue has
/// run dry after lines were dropped, says how many. Returns when every sender is gone.
fn drain(receiver: &Receiver<Item>, queue: &LogQueue, format: &Format, sink: &mut dyn Sink) {
    loop {
        let item = match receiver.try_recv() {
            Ok(item) => item,
            Err(TryRecvError::Empty) => {
                // Caught up: whatever was dropped was dropped before this point.
                let dropped = queue.dropped.swap(0, Ordering::Relaxed);
                if dropped > 0 {
                    let notice = format.line(
                        &Record::builder()
                            .level(Level::Warn)
                            .args(format_args!(
                                "{dropped} log lines dropped: the log reader was too slow"
                            ))
                            .build(),
                    );
                    sink.write_line(&notice);
                    continue;
                }
                match receiver.recv() {
                    Ok(item) => item,
                    Err(_) => return,
                }
            }
            Err(TryRecvError::Disconnected) => return,
        };
        match item {
            Item::Line(line) => {
                queue.queued.fetch_sub(line.len(), Ordering::AcqRel);
                sink.write_line(&line);
            }
            Item::Flush(done) => {
                let _ = done.send(());
            }
            Item::Reopen => {
                if let Err(e) = sink.reopen() {
                    let line = format.line(
                        &Record::builder()
                            .level(Level::Error)
                            .args(format_args!(
                                "{e}; logging goes on to the file already open"
                            ))
                            .build(),
                    );
                    sink.write_line(&line);
                }
            }
        }
    }
}

thread_local! {
    /// The record being formatted by this thread (see [`RecordWriter`]).
    static RECORD: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// What simplelog writes a record into: the calling thread's own buffer, taken
/// whole once simplelog is done, so that a message with a newline in it stays one
/// queue entry.
struct RecordWriter;

impl Write for RecordWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        // Past thread-local destruction the bytes are lost: a line from a dying thread.
        let _ = RECORD.try_with(|record| record.borrow_mut().extend_from_slice(bytes));
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How a record becomes a line.
enum Format {
    /// simplelog's: `2026-05-01T10:00:00.1+02:00 [INFO] (bootp) …`.
    Text(Box<WriteLogger<RecordWriter>>),
    Syslog(SyslogFormat),
    /// For journald's stream: `<6>(bootp) …`.
    Journal,
}

impl Format {
    fn text(level: LevelFilter) -> Format {
        let mut builder = ConfigBuilder::new();
        builder
            .set_thread_mode(ThreadLogMode::Names)
            .set_thread_level(LevelFilter::Error)
            .set_target_level(LevelFilter::Off)
            .set_location_level(LevelFilter::Off)
            .set_time_format_rfc3339();
        // The offset can only be read safely while the process has a single thread.
        let _ = builder.set_time_offset_to_local();
        Format::Text(WriteLogger::new(level, builder.build(), RecordWriter))
    }

    /// `record` as one line, newline included; empty when its level is filtered out.
    fn line(&self, record: &Record<'_>) -> Vec<u8> {
        match self {
            Format::Text(logger) => {
                // Whatever a formatting that panicked half-way left behind is not this line's.
                let _ = RECORD.try_with(|line| line.borrow_mut().clear());
                log::Log::log(logger.as_ref(), record);
                RECORD
                    .try_with(|line| std::mem::take(&mut *line.borrow_mut()))
                    .unwrap_or_default()
            }
            Format::Syslog(format) => format.line(record),
            Format::Journal => journal_line(record),
        }
    }
}

/// `record` for journald's stream: `<N>` and the thread's name, no time. Every line
/// of a message with newlines gets the prefix, as journald makes each line an entry.
fn journal_line(record: &Record<'_>) -> Vec<u8> {
    let prefix = format!("<{}>", crate::systemd::priority(record.level()));
    let thread = std::thread::current();
    let message = match thread.name() {
        Some(name) if name != "main" => format!("({name}) {}", record.args()),
        _ => record.args().to_string(),
    };
    let mut line = String::with_capacity(message.len() + 8);
    for part in message.split('\n') {
        line.push_str(&prefix);
        line.push_str(part);
        line.push('\n');
    }
    line.into_bytes()
}

/// The installed logger: formats in the caller's thread, queues, never writes.
struct QueueLogger {
    level: LevelFilter,
    format: Arc<Format>,
    queue: Arc<LogQueue>,
}

impl log::Log for QueueLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = self.format.line(record);
        if !line.is_empty() {
            self.queue.push(line);
        }
    }

    fn flush(&self) {}
}

/// The queue of the installed logger, for [`flush`].
static QUEUE: OnceLock<Arc<LogQueue>> = OnceLock::new();

/// Installs the logger `config` asks for and starts its `log` thread. Call once,
/// before any other thread starts (the local time offset is read here).
pub fn init(config: &LoggerConfig) -> Result<(), String> {
    let level = config.level;
    let (format, sink): (Format, Box<dyn Sink>) = match config.target {
        LogTarget::None => {
            log::set_max_level(LevelFilter::Off);
            return Ok(());
        }
        LogTarget::Stderr if crate::systemd::stderr_is_journal() => {
            (Format::Journal, Box::new(StreamSink(io::stderr())))
        }
        LogTarget::Stderr => (Format::text(level), Box::new(StreamSink(io::stderr()))),
        LogTarget::Journal => (Format::Journal, Box::new(StreamSink(io::stderr()))),
        LogTarget::Stdout => (Format::text(level), Box::new(StreamSink(io::stdout()))),
        LogTarget::File => {
            let path = config
                .file
                .as_deref()
                .ok_or("[logger] type = file needs [logger] file = /path/to/bootd.log")?;
            (Format::text(level), Box::new(FileSink::open(path)?))
        }
        LogTarget::Syslog => {
            let sink = SyslogSink::connect(Path::new(SYSLOG_SOCKET)).map_err(|e| {
                format!(
                    "[logger] type = syslog: cannot connect to {SYSLOG_SOCKET} ({e}); is rsyslog or journald running? Under systemd, type = stderr also reaches the journal"
                )
            })?;
            (Format::Syslog(SyslogFormat::new(level)), Box::new(sink))
        }
    };
    let (queue, receiver) = LogQueue::new(QUEUE_BYTES);
    let format = Arc::new(format);
    let logger = QueueLogger {
        level,
        format: Arc::clone(&format),
        queue: Arc::clone(&queue),
    };
    log::set_boxed_logger(Box::new(logger))
        .map_err(|e| format!("cannot install the logger: {e}"))?;
    log::set_max_level(level);
    let writer_queue = Arc::clone(&queue);
    let mut sink = sink;
    // Never joined: at exit it may be blocked in a write, and the process ends it.
    std::thread::Builder::new()
        .name("log".into())
        .spawn(move || drain(&receiver, &writer_queue, &format, sink.as_mut()))
        .map_err(|e| format!("cannot start the logging thread: {e}"))?;
    let _ = QUEUE.set(queue);
    Ok(())
}

/// Lets the `log` thread write what is queued, waiting at most `timeout`: called
/// as bootd exits, so that its last lines are not lost to a reader that keeps up.
pub fn flush(timeout: Duration) {
    if let Some(queue) = QUEUE.get() {
        queue.flush(timeout);
    }
}

/// Reopens the log file (SIGHUP, after logrotate renamed it): lines logged
/// before go to the old file, lines logged after to the new one. Other
/// destinations have nothing to reopen.
pub fn reopen() {
    if let Some(queue) = QUEUE.get() {
        let _ = queue.sender.send(Item::Reopen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Instant;

    /// A sink whose reader can be stalled: `write_line` waits while the gate is shut.
    #[derive(Clone, Default)]
    struct Reader {
        lines: Arc<Mutex<Vec<String>>>,
        gate: Arc<(Mutex<bool>, std::sync::Condvar)>,
    }

    impl Reader {
        fn stall(&self, stalled: bool) {
            *self.gate.0.lock().unwrap() = stalled;
            self.gate.1.notify_all();
        }

        fn lines(&self) -> Vec<String> {
            self.lines.lock().unwrap().clone()
        }

        fn wait_for(&self, count: usize) -> Vec<String> {
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.lines().len() < count && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            self.lines()
        }
    }

    impl Sink for Reader {
        fn write_line(&mut self, line: &[u8]) {
            let mut stalled = self.gate.0.lock().unwrap();
            while *stalled {
                stalled = self.gate.1.wait(stalled).unwrap();
            }
            drop(stalled);
            self.lines
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(line).into_owned());
        }
    }

    fn record(args: std::fmt::Arguments<'_>, f: impl FnOnce(&Record<'_>)) {
        f(&Record::builder().level(Level::Info).args(args).build());
    }

    /// A queue of `capacity` bytes with its `log` thread writing to `reader`.
    fn started(capacity: usize, reader: &Reader) -> (QueueLogger, Arc<LogQueue>) {
        let (queue, receiver) = LogQueue::new(capacity);
        let format = Arc::new(Format::text(LevelFilter::Debug));
        let logger = QueueLogger {
            level: LevelFilter::Debug,
            format: Arc::clone(&format),
            queue: Arc::clone(&queue),
        };
        let writer_queue = Arc::clone(&queue);
        let mut sink = reader.clone();
        std::thread::spawn(move || drain(&receiver, &writer_queue, &format, &mut sink));
        (logger, queue)
    }

    #[test]
    fn lines_keep_simplelogs_format_and_a_message_with_a_newline_stays_one_line() {
        let reader = Reader::default();
        let (logger, _queue) = started(1 << 16, &reader);
        record(format_args!("first\nsecond"), |r| log::Log::log(&logger, r));
        let lines = reader.wait_for(1);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        // `2026-…Z [INFO] (thread) first\nsecond\n`: time, level, thread, message.
        assert!(line.contains(" [INFO] ("), "{line}");
        assert!(line.ends_with(") first\nsecond\n"), "{line}");
    }

    #[test]
    fn journal_lines_carry_their_priority_and_no_time() {
        let line = |level, args: std::fmt::Arguments<'_>| {
            let text = journal_line(&Record::builder().level(level).args(args).build());
            String::from_utf8(text).unwrap()
        };
        let name = std::thread::current().name().map(str::to_string);
        let thread = match name.as_deref() {
            Some(name) if name != "main" => format!("({name}) "),
            _ => String::new(),
        };
        assert_eq!(
            line(Level::Error, format_args!("cannot bind")),
            format!("<3>{thread}cannot bind\n")
        );
        assert_eq!(
            line(Level::Warn, format_args!("w")),
            format!("<4>{thread}w\n")
        );
        assert_eq!(
            line(Level::Info, format_args!("i")),
            format!("<6>{thread}i\n")
        );
        assert_eq!(
            line(Level::Debug, format_args!("two\nlines")),
            format!("<7>{thread}two\n<7>lines\n")
        );
    }

    #[test]
    fn a_stalled_reader_blocks_no_caller_and_is_told_how_many_lines_were_lost() {
        let reader = Reader::default();
        reader.stall(true);
        let (logger, _queue) = started(4096, &reader);
        let started_at = Instant::now();
        for n in 0..10_000 {
            record(format_args!("line {n}"), |r| log::Log::log(&logger, r));
        }
        assert!(
            started_at.elapsed() < Duration::from_secs(2),
            "logging waited on the stalled reader: {:?}",
            started_at.elapsed()
        );
        reader.stall(false);
        let kept = reader.wait_for(2);
        // Wait until the notice, which comes once the queue has run dry.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut lines = kept;
        while !lines.iter().any(|l| l.contains("dropped")) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            lines = reader.lines();
        }
        let notice = lines
            .iter()
            .find(|l| l.contains("log lines dropped"))
            .unwrap_or_else(|| panic!("no notice in {lines:?}"));
        assert!(
            notice.contains("[WARN]") && notice.ends_with("the log reader was too slow\n"),
            "{notice}"
        );
        let written = lines.len() - 1;
        let dropped: usize = notice
            .split(" log lines dropped")
            .next()
            .and_then(|head| head.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count in {notice}"));
        // Every line is either written or counted, and the queue held no more than
        // its 4096 bytes (lines of about 60 bytes) plus the one being written.
        assert_eq!(
            written + dropped,
            10_000,
            "{written} written, {dropped} dropped"
        );
        assert!(written < 4096 / 40 + 2, "{written} lines written");
        // The first lines were kept, the last ones dropped.
        assert!(lines[0].ends_with(" line 0\n"), "{}", lines[0]);
    }

    #[test]
    fn flush_waits_for_a_reader_that_keeps_up_but_not_for_a_stalled_one() {
        let reader = Reader::default();
        let (logger, queue) = started(1 << 16, &reader);
        record(format_args!("last words"), |r| log::Log::log(&logger, r));
        assert!(queue.flush(Duration::from_secs(5)));
        assert!(reader.lines()[0].ends_with(" last words\n"));

        reader.stall(true);
        record(format_args!("never read"), |r| log::Log::log(&logger, r));
        let started_at = Instant::now();
        assert!(!queue.flush(Duration::from_millis(100)));
        assert!(started_at.elapsed() < Duration::from_secs(1));
        reader.stall(false);
    }

    #[test]
    fn a_line_longer_than_the_queue_is_written_when_the_queue_is_empty() {
        let reader = Reader::default();
        let (logger, queue) = started(64, &reader);
        let long = "x".repeat(1000);
        record(format_args!("{long}"), |r| log::Log::log(&logger, r));
        assert!(queue.flush(Duration::from_secs(5)));
        let lines = reader.lines();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].ends_with(&format!("{long}\n")));
    }

    #[test]
    fn a_renamed_log_file_is_followed_by_reopening_it() {
        let dir = std::env::temp_dir().join(format!("bootd-log-reopen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bootd.log");
        let mut sink = FileSink::open(&path).unwrap();
        sink.write_line(b"before\n");
        // logrotate: the file is renamed, and bootd is told with SIGHUP.
        std::fs::rename(&path, dir.join("bootd.log.1")).unwrap();
        sink.write_line(b"still old\n");
        sink.reopen().unwrap();
        sink.write_line(b"after\n");
        let old = std::fs::read_to_string(dir.join("bootd.log.1")).unwrap();
        assert_eq!(old, "before\nstill old\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
        // A file that cannot be opened again leaves the old one in use.
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(sink.reopen().is_err());
        sink.write_line(b"lost with its directory\n");
    }
}
