//! A simplelog logger writing RFC 3164 lines to the local syslog socket
//! (`/dev/log`), which rsyslog and journald both read. simplelog has none.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use log::{LevelFilter, Metadata, Record};
use simplelog::{Config, SharedLogger};
use time::{OffsetDateTime, UtcOffset};

/// Facility `daemon` (RFC 3164 §4.1.1).
const FACILITY_DAEMON: u8 = 3;

pub struct SyslogLogger {
    level: LevelFilter,
    path: PathBuf,
    socket: Mutex<Option<UnixDatagram>>,
    offset: UtcOffset,
    pid: u32,
}

impl SyslogLogger {
    /// Connects at once, so a missing syslog socket is a start-up error, not silence.
    pub fn connect(path: &Path, level: LevelFilter) -> io::Result<SyslogLogger> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(path)?;
        Ok(SyslogLogger {
            level,
            path: path.to_path_buf(),
            socket: Mutex::new(Some(socket)),
            // Read before any thread starts: the local offset cannot be read safely later.
            offset: UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC),
            pid: std::process::id(),
        })
    }

    fn send(&self, line: &[u8]) {
        let Ok(mut guard) = self.socket.lock() else {
            return;
        };
        if let Some(socket) = guard.as_ref()
            && socket.send(line).is_ok()
        {
            return;
        }
        // The syslog daemon may have restarted: reconnect once and retry.
        *guard = UnixDatagram::unbound()
            .and_then(|s| s.connect(&self.path).map(|_| s))
            .ok();
        if let Some(socket) = guard.as_ref() {
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

impl log::Log for SyslogLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let thread = std::thread::current();
        let message = match thread.name() {
            Some(name) if name != "main" => format!("({name}) {}", record.args()),
            _ => record.args().to_string(),
        };
        let now = OffsetDateTime::now_utc().to_offset(self.offset);
        self.send(frame(record.level(), now, self.pid, &message).as_bytes());
    }

    fn flush(&self) {}
}

impl SharedLogger for SyslogLogger {
    fn level(&self) -> LevelFilter {
        self.level
    }

    fn config(&self) -> Option<&Config> {
        None
    }

    fn as_log(self: Box<Self>) -> Box<dyn log::Log> {
        Box::new(*self)
    }
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
        let logger = SyslogLogger::connect(&path, LevelFilter::Info).unwrap();
        log::Log::log(
            &logger,
            &Record::builder()
                .level(log::Level::Info)
                .args(format_args!("hello"))
                .build(),
        );
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
    fn a_missing_socket_is_an_error() {
        assert!(
            SyslogLogger::connect(Path::new("/nonexistent/dev/log"), LevelFilter::Info).is_err()
        );
    }
}
