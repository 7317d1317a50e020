//! Tests of the proxy's answers, byte for byte: the proxy offer each kind of
//! firmware gets on port 67, and the boot server's ACK on port 4011.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::*;
use crate::bootp::wire::tests::hex;
use crate::bootp::wire::{self, MAGIC_COOKIE};
use crate::config::BootFiles;

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 25, 1);
const BROADCAST_68: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::BROADCAST, 68);
const FROM_68: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68);

fn boot_files() -> BootFiles {
    BootFiles {
        default: Some("pxelinux.0".into()),
        by_arch: vec![
            (0, "pxelinux.0".into()),
            (7, "grubx64.efi".into()),
            (16, "bootx64.efi".into()),
        ],
        ipxe: None,
    }
}

/// Answers `request` as a proxy serving 192.168.25.1 with `files`, its HTTP
/// service on port 8080.
fn answer(
    files: &BootFiles,
    request: &[u8],
    port: u16,
    source: SocketAddrV4,
) -> Result<ProxyReply, DropReason> {
    let config = ProxyConfig {
        boot_files: files,
        buggy_clients: &[],
        server_name: "bootd.lab",
        http: Some(HttpServer {
            address: None,
            port: 8080,
        }),
    };
    let message = Message::parse(request).unwrap();
    let grant = AccessGrant::default();
    if port == BOOT_SERVER_PORT {
        boot_server_ack(&config, SERVER, &message, source, &grant)
    } else {
        let route = Route::of(&message.options).expect("a boot client");
        offer(&config, SERVER, &message, route, source, &grant)
    }
}

/// A request: `fixed` is the hex of op..chaddr (44 bytes), then zero sname and
/// file, the magic cookie, and the options in hex.
fn packet(fixed: &str, options: &str) -> Vec<u8> {
    let mut b = hex(fixed);
    assert_eq!(b.len(), 44, "op..chaddr is 44 bytes");
    b.resize(wire::HEADER_LEN, 0);
    b.extend_from_slice(&MAGIC_COOKIE);
    b.extend_from_slice(&hex(options));
    b
}

/// An expected answer: op..chaddr, then sname and file text NUL-padded, cookie,
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
    b.extend_from_slice(&MAGIC_COOKIE);
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

/// A BIOS PXE ROM's DHCPDISCOVER (Intel-style option set).
fn bios_discover() -> Vec<u8> {
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
         ff",
    )
}

#[test]
fn a_bios_rom_is_offered_its_file_with_discovery_control_8_and_no_address() {
    let reply = answer(&boot_files(), &bios_discover(), 67, FROM_68).unwrap();
    let want = expected(
        "02 01 06 00 a1b2c3d4 0000 8000  # BOOTREPLY, xid, secs 0, flags: broadcast
         00000000                # ciaddr
         00000000                # yiaddr: no address, the site's server gives it
         c0a81901                # siaddr: this server (TFTP)
         00000000                # giaddr
         525400aabbcc 00000000000000000000",
        "bootd.lab",
        "pxelinux.0",
        "35 01 02                         # 53 DHCPOFFER
         36 04 c0a81901                   # 54 server identifier
         3c 09 505845436c69656e74         # 60 PXEClient
         61 11 00 00112233445566778899aabbccddeeff  # 97 echoed
         2b 04 06 01 08 ff                # 43: discovery control 8 (boot the file), END
         43 0b 7078656c696e75782e30 00    # 67 pxelinux.0, NUL-terminated
         ff",
    );
    assert_bytes(&reply.bytes, &want);
    assert_eq!(reply.destination, BROADCAST_68);
    assert_eq!(reply.kind, ReplyKind::Offer(Route::OfferedFile));
    assert!(reply.notices.is_empty());
    assert_eq!(
        reply.to_string(),
        "52-54-00-AA-BB-CC: proxy DHCPOFFER via 255.255.255.255:68, boot file pxelinux.0 (PXE, boot the offered file)"
    );
}

