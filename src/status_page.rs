//! What `/status` shows: the machines seen with their boot timeline (the DHCP
//! phases: DISCOVER seen, OFFER sent, REQUEST seen, then the acknowledgement of
//! their firmware or of their operating system, or a NAK; the files they fetched
//! with size and time), the transfers in flight with their progress, and the
//! refusals of the last hour with their reason; and the page itself, one
//! self-contained HTML document.
//!
//! Sans-IO: [`BootLog`] is fed what the services report (DHCP phases, lease
//! events, ended and refused transfers, refused clients, the transfers in flight)
//! with the time each happened, and holds a bounded amount of it whatever the
//! network sends: at most [`MAX_MACHINES`] machines (the least recently seen is
//! forgotten first), each with at most [`MAX_STEPS`] timeline entries (a phase
//! repeated by a retransmitting client is one entry with a count), and
//! [`MAX_REFUSALS`] refusals no older than [`REFUSALS_KEPT`]. Services report
//! from their own threads, so a timeline is kept in the order things happened,
//! not in the order they were told. [`render`] writes the page; every text that came from
//! the network or a file name is escaped.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::event::{EventKind, LeaseEvent};
use crate::types::MacAddr;

pub const MAX_MACHINES: usize = 256;
pub const MAX_STEPS: usize = 64;
pub const MAX_REFUSALS: usize = 512;
pub const MAX_IN_FLIGHT: usize = 1024;
pub const REFUSALS_KEPT: Duration = Duration::from_secs(3600);

/// Which service a transfer or a refusal is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Dhcp,
    Tftp,
    Http,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::Dhcp => "DHCP",
            Service::Tftp => "TFTP",
            Service::Http => "HTTP",
        }
    }
}

/// A file transfer that ended, sent whole or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub service: Service,
    pub client: IpAddr,
    pub name: String,
    pub bytes: u64,
    pub took: Duration,
    /// Why it did not send everything, when it did not.
    pub failure: Option<String>,
}

/// A step of a DHCP exchange the BOOTP service saw or took; the ACK is the
/// lease event it publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DhcpPhase {
    DiscoverSeen,
    OfferSent { ip: Ipv4Addr },
    RequestSeen,
    NakSent,
}

/// A transfer under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub client: SocketAddr,
    pub name: String,
    pub sent: u64,
    /// The size, when the source announced one.
    pub size: Option<u64>,
}

/// Who a machine is known as: its MAC once a lease names it, else its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Who {
    Mac(MacAddr),
    Address(IpAddr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// The firmware's (PXE) acknowledgement.
    FirmwareAck {
        ip: Ipv4Addr,
        boot_file: Option<String>,
    },
    /// The operating system's lease.
    OsLease {
        ip: Ipv4Addr,
    },
    Released {
        ip: Ipv4Addr,
    },
    /// A DHCP phase, `times` times in a row (a client retransmits).
    Dhcp {
        phase: DhcpPhase,
        times: u32,
    },
    File(Ended),
}

#[derive(Debug)]
struct Machine {
    who: Who,
    ip: Option<IpAddr>,
    last_seen: Instant,
    /// Its place in [`Machines::by_recency`].
    recency: u64,
    steps: VecDeque<(Instant, Step)>,
}

/// The machines seen, at most [`MAX_MACHINES`], found by who they are and kept in
/// the order they were last seen. Every DHCP message of a storm touches one, so
/// finding and moving it costs no scan.
#[derive(Debug, Default)]
struct Machines {
    by_who: HashMap<Who, Machine>,
    /// Least recently seen first.
    by_recency: BTreeMap<u64, Who>,
    next_recency: u64,
}

impl Machines {
    fn len(&self) -> usize {
        self.by_who.len()
    }

    fn is_empty(&self) -> bool {
        self.by_who.is_empty()
    }

    fn remove(&mut self, who: Who) -> Option<Machine> {
        let machine = self.by_who.remove(&who)?;
        self.by_recency.remove(&machine.recency);
        Some(machine)
    }

