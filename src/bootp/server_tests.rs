//! Tests of the answer to one request: byte-exact exchanges, pybootd's behaviour
//! where bootd keeps it and where it deliberately differs from pybootd 1.8 (the
//! test names say so), and property tests.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::bootp::leases::{LeaseTable, RecordState};
use crate::bootp::wire::tests::hex;
use crate::config::{BootFiles, BootpConfig, DnsSetting, MacRule, StaticLease};
use crate::types::{Ipv4Network, MacAddr, Uuid};

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 25, 1);
const EPOCH: u64 = 1_718_000_000;

fn bootp_config() -> BootpConfig {
    BootpConfig {
        proxy: false,
        access: None,
        address: Ipv4Addr::UNSPECIFIED,
        port: 67,
        allow_simple_dhcp: false,
        servername: "unknown".into(),
        domain: "localdomain".into(),
        dns: DnsSetting::List(vec![Ipv4Addr::new(8, 8, 8, 8), Ipv4Addr::new(1, 1, 1, 1)]),
        gateway: None,
        send_gateway: true,
        netmask: None,
        lease_time: 86400,
        notify: Vec::new(),
        pools: vec![Ipv4Addr::new(192, 168, 25, 100)],
        pool_count: 10,
        lease_file: PathBuf::from("/var/lib/bootd/leases"),
        remembered_clients: 10_000,
    }
}

fn boot_files() -> BootFiles {
    BootFiles {
        default: Some("pxelinux.0".into()),
        by_arch: vec![(0, "pxelinux.0".into()), (7, "shimx64.efi".into())],
        ipxe: None,
    }
}

/// A server on 192.168.25.1/24 with the state of one test. The configuration
/// may change between requests; the network keeps its leases and phases.
struct Harness {
    bootp: BootpConfig,
    files: BootFiles,
    /// bootd's HTTP service, when the test runs it.
    http: Option<HttpServer>,
    buggy: Vec<MacRule>,
    statics: Vec<StaticLease>,
    dns: Vec<Ipv4Addr>,
    interface: Ipv4Network,
    network: ServedNetwork,
    now: Instant,
}

impl Harness {
    fn new() -> Self {
        Self::with(bootp_config())
    }

    fn with(bootp: BootpConfig) -> Self {
        Self::on(Ipv4Network::new(SERVER, 24).unwrap(), bootp)
    }

    /// A server whose interface holds `interface`.
    fn on(interface: Ipv4Network, bootp: BootpConfig) -> Self {
        let dns = match &bootp.dns {
            DnsSetting::List(list) => list.clone(),
            _ => Vec::new(),
        };
        let link = Link::new(interface, bootp.netmask, dns.clone());
        let mut h = Harness {
            bootp,
            files: boot_files(),
            http: None,
            buggy: Vec::new(),
            statics: Vec::new(),
            dns,
            interface,
            network: ServedNetwork::new(link, LeaseTable::new(None, 0, &[]), 10_000),
            now: Instant::now(),
        };
        h.reset_leases();
        h
    }

    fn simple(mut self) -> Self {
        self.bootp.allow_simple_dhcp = true;
        self
    }

    fn reset_leases(&mut self) {
        let link = Link::new(self.interface, self.bootp.netmask, self.dns.clone());
        self.network = ServedNetwork::new(
            link,
            LeaseTable::new(
                self.bootp.pools.first().copied(),
                self.bootp.pool_count,
                &self.statics,
            ),
            self.bootp.remembered_clients,
        );
    }

    fn send_with(
        &mut self,
        bytes: &[u8],
        source: SocketAddrV4,
        access: &mut dyn AccessPolicy,
    ) -> Outcome {
        self.network.link = Link::new(self.interface, self.bootp.netmask, self.dns.clone());
        let config = ServerConfig {
            bootp: &self.bootp,
            boot_files: &self.files,
            buggy_clients: &self.buggy,
            http: self.http,
        };
        let datagram = Datagram {
            bytes,
            source,
            now: self.now,
            epoch: EPOCH,
        };
        handle(&config, &mut self.network, access, &datagram)
    }

    fn send_from(&mut self, bytes: &[u8], source: SocketAddrV4) -> Outcome {
        self.send_with(bytes, source, &mut AllowAll)
    }

    fn send(&mut self, bytes: &[u8]) -> Outcome {
        self.send_from(bytes, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68))
    }

    /// The reply, parsed back, with its destination; panics when there is none.
    fn reply(&mut self, bytes: &[u8]) -> (Message, SocketAddrV4, Outcome) {
        let outcome = self.send(bytes);
        let reply = outcome
            .reply()
            .unwrap_or_else(|| panic!("expected a reply, got {:?}", outcome.action))
            .clone();
        let parsed = Message::parse(&reply.bytes).unwrap();
        assert_eq!(
            parsed, reply.message,
            "emitted bytes re-parse to the message"
        );
        (parsed, reply.destination, outcome)
    }
}

/// A request: `fixed` is the hex of op..chaddr (44 bytes), then zero sname and
/// file, the magic cookie, and the options in hex.
fn packet(fixed: &str, options: &str) -> Vec<u8> {
    let mut b = hex(fixed);
    assert_eq!(b.len(), 44, "op..chaddr is 44 bytes");
    b.resize(wire::HEADER_LEN, 0);
    b.extend_from_slice(&wire::MAGIC_COOKIE);
    b.extend_from_slice(&hex(options));
    b
}

/// An expected reply: op..chaddr, then sname and file text NUL-padded, cookie,
/// options, then pads up to 300 bytes.
fn expected(fixed: &str, sname: &str, file: &str, options: &str) -> Vec<u8> {
    let mut b = hex(fixed);
    assert_eq!(b.len(), 44, "op..chaddr is 44 bytes");
    let mut sname_field = sname.as_bytes().to_vec();
    sname_field.resize(64, 0);
    let mut file_field = file.as_bytes().to_vec();
    file_field.resize(128, 0);
    b.extend_from_slice(&sname_field);
    b.extend_from_slice(&file_field);
    b.extend_from_slice(&wire::MAGIC_COOKIE);
    b.extend_from_slice(&hex(options));
    if b.len() < 300 {
        b.resize(300, 0);
    }
    b
}

fn assert_bytes(actual: &[u8], expected: &[u8]) {
    if actual != expected {
        let at = actual
            .iter()
            .zip(expected)
            .position(|(a, e)| a != e)
            .unwrap_or(actual.len().min(expected.len()));
        panic!(
            "bytes differ at offset {at} (lengths {} vs {}):\n actual   {:02x?}\n expected {:02x?}",
            actual.len(),
            expected.len(),
            &actual[at..actual.len().min(at + 24)],
            &expected[at..expected.len().min(at + 24)]
        );
    }
}

fn reply_bytes(outcome: &Outcome) -> &[u8] {
    &outcome.reply().expect("a reply").bytes
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 25, last)
}

const BROADCAST_68: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::BROADCAST, 68);

// ---------------------------------------------------------------------------
// Captured-style packets

/// BIOS PXE ROM DISCOVER (Intel-style option set).
fn bios_pxe_discover() -> Vec<u8> {
    packet(
        "01 01 06 00            # op BOOTREQUEST, htype Ethernet, hlen 6, hops 0
         a1 b2 c3 d4            # xid
         00 04 80 00            # secs 4, flags: broadcast
         00000000 00000000 00000000 00000000  # ciaddr yiaddr siaddr giaddr
         525400aabbcc 00000000000000000000    # chaddr",
        "35 01 01               # 53 DHCPDISCOVER
         39 02 05c0             # 57 max message size 1472
         5d 02 0000             # 93 arch 0, x86 BIOS
         5e 03 010201           # 94 UNDI 2.1
         61 11 00 00112233445566778899aabbccddeeff  # 97 type 0 + GUID
         37 16 01 03 06 0c 0f 1c 2b 36 3a 3b 3c 42 43 61 80 81 82 83 84 85 86 87  # 55
         3c 20 505845436c69656e743a417263683a30303030303a554e44493a303032303031
                                # 60 PXEClient:Arch:00000:UNDI:002001
         ff                     # END",
    )
}

#[test]
fn bios_pxe_discover_gets_byte_exact_offer() {
    let mut h = Harness::new();
    let outcome = h.send(&bios_pxe_discover());
    let want = expected(
        "02 01 06 00 a1b2c3d4 0000 8000  # BOOTREPLY, xid, secs 0, flags copied
         00000000                # ciaddr
         c0a81964                # yiaddr 192.168.25.100
         c0a81901                # siaddr: this server (TFTP)
         00000000                # giaddr
         525400aabbcc 00000000000000000000",
        "unknown.localdomain",
        "pxelinux.0",
        "35 01 02                         # 53 DHCPOFFER
         36 04 c0a81901                   # 54 server identifier
         33 04 00015180                   # 51 lease 86400 s
         3a 04 0000a8c0                   # 58 T1 = 43200 s
         3b 04 00012750                   # 59 T2 = 75600 s
         01 04 ffffff00                   # 1 mask
         03 04 c0a81901                   # 3 router = server
         06 08 08080808 01010101          # 6 both DNS servers in one TLV
         1c 04 c0a819ff                   # 28 broadcast (asked)
         0f 0b 6c6f63616c646f6d61696e     # 15 localdomain (asked)
         42 0c 3139322e3136382e32352e31   # 66 TFTP server 192.168.25.1 (asked)
         43 0a 7078656c696e75782e30       # 67 pxelinux.0 (asked)
         3c 09 505845436c69656e74         # 60 PXEClient
         61 11 00 00112233445566778899aabbccddeeff  # 97 echoed
         2b 04 06 01 08 ff                # 43: discovery control 8, END
         ff",
    );
    assert_bytes(reply_bytes(&outcome), &want);
    assert_eq!(outcome.reply().unwrap().destination, BROADCAST_68);
    assert_eq!(outcome.event, None, "no event before the ACK");
    assert_eq!(outcome.persist, None, "an offer is only tentative");
    assert!(outcome.notices.is_empty());
}

