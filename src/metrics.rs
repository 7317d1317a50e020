//! What the services did, counted, and its Prometheus text form (`/metrics`).
//!
//! Two halves, so that no lock and no shared cache line sits on a hot path:
//! - the sans-IO endpoints count in plain integers they own ([`DhcpCounts`],
//!   [`TransferCounts`], [`DurationCounts`]), where they decide and log, so the
//!   counts are unit-tested with the decisions;
//! - each shell copies its endpoint's counts into the shared [`Metrics`] (atomics
//!   in an `Arc`) once per loop turn. Each atomic has one writer, its service's
//!   thread, so a relaxed store is enough; the HTTP thread reads a [`Snapshot`]
//!   when scraped. The per-network gauges are registered once, when the BOOTP
//!   service starts, behind a lock that only registration and scrapes take.
//!
//! [`render`] turns a snapshot into the text exposition format: a pure function
//! with byte-exact tests. [`Metrics`] also holds the store behind `/status`
//! ([`crate::status_page`]), which every service thread feeds as well.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::status_page::{self, BootLog};

/// DHCP message types counted, by the label they carry; a request without
/// option 53 is plain BOOTP.
pub const DHCP_TYPES: [&str; 7] = [
    "discover", "request", "decline", "release", "inform", "bootp", "other",
];

/// Why a DHCP request got no answer, or a refusal, by the label it carries. The
/// BOOTP endpoint maps each of its drop reasons to one of these.
pub const DHCP_REFUSALS: [&str; 20] = [
    "malformed",
    "not_a_request",
    "not_ethernet",
    "foreign_client_address",
    "foreign_relay",
    "claims_address",
    "late_decline",
    "request_without_address",
    "unexpected_type",
    "for_another_server",
    "simple_client_not_allowed",
    "access_refused",
    "pool_exhausted",
    "no_boot_file",
    "ipxe_loader_refused",
    "http_boot_without_http",
    "not_holder",
    "nak",
    "overload",
    "other",
];

/// Why the proxy left a request unanswered, by the label it carries: the reasons
/// the DHCP server shares with it, then its own.
pub const PROXY_REFUSALS: [&str; 15] = [
    "malformed",
    "not_a_request",
    "not_ethernet",
    "foreign_client_address",
    "foreign_relay",
    "access_refused",
    "no_boot_file",
    "ipxe_loader_refused",
    "http_boot_without_http",
    // Neither PXE firmware nor a UEFI HTTP boot client.
    "not_a_boot_client",
    // Port 67 messages a proxy leaves to the site's DHCP server.
    "for_the_site_server",
    // On the boot server's port, anything but a DHCPREQUEST.
    "not_a_boot_server_request",
    "http_client_on_boot_server",
    // A boot server request from no host of the served network.
    "foreign_source",
    "other",
];

/// What a proxy's reply is on each of its ports: an offer of boot information
/// on the DHCP port (67), the boot server's ACK on 4011.
const PROXY_REPLIES: [&str; 2] = ["offer", "ack"];

/// Upper bounds (seconds) of the transfer duration buckets, with their `le` text:
/// a boot file takes milliseconds, an installer image minutes.
pub const DURATION_BUCKETS: [(Duration, &str); 9] = [
    (Duration::from_millis(10), "0.01"),
    (Duration::from_millis(100), "0.1"),
    (Duration::from_millis(500), "0.5"),
    (Duration::from_secs(1), "1"),
    (Duration::from_secs(5), "5"),
    (Duration::from_secs(10), "10"),
    (Duration::from_secs(30), "30"),
    (Duration::from_secs(60), "60"),
    (Duration::from_secs(300), "300"),
];

/// A histogram of durations: one count per bucket (not cumulative; the last is
/// beyond every bound), their sum in microseconds, and how many.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DurationCounts {
    pub buckets: [u64; DURATION_BUCKETS.len() + 1],
    pub sum_micros: u64,
    pub count: u64,
}