    /// The machine `who`, made the most recently seen (made, forgetting the least
    /// recently seen one when full).
    fn touch(&mut self, now: Instant, who: Who) -> &mut Machine {
        let recency = self.next_recency;
        self.next_recency += 1;
        if let Some(previous) = self.by_who.get(&who).map(|m| m.recency) {
            self.by_recency.remove(&previous);
        } else {
            while self.by_who.len() >= MAX_MACHINES {
                let Some((_, oldest)) = self.by_recency.pop_first() else {
                    break;
                };
                self.by_who.remove(&oldest);
            }
        }
        self.by_recency.insert(recency, who);
        let machine = self.by_who.entry(who).or_insert_with(|| Machine {
            who,
            ip: None,
            last_seen: now,
            recency,
            steps: VecDeque::new(),
        });
        machine.last_seen = now;
        machine.recency = recency;
        machine
    }

    /// Most recently seen first.
    fn newest_first(&self) -> impl Iterator<Item = &Machine> {
        self.by_recency
            .values()
            .rev()
            .filter_map(|who| self.by_who.get(who))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    at: Instant,
    service: Service,
    who: String,
    reason: String,
}

/// The recent activity of the boot network. See the module documentation.
#[derive(Debug, Default)]
pub struct BootLog {
    machines: Machines,
    refusals: VecDeque<Refusal>,
    tftp_in_flight: Vec<InFlight>,
    http_in_flight: Vec<InFlight>,
}

impl BootLog {
    /// An ACK or a release the BOOTP service published.
    pub fn handle_lease(&mut self, now: Instant, lease: &LeaseEvent) {
        let ip = lease.ip;
        let step = match lease.kind {
            EventKind::Boot => Step::FirmwareAck {
                ip,
                boot_file: lease.boot_file.clone(),
            },
            EventKind::Lease => Step::OsLease { ip },
            EventKind::Release => Step::Released { ip },
        };
        // The address now names this MAC: an entry kept under the bare address
        // (files fetched before the lease was seen) is folded into it.
        let address = IpAddr::V4(ip);
        let folded = self.machines.remove(Who::Address(address));
        let machine = self.machines.touch(now, Who::Mac(lease.mac));
        if let Some(folded) = folded {
            machine.steps.extend(folded.steps);
            machine.steps.make_contiguous().sort_by_key(|(at, _)| *at);
            while machine.steps.len() > MAX_STEPS {
                machine.steps.pop_front();
            }
        }
        machine.ip = Some(address);
        push_step(machine, now, step);
    }

    /// A DHCP message from or to `mac` at `at`.
    pub fn handle_dhcp_phase(&mut self, at: Instant, mac: MacAddr, phase: DhcpPhase) {
        let machine = self.machines.touch(at, Who::Mac(mac));
        if let DhcpPhase::OfferSent { ip } = phase {
            machine.ip = Some(IpAddr::V4(ip));
        }
        // A retransmission (a client asking again, an offer made again) within
        // the same exchange, the DHCP steps since anything else happened, is
        // counted where it first appeared, not kept again.
        let repeated = machine
            .steps
            .iter_mut()
            .rev()
            .map_while(|(_, step)| match step {
                Step::Dhcp { phase, times } => Some((phase, times)),
                _ => None,
            })
            .find(|(seen, _)| **seen == phase);
        if let Some((_, times)) = repeated {
            *times = times.saturating_add(1);
            return;
        }
        push_step(machine, at, Step::Dhcp { phase, times: 1 });
    }

    /// A transfer ended; one that failed is also a refusal.
    pub fn handle_ended(&mut self, now: Instant, ended: Ended) {
        if let Some(reason) = &ended.failure {
            self.handle_refused(
                now,
                ended.service,
                format!("{} {}", ended.client, printable(&ended.name)),
                reason.clone(),
            );
        }
        let who = self.who_has(ended.client);
        let machine = self.machines.touch(now, who);
        machine.ip = Some(ended.client);
        push_step(machine, now, Step::File(ended));
    }

    /// A client refused, and why (`who`: its MAC or address, as logged).
    pub fn handle_refused(&mut self, now: Instant, service: Service, who: String, reason: String) {
        self.expire(now);
        if self.refusals.len() >= MAX_REFUSALS {
            self.refusals.pop_front();
        }
        self.refusals.push_back(Refusal {
            at: now,
            service,
            who,
            reason,
        });
    }

    /// The transfers `service` has under way now (replacing what it said before).
    pub fn handle_in_flight(&mut self, service: Service, mut transfers: Vec<InFlight>) {
        transfers.truncate(MAX_IN_FLIGHT);
        match service {
            Service::Http => self.http_in_flight = transfers,
            _ => self.tftp_in_flight = transfers,
        }
    }