#[test]
fn bios_pxe_request_gets_ack_boot_event_and_lease_record() {
    let mut h = Harness::new();
    h.send(&bios_pxe_discover());
    let request = packet(
        "01 01 06 00 a1b2c3d5 0006 8000 00000000 00000000 00000000 00000000
         525400aabbcc 00000000000000000000",
        "35 01 03                 # 53 DHCPREQUEST
         36 04 c0a81901           # 54 our server id
         32 04 c0a81964           # 50 the offered address
         5d 02 0000
         61 11 00 00112233445566778899aabbccddeeff
         37 04 01 03 43 3c        # 55
         3c 20 505845436c69656e743a417263683a30303030303a554e44493a303032303031
         ff",
    );
    let (reply, destination, outcome) = h.reply(&request);
    assert_eq!(reply.message_type(), Some(MessageType::Ack));
    assert_eq!(reply.yiaddr, ip(100));
    assert_eq!(reply.file, b"pxelinux.0");
    assert_eq!(destination, BROADCAST_68);
    let event = outcome.event.unwrap();
    assert_eq!(event.kind, EventKind::Boot);
    assert_eq!(event.uuid, Some(Uuid(0x00112233445566778899aabbccddeeff)));
    assert_eq!(event.ip, ip(100));
    assert_eq!(event.boot_file.as_deref(), Some("pxelinux.0"));
    assert_eq!(event.server_ip, SERVER);
    let record = outcome.persist.unwrap();
    assert_eq!(record.state, RecordState::Bound);
    assert!(record.pxe);
    assert_eq!(record.epoch, EPOCH);
}

/// UEFI x64 ROM (EDK2-style): arch 7 picks `[bootfile] 00007`.
#[test]
fn uefi_x64_discover_gets_byte_exact_offer() {
    let mut h = Harness::new();
    let discover = packet(
        "01 01 06 00 00c0ffee 0000 0000  # flags: no broadcast bit
         00000000 00000000 00000000 00000000
         525400111111 00000000000000000000",
        "35 01 01                # DHCPDISCOVER
         39 02 05c0              # 57 1472
         37 0b 01 03 06 0c 0f 1c 2b 3c 42 43 61  # 55
         61 11 00 8c41ee7d6e2a4e1fb1c0a0b0c0d0e0f0  # 97
         5e 03 010300            # 94 UNDI 3.0
         5d 02 0007              # 93 arch 7: x64 UEFI
         3c 20 505845436c69656e743a417263683a30303030373a554e44493a303033303030
                                 # 60 PXEClient:Arch:00007:UNDI:003000
         ff",
    );
    let outcome = h.send(&discover);
    let want = expected(
        "02 01 06 00 00c0ffee 0000 0000
         00000000 c0a81964 c0a81901 00000000
         525400111111 00000000000000000000",
        "unknown.localdomain",
        "shimx64.efi",
        "35 01 02  36 04 c0a81901  33 04 00015180
         01 04 ffffff00  03 04 c0a81901  06 08 08080808 01010101
         1c 04 c0a819ff
         0f 0b 6c6f63616c646f6d61696e
         42 0c 3139322e3136382e32352e31
         43 0b 7368696d7836342e656669     # 67 shimx64.efi
         3c 09 505845436c69656e74
         61 11 00 8c41ee7d6e2a4e1fb1c0a0b0c0d0e0f0
         2b 04 06 01 08 ff
         ff",
    );
    assert_bytes(reply_bytes(&outcome), &want);
    // Broadcast bit clear, no ciaddr: still the limited broadcast (no ARP from userspace).
    assert_eq!(outcome.reply().unwrap().destination, BROADCAST_68);
}

fn ipxe_discover() -> Vec<u8> {
    packet(
        "01 01 06 00 12345678 0000 0000 00000000 00000000 00000000 00000000
         525400222222 00000000000000000000",
        "35 01 01
         39 02 05dc                     # 57 1500
         5d 02 0000                     # 93 BIOS
         5e 03 010201                   # 94
         3c 20 505845436c69656e743a417263683a30303030303a554e44493a303032303031
         4d 04 69505845                 # 77 user class `iPXE` (bare, as iPXE sends it)
         37 17 01 03 06 07 0c 0f 11 1a 2b 3c 42 43 77 79 7d 80 81 82 83 84 85 86 87  # 55
         af 06 1501 01 eb03 01           # 175 iPXE encapsulated options
         3d 07 01 525400222222          # 61 client id
         61 11 00 0102030405060708090a0b0c0d0e0f10
         ff",
    )
}

#[test]
fn ipxe_discover_gets_script_when_configured() {
    let mut h = Harness::new();
    h.files.ipxe = Some("boot.ipxe".into());
    let outcome = h.send(&ipxe_discover());
    let want = expected(
        "02 01 06 00 12345678 0000 0000 00000000 c0a81964 c0a81901 00000000
         525400222222 00000000000000000000",
        "unknown.localdomain",
        "boot.ipxe",
        "35 01 02  36 04 c0a81901  33 04 00015180
         01 04 ffffff00  03 04 c0a81901  06 08 08080808 01010101
         0f 0b 6c6f63616c646f6d61696e
         42 0c 3139322e3136382e32352e31
         43 09 626f6f742e69707865         # 67 boot.ipxe
         3c 09 505845436c69656e74
         61 11 00 0102030405060708090a0b0c0d0e0f10
         2b 04 06 01 08 ff
         3d 07 01 525400222222            # 61 echoed (RFC 6842)
         ff",
    );
    assert_bytes(reply_bytes(&outcome), &want);
}

#[test]
fn ipxe_without_ipxe_entry_gets_its_arch_file() {
    let mut h = Harness::new();
    let (reply, _, _) = h.reply(&ipxe_discover());
    assert_eq!(reply.file, b"pxelinux.0");
}

/// bootd's HTTP service on port 80 of the served address, as `-H` runs it.
const HTTP_80: HttpServer = HttpServer {
    address: None,
    port: 80,
};

#[test]
fn ipxe_gets_its_script_as_a_url_on_the_http_service() {
    let mut h = Harness::new();
    h.files.ipxe = Some("boot.ipxe".into());
    h.http = Some(HttpServer {
        address: None,
        port: 8080,
    });
    let outcome = h.send(&ipxe_discover());
    let want = expected(
        "02 01 06 00 12345678 0000 0000 00000000 c0a81964 c0a81901 00000000
         525400222222 00000000000000000000",
        "unknown.localdomain",
        "http://192.168.25.1:8080/boot.ipxe",
        "35 01 02  36 04 c0a81901  33 04 00015180
         01 04 ffffff00  03 04 c0a81901  06 08 08080808 01010101
         0f 0b 6c6f63616c646f6d61696e
         42 0c 3139322e3136382e32352e31
         43 22 687474703a2f2f3139322e3136382e32352e313a383038302f626f6f742e69707865
                                          # 67 http://192.168.25.1:8080/boot.ipxe
         3c 09 505845436c69656e74
         61 11 00 0102030405060708090a0b0c0d0e0f10
         2b 04 06 01 08 ff
         3d 07 01 525400222222
         ff",
    );
    assert_bytes(reply_bytes(&outcome), &want);
    // A URL in the entry goes as written, HTTP service or not.
    for http in [None, Some(HTTP_80)] {
        let mut h = Harness::new();
        h.files.ipxe = Some("http://10.9.9.9/efi/bootx64.efi".into());
        h.http = http;
        let (reply, _, _) = h.reply(&ipxe_discover());
        assert_eq!(reply.file, b"http://10.9.9.9/efi/bootx64.efi");
    }
}

#[test]
fn ipxe_handed_an_ipxe_loader_by_its_architecture_gets_no_file_and_a_warning() {
    let mut h = Harness::new();
    h.files.by_arch = vec![(0, "undionly.kpxe".into()), (7, "ipxe.efi".into())];
    h.http = Some(HTTP_80);
    let (reply, _, outcome) = h.reply(&ipxe_discover());
    // The address, with no file: iPXE ends its boot attempt instead of loading
    // itself again.
    assert_eq!(reply.yiaddr, ip(100));
    assert_eq!(reply.file, b"");
    assert_eq!(reply.options.get(tag::BOOT_FILE_NAME), None);
    assert_eq!(
        outcome.notices,
        vec![Notice::IpxeLoaderRefused {
            mac: MacAddr([0x52, 0x54, 0, 0x22, 0x22, 0x22]),
            file: "undionly.kpxe".into(),
        }]
    );
    assert_eq!(
        outcome.notices[0].to_string(),
        "52-54-00-22-22-22: runs iPXE already, and [bootfile] would hand it undionly.kpxe, an iPXE loader: sent no boot file, since iPXE would load itself again forever; set [bootfile] ipxe to what iPXE should boot (a script, with -H served over HTTP)"
    );
    // The PXE ROM before it gets the loader.
    let (reply, _, _) = h.reply(&bios_pxe_discover());
    assert_eq!(reply.file, b"undionly.kpxe");
}

/// EDK2's UEFI HTTP boot DHCPDISCOVER on x64 (HttpBootDhcp4.c).
fn http_boot_discover() -> Vec<u8> {
    packet(
        "01 01 06 00 0a0b0c0d 0004 0000 00000000 00000000 00000000 00000000
         525400333333 00000000000000000000",
        "35 01 01                         # DHCPDISCOVER
         39 02 05c0                       # 57 1472
         37 1b 01 02 03 04 05 06 0c 0d 0f 11 12 16 17 1c 28 29 2a 2b 32 33 36 3a 3b 3c 42 43 61
                                          # 55: 27 entries
         61 11 00 8c41ee7d6e2a4e1fb1c0a0b0c0d0e0f0  # 97
         5e 03 010300                     # 94 UNDI 3.0
         5d 02 0010                       # 93 arch 0x10: x64 UEFI HTTP
         3c 21 48545450436c69656e743a417263683a30303031363a554e44493a303033303030
                                          # 60 HTTPClient:Arch:00016:UNDI:003000
         ff",
    )
}

fn http_boot_request(xid: &str) -> Vec<u8> {
    packet(
        &format!(
            "01 01 06 00 {xid} 0008 0000 00000000 00000000 00000000 00000000
             525400333333 00000000000000000000"
        ),
        "35 01 03                         # DHCPREQUEST
         36 04 c0a81901                   # 54 us
         32 04 c0a81964                   # 50 the offered address
         39 02 05c0
         37 1b 01 02 03 04 05 06 0c 0d 0f 11 12 16 17 1c 28 29 2a 2b 32 33 36 3a 3b 3c 42 43 61
         61 11 00 8c41ee7d6e2a4e1fb1c0a0b0c0d0e0f0
         5e 03 010300
         5d 02 0010
         3c 21 48545450436c69656e743a417263683a30303031363a554e44493a303033303030
         ff",
    )
}

