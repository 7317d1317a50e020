//! Proxy endpoint tests, driven by a fake clock: who is answered on which port,
//! the silence on port-67 requests, notifications with the site's address,
//! access control and its parked requests, and bounded memory.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::bootp::wire::{MessageType, OP_BOOTREPLY, tag};
use crate::config::load_str;
use crate::types::Ipv4Network;

const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68);
/// The site's DHCP server.
const SITE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const UUID: [u8; 16] = [
    0x78, 0x56, 0x34, 0x12, 0xcd, 0xab, 0x00, 0xef, 0x11, 0x11, 0xab, 0xcd, 0xef, 0xab, 0xcd, 0xef,
];

fn server_ip() -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, 1)
}

/// An address the site's server gave.
fn given(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, last)
}

/// A proxy serving 10.0.0.1/24 with `bootp` lines added to `[bootp]` and `rest`
/// after it, logging everything; what it said at start-up is drained.
fn endpoint(bootp: &str, rest: &str) -> ProxyEndpoint {
    starting(bootp, rest).0
}

fn starting(bootp: &str, rest: &str) -> (ProxyEndpoint, Vec<Event>) {
    starting_with(bootp, "00007 = grubx64.efi", rest)
}

/// The same, with `uefi` the `[bootfile]` line for x64 UEFI.
fn starting_with(bootp: &str, uefi: &str, rest: &str) -> (ProxyEndpoint, Vec<Event>) {
    let text = format!(
        "[bootp]\nproxy = on\naddress = 10.0.0.1\nservername = bootd\ndomain = lab\n{bootp}\n\
         [bootfile]\ndefault = pxelinux.0\n00000 = pxelinux.0\n{uefi}\n00016 = bootx64.efi\n\
         ipxe = boot.ipxe\n{rest}"
    );
    let loaded = load_str(Path::new("t.ini"), &text, Path::new("/")).unwrap();
    let net = NetConfig {
        device: "eth0".into(),
        label: "eth0".into(),
        index: None,
        network: Ipv4Network::new(server_ip(), 24).unwrap(),
        mtu: None,
    };
    let mut endpoint = ProxyEndpoint::new(
        &loaded.config,
        &[net],
        // A configuration with an [httpd] section stands for bootd run with -H;
        // without one, files go out as TFTP names.
        loaded.config.httpd.as_ref().map(|httpd| HttpServer {
            address: httpd.address,
            port: httpd.port,
        }),
        LevelFilter::Debug,
    );
    let said = events(&mut endpoint);
    (endpoint, said)
}

fn mac(last: u8) -> MacAddr {
    MacAddr([0x52, 0x54, 0, 0, 0, last])
}

/// The firmware of a machine.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Firmware {
    Bios,
    Uefi,
    Http,
    Ipxe,
    /// An operating system: no PXE sign at all.
    Os,
}

/// A request of `kind` from `mac(last)`, as `firmware` sends it (with option 97).
fn request(firmware: Firmware, kind: MessageType, last: u8, xid: u32) -> Message {
    let mut message = Message {
        xid,
        ..Message::default()
    };
    message.chaddr[..6].copy_from_slice(&mac(last).0);
    let o = &mut message.options;
    o.set(tag::MESSAGE_TYPE, [kind.to_byte()]);
    let class: &[u8] = match firmware {
        Firmware::Bios => b"PXEClient:Arch:00000:UNDI:002001",
        Firmware::Uefi => b"PXEClient:Arch:00007:UNDI:003000",
        Firmware::Ipxe => b"PXEClient:Arch:00007:UNDI:003010",
        Firmware::Http => b"HTTPClient:Arch:00016:UNDI:003000",
        Firmware::Os => b"udhcp 1.35.0",
    };
    o.set(tag::VENDOR_CLASS, class.to_vec());
    if firmware != Firmware::Os {
        let mut id = vec![0];
        id.extend_from_slice(&UUID);
        o.set(tag::CLIENT_UUID, id);
    }
    if firmware == Firmware::Ipxe {
        o.set(tag::USER_CLASS, b"iPXE".to_vec());
    }
    message
}