/// EDK2's DHCPDISCOVER on x64 (OVMF's own PXE).
fn uefi_discover() -> Vec<u8> {
    packet(
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
    )
}

#[test]
fn uefi_firmware_is_offered_no_option_43_so_that_it_asks_port_4011() {
    let reply = answer(&boot_files(), &uefi_discover(), 67, FROM_68).unwrap();
    let want = expected(
        "02 01 06 00 00c0ffee 0000 8000  # flags: broadcast set
         00000000 00000000 c0a81901 00000000
         525400111111 00000000000000000000",
        "bootd.lab",
        "grubx64.efi",
        "35 01 02  36 04 c0a81901
         3c 09 505845436c69656e74
         61 11 00 8c41ee7d6e2a4e1fb1c0a0b0c0d0e0f0
         43 0c 677275627836342e656669 00  # 67 grubx64.efi, chosen by architecture 7
         ff",
    );
    assert_bytes(&reply.bytes, &want);
    assert_eq!(reply.destination, BROADCAST_68);
    assert_eq!(reply.kind, ReplyKind::Offer(Route::BootServer));
}

/// EDK2's DHCPREQUEST to the boot server, unicast to port 4011 once the site's
/// server gave it 192.168.25.50: a new xid, ciaddr set, no option 43 (the offer
/// had none).
fn uefi_boot_server_request() -> Vec<u8> {
    packet(
        "01 01 06 00 5eed1234 0000 0000  # xid, secs 0, flags 0
         c0a81932 00000000 00000000 00000000  # ciaddr 192.168.25.50
         525400111111 00000000000000000000",
        "35 01 03                # DHCPREQUEST
         39 02 05c0
         37 0b 01 03 06 0c 0f 1c 2b 3c 42 43 61
         61 11 00 8c41ee7d6e2a4e1fb1c0a0b0c0d0e0f0
         5e 03 010300
         5d 02 0007
         3c 20 505845436c69656e743a417263683a30303030373a554e44493a303033303030
         ff",
    )
}

#[test]
fn the_boot_server_acks_a_uefi_request_with_its_file_at_its_own_port() {
    let source = SocketAddrV4::new(Ipv4Addr::new(192, 168, 25, 50), 4011);
    let reply = answer(&boot_files(), &uefi_boot_server_request(), 4011, source).unwrap();
    let want = expected(
        "02 01 06 00 5eed1234 0000 0000  # the request's xid and flags
         c0a81932                # ciaddr copied
         00000000                # yiaddr: still no address
         c0a81901 00000000       # siaddr: this server
         525400111111 00000000000000000000",
        "bootd.lab",
        "grubx64.efi",
        "35 01 05                # 53 DHCPACK
         36 04 c0a81901          # 54
         3c 09 505845436c69656e74
         61 11 00 8c41ee7d6e2a4e1fb1c0a0b0c0d0e0f0
         43 0c 677275627836342e656669 00
         ff",
    );
    assert_bytes(&reply.bytes, &want);
    assert_eq!(reply.destination, source, "back to where it came from");
    assert_eq!(reply.kind, ReplyKind::BootServerAck);
    assert_eq!(
        reply.to_string(),
        "52-54-00-11-11-11: boot server DHCPACK to 192.168.25.50:4011, boot file grubx64.efi (PXE)"
    );
}

/// iPXE (x64 UEFI build) asking a boot server for boot item 0x8000, layer 0.
fn ipxe_boot_server_request() -> Vec<u8> {
    packet(
        "01 01 06 00 0badcafe 0000 0000
         c0a81933 00000000 00000000 00000000  # ciaddr 192.168.25.51
         525400222222 00000000000000000000",
        "35 01 03
         5d 02 0007
         3c 20 505845436c69656e743a417263683a30303030373a554e44493a303033303130
         4d 04 69505845                   # 77 iPXE
         2b 07 47 04 8000 0000 ff         # 43: boot item 0x8000 layer 0, END
         ff",
    )
}