/// A harness whose `[bootfile]` gives x64 UEFI HTTP boot clients `ipxe.efi`.
fn http_boot_harness(http: Option<HttpServer>) -> Harness {
    let mut h = Harness::new();
    h.files.by_arch.push((0x10, "ipxe.efi".into()));
    h.http = http;
    h
}

#[test]
fn uefi_http_boot_discover_gets_byte_exact_offer_with_a_url() {
    let mut h = http_boot_harness(Some(HTTP_80));
    let outcome = h.send(&http_boot_discover());
    let want = expected(
        "02 01 06 00 0a0b0c0d 0000 0000
         00000000 c0a81964 c0a81901 00000000
         525400333333 00000000000000000000",
        "unknown.localdomain",
        "http://192.168.25.1/ipxe.efi",
        "35 01 02                         # 53 DHCPOFFER
         36 04 c0a81901                   # 54 server identifier: EDK2 needs it
         33 04 00015180  3a 04 0000a8c0  3b 04 00012750
         01 04 ffffff00  03 04 c0a81901  06 08 08080808 01010101
         1c 04 c0a819ff
         0f 0b 6c6f63616c646f6d61696e
         42 0c 3139322e3136382e32352e31
         43 1c 687474703a2f2f3139322e3136382e32352e312f697078652e656669
                                          # 67 http://192.168.25.1/ipxe.efi: an address
         3c 0a 48545450436c69656e74       # 60 HTTPClient, and no option 43
         61 11 00 8c41ee7d6e2a4e1fb1c0a0b0c0d0e0f0  # 97 echoed
         ff",
    );
    assert_bytes(reply_bytes(&outcome), &want);
    assert_eq!(outcome.reply().unwrap().destination, BROADCAST_68);
    assert!(outcome.notices.is_empty());
    assert_eq!(
        outcome.reply().unwrap().describe(),
        "52-54-00-33-33-33: DHCPOFFER 192.168.25.100 via 255.255.255.255:68, boot file http://192.168.25.1/ipxe.efi (HTTP boot)"
    );
}

#[test]
fn uefi_http_boot_request_gets_byte_exact_ack_and_a_boot_event() {
    let mut h = http_boot_harness(Some(HTTP_80));
    h.send(&http_boot_discover());
    let outcome = h.send(&http_boot_request("0a0b0c0e"));
    let want = expected(
        "02 01 06 00 0a0b0c0e 0000 0000
         00000000 c0a81964 c0a81901 00000000
         525400333333 00000000000000000000",
        "unknown.localdomain",
        "http://192.168.25.1/ipxe.efi",
        "35 01 05                         # 53 DHCPACK
         36 04 c0a81901
         33 04 00015180  3a 04 0000a8c0  3b 04 00012750
         01 04 ffffff00  03 04 c0a81901  06 08 08080808 01010101
         1c 04 c0a819ff
         0f 0b 6c6f63616c646f6d61696e
         42 0c 3139322e3136382e32352e31
         43 1c 687474703a2f2f3139322e3136382e32352e312f697078652e656669
         3c 0a 48545450436c69656e74
         61 11 00 8c41ee7d6e2a4e1fb1c0a0b0c0d0e0f0
         ff",
    );
    assert_bytes(reply_bytes(&outcome), &want);
    let event = outcome.event.as_ref().unwrap();
    assert_eq!(event.kind, EventKind::Boot, "HTTP boot firmware boots");
    assert_eq!(
        event.boot_file.as_deref(),
        Some("http://192.168.25.1/ipxe.efi")
    );
    assert!(outcome.persist.as_ref().unwrap().pxe);
}

#[test]
fn uefi_http_boot_files_follow_the_architecture_and_the_http_address() {
    // x64 without its own entry: `default`, with the usual warning, as a URL.
    let mut h = Harness::new();
    h.http = Some(HttpServer {
        address: Some(Ipv4Addr::new(10, 9, 9, 9)),
        port: 80,
    });
    let (reply, _, outcome) = h.reply(&http_boot_discover());
    assert_eq!(reply.file, b"http://10.9.9.9/pxelinux.0");
    assert!(matches!(
        outcome.notices[..],
        [Notice::DefaultBootFile { arch: 0x10, .. }]
    ));
    // An entry written as a URL goes as it is, even without bootd's HTTP service.
    let mut h = Harness::new();
    h.files
        .by_arch
        .push((0x10, "http://10.9.9.9/efi/bootx64.efi".into()));
    let (reply, _, _) = h.reply(&http_boot_discover());
    assert_eq!(reply.file, b"http://10.9.9.9/efi/bootx64.efi");
    assert_eq!(
        reply.options.get(tag::VENDOR_CLASS),
        Some(&b"HTTPClient"[..])
    );
}

#[test]
fn uefi_http_boot_without_the_http_service_is_not_answered() {
    let mut h = http_boot_harness(None);
    let outcome = h.send(&http_boot_discover());
    let mac = MacAddr([0x52, 0x54, 0, 0x33, 0x33, 0x33]);
    assert_eq!(
        outcome.action,
        Action::Drop(DropReason::HttpBootWithoutHttp {
            mac,
            file: "ipxe.efi".into()
        })
    );
    assert_eq!(
        DropReason::HttpBootWithoutHttp {
            mac,
            file: "ipxe.efi".into()
        }
        .to_string(),
        "52-54-00-33-33-33: UEFI HTTP boot client, but its boot file ipxe.efi is no URL and bootd's HTTP service does not run: not answered (run bootd with -H, or give [bootfile] an http:// URL)"
    );
    assert_eq!(h.network.leases.offer_count(), 0, "no address held for it");
}

#[test]
fn the_os_after_a_uefi_http_boot_is_served_without_allow_simple_dhcp() {
    let mut h = http_boot_harness(Some(HTTP_80));
    // HTTP boot firmware that sends no option 97 is firmware all the same.
    let mut discover = Message::parse(&http_boot_discover()).unwrap();
    discover.options.remove(tag::CLIENT_UUID);
    let (offer, _, _) = h.reply(&discover.emit(576).bytes);
    assert_eq!(offer.file, b"http://192.168.25.1/ipxe.efi");
    let mut request = Message::parse(&http_boot_request("0a0b0c0e")).unwrap();
    request.options.remove(tag::CLIENT_UUID);
    let (ack, _, _) = h.reply(&request.emit(576).bytes);
    assert_eq!(ack.message_type(), Some(MessageType::Ack));
    // The kernel it loaded asks as a plain DHCP client: the same address.
    let mut os = Message::parse(&http_boot_request("0a0b0c0f")).unwrap();
    os.options.remove(tag::VENDOR_CLASS);
    os.options.remove(tag::CLIENT_ARCH);
    os.options.remove(tag::CLIENT_UUID);
    let (os_ack, _, outcome) = h.reply(&os.emit(576).bytes);
    assert_eq!(os_ack.yiaddr, ip(100));
    assert_eq!(outcome.event.unwrap().kind, EventKind::Lease);
}

#[test]
fn a_boot_file_too_long_for_the_file_field_goes_in_option_67_alone() {
    let mut h = http_boot_harness(Some(HTTP_80));
    let long = format!("{}/ipxe.efi", "d".repeat(120));
    h.files.by_arch = vec![(0x10, long.clone())];
    let (reply, _, _) = h.reply(&http_boot_discover());
    let url = format!("http://192.168.25.1/{long}");
    assert_eq!(reply.file, b"", "a URL cut short would name another file");
    assert_eq!(reply.options.get(tag::BOOT_FILE_NAME), Some(url.as_bytes()));
    // A PXE client that did not ask for option 67 gets it all the same.
    let mut h = Harness::new();
    h.files.by_arch = vec![(0, long.clone())];
    let mut discover = Message::parse(&bios_pxe_discover()).unwrap();
    discover
        .options
        .set(tag::PARAMETER_REQUEST_LIST, vec![1, 3]);
    let (reply, _, _) = h.reply(&discover.emit(576).bytes);
    assert_eq!(reply.file, b"");
    assert_eq!(
        reply.options.get(tag::BOOT_FILE_NAME),
        Some(long.as_bytes())
    );
}

// ---------------------------------------------------------------------------
// An operating system's DORA

fn os_discover() -> Vec<u8> {
    packet(
        "01 01 06 00 0badcafe 0000 0000 00000000 00000000 00000000 00000000
         525400aabbcc 00000000000000000000",
        "35 01 01                         # DHCPDISCOVER
         3d 07 01 525400aabbcc            # 61 client id
         37 0d 01 1c 02 03 0f 06 77 0c 2c 2f 1a 79 2a  # 55 (dhclient's list)
         ff",
    )
}

fn os_request() -> Vec<u8> {
    packet(
        "01 01 06 00 0badcaff 0000 0000 00000000 00000000 00000000 00000000
         525400aabbcc 00000000000000000000",
        "35 01 03                         # DHCPREQUEST
         36 04 c0a81901                   # 54 us
         32 04 c0a81964                   # 50 192.168.25.100
         3d 07 01 525400aabbcc
         0c 04 686f7374                   # 12 `host`
         37 0f 01 1c 02 03 0f 06 77 0c 2c 2f 1a 79 2a 3a 3b  # 55 + T1/T2
         ff",
    )
}

#[test]
fn os_discover_then_request_byte_exact() {
    let mut h = Harness::new().simple();
    let offer = h.send(&os_discover());
    let want_offer = expected(
        "02 01 06 00 0badcafe 0000 0000 00000000 c0a81964 c0a81901 00000000
         525400aabbcc 00000000000000000000",
        "unknown.localdomain",
        "pxelinux.0",
        "35 01 02  36 04 c0a81901  33 04 00015180
         01 04 ffffff00  03 04 c0a81901  06 08 08080808 01010101
         1c 04 c0a819ff                   # 28 asked
         0f 0b 6c6f63616c646f6d61696e     # 15 asked
         3d 07 01 525400aabbcc            # 61 echoed
         ff",
    );
    assert_bytes(reply_bytes(&offer), &want_offer);
    assert_eq!(offer.event, None);

    let ack = h.send(&os_request());
    let want_ack = expected(
        "02 01 06 00 0badcaff 0000 0000 00000000 c0a81964 c0a81901 00000000
         525400aabbcc 00000000000000000000",
        "unknown.localdomain",
        "pxelinux.0",
        "35 01 05  36 04 c0a81901  33 04 00015180
         3a 04 0000a8c0  3b 04 00012750   # T1, T2 (asked)
         01 04 ffffff00  03 04 c0a81901  06 08 08080808 01010101
         1c 04 c0a819ff
         0f 0b 6c6f63616c646f6d61696e
         3d 07 01 525400aabbcc
         ff",
    );
    assert_bytes(reply_bytes(&ack), &want_ack);
    let event = ack.event.unwrap();
    assert_eq!(event.kind, EventKind::Lease);
    assert_eq!(event.uuid, None);
    assert_eq!(ack.persist.unwrap().ip, ip(100));
}

