//! The one-line status bootd gives its service manager (`systemctl status bootd`):
//! the networks served, the bindings held and the file transfers in flight.
//! Sans-IO: it is fed the lease records read at start, the lease events the BOOTP
//! service publishes and, every [`SAMPLE_EVERY`], the number of transfers the file
//! services have under way, and says when a changed line is due; it is sent at
//! most every [`MIN_INTERVAL`], so a burst of machines costs one message.
//!
//! The count follows what the BOOTP service publishes (an ACK binds an address to
//! a MAC, a RELEASE ends it): a decline, which is not published, is counted until
//! its address is bound again. It is a status line, not an inventory; `bootd
//! leases` reads the lease file itself.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::bootp::leases::{LeaseRecord, RecordState};
use crate::event::{Event, EventKind};
use crate::types::MacAddr;

/// The shortest time between two status messages.
pub const MIN_INTERVAL: Duration = Duration::from_secs(2);

/// How often the transfers in flight are counted again: transfers start and end
/// by the hundred in a boot storm, and a status line is read by a person.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct StatusLine {
    /// Networks served by the BOOTP service; `None` when it does not run.
    networks: Option<usize>,
    /// Each bound address's MAC, and each MAC's address: an address has one
    /// holder, a MAC one address. Bounded by the addresses bootd may hand out.
    by_ip: HashMap<Ipv4Addr, MacAddr>,
    by_mac: HashMap<MacAddr, Ipv4Addr>,
    /// File transfers in flight at the last sample, and when it was taken.
    transfers: usize,
    sampled: Option<Instant>,
    /// The last line sent, and when.
    sent: Option<(String, Instant)>,
    /// When the first line is due.
    start: Instant,
}

impl StatusLine {
    /// The status of `networks` served networks (`None`: no BOOTP service) holding
    /// the bindings of `records` (a lease file's, in order: later lines win); its
    /// first line is due at `now`.
    pub fn new(now: Instant, networks: Option<usize>, records: &[LeaseRecord]) -> StatusLine {
        let mut status = StatusLine {
            networks,
            by_ip: HashMap::new(),
            by_mac: HashMap::new(),
            transfers: 0,
            sampled: None,
            sent: None,
            start: now,
        };
        for record in records {
            match record.state {
                RecordState::Bound => status.bind(record.mac, record.ip),
                RecordState::Released | RecordState::Declined => status.unbind(record.mac),
            }
        }
        status
    }

    /// Takes what the BOOTP service published.
    pub fn handle_event(&mut self, event: &Event) {
        if let Event::Lease(lease) = event {
            match lease.kind {
                EventKind::Boot | EventKind::Lease => self.bind(lease.mac, lease.ip),
                EventKind::Release => self.unbind(lease.mac),
            }
        }
    }

    /// Whether the transfers in flight are due to be counted again at `now`.
    pub fn sample_due(&self, now: Instant) -> bool {
        now >= self.next_sample()
    }

    /// Takes the number of file transfers in flight, counted at `now`.
    pub fn handle_transfers(&mut self, now: Instant, transfers: usize) {
        self.transfers = transfers;
        self.sampled = Some(now);
    }

    fn next_sample(&self) -> Instant {
        self.sampled.map_or(self.start, |at| at + SAMPLE_EVERY)
    }

    fn bind(&mut self, mac: MacAddr, ip: Ipv4Addr) {
        if let Some(previous) = self.by_ip.insert(ip, mac)
            && previous != mac
        {
            self.by_mac.remove(&previous);
        }
        if let Some(old) = self.by_mac.insert(mac, ip)
            && old != ip
        {
            self.by_ip.remove(&old);
        }
    }

    fn unbind(&mut self, mac: MacAddr) {
        if let Some(ip) = self.by_mac.remove(&mac) {
            self.by_ip.remove(&ip);
        }
    }

    /// `3 networks, 12 bindings, 0 transfers`.
    pub fn text(&self) -> String {
        let transfers = count(self.transfers, "transfer");
        match self.networks {
            Some(networks) => format!(
                "{}, {}, {transfers}",
                count(networks, "network"),
                count(self.by_mac.len(), "binding")
            ),
            None => format!("no DHCP service: no bindings, {transfers}"),
        }
    }

    /// When to call again: a changed line due, or the next count of transfers.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let line = match &self.sent {
            Some((text, at)) if *text != self.text() => *at + MIN_INTERVAL,
            Some(_) => self.next_sample(),
            None => self.start,
        };
        Some(line.min(self.next_sample()))
    }

    /// The line to send at `now`: the first one, or a changed one once
    /// [`MIN_INTERVAL`] has passed since the last.
    pub fn poll_status(&mut self, now: Instant) -> Option<String> {
        let text = self.text();
        let due = match &self.sent {
            None => true,
            Some((sent, at)) => *sent != text && now >= *at + MIN_INTERVAL,
        };
        if !due {
            return None;
        }
        self.sent = Some((text.clone(), now));
        Some(text)
    }
}

