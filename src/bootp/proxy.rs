//! proxyDHCP, sans-IO: what bootd answers when it boots machines beside the
//! site's DHCP server (`[bootp] proxy = on`). The site's server hands out the
//! addresses; bootd only tells the firmware what to boot:
//!
//! - on port 67, a *proxy offer* answering a PXE (or UEFI HTTP boot) client's
//!   DHCPDISCOVER: no address (`yiaddr` 0), this server as option 54 and
//!   `siaddr`, option 60 `PXEClient` (`HTTPClient`), option 97 echoed when sent,
//!   and the boot file in both `file` and option 67 (EDK2 reads option 67 first,
//!   iPXE the `file` field first);
//! - on port 4011, the *PXE boot server*'s DHCPACK to firmware that asks there
//!   for its boot file, sent from port 4011 to the request's own source (EDK2
//!   listens on its port 4011, iPXE on 68).
//!
//! A port-67 DHCPREQUEST is never answered: EDK2 declines its lease when a proxy
//! acknowledges the request it sent the site's server.
//!
//! Which way each firmware goes ([`Route`]) depends on what it is. BIOS PXE ROMs
//! and iPXE boot the offered file when option 43 says discovery control 8, which
//! spares them the port-4011 step. UEFI firmware is offered no option 43 at all:
//! some UEFI firmware ignores a proxy offer that skips boot server discovery,
//! while every one accepts this form and then asks port 4011 for its file. UEFI
//! HTTP boot clients get their file's `http://` URL, from which they boot with no
//! port-4011 step.
//!
//! Nothing here keeps state; [`super::proxy_endpoint`] decides who is answered
//! and remembers what it said.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

use super::pxe::{self, BootFileChoice, HttpServer};
use super::server::{AccessGrant, DropReason, Notice, reply_destination};
use super::wire::{self, FLAG_BROADCAST, Message, MessageType, OP_BOOTREPLY, Options, tag};
use crate::config::{BootFiles, MacRule};
use crate::types::MacAddr;

/// The PXE boot server's UDP port (PXE 2.1): where firmware asks for its boot
/// file after a proxy offer without discovery control 8.
pub const BOOT_SERVER_PORT: u16 = 4011;

/// Option 93 of x86 BIOS firmware.
const ARCH_BIOS: u16 = 0;

/// How a firmware learns its boot file from a proxy offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Option 43 with discovery control 8: boot the file this offer names, with
    /// no port-4011 step (BIOS PXE ROMs, iPXE).
    OfferedFile,
    /// No option 43: the firmware asks the boot server on port 4011 for its file
    /// once it has its address (UEFI).
    BootServer,
    /// UEFI HTTP boot: option 60 `HTTPClient`, and the file as an `http://` URL.
    Http,
}

impl Route {
    /// The route of a client, from its DHCPDISCOVER; `None` for a client that is
    /// neither PXE firmware nor a UEFI HTTP boot client (an operating system,
    /// say), which a proxy leaves to the site's server.
    pub fn of(options: &Options) -> Option<Route> {
        // HTTP boot clients send option 97 too: their class decides first.
        if pxe::is_http_client(options) {
            return Some(Route::Http);
        }
        if !pxe::is_pxe_client(options) {
            return None;
        }
        // iPXE boots the file of any offer that names a file and a server.
        if pxe::is_ipxe(options) {
            return Some(Route::OfferedFile);
        }
        match pxe::client_architecture(options) {
            // ROMs announcing no architecture predate UEFI.
            None | Some(ARCH_BIOS) => Some(Route::OfferedFile),
            Some(_) => Some(Route::BootServer),
        }
    }

    /// Whether firmware sent this offer comes to port 4011 next.
    pub fn asks_boot_server(self) -> bool {
        self == Route::BootServer
    }
}

/// The configuration parts the answers read.
#[derive(Debug, Clone, Copy)]
pub struct ProxyConfig<'a> {
    pub boot_files: &'a BootFiles,
    pub buggy_clients: &'a [MacRule],
    /// The `sname` field.
    pub server_name: &'a str,
    /// Where the HTTP service answers, when it runs (`-H`).
    pub http: Option<HttpServer>,
}

/// What kind of answer a [`ProxyReply`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// The proxy offer on port 67, for firmware taking this route.
    Offer(Route),
    /// The boot server's DHCPACK on port 4011.
    BootServerAck,
}

/// One answer, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyReply {
    pub kind: ReplyKind,
    pub message: Message,
    /// The encoded message, padded to 300 bytes and within the client's limit.
    pub bytes: Vec<u8>,
    pub destination: SocketAddrV4,
    /// The boot file (a URL for HTTP boot clients).
    pub file: String,
    pub notices: Vec<Notice>,
}

