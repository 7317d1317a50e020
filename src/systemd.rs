//! Talking to systemd: the sd_notify(3) messages of a `Type=notify` unit (READY,
//! STATUS, STOPPING) over `$NOTIFY_SOCKET`, and whether stderr is the journal
//! (`$JOURNAL_STREAM`), whose lines then carry their priority.
//!
//! The messages go through the `sd-notify` crate (the `systemd` feature, on by
//! default): it speaks the datagram protocol, abstract socket names included, and
//! is a no-op when bootd was not started by systemd.

use std::os::unix::fs::MetadataExt;

/// One sd_notify(3) assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State<'a> {
    /// `READY=1`: start-up is over, the services listen.
    Ready,
    /// `STATUS=…`: the line `systemctl status` shows.
    Status(&'a str),
    /// `STOPPING=1`: bootd is stopping.
    Stopping,
}

/// Whether systemd (or a test standing in for it) listens for notifications.
pub fn notify_socket_set() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty())
}

/// Sends `states` in one datagram; a failure is logged at debug level only: a
/// service manager that went away must not stop bootd.
pub fn notify(states: &[State<'_>]) {
    #[cfg(feature = "systemd")]
    {
        let states: Vec<sd_notify::NotifyState<'_>> = states
            .iter()
            .map(|s| match s {
                State::Ready => sd_notify::NotifyState::Ready,
                State::Status(text) => sd_notify::NotifyState::Status(text),
                State::Stopping => sd_notify::NotifyState::Stopping,
            })
            .collect();
        if let Err(e) = sd_notify::notify(&states) {
            log::debug!("cannot notify the service manager ({states:?}): {e}");
        }
    }
    #[cfg(not(feature = "systemd"))]
    let _ = states;
}

/// Whether stderr is the journal's stream: systemd sets `$JOURNAL_STREAM` to the
/// `device:inode` of the stream it connects, and a stderr that is still that
/// stream (not redirected by a wrapper) reads `<N>` prefixes as priorities.
pub fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    stream.to_str().and_then(parse_stream) == Some((meta.dev(), meta.ino()))
}

/// `device:inode`, both decimal, as `$JOURNAL_STREAM` holds them.
fn parse_stream(text: &str) -> Option<(u64, u64)> {
    let (device, inode) = text.trim().split_once(':')?;
    Some((device.parse().ok()?, inode.parse().ok()?))
}

/// The syslog priority journald reads from a `<N>` prefix (sd-daemon(3)).
pub fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_stream_is_device_colon_inode() {
        assert_eq!(parse_stream("8:123456"), Some((8, 123456)));
        assert_eq!(parse_stream(" 0:1\n"), Some((0, 1)));
        for bad in ["", "8", "8:", ":1", "a:b", "8:1:2"] {
            assert_eq!(parse_stream(bad), None, "{bad}");
        }
    }

    #[test]
    fn priorities_are_sd_daemons() {
        assert_eq!(priority(log::Level::Error), 3);
        assert_eq!(priority(log::Level::Warn), 4);
        assert_eq!(priority(log::Level::Info), 6);
        assert_eq!(priority(log::Level::Debug), 7);
    }
}
