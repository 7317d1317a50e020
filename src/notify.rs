//! Lease notifications: one UDP datagram per target for every lease event, in
//! pybootd's format (`BOOT,UUID,MAC,IP`, `LEASE,[UUID,]MAC,IP`, `RELEASE,[UUID,]MAC,IP`).
//!
//! [`Notifier`] is the sans-IO part: what to send to whom, and what to tell the
//! sysadmin about a target that fails. [`run`] is the notifier thread around it. Each
//! target has its own socket: datagrams to an address that does not answer ARP wait
//! in the kernel, charged to the socket that sent them, until its send buffer is full;
//! with one shared socket that failure spread to every target. The thread blocks
//! only on its own inbox; a dead target costs its own datagrams, never another
//! target's, nor a delayed DHCP reply.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use log::Level;

use crate::event::{Event, EventKind, LeaseEvent, Message};

/// A target that keeps failing is reported at most once per interval, with the
/// count of notifications it lost.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(60);

/// The datagram payload for `event` (ASCII, no trailing newline).
pub fn datagram(event: &LeaseEvent) -> String {
    let kind = match event.kind {
        EventKind::Boot => "BOOT",
        EventKind::Lease => "LEASE",
        EventKind::Release => "RELEASE",
    };
    match event.uuid {
        Some(uuid) => format!("{kind},{uuid},{},{}", event.mac, event.ip),
        None => format!("{kind},{},{}", event.mac, event.ip),
    }
}

/// One datagram to send: `target` indexes the targets (and their sockets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub target: usize,
    pub destination: SocketAddr,
    pub payload: String,
}

/// A line for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: Level,
    pub line: String,
}

/// A target that failed: what is known since it was last reported.
#[derive(Debug, Clone)]
struct Failing {
    reported_at: Instant,
    /// Notifications lost since `reported_at`.
    lost: u64,
    last_error: String,
    /// A send went through after the last failure.
    recovered: bool,
}

#[derive(Debug, Clone)]
struct Target {
    address: SocketAddr,
    failing: Option<Failing>,
}

/// The notification targets and their health, without sockets or clocks.
#[derive(Debug)]
pub struct Notifier {
    targets: Vec<Target>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<LogLine>,
}