#[test]
fn os_of_a_pxe_booted_machine_inherits_its_uuid() {
    let mut h = Harness::new();
    h.send(&bios_pxe_discover());
    h.send(&os_discover());
    let ack = h.send(&os_request());
    let event = ack.event.unwrap();
    assert_eq!(event.kind, EventKind::Lease);
    assert_eq!(event.uuid, Some(Uuid(0x00112233445566778899aabbccddeeff)));
}

#[test]
fn inform_is_acked_without_address_bootd_answers_unlike_pybootd() {
    let mut h = Harness::new().simple();
    let inform = packet(
        "01 01 06 00 00000042 0000 0000
         c0a81932               # ciaddr 192.168.25.50, configured by hand
         00000000 00000000 00000000
         525400333333 00000000000000000000",
        "35 01 08  37 04 01 03 06 0f  ff   # DHCPINFORM asking 1 3 6 15",
    );
    let outcome = h.send(&inform);
    let want = expected(
        "02 01 06 00 00000042 0000 0000
         c0a81932 00000000 c0a81901 00000000   # ciaddr kept, yiaddr 0
         525400333333 00000000000000000000",
        "unknown.localdomain",
        "pxelinux.0",
        "35 01 05  36 04 c0a81901           # ACK, no 51/58/59
         01 04 ffffff00  03 04 c0a81901  06 08 08080808 01010101
         0f 0b 6c6f63616c646f6d61696e
         ff",
    );
    assert_bytes(reply_bytes(&outcome), &want);
    assert_eq!(
        outcome.reply().unwrap().destination,
        SocketAddrV4::new(ip(50), 68),
        "unicast to ciaddr"
    );
    assert_eq!(outcome.event, None);
    assert_eq!(outcome.persist, None);
}

/// Found by flooding the daemon: a request claiming an address of another network
/// (no relay) must not make bootd unicast to that network.
#[test]
fn unrelayed_request_with_a_foreign_ciaddr_is_not_answered() {
    let mut h = Harness::new().simple();
    for options in [
        "35 01 08 ff   # INFORM",
        "35 01 03 ff   # REQUEST (renewing)",
        "ff   # plain BOOTP",
    ] {
        let request = packet(
            "01 01 06 00 00000043 0000 0000
             6e000000               # ciaddr 110.0.0.0, not 192.168.25.0/24
             00000000 00000000 00000000
             525400444444 00000000000000000000",
            options,
        );
        let outcome = h.send(&request);
        assert!(
            matches!(
                outcome.action,
                Action::Drop(DropReason::ForeignClientAddress { ciaddr, .. }) if ciaddr == Ipv4Addr::new(110, 0, 0, 0)
            ),
            "{options}: {:?}",
            outcome.action
        );
        assert_eq!(outcome.persist, None);
    }
}

/// Found by flooding the daemon: a forged relay address must not receive a reply,
/// and a relay on a network bootd has no pool for gets nothing (not an address of
/// the wrong network).
#[test]
fn request_relayed_from_a_network_without_a_pool_is_not_answered() {
    let mut h = Harness::new().simple();
    for giaddr in ["000000d4   # 0.0.0.212", "0a010001   # 10.1.0.1"] {
        let request = packet(
            &format!(
                "01 01 06 01 00000044 0000 0000
                 00000000 00000000 00000000
                 {giaddr}
                 525400555555 00000000000000000000"
            ),
            "35 01 01 ff   # DISCOVER",
        );
        let outcome = h.send(&request);
        assert!(
            matches!(
                outcome.action,
                Action::Drop(DropReason::ForeignRelay { .. })
            ),
            "{giaddr}: {:?}",
            outcome.action
        );
    }
}

fn dora(h: &mut Harness) {
    h.send(&os_discover());
    assert!(h.send(&os_request()).reply().is_some());
}

#[test]
fn release_frees_the_address_silently_with_event() {
    let mut h = Harness::new().simple();
    dora(&mut h);
    let release = packet(
        "01 01 06 00 00000077 0000 0000
         c0a81964 00000000 00000000 00000000   # ciaddr: the address released
         525400aabbcc 00000000000000000000",
        "35 01 07  36 04 c0a81901  3d 07 01 525400aabbcc  ff",
    );
    let outcome = h.send(&release);
    assert_eq!(outcome.action, Action::Silent);
    let event = outcome.event.unwrap();
    assert_eq!(event.kind, EventKind::Release);
    assert_eq!(event.ip, ip(100));
    assert_eq!(outcome.persist.unwrap().state, RecordState::Released);
    // A second RELEASE: nothing held any more.
    assert!(matches!(
        h.send(&release).action,
        Action::Drop(DropReason::NotHolder { .. })
    ));
    // Sticky: the MAC gets the same address again.
    let (offer, _, _) = h.reply(&os_discover());
    assert_eq!(offer.yiaddr, ip(100));
}

#[test]
fn decline_quarantines_and_next_discover_gets_another_address() {
    let mut h = Harness::new().simple();
    dora(&mut h);
    let decline = packet(
        "01 01 06 00 00000078 0000 0000 00000000 00000000 00000000 00000000
         525400aabbcc 00000000000000000000",
        "35 01 04  36 04 c0a81901  32 04 c0a81964  ff   # DECLINE of .100",
    );
    let outcome = h.send(&decline);
    assert_eq!(outcome.action, Action::Silent);
    assert_eq!(
        outcome.notices,
        vec![Notice::Declined {
            mac: MacAddr([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]),
            ip: ip(100)
        }]
    );
    assert_eq!(outcome.persist.unwrap().state, RecordState::Declined);
    assert!(h.network.leases.is_quarantined(ip(100), h.now));
    let (offer, _, _) = h.reply(&os_discover());
    assert_eq!(offer.yiaddr, ip(101));
}