impl ProxyReply {
    /// The client it answers.
    pub fn mac(&self) -> MacAddr {
        self.message.client_mac()
    }
}

impl fmt::Display for ProxyReply {
    /// The log line for this answer once it is sent.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mac, destination, file) = (self.mac(), self.destination, &self.file);
        match self.kind {
            ReplyKind::Offer(Route::OfferedFile) => write!(
                f,
                "{mac}: proxy DHCPOFFER via {destination}, boot file {file} (PXE, boot the offered file)"
            ),
            ReplyKind::Offer(Route::BootServer) => write!(
                f,
                "{mac}: proxy DHCPOFFER via {destination}, boot file {file} (PXE, ask port {BOOT_SERVER_PORT} next)"
            ),
            ReplyKind::Offer(Route::Http) => write!(
                f,
                "{mac}: proxy DHCPOFFER via {destination}, boot URL {file} (HTTP boot)"
            ),
            ReplyKind::BootServerAck => write!(
                f,
                "{mac}: boot server DHCPACK to {destination}, boot file {file} (PXE)"
            ),
        }
    }
}

/// The proxy offer answering `request`, a DHCPDISCOVER from a client of `route`
/// received from `source` on the network served from `server_ip`.
pub fn offer(
    config: &ProxyConfig<'_>,
    server_ip: Ipv4Addr,
    request: &Message,
    route: Route,
    source: SocketAddrV4,
    grant: &AccessGrant,
) -> Result<ProxyReply, DropReason> {
    let mut notices = Vec::new();
    let file = boot_file(config, server_ip, request, grant, &mut notices)?;
    let file = match (route, config.http) {
        (Route::Http, Some(http)) => http.url(&file, server_ip),
        (Route::Http, None) if pxe::is_url(&file) => file,
        // A path is a file on bootd's HTTP service, which does not run.
        (Route::Http, None) => {
            let mac = request.client_mac();
            return Err(DropReason::HttpBootWithoutHttp { mac, file });
        }
        (Route::OfferedFile | Route::BootServer, _) => file,
    };
    let mut message = reply_header(config, request, server_ip, &file);
    // The broadcast bit, as other proxies set it: the answer goes to the
    // limited broadcast anyway.
    message.flags |= FLAG_BROADCAST;
    let class = match route {
        Route::Http => pxe::HTTP_CLIENT_CLASS,
        Route::OfferedFile | Route::BootServer => pxe::PXE_CLIENT_CLASS,
    };
    let vendor_options = match route {
        Route::OfferedFile => Some(pxe::vendor_options_boot_file_only()),
        Route::BootServer | Route::Http => None,
    };
    boot_options(
        &mut message.options,
        MessageType::Offer,
        server_ip,
        class,
        request,
        vendor_options,
        &file,
    );
    let buggy = config
        .buggy_clients
        .iter()
        .any(|rule| rule.allow && rule.matches(request.client_mac()));
    let destination = reply_destination(request, source, buggy, false);
    Ok(finish(
        ReplyKind::Offer(route),
        message,
        request,
        destination,
        file,
        notices,
    ))
}

/// The boot server's DHCPACK answering `request`, a DHCPREQUEST that arrived on
/// port 4011 from `source` (checked by the caller: on the served network).
pub fn boot_server_ack(
    config: &ProxyConfig<'_>,
    server_ip: Ipv4Addr,
    request: &Message,
    source: SocketAddrV4,
    grant: &AccessGrant,
) -> Result<ProxyReply, DropReason> {
    let mut notices = Vec::new();
    let file = boot_file(config, server_ip, request, grant, &mut notices)?;
    let mut message = reply_header(config, request, server_ip, &file);
    message.ciaddr = request.ciaddr;
    let vendor_options = pxe::boot_item(&request.options).map(pxe::vendor_options_boot_item);
    boot_options(
        &mut message.options,
        MessageType::Ack,
        server_ip,
        pxe::PXE_CLIENT_CLASS,
        request,
        vendor_options,
        &file,
    );
    Ok(finish(
        ReplyKind::BootServerAck,
        message,
        request,
        source,
        file,
        notices,
    ))
}