impl Notifier {
    pub fn new(targets: &[SocketAddr]) -> Notifier {
        Notifier {
            targets: targets
                .iter()
                .map(|&address| Target {
                    address,
                    failing: None,
                })
                .collect(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// A lease event: one datagram for each target.
    pub fn handle_lease(&mut self, event: &LeaseEvent) {
        let payload = datagram(event);
        for (index, target) in self.targets.iter().enumerate() {
            self.transmits.push_back(Transmit {
                target: index,
                destination: target.address,
                payload: payload.clone(),
            });
        }
    }

    /// What the socket said when `transmit` was sent (`Err`: why it was not).
    pub fn handle_sent(&mut self, now: Instant, transmit: &Transmit, result: Result<(), String>) {
        let Some(target) = self.targets.get_mut(transmit.target) else {
            return;
        };
        let address = target.address;
        match result {
            Ok(()) => {
                if let Some(failing) = &mut target.failing {
                    failing.recovered = true;
                }
                self.events.push_back(LogLine {
                    level: Level::Debug,
                    line: format!("notified {address}: {}", transmit.payload),
                });
            }
            Err(error) => match &mut target.failing {
                None => {
                    target.failing = Some(Failing {
                        reported_at: now,
                        lost: 0,
                        last_error: error.clone(),
                        recovered: false,
                    });
                    self.events.push_back(LogLine {
                        level: Level::Warn,
                        line: format!(
                            "cannot notify {address} of `{}`: {error}; while it fails, the notifications it misses are counted and reported once every {} s",
                            transmit.payload,
                            REPORT_INTERVAL.as_secs()
                        ),
                    });
                }
                Some(failing) => {
                    failing.lost += 1;
                    failing.last_error = error;
                    failing.recovered = false;
                }
            },
        }
    }

    /// When [`Notifier::handle_timeout`] has a failing target to report on.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.targets
            .iter()
            .filter_map(|t| t.failing.as_ref())
            .map(|f| f.reported_at + REPORT_INTERVAL)
            .min()
    }

    /// Reports each failing target whose interval is over: how many notifications
    /// it lost, or that it takes them again.
    pub fn handle_timeout(&mut self, now: Instant) {
        for target in &mut self.targets {
            let Some(failing) = &mut target.failing else {
                continue;
            };
            if now < failing.reported_at + REPORT_INTERVAL {
                continue;
            }
            let address = target.address;
            let seconds = now.saturating_duration_since(failing.reported_at).as_secs();
            if failing.lost > 0 {
                let lost = failing.lost;
                let recovered = if failing.recovered {
                    "; the last one went through"
                } else {
                    ""
                };
                self.events.push_back(LogLine {
                    level: Level::Warn,
                    line: format!(
                        "{lost} notifications to {address} lost in the last {seconds} s (last error: {}){recovered}",
                        failing.last_error
                    ),
                });
                failing.reported_at = now;
                failing.lost = 0;
                if failing.recovered {
                    target.failing = None;
                }
            } else {
                if failing.recovered {
                    self.events.push_back(LogLine {
                        level: Level::Info,
                        line: format!("notifications to {address} go through again"),
                    });
                }
                // Quiet for a whole interval: its next failure is news again.
                target.failing = None;
            }
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<LogLine> {
        self.events.pop_front()
    }
}

/// A non-blocking socket of its own for one target.
fn target_socket(target: &SocketAddr) -> Result<UdpSocket, String> {
    let local: SocketAddr = match target {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local)
        .map_err(|e| format!("cannot open the notification socket for {target}: {e}"))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| format!("cannot configure the notification socket for {target}: {e}"))?;
    Ok(socket)
}

/// The notifier thread: runs until `Message::Stop` or until every sender is gone.
pub fn run(targets: Vec<SocketAddr>, inbox: Receiver<Message>) -> Result<(), String> {
    let mut targets = targets;
    let mut sockets = targets
        .iter()
        .map(target_socket)
        .collect::<Result<Vec<_>, _>>()?;
    let mut notifier = Notifier::new(&targets);
    loop {
        let message = match notifier.poll_timeout() {
            Some(deadline) => match inbox.recv_deadline(deadline) {
                Ok(message) => Some(message),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            },
            None => match inbox.recv() {
                Ok(message) => Some(message),
                Err(_) => return Ok(()),
            },
        };
        match message {
            Some(Message::Stop) => return Ok(()),
            Some(Message::Event(Event::Lease(event))) => notifier.handle_lease(&event),
            Some(Message::Event(Event::ServerAddress(_))) => {}
            Some(Message::Reload(config)) if config.bootp.notify != targets => {
                // Notifications in flight are single datagrams: nothing is lost
                // by starting the new list afresh, each target with its own socket.
                match config.bootp.notify.iter().map(target_socket).collect() {
                    Ok(opened) => {
                        targets = config.bootp.notify.clone();
                        sockets = opened;
                        notifier = Notifier::new(&targets);
                        log::info!("reload: notifications go to {} targets now", targets.len());
                    }
                    Err(e) => log::error!("reload: {e}; the notify targets stay as they were"),
                }
            }
            Some(Message::Reload(_)) => {}
            None => notifier.handle_timeout(Instant::now()),
        }
        while let Some(transmit) = notifier.poll_transmit() {
            let result = match sockets.get(transmit.target) {
                Some(socket) => socket
                    .send_to(transmit.payload.as_bytes(), transmit.destination)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                None => Err("no socket".into()),
            };
            notifier.handle_sent(Instant::now(), &transmit, result);
        }
        while let Some(LogLine { level, line }) = notifier.poll_event() {
            log::log!(level, "{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Mailbox;
    use crate::types::{MacAddr, Uuid};

    fn event(kind: EventKind, uuid: Option<u128>) -> LeaseEvent {
        LeaseEvent {
            kind,
            mac: MacAddr([0x00, 0x0a, 0x86, 0xa2, 0x2f, 0x3e]),
            uuid: uuid.map(Uuid),
            ip: Ipv4Addr::new(10, 0, 0, 100),
            boot_file: Some("pxelinux.0".into()),
            server_ip: Ipv4Addr::new(10, 0, 0, 1),
        }
    }

    #[test]
    fn payloads() {
        let uuid = 0x12345678_abcd_ef00_1111_abcdefabcdef;
        assert_eq!(
            datagram(&event(EventKind::Boot, Some(uuid))),
            "BOOT,12345678-abcd-ef00-1111-abcdefabcdef,00-0A-86-A2-2F-3E,10.0.0.100"
        );
        assert_eq!(
            datagram(&event(EventKind::Lease, None)),
            "LEASE,00-0A-86-A2-2F-3E,10.0.0.100"
        );
        assert_eq!(
            datagram(&event(EventKind::Release, Some(uuid))),
            "RELEASE,12345678-abcd-ef00-1111-abcdefabcdef,00-0A-86-A2-2F-3E,10.0.0.100"
        );
    }

    fn targets() -> Vec<SocketAddr> {
        vec![
            "10.0.0.77:7000".parse().unwrap(),
            "10.0.0.2:7000".parse().unwrap(),
        ]
    }

    /// Sends every queued datagram; those to target 0 fail with `error`.
    fn send_all(notifier: &mut Notifier, now: Instant, error: Option<&str>) -> Vec<Transmit> {
        let mut sent = Vec::new();
        while let Some(t) = notifier.poll_transmit() {
            let result = match error {
                Some(e) if t.target == 0 => Err(e.to_string()),
                _ => Ok(()),
            };
            notifier.handle_sent(now, &t, result);
            sent.push(t);
        }
        sent
    }

    /// The log lines above debug level.
    fn reports(notifier: &mut Notifier) -> Vec<String> {
        std::iter::from_fn(|| notifier.poll_event())
            .filter(|l| l.level < Level::Debug)
            .map(|l| format!("{}: {}", l.level, l.line))
            .collect()
    }

    #[test]
    fn each_lease_event_is_one_datagram_per_target() {
        let mut notifier = Notifier::new(&targets());
        notifier.handle_lease(&event(EventKind::Lease, None));
        let sent = send_all(&mut notifier, Instant::now(), None);
        assert_eq!(
            sent.iter()
                .map(|t| (t.target, t.destination.to_string(), t.payload.as_str()))
                .collect::<Vec<_>>(),
            vec![
                (
                    0,
                    "10.0.0.77:7000".into(),
                    "LEASE,00-0A-86-A2-2F-3E,10.0.0.100"
                ),
                (
                    1,
                    "10.0.0.2:7000".into(),
                    "LEASE,00-0A-86-A2-2F-3E,10.0.0.100"
                ),
            ]
        );
        assert_eq!(notifier.poll_timeout(), None, "no target fails");
        let lines: Vec<LogLine> = std::iter::from_fn(|| notifier.poll_event()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].level, Level::Debug);
        assert_eq!(
            lines[1].line,
            "notified 10.0.0.2:7000: LEASE,00-0A-86-A2-2F-3E,10.0.0.100"
        );
    }

    #[test]
    fn a_failing_target_is_reported_at_once_then_once_a_minute_with_what_it_lost() {
        let start = Instant::now();
        let mut notifier = Notifier::new(&targets());
        let eagain = "Resource temporarily unavailable (os error 11)";
        for n in 0..100u64 {
            notifier.handle_lease(&event(EventKind::Lease, None));
            send_all(
                &mut notifier,
                start + Duration::from_millis(n * 100),
                Some(eagain),
            );
        }
        // The first failure at once, then nothing more for 10 s of failures.
        assert_eq!(
            reports(&mut notifier),
            vec![format!(
                "WARN: cannot notify 10.0.0.77:7000 of `LEASE,00-0A-86-A2-2F-3E,10.0.0.100`: {eagain}; while it fails, the notifications it misses are counted and reported once every 60 s"
            )]
        );
        assert_eq!(notifier.poll_timeout(), Some(start + REPORT_INTERVAL));
        notifier.handle_timeout(start + Duration::from_secs(59));
        assert_eq!(reports(&mut notifier), Vec::<String>::new());
        notifier.handle_timeout(start + REPORT_INTERVAL);
        assert_eq!(
            reports(&mut notifier),
            vec![format!(
                "WARN: 99 notifications to 10.0.0.77:7000 lost in the last 60 s (last error: {eagain})"
            )]
        );
        // A minute with no failure but a success: it is said to work again.
        let later = start + REPORT_INTERVAL + Duration::from_secs(1);
        notifier.handle_lease(&event(EventKind::Lease, None));
        send_all(&mut notifier, later, None);
        notifier.handle_timeout(start + REPORT_INTERVAL * 2);
        assert_eq!(
            reports(&mut notifier),
            vec!["INFO: notifications to 10.0.0.77:7000 go through again".to_string()]
        );
        assert_eq!(notifier.poll_timeout(), None);
        // Its next failure is news again.
        notifier.handle_lease(&event(EventKind::Lease, None));
        send_all(&mut notifier, start + REPORT_INTERVAL * 3, Some(eagain));
        assert_eq!(reports(&mut notifier).len(), 1);
    }

    #[test]
    fn a_target_that_fails_and_recovers_often_is_still_reported_once_a_minute() {
        let start = Instant::now();
        let mut notifier = Notifier::new(&targets());
        for n in 0..=600u64 {
            notifier.handle_lease(&event(EventKind::Lease, None));
            let error = (n % 2 == 0).then_some("Network is unreachable (os error 101)");
            let now = start + Duration::from_millis(n * 100);
            send_all(&mut notifier, now, error);
            if notifier.poll_timeout().is_some_and(|t| t <= now) {
                notifier.handle_timeout(now);
            }
        }
        // 60 s of flapping: the first failure, and one summary a minute later.
        let lines = reports(&mut notifier);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[1].starts_with("WARN: 300 notifications to 10.0.0.77:7000 lost in the last 60 s"),
            "{lines:?}"
        );
    }

    #[test]
    fn every_target_receives_each_event_and_a_dead_one_does_not_block() {
        let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        // A port nobody listens on: sends fail or vanish, the thread goes on.
        let dead: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let targets = vec![dead, listener.local_addr().unwrap()];
        let (mailbox, inbox) = Mailbox::new(8, None);
        let thread = std::thread::spawn(move || run(targets, inbox));
        mailbox.send(Message::Event(Event::Lease(event(EventKind::Lease, None))));
        mailbox.send(Message::Event(Event::Lease(event(
            EventKind::Release,
            None,
        ))));
        let mut buf = [0u8; 128];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"LEASE,00-0A-86-A2-2F-3E,10.0.0.100");
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"RELEASE,00-0A-86-A2-2F-3E,10.0.0.100");
        mailbox.send(Message::Stop);
        assert_eq!(thread.join().unwrap(), Ok(()));
    }
}