#[test]
fn nak_for_an_address_that_is_not_the_clients_byte_exact() {
    let mut h = Harness::new().simple();
    dora(&mut h);
    let request = packet(
        "01 01 06 00 00000079 0000 0000 00000000 00000000 00000000 00000000
         525400aabbcc 00000000000000000000",
        "35 01 03  32 04 c0a81969  3d 07 01 525400aabbcc  ff   # asks .105, holds .100",
    );
    let outcome = h.send(&request);
    let message = "asked for 192.168.25.105 but its address is 192.168.25.100";
    let want = expected(
        "02 01 06 00 00000079 0000 0000 00000000 00000000 00000000 00000000
         525400aabbcc 00000000000000000000",
        "",
        "",
        &format!(
            "35 01 06  36 04 c0a81901
             38 {:02x} {}      # 56 message
             3d 07 01 525400aabbcc
             ff",
            message.len(),
            message
                .bytes()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
    );
    assert_bytes(reply_bytes(&outcome), &want);
    assert_eq!(outcome.reply().unwrap().destination, BROADCAST_68);
    assert!(matches!(outcome.notices[..], [Notice::Nak { .. }]));
    assert_eq!(outcome.event, None);
}

#[test]
fn nak_cases() {
    let mut h = Harness::new().simple();
    dora(&mut h);
    // INIT-REBOOT of an unknown MAC with another MAC's address.
    let steal = packet(
        "01 01 06 00 00000080 0000 0000 00000000 00000000 00000000 00000000
         525400dddddd 00000000000000000000",
        "35 01 03  32 04 c0a81964  ff",
    );
    let (reply, destination, _) = h.reply(&steal);
    assert_eq!(reply.message_type(), Some(MessageType::Nak));
    assert_eq!(destination, BROADCAST_68);
    // A client that moved in from another network.
    let moved = packet(
        "01 01 06 00 00000081 0000 0000 00000000 00000000 00000000 00000000
         525400dddddd 00000000000000000000",
        "35 01 03  32 04 0a000005  ff   # 10.0.0.5",
    );
    assert_eq!(h.reply(&moved).0.message_type(), Some(MessageType::Nak));
    // Renewing (ciaddr) an address it does not hold: NAK, broadcast even though ciaddr is set.
    let renew = packet(
        "01 01 06 00 00000082 0000 0000 c0a81964 00000000 00000000 00000000
         525400dddddd 00000000000000000000",
        "35 01 03 ff",
    );
    let (reply, destination, _) = h.reply(&renew);
    assert_eq!(reply.message_type(), Some(MessageType::Nak));
    assert_eq!(destination, BROADCAST_68);
    // Relayed NAK: to the relay, broadcast bit set for it.
    let relayed = packet(
        "01 01 06 01 00000083 0000 0000 00000000 00000000 00000000 c0a81902
         525400dddddd 00000000000000000000",
        "35 01 03  32 04 c0a81964  ff",
    );
    let (reply, destination, _) = h.reply(&relayed);
    assert_eq!(reply.message_type(), Some(MessageType::Nak));
    assert_eq!(destination, SocketAddrV4::new(ip(2), 67));
    assert_eq!(reply.flags & FLAG_BROADCAST, FLAG_BROADCAST);
    assert_eq!(reply.giaddr, ip(2));
}

#[test]
fn request_for_another_server_is_ignored_and_frees_the_offer() {
    let mut h = Harness::new().simple();
    h.bootp.pool_count = 1;
    h.reset_leases();
    h.send(&os_discover());
    let elsewhere = packet(
        "01 01 06 00 0badcaff 0000 0000 00000000 00000000 00000000 00000000
         525400aabbcc 00000000000000000000",
        "35 01 03  36 04 c0a819fe  32 04 0a000064  ff   # server id .254",
    );
    assert_eq!(
        h.send(&elsewhere).action,
        Action::Drop(DropReason::ForAnotherServer {
            mac: MacAddr([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]),
            server_id: ip(254)
        })
    );
    // The single pool address is free for someone else at once.
    let other = packet(
        "01 01 06 00 1 0000 0000 00000000 00000000 00000000 00000000
         525400eeeeee 00000000000000000000"
            .replace(" 1 ", " 00000001 ")
            .as_str(),
        "35 01 01 ff",
    );
    assert_eq!(h.reply(&other).0.yiaddr, ip(100));
}

#[test]
fn relayed_discover_goes_to_the_relay_with_option_82_last() {
    let mut h = Harness::new();
    let discover = packet(
        "01 01 06 01 00000090 0000 0000 00000000 00000000 00000000
         c0a81902               # giaddr 192.168.25.2, a relay on the served network
         525400444444 00000000000000000000",
        "35 01 01
         3c 09 505845436c69656e74          # PXEClient
         52 0a 01 04 65746830 02 02 abcd   # 82: circuit-id eth0, remote-id
         ff",
    );
    let (reply, destination, outcome) = h.reply(&discover);
    assert_eq!(destination, SocketAddrV4::new(ip(2), 67));
    assert_eq!(reply.giaddr, ip(2));
    assert_eq!(reply.hops, 0);
    let tags: Vec<u8> = reply.options.iter().map(|(t, _)| t).collect();
    assert_eq!(tags.last(), Some(&82));
    assert_eq!(
        reply.options.relay_agent_info(),
        Some(&hex("01 04 65746830 02 02 abcd")[..])
    );
    // Byte level: 82 right before END.
    let bytes = reply_bytes(&outcome);
    let end = bytes.iter().rposition(|b| *b == 0xff).unwrap();
    assert_eq!(
        &bytes[end - 12..=end],
        &hex("52 0a 01 04 65746830 02 02 abcd ff")[..]
    );
}

#[test]
fn overloaded_discover_is_read_from_file_field() {
    let mut h = Harness::new();
    let mut b = packet(
        "01 01 06 00 00000091 0000 8000 00000000 00000000 00000000 00000000
         525400555555 00000000000000000000",
        "35 01 01  34 01 01  ff   # 52 overload: file carries options",
    );
    // file field: option 60 PXEClient:Arch:00007, END.
    let in_file = hex("3c 14 505845436c69656e743a417263683a3030303037 ff");
    b[108..108 + in_file.len()].copy_from_slice(&in_file);
    let (reply, _, _) = h.reply(&b);
    assert_eq!(
        reply.file, b"shimx64.efi",
        "arch from option 60 found via overload"
    );
    assert!(reply.options.contains(tag::VENDOR_SPECIFIC), "a PXE client");
}

/// A plain BOOTP request as pybootd's own tests send it: header, cookie, END.
const SIMPLE_PY_BOOTP: &str = "
    010106002233445a0000800000000000000000000000000000000000000a86a22f3e
    00000000000000000000000000000000000000000000000000000000000000000000
    00000000000000000000000000000000000000000000000000000000000000000000
    00000000000000000000000000000000000000000000000000000000000000000000
    00000000000000000000000000000000000000000000000000000000000000000000
    00000000000000000000000000000000000000000000000000000000000000000000
    00000000000000000000000000000000000000000000000000000000000000006382
    5363ff00000000000000000000000000000000000000000000000000000000000000
    00000000000000000000000000000000000000000000000000000000";

#[test]
fn plain_bootp_gets_bootp_reply_byte_exact() {
    let mut h = Harness::new().simple();
    let request = hex(SIMPLE_PY_BOOTP);
    assert_eq!(request.len(), 300);
    let outcome = h.send(&request);
    let want = expected(
        "02 01 06 00 2233445a 0000 8000 00000000 c0a81964 c0a81901 00000000
         000a86a22f3e 00000000000000000000",
        "unknown.localdomain",
        "pxelinux.0",
        "01 04 ffffff00  03 04 c0a81901  06 08 08080808 01010101  ff  # no 53/54/51",
    );
    assert_bytes(reply_bytes(&outcome), &want);
    assert_eq!(outcome.reply().unwrap().destination, BROADCAST_68);
    // BOOTP has no REQUEST: the reply binds.
    assert_eq!(outcome.persist.unwrap().ip, ip(100));
    assert_eq!(outcome.event.unwrap().kind, EventKind::Lease);
}

/// A REQUEST from the InterNiche TCP/IP stack, an embedded client: 548 bytes,
/// options 53 50 1 3 51 55 54 81, nine pads, 52 (overload: file), END; the file
/// field carries option 60.
const INTERNICHE_REQUEST: &str = "
    010106002233445a0000800000000000000000000000000000000000000a86a22f3e
    00000000000000000000000000000000000000000000000000000000000000000000
    00000000000000000000000000000000000000000000000000000000000000000000
    0000000000003c24496e7465724e6963686520506f727461626c65205443502f4950
    2c2076302e3042657461000000000000000000000000000000000000000000000000
    00000000000000000000000000000000000000000000000000000000000000000000
    00000000000000000000000000000000000000000000000000000000000000ff6382
    53633501033204c0a801190104ffffff000304c0a8013a3304000151803704010306
    0f3604c0a8013a5106696e69636865000000000000000000340101ff000000000000
    00000000000000000000000000000000000000000000000000000000000000000000
    00000000000000000000000000000000000000000000000000000000000000000000
    00000000000000000000000000000000000000000000000000000000000000000000
    00000000000000000000000000000000000000000000000000000000000000000000
    00000000000000000000000000000000000000000000000000000000000000000000
    00000000000000000000000000000000000000000000000000000000000000000000
    00000000000000000000000000000000000000000000000000000000000000000000
    00000000";

#[test]
fn interniche_request_parses() {
    let bytes = hex(INTERNICHE_REQUEST);
    assert_eq!(bytes.len(), 548);
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.message_type(), Some(MessageType::Request));
    assert_eq!(
        m.options.requested_ip(),
        Some(Ipv4Addr::new(192, 168, 1, 25))
    );
    assert_eq!(m.options.server_id(), Some(Ipv4Addr::new(192, 168, 1, 58)));
    assert_eq!(m.options.parameter_request_list(), &[1, 3, 6, 15]);
    assert_eq!(
        m.options.vendor_class(),
        Some(&b"InterNiche Portable TCP/IP, v0.0Beta"[..])
    );
    assert!(m.file.is_empty());
}

/// The InterNiche REQUEST gets its ACK (from the server it names).
#[test]
fn interniche_request_gets_ack() {
    let mut bootp = bootp_config();
    bootp.pools = vec![Ipv4Addr::new(192, 168, 1, 20)];
    bootp.allow_simple_dhcp = true;
    let interface = Ipv4Network::new(Ipv4Addr::new(192, 168, 1, 58), 24).unwrap();
    let mut h = Harness::on(interface, bootp);
    let outcome = h.send(&hex(INTERNICHE_REQUEST));
    let want = expected(
        "02 01 06 00 2233445a 0000 8000 00000000 c0a80119 c0a8013a 00000000
         000a86a22f3e 00000000000000000000",
        "unknown.localdomain",
        "pxelinux.0",
        "35 01 05  36 04 c0a8013a  33 04 00015180
         01 04 ffffff00  03 04 c0a8013a  06 08 08080808 01010101
         0f 0b 6c6f63616c646f6d61696e
         ff",
    );
    assert_bytes(reply_bytes(&outcome), &want);
    assert_eq!(outcome.reply().unwrap().destination, BROADCAST_68);
}

// ---------------------------------------------------------------------------
// pybootd's behaviour, kept or deliberately changed

#[test]
fn op_other_than_request_is_dropped() {
    let mut h = Harness::new();
    let mut b = bios_pxe_discover();
    b[0] = 2;
    assert_eq!(
        h.send(&b).action,
        Action::Drop(DropReason::NotARequest { op: 2 })
    );
}

#[test]
fn discover_without_end_is_answered_unlike_pybootd() {
    let mut h = Harness::new();
    let mut b = bios_pxe_discover();
    assert_eq!(b.pop(), Some(0xff));
    assert!(h.send(&b).reply().is_some());
}

#[test]
fn more_than_255_pads_are_accepted_unlike_pybootd() {
    let mut h = Harness::new();
    let mut b = packet(
        "01 01 06 00 00000001 0000 0000 00000000 00000000 00000000 00000000
         525400aabbcc 00000000000000000000",
        "",
    );
    b.extend_from_slice(&[0; 300]);
    b.extend_from_slice(&hex("35 01 01  3c 09 505845436c69656e74  ff"));
    assert!(h.send(&b).reply().is_some());
}

#[test]
fn unknown_options_are_skipped() {
    let mut h = Harness::new();
    let mut b = bios_pxe_discover();
    b.pop();
    b.extend_from_slice(&hex(
        "af 02 0101  c8 03 010203  fe 00  ff   # 175, 200, 254 (empty)",
    ));
    let (reply, _, _) = h.reply(&b);
    assert_eq!(reply.message_type(), Some(MessageType::Offer));
}

#[test]
fn simple_discover_ignored_when_simple_dhcp_off() {
    let mut h = Harness::new();
    assert_eq!(
        h.send(&os_discover()).action,
        Action::Drop(DropReason::SimpleClientNotAllowed {
            mac: MacAddr([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc])
        })
    );
}

#[test]
fn simple_discover_offered_when_simple_dhcp_on() {
    let mut h = Harness::new().simple();
    assert_eq!(
        h.reply(&os_discover()).0.message_type(),
        Some(MessageType::Offer)
    );
}

#[test]
fn no_option_53_gets_bootp_reply_not_offer_unlike_pybootd() {
    let mut h = Harness::new().simple();
    let (reply, _, _) = h.reply(&hex(SIMPLE_PY_BOOTP));
    assert_eq!(reply.message_type(), None);
    // With simple DHCP off, an idle BOOTP client is ignored.
    let mut h = Harness::new();
    assert!(matches!(
        h.send(&hex(SIMPLE_PY_BOOTP)).action,
        Action::Drop(DropReason::SimpleClientNotAllowed { .. })
    ));
}

#[test]
fn after_pxe_the_os_is_served_with_simple_dhcp_off() {
    let mut h = Harness::new();
    assert!(h.send(&bios_pxe_discover()).reply().is_some());
    assert_eq!(
        h.network.phase(MacAddr([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc])),
        Phase::Pxe
    );
    assert!(h.send(&os_discover()).reply().is_some());
    let ack = h.send(&os_request());
    assert_eq!(
        Message::parse(reply_bytes(&ack)).unwrap().message_type(),
        Some(MessageType::Ack)
    );
    assert_eq!(
        h.network.phase(MacAddr([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc])),
        Phase::OsDhcp
    );
}

