//! Endpoint tests, driven by a fake clock: parking requests while an HTTP
//! authorisation runs, log-once memory, and replies held until their lease record
//! is durable.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::{Duration, Instant};

use super::*;
use crate::bootp::leases::RecordState;
use crate::bootp::pxe::HttpServer;
use crate::bootp::wire::{Message, MessageType, tag};
use crate::config::load_str;
use crate::types::Ipv4Network;

const EPOCH: u64 = 1_718_000_000;
const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68);

fn server_ip() -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, 1)
}

fn net(network: Ipv4Network) -> NetConfig {
    NetConfig {
        device: "eth0".into(),
        label: "eth0".into(),
        index: None,
        network,
        mtu: None,
    }
}

/// An endpoint serving 10.0.0.1/24 from a pool of 10.0.0.100 + 10, with `bootp`
/// lines added to `[bootp]` and `rest` after it, logging everything.
fn endpoint(bootp: &str, rest: &str) -> Endpoint {
    let network = Ipv4Network::new(server_ip(), 24).unwrap();
    let bootp = format!("pool_start = 10.0.0.100\npool_count = 10\n{bootp}");
    starting(network, &bootp, rest).0
}

/// An endpoint serving `network`, and what it said at start-up.
fn starting(network: Ipv4Network, bootp: &str, rest: &str) -> (Endpoint, Vec<Event>) {
    restarting(network, bootp, rest, Vec::new())
}

/// An endpoint serving `network` with the records of a lease file.
fn restarting(
    network: Ipv4Network,
    bootp: &str,
    rest: &str,
    records: Vec<LeaseRecord>,
) -> (Endpoint, Vec<Event>) {
    let text = format!(
        "[bootp]\nlease_file = /nonexistent/leases\n{bootp}\n[bootfile]\ndefault = pxelinux.0\n00000 = pxelinux.0\n{rest}"
    );
    let loaded = load_str(Path::new("t.ini"), &text, Path::new("/")).unwrap();
    let mut endpoint = Endpoint::new(
        &loaded.config,
        &[net(network)],
        records,
        None,
        None,
        LevelFilter::Debug,
    );
    let said = events(&mut endpoint);
    (endpoint, said)
}

fn mac(last: u8) -> MacAddr {
    MacAddr([0x52, 0x54, 0, 0, 0, last])
}

/// A DHCP request of `kind` from `mac(last)`; PXE requests carry option 60
/// `PXEClient` and architecture 0.
fn request(kind: MessageType, last: u8, xid: u32, pxe: bool) -> Vec<u8> {
    let mut message = Message {
        xid,
        ..Message::default()
    };
    message.chaddr[..6].copy_from_slice(&mac(last).0);
    message.options.set(tag::MESSAGE_TYPE, [kind.to_byte()]);
    if pxe {
        message.options.set(
            tag::VENDOR_CLASS,
            b"PXEClient:Arch:00000:UNDI:002001".to_vec(),
        );
    }
    message.emit(576).bytes
}

fn dhcp_request(last: u8, xid: u32, address: Ipv4Addr) -> Vec<u8> {
    let mut message = Message::parse(&request(MessageType::Request, last, xid, true)).unwrap();
    message.options.set(tag::SERVER_ID, server_ip().octets());
    message.options.set(tag::REQUESTED_IP, address.octets());
    message.emit(576).bytes
}

fn events(endpoint: &mut Endpoint) -> Vec<Event> {
    std::iter::from_fn(|| endpoint.poll_event()).collect()
}

fn transmits(endpoint: &mut Endpoint) -> Vec<Transmit> {
    std::iter::from_fn(|| endpoint.poll_transmit()).collect()
}

fn lines(events: &[Event], wanted: Level) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Log { level, line } if *level == wanted => Some(line.clone()),
            _ => None,
        })
        .collect()
}

fn queries(events: &[Event]) -> Vec<Query> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Authorise(query) => Some(query.clone()),
            _ => None,
        })
        .collect()
}

fn reply_of(transmit: &Transmit) -> Message {
    Message::parse(&transmit.bytes).unwrap()
}

const HTTP: &str =
    "[http]\nlocation = http://10.0.0.2:8080\npxe = /boot\ndhcp = /linux\ntimeout = 2\n";

fn allowed() -> Answer {
    Answer::Status {
        code: 200,
        body: String::new(),
    }
}

#[test]
fn a_request_parks_while_its_authorisation_runs_and_resumes_on_the_answer() {
    let mut e = endpoint("access = http", HTTP);
    let now = Instant::now();
    e.handle_datagram(
        now,
        EPOCH,
        0,
        CLIENT,
        &request(MessageType::Discover, 1, 7, true),
    );
    assert!(
        transmits(&mut e).is_empty(),
        "no answer before the decision"
    );
    let asked = queries(&events(&mut e));
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].mac, mac(1));
    assert!(
        asked[0]
            .url
            .starts_with("http://10.0.0.2:8080/boot?mac=52-54-00-00-00-01")
    );
    assert_eq!(e.parked_count(), 1);

    e.handle_auth_answer(now + Duration::from_millis(5), asked[0].id, allowed());
    let sent = transmits(&mut e);
    assert_eq!(sent.len(), 1);
    let offer = reply_of(&sent[0]);
    assert_eq!(offer.message_type(), Some(MessageType::Offer));
    assert_eq!(offer.xid, 7);
    assert_eq!(e.parked_count(), 0);
    let said = events(&mut e);
    assert!(
        lines(&said, Level::Info)
            .contains(&"52-54-00-00-00-01: HTTP authorisation allows it".into()),
        "{said:?}"
    );
}

#[test]
fn a_retransmission_while_parked_replaces_the_request_and_asks_nothing_more() {
    let mut e = endpoint("access = http", HTTP);
    let now = Instant::now();
    let mut asked = Vec::new();
    for (step, xid) in [11, 12, 13].into_iter().enumerate() {
        let at = now + Duration::from_millis(300 * step as u64);
        e.handle_datagram(
            at,
            EPOCH,
            0,
            CLIENT,
            &request(MessageType::Discover, 1, xid, true),
        );
        asked.extend(queries(&events(&mut e)));
    }
    assert_eq!(asked.len(), 1, "one query for three retransmissions");
    assert_eq!(e.parked_count(), 1);
    e.handle_auth_answer(now + Duration::from_secs(1), asked[0].id, allowed());
    let sent = transmits(&mut e);
    assert_eq!(sent.len(), 1, "one answer, to the latest retransmission");
    assert_eq!(reply_of(&sent[0]).xid, 13);
}

#[test]
fn a_parked_request_expires_with_a_line_saying_why() {
    let mut e = endpoint("access = http", HTTP);
    let now = Instant::now();
    e.handle_datagram(
        now,
        EPOCH,
        0,
        CLIENT,
        &request(MessageType::Discover, 1, 7, true),
    );
    let id = queries(&events(&mut e))[0].id;
    assert_eq!(e.poll_timeout(), Some(now + Duration::from_secs(2)));
    e.handle_timeout(now + Duration::from_secs(1));
    assert_eq!(e.parked_count(), 1, "not yet");
    e.handle_timeout(now + Duration::from_secs(2));
    assert_eq!(e.parked_count(), 0);
    assert_eq!(
        lines(&events(&mut e), Level::Info),
        vec!["52-54-00-00-00-01: refused: the HTTP authorisation server did not answer within 2 s"]
    );
    assert_eq!(e.poll_timeout(), None);
    // The late answer sends nothing.
    e.handle_auth_answer(now + Duration::from_secs(3), id, allowed());
    assert!(transmits(&mut e).is_empty());
}