#[test]
fn a_boot_item_is_echoed_and_ipxe_gets_its_script_over_http() {
    let files = BootFiles {
        ipxe: Some("boot.ipxe".into()),
        ..boot_files()
    };
    let source = SocketAddrV4::new(Ipv4Addr::new(192, 168, 25, 51), 68);
    let reply = answer(&files, &ipxe_boot_server_request(), 4011, source).unwrap();
    let want = expected(
        "02 01 06 00 0badcafe 0000 0000
         c0a81933 00000000 c0a81901 00000000
         525400222222 00000000000000000000",
        "bootd.lab",
        "http://192.168.25.1:8080/boot.ipxe",
        "35 01 05  36 04 c0a81901  3c 09 505845436c69656e74
         2b 07 47 04 8000 0000 ff          # 43: the same boot item, END
         43 23 687474703a2f2f3139322e3136382e32352e313a383038302f626f6f742e69707865 00
                                           # 67: the iPXE script on the HTTP service, not the loader
         ff",
    );
    assert_bytes(&reply.bytes, &want);
    assert_eq!(reply.destination, source, "iPXE listens on port 68");
}

/// EDK2's HTTP boot DHCPDISCOVER on x64.
fn http_discover() -> Vec<u8> {
    packet(
        "01 01 06 00 00d00d00 0000 0000
         00000000 00000000 00000000 00000000
         525400333333 00000000000000000000",
        "35 01 01  39 02 05c0
         37 07 01 03 06 0c 0f 3c 43
         61 11 00 8c41ee7d6e2a4e1fb1c0a0b0c0d0e0f0
         5e 03 010300
         5d 02 0010              # 93 arch 16: x64 UEFI HTTP
         3c 21 48545450436c69656e743a417263683a30303031363a554e44493a303033303030
                                 # 60 HTTPClient:Arch:00016:UNDI:003000
         ff",
    )
}

#[test]
fn an_http_boot_client_is_offered_the_url_of_its_file_on_the_http_service() {
    let reply = answer(&boot_files(), &http_discover(), 67, FROM_68).unwrap();
    let url = "http://192.168.25.1:8080/bootx64.efi";
    let want = expected(
        "02 01 06 00 00d00d00 0000 8000
         00000000 00000000 c0a81901 00000000
         525400333333 00000000000000000000",
        "bootd.lab",
        url,
        "35 01 02  36 04 c0a81901
         3c 0a 48545450436c69656e74       # 60 HTTPClient
         61 11 00 8c41ee7d6e2a4e1fb1c0a0b0c0d0e0f0
         43 25 687474703a2f2f3139322e3136382e32352e313a383038302f626f6f747836342e656669 00
                                          # 67 the URL, NUL-terminated
         ff",
    );
    assert_bytes(&reply.bytes, &want);
    assert_eq!(reply.kind, ReplyKind::Offer(Route::Http));
    assert_eq!(reply.file, url);
}

#[test]
fn without_the_http_service_an_http_boot_client_gets_only_a_url_written_as_one() {
    let without_http = |files: &BootFiles| {
        let config = ProxyConfig {
            boot_files: files,
            buggy_clients: &[],
            server_name: "bootd.lab",
            http: None,
        };
        let message = Message::parse(&http_discover()).unwrap();
        let route = Route::of(&message.options).expect("a boot client");
        offer(
            &config,
            SERVER,
            &message,
            route,
            FROM_68,
            &AccessGrant::default(),
        )
    };
    // A path names a file on an HTTP service that does not run: no answer.
    let refused = without_http(&boot_files()).unwrap_err();
    assert_eq!(
        refused,
        DropReason::HttpBootWithoutHttp {
            mac: "52:54:00:33:33:33".parse().unwrap(),
            file: "bootx64.efi".into(),
        }
    );
    // A URL the operator wrote goes as it is.
    let mut files = boot_files();
    files.by_arch.retain(|(arch, _)| *arch != 16);
    files
        .by_arch
        .push((16, "http://192.168.25.9/efi/bootx64.efi".into()));
    let reply = without_http(&files).unwrap();
    assert_eq!(reply.file, "http://192.168.25.9/efi/bootx64.efi");
}