    /// How many transfers the services last said they have under way.
    pub fn in_flight_count(&self) -> usize {
        self.tftp_in_flight.len() + self.http_in_flight.len()
    }

    fn expire(&mut self, now: Instant) {
        while self
            .refusals
            .front()
            .is_some_and(|r| now.saturating_duration_since(r.at) > REFUSALS_KEPT)
        {
            self.refusals.pop_front();
        }
    }

    /// Who holds `ip`: the MAC of the machine last seen with it, else the address.
    fn who_has(&self, ip: IpAddr) -> Who {
        self.machines
            .newest_first()
            .find(|m| m.ip == Some(ip))
            .map_or(Who::Address(ip), |m| m.who)
    }
}

/// When a shell tells its transfers in flight: when their number changed (one
/// started or ended), else at most once every [`IN_FLIGHT_EVERY`], so that no
/// packet takes the lock.
#[derive(Debug, Default)]
pub struct InFlightSchedule {
    told: Option<(Instant, usize)>,
}

pub const IN_FLIGHT_EVERY: Duration = Duration::from_secs(1);

impl InFlightSchedule {
    /// Whether to tell the `count` transfers in flight at `now`; if so, they count
    /// as told.
    pub fn due(&mut self, now: Instant, count: usize) -> bool {
        let due = match self.told {
            None => true,
            Some((at, told)) => told != count || (count > 0 && now >= at + IN_FLIGHT_EVERY),
        };
        if due {
            self.told = Some((now, count));
        }
        due
    }
}

/// Adds `step` at its time: after every step that is not later (the services
/// tell from their own threads, a little after the fact).
fn push_step(machine: &mut Machine, at: Instant, step: Step) {
    if machine.steps.len() >= MAX_STEPS {
        machine.steps.pop_front();
    }
    let position = machine
        .steps
        .iter()
        .rposition(|(then, _)| *then <= at)
        .map_or(0, |i| i + 1);
    machine.steps.insert(position, (at, step));
}

/// The page: machines (most recently seen first), transfers in flight, refusals of
/// the last hour (newest first). Times are shown as ages at `now`.
pub fn render(log: &BootLog, now: Instant) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"refresh\" content=\"5\">\n<title>bootd status</title>\n\
         <link rel=\"icon\" href=\"data:,\">\n\
         <style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;margin-bottom:1em}\
         td,th{border:1px solid #bbb;padding:2px 6px;text-align:left;vertical-align:top}\
         .failed{color:#a00}</style>\n</head>\n<body>\n<h1>bootd status</h1>\n",
    );
    let _ = writeln!(out, "<h2>Machines ({})</h2>", log.machines.len());
    if log.machines.is_empty() {
        out.push_str("<p>No machine seen yet.</p>\n");
    } else {
        out.push_str(
            "<table>\n<tr><th>machine</th><th>address</th><th>last seen</th><th>timeline</th></tr>\n",
        );
        for m in log.machines.newest_first() {
            let who = match m.who {
                Who::Mac(mac) => mac.to_string(),
                Who::Address(ip) => ip.to_string(),
            };
            let ip = m.ip.map(|ip| ip.to_string()).unwrap_or_default();
            let _ = write!(
                out,
                "<tr class=\"machine\"><td>{}</td><td>{}</td><td>{}</td><td><ol>",
                escape(&who),
                escape(&ip),
                age(now, m.last_seen)
            );
            for (at, step) in &m.steps {
                let _ = write!(out, "<li>{} ", age(now, *at));
                match step {
                    Step::FirmwareAck { ip, boot_file } => {
                        let _ = write!(out, "DHCP (firmware): {ip}");
                        if let Some(file) = boot_file {
                            let _ = write!(out, ", boot file {}", escape(&printable(file)));
                        }
                    }
                    Step::OsLease { ip } => {
                        let _ = write!(out, "DHCP (operating system): {ip}");
                    }
                    Step::Released { ip } => {
                        let _ = write!(out, "released {ip}");
                    }
                    Step::Dhcp { phase, times } => {
                        let _ = match phase {
                            DhcpPhase::DiscoverSeen => write!(out, "DHCPDISCOVER"),
                            DhcpPhase::OfferSent { ip } => write!(out, "DHCPOFFER {ip}"),
                            DhcpPhase::RequestSeen => write!(out, "DHCPREQUEST"),
                            DhcpPhase::NakSent => write!(out, "DHCPNAK"),
                        };
                        if *times > 1 {
                            let _ = write!(out, " ({times} times)");
                        }
                    }
                    Step::File(e) => {
                        let class = if e.failure.is_some() {
                            " class=\"failed\""
                        } else {
                            ""
                        };
                        let _ = write!(
                            out,
                            "<span{class}>{} <span class=\"file\">{}</span>: {} bytes in {:.3} s",
                            e.service.name(),
                            escape(&printable(&e.name)),
                            e.bytes,
                            e.took.as_secs_f64()
                        );
                        if let Some(reason) = &e.failure {
                            let _ = write!(out, " ({})", escape(reason));
                        }
                        out.push_str("</span>");
                    }
                }
                out.push_str("</li>");
            }
            out.push_str("</ol></td></tr>\n");
        }
        out.push_str("</table>\n");
    }
    let in_flight: Vec<(Service, &InFlight)> = log
        .tftp_in_flight
        .iter()
        .map(|t| (Service::Tftp, t))
        .chain(log.http_in_flight.iter().map(|t| (Service::Http, t)))
        .collect();
    let _ = writeln!(out, "<h2>Transfers in flight ({})</h2>", in_flight.len());
    if in_flight.is_empty() {
        out.push_str("<p>None.</p>\n");
    } else {
        out.push_str(
            "<table>\n<tr><th>service</th><th>client</th><th>file</th><th>sent</th></tr>\n",
        );
        for (service, t) in in_flight {
            let progress = match t.size {
                Some(size) if size > 0 => format!(
                    "{} of {size} bytes ({}%) <progress max=\"{size}\" value=\"{}\"></progress>",
                    t.sent,
                    t.sent.min(size) * 100 / size,
                    t.sent.min(size)
                ),
                _ => format!("{} bytes", t.sent),
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{progress}</td></tr>",
                service.name(),
                t.client,
                escape(&printable(&t.name))
            );
        }
        out.push_str("</table>\n");
    }
    let refusals: Vec<&Refusal> = log
        .refusals
        .iter()
        .rev()
        .filter(|r| now.saturating_duration_since(r.at) <= REFUSALS_KEPT)
        .collect();
    let _ = writeln!(
        out,
        "<h2>Refusals in the last hour ({})</h2>",
        refusals.len()
    );
    if refusals.is_empty() {
        out.push_str("<p>None.</p>\n");
    } else {
        out.push_str(
            "<table>\n<tr><th>when</th><th>service</th><th>client</th><th>reason</th></tr>\n",
        );
        for r in refusals {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                age(now, r.at),
                r.service.name(),
                escape(&r.who),
                escape(&r.reason)
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// `12 s ago`, `3 min ago`, `2 h ago`.
fn age(now: Instant, at: Instant) -> String {
    let s = now.saturating_duration_since(at).as_secs();
    match s {
        0..120 => format!("{s} s ago"),
        120..7200 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

/// Control characters shown as `\xNN`: a name from the network may hold any byte.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// Text made safe inside HTML elements and quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(n: u8) -> MacAddr {
        MacAddr([0x52, 0x54, 0, 0, 0, n])
    }

    fn lease(kind: EventKind, n: u8, boot_file: Option<&str>) -> LeaseEvent {
        LeaseEvent {
            kind,
            mac: mac(n),
            uuid: None,
            ip: Ipv4Addr::new(10, 0, 0, 100 + n),
            boot_file: boot_file.map(str::to_owned),
            server_ip: Ipv4Addr::new(10, 0, 0, 1),
        }
    }

    fn ended(n: u8, name: &str, failure: Option<&str>) -> Ended {
        Ended {
            service: Service::Tftp,
            client: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100 + n)),
            name: name.into(),
            bytes: 42_430,
            took: Duration::from_millis(7),
            failure: failure.map(str::to_owned),
        }
    }

    #[test]
    fn a_boot_is_one_machine_with_its_timeline_in_order() {
        let t0 = Instant::now();
        let mut log = BootLog::default();
        log.handle_lease(t0, &lease(EventKind::Boot, 1, Some("pxelinux.0")));
        log.handle_ended(t0 + Duration::from_secs(1), ended(1, "pxelinux.0", None));
        log.handle_lease(
            t0 + Duration::from_secs(30),
            &lease(EventKind::Lease, 1, None),
        );
        let page = render(&log, t0 + Duration::from_secs(40));
        assert!(page.contains("<h2>Machines (1)</h2>"), "{page}");
        let row = "<tr class=\"machine\"><td>52-54-00-00-00-01</td><td>10.0.0.101</td><td>10 s ago</td><td><ol>\
            <li>40 s ago DHCP (firmware): 10.0.0.101, boot file pxelinux.0</li>\
            <li>39 s ago <span>TFTP <span class=\"file\">pxelinux.0</span>: 42430 bytes in 0.007 s</span></li>\
            <li>10 s ago DHCP (operating system): 10.0.0.101</li></ol></td></tr>";
        assert!(page.contains(row), "{page}");
        assert!(page.contains("<h2>Refusals in the last hour (0)</h2>\n<p>None.</p>"));
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "no external asset"
        );
    }

    #[test]
    fn dhcp_phases_come_before_the_ack_in_the_order_they_happened_and_repeats_are_counted() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut log = BootLog::default();
        let offered = Ipv4Addr::new(10, 0, 0, 101);
        log.handle_dhcp_phase(at(0), mac(1), DhcpPhase::DiscoverSeen);
        log.handle_dhcp_phase(at(1), mac(1), DhcpPhase::DiscoverSeen);
        log.handle_dhcp_phase(at(1), mac(1), DhcpPhase::OfferSent { ip: offered });
        // The ACK's lease event is told (by another thread) before the REQUEST
        // that it answers.
        log.handle_lease(at(3), &lease(EventKind::Boot, 1, Some("pxelinux.0")));
        log.handle_dhcp_phase(at(2), mac(1), DhcpPhase::RequestSeen);
        log.handle_dhcp_phase(at(4), mac(1), DhcpPhase::NakSent);
        let page = render(&log, at(10));
        let row = "<td><ol><li>10 s ago DHCPDISCOVER (2 times)</li>\
            <li>9 s ago DHCPOFFER 10.0.0.101</li>\
            <li>8 s ago DHCPREQUEST</li>\
            <li>7 s ago DHCP (firmware): 10.0.0.101, boot file pxelinux.0</li>\
            <li>6 s ago DHCPNAK</li></ol></td>";
        assert!(page.contains(row), "{page}");
        assert_eq!(log.machines.len(), 1);

        // A client that never takes its offer keeps one entry for each.
        for s in 0..(MAX_STEPS as u64 * 2) {
            log.handle_dhcp_phase(at(20 + s), mac(2), DhcpPhase::DiscoverSeen);
            log.handle_dhcp_phase(at(20 + s), mac(2), DhcpPhase::OfferSent { ip: offered });
        }
        let machine = log.machines.newest_first().next().unwrap();
        assert_eq!(machine.steps.len(), 2);
        let page = render(&log, at(200));
        let times = MAX_STEPS * 2;
        assert!(
            page.contains(&format!(
                "DHCPDISCOVER ({times} times)</li><li>3 min ago DHCPOFFER 10.0.0.101 ({times} times)"
            )),
            "{page}"
        );
    }

    #[test]
    fn files_fetched_before_the_lease_is_seen_join_the_machine() {
        let t0 = Instant::now();
        let mut log = BootLog::default();
        log.handle_ended(t0, ended(2, "ldlinux.c32", None));
        log.handle_lease(
            t0 + Duration::from_secs(1),
            &lease(EventKind::Lease, 2, None),
        );
        assert_eq!(log.machines.len(), 1);
        let machine = log.machines.newest_first().next().unwrap();
        assert_eq!(machine.steps.len(), 2);
        assert!(matches!(machine.steps[0].1, Step::File(_)));
    }

    #[test]
    fn a_machine_seen_again_is_kept_and_the_least_recently_seen_is_forgotten() {
        let t0 = Instant::now();
        let mut log = BootLog::default();
        let mac_of = |n: usize| MacAddr([0x52, 0x54, 0, 0, (n >> 8) as u8, n as u8]);
        for n in 0..MAX_MACHINES {
            log.handle_dhcp_phase(t0, mac_of(n), DhcpPhase::DiscoverSeen);
        }
        // The first machine asks again; then one machine more than fits arrives.
        log.handle_dhcp_phase(t0, mac_of(0), DhcpPhase::RequestSeen);
        log.handle_dhcp_phase(t0, mac_of(MAX_MACHINES), DhcpPhase::DiscoverSeen);
        let order: Vec<Who> = log.machines.newest_first().map(|m| m.who).collect();
        assert_eq!(order.len(), MAX_MACHINES);
        assert_eq!(order[0], Who::Mac(mac_of(MAX_MACHINES)));
        assert_eq!(order[1], Who::Mac(mac_of(0)));
        assert!(
            !order.contains(&Who::Mac(mac_of(1))),
            "the least recently seen went"
        );
        assert_eq!(order[MAX_MACHINES - 1], Who::Mac(mac_of(2)));
        let first = log.machines.newest_first().nth(1).unwrap();
        assert_eq!(first.steps.len(), 2);
    }

    #[test]
    fn machines_steps_and_refusals_stay_bounded_and_refusals_expire_after_an_hour() {
        let t0 = Instant::now();
        let mut log = BootLog::default();
        for n in 0..(MAX_MACHINES + 10) {
            let ip = Ipv4Addr::from(0x0a00_0000 + n as u32);
            let mut e = ended(0, "x", Some("refused"));
            e.client = IpAddr::V4(ip);
            log.handle_ended(t0, e);
        }
        assert_eq!(log.machines.len(), MAX_MACHINES);
        assert_eq!(log.refusals.len(), MAX_REFUSALS.min(MAX_MACHINES + 10));
        for _ in 0..(MAX_STEPS + 5) {
            log.handle_ended(t0, ended(1, "again", None));
        }
        let last = log.machines.newest_first().next().unwrap();
        assert_eq!(last.steps.len(), MAX_STEPS);
        for n in 0..(MAX_REFUSALS + 5) {
            log.handle_refused(t0, Service::Dhcp, format!("m{n}"), "pool exhausted".into());
        }
        assert_eq!(log.refusals.len(), MAX_REFUSALS);
        let later = t0 + REFUSALS_KEPT + Duration::from_secs(1);
        assert!(render(&log, later).contains("<h2>Refusals in the last hour (0)</h2>"));
        log.handle_refused(later, Service::Dhcp, "m".into(), "r".into());
        assert_eq!(log.refusals.len(), 1, "the expired ones are dropped");
    }

    #[test]
    fn text_from_the_network_is_escaped() {
        let t0 = Instant::now();
        let mut log = BootLog::default();
        log.handle_ended(
            t0,
            ended(3, "<script>alert('x')</script>\u{1}", Some("a & b")),
        );
        let page = render(&log, t0);
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;\\x01"));
        assert!(page.contains("(a &amp; b)"));
    }

    #[test]
    fn in_flight_is_told_when_the_count_changes_or_once_a_second() {
        let t0 = Instant::now();
        let mut schedule = InFlightSchedule::default();
        assert!(schedule.due(t0, 0));
        assert!(!schedule.due(t0 + Duration::from_secs(5), 0), "nothing new");
        assert!(schedule.due(t0 + Duration::from_secs(5), 1));
        assert!(!schedule.due(t0 + Duration::from_millis(5500), 1));
        assert!(schedule.due(t0 + Duration::from_secs(6), 1));
        assert!(schedule.due(t0 + Duration::from_millis(6001), 0));
    }

    #[test]
    fn transfers_in_flight_show_their_progress() {
        let t0 = Instant::now();
        let mut log = BootLog::default();
        let client = SocketAddr::from(([10, 0, 0, 5], 2000));
        let t = |size| InFlight {
            client,
            name: "vmlinuz".into(),
            sent: 250,
            size,
        };
        log.handle_in_flight(Service::Tftp, vec![t(Some(1000))]);
        log.handle_in_flight(Service::Http, vec![t(None)]);
        let page = render(&log, t0);
        assert!(page.contains(
            "<tr><td>TFTP</td><td>10.0.0.5:2000</td><td>vmlinuz</td><td>250 of 1000 bytes (25%) <progress max=\"1000\" value=\"250\"></progress></td></tr>"
        ), "{page}");
        assert!(page.contains(
            "<tr><td>HTTP</td><td>10.0.0.5:2000</td><td>vmlinuz</td><td>250 bytes</td></tr>"
        ));
        log.handle_in_flight(Service::Tftp, Vec::new());
        assert!(render(&log, t0).contains("<h2>Transfers in flight (1)</h2>"));
    }
}