fn discover(firmware: Firmware, last: u8) -> Vec<u8> {
    request(
        firmware,
        MessageType::Discover,
        last,
        0x1000 + u32::from(last),
    )
    .emit(576)
    .bytes
}

/// The DHCPREQUEST a client broadcasts to take the site's offer of `address`.
fn request_to_site(firmware: Firmware, last: u8, xid: u32, address: Ipv4Addr) -> Vec<u8> {
    let mut message = request(firmware, MessageType::Request, last, xid);
    message.options.set(tag::SERVER_ID, SITE.octets());
    message.options.set(tag::REQUESTED_IP, address.octets());
    message.emit(576).bytes
}

/// The DHCPREQUEST firmware sends to port 4011 once it holds `address`.
fn boot_server_request(firmware: Firmware, last: u8, xid: u32, address: Ipv4Addr) -> Vec<u8> {
    let mut message = request(firmware, MessageType::Request, last, xid);
    message.ciaddr = address;
    message.emit(576).bytes
}

fn at_4011(address: Ipv4Addr) -> SocketAddrV4 {
    SocketAddrV4::new(address, 4011)
}

fn events(endpoint: &mut ProxyEndpoint) -> Vec<Event> {
    std::iter::from_fn(|| endpoint.poll_event()).collect()
}