#[test]
fn urls_name_the_http_service_by_address_and_port() {
    let server = Ipv4Addr::new(10, 0, 0, 1);
    let default = HttpServer {
        address: None,
        port: 80,
    };
    assert_eq!(
        default.url("/efi/boot x64.efi", server),
        "http://10.0.0.1/efi/boot%20x64.efi",
        "port 80 left out, one leading slash, spaces escaped"
    );
    assert_eq!(
        default.url("HTTP://mirror.example/bootx64.efi", server),
        "HTTP://mirror.example/bootx64.efi",
        "a URL is kept"
    );
    let elsewhere = HttpServer {
        address: Some(Ipv4Addr::new(10, 0, 0, 9)),
        port: 8080,
    };
    assert_eq!(
        elsewhere.url("a/b.efi", server),
        "http://10.0.0.9:8080/a/b.efi"
    );
    let unspecified = HttpServer {
        address: Some(Ipv4Addr::UNSPECIFIED),
        port: 80,
    };
    assert_eq!(
        unspecified.url("é.efi", server),
        "http://10.0.0.1/%C3%A9.efi"
    );
}

#[test]
fn each_firmware_takes_its_route() {
    let route = |pairs: &[(u8, &[u8])]| {
        let mut options = Options::new();
        for (t, v) in pairs {
            options.set(*t, v.to_vec());
        }
        Route::of(&options)
    };
    let pxe = |arch: &str| format!("PXEClient:Arch:{arch}:UNDI:003000").into_bytes();
    assert_eq!(route(&[(60, &pxe("00000"))]), Some(Route::OfferedFile));
    for arch in ["00006", "00007", "00009", "00011"] {
        assert_eq!(
            route(&[(60, &pxe(arch))]),
            Some(Route::BootServer),
            "{arch}"
        );
    }
    // Option 93 before option 60; no architecture at all is an old BIOS ROM.
    assert_eq!(
        route(&[(93, &[0, 7]), (60, &pxe("00000"))]),
        Some(Route::BootServer)
    );
    assert_eq!(route(&[(60, b"PXEClient")]), Some(Route::OfferedFile));
    assert_eq!(route(&[(97, &[0; 17])]), Some(Route::OfferedFile));
    // iPXE boots an offered file on any architecture.
    assert_eq!(
        route(&[(60, &pxe("00007")), (77, b"iPXE")]),
        Some(Route::OfferedFile)
    );
    assert_eq!(
        route(&[(60, &pxe("00007")), (175, &[0x13, 1, 1])]),
        Some(Route::OfferedFile)
    );
    // HTTP boot clients send option 97 too.
    assert_eq!(
        route(&[(97, &[0; 17]), (60, b"HTTPClient:Arch:00016:UNDI:003000")]),
        Some(Route::Http)
    );
    // An operating system is not a boot client.
    assert_eq!(route(&[(60, b"MSFT 5.0")]), None);
    assert_eq!(route(&[]), None);
    assert!(Route::BootServer.asks_boot_server());
    assert!(!Route::OfferedFile.asks_boot_server() && !Route::Http.asks_boot_server());
}

#[test]
fn no_boot_file_for_the_architecture_and_no_default_is_no_answer() {
    let files = BootFiles {
        default: None,
        by_arch: vec![(0, "pxelinux.0".into())],
        ipxe: None,
    };
    let error = answer(&files, &uefi_discover(), 67, FROM_68).unwrap_err();
    assert_eq!(
        error,
        DropReason::NoBootFile {
            mac: MacAddr([0x52, 0x54, 0, 0x11, 0x11, 0x11]),
            arch: Some(7)
        }
    );
}