/// The boot file for this client: the authorisation server's `File:`, else its
/// `[bootfile]` entry.
fn boot_file(
    config: &ProxyConfig<'_>,
    server_ip: Ipv4Addr,
    request: &Message,
    grant: &AccessGrant,
    notices: &mut Vec<Notice>,
) -> Result<String, DropReason> {
    if let Some(file) = &grant.boot_file {
        return Ok(file.clone());
    }
    let options = &request.options;
    let mac = request.client_mac();
    let choice = pxe::choose_boot_file(
        config.boot_files,
        pxe::client_architecture(options),
        pxe::is_ipxe(options),
    );
    match choice {
        BootFileChoice::None { arch } => Err(DropReason::NoBootFile { mac, arch }),
        BootFileChoice::IpxeLoaderRefused { file } => {
            Err(DropReason::IpxeLoaderRefused { mac, file })
        }
        BootFileChoice::DefaultForUnlistedArch { arch, file } => {
            notices.push(Notice::DefaultBootFile {
                mac,
                arch,
                file: file.clone(),
            });
            Ok(file)
        }
        // iPXE fetches its script from the HTTP service when it runs, as the
        // DHCP service tells it.
        BootFileChoice::ForIpxe { file } => Ok(match config.http {
            Some(http) => http.url(&file, server_ip),
            None => file,
        }),
        BootFileChoice::ForArch { file, .. } | BootFileChoice::Default { file } => Ok(file),
    }
}

/// The header both answers share: no address for the client, this server as
/// the one to fetch the file from.
fn reply_header(
    config: &ProxyConfig<'_>,
    request: &Message,
    server_ip: Ipv4Addr,
    file: &str,
) -> Message {
    Message {
        op: OP_BOOTREPLY,
        htype: request.htype,
        hlen: request.hlen,
        hops: 0,
        xid: request.xid,
        secs: 0,
        flags: request.flags,
        ciaddr: Ipv4Addr::UNSPECIFIED,
        yiaddr: Ipv4Addr::UNSPECIFIED,
        // EDK2 reads its TFTP server from siaddr, and reads option 54 instead
        // without checking it is there: siaddr is always set.
        siaddr: server_ip,
        giaddr: request.giaddr,
        chaddr: request.chaddr,
        sname: config.server_name.as_bytes().to_vec(),
        // A name the field cannot hold whole goes in option 67 alone: an empty
        // `file` lets iPXE read option 67, a cut one would be fetched as cut.
        file: if file.len() < 128 {
            file.as_bytes().to_vec()
        } else {
            Vec::new()
        },
        ..Message::default()
    }
}

/// The options of either answer, essentials first so that a small option-57
/// limit only ever cuts the echoes.
fn boot_options(
    o: &mut Options,
    kind: MessageType,
    server_ip: Ipv4Addr,
    class: &[u8],
    request: &Message,
    vendor_options: Option<Vec<u8>>,
    file: &str,
) {
    let asked = &request.options;
    o.set(tag::MESSAGE_TYPE, [kind.to_byte()]);
    // EDK2 discards an offer without a server identifier before looking at it.
    o.set(tag::SERVER_ID, server_ip.octets());
    o.set(tag::VENDOR_CLASS, class.to_vec());
    if let Some(machine_id) = asked.client_machine_id() {
        o.set(tag::CLIENT_UUID, machine_id.to_vec());
    }
    if let Some(vendor_options) = vendor_options {
        o.set(tag::VENDOR_SPECIFIC, vendor_options);
    }
    // NUL-terminated: EDK2 writes a NUL after an option 67 that does not end
    // with one, over the first byte of the option that follows.
    let mut name = file.as_bytes().to_vec();
    name.push(0);
    o.set(tag::BOOT_FILE_NAME, name);
    // The client identifier (RFC 6842), then relay agent information, last
    // (RFC 3046 §2.2).
    if let Some(client_id) = asked.client_id() {
        o.set(tag::CLIENT_ID, client_id.to_vec());
    }
    if let Some(relay_info) = asked.relay_agent_info() {
        o.set(tag::RELAY_AGENT_INFO, relay_info.to_vec());
    }
}

fn finish(
    kind: ReplyKind,
    mut message: Message,
    request: &Message,
    destination: SocketAddrV4,
    file: String,
    mut notices: Vec<Notice>,
) -> ProxyReply {
    let emitted = message.emit(wire::max_reply_len(&request.options));
    for omitted in &emitted.omitted {
        message.options.remove(*omitted);
    }
    if !emitted.omitted.is_empty() {
        notices.push(Notice::OptionsOmitted {
            mac: request.client_mac(),
            tags: emitted.omitted,
        });
    }
    ProxyReply {
        kind,
        message,
        bytes: emitted.bytes,
        destination,
        file,
        notices,
    }
}

#[cfg(test)]
#[path = "proxy_tests.rs"]
mod tests;