impl DurationCounts {
    pub fn observe(&mut self, took: Duration) {
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|(bound, _)| took <= *bound)
            .unwrap_or(DURATION_BUCKETS.len());
        if let Some(b) = self.buckets.get_mut(bucket) {
            *b += 1;
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros = self.sum_micros.saturating_add(micros);
        self.count += 1;
    }
}

/// What one file service (TFTP, HTTP, NBD) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferCounts {
    pub started: u64,
    pub completed: u64,
    pub failed: u64,
    /// Bytes of files (or disk blocks) sent.
    pub bytes: u64,
    /// Blocks sent again (TFTP).
    pub retransmits: u64,
    /// How long completed transfers took.
    pub durations: DurationCounts,
}

/// The [`DHCP_TYPES`] label of a datagram: `message_type` is `None` when it is no
/// BOOTP packet, `Some(None)` for plain BOOTP (no DHCP message type), else the
/// type's number.
pub fn dhcp_type_label(message_type: Option<Option<u8>>) -> &'static str {
    match message_type {
        Some(Some(1)) => "discover",
        Some(Some(3)) => "request",
        Some(Some(4)) => "decline",
        Some(Some(7)) => "release",
        Some(Some(8)) => "inform",
        Some(None) => "bootp",
        _ => "other",
    }
}

/// What the BOOTP service was asked and refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DhcpCounts {
    /// By [`DHCP_TYPES`].
    pub requests: [u64; DHCP_TYPES.len()],
    /// By [`DHCP_REFUSALS`].
    pub refusals: [u64; DHCP_REFUSALS.len()],
}

impl DhcpCounts {
    /// Counts a request of type `label` (one of [`DHCP_TYPES`], else "other").
    pub fn request(&mut self, label: &str) {
        bump(&mut self.requests, &DHCP_TYPES, label);
    }

    /// Counts a refusal for `reason` (one of [`DHCP_REFUSALS`], else "other").
    pub fn refusal(&mut self, reason: &str) {
        bump(&mut self.refusals, &DHCP_REFUSALS, reason);
    }
}

/// What the proxy (`[bootp] proxy = on`) was asked on one of its ports, what it
/// answered and what it left unanswered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyPortCounts {
    /// By [`DHCP_TYPES`].
    pub requests: [u64; DHCP_TYPES.len()],
    /// By [`PROXY_REFUSALS`].
    pub refusals: [u64; PROXY_REFUSALS.len()],
    pub replies: u64,
}

impl ProxyPortCounts {
    /// Counts a request of type `label` (one of [`DHCP_TYPES`], else "other").
    pub fn request(&mut self, label: &str) {
        bump(&mut self.requests, &DHCP_TYPES, label);
    }

    /// Counts a request left unanswered for `reason` (one of [`PROXY_REFUSALS`],
    /// else "other").
    pub fn refusal(&mut self, reason: &str) {
        bump(&mut self.refusals, &PROXY_REFUSALS, reason);
    }
}

/// The proxy's counts: on its DHCP port, then on the boot server's port.
pub type ProxyCounts = [ProxyPortCounts; 2];

/// The proxy's counts with the numbers of its two ports (DHCP, boot server),
/// which label them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySnapshot {
    pub ports: [u16; 2],
    pub counts: ProxyCounts,
}

fn bump<const N: usize>(counts: &mut [u64; N], labels: &[&str; N], label: &str) {
    let at = labels
        .iter()
        .position(|l| *l == label)
        .or_else(|| labels.iter().position(|l| *l == "other"));
    if let Some(count) = at.and_then(|i| counts.get_mut(i)) {
        *count += 1;
    }
}

/// One network's leases, as the BOOTP service last published them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkLeases {
    /// The network, as `10.0.0.0/24`.
    pub network: String,
    pub bound: u64,
    /// Pool addresses a new client could be offered now.
    pub free: u64,
}