#[test]
fn os_served_after_restart_from_the_lease_file() {
    let mut h = Harness::new();
    h.send(&bios_pxe_discover());
    let record = h
        .send(&packet(
            "01 01 06 00 00000002 0000 0000 00000000 00000000 00000000 00000000
             525400aabbcc 00000000000000000000",
            "35 01 03  32 04 c0a81964  3c 09 505845436c69656e74  ff",
        ))
        .persist
        .unwrap();
    // Restart: fresh state, lease file replayed.
    h.reset_leases();
    h.network.leases.load([record]);
    let (offer, _, _) = h.reply(&os_discover());
    assert_eq!(offer.yiaddr, ip(100));
}

#[test]
fn option_97_of_16_bytes_still_marks_pxe_unlike_pybootd() {
    // bootd takes any option 97 as a PXE sign (ROMs vary); no UUID comes of it.
    let mut h = Harness::new();
    let b = packet(
        "01 01 06 00 00000003 0000 0000 00000000 00000000 00000000 00000000
         525400aabbcc 00000000000000000000",
        "35 01 01  61 10 00112233445566778899aabbccddeeff  ff",
    );
    let (reply, _, _) = h.reply(&b);
    assert!(reply.options.contains(tag::VENDOR_SPECIFIC));
    assert!(
        h.network
            .known_uuid(MacAddr([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]))
            .is_none()
    );
}

#[test]
fn request_acks_offered_address_but_checks_50_and_54_unlike_pybootd() {
    let mut h = Harness::new().simple();
    let (offer, _, _) = h.reply(&os_discover());
    let (ack, _, _) = h.reply(&os_request());
    assert_eq!(ack.yiaddr, offer.yiaddr);
}

#[test]
fn release_and_decline_get_no_reply_inform_does() {
    let mut h = Harness::new().simple();
    dora(&mut h);
    let release = packet(
        "01 01 06 00 00000004 0000 0000 c0a81964 00000000 00000000 00000000
         525400aabbcc 00000000000000000000",
        "35 01 07  ff",
    );
    assert_eq!(h.send(&release).action, Action::Silent);
    let decline = packet(
        "01 01 06 00 00000005 0000 0000 00000000 00000000 00000000 00000000
         525400aabbcc 00000000000000000000",
        "35 01 04  32 04 c0a81964  ff",
    );
    assert!(h.send(&decline).reply().is_none());
}

fn discover_from(last: u8) -> Vec<u8> {
    packet(
        &format!(
            "01 01 06 00 000000{last:02x} 0000 0000 00000000 00000000 00000000 00000000
             5254000000{last:02x} 00000000000000000000"
        ),
        "35 01 01  3c 09 505845436c69656e74  ff",
    )
}

#[test]
fn sequential_and_sticky() {
    let mut h = Harness::new();
    assert_eq!(h.reply(&discover_from(1)).0.yiaddr, ip(100));
    assert_eq!(h.reply(&discover_from(2)).0.yiaddr, ip(101));
    assert_eq!(h.reply(&discover_from(1)).0.yiaddr, ip(100));
}

#[test]
fn static_address_and_pool_skips_it() {
    let mut h = Harness::new();
    h.statics = vec![StaticLease {
        mac: MacAddr([0x52, 0x54, 0, 0, 0, 9]),
        ip: ip(100),
        line: 12,
    }];
    h.reset_leases();
    assert_eq!(h.reply(&discover_from(1)).0.yiaddr, ip(101));
    assert_eq!(h.reply(&discover_from(9)).0.yiaddr, ip(100));
}

/// A PXE REQUEST from `mac(last)` for `address`, naming this server.
fn request_from(last: u8, address: Ipv4Addr) -> Vec<u8> {
    let [a, b, c, d] = address.octets();
    packet(
        &format!(
            "01 01 06 00 000000{last:02x} 0000 0000 00000000 00000000 00000000 00000000
             5254000000{last:02x} 00000000000000000000"
        ),
        &format!(
            "35 01 03  36 04 c0a81901  32 04 {a:02x}{b:02x}{c:02x}{d:02x}  3c 09 505845436c69656e74  ff"
        ),
    )
}

#[test]
fn pool_exhaustion_drops_with_typed_reason() {
    let mut h = Harness::new();
    h.bootp.pool_count = 2;
    h.reset_leases();
    // Both addresses bound (offers alone would yield to a new client).
    for last in [1, 2] {
        let offered = h.reply(&discover_from(last)).0.yiaddr;
        assert!(h.send(&request_from(last, offered)).persist.is_some());
    }
    assert_eq!(
        h.send(&discover_from(3)).action,
        Action::Drop(DropReason::PoolExhausted {
            mac: MacAddr([0x52, 0x54, 0, 0, 0, 3]),
            pool_count: 2
        })
    );
}

#[test]
fn release_frees_for_others_unlike_pybootd() {
    let mut h = Harness::new().simple();
    h.bootp.pool_count = 1;
    h.reset_leases();
    dora(&mut h);
    h.send(&packet(
        "01 01 06 00 00000006 0000 0000 c0a81964 00000000 00000000 00000000
         525400aabbcc 00000000000000000000",
        "35 01 07  ff",
    ));
    assert_eq!(h.reply(&discover_from(7)).0.yiaddr, ip(100));
}

#[test]
fn unrelayed_replies_use_limited_broadcast_and_keep_flags_unlike_pybootd() {
    let mut h = Harness::new();
    let (reply, destination, _) = h.reply(&discover_from(1));
    assert_eq!(destination, BROADCAST_68);
    assert_eq!(reply.flags, 0, "flags copied, not forced to 0x8000");
    // A request from an unprivileged port is answered on that port.
    let outcome = h.send_from(
        &discover_from(1),
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 6868),
    );
    assert_eq!(
        outcome.reply().unwrap().destination,
        SocketAddrV4::new(Ipv4Addr::BROADCAST, 6868)
    );
}

#[test]
fn relayed_requests_go_to_giaddr_port_67() {
    let mut h = Harness::new();
    let mut b = discover_from(1);
    b[24..28].copy_from_slice(&[192, 168, 25, 7]);
    let (reply, destination, _) = h.reply(&b);
    assert_eq!(destination, SocketAddrV4::new(ip(7), 67));
    assert_eq!(reply.giaddr, ip(7));
}

#[test]
fn renewal_with_ciaddr_is_unicast_and_yiaddr_is_ciaddr() {
    let mut h = Harness::new().simple();
    dora(&mut h);
    let renew = packet(
        "01 01 06 00 00000008 0000 0000 c0a81964 00000000 00000000 00000000
         525400aabbcc 00000000000000000000",
        "35 01 03  ff   # RENEWING: no 50, no 54",
    );
    let (reply, destination, outcome) = h.reply(&renew);
    assert_eq!(reply.message_type(), Some(MessageType::Ack));
    assert_eq!(reply.yiaddr, ip(100));
    assert_eq!(reply.ciaddr, ip(100));
    assert_eq!(destination, SocketAddrV4::new(ip(100), 68));
    assert_eq!(outcome.persist, None, "nothing new to write on renewal");
}

#[test]
fn buggy_clients_always_get_limited_broadcast() {
    let mut h = Harness::new().simple();
    h.buggy = vec![MacRule {
        text: "52-54-00/24".into(),
        value: 0x5254_0000_0000,
        mask: 0xFFFF_FF00_0000,
        allow: true,
        line: 30,
    }];
    dora(&mut h);
    let renew = packet(
        "01 01 06 00 00000009 0000 0000 c0a81964 00000000 00000000 c0a81903
         525400aabbcc 00000000000000000000",
        "35 01 03  ff",
    );
    let (_, destination, _) = h.reply(&renew);
    assert_eq!(destination, BROADCAST_68);
    // A `disable` entry does not force anything.
    h.buggy[0].allow = false;
    let (_, destination, _) = h.reply(&renew);
    assert_eq!(destination, SocketAddrV4::new(ip(3), 67));
}

#[test]
fn header_and_option_order() {
    let mut h = Harness::new();
    let (reply, _, outcome) = h.reply(&bios_pxe_discover());
    assert_eq!(reply.op, 2);
    assert_eq!(reply.hops, 0);
    assert_eq!(reply.xid, 0xa1b2c3d4);
    assert_eq!(reply.siaddr, SERVER);
    let tags: Vec<u8> = reply.options.iter().map(|(t, _)| t).collect();
    assert_eq!(&tags[..2], &[53, 54], "53 and 54 first");
    // One END and pads after it: no stray `255 0 0` after the options.
    let bytes = reply_bytes(&outcome);
    let end = bytes.iter().rposition(|b| *b == 0xff).unwrap();
    assert_eq!(end, bytes.len() - 1);
}

#[test]
fn sname_and_file() {
    let mut h = Harness::new();
    h.bootp.servername = "bootd".into();
    h.bootp.domain = "lab".into();
    let (reply, _, _) = h.reply(&bios_pxe_discover());
    assert_eq!(reply.sname, b"bootd.lab");
    assert_eq!(reply.file, b"pxelinux.0");
    // No domain: the host name alone, without a trailing dot.
    h.bootp.servername = "vm".into();
    h.bootp.domain = String::new();
    let (reply, _, _) = h.reply(&bios_pxe_discover());
    assert_eq!(reply.sname, b"vm");
}

#[test]
fn dns_one_tlv_and_auto() {
    let mut h = Harness::new();
    let (reply, _, _) = h.reply(&bios_pxe_discover());
    assert_eq!(
        reply.options.get(tag::DNS_SERVERS),
        Some(&[8u8, 8, 8, 8, 1, 1, 1, 1][..])
    );
    let resolv =
        "# generated\nnameserver 10.0.0.53\nnameserver ::1\nsearch lab\nnameserver 10.0.0.54 \n";
    assert_eq!(
        resolve_dns(&DnsSetting::Auto, Some(resolv), SERVER),
        vec![Ipv4Addr::new(10, 0, 0, 53), Ipv4Addr::new(10, 0, 0, 54)]
    );
    assert_eq!(resolve_dns(&DnsSetting::Auto, None, SERVER), vec![SERVER]);
    // A resolver on the server's own host is nothing a client can reach.
    let stub = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n";
    assert_eq!(
        resolve_dns(&DnsSetting::Auto, Some(stub), SERVER),
        vec![SERVER]
    );
    let mixed = "nameserver 127.0.0.1\nnameserver 0.0.0.0\nnameserver 10.0.0.53\n";
    assert_eq!(
        resolve_dns(&DnsSetting::Auto, Some(mixed), SERVER),
        vec![Ipv4Addr::new(10, 0, 0, 53)]
    );
    assert!(resolve_dns(&DnsSetting::None, Some(resolv), SERVER).is_empty());
    h.dns.clear();
    let (reply, _, _) = h.reply(&bios_pxe_discover());
    assert!(!reply.options.contains(tag::DNS_SERVERS));
}