#[test]
fn a_query_the_workers_cannot_take_refuses_the_parked_request_once() {
    let mut e = endpoint("access = http", HTTP);
    let now = Instant::now();
    e.handle_datagram(
        now,
        EPOCH,
        0,
        CLIENT,
        &request(MessageType::Discover, 1, 7, true),
    );
    let id = queries(&events(&mut e))[0].id;
    let failed = Answer::Failed("too many authorisation queries waiting".into());
    e.handle_auth_answer(now, id, failed);
    assert!(transmits(&mut e).is_empty());
    assert_eq!(e.parked_count(), 0);
    let info = lines(&events(&mut e), Level::Info);
    assert!(
        info.iter().any(|l| l.starts_with(
            "52-54-00-00-00-01: refused: the HTTP authorisation server could not be asked"
        )),
        "{info:?}"
    );
}

#[test]
fn a_refusal_is_said_once_at_info_then_at_debug() {
    let mut e = endpoint("access = mac", "[mac]\n52-54-00-00-00-02 = enable\n");
    let now = Instant::now();
    let mut said = Vec::new();
    for xid in 1..=3 {
        e.handle_datagram(
            now,
            EPOCH,
            0,
            CLIENT,
            &request(MessageType::Discover, 1, xid, true),
        );
        said.extend(events(&mut e));
    }
    assert!(transmits(&mut e).is_empty());
    let refusal = "52-54-00-00-00-01: refused: no [mac] entry matches it".to_string();
    assert_eq!(lines(&said, Level::Info), vec![refusal.clone()]);
    assert_eq!(lines(&said, Level::Debug), vec![refusal.clone(), refusal]);
}

#[test]
fn the_default_boot_file_warning_is_said_once_per_client() {
    let mut e = endpoint("", "");
    let now = Instant::now();
    let mut message = Message::parse(&request(MessageType::Discover, 1, 1, true)).unwrap();
    message.options.set(tag::CLIENT_ARCH, [0, 11]);
    let bytes = message.emit(576).bytes;
    let mut said = Vec::new();
    for _ in 0..3 {
        e.handle_datagram(now, EPOCH, 0, CLIENT, &bytes);
        said.extend(events(&mut e));
    }
    assert_eq!(transmits(&mut e).len(), 3, "each is answered");
    let warnings = lines(&said, Level::Warn);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("no [bootfile] entry for architecture 11"));
}

/// An endpoint on 10.0.0.1/24 with `[bootfile]` lines `files` and bootd's HTTP
/// service `http`.
fn booting(files: &str, http: Option<HttpServer>) -> Endpoint {
    let text = format!(
        "[bootp]\nlease_file = /nonexistent/leases\npool_start = 10.0.0.100\n[bootfile]\n{files}"
    );
    let loaded = load_str(Path::new("t.ini"), &text, Path::new("/")).unwrap();
    let network = Ipv4Network::new(server_ip(), 24).unwrap();
    let mut e = Endpoint::new(
        &loaded.config,
        &[net(network)],
        Vec::new(),
        None,
        http,
        LevelFilter::Debug,
    );
    events(&mut e);
    e
}

/// Three retransmissions of `bytes`: what was sent and said.
fn three_times(e: &mut Endpoint, bytes: &[u8]) -> (Vec<Transmit>, Vec<Event>) {
    let now = Instant::now();
    let mut said = Vec::new();
    for _ in 0..3 {
        e.handle_datagram(now, EPOCH, 0, CLIENT, bytes);
        said.extend(events(e));
    }
    (transmits(e), said)
}

#[test]
fn ipxe_and_http_boot_clients_are_sent_urls_on_the_http_service() {
    let http = HttpServer {
        address: None,
        port: 8080,
    };
    let mut e = booting(
        "00000 = undionly.kpxe\n00016 = ipxe.efi\nipxe = boot.ipxe\n",
        Some(http),
    );
    let mut ipxe = Message::parse(&request(MessageType::Discover, 1, 1, true)).unwrap();
    ipxe.options.set(tag::USER_CLASS, b"iPXE".to_vec());
    let (sent, _) = three_times(&mut e, &ipxe.emit(576).bytes);
    assert_eq!(reply_of(&sent[0]).file, b"http://10.0.0.1:8080/boot.ipxe");
    let mut uefi = Message::parse(&request(MessageType::Discover, 2, 1, false)).unwrap();
    uefi.options.set(
        tag::VENDOR_CLASS,
        b"HTTPClient:Arch:00016:UNDI:003000".to_vec(),
    );
    let (sent, _) = three_times(&mut e, &uefi.emit(576).bytes);
    assert_eq!(reply_of(&sent[0]).file, b"http://10.0.0.1:8080/ipxe.efi");
    let line = sent[0].sent_line.as_deref().unwrap_or_default();
    assert!(
        line.ends_with("boot file http://10.0.0.1:8080/ipxe.efi (HTTP boot)"),
        "{line}"
    );
}

#[test]
fn a_refused_ipxe_loader_and_an_unservable_http_boot_are_said_once_per_client() {
    let mut e = booting("00000 = undionly.kpxe\n00016 = ipxe.efi\n", None);
    let mut ipxe = Message::parse(&request(MessageType::Discover, 1, 1, true)).unwrap();
    ipxe.options.set(tag::USER_CLASS, b"iPXE".to_vec());
    let (sent, said) = three_times(&mut e, &ipxe.emit(576).bytes);
    assert_eq!(sent.len(), 3, "answered, with no file");
    assert!(sent.iter().all(|t| reply_of(t).file.is_empty()));
    let warnings = lines(&said, Level::Warn);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("undionly.kpxe, an iPXE loader"));

    let mut uefi = Message::parse(&request(MessageType::Discover, 2, 1, false)).unwrap();
    uefi.options.set(
        tag::VENDOR_CLASS,
        b"HTTPClient:Arch:00016:UNDI:003000".to_vec(),
    );
    let (sent, said) = three_times(&mut e, &uefi.emit(576).bytes);
    assert!(sent.is_empty());
    let refusals = lines(&said, Level::Info);
    assert_eq!(refusals.len(), 1, "{said:?}");
    assert!(refusals[0].contains("bootd's HTTP service does not run"));
}

/// DISCOVER then REQUEST from `mac(last)`; returns the events of the REQUEST.
fn discover_and_request(e: &mut Endpoint, last: u8, now: Instant) -> Vec<Event> {
    e.handle_datagram(
        now,
        EPOCH,
        0,
        CLIENT,
        &request(MessageType::Discover, last, 1, true),
    );
    let offer = transmits(e);
    assert_eq!(offer.len(), 1);
    let address = reply_of(&offer[0]).yiaddr;
    events(e);
    e.handle_datagram(now, EPOCH, 0, CLIENT, &dhcp_request(last, 2, address));
    events(e)
}

/// The end of a shell's turn whose write succeeds: the records it wrote.
fn committed(e: &mut Endpoint) -> Vec<LeaseRecord> {
    match e.poll_commit() {
        Some(commit) => {
            e.handle_committed(commit.id, Ok(()));
            commit.records
        }
        None => Vec::new(),
    }
}

fn published(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Publish(bus::Event::Lease(_))))
        .count()
}