fn transmits(endpoint: &mut ProxyEndpoint) -> Vec<Transmit> {
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

/// The BOOT notifications among `events`.
fn boots(events: &[Event]) -> Vec<LeaseEvent> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Publish(bus::Event::Lease(lease)) => Some(lease.clone()),
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

fn boot_event(last: u8, ip: Ipv4Addr, file: &str) -> LeaseEvent {
    LeaseEvent {
        kind: EventKind::Boot,
        mac: mac(last),
        uuid: Some(Uuid::from_bytes(UUID)),
        ip,
        boot_file: Some(file.into()),
        server_ip: server_ip(),
    }
}

#[test]
fn it_announces_its_address_and_that_it_hands_out_none() {
    let (_, said) = starting("", "");
    assert_eq!(
        said[0],
        Event::Publish(bus::Event::ServerAddress(server_ip())),
        "TFTP listens where the offers send machines"
    );
    assert_eq!(
        lines(&said, Level::Info),
        vec![
            "serving proxyDHCP on eth0 (10.0.0.0/24) as 10.0.0.1: boot information on ports 67 and 4011, no address handed out (the site's DHCP server gives them)"
        ]
    );
}

#[test]
fn a_discover_is_answered_at_once_within_the_firmwares_collection_window() {
    let mut e = endpoint("", "");
    let t = Instant::now();
    e.handle_datagram(t, 0, Port::Dhcp, CLIENT, &discover(Firmware::Uefi, 1));
    // EDK2 picks among the offers 4 s after its DISCOVER, iPXE 2 s after: the
    // offer leaves with the call that handed the DISCOVER in, and no timer waits.
    let sent = transmits(&mut e);
    assert_eq!(sent.len(), 1);
    assert_eq!(e.poll_timeout(), None);
    let offer = &sent[0];
    assert_eq!(offer.port, Port::Dhcp);
    assert_eq!(
        offer.destination,
        SocketAddrV4::new(Ipv4Addr::BROADCAST, 68)
    );
    let reply = reply_of(offer);
    assert_eq!(reply.op, OP_BOOTREPLY);
    assert_eq!(reply.message_type(), Some(MessageType::Offer));
    assert_eq!(reply.yiaddr, Ipv4Addr::UNSPECIFIED);
    assert_eq!(reply.siaddr, server_ip());
    assert_eq!(reply.options.server_id(), Some(server_ip()));
    assert_eq!(reply.file, b"grubx64.efi");
    assert_eq!(
        offer.sent_line.as_deref(),
        Some(
            "52-54-00-00-00-01: proxy DHCPOFFER via 255.255.255.255:68, boot file grubx64.efi (PXE, ask port 4011 next)"
        )
    );
    assert!(boots(&events(&mut e)).is_empty(), "an offer is no boot yet");
}

#[test]
fn port_67_requests_are_never_answered() {
    let mut e = endpoint("", "");
    let t = Instant::now();
    e.handle_datagram(t, 0, Port::Dhcp, CLIENT, &discover(Firmware::Bios, 1));
    transmits(&mut e);
    events(&mut e);
    let mut to_us = request(Firmware::Bios, MessageType::Request, 1, 7);
    to_us.options.set(tag::SERVER_ID, server_ip().octets());
    to_us.options.set(tag::REQUESTED_IP, given(50).octets());
    let others = [
        MessageType::Inform,
        MessageType::Release,
        MessageType::Decline,
        MessageType::Offer,
        MessageType::Ack,
    ]
    .map(|kind| request(Firmware::Bios, kind, 1, 8).emit(576).bytes);
    let mut bootp = request(Firmware::Bios, MessageType::Discover, 1, 9);
    bootp.options.remove(tag::MESSAGE_TYPE);
    let requests = [
        request_to_site(Firmware::Bios, 1, 7, given(50)),
        to_us.emit(576).bytes,
        bootp.emit(576).bytes,
    ];
    for bytes in requests.iter().chain(&others) {
        e.handle_datagram(t, 0, Port::Dhcp, CLIENT, bytes);
        assert_eq!(transmits(&mut e), Vec::new());
    }
    let said = lines(&events(&mut e), Level::Debug);
    assert!(
        said.iter().any(|l| l.ends_with(
            "52-54-00-00-00-01: DHCPREQUEST not answered: bootd is a proxy, the site's DHCP server answers it"
        )),
        "{said:?}"
    );
}

#[test]
fn an_operating_systems_discover_is_left_to_the_site_with_a_debug_line() {
    let mut e = endpoint("", "");
    e.handle_datagram(
        Instant::now(),
        0,
        Port::Dhcp,
        CLIENT,
        &discover(Firmware::Os, 3),
    );
    assert_eq!(transmits(&mut e), Vec::new());
    let said = events(&mut e);
    assert_eq!(lines(&said, Level::Info), Vec::<String>::new());
    assert_eq!(
        lines(&said, Level::Debug),
        vec![
            "0.0.0.0:68: dropped: 52-54-00-00-00-03: DHCPDISCOVER from a client that is no PXE or HTTP boot firmware (no option 60 PXEClient or HTTPClient): left to the site's DHCP server"
        ]
    );
}

#[test]
fn a_bios_machine_is_notified_with_the_address_its_request_takes_from_the_site() {
    let mut e = endpoint("", "");
    let t = Instant::now();
    e.handle_datagram(t, 0, Port::Dhcp, CLIENT, &discover(Firmware::Bios, 1));
    let offer = reply_of(&transmits(&mut e)[0]);
    assert_eq!(offer.options.vendor_specific(), Some(&[6, 1, 8, 255][..]));
    events(&mut e);
    // The ROM takes the site's offer: bootd sees its broadcast, says nothing,
    // and the machine boots with that address.
    let take = request_to_site(Firmware::Bios, 1, 0x77, given(50));
    e.handle_datagram(t, 0, Port::Dhcp, CLIENT, &take);
    assert_eq!(transmits(&mut e), Vec::new());
    let said = events(&mut e);
    assert_eq!(boots(&said), vec![boot_event(1, given(50), "pxelinux.0")]);
    assert!(
        lines(&said, Level::Info).contains(
            &"52-54-00-00-00-01: takes 10.0.0.50 from the DHCP server 10.0.0.2 and boots pxelinux.0 as bootd offered"
                .to_string()
        ),
        "{said:?}"
    );
    // Its retransmission is the same boot.
    e.handle_datagram(t, 0, Port::Dhcp, CLIENT, &take);
    assert_eq!(boots(&events(&mut e)), Vec::new());
    // The operating system it booted takes its address too: that is no boot.
    let os = request_to_site(Firmware::Os, 1, 0x78, given(50));
    e.handle_datagram(t, 0, Port::Dhcp, CLIENT, &os);
    assert_eq!(boots(&events(&mut e)), Vec::new());
    // A machine bootd offered nothing is none of its business.
    e.handle_datagram(
        t,
        0,
        Port::Dhcp,
        CLIENT,
        &request_to_site(Firmware::Bios, 9, 1, given(59)),
    );
    assert_eq!(boots(&events(&mut e)), Vec::new());
}

#[test]
fn uefi_firmware_gets_its_file_on_port_4011_and_is_notified_with_its_address() {
    let mut e = endpoint("", "");
    let t = Instant::now();
    e.handle_datagram(t, 0, Port::Dhcp, CLIENT, &discover(Firmware::Uefi, 2));
    let offer = reply_of(&transmits(&mut e)[0]);
    assert_eq!(offer.options.vendor_specific(), None, "no option 43");
    // Its request to the site's server is no boot yet: the boot server step is.
    e.handle_datagram(
        t,
        0,
        Port::Dhcp,
        CLIENT,
        &request_to_site(Firmware::Uefi, 2, 5, given(51)),
    );
    assert_eq!(transmits(&mut e), Vec::new());
    assert_eq!(boots(&events(&mut e)), Vec::new());
    let ask = boot_server_request(Firmware::Uefi, 2, 0x4011, given(51));
    e.handle_datagram(t, 0, Port::BootServer, at_4011(given(51)), &ask);
    let sent = transmits(&mut e);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].port, Port::BootServer);
    assert_eq!(sent[0].destination, at_4011(given(51)));
    let ack = reply_of(&sent[0]);
    assert_eq!(ack.message_type(), Some(MessageType::Ack));
    assert_eq!((ack.yiaddr, ack.ciaddr), (Ipv4Addr::UNSPECIFIED, given(51)));
    assert_eq!(ack.file, b"grubx64.efi");
    assert_eq!(
        boots(&events(&mut e)),
        vec![boot_event(2, given(51), "grubx64.efi")]
    );
    // A retransmission (EDK2 tries four times) is answered, not notified again.
    e.handle_datagram(t, 0, Port::BootServer, at_4011(given(51)), &ask);
    assert_eq!(transmits(&mut e).len(), 1);
    assert_eq!(boots(&events(&mut e)), Vec::new());
}