/// `1 network`, `2 networks`.
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::LeaseEvent;

    fn mac(n: u8) -> MacAddr {
        format!("02-00-00-00-00-{n:02X}").parse().unwrap()
    }

    fn ip(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, n)
    }

    fn record(m: u8, a: u8, state: RecordState) -> LeaseRecord {
        LeaseRecord {
            mac: mac(m),
            ip: ip(a),
            epoch: 1,
            state,
            pxe: false,
            uuid: None,
        }
    }

    fn event(kind: EventKind, m: u8, a: u8) -> Event {
        Event::Lease(LeaseEvent {
            kind,
            mac: mac(m),
            uuid: None,
            ip: ip(a),
            boot_file: None,
            server_ip: ip(1),
        })
    }

    #[test]
    fn the_lease_file_gives_the_first_count_and_later_lines_win() {
        let records = [
            record(1, 100, RecordState::Bound),
            record(2, 101, RecordState::Bound),
            record(2, 101, RecordState::Released),
            record(3, 102, RecordState::Bound),
            record(3, 103, RecordState::Bound),
        ];
        let status = StatusLine::new(Instant::now(), Some(3), &records);
        assert_eq!(status.text(), "3 networks, 2 bindings, 0 transfers");
        assert_eq!(
            StatusLine::new(Instant::now(), Some(1), &[]).text(),
            "1 network, 0 bindings, 0 transfers"
        );
        assert_eq!(
            StatusLine::new(Instant::now(), None, &[]).text(),
            "no DHCP service: no bindings, 0 transfers"
        );
    }

    #[test]
    fn acks_bind_releases_unbind_and_an_address_has_one_holder() {
        let mut status = StatusLine::new(Instant::now(), Some(1), &[]);
        status.handle_event(&event(EventKind::Boot, 1, 100));
        status.handle_event(&event(EventKind::Lease, 1, 100));
        status.handle_event(&event(EventKind::Lease, 2, 101));
        assert_eq!(status.text(), "1 network, 2 bindings, 0 transfers");
        // Reclaimed for another machine: still one binding for that address.
        status.handle_event(&event(EventKind::Boot, 3, 101));
        assert_eq!(status.text(), "1 network, 2 bindings, 0 transfers");
        status.handle_event(&event(EventKind::Release, 1, 100));
        status.handle_event(&event(EventKind::Release, 2, 101));
        assert_eq!(status.text(), "1 network, 1 binding, 0 transfers");
        status.handle_event(&Event::ServerAddress(ip(1)));
        assert_eq!(status.text(), "1 network, 1 binding, 0 transfers");
    }

    #[test]
    fn a_changed_line_is_sent_at_most_every_min_interval() {
        let start = Instant::now();
        let mut status = StatusLine::new(start, Some(1), &[]);
        assert_eq!(status.poll_timeout(), Some(start));
        status.handle_transfers(start, 0);
        assert_eq!(
            status.poll_status(start).as_deref(),
            Some("1 network, 0 bindings, 0 transfers")
        );
        assert_eq!(status.poll_status(start), None);
        // Nothing changed: only the next count of transfers is due.
        assert_eq!(status.poll_timeout(), Some(start + SAMPLE_EVERY));
        status.handle_event(&event(EventKind::Lease, 1, 100));
        assert_eq!(status.poll_timeout(), Some(start + MIN_INTERVAL));
        assert_eq!(status.poll_status(start + Duration::from_secs(1)), None);
        status.handle_event(&event(EventKind::Lease, 2, 101));
        assert_eq!(
            status.poll_status(start + MIN_INTERVAL).as_deref(),
            Some("1 network, 2 bindings, 0 transfers")
        );
        assert_eq!(status.poll_timeout(), Some(start + SAMPLE_EVERY));
    }

    #[test]
    fn transfers_in_flight_are_counted_every_sample_and_a_change_is_sent() {
        let start = Instant::now();
        let mut status = StatusLine::new(start, Some(2), &[]);
        assert!(status.sample_due(start));
        status.handle_transfers(start, 0);
        assert!(!status.sample_due(start + Duration::from_secs(1)));
        assert_eq!(
            status.poll_status(start).as_deref(),
            Some("2 networks, 0 bindings, 0 transfers")
        );
        let later = start + SAMPLE_EVERY;
        assert!(status.sample_due(later));
        status.handle_transfers(later, 1);
        assert_eq!(
            status.poll_status(later).as_deref(),
            Some("2 networks, 0 bindings, 1 transfer")
        );
        // The same count again: no message.
        let again = later + SAMPLE_EVERY;
        status.handle_transfers(again, 1);
        assert_eq!(status.poll_status(again), None);
        status.handle_transfers(again + SAMPLE_EVERY, 3);
        assert_eq!(
            status.poll_status(again + SAMPLE_EVERY).as_deref(),
            Some("2 networks, 0 bindings, 3 transfers")
        );
    }
}