#[test]
fn the_ack_waits_until_its_lease_record_is_on_disk() {
    let mut e = endpoint("", "");
    let now = Instant::now();
    let said = discover_and_request(&mut e, 1, now);
    let commit = e.poll_commit().unwrap();
    assert_eq!(commit.records.len(), 1);
    let record = &commit.records[0];
    assert_eq!(
        (record.mac, record.ip, record.epoch, record.state),
        (
            mac(1),
            Ipv4Addr::new(10, 0, 0, 100),
            EPOCH,
            RecordState::Bound
        )
    );
    assert!(e.poll_transmit().is_none(), "no ACK before the write");
    assert_eq!(published(&said), 0, "no event before the write");

    e.handle_committed(commit.id, Ok(()));
    let sent = transmits(&mut e);
    assert_eq!(sent.len(), 1);
    assert_eq!(reply_of(&sent[0]).message_type(), Some(MessageType::Ack));
    assert_eq!(
        sent[0].sent_line.as_deref(),
        Some(
            "52-54-00-00-00-01: DHCPACK 10.0.0.100 via 255.255.255.255:68, boot file pxelinux.0 (PXE)"
        )
    );
    assert_eq!(published(&events(&mut e)), 1);
}

#[test]
fn a_failed_write_sends_no_ack_and_the_retry_writes_again() {
    let mut e = endpoint("", "");
    let now = Instant::now();
    discover_and_request(&mut e, 1, now);
    let commit = e.poll_commit().unwrap();
    e.handle_committed(commit.id, Err(io::Error::other("No space left on device")));
    assert!(transmits(&mut e).is_empty(), "no ACK");
    let said = events(&mut e);
    assert_eq!(published(&said), 0, "no event");
    assert_eq!(
        lines(&said, Level::Error),
        vec![
            "52-54-00-00-00-01: cannot write the lease file /nonexistent/leases (No space left on device); no answer sent, the client will ask again"
        ]
    );
    // The client's retransmission writes the binding again, then is answered.
    e.handle_datagram(
        now,
        EPOCH,
        0,
        CLIENT,
        &dhcp_request(1, 3, Ipv4Addr::new(10, 0, 0, 100)),
    );
    let commit = e.poll_commit().unwrap();
    assert_eq!(commit.records.len(), 1, "written again");
    assert!(e.poll_transmit().is_none());
    e.handle_committed(commit.id, Ok(()));
    assert_eq!(transmits(&mut e).len(), 1);
}

#[test]
fn an_answer_repeating_a_binding_being_written_waits_for_that_write() {
    let mut e = endpoint("", "");
    let now = Instant::now();
    discover_and_request(&mut e, 1, now);
    let commit = e.poll_commit().unwrap();
    // A retransmission before the shell reports the write: nothing new to write,
    // but its ACK depends on the same record.
    e.handle_datagram(
        now,
        EPOCH,
        0,
        CLIENT,
        &dhcp_request(1, 2, Ipv4Addr::new(10, 0, 0, 100)),
    );
    assert!(e.poll_commit().is_none());
    assert!(e.poll_transmit().is_none());
    e.handle_committed(commit.id, Ok(()));
    assert_eq!(transmits(&mut e).len(), 2);
}

#[test]
fn each_dhcp_phase_of_a_client_is_told_for_the_status_page_in_order() {
    let mut e = endpoint("allow_simple_dhcp = on", "");
    let t0 = Instant::now();
    let t1 = t0 + Duration::from_millis(5);
    e.handle_datagram(
        t0,
        EPOCH,
        0,
        CLIENT,
        &request(MessageType::Discover, 1, 1, true),
    );
    let address = reply_of(&transmits(&mut e)[0]).yiaddr;
    e.handle_datagram(t1, EPOCH, 0, CLIENT, &dhcp_request(1, 2, address));
    committed(&mut e);
    assert_eq!(transmits(&mut e).len(), 1, "the ACK");
    // A request for an address of another network: a NAK.
    let foreign = Ipv4Addr::new(10, 0, 1, 3);
    assert_eq!(nak_or_ack(&mut e, 2, foreign, t1), Some(MessageType::Nak));
    let phases: Vec<_> = std::iter::from_fn(|| e.poll_phase()).collect();
    assert_eq!(
        phases,
        vec![
            (t0, mac(1), DhcpPhase::DiscoverSeen),
            (t0, mac(1), DhcpPhase::OfferSent { ip: address }),
            (t1, mac(1), DhcpPhase::RequestSeen),
            (t1, mac(2), DhcpPhase::RequestSeen),
            (t1, mac(2), DhcpPhase::NakSent),
        ]
    );
}

#[test]
fn the_phases_kept_between_two_turns_are_bounded() {
    let mut e = roomy();
    let now = Instant::now();
    for n in 0..(MAX_PHASES as u32 + 100) {
        e.handle_datagram(
            now,
            EPOCH,
            0,
            CLIENT,
            &forged(MessageType::Discover, n, false),
        );
    }
    assert_eq!(std::iter::from_fn(|| e.poll_phase()).count(), MAX_PHASES);
}

fn nak_or_ack(e: &mut Endpoint, last: u8, address: Ipv4Addr, now: Instant) -> Option<MessageType> {
    let mut message = Message::parse(&request(MessageType::Request, last, 9, false)).unwrap();
    message.options.set(tag::REQUESTED_IP, address.octets());
    e.handle_datagram(now, EPOCH, 0, CLIENT, &message.emit(576).bytes);
    committed(e);
    let sent = transmits(e);
    sent.first().and_then(|t| reply_of(t).message_type())
}

#[test]
fn a_pool_running_past_its_network_hands_out_only_its_host_addresses() {
    // 10.0.0.250 + 20 on 10.0.0.0/24 would run over the broadcast address into
    // 10.0.1.0/24; this server itself is 10.0.0.252.
    let network = Ipv4Network::new(Ipv4Addr::new(10, 0, 0, 252), 24).unwrap();
    let pool = "pool_start = 10.0.0.250\npool_count = 20\nallow_simple_dhcp = on";
    let (mut e, said) = starting(network, pool, "");
    let now = Instant::now();
    let mut offered = Vec::new();
    for last in 1..=20 {
        e.handle_datagram(
            now,
            EPOCH,
            0,
            CLIENT,
            &request(MessageType::Discover, last, 1, true),
        );
        offered.extend(transmits(&mut e).iter().map(|t| reply_of(t).yiaddr));
    }
    let host = |last: u8| Ipv4Addr::new(10, 0, 0, last);
    // Once all four are offered, the oldest offers yield to new clients: the
    // same four addresses, over and over.
    offered.sort();
    offered.dedup();
    assert_eq!(offered, vec![host(250), host(251), host(253), host(254)]);
    // Nor is such an address granted when a client asks for it.
    for (last, address) in [
        (30, host(255)),
        (31, host(252)),
        (32, Ipv4Addr::new(10, 0, 1, 3)),
    ] {
        assert_eq!(
            nak_or_ack(&mut e, last, address, now),
            Some(MessageType::Nak),
            "{address}"
        );
    }
    // Start-up says how many addresses the pool really has.
    assert_eq!(
        lines(&said, Level::Info),
        vec![
            "serving BOOTP/DHCP on eth0 (10.0.0.0/24) as 10.0.0.252: pool 10.0.0.250 + 20 (4 addresses, 10.0.0.250 to 10.0.0.254 without this server's own), 0 bindings in /nonexistent/leases"
        ]
    );
}