#[test]
fn a_boot_server_request_from_a_machine_never_offered_anything_is_answered_all_the_same() {
    // bootd restarted after its offer, or the site's server names it as boot
    // server: the request says all the answer needs.
    let mut e = endpoint("", "");
    let t = Instant::now();
    let ask = boot_server_request(Firmware::Uefi, 4, 0xabc, given(52));
    e.handle_datagram(t, 0, Port::BootServer, at_4011(given(52)), &ask);
    let sent = transmits(&mut e);
    assert_eq!(sent.len(), 1);
    assert_eq!(reply_of(&sent[0]).file, b"grubx64.efi");
    assert_eq!(
        boots(&events(&mut e)),
        vec![boot_event(4, given(52), "grubx64.efi")]
    );
    // Without ciaddr, the source is the address.
    let mut bare = Message::parse(&ask).unwrap();
    bare.ciaddr = Ipv4Addr::UNSPECIFIED;
    bare.xid = 0xabd;
    e.handle_datagram(
        t,
        0,
        Port::BootServer,
        at_4011(given(53)),
        &bare.emit(576).bytes,
    );
    assert_eq!(transmits(&mut e)[0].destination, at_4011(given(53)));
    assert_eq!(boots(&events(&mut e))[0].ip, given(53));
}

#[test]
fn port_4011_answers_only_pxe_requests_from_hosts_of_the_network() {
    let mut e = endpoint("", "");
    let t = Instant::now();
    let ask = |firmware, xid| boot_server_request(firmware, 5, xid, Ipv4Addr::UNSPECIFIED);
    let cases = [
        // No address to answer at, or one off the network, or the network's own.
        (
            ask(Firmware::Uefi, 1),
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 4011),
        ),
        (
            ask(Firmware::Uefi, 2),
            SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 5), 4011),
        ),
        (
            ask(Firmware::Uefi, 3),
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 255), 4011),
        ),
        (ask(Firmware::Uefi, 4), SocketAddrV4::new(server_ip(), 4011)),
        (ask(Firmware::Uefi, 5), SocketAddrV4::new(given(50), 0)),
        // Not PXE, or not a request.
        (ask(Firmware::Os, 6), at_4011(given(50))),
        (discover(Firmware::Uefi, 5), at_4011(given(50))),
        (ask(Firmware::Http, 7), at_4011(given(50))),
    ];
    for (bytes, source) in cases {
        e.handle_datagram(t, 0, Port::BootServer, source, &bytes);
        assert_eq!(transmits(&mut e), Vec::new(), "from {source}");
    }
    let said = lines(&events(&mut e), Level::Debug);
    assert!(
        said.contains(
            &"192.168.1.5:4011: dropped: 52-54-00-00-00-05: port-4011 request from 192.168.1.5:4011, which is no host of this network: not answered"
                .to_string()
        ),
        "{said:?}"
    );
    assert!(
        said.iter()
            .any(|l| l.ends_with("DHCPDISCOVER on port 4011, where only DHCPREQUESTs are answered")),
        "{said:?}"
    );
}