#[test]
fn gateway_netmask_and_gateway_off() {
    let mut h = Harness::new();
    let (reply, _, _) = h.reply(&bios_pxe_discover());
    assert_eq!(reply.options.get(tag::ROUTER), Some(&SERVER.octets()[..]));
    h.bootp.gateway = Some(ip(254));
    h.bootp.netmask = Some(Ipv4Addr::new(255, 255, 0, 0));
    let (reply, _, _) = h.reply(&bios_pxe_discover());
    assert_eq!(reply.options.get(tag::ROUTER), Some(&ip(254).octets()[..]));
    assert_eq!(
        reply.options.get(tag::SUBNET_MASK),
        Some(&[255u8, 255, 0, 0][..])
    );
    assert_eq!(
        reply.options.get(tag::BROADCAST_ADDRESS),
        Some(&[192u8, 168, 255, 255][..])
    );
    // `set_gateway = off` leaves option 3 out.
    h.bootp.send_gateway = false;
    let (reply, _, _) = h.reply(&bios_pxe_discover());
    assert!(!reply.options.contains(tag::ROUTER));
}

#[test]
fn lease_time_encoding() {
    let mut h = Harness::new();
    let (reply, _, _) = h.reply(&bios_pxe_discover());
    assert_eq!(
        reply.options.get(tag::LEASE_TIME),
        Some(&[0u8, 1, 0x51, 0x80][..])
    );
}

#[test]
fn option_43_is_discovery_control_8_unlike_pybootd() {
    let mut h = Harness::new();
    let (reply, _, _) = h.reply(&bios_pxe_discover());
    assert_eq!(reply.options.vendor_specific(), Some(&[6u8, 1, 8, 255][..]));
}

#[test]
fn pxe_options_60_97_always_66_67_when_asked() {
    let mut h = Harness::new();
    let b = packet(
        "01 01 06 00 0000000a 0000 0000 00000000 00000000 00000000 00000000
         525400aabbcc 00000000000000000000",
        "35 01 01  37 02 01 03
         61 11 00 00112233445566778899aabbccddeeff
         3c 09 505845436c69656e74  ff",
    );
    let (reply, _, _) = h.reply(&b);
    assert_eq!(reply.options.vendor_class(), Some(&b"PXEClient"[..]));
    assert!(reply.options.contains(tag::CLIENT_UUID));
    assert!(!reply.options.contains(tag::TFTP_SERVER_NAME));
    assert!(!reply.options.contains(tag::BOOT_FILE_NAME));
    assert_eq!(reply.file, b"pxelinux.0", "the header still names the file");
}

#[test]
fn pxe_client_without_option_55_gets_reply() {
    let mut h = Harness::new();
    let b = packet(
        "01 01 06 00 0000000b 0000 0000 00000000 00000000 00000000 00000000
         525400aabbcc 00000000000000000000",
        "35 01 01  3c 09 505845436c69656e74  ff",
    );
    let (reply, _, _) = h.reply(&b);
    assert!(reply.options.contains(tag::VENDOR_SPECIFIC));
    assert!(
        !reply.options.contains(tag::CLIENT_UUID),
        "97 only when the client sent it"
    );
}

#[test]
fn option_13_is_not_sent() {
    // Boot file size needs file-system or HTTP I/O; the sans-IO core leaves it out.
    let mut h = Harness::new();
    let (reply, _, _) = h.reply(&bios_pxe_discover());
    assert!(!reply.options.contains(tag::BOOT_FILE_SIZE));
}

#[test]
fn arch_selects_file_unlisted_gets_default_unlike_pybootd() {
    let mut h = Harness::new();
    let with_class = |class: &str| {
        let class_hex: String = class.bytes().map(|b| format!("{b:02x}")).collect();
        packet(
            "01 01 06 00 0000000c 0000 0000 00000000 00000000 00000000 00000000
             525400aabbcc 00000000000000000000",
            &format!("35 01 01  3c {:02x} {class_hex}  ff", class.len()),
        )
    };
    let (reply, _, _) = h.reply(&with_class("PXEClient:Arch:00007:UNDI:003016"));
    assert_eq!(reply.file, b"shimx64.efi");
    let (reply, _, outcome) = h.reply(&with_class("PXEClient:Arch:00011:UNDI:003016"));
    assert_eq!(reply.file, b"pxelinux.0");
    assert_eq!(
        outcome.notices,
        vec![Notice::DefaultBootFile {
            mac: MacAddr([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]),
            arch: 11,
            file: "pxelinux.0".into()
        }]
    );
    let (reply, _, outcome) = h.reply(&with_class("PXEClient"));
    assert_eq!(reply.file, b"pxelinux.0");
    assert!(outcome.notices.is_empty());
    // No default and no entry: a PXE client is dropped with the reason.
    h.files.default = None;
    assert_eq!(
        h.send(&with_class("PXEClient:Arch:00011:UNDI:003016"))
            .action,
        Action::Drop(DropReason::NoBootFile {
            mac: MacAddr([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]),
            arch: Some(11)
        })
    );
}

// ---------------------------------------------------------------------------
// Further rules

#[test]
fn client_option_57_limit_is_respected() {
    let mut h = Harness::new();
    // 1600 bytes of option 6: more than the ROM's 1472-byte datagrams allow.
    h.dns = (0..400u32)
        .map(|i| Ipv4Addr::from(0x0a00_0000 + i))
        .collect();
    let (reply, _, outcome) = h.reply(&bios_pxe_discover());
    assert!(reply_bytes(&outcome).len() <= 1472 - 28);
    assert!(
        matches!(outcome.notices[..], [Notice::OptionsOmitted { ref tags, .. }] if tags == &[6])
    );
    assert!(
        reply.options.contains(tag::VENDOR_SPECIFIC),
        "later options still fit"
    );
    // Without option 57, 576-byte datagrams: 548 bytes of DHCP message.
    h.dns = (0..80u32)
        .map(|i| Ipv4Addr::from(0x0a00_0000 + i))
        .collect();
    let mut h2 = Harness::new().simple();
    h2.dns = h.dns.clone();
    let (_, _, outcome) = h2.reply(&os_discover());
    assert!(reply_bytes(&outcome).len() <= 548);
    assert!(matches!(
        outcome.notices[..],
        [Notice::OptionsOmitted { .. }]
    ));
}

/// An offer keeps its address from other clients while the pool has others to
/// give (when it has none, the oldest offer yields: see the endpoint's tests).
#[test]
fn offers_hold_and_expire() {
    let mut h = Harness::new();
    h.bootp.pool_count = 2;
    h.reset_leases();
    h.send(&discover_from(1));
    assert_eq!(h.reply(&discover_from(2)).0.yiaddr, ip(101));
    h.now += Duration::from_secs(61);
    assert_eq!(h.reply(&discover_from(3)).0.yiaddr, ip(100));
}

/// A policy recording its queries and answering from a script.
struct ScriptedPolicy {
    verdict: AccessVerdict,
    queries: Vec<AccessQuery>,
}

impl AccessPolicy for ScriptedPolicy {
    fn check(&mut self, _now: Instant, query: &AccessQuery) -> AccessVerdict {
        self.queries.push(query.clone());
        self.verdict.clone()
    }
}

fn send_with(h: &mut Harness, bytes: &[u8], policy: &mut ScriptedPolicy) -> Outcome {
    h.send_with(bytes, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68), policy)
}

#[test]
fn access_seam_deny_pending_and_grant() {
    let mut h = Harness::new();
    let mut policy = ScriptedPolicy {
        verdict: AccessVerdict::Deny("[mac] 52-54-00-AA-BB-CC = disable (line 40)".into()),
        queries: Vec::new(),
    };
    let outcome = send_with(&mut h, &bios_pxe_discover(), &mut policy);
    assert!(matches!(
        outcome.action,
        Action::Drop(DropReason::Refused { .. })
    ));
    let query = policy.queries[0].clone();
    assert!(query.pxe);
    assert_eq!(query.uuid, Some(Uuid(0x00112233445566778899aabbccddeeff)));
    assert_eq!((query.phase, query.next_phase), (Phase::Idle, Phase::Pxe));
    // Refused clients take no address and do not change phase.
    assert_eq!(h.network.leases.current_address(query.mac, h.now), None);
    assert_eq!(h.network.phase(query.mac), Phase::Idle);

    policy.verdict = AccessVerdict::Pending;
    assert_eq!(
        send_with(&mut h, &bios_pxe_discover(), &mut policy).action,
        Action::Pending { mac: query.mac }
    );
    assert_eq!(h.network.phase(query.mac), Phase::Idle);

    policy.verdict = AccessVerdict::Allow(AccessGrant {
        host_name: Some("node7".into()),
        boot_file: Some("node7.efi".into()),
    });
    let outcome = send_with(&mut h, &bios_pxe_discover(), &mut policy);
    let reply = Message::parse(reply_bytes(&outcome)).unwrap();
    assert_eq!(reply.file, b"node7.efi");
    assert_eq!(
        reply.options.get(tag::HOST_NAME),
        Some(&b"node7"[..]),
        "12 asked and known"
    );
}

#[test]
fn non_ethernet_and_server_message_types_are_dropped() {
    let mut h = Harness::new();
    let mut b = bios_pxe_discover();
    b[1] = 32; // InfiniBand
    assert!(matches!(
        h.send(&b).action,
        Action::Drop(DropReason::NotEthernet { .. })
    ));
    let offer = packet(
        "01 01 06 00 0000000d 0000 0000 00000000 00000000 00000000 00000000
         525400aabbcc 00000000000000000000",
        "35 01 02 ff",
    );
    assert!(matches!(
        h.send(&offer).action,
        Action::Drop(DropReason::UnexpectedType { .. })
    ));
    assert!(matches!(
        h.send(&[1, 2, 3]).action,
        Action::Drop(DropReason::Malformed(_))
    ));
}

