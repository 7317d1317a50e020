//! `[logger]` → simplelog: stderr, stdout, a file, syslog, or nothing.

use std::fs::OpenOptions;
use std::path::Path;

use log::LevelFilter;
use simplelog::{CombinedLogger, ConfigBuilder, SharedLogger, ThreadLogMode, WriteLogger};

use crate::config::{LogTarget, LoggerConfig};
use crate::syslog::SyslogLogger;

pub const SYSLOG_SOCKET: &str = "/dev/log";

/// Installs the logger `config` asks for. Call once, before any thread starts.
pub fn init(config: &LoggerConfig) -> Result<(), String> {
    let level = config.level;
    let mut builder = ConfigBuilder::new();
    builder
        .set_thread_mode(ThreadLogMode::Names)
        .set_thread_level(LevelFilter::Error)
        .set_target_level(LevelFilter::Off)
        .set_location_level(LevelFilter::Off)
        .set_time_format_rfc3339();
    // The offset can only be read safely while the process has a single thread.
    let _ = builder.set_time_offset_to_local();
    let format = builder.build();
    let logger: Box<dyn SharedLogger> = match config.target {
        LogTarget::None => {
            log::set_max_level(LevelFilter::Off);
            return Ok(());
        }
        LogTarget::Stderr => WriteLogger::new(level, format, std::io::stderr()),
        LogTarget::Stdout => WriteLogger::new(level, format, std::io::stdout()),
        LogTarget::File => {
            let path = config
                .file
                .as_deref()
                .ok_or("[logger] type = file needs [logger] file = /path/to/bootd.log")?;
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
            WriteLogger::new(level, format, file)
        }
        LogTarget::Syslog => {
            let logger = SyslogLogger::connect(Path::new(SYSLOG_SOCKET), level).map_err(|e| {
                format!(
                    "[logger] type = syslog: cannot connect to {SYSLOG_SOCKET} ({e}); is rsyslog or journald running? Under systemd, type = stderr also reaches the journal"
                )
            })?;
            Box::new(logger)
        }
    };
    CombinedLogger::init(vec![logger]).map_err(|e| format!("cannot install the logger: {e}"))
}
