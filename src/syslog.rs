//! Log lines as RFC 3164 frames on the local syslog socket (`/dev/log`), which
//! rsyslog and journald both read; simplelog has no such logger. Records are
//! framed by the thread that logs, sent by the `log` thread (see `logging`).

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use log::{LevelFilter, Record};
use time::{OffsetDateTime, UtcOffset};

use crate::logging::Sink;

/// Facility `daemon` (RFC 3164 §4.1.1).
const FACILITY_DAEMON: u8 = 3;

/// Turns records into syslog frames, in the thread that logs.
pub struct SyslogFormat {
    level: LevelFilter,
    offset: UtcOffset,
    pid: u32,
}

impl SyslogFormat {
    /// Call before any thread starts: the local offset cannot be read safely later.
    pub fn new(level: LevelFilter) -> SyslogFormat {
        SyslogFormat {
            level,
            offset: UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC),
            pid: std::process::id(),
        }
    }

    /// `record` as one frame; empty when its level is filtered out.
    pub fn line(&self, record: &Record<'_>) -> Vec<u8> {
        if record.level() > self.level {
            return Vec::new();
        }
        let thread = std::thread::current();
        let message = match thread.name() {
            Some(name) if name != "main" => format!("({name}) {}", record.args()),
            _ => record.args().to_string(),
        };
        let now = OffsetDateTime::now_utc().to_offset(self.offset);
        frame(record.level(), now, self.pid, &message).into_bytes()
    }
}

/// The local syslog socket, written by the `log` thread alone.
pub struct SyslogSink {
    path: PathBuf,
    socket: Option<UnixDatagram>,
}

impl SyslogSink {
    /// Connects at once, so a missing syslog socket is a start-up error, not silence.
    pub fn connect(path: &Path) -> io::Result<SyslogSink> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(path)?;
        Ok(SyslogSink {
            path: path.to_path_buf(),
            socket: Some(socket),
        })
    }
}

impl Sink for SyslogSink {
    fn write_line(&mut self, line: &[u8]) {
        if let Some(socket) = &self.socket
            && socket.send(line).is_ok()
        {
            return;
        }
        // The syslog daemon may have restarted: reconnect once and retry.
        self.socket = UnixDatagram::unbound()
            .and_then(|s| s.connect(&self.path).map(|_| s))
            .ok();
        if let Some(socket) = &self.socket {
            let _ = socket.send(line);
        }
    }
}

/// `<PRI>Mmm dd hh:mm:ss bootd[pid]: message`, as glibc's syslog(3) frames it.
pub fn frame(level: log::Level, when: OffsetDateTime, pid: u32, message: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let severity = match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    };
    let month = MONTHS[usize::from(u8::from(when.month())) - 1];
    format!(
        "<{}>{} {:>2} {:02}:{:02}:{:02} bootd[{pid}]: {}",
        FACILITY_DAEMON * 8 + severity,
        month,
        when.day(),
        when.hour(),
        when.minute(),
        when.second(),
        message.replace('\n', " ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_has_priority_timestamp_tag_and_pid() {
        let when = OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap();
        let line = frame(log::Level::Warn, when, 42, "a\nb");
        // daemon (3) * 8 + warning (4) = 28
        assert!(line.starts_with("<28>"), "{line}");
        assert!(line.ends_with(" bootd[42]: a b"), "{line}");
        let line = frame(log::Level::Error, when, 1, "x");
        assert!(line.starts_with("<27>"), "{line}");
    }

    #[test]
    fn a_listening_socket_receives_lines() {
        let dir = std::env::temp_dir().join(format!("bootd-syslog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let mut sink = SyslogSink::connect(&path).unwrap();
        let format = SyslogFormat::new(LevelFilter::Info);
        let line = format.line(
            &Record::builder()
                .level(log::Level::Info)
                .args(format_args!("hello"))
                .build(),
        );
        sink.write_line(&line);
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        let line = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(line.starts_with("<30>"), "{line}");
        assert!(
            line.ends_with("]: hello") || line.contains(") hello"),
            "{line}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn records_below_the_level_make_no_frame() {
        let format = SyslogFormat::new(LevelFilter::Warn);
        let record = Record::builder()
            .level(log::Level::Info)
            .args(format_args!("quiet"))
            .build();
        assert!(format.line(&record).is_empty());
    }

    #[test]
    fn a_missing_socket_is_an_error() {
        assert!(SyslogSink::connect(Path::new("/nonexistent/dev/log")).is_err());
    }
}