#[test]
fn ipxe_chainloads_its_script_and_never_the_loader_again() {
    let mut e = starting_with("", "00007 = ipxe.efi", "").0;
    let t = Instant::now();
    // OVMF's PXE is handed the iPXE loader by [bootfile] 00007…
    e.handle_datagram(t, 0, Port::Dhcp, CLIENT, &discover(Firmware::Uefi, 6));
    assert_eq!(reply_of(&transmits(&mut e)[0]).file, b"ipxe.efi");
    // …and the iPXE it started asks again, as iPXE: it gets `[bootfile] ipxe`,
    // in an offer it boots from without a port-4011 step.
    e.handle_datagram(t, 0, Port::Dhcp, CLIENT, &discover(Firmware::Ipxe, 6));
    let offer = reply_of(&transmits(&mut e)[0]);
    assert_eq!(offer.file, b"boot.ipxe");
    assert_eq!(offer.options.vendor_specific(), Some(&[6, 1, 8, 255][..]));
    events(&mut e);
    e.handle_datagram(
        t,
        0,
        Port::Dhcp,
        CLIENT,
        &request_to_site(Firmware::Ipxe, 6, 9, given(54)),
    );
    assert_eq!(
        boots(&events(&mut e)),
        vec![boot_event(6, given(54), "boot.ipxe")]
    );
}

#[test]
fn an_http_boot_client_gets_the_url_on_the_configured_http_port() {
    let mut e = endpoint("", "[httpd]\nport = 8080\n");
    let t = Instant::now();
    e.handle_datagram(t, 0, Port::Dhcp, CLIENT, &discover(Firmware::Http, 7));
    let offer = reply_of(&transmits(&mut e)[0]);
    assert_eq!(offer.options.vendor_class(), Some(&b"HTTPClient"[..]));
    let url = b"http://10.0.0.1:8080/bootx64.efi";
    assert_eq!(offer.file, url);
    let mut named = url.to_vec();
    named.push(0);
    assert_eq!(offer.options.get(tag::BOOT_FILE_NAME), Some(&named[..]));
    // It takes its address, and its URL, with no port-4011 step.
    events(&mut e);
    e.handle_datagram(
        t,
        0,
        Port::Dhcp,
        CLIENT,
        &request_to_site(Firmware::Http, 7, 3, given(55)),
    );
    assert_eq!(
        boots(&events(&mut e)),
        vec![boot_event(7, given(55), "http://10.0.0.1:8080/bootx64.efi")]
    );
}