#[test]
fn the_network_address_is_never_in_the_pool() {
    let network = Ipv4Network::new(server_ip(), 24).unwrap();
    let pool = "pool_start = 10.0.0.0\npool_count = 3\nallow_simple_dhcp = on";
    let (mut e, said) = starting(network, pool, "");
    let now = Instant::now();
    let mut offered = Vec::new();
    for last in 1..=3 {
        e.handle_datagram(
            now,
            EPOCH,
            0,
            CLIENT,
            &request(MessageType::Discover, last, 1, true),
        );
        offered.extend(transmits(&mut e).iter().map(|t| reply_of(t).yiaddr));
    }
    offered.dedup();
    assert_eq!(offered, vec![Ipv4Addr::new(10, 0, 0, 2)]);
    assert_eq!(
        nak_or_ack(&mut e, 9, Ipv4Addr::new(10, 0, 0, 0), now),
        Some(MessageType::Nak)
    );
    assert!(
        lines(&said, Level::Info)[0].contains(
            "pool 10.0.0.0 + 3 (1 address, 10.0.0.1 to 10.0.0.2 without this server's own)"
        ),
        "{said:?}"
    );
}

#[test]
fn offers_to_machines_that_never_come_back_are_swept() {
    let network = Ipv4Network::new(server_ip(), 24).unwrap();
    let pool = "pool_start = 10.0.0.2\npool_count = 250\nallow_simple_dhcp = on";
    let (mut e, _) = starting(network, pool, "");
    let start = Instant::now();
    let mut now = start;
    let mut most = 0;
    // Five minutes of DISCOVERs from a new MAC every 100 ms, none of which asks
    // for its offer: the pool's 250 addresses are offered over and over.
    for i in 0..3000u32 {
        let [_, a, b, c] = i.to_be_bytes();
        let mut message = Message::parse(&request(MessageType::Discover, 0, i, false)).unwrap();
        message.chaddr[..6].copy_from_slice(&[0x02, a, b, c, 0, 1]);
        e.handle_datagram(now, EPOCH, 0, CLIENT, &message.emit(576).bytes);
        transmits(&mut e);
        events(&mut e);
        now += Duration::from_millis(100);
        if e.poll_timeout().is_some_and(|t| t <= now) {
            e.handle_timeout(now);
        }
        most = most.max(e.network(0).unwrap().leases.offer_count());
    }
    assert!(most <= 2 * 250, "{most} offers remembered at once");
    // Once the flood stops, every offer goes.
    while let Some(deadline) = e.poll_timeout() {
        assert!(
            deadline <= now + Duration::from_secs(2 * 60),
            "{deadline:?}"
        );
        now = deadline;
        e.handle_timeout(now);
    }
    assert_eq!(e.network(0).unwrap().leases.offer_count(), 0);
}

/// A DISCOVER from a made-up MAC numbered `n` (a flood's), PXE or not.
fn forged(kind: MessageType, n: u32, pxe: bool) -> Vec<u8> {
    let [_, a, b, c] = n.to_be_bytes();
    let mut message = Message::parse(&request(kind, 0, n, pxe)).unwrap();
    message.chaddr[..6].copy_from_slice(&[0x02, a, b, c, 0, 1]);
    message.emit(576).bytes
}

/// DISCOVER, then REQUEST of what was offered, from `mac(last)`, with `between`
/// run in between; the ACKed address, if any.
fn dora_with(
    e: &mut Endpoint,
    last: u8,
    now: Instant,
    between: impl FnOnce(&mut Endpoint),
) -> Option<Ipv4Addr> {
    e.handle_datagram(
        now,
        EPOCH,
        0,
        CLIENT,
        &request(MessageType::Discover, last, 1, true),
    );
    let offer = transmits(e).first().map(reply_of)?;
    assert_eq!(offer.message_type(), Some(MessageType::Offer));
    events(e);
    between(e);
    e.handle_datagram(now, EPOCH, 0, CLIENT, &dhcp_request(last, 2, offer.yiaddr));
    committed(e);
    let ack = transmits(e).first().map(reply_of)?;
    (ack.message_type() == Some(MessageType::Ack)).then_some(ack.yiaddr)
}

#[test]
fn offers_hoarded_by_forged_macs_yield_to_a_new_client() {
    let network = Ipv4Network::new(server_ip(), 24).unwrap();
    let pool = "pool_start = 10.0.0.100\npool_count = 50";
    let (mut e, _) = starting(network, pool, "");
    let now = Instant::now();
    for n in 0..50 {
        e.handle_datagram(
            now,
            EPOCH,
            0,
            CLIENT,
            &forged(MessageType::Discover, n, true),
        );
    }
    assert_eq!(transmits(&mut e).len(), 50, "the pool is offered out");
    events(&mut e);
    // A real machine a second later: the oldest unanswered offer is its.
    let later = now + Duration::from_secs(1);
    assert_eq!(
        dora_with(&mut e, 1, later, |_| {}),
        Some(Ipv4Addr::new(10, 0, 0, 100))
    );
    // Nor can a flood that goes on between its DISCOVER and its REQUEST take
    // the address it accepted: an offer to another MAC is no commitment.
    let flood = |e: &mut Endpoint| {
        for n in 1000..1200 {
            e.handle_datagram(
                later,
                EPOCH,
                0,
                CLIENT,
                &forged(MessageType::Discover, n, true),
            );
        }
        transmits(e);
        events(e);
    };
    assert_eq!(
        dora_with(&mut e, 2, later, flood),
        Some(Ipv4Addr::new(10, 0, 0, 101))
    );
}

/// A PXE REQUEST from `mac(last)` naming no address: neither option 50, nor
/// ciaddr, nor a server identifier.
fn request_naming_nothing(last: u8, xid: u32) -> Vec<u8> {
    request(MessageType::Request, last, xid, true)
}

/// DISCOVER and REQUEST from `mac(last)` at `epoch`; the ACKed address.
fn bind(e: &mut Endpoint, last: u8, now: Instant, epoch: u64) -> Option<Ipv4Addr> {
    e.handle_datagram(
        now,
        epoch,
        0,
        CLIENT,
        &request(MessageType::Discover, last, 1, true),
    );
    let offer = transmits(e).first().map(reply_of)?;
    events(e);
    e.handle_datagram(now, epoch, 0, CLIENT, &dhcp_request(last, 2, offer.yiaddr));
    committed(e);
    let ack = transmits(e).first().map(reply_of)?;
    (ack.message_type() == Some(MessageType::Ack)).then_some(ack.yiaddr)
}

#[test]
fn a_request_naming_no_address_gets_no_fresh_binding() {
    let mut e = endpoint("", "");
    let now = Instant::now();
    let mut said = Vec::new();
    for last in 1..=60 {
        e.handle_datagram(now, EPOCH, 0, CLIENT, &request_naming_nothing(last, 1));
        said.extend(events(&mut e));
    }
    assert!(transmits(&mut e).is_empty(), "RFC 2131 4.3.2: no answer");
    assert!(e.poll_commit().is_none(), "nothing bound");
    let debug = lines(&said, Level::Debug);
    assert_eq!(debug.len(), 60);
    assert!(
        debug[0].ends_with(
            "52-54-00-00-00-01: DHCPREQUEST names no address (neither option 50 nor ciaddr) and this MAC holds none: not answered"
        ),
        "{debug:?}"
    );
    // A client holding an offer is still answered (some ROMs leave option 50 out).
    e.handle_datagram(
        now,
        EPOCH,
        0,
        CLIENT,
        &request(MessageType::Discover, 61, 1, true),
    );
    assert_eq!(transmits(&mut e).len(), 1);
    e.handle_datagram(now, EPOCH, 0, CLIENT, &request_naming_nothing(61, 2));
    let commit = e.poll_commit().unwrap();
    assert_eq!(commit.records.len(), 1);
    e.handle_committed(commit.id, Ok(()));
    assert_eq!(
        reply_of(&transmits(&mut e)[0]).message_type(),
        Some(MessageType::Ack)
    );
}