#[test]
fn drop_reasons_read_well() {
    let mac = MacAddr([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]);
    assert_eq!(
        DropReason::SimpleClientNotAllowed { mac }.to_string(),
        "52-54-00-AA-BB-CC: not PXE-booted through bootd and allow_simple_dhcp is off (idle phase)"
    );
    assert_eq!(
        DropReason::PoolExhausted {
            mac,
            pool_count: 10
        }
        .to_string(),
        "52-54-00-AA-BB-CC: no address left: all 10 pool addresses are bound or offered"
    );
    assert_eq!(
        DropReason::NoBootFile { mac, arch: Some(7) }.to_string(),
        "52-54-00-AA-BB-CC: PXE client of architecture 7 (x64 UEFI) but [bootfile] has no entry for it and no default"
    );
}

#[test]
fn next_phase_table() {
    use MessageType::*;
    assert_eq!(next_phase(Phase::Idle, true, Some(Discover)), Phase::Pxe);
    assert_eq!(next_phase(Phase::Idle, true, Some(Request)), Phase::Pxe);
    assert_eq!(next_phase(Phase::Idle, false, Some(Discover)), Phase::Idle);
    assert_eq!(next_phase(Phase::Idle, true, Some(Inform)), Phase::Idle);
    assert_eq!(next_phase(Phase::Pxe, false, Some(Discover)), Phase::Pxe);
    assert_eq!(next_phase(Phase::Pxe, false, Some(Request)), Phase::OsDhcp);
    assert_eq!(next_phase(Phase::OsDhcp, true, Some(Discover)), Phase::Pxe);
    assert_eq!(
        next_phase(Phase::OsDhcp, false, Some(Request)),
        Phase::OsDhcp
    );
}

// ---------------------------------------------------------------------------
// Property tests

fn corpus() -> Vec<Vec<u8>> {
    vec![
        bios_pxe_discover(),
        ipxe_discover(),
        os_discover(),
        os_request(),
        hex(SIMPLE_PY_BOOTP),
        hex(INTERNICHE_REQUEST),
    ]
}

/// Every reply is a well-formed BOOTREPLY within the client's limits.
fn check_outcome(request: &[u8], outcome: &Outcome) -> Result<(), TestCaseError> {
    if let Some(reply) = outcome.reply() {
        let parsed = Message::parse(&reply.bytes);
        prop_assert!(parsed.is_ok(), "reply does not re-parse: {:?}", parsed);
        let parsed = parsed.unwrap();
        prop_assert_eq!(parsed.op, 2);
        prop_assert!(reply.bytes.len() >= 300);
        let request = Message::parse(request).unwrap();
        prop_assert!(reply.bytes.len() <= wire::max_reply_len(&request.options));
        prop_assert_eq!(parsed.xid, request.xid);
        prop_assert_eq!(parsed.chaddr, request.chaddr);
        prop_assert!(reply.bytes.contains(&0xff), "END present");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let _ = Message::parse(&bytes);
        let mut h = Harness::new().simple();
        let outcome = h.send(&bytes);
        check_outcome(&bytes, &outcome)?;
    }

    #[test]
    fn random_options_after_a_valid_header_never_panic(
        options in proptest::collection::vec(any::<u8>(), 0..400),
        overload in any::<bool>(),
        simple in any::<bool>(),
    ) {
        let mut b = bios_pxe_discover();
        b.truncate(wire::OPTIONS_OFFSET);
        if overload {
            b[108..108 + options.len().min(128)].copy_from_slice(&options[..options.len().min(128)]);
            b.extend_from_slice(&[53, 1, 1, 52, 1, 3]);
        }
        b.extend_from_slice(&options);
        let mut h = if simple { Harness::new().simple() } else { Harness::new() };
        let outcome = h.send(&b);
        check_outcome(&b, &outcome)?;
    }

    #[test]
    fn mutated_packets_never_panic(
        which in 0usize..6,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..12),
        cut in proptest::option::of(any::<usize>()),
        steps in 1usize..4,
    ) {
        let mut b = corpus()[which].clone();
        for (at, value) in edits {
            let at = at % b.len();
            b[at] = value;
        }
        if let Some(cut) = cut {
            b.truncate(cut % (b.len() + 1));
        }
        let mut h = Harness::new().simple();
        // Repeat to drive the state through its phases with the same packet.
        for _ in 0..steps {
            let outcome = h.send(&b);
            check_outcome(&b, &outcome)?;
        }
    }

    #[test]
    fn sequences_of_mutated_packets_keep_leases_consistent(
        picks in proptest::collection::vec((0usize..6, any::<u8>(), any::<u8>()), 1..20),
    ) {
        let mut h = Harness::new().simple();
        h.bootp.pool_count = 3;
        h.reset_leases();
        for (which, mac_byte, type_byte) in picks {
            let mut b = corpus()[which].clone();
            b[33] = mac_byte % 5; // a handful of distinct MACs
            if b.len() > 242 && b[240] == 53 {
                b[242] = type_byte % 9;
            }
            let outcome = h.send(&b);
            check_outcome(&b, &outcome)?;
            h.now += Duration::from_secs(7);
        }
        // No address bound to two MACs.
        let records = h.network.leases.records();
        let mut bound: Vec<Ipv4Addr> = records
            .iter()
            .filter(|r| r.state == RecordState::Bound)
            .map(|r| r.ip)
            .collect();
        let count = bound.len();
        bound.sort();
        bound.dedup();
        prop_assert_eq!(bound.len(), count);
    }
}

/// The yield is a notice naming the client that loses its offer.
#[test]
fn the_oldest_offer_yields_with_a_notice_when_the_pool_is_exhausted() {
    let mut h = Harness::new();
    h.bootp.pool_count = 1;
    h.reset_leases();
    h.send(&discover_from(1));
    h.now += Duration::from_secs(7);
    let (offer, _, outcome) = h.reply(&discover_from(2));
    assert_eq!(offer.yiaddr, ip(100));
    assert_eq!(
        outcome.notices,
        vec![Notice::OfferYielded {
            mac: MacAddr([0x52, 0x54, 0, 0, 0, 2]),
            ip: ip(100),
            from: MacAddr([0x52, 0x54, 0, 0, 0, 1]),
            age: 7
        }]
    );
    assert_eq!(
        outcome.notices[0].to_string(),
        "52-54-00-00-00-02: the pool is exhausted by offers: offering 192.168.25.100, offered to 52-54-00-00-00-01 7 s ago and not taken up"
    );
    // The first client, accepting its offer after all, wins it back.
    let outcome = h.send(&request_from(1, ip(100)));
    assert!(outcome.persist.is_some(), "{:?}", outcome.action);
    assert!(matches!(
        outcome.notices[..],
        [Notice::OfferReclaimed { from, .. }] if from == MacAddr([0x52, 0x54, 0, 0, 0, 2])
    ));
    // The second, asking for what is now bound, gets a NAK.
    let (nak, _, _) = h.reply(&request_from(2, ip(100)));
    assert_eq!(nak.message_type(), Some(MessageType::Nak));
}

/// A BOOTREQUEST (no option 53) from 52-54-00-00-00-`last` claiming `ciaddr`.
fn bootp_claiming(last: u8, ciaddr: Ipv4Addr) -> Vec<u8> {
    let [a, b, c, d] = ciaddr.octets();
    packet(
        &format!(
            "01 01 06 00 000000{last:02x} 0000 0000 {a:02x}{b:02x}{c:02x}{d:02x} 00000000 00000000 00000000
             5254000000{last:02x} 00000000000000000000"
        ),
        "ff",
    )
}

#[test]
fn a_bootp_request_claiming_another_machines_address_is_not_answered() {
    let mut h = Harness::new().simple();
    dora(&mut h);
    let owner = MacAddr([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]);
    let stranger = MacAddr([0x52, 0x54, 0, 0, 0, 7]);
    let outcome = h.send(&bootp_claiming(7, ip(100)));
    assert_eq!(
        outcome.action,
        Action::Drop(DropReason::ClaimsAddress {
            mac: stranger,
            ip: ip(100),
            owner: Some(owner)
        })
    );
    assert_eq!(outcome.event, None, "no LEASE of it to the stranger");
    assert_eq!(
        DropReason::ClaimsAddress {
            mac: stranger,
            ip: ip(100),
            owner: Some(owner)
        }
        .to_string(),
        "52-54-00-00-00-07: claims 192.168.25.100 (ciaddr), which is 52-54-00-AA-BB-CC's: not answered (a spoofed address?)"
    );
    // Nor this server's own address, nor the network's broadcast address.
    for ip in [SERVER, ip(255)] {
        assert!(matches!(
            h.send(&bootp_claiming(7, ip)).action,
            Action::Drop(DropReason::ClaimsAddress { owner: None, .. })
        ));
    }
    // A machine that knows its own address, or one no one holds, is answered.
    assert!(h.send(&bootp_claiming(7, ip(150))).reply().is_some());
    let mut own = bootp_claiming(0, ip(100));
    own[28..34].copy_from_slice(&owner.0);
    let outcome = h.send(&own);
    assert!(outcome.reply().is_some());
    assert_eq!(outcome.event.map(|e| e.mac), Some(owner));
}

#[test]
fn a_decline_long_after_the_ack_is_ignored() {
    let mut h = Harness::new().simple();
    dora(&mut h);
    let decline = packet(
        "01 01 06 00 00000078 0000 0000 00000000 00000000 00000000 00000000
         525400aabbcc 00000000000000000000",
        "35 01 04  36 04 c0a81901  32 04 c0a81964  ff   # DECLINE of .100",
    );
    // Two minutes later the machine uses its address: a DECLINE in its name
    // is someone else's.
    h.now += Duration::from_secs(120);
    let outcome = h.send(&decline);
    assert!(
        matches!(outcome.action, Action::Drop(DropReason::LateDecline { .. })),
        "{:?}",
        outcome.action
    );
    assert_eq!(outcome.persist, None);
    assert!(!h.network.leases.is_quarantined(ip(100), h.now));
    // Its renewal is still ACKed.
    let renew = packet(
        "01 01 06 00 00000082 0000 0000 c0a81964 00000000 00000000 00000000
         525400aabbcc 00000000000000000000",
        "35 01 03 ff",
    );
    assert_eq!(h.reply(&renew).0.message_type(), Some(MessageType::Ack));
    // After a renewal (the address is in use) a DECLINE is late at once.
    assert!(matches!(
        h.send(&decline).action,
        Action::Drop(DropReason::LateDecline { .. })
    ));
}