#[test]
fn a_mac_list_refuses_on_both_ports_saying_so_once() {
    let mut e = endpoint("access = mac", "[mac]\n52-54-00-00-00-01 = enable\n");
    let t = Instant::now();
    for _ in 0..3 {
        e.handle_datagram(t, 0, Port::Dhcp, CLIENT, &discover(Firmware::Uefi, 66));
        let ask = boot_server_request(Firmware::Uefi, 66, 1, given(66));
        e.handle_datagram(t, 0, Port::BootServer, at_4011(given(66)), &ask);
    }
    assert_eq!(transmits(&mut e), Vec::new());
    let said = events(&mut e);
    assert_eq!(
        lines(&said, Level::Info),
        vec!["52-54-00-00-00-42: refused: no [mac] entry matches it"]
    );
    assert_eq!(boots(&said), Vec::new());
    e.handle_datagram(t, 0, Port::Dhcp, CLIENT, &discover(Firmware::Uefi, 1));
    assert_eq!(transmits(&mut e).len(), 1);
}

#[test]
fn a_uuid_list_knows_the_uuid_of_the_discover_when_port_4011_omits_it() {
    let uuid = Uuid::from_bytes(UUID);
    let rest = format!("[uuid]\n{uuid} = enable\n");
    let mut e = endpoint("access = uuid", &rest);
    let t = Instant::now();
    e.handle_datagram(t, 0, Port::Dhcp, CLIENT, &discover(Firmware::Uefi, 8));
    assert_eq!(transmits(&mut e).len(), 1);
    let mut ask = request(Firmware::Uefi, MessageType::Request, 8, 0x88);
    ask.options.remove(tag::CLIENT_UUID);
    ask.ciaddr = given(58);
    e.handle_datagram(
        t,
        0,
        Port::BootServer,
        at_4011(given(58)),
        &ask.emit(576).bytes,
    );
    assert_eq!(transmits(&mut e).len(), 1);
    // A machine never seen, without option 97, has no UUID to be allowed by.
    let mut stranger = ask.clone();
    stranger.chaddr[5] = 9;
    e.handle_datagram(
        t,
        0,
        Port::BootServer,
        at_4011(given(59)),
        &stranger.emit(576).bytes,
    );
    assert_eq!(transmits(&mut e), Vec::new());
}

const HTTP: &str =
    "[http]\nlocation = http://10.0.0.3:8080\npxe = /boot\ndhcp = /linux\ntimeout = 2\n";

#[test]
fn an_http_authorisation_parks_the_discover_and_its_answer_releases_the_offer() {
    let mut e = endpoint("access = http", HTTP);
    let t = Instant::now();
    e.handle_datagram(t, 0, Port::Dhcp, CLIENT, &discover(Firmware::Bios, 1));
    assert_eq!(transmits(&mut e), Vec::new());
    let asked = queries(&events(&mut e));
    assert_eq!(asked.len(), 1);
    assert_eq!(
        asked[0].url,
        format!(
            "http://10.0.0.3:8080/boot?mac=52-54-00-00-00-01&uuid={}",
            Uuid::from_bytes(UUID)
        )
    );
    assert_eq!(e.poll_timeout(), Some(t + Duration::from_secs(2)));
    // The answer comes 300 ms later: the offer leaves then, well within the
    // window, and names the file the server gave.
    let answer = Answer::Status {
        code: 200,
        body: "File: special.0\n".into(),
    };
    e.handle_auth_answer(t + Duration::from_millis(300), asked[0].id, answer);
    let sent = transmits(&mut e);
    assert_eq!(sent.len(), 1);
    assert_eq!(reply_of(&sent[0]).file, b"special.0");
    assert_eq!(e.state_sizes().parked, 0);
    // The decision holds for the boot server step too: no second question.
    let ask = boot_server_request(Firmware::Bios, 1, 2, given(50));
    e.handle_datagram(
        t + Duration::from_secs(1),
        0,
        Port::BootServer,
        at_4011(given(50)),
        &ask,
    );
    assert_eq!(reply_of(&transmits(&mut e)[0]).file, b"special.0");
    assert_eq!(queries(&events(&mut e)), Vec::new());
}