#[test]
fn bindings_unused_past_their_lease_are_reclaimed_when_the_pool_is_full() {
    let network = Ipv4Network::new(server_ip(), 24).unwrap();
    let pool = "pool_start = 10.0.0.100\npool_count = 3\nlease_time = 3600";
    let reserved = "[static_dhcp]\n52-54-00-00-00-09 = 10.0.0.50\n";
    let (mut e, _) = starting(network, pool, reserved);
    let now = Instant::now();
    let host = |last: u8| Ipv4Addr::new(10, 0, 0, last);
    for last in [1, 2, 3, 9] {
        assert!(bind(&mut e, last, now, EPOCH).is_some());
    }
    // mac(2) renews an hour later: its binding is in use.
    let renewed = EPOCH + 3000;
    assert_eq!(bind(&mut e, 2, now, renewed), Some(host(101)));
    // Past mac(1)'s and mac(3)'s lease, but not past what a renewal that was
    // not recorded could have promised: still theirs.
    let at = |epoch: u64| now + Duration::from_secs(epoch - EPOCH);
    let soon = EPOCH + 3600 + 30;
    e.handle_datagram(
        at(soon),
        soon,
        0,
        CLIENT,
        &request(MessageType::Discover, 20, 1, true),
    );
    assert!(transmits(&mut e).is_empty(), "the pool is full");
    events(&mut e);
    // Long after: the oldest is reclaimed for a new machine, with a line saying so.
    let late = EPOCH + 4 * 3600;
    e.handle_datagram(
        at(late),
        late,
        0,
        CLIENT,
        &request(MessageType::Discover, 21, 1, true),
    );
    let offer = transmits(&mut e);
    assert_eq!(offer.len(), 1);
    assert_eq!(reply_of(&offer[0]).yiaddr, host(100));
    let info = lines(&events(&mut e), Level::Info);
    assert!(
        info.contains(&"52-54-00-00-00-15: the pool is full: reclaiming 10.0.0.100 from 52-54-00-00-00-01, not seen for 14400 s (its lease was 3600 s)".to_string()),
        "{info:?}"
    );
    assert_eq!(bind(&mut e, 21, at(late), late), Some(host(100)));
    // Then mac(3)'s; mac(2) renewed later, and the reservation is never taken.
    assert_eq!(bind(&mut e, 22, at(late), late), Some(host(102)));
    assert_eq!(bind(&mut e, 23, at(late), late), Some(host(101)));
    assert_eq!(bind(&mut e, 24, at(late), late), None);
    assert_eq!(bind(&mut e, 9, at(late), late), Some(host(50)));
}

#[test]
fn while_the_pool_has_room_an_expired_binding_stays_its_machines() {
    let network = Ipv4Network::new(server_ip(), 24).unwrap();
    let pool = "pool_start = 10.0.0.100\npool_count = 2\nlease_time = 3600";
    let (mut e, _) = starting(network, pool, "");
    let now = Instant::now();
    assert_eq!(
        bind(&mut e, 1, now, EPOCH),
        Some(Ipv4Addr::new(10, 0, 0, 100))
    );
    let late = EPOCH + 10 * 3600;
    let then = now + Duration::from_secs(10 * 3600);
    assert_eq!(
        bind(&mut e, 2, then, late),
        Some(Ipv4Addr::new(10, 0, 0, 101))
    );
    assert_eq!(
        bind(&mut e, 1, then, late),
        Some(Ipv4Addr::new(10, 0, 0, 100))
    );
}

#[test]
fn bindings_read_at_start_up_count_as_used_then() {
    let network = Ipv4Network::new(server_ip(), 24).unwrap();
    let pool = "pool_start = 10.0.0.100\npool_count = 1\nlease_time = 3600";
    // Written long ago: bootd cannot know whether its machine renewed while
    // bootd was not running.
    let old = LeaseRecord {
        mac: mac(1),
        ip: Ipv4Addr::new(10, 0, 0, 100),
        epoch: EPOCH - 100 * 3600,
        state: RecordState::Bound,
        pxe: true,
        uuid: None,
    };
    let (mut e, _) = restarting(network, pool, "", vec![old]);
    let now = Instant::now();
    assert_eq!(bind(&mut e, 2, now, EPOCH), None);
    let later = EPOCH + 2 * 3600;
    assert_eq!(
        bind(&mut e, 2, now + Duration::from_secs(2 * 3600), later),
        Some(Ipv4Addr::new(10, 0, 0, 100))
    );
}

/// Datagram `n` of a flood from made-up MACs (one per `n`), cycling through
/// every kind of request: PXE DISCOVER of an unlisted architecture, INFORM,
/// REQUEST naming nothing, REQUEST of a pool address, RELEASE and DECLINE of
/// it, plain BOOTP, plain DISCOVER.
fn flood_datagrams(n: u32) -> Vec<Vec<u8>> {
    let [_, a, b, c] = n.to_be_bytes();
    let address = Ipv4Addr::new(10, 0, 0, 2 + (n % 250) as u8);
    let message = |kind: Option<MessageType>, pxe: bool, edit: &dyn Fn(&mut Message)| {
        let mut m = Message {
            xid: n,
            ..Message::default()
        };
        m.chaddr[..6].copy_from_slice(&[0x02, a, b, c, 0, 1]);
        if let Some(kind) = kind {
            m.options.set(tag::MESSAGE_TYPE, [kind.to_byte()]);
        }
        if pxe {
            m.options.set(
                tag::VENDOR_CLASS,
                b"PXEClient:Arch:00011:UNDI:002001".to_vec(),
            );
            m.options.set(tag::CLIENT_ARCH, [0, 11]);
            let mut uuid = [0u8; 17];
            uuid[13..].copy_from_slice(&n.to_be_bytes());
            m.options.set(tag::CLIENT_UUID, uuid.to_vec());
        }
        edit(&mut m);
        m.emit(576).bytes
    };
    let asking = |m: &mut Message| {
        m.options.set(tag::SERVER_ID, server_ip().octets());
        m.options.set(tag::REQUESTED_IP, address.octets());
    };
    let holding = |m: &mut Message| m.ciaddr = address;
    match n % 8 {
        0 => vec![message(Some(MessageType::Discover), true, &|_| {})],
        1 => vec![message(Some(MessageType::Inform), false, &holding)],
        2 => vec![message(Some(MessageType::Request), true, &|_| {})],
        3 => vec![message(Some(MessageType::Request), true, &asking)],
        4 => vec![
            message(Some(MessageType::Request), false, &asking),
            message(Some(MessageType::Release), false, &holding),
        ],
        5 => vec![
            message(Some(MessageType::Request), true, &asking),
            message(Some(MessageType::Decline), true, &asking),
        ],
        6 => vec![message(None, false, &|_| {})],
        _ => vec![message(Some(MessageType::Discover), false, &|_| {})],
    }
}