/// Everything [`render`] shows, read at one scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub dhcp: DhcpCounts,
    /// What the proxy counted, when it runs (in place of the DHCP server).
    pub proxy: Option<ProxySnapshot>,
    pub networks: Vec<NetworkLeases>,
    pub tftp: TransferCounts,
    pub http: TransferCounts,
    pub nbd: TransferCounts,
}

/// The counters every service thread publishes to and the HTTP thread reads.
#[derive(Debug, Default)]
pub struct Metrics {
    dhcp: SharedDhcp,
    /// The proxy's ports (DHCP, boot server) and their counters, when it runs.
    proxy: Option<([u16; 2], [SharedProxyPort; 2])>,
    networks: Mutex<Vec<Arc<SharedNetwork>>>,
    tftp: SharedTransfers,
    http: SharedTransfers,
    nbd: SharedTransfers,
    /// What `/status` shows. Locked when a transfer ends, a client is refused
    /// (once per client and reason), a lease is seen, at most once a second for
    /// the transfers in flight, and by each view of the page: never per packet.
    recent: Mutex<BootLog>,
}

/// Which file service a [`TransferCounts`] is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Tftp,
    Http,
    Nbd,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// Counters whose DHCP families are the proxy's, labelled with its `ports`
    /// (DHCP, boot server), instead of the DHCP server's (bootd runs one or the
    /// other).
    pub fn for_proxy(ports: [u16; 2]) -> Arc<Metrics> {
        Arc::new(Metrics {
            proxy: Some((ports, Default::default())),
            ..Metrics::default()
        })
    }

    /// Stores the proxy endpoint's counts (its thread is their one writer);
    /// nothing when these counters are not [`Metrics::for_proxy`]'s.
    pub fn publish_proxy(&self, counts: &ProxyCounts) {
        if let Some((_, ports)) = &self.proxy {
            for (shared, counts) in ports.iter().zip(counts) {
                store_all(&shared.requests, &counts.requests);
                store_all(&shared.refusals, &counts.refusals);
                shared.replies.store(counts.replies, Ordering::Relaxed);
            }
        }
    }

    /// Stores the BOOTP endpoint's counts (its thread is their one writer).
    pub fn publish_dhcp(&self, counts: &DhcpCounts) {
        store_all(&self.dhcp.requests, &counts.requests);
        store_all(&self.dhcp.refusals, &counts.refusals);
    }

    /// Stores a file service's counts (its thread is their one writer).
    pub fn publish_transfers(&self, service: Service, counts: &TransferCounts) {
        let shared = match service {
            Service::Tftp => &self.tftp,
            Service::Http => &self.http,
            Service::Nbd => &self.nbd,
        };
        shared.store(counts);
    }

    /// The gauges of one served network, to set with [`NetworkGauges::set`].
    pub fn register_network(&self, network: String) -> NetworkGauges {
        let shared = Arc::new(SharedNetwork {
            network,
            bound: AtomicU64::new(0),
            free: AtomicU64::new(0),
        });
        if let Ok(mut networks) = self.networks.lock() {
            networks.push(Arc::clone(&shared));
        }
        NetworkGauges(shared)
    }

    /// Feeds what `/status` shows.
    pub fn record(&self, feed: impl FnOnce(&mut BootLog)) {
        if let Ok(mut log) = self.recent.lock() {
            feed(&mut log);
        }
    }

    /// The `/status` page at `now`.
    pub fn status_page(&self, now: Instant) -> String {
        match self.recent.lock() {
            Ok(log) => status_page::render(&log, now),
            Err(_) => status_page::render(&BootLog::default(), now),
        }
    }

    /// The TFTP and HTTP transfers under way, as their services last told
    /// `/status` (within a second of a change).
    pub fn transfers_in_flight(&self) -> usize {
        self.recent.lock().map_or(0, |log| log.in_flight_count())
    }

    pub fn snapshot(&self) -> Snapshot {
        let networks = match self.networks.lock() {
            Ok(networks) => networks
                .iter()
                .map(|n| NetworkLeases {
                    network: n.network.clone(),
                    bound: n.bound.load(Ordering::Relaxed),
                    free: n.free.load(Ordering::Relaxed),
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        let proxy = self.proxy.as_ref().map(|(ports, shared)| ProxySnapshot {
            ports: *ports,
            counts: shared.each_ref().map(|shared| ProxyPortCounts {
                requests: load_all(&shared.requests),
                refusals: load_all(&shared.refusals),
                replies: shared.replies.load(Ordering::Relaxed),
            }),
        });
        Snapshot {
            dhcp: DhcpCounts {
                requests: load_all(&self.dhcp.requests),
                refusals: load_all(&self.dhcp.refusals),
            },
            proxy,
            networks,
            tftp: self.tftp.load(),
            http: self.http.load(),
            nbd: self.nbd.load(),
        }
    }
}

/// One network's lease gauges, held by the BOOTP shell.
#[derive(Debug)]
pub struct NetworkGauges(Arc<SharedNetwork>);

impl NetworkGauges {
    pub fn set(&self, bound: u64, free: u64) {
        self.0.bound.store(bound, Ordering::Relaxed);
        self.0.free.store(free, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct SharedNetwork {
    network: String,
    bound: AtomicU64,
    free: AtomicU64,
}

#[derive(Debug, Default)]
struct SharedDhcp {
    requests: [AtomicU64; DHCP_TYPES.len()],
    refusals: [AtomicU64; DHCP_REFUSALS.len()],
}

#[derive(Debug, Default)]
struct SharedProxyPort {
    requests: [AtomicU64; DHCP_TYPES.len()],
    refusals: [AtomicU64; PROXY_REFUSALS.len()],
    replies: AtomicU64,
}

#[derive(Debug, Default)]
struct SharedTransfers {
    started: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
    retransmits: AtomicU64,
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl SharedTransfers {
    fn store(&self, c: &TransferCounts) {
        self.started.store(c.started, Ordering::Relaxed);
        self.completed.store(c.completed, Ordering::Relaxed);
        self.failed.store(c.failed, Ordering::Relaxed);
        self.bytes.store(c.bytes, Ordering::Relaxed);
        self.retransmits.store(c.retransmits, Ordering::Relaxed);
        store_all(&self.buckets, &c.durations.buckets);
        self.sum_micros
            .store(c.durations.sum_micros, Ordering::Relaxed);
        self.count.store(c.durations.count, Ordering::Relaxed);
    }

    fn load(&self) -> TransferCounts {
        TransferCounts {
            started: self.started.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            retransmits: self.retransmits.load(Ordering::Relaxed),
            durations: DurationCounts {
                buckets: load_all(&self.buckets),
                sum_micros: self.sum_micros.load(Ordering::Relaxed),
                count: self.count.load(Ordering::Relaxed),
            },
        }
    }
}

fn store_all<const N: usize>(shared: &[AtomicU64; N], values: &[u64; N]) {
    for (s, v) in shared.iter().zip(values) {
        s.store(*v, Ordering::Relaxed);
    }
}

fn load_all<const N: usize>(shared: &[AtomicU64; N]) -> [u64; N] {
    std::array::from_fn(|i| shared.get(i).map_or(0, |a| a.load(Ordering::Relaxed)))
}

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The snapshot in the Prometheus text exposition format.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    match &s.proxy {
        None => dhcp_families(&mut out, &s.dhcp),
        Some(proxy) => proxy_families(&mut out, proxy),
    }
    family(
        &mut out,
        "bootd_dhcp_leases_bound",
        "gauge",
        "Addresses bound to a machine, by served network.",
    );
    for n in &s.networks {
        let network = label_value(&n.network);
        let _ = writeln!(
            out,
            "bootd_dhcp_leases_bound{{network=\"{network}\"}} {}",
            n.bound
        );
    }
    family(
        &mut out,
        "bootd_dhcp_addresses_free",
        "gauge",
        "Pool addresses a new machine could be offered, by served network.",
    );
    for n in &s.networks {
        let network = label_value(&n.network);
        let _ = writeln!(
            out,
            "bootd_dhcp_addresses_free{{network=\"{network}\"}} {}",
            n.free
        );
    }
    let services = [("tftp", &s.tftp), ("http", &s.http), ("nbd", &s.nbd)];
    family(
        &mut out,
        "bootd_sent_bytes_total",
        "counter",
        "Bytes of files and disk blocks sent, by service.",
    );
    for (service, c) in services {
        let _ = writeln!(
            out,
            "bootd_sent_bytes_total{{service=\"{service}\"}} {}",
            c.bytes
        );
    }
    for (name, help, value) in [
        (
            "bootd_transfers_started_total",
            "Transfers started (TFTP read requests, HTTP requests, NBD connections), by service.",
            (|c: &TransferCounts| c.started) as fn(&TransferCounts) -> u64,
        ),
        (
            "bootd_transfers_completed_total",
            "Transfers that sent everything they were asked for, by service.",
            |c| c.completed,
        ),
        (
            "bootd_transfers_failed_total",
            "Transfers refused, abandoned or cut, by service.",
            |c| c.failed,
        ),
    ] {
        family(&mut out, name, "counter", help);
        for (service, c) in services {
            let _ = writeln!(out, "{name}{{service=\"{service}\"}} {}", value(c));
        }
    }
    family(
        &mut out,
        "bootd_tftp_retransmits_total",
        "counter",
        "TFTP blocks sent again after a timeout or a duplicate ACK.",
    );
    let _ = writeln!(out, "bootd_tftp_retransmits_total {}", s.tftp.retransmits);
    family(
        &mut out,
        "bootd_transfer_duration_seconds",
        "histogram",
        "How long completed transfers took, by service.",
    );
    for (service, c) in services {
        let d = &c.durations;
        let mut cumulative = 0u64;
        let bounds = DURATION_BUCKETS.iter().map(|(_, le)| *le).chain(["+Inf"]);
        for (le, n) in bounds.zip(&d.buckets) {
            cumulative += n;
            let _ = writeln!(
                out,
                "bootd_transfer_duration_seconds_bucket{{service=\"{service}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "bootd_transfer_duration_seconds_sum{{service=\"{service}\"}} {}",
            seconds(d.sum_micros)
        );
        let _ = writeln!(
            out,
            "bootd_transfer_duration_seconds_count{{service=\"{service}\"}} {}",
            d.count
        );
    }
    out
}

/// The DHCP server's requests and refusals.
fn dhcp_families(out: &mut String, dhcp: &DhcpCounts) {
    family(
        out,
        "bootd_dhcp_requests_total",
        "counter",
        "DHCP and BOOTP requests received, by message type.",
    );
    for (label, n) in DHCP_TYPES.iter().zip(&dhcp.requests) {
        let _ = writeln!(out, "bootd_dhcp_requests_total{{type=\"{label}\"}} {n}");
    }
    family(
        out,
        "bootd_dhcp_refusals_total",
        "counter",
        "DHCP requests dropped or refused, by reason.",
    );
    for (label, n) in DHCP_REFUSALS.iter().zip(&dhcp.refusals) {
        let _ = writeln!(out, "bootd_dhcp_refusals_total{{reason=\"{label}\"}} {n}");
    }
}

/// The proxy's requests, refusals and replies, under the DHCP server's names
/// with the port they came to.
fn proxy_families(out: &mut String, proxy: &ProxySnapshot) {
    let ports = || proxy.ports.iter().zip(&proxy.counts);
    family(
        out,
        "bootd_dhcp_requests_total",
        "counter",
        "DHCP and BOOTP requests received, by port and message type.",
    );
    for (port, counts) in ports() {
        for (label, n) in DHCP_TYPES.iter().zip(&counts.requests) {
            let _ = writeln!(
                out,
                "bootd_dhcp_requests_total{{port=\"{port}\",type=\"{label}\"}} {n}"
            );
        }
    }
    family(
        out,
        "bootd_dhcp_refusals_total",
        "counter",
        "DHCP requests left unanswered, by port and reason.",
    );
    for (port, counts) in ports() {
        for (label, n) in PROXY_REFUSALS.iter().zip(&counts.refusals) {
            let _ = writeln!(
                out,
                "bootd_dhcp_refusals_total{{port=\"{port}\",reason=\"{label}\"}} {n}"
            );
        }
    }
    family(
        out,
        "bootd_dhcp_replies_total",
        "counter",
        "Boot information sent by the proxy, by port and message type.",
    );
    for ((port, counts), kind) in ports().zip(PROXY_REPLIES) {
        let _ = writeln!(
            out,
            "bootd_dhcp_replies_total{{port=\"{port}\",type=\"{kind}\"}} {}",
            counts.replies
        );
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Microseconds as decimal seconds, exactly (`1.5`, `0.000001`, `3`).
fn seconds(micros: u64) -> String {
    let whole = micros / 1_000_000;
    let fraction = micros % 1_000_000;
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = format!("{fraction:06}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// A label value escaped as the format asks (backslash, quote, newline).
fn label_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_fall_in_the_first_bucket_that_holds_them() {
        let mut d = DurationCounts::default();
        d.observe(Duration::from_millis(10));
        d.observe(Duration::from_millis(11));
        d.observe(Duration::from_secs(301));
        assert_eq!(d.buckets, [1, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(d.sum_micros, 301_021_000);
        assert_eq!(d.count, 3);
    }

    #[test]
    fn unknown_labels_count_as_other() {
        let mut c = DhcpCounts::default();
        c.request("discover");
        c.request("offer");
        c.refusal("nak");
        c.refusal("no such reason");
        assert_eq!(c.requests, [1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(c.refusals.get(17), Some(&1));
        assert_eq!(c.refusals.get(19), Some(&1));
    }

    #[test]
    fn seconds_are_exact_decimals() {
        assert_eq!(seconds(0), "0");
        assert_eq!(seconds(3_000_000), "3");
        assert_eq!(seconds(1_500_000), "1.5");
        assert_eq!(seconds(1), "0.000001");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn shells_publish_and_a_scrape_reads_what_they_stored() {
        let metrics = Metrics::new();
        let mut dhcp = DhcpCounts::default();
        dhcp.request("request");
        metrics.publish_dhcp(&dhcp);
        let mut tftp = TransferCounts {
            started: 2,
            completed: 1,
            failed: 1,
            bytes: 42,
            retransmits: 3,
            ..TransferCounts::default()
        };
        tftp.durations.observe(Duration::from_millis(250));
        metrics.publish_transfers(Service::Tftp, &tftp);
        let gauges = metrics.register_network("10.0.0.0/24".into());
        gauges.set(5, 45);
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.dhcp, dhcp);
        assert_eq!(snapshot.tftp, tftp);
        assert_eq!(snapshot.http, TransferCounts::default());
        assert_eq!(
            snapshot.networks,
            vec![NetworkLeases {
                network: "10.0.0.0/24".into(),
                bound: 5,
                free: 45
            }]
        );
    }

    #[test]
    fn the_proxys_counts_are_published_and_shown_by_port_under_the_dhcp_names() {
        let metrics = Metrics::for_proxy([67, 4011]);
        let mut counts = ProxyCounts::default();
        counts[0].request("discover");
        counts[0].request("request");
        counts[0].refusal("for_the_site_server");
        counts[0].replies = 1;
        counts[1].request("request");
        counts[1].refusal("no such reason");
        counts[1].replies = 0;
        metrics.publish_proxy(&counts);
        // The DHCP server's counts are not its: a proxy has none.
        metrics.publish_dhcp(&DhcpCounts::default());
        let snapshot = metrics.snapshot();
        assert_eq!(
            snapshot.proxy,
            Some(ProxySnapshot {
                ports: [67, 4011],
                counts
            })
        );
        let text = render(&snapshot);
        for line in [
            "# TYPE bootd_dhcp_requests_total counter\n",
            "bootd_dhcp_requests_total{port=\"67\",type=\"discover\"} 1\n",
            "bootd_dhcp_requests_total{port=\"67\",type=\"request\"} 1\n",
            "bootd_dhcp_requests_total{port=\"4011\",type=\"request\"} 1\n",
            "bootd_dhcp_refusals_total{port=\"67\",reason=\"for_the_site_server\"} 1\n",
            "bootd_dhcp_refusals_total{port=\"4011\",reason=\"other\"} 1\n",
            "bootd_dhcp_replies_total{port=\"67\",type=\"offer\"} 1\n",
            "bootd_dhcp_replies_total{port=\"4011\",type=\"ack\"} 0\n",
        ] {
            assert!(text.contains(line), "{line}in:\n{text}");
        }
        assert!(!text.contains("{type=\"discover\"}"), "{text}");
        // Without a proxy, no such series.
        let plain = render(&Metrics::new().snapshot());
        assert!(
            !plain.contains("port=") && !plain.contains("replies"),
            "{plain}"
        );
    }

    #[test]
    fn render_writes_the_exposition_format_byte_for_byte() {
        let mut snapshot = Snapshot::default();
        snapshot.dhcp.request("discover");
        snapshot.dhcp.request("discover");
        snapshot.dhcp.request("bootp");
        snapshot.dhcp.refusal("pool_exhausted");
        snapshot.networks.push(NetworkLeases {
            network: "10.0.0.0/24".into(),
            bound: 3,
            free: 97,
        });
        snapshot.tftp = TransferCounts {
            started: 3,
            completed: 2,
            failed: 1,
            bytes: 1_048_576,
            retransmits: 4,
            durations: DurationCounts::default(),
        };
        snapshot.tftp.durations.observe(Duration::from_millis(5));
        snapshot
            .tftp
            .durations
            .observe(Duration::from_millis(1_500));
        snapshot.http.bytes = 7;
        let text = render(&snapshot);
        let expected = "\
# HELP bootd_dhcp_requests_total DHCP and BOOTP requests received, by message type.
# TYPE bootd_dhcp_requests_total counter
bootd_dhcp_requests_total{type=\"discover\"} 2
bootd_dhcp_requests_total{type=\"request\"} 0
bootd_dhcp_requests_total{type=\"decline\"} 0
bootd_dhcp_requests_total{type=\"release\"} 0
bootd_dhcp_requests_total{type=\"inform\"} 0
bootd_dhcp_requests_total{type=\"bootp\"} 1
bootd_dhcp_requests_total{type=\"other\"} 0
# HELP bootd_dhcp_refusals_total DHCP requests dropped or refused, by reason.
# TYPE bootd_dhcp_refusals_total counter
bootd_dhcp_refusals_total{reason=\"malformed\"} 0
bootd_dhcp_refusals_total{reason=\"not_a_request\"} 0
bootd_dhcp_refusals_total{reason=\"not_ethernet\"} 0
bootd_dhcp_refusals_total{reason=\"foreign_client_address\"} 0
bootd_dhcp_refusals_total{reason=\"foreign_relay\"} 0
bootd_dhcp_refusals_total{reason=\"claims_address\"} 0
bootd_dhcp_refusals_total{reason=\"late_decline\"} 0
bootd_dhcp_refusals_total{reason=\"request_without_address\"} 0
bootd_dhcp_refusals_total{reason=\"unexpected_type\"} 0
bootd_dhcp_refusals_total{reason=\"for_another_server\"} 0
bootd_dhcp_refusals_total{reason=\"simple_client_not_allowed\"} 0
bootd_dhcp_refusals_total{reason=\"access_refused\"} 0
bootd_dhcp_refusals_total{reason=\"pool_exhausted\"} 1
bootd_dhcp_refusals_total{reason=\"no_boot_file\"} 0
bootd_dhcp_refusals_total{reason=\"ipxe_loader_refused\"} 0
bootd_dhcp_refusals_total{reason=\"http_boot_without_http\"} 0
bootd_dhcp_refusals_total{reason=\"not_holder\"} 0
bootd_dhcp_refusals_total{reason=\"nak\"} 0
bootd_dhcp_refusals_total{reason=\"overload\"} 0
bootd_dhcp_refusals_total{reason=\"other\"} 0
# HELP bootd_dhcp_leases_bound Addresses bound to a machine, by served network.
# TYPE bootd_dhcp_leases_bound gauge
bootd_dhcp_leases_bound{network=\"10.0.0.0/24\"} 3
# HELP bootd_dhcp_addresses_free Pool addresses a new machine could be offered, by served network.
# TYPE bootd_dhcp_addresses_free gauge
bootd_dhcp_addresses_free{network=\"10.0.0.0/24\"} 97
# HELP bootd_sent_bytes_total Bytes of files and disk blocks sent, by service.
# TYPE bootd_sent_bytes_total counter
bootd_sent_bytes_total{service=\"tftp\"} 1048576
bootd_sent_bytes_total{service=\"http\"} 7
bootd_sent_bytes_total{service=\"nbd\"} 0
# HELP bootd_transfers_started_total Transfers started (TFTP read requests, HTTP requests, NBD connections), by service.
# TYPE bootd_transfers_started_total counter
bootd_transfers_started_total{service=\"tftp\"} 3
bootd_transfers_started_total{service=\"http\"} 0
bootd_transfers_started_total{service=\"nbd\"} 0
# HELP bootd_transfers_completed_total Transfers that sent everything they were asked for, by service.
# TYPE bootd_transfers_completed_total counter
bootd_transfers_completed_total{service=\"tftp\"} 2
bootd_transfers_completed_total{service=\"http\"} 0
bootd_transfers_completed_total{service=\"nbd\"} 0
# HELP bootd_transfers_failed_total Transfers refused, abandoned or cut, by service.
# TYPE bootd_transfers_failed_total counter
bootd_transfers_failed_total{service=\"tftp\"} 1
bootd_transfers_failed_total{service=\"http\"} 0
bootd_transfers_failed_total{service=\"nbd\"} 0
# HELP bootd_tftp_retransmits_total TFTP blocks sent again after a timeout or a duplicate ACK.
# TYPE bootd_tftp_retransmits_total counter
bootd_tftp_retransmits_total 4
# HELP bootd_transfer_duration_seconds How long completed transfers took, by service.
# TYPE bootd_transfer_duration_seconds histogram
bootd_transfer_duration_seconds_bucket{service=\"tftp\",le=\"0.01\"} 1
bootd_transfer_duration_seconds_bucket{service=\"tftp\",le=\"0.1\"} 1
bootd_transfer_duration_seconds_bucket{service=\"tftp\",le=\"0.5\"} 1
bootd_transfer_duration_seconds_bucket{service=\"tftp\",le=\"1\"} 1
bootd_transfer_duration_seconds_bucket{service=\"tftp\",le=\"5\"} 2
bootd_transfer_duration_seconds_bucket{service=\"tftp\",le=\"10\"} 2
bootd_transfer_duration_seconds_bucket{service=\"tftp\",le=\"30\"} 2
bootd_transfer_duration_seconds_bucket{service=\"tftp\",le=\"60\"} 2
bootd_transfer_duration_seconds_bucket{service=\"tftp\",le=\"300\"} 2
bootd_transfer_duration_seconds_bucket{service=\"tftp\",le=\"+Inf\"} 2
bootd_transfer_duration_seconds_sum{service=\"tftp\"} 1.505
bootd_transfer_duration_seconds_count{service=\"tftp\"} 2
";
        let (head, rest) = text.split_at(expected.len().min(text.len()));
        assert_eq!(head, expected);
        // The HTTP and NBD histograms follow, empty: 12 lines each.
        assert_eq!(rest.lines().count(), 24);
        assert!(rest.ends_with("bootd_transfer_duration_seconds_count{service=\"nbd\"} 0\n"));
    }
}