#[test]
fn an_unanswered_authorisation_drops_the_request_with_a_line() {
    let mut e = endpoint("access = http", HTTP);
    let t = Instant::now();
    e.handle_datagram(t, 0, Port::Dhcp, CLIENT, &discover(Firmware::Bios, 1));
    events(&mut e);
    let later = t + Duration::from_secs(2);
    e.handle_timeout(later);
    assert_eq!(transmits(&mut e), Vec::new());
    assert_eq!(
        lines(&events(&mut e), Level::Info),
        vec!["52-54-00-00-00-01: refused: the HTTP authorisation server did not answer within 2 s"]
    );
    assert_eq!(e.state_sizes().parked, 0);
    assert_eq!(e.poll_timeout(), None);
}

#[test]
fn what_it_remembers_is_bounded_by_remembered_clients() {
    let mut e = endpoint("remembered_clients = 100", "");
    let t = Instant::now();
    for n in 0..1000u32 {
        let mut message = request(Firmware::Uefi, MessageType::Discover, 0, n);
        message.chaddr[3..6].copy_from_slice(&n.to_be_bytes()[1..]);
        e.handle_datagram(t, 0, Port::Dhcp, CLIENT, &message.emit(576).bytes);
        transmits(&mut e);
        events(&mut e);
    }
    let sizes = e.state_sizes();
    assert!(sizes.clients <= 100, "{sizes:?}");
    assert!(sizes.said_once <= 100, "{sizes:?}");
}

proptest! {
    /// Whatever arrives on either port: no panic, and no answer ever gives an
    /// address or acknowledges anything on port 67.
    #[test]
    fn no_input_makes_it_hand_out_an_address(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        on_boot_server in any::<bool>(),
        mutate_discover in any::<bool>(),
    ) {
        let mut e = endpoint("", "");
        let mut bytes = bytes;
        if mutate_discover {
            // Mostly a valid DISCOVER with random bytes over its header.
            let mut valid = discover(Firmware::Bios, 1);
            for (to, from) in valid.iter_mut().zip(&bytes) {
                if *from % 3 == 0 {
                    *to = *from;
                }
            }
            bytes = valid;
        }
        let port = if on_boot_server { Port::BootServer } else { Port::Dhcp };
        e.handle_datagram(Instant::now(), 0, port, at_4011(given(50)), &bytes);
        for transmit in transmits(&mut e) {
            let reply = reply_of(&transmit);
            prop_assert_eq!(reply.yiaddr, Ipv4Addr::UNSPECIFIED);
            prop_assert_eq!(transmit.port, port);
            if port == Port::Dhcp {
                prop_assert_eq!(reply.message_type(), Some(MessageType::Offer));
            }
        }
    }
}

/// The configuration a reload reads: the test proxy's, with `bootp` lines added
/// to `[bootp]`, `default` the BIOS boot file, and `rest` after it.
fn reloaded(bootp: &str, default: &str, rest: &str) -> crate::config::Config {
    let text = format!(
        "[bootp]\nproxy = on\naddress = 10.0.0.1\nservername = bootd\ndomain = lab\n{bootp}\n\
         [bootfile]\ndefault = {default}\n00000 = {default}\n{rest}"
    );
    load_str(Path::new("t.ini"), &text, Path::new("/"))
        .unwrap()
        .config
}