/// Feeds datagram `n` of the flood: the authorisation server allows, refuses,
/// or never answers; every write succeeds.
fn feed_flood(e: &mut Endpoint, n: u32, now: Instant) {
    for bytes in flood_datagrams(n) {
        e.handle_datagram(now, EPOCH + u64::from(n / 1000), 0, CLIENT, &bytes);
        while let Some(event) = e.poll_event() {
            match event {
                Event::Authorise(query) if query.id % 50 != 0 => {
                    let code = if query.id % 2 == 1 { 200 } else { 401 };
                    let answer = Answer::Status {
                        code,
                        body: String::new(),
                    };
                    e.handle_auth_answer(now, query.id, answer);
                }
                _ => {}
            }
        }
        committed(e);
        transmits(e);
    }
    if e.poll_timeout().is_some_and(|t| t <= now) {
        e.handle_timeout(now);
    }
}

/// The largest of each size.
fn largest(a: StateSizes, b: StateSizes) -> StateSizes {
    StateSizes {
        phases: a.phases.max(b.phases),
        uuids: a.uuids.max(b.uuids),
        acks: a.acks.max(b.acks),
        offers: a.offers.max(b.offers),
        bindings: a.bindings.max(b.bindings),
        said_once: a.said_once.max(b.said_once),
        http_answers: a.http_answers.max(b.http_answers),
        http_queries: a.http_queries.max(b.http_queries),
        parked: a.parked.max(b.parked),
    }
}

/// What bootd remembers per client stays within stated bounds however many
/// MACs a flood makes up: with the defaults, 10,000 clients remembered and 64
/// authorisation queries out, and never more offers or bindings than the pool
/// (250 addresses) has, plus the clients remembered.
#[test]
fn per_client_state_stays_bounded_under_a_flood_of_new_macs() {
    let network = Ipv4Network::new(server_ip(), 24).unwrap();
    let pool = "pool_start = 10.0.0.2\npool_count = 250\nallow_simple_dhcp = on\naccess = http";
    let (mut e, _) = starting(network, pool, HTTP);
    let start = Instant::now();
    let mut most = StateSizes::default();
    for n in 0..200_000u32 {
        feed_flood(&mut e, n, start + Duration::from_millis(u64::from(n)));
        most = largest(most, e.state_sizes());
        let remembered = 10_000;
        let within = most.phases <= remembered
            && most.uuids <= remembered
            && most.acks <= remembered
            && most.said_once <= remembered
            && most.http_answers <= remembered
            && most.offers <= 250
            && most.bindings <= 250 + remembered
            && most.http_queries <= 64
            && most.parked <= 64;
        assert!(within, "after {n} MACs: {most:?}");
    }
    eprintln!("largest sizes: {most:?}");
}

#[test]
fn the_bounds_are_the_configured_ones() {
    let network = Ipv4Network::new(server_ip(), 24).unwrap();
    let pool = "pool_start = 10.0.0.2\npool_count = 250\nallow_simple_dhcp = on\naccess = http\nremembered_clients = 100";
    let (mut e, _) = starting(network, pool, &format!("{HTTP}max_queries = 2\n"));
    let start = Instant::now();
    let mut most = StateSizes::default();
    for n in 0..5_000u32 {
        feed_flood(&mut e, n, start + Duration::from_millis(u64::from(n)));
        most = largest(most, e.state_sizes());
    }
    assert!(
        most.phases <= 100
            && most.uuids <= 100
            && most.acks <= 100
            && most.said_once <= 100
            && most.http_answers <= 100
            && most.bindings <= 350
            && most.http_queries <= 2
            && most.parked <= 2,
        "{most:?}"
    );
    assert!(
        most.http_queries == 2 && most.said_once == 100 && most.phases == 100,
        "{most:?}"
    );
}

/// A binding lives on the network (interface) it was made on: a DECLINE
/// arriving on another interface in its MAC's name finds nothing to decline.
#[test]
fn a_decline_counts_only_on_the_interface_of_the_binding() {
    let text = "[bootp]\nlease_file = /nonexistent/leases\npool_start = 10.0.0.100;10.0.1.100\n[bootfile]\ndefault = pxelinux.0\n";
    let loaded = load_str(Path::new("t.ini"), text, Path::new("/")).unwrap();
    let nets = [
        net(Ipv4Network::new(server_ip(), 24).unwrap()),
        NetConfig {
            device: "eth1".into(),
            label: "eth1".into(),
            ..net(Ipv4Network::new(Ipv4Addr::new(10, 0, 1, 1), 24).unwrap())
        },
    ];
    let mut e = Endpoint::new(
        &loaded.config,
        &nets,
        Vec::new(),
        None,
        None,
        LevelFilter::Debug,
    );
    events(&mut e);
    let now = Instant::now();
    let address = bind(&mut e, 1, now, EPOCH).unwrap();
    let mut decline = Message::parse(&request(MessageType::Decline, 1, 9, true)).unwrap();
    decline.options.set(tag::REQUESTED_IP, address.octets());
    e.handle_datagram(now, EPOCH, 1, CLIENT, &decline.emit(576).bytes);
    assert!(e.poll_commit().is_none());
    let leases = &e.network(0).unwrap().leases;
    assert!(!leases.is_quarantined(address, now));
    assert_eq!(leases.current_address(mac(1), now), Some(address));
}

/// A 250-address pool on 10.0.0.0/24 for many made-up clients.
fn roomy() -> Endpoint {
    let network = Ipv4Network::new(server_ip(), 24).unwrap();
    starting(network, "pool_start = 10.0.0.2\npool_count = 250", "").0
}

/// A REQUEST from made-up MAC `n` for `address`, as after an OFFER of it.
fn forged_request(n: u32, address: Ipv4Addr) -> Vec<u8> {
    let mut message = Message::parse(&forged(MessageType::Request, n, true)).unwrap();
    message.options.set(tag::SERVER_ID, server_ip().octets());
    message.options.set(tag::REQUESTED_IP, address.octets());
    message.emit(576).bytes
}

/// DISCOVERs from made-up MACs `macs`, all in one turn; the address offered to
/// each (`None`: not answered).
fn discovers(e: &mut Endpoint, macs: std::ops::Range<u32>, now: Instant) -> Vec<Option<Ipv4Addr>> {
    macs.map(|n| {
        e.handle_datagram(
            now,
            EPOCH,
            0,
            CLIENT,
            &forged(MessageType::Discover, n, true),
        );
        let sent = transmits(e);
        assert!(sent.len() <= 1);
        sent.first().map(|t| reply_of(t).yiaddr)
    })
    .collect()
}

#[test]
fn the_bindings_of_one_turn_are_written_together_and_then_answered_together() {
    let mut e = roomy();
    let now = Instant::now();
    let offered = discovers(&mut e, 1..6, now);
    assert!(e.poll_commit().is_none(), "offers write nothing");
    for (n, address) in (1..6).zip(&offered) {
        e.handle_datagram(now, EPOCH, 0, CLIENT, &forged_request(n, address.unwrap()));
    }
    assert!(transmits(&mut e).is_empty(), "no ACK before the write");
    let commit = e.poll_commit().unwrap();
    assert_eq!(commit.records.len(), 5, "one commit for the turn");
    let bound: Vec<Ipv4Addr> = commit.records.iter().map(|r| r.ip).collect();
    assert_eq!(bound, offered.iter().flatten().copied().collect::<Vec<_>>());
    assert!(e.poll_commit().is_none(), "each record is handed out once");
    e.handle_committed(commit.id, Ok(()));
    let acks = transmits(&mut e);
    assert_eq!(acks.len(), 5);
    assert!(
        acks.iter()
            .all(|t| reply_of(t).message_type() == Some(MessageType::Ack))
    );
    assert_eq!(published(&events(&mut e)), 5);
}