#[test]
fn a_default_for_an_unlisted_architecture_is_a_notice() {
    let files = BootFiles {
        by_arch: vec![(0, "pxelinux.0".into())],
        ..boot_files()
    };
    let reply = answer(&files, &uefi_discover(), 67, FROM_68).unwrap();
    assert_eq!(reply.file, "pxelinux.0");
    assert!(matches!(
        reply.notices[..],
        [Notice::DefaultBootFile { arch: 7, .. }]
    ));
}

#[test]
fn a_name_too_long_for_the_file_field_goes_in_option_67_alone() {
    let long = format!("{}/bootx64.efi", "d".repeat(130));
    let files = BootFiles {
        default: Some(long.clone()),
        ..BootFiles::default()
    };
    let reply = answer(&files, &uefi_discover(), 67, FROM_68).unwrap();
    assert!(reply.message.file.is_empty(), "a cut name would be fetched");
    let parsed = Message::parse(&reply.bytes).unwrap();
    assert!(parsed.file.is_empty());
    let mut named = long.into_bytes();
    named.push(0);
    assert_eq!(parsed.options.get(tag::BOOT_FILE_NAME), Some(&named[..]));
}

#[test]
fn relayed_and_buggy_clients_are_answered_where_the_dhcp_server_would() {
    let mut relayed = Message::parse(&bios_discover()).unwrap();
    relayed.giaddr = Ipv4Addr::new(192, 168, 25, 254);
    let bytes = relayed.emit(576).bytes;
    let reply = answer(&boot_files(), &bytes, 67, FROM_68).unwrap();
    assert_eq!(
        reply.destination,
        SocketAddrV4::new(Ipv4Addr::new(192, 168, 25, 254), 67)
    );
    assert_eq!(reply.message.giaddr, Ipv4Addr::new(192, 168, 25, 254));
    // A client on another port (a test tool) is answered there.
    let from_tool = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 6868);
    let reply = answer(&boot_files(), &bios_discover(), 67, from_tool).unwrap();
    assert_eq!(
        reply.destination,
        SocketAddrV4::new(Ipv4Addr::BROADCAST, 6868)
    );
}

#[test]
fn the_client_identifier_and_relay_information_are_echoed_last() {
    let mut request = Message::parse(&bios_discover()).unwrap();
    request
        .options
        .set(tag::CLIENT_ID, vec![1, 0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]);
    request
        .options
        .set(tag::RELAY_AGENT_INFO, vec![1, 2, 0xab, 0xcd]);
    let reply = answer(&boot_files(), &request.emit(576).bytes, 67, FROM_68).unwrap();
    let tags: Vec<u8> = reply.message.options.iter().map(|(t, _)| t).collect();
    assert_eq!(tags, vec![53, 54, 60, 97, 43, 67, 61, 82]);
}

#[test]
fn a_small_size_limit_cuts_the_echoes_first() {
    let mut request = Message::parse(&bios_discover()).unwrap();
    // 576-byte datagrams leave 548 bytes: a long client identifier cannot fit.
    request
        .options
        .set(tag::MAX_MESSAGE_SIZE, 576u16.to_be_bytes());
    request.options.set(tag::CLIENT_ID, vec![0x55; 255]);
    let reply = answer(&boot_files(), &request.emit(1500).bytes, 67, FROM_68).unwrap();
    assert!(reply.bytes.len() <= 548);
    let tags: Vec<u8> = reply.message.options.iter().map(|(t, _)| t).collect();
    assert_eq!(tags, vec![53, 54, 60, 97, 43, 67]);
    assert_eq!(
        reply.notices,
        vec![Notice::OptionsOmitted {
            mac: MacAddr([0x52, 0x54, 0, 0xaa, 0xbb, 0xcc]),
            tags: vec![61]
        }]
    );
}