#[test]
fn a_reload_keeps_a_parked_discover_and_new_requests_get_the_new_files_and_list() {
    let mut e = endpoint("access = http", HTTP);
    let t = Instant::now();
    e.handle_datagram(t, 0, Port::Dhcp, CLIENT, &discover(Firmware::Bios, 1));
    let asked = queries(&events(&mut e));
    e.handle_reload(
        t + Duration::from_millis(100),
        &reloaded("access = http", "lpxelinux.0", HTTP),
    );
    assert_eq!(e.state_sizes().parked, 1, "the parked discover survives");
    let allowed = Answer::Status {
        code: 200,
        body: String::new(),
    };
    e.handle_auth_answer(t + Duration::from_millis(300), asked[0].id, allowed);
    let sent = transmits(&mut e);
    assert_eq!(reply_of(&sent[0]).file, b"lpxelinux.0");
    // Another policy: a machine off the new list is refused at once.
    e.handle_reload(
        t + Duration::from_secs(1),
        &reloaded(
            "access = mac",
            "lpxelinux.0",
            "[mac]\n52-54-00-00-00-01 = enable\n",
        ),
    );
    events(&mut e);
    e.handle_datagram(t, 0, Port::Dhcp, CLIENT, &discover(Firmware::Bios, 2));
    assert_eq!(transmits(&mut e), Vec::new());
    assert_eq!(
        lines(&events(&mut e), Level::Info),
        vec!["52-54-00-00-00-02: refused: no [mac] entry matches it"]
    );
}

#[test]
fn each_port_counts_what_it_was_asked_answered_and_left_for_the_metrics() {
    let mut e = endpoint("", "");
    let t = Instant::now();
    e.handle_datagram(t, 0, Port::Dhcp, CLIENT, &discover(Firmware::Uefi, 2));
    // Left to the site: its DHCPREQUEST, an operating system's DISCOVER.
    let to_site = request_to_site(Firmware::Uefi, 2, 5, given(51));
    e.handle_datagram(t, 0, Port::Dhcp, CLIENT, &to_site);
    e.handle_datagram(t, 0, Port::Dhcp, CLIENT, &discover(Firmware::Os, 3));
    let ask = boot_server_request(Firmware::Uefi, 2, 0x4011, given(51));
    e.handle_datagram(t, 0, Port::BootServer, at_4011(given(51)), &ask);
    // A DISCOVER on the boot server's port, and bytes that are no BOOTP message.
    let on_4011 = discover(Firmware::Uefi, 4);
    e.handle_datagram(t, 0, Port::BootServer, at_4011(given(52)), &on_4011);
    e.handle_datagram(t, 0, Port::BootServer, at_4011(given(52)), b"junk");
    assert_eq!(transmits(&mut e).len(), 2);

    let [dhcp, boot_server] = e.counts();
    let count = |counts: &[u64], labels: &[&str], label: &str| {
        labels
            .iter()
            .position(|l| *l == label)
            .and_then(|i| counts.get(i).copied())
            .unwrap_or(0)
    };
    let types = &crate::metrics::DHCP_TYPES;
    let reasons = &crate::metrics::PROXY_REFUSALS;
    assert_eq!(count(&dhcp.requests, types, "discover"), 2);
    assert_eq!(count(&dhcp.requests, types, "request"), 1);
    assert_eq!(dhcp.replies, 1);
    assert_eq!(count(&dhcp.refusals, reasons, "for_the_site_server"), 1);
    assert_eq!(count(&dhcp.refusals, reasons, "not_a_boot_client"), 1);
    assert_eq!(dhcp.refusals.iter().sum::<u64>(), 2);
    assert_eq!(count(&boot_server.requests, types, "request"), 1);
    assert_eq!(count(&boot_server.requests, types, "discover"), 1);
    assert_eq!(count(&boot_server.requests, types, "other"), 1);
    assert_eq!(boot_server.replies, 1);
    assert_eq!(
        count(&boot_server.refusals, reasons, "not_a_boot_server_request"),
        1
    );
    assert_eq!(count(&boot_server.refusals, reasons, "malformed"), 1);
}