#[test]
fn a_failed_group_write_answers_none_of_its_clients_and_says_so_in_one_line() {
    let mut e = roomy();
    let now = Instant::now();
    let offered = discovers(&mut e, 1..4, now);
    events(&mut e);
    for (n, address) in (1..4).zip(&offered) {
        e.handle_datagram(now, EPOCH, 0, CLIENT, &forged_request(n, address.unwrap()));
    }
    let commit = e.poll_commit().unwrap();
    e.handle_committed(commit.id, Err(io::Error::other("Input/output error")));
    assert!(transmits(&mut e).is_empty(), "no ACK");
    let said = events(&mut e);
    assert_eq!(published(&said), 0);
    assert_eq!(
        lines(&said, Level::Error),
        vec![
            "cannot write the lease file /nonexistent/leases (Input/output error); no answer sent to 3 clients (02-00-00-01-00-01, 02-00-00-02-00-01, 02-00-00-03-00-01), they will ask again"
        ]
    );
    // Each one's retransmission writes its binding again.
    e.handle_datagram(
        now,
        EPOCH,
        0,
        CLIENT,
        &forged_request(2, offered[1].unwrap()),
    );
    assert_eq!(committed(&mut e).len(), 1);
    assert_eq!(transmits(&mut e).len(), 1);
}

#[test]
fn a_client_already_bound_is_answered_without_waiting_for_the_turns_write() {
    let mut e = roomy();
    let now = Instant::now();
    let address = bind(&mut e, 1, now, EPOCH).unwrap();
    // One turn: a new client's REQUEST, which needs a write, then a bound
    // client's renewal, which does not.
    let offered = discovers(&mut e, 7..8, now)[0].unwrap();
    e.handle_datagram(now, EPOCH, 0, CLIENT, &forged_request(7, offered));
    e.handle_datagram(now, EPOCH + 5, 0, CLIENT, &dhcp_request(1, 3, address));
    let sent = transmits(&mut e);
    assert_eq!(sent.len(), 1, "the renewal's ACK leaves at once");
    assert_eq!(sent[0].mac, mac(1));
    assert_eq!(committed(&mut e).len(), 1);
    assert_eq!(transmits(&mut e)[0].mac, MacAddr([0x02, 0, 0, 7, 0, 1]));
}

fn overload_lines(said: &[Event]) -> Vec<String> {
    lines(said, Level::Warn)
        .into_iter()
        .filter(|l| l.starts_with("overloaded"))
        .collect()
}

/// A receive queue `percent` full, after `drops` drops.
fn queue(percent: usize, drops: u64) -> Backlog {
    Backlog {
        queued: percent * 10_000,
        limit: 1_000_000,
        drops,
        waited: Some(Duration::from_millis(5)),
    }
}

#[test]
fn while_the_queue_is_more_than_half_full_new_clients_wait_and_what_was_started_finishes() {
    let mut e = roomy();
    let now = Instant::now();
    let known = bind(&mut e, 1, now, EPOCH).unwrap();
    e.handle_backlog(now, 0, queue(50, 0));
    let offered = discovers(&mut e, 100..105, now);
    assert!(
        offered.iter().all(Option::is_some),
        "half full: all answered"
    );
    events(&mut e);
    e.handle_backlog(now, 0, queue(51, 0));
    assert_eq!(discovers(&mut e, 105..115, now), vec![None; 10]);
    assert_eq!(
        overload_lines(&events(&mut e)),
        vec![
            "overloaded for 0.0 s: 1 DISCOVERs from new clients left unanswered while the receive queue held datagrams longer than 0.2 s or was more than half full (they will ask again; requests and the clients already known are answered)"
        ]
    );
    // Meanwhile: the known client's DISCOVER, a retransmission of a DISCOVER
    // already offered an address, and the REQUESTs of the offers made.
    e.handle_datagram(
        now,
        EPOCH,
        0,
        CLIENT,
        &request(MessageType::Discover, 1, 5, true),
    );
    assert_eq!(reply_of(&transmits(&mut e)[0]).yiaddr, known);
    assert_eq!(discovers(&mut e, 100..101, now), vec![offered[0]]);
    for (n, address) in (100..105).zip(&offered) {
        e.handle_datagram(now, EPOCH, 0, CLIENT, &forged_request(n, address.unwrap()));
    }
    assert_eq!(committed(&mut e).len(), 5);
    assert_eq!(transmits(&mut e).len(), 5, "every REQUEST is ACKed");
    // The queue emptied: new clients are answered again.
    e.handle_backlog(now, 0, queue(0, 0));
    assert!(discovers(&mut e, 200..201, now)[0].is_some());
    // A queue that makes datagrams wait too long is as crowded as a full one.
    let slow = |ms| Backlog {
        waited: Some(Duration::from_millis(ms)),
        ..queue(1, 0)
    };
    e.handle_backlog(now, 0, slow(200));
    assert!(discovers(&mut e, 201..202, now)[0].is_some());
    e.handle_backlog(now, 0, slow(201));
    assert!(discovers(&mut e, 202..203, now)[0].is_none());
    // A batch that emptied the queue ends the crowding without a reading.
    e.handle_queue_drained(0);
    assert!(discovers(&mut e, 210..211, now)[0].is_some());
    e.handle_backlog(now, 0, queue(51, 0));
    assert!(discovers(&mut e, 211..212, now)[0].is_none());
    e.handle_backlog(
        now,
        0,
        Backlog {
            waited: None,
            ..slow(0)
        },
    );
    assert!(discovers(&mut e, 203..204, now)[0].is_some());
}

#[test]
fn the_overload_line_is_said_once_a_second_at_most_with_the_kernels_drops() {
    let mut e = roomy();
    let start = Instant::now();
    let mut said = Vec::new();
    // 2.5 s of batches read from a crowded queue, 10 new clients in each, and
    // the kernel dropping 3 datagrams between batches.
    for tick in 0..250u32 {
        let now = start + Duration::from_millis(u64::from(tick) * 10);
        if e.poll_timeout().is_some_and(|t| t <= now) {
            e.handle_timeout(now);
        }
        e.handle_backlog(now, 0, queue(90, 3 * u64::from(tick)));
        let base = 1000 + tick * 100;
        discovers(&mut e, base..base + 10, now);
        said.extend(events(&mut e));
    }
    // The rest is told when its second is over.
    let end = start + Duration::from_millis(2500);
    let due = e.poll_timeout().unwrap();
    assert!(due <= end + Duration::from_secs(1), "{:?}", due - start);
    e.handle_timeout(due.max(end));
    said.extend(events(&mut e));
    let overload = overload_lines(&said);
    assert_eq!(overload.len(), 4, "{overload:#?}");
    assert!(
        overload[1].starts_with(
            "overloaded for 1.0 s: 999 DISCOVERs from new clients left unanswered while"
        ) && overload[1]
            .ends_with("; the kernel dropped 297 datagrams for want of room in the receive queue"),
        "{}",
        overload[1]
    );
    let count = |line: &String, after: &str| -> u64 {
        line.split(after)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map_or(0, |n| n.parse().unwrap())
    };
    let shed: u64 = overload.iter().map(|l| count(l, " s: ")).sum();
    let dropped: u64 = overload.iter().map(|l| count(l, "kernel dropped ")).sum();
    assert_eq!((shed, dropped), (2500, 3 * 249), "each loss is told once");
}

/// The configuration a reload reads: the test endpoint's network and pool, with
/// `bootp` lines added to `[bootp]` and `rest` after it (its own `[bootfile]`).
fn reloaded(bootp: &str, rest: &str) -> Config {
    let text = format!(
        "[bootp]\nlease_file = /nonexistent/leases\npool_start = 10.0.0.100\npool_count = 10\n{bootp}\n{rest}"
    );
    load_str(Path::new("t.ini"), &text, Path::new("/"))
        .unwrap()
        .config
}

#[test]
fn a_reload_keeps_bindings_and_new_requests_get_the_new_boot_file_and_reservations() {
    let mut e = endpoint("", "");
    let now = Instant::now();
    discover_and_request(&mut e, 1, now);
    committed(&mut e);
    let ack = transmits(&mut e);
    assert_eq!(reply_of(&ack[0]).message_type(), Some(MessageType::Ack));
    let bound = reply_of(&ack[0]).yiaddr;

    let later = now + Duration::from_secs(60);
    let config = reloaded(
        "",
        "[bootfile]\ndefault = lpxelinux.0\n00000 = lpxelinux.0\n[static_dhcp]\n52-54-00-00-00-02 = 10.0.0.50\n",
    );
    e.handle_reload(later, &config);
    let said = lines(&events(&mut e), Level::Info);
    assert!(
        said.iter()
            .any(|l| l.contains("1 bindings and 0 parked requests kept")),
        "{said:?}"
    );
    // The machine bound before the reload renews its address.
    e.handle_datagram(later, EPOCH + 60, 0, CLIENT, &dhcp_request(1, 3, bound));
    committed(&mut e);
    let renewed = transmits(&mut e);
    assert_eq!(reply_of(&renewed[0]).message_type(), Some(MessageType::Ack));
    assert_eq!(reply_of(&renewed[0]).yiaddr, bound);
    // A new machine gets its new reservation and the new boot file.
    e.handle_datagram(
        later,
        EPOCH + 60,
        0,
        CLIENT,
        &request(MessageType::Discover, 2, 4, true),
    );
    let offer = transmits(&mut e);
    assert_eq!(reply_of(&offer[0]).yiaddr, Ipv4Addr::new(10, 0, 0, 50));
    assert!(reply_of(&offer[0]).file.starts_with(b"lpxelinux.0"));
}

#[test]
fn a_reload_keeps_a_request_parked_on_its_authorisation() {
    let mut e = endpoint("access = http", HTTP);
    let now = Instant::now();
    e.handle_datagram(
        now,
        EPOCH,
        0,
        CLIENT,
        &request(MessageType::Discover, 1, 7, true),
    );
    let asked = queries(&events(&mut e));
    assert_eq!(e.parked_count(), 1);
    let config = reloaded(
        "access = http",
        &format!("{HTTP}[bootfile]\ndefault = lpxelinux.0\n"),
    );
    e.handle_reload(now + Duration::from_millis(100), &config);
    assert_eq!(
        e.parked_count(),
        1,
        "the parked request survives the reload"
    );
    assert!(transmits(&mut e).is_empty());
    // Its answer comes after the reload: it is offered the new boot file.
    e.handle_auth_answer(now + Duration::from_millis(200), asked[0].id, allowed());
    let sent = transmits(&mut e);
    assert_eq!(sent.len(), 1);
    assert_eq!(reply_of(&sent[0]).xid, 7);
    assert!(reply_of(&sent[0]).file.starts_with(b"lpxelinux.0"));
}

#[test]
fn a_reload_to_another_access_policy_decides_parked_requests_at_once() {
    let mut e = endpoint("access = http", HTTP);
    let now = Instant::now();
    for last in [1, 2] {
        e.handle_datagram(
            now,
            EPOCH,
            0,
            CLIENT,
            &request(MessageType::Discover, last, 7, true),
        );
    }
    events(&mut e);
    assert_eq!(e.parked_count(), 2);
    let config = reloaded(
        "access = mac",
        "[mac]\n52-54-00-00-00-01 = enable\n52-54-00-00-00-02 = disable\n[bootfile]\ndefault = pxelinux.0\n",
    );
    e.handle_reload(now + Duration::from_millis(100), &config);
    assert_eq!(e.parked_count(), 0);
    let sent = transmits(&mut e);
    assert_eq!(
        sent.len(),
        1,
        "the allowed machine is answered, the other refused"
    );
    assert_eq!(sent[0].mac, mac(1));
}

#[test]
fn a_refused_client_is_told_to_the_status_page_once_per_reason() {
    let mut e = endpoint("allow_simple_dhcp = off", "");
    let now = Instant::now();
    for xid in 1..4 {
        e.handle_datagram(
            now,
            EPOCH,
            0,
            CLIENT,
            &request(MessageType::Discover, 2, xid, false),
        );
    }
    let refused: Vec<_> = std::iter::from_fn(|| e.poll_refused()).collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, mac(2));
    assert!(refused[0].1.contains("allow_simple_dhcp"), "{refused:?}");
}

#[test]
fn requests_are_counted_by_type_refusals_by_reason_and_leases_per_network() {
    let mut e = endpoint("allow_simple_dhcp = off", "");
    let now = Instant::now();
    assert_eq!(
        e.lease_counts().collect::<Vec<_>>(),
        vec![("10.0.0.0/24".to_string(), 0, 10)]
    );
    bind(&mut e, 1, now, EPOCH).unwrap();
    // An operating system's DISCOVER from a machine that never PXE-booted here.
    e.handle_datagram(
        now,
        EPOCH,
        0,
        CLIENT,
        &request(MessageType::Discover, 2, 9, false),
    );
    e.handle_datagram(now, EPOCH, 0, CLIENT, &[1, 2, 3]);
    let counts = e.counts();
    let count = |labels: &[&str], values: &[u64], label: &str| {
        values[labels.iter().position(|l| *l == label).unwrap()]
    };
    use crate::metrics::{DHCP_REFUSALS, DHCP_TYPES};
    assert_eq!(count(&DHCP_TYPES, &counts.requests, "discover"), 2);
    assert_eq!(count(&DHCP_TYPES, &counts.requests, "request"), 1);
    assert_eq!(count(&DHCP_TYPES, &counts.requests, "other"), 1);
    assert_eq!(
        count(
            &DHCP_REFUSALS,
            &counts.refusals,
            "simple_client_not_allowed"
        ),
        1
    );
    assert_eq!(count(&DHCP_REFUSALS, &counts.refusals, "malformed"), 1);
    assert_eq!(counts.refusals.iter().sum::<u64>(), 2);
    assert_eq!(
        e.lease_counts().collect::<Vec<_>>(),
        vec![("10.0.0.0/24".to_string(), 1, 9)]
    );
    assert_eq!(e.lease_counts_bound().collect::<Vec<_>>(), vec![1]);
}
