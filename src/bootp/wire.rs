//! BOOTP/DHCP messages on the wire (RFC 951, 1542, 2131, 2132, 3396).
//!
//! Two layers, in the smoltcp style:
//! - [`Packet`], a checked view over a byte slice: once `new_checked` accepts the
//!   slice, every fixed-header accessor is in bounds.
//! - [`Message`], the parsed representation, with [`Message::parse`] and
//!   [`Message::emit`].
//!
//! Parsing is total: every byte string yields a `Message` or a [`ParseError`],
//! never a panic. It is also lenient the way field-proven servers are: a missing
//! END option, garbage after END and long runs of pad bytes are all accepted,
//! because PXE ROMs and embedded stacks send such packets and expect an answer.
//! Options carried in `file`/`sname` (option 52, overload) are read, and repeated
//! tags are joined into one value (RFC 3396), so the rest of the server only ever
//! sees one value per tag.

use std::fmt;
use std::net::Ipv4Addr;

use crate::types::MacAddr;

/// UDP port servers (and relays) listen on.
pub const SERVER_PORT: u16 = 67;
/// UDP port clients listen on.
pub const CLIENT_PORT: u16 = 68;
/// RFC 1497 magic cookie that opens the options area.
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// Fixed header, without the cookie.
pub const HEADER_LEN: usize = 236;
/// Fixed header plus the cookie: where the options start.
pub const OPTIONS_OFFSET: usize = HEADER_LEN + MAGIC_COOKIE.len();
/// RFC 951 / RFC 1542 §3.5: some relays and clients drop smaller BOOTP messages.
pub const MIN_BOOTP_MESSAGE_LEN: usize = 300;
/// RFC 2132 §9.10: the smallest "maximum message size" a client may announce.
pub const MIN_MAX_MESSAGE_SIZE: u16 = 576;
/// IPv4 header (without options) plus UDP header.
pub const IP_UDP_HEADERS_LEN: usize = 28;
/// `flags` bit asking for a broadcast reply (RFC 1542 §3.1.1).
pub const FLAG_BROADCAST: u16 = 0x8000;

/// BOOTP `op` codes.
pub const OP_BOOTREQUEST: u8 = 1;
pub const OP_BOOTREPLY: u8 = 2;
/// ARP hardware type of Ethernet, the only one bootd serves.
pub const HTYPE_ETHERNET: u8 = 1;

/// Byte offsets of the fixed header fields.
mod field {
    use std::ops::Range;
    pub const OP: usize = 0;
    pub const HTYPE: usize = 1;
    pub const HLEN: usize = 2;
    pub const HOPS: usize = 3;
    pub const XID: Range<usize> = 4..8;
    pub const SECS: Range<usize> = 8..10;
    pub const FLAGS: Range<usize> = 10..12;
    pub const CIADDR: Range<usize> = 12..16;
    pub const YIADDR: Range<usize> = 16..20;
    pub const SIADDR: Range<usize> = 20..24;
    pub const GIADDR: Range<usize> = 24..28;
    pub const CHADDR: Range<usize> = 28..44;
    pub const SNAME: Range<usize> = 44..108;
    pub const FILE: Range<usize> = 108..236;
    pub const COOKIE: Range<usize> = 236..240;
}

/// Option tags bootd reads or writes (RFC 2132 unless noted).
pub mod tag {
    pub const PAD: u8 = 0;
    pub const SUBNET_MASK: u8 = 1;
    pub const ROUTER: u8 = 3;
    pub const DNS_SERVERS: u8 = 6;
    pub const HOST_NAME: u8 = 12;
    #[cfg(test)]
    pub const BOOT_FILE_SIZE: u8 = 13;
    pub const DOMAIN_NAME: u8 = 15;
    pub const BROADCAST_ADDRESS: u8 = 28;
    pub const VENDOR_SPECIFIC: u8 = 43;
    pub const REQUESTED_IP: u8 = 50;
    pub const LEASE_TIME: u8 = 51;
    pub const OVERLOAD: u8 = 52;
    pub const MESSAGE_TYPE: u8 = 53;
    pub const SERVER_ID: u8 = 54;
    pub const PARAMETER_REQUEST_LIST: u8 = 55;
    pub const MESSAGE: u8 = 56;
    pub const MAX_MESSAGE_SIZE: u8 = 57;
    pub const RENEWAL_TIME: u8 = 58;
    pub const REBINDING_TIME: u8 = 59;
    pub const VENDOR_CLASS: u8 = 60;
    pub const CLIENT_ID: u8 = 61;
    pub const TFTP_SERVER_NAME: u8 = 66;
    pub const BOOT_FILE_NAME: u8 = 67;
    /// RFC 3004.
    pub const USER_CLASS: u8 = 77;
    /// RFC 3046.
    pub const RELAY_AGENT_INFO: u8 = 82;
    /// RFC 4578.
    pub const CLIENT_ARCH: u8 = 93;
    /// RFC 4578.
    #[cfg(test)]
    pub const CLIENT_NDI: u8 = 94;
    /// RFC 4578.
    pub const CLIENT_UUID: u8 = 97;
    /// iPXE's encapsulated options; its presence alone says "this is iPXE".
    pub const IPXE_ENCAPSULATED: u8 = 175;
    pub const END: u8 = 255;
}

/// Why a byte string is not a BOOTP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than the fixed BOOTP header.
    TooShort { len: usize },
    /// An option's length runs past the end of the area holding it.
    TruncatedOption {
        area: OptionArea,
        tag: u8,
        offset: usize,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::TooShort { len } => write!(
                f,
                "{len}-byte datagram is shorter than the {HEADER_LEN}-byte BOOTP header"
            ),
            ParseError::TruncatedOption { area, tag, offset } => write!(
                f,
                "option {tag} at byte {offset} of the {area} area runs past its end"
            ),
        }
    }
}

impl std::error::Error for ParseError {}

/// Where an option was found: the options field proper, or `file`/`sname` via overload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionArea {
    Options,
    File,
    Sname,
}

impl fmt::Display for OptionArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OptionArea::Options => "options",
            OptionArea::File => "file",
            OptionArea::Sname => "sname",
        })
    }
}

/// DHCP message types (option 53, RFC 2132 §9.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Discover,
    Offer,
    Request,
    Decline,
    Ack,
    Nak,
    Release,
    Inform,
    Other(u8),
}

impl MessageType {
    pub fn from_byte(byte: u8) -> Self {
        match byte {
            1 => MessageType::Discover,
            2 => MessageType::Offer,
            3 => MessageType::Request,
            4 => MessageType::Decline,
            5 => MessageType::Ack,
            6 => MessageType::Nak,
            7 => MessageType::Release,
            8 => MessageType::Inform,
            other => MessageType::Other(other),
        }
    }

    pub fn to_byte(self) -> u8 {
        match self {
            MessageType::Discover => 1,
            MessageType::Offer => 2,
            MessageType::Request => 3,
            MessageType::Decline => 4,
            MessageType::Ack => 5,
            MessageType::Nak => 6,
            MessageType::Release => 7,
            MessageType::Inform => 8,
            MessageType::Other(byte) => byte,
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageType::Discover => f.write_str("DHCPDISCOVER"),
            MessageType::Offer => f.write_str("DHCPOFFER"),
            MessageType::Request => f.write_str("DHCPREQUEST"),
            MessageType::Decline => f.write_str("DHCPDECLINE"),
            MessageType::Ack => f.write_str("DHCPACK"),
            MessageType::Nak => f.write_str("DHCPNAK"),
            MessageType::Release => f.write_str("DHCPRELEASE"),
            MessageType::Inform => f.write_str("DHCPINFORM"),
            MessageType::Other(byte) => write!(f, "DHCP message type {byte}"),
        }
    }
}

/// A checked view over the fixed header of a BOOTP message.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Accepts any buffer holding at least the fixed header.
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(ParseError::TooShort { len });
        }
        Ok(Packet { buffer })
    }

    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn array4(&self, range: std::ops::Range<usize>) -> [u8; 4] {
        let mut out = [0u8; 4];
        out.copy_from_slice(&self.bytes()[range]);
        out
    }

    fn u16_at(&self, range: std::ops::Range<usize>) -> u16 {
        let b = &self.bytes()[range];
        u16::from_be_bytes([b[0], b[1]])
    }

    pub fn op(&self) -> u8 {
        self.bytes()[field::OP]
    }
    pub fn htype(&self) -> u8 {
        self.bytes()[field::HTYPE]
    }
    pub fn hlen(&self) -> u8 {
        self.bytes()[field::HLEN]
    }
    pub fn hops(&self) -> u8 {
        self.bytes()[field::HOPS]
    }
    pub fn xid(&self) -> u32 {
        u32::from_be_bytes(self.array4(field::XID))
    }
    pub fn secs(&self) -> u16 {
        self.u16_at(field::SECS)
    }
    pub fn flags(&self) -> u16 {
        self.u16_at(field::FLAGS)
    }
    pub fn ciaddr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.array4(field::CIADDR))
    }
    pub fn yiaddr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.array4(field::YIADDR))
    }
    pub fn siaddr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.array4(field::SIADDR))
    }
    pub fn giaddr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.array4(field::GIADDR))
    }
    pub fn chaddr(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out.copy_from_slice(&self.bytes()[field::CHADDR]);
        out
    }
    pub fn sname_field(&self) -> &[u8] {
        &self.bytes()[field::SNAME]
    }
    pub fn file_field(&self) -> &[u8] {
        &self.bytes()[field::FILE]
    }
    /// True when the four bytes after the header are the DHCP magic cookie.
    pub fn has_magic_cookie(&self) -> bool {
        self.bytes().get(field::COOKIE) == Some(&MAGIC_COOKIE[..])
    }
    /// The options area (empty when there is no cookie: a pre-RFC 1497 BOOTP packet).
    pub fn options_area(&self) -> &[u8] {
        if self.has_magic_cookie() {
            self.bytes().get(OPTIONS_OFFSET..).unwrap_or(&[])
        } else {
            &[]
        }
    }

    /// Option 53's value in the options area, found without parsing the rest
    /// (for counting requests): `None` for plain BOOTP or a malformed area.
    pub fn message_type_byte(&self) -> Option<u8> {
        let mut rest = self.options_area();
        while let Some((&code, tail)) = rest.split_first() {
            match code {
                0 => rest = tail,
                255 => return None,
                _ => {
                    let (&len, tail) = tail.split_first()?;
                    let value = tail.get(..usize::from(len))?;
                    if code == 53 {
                        return value.first().copied();
                    }
                    rest = tail.get(usize::from(len)..)?;
                }
            }
        }
        None
    }
}

/// Options of one message: one value per tag, in first-seen order.
///
/// Repeated tags are concatenated on parse (RFC 3396 §7); values longer than 255
/// bytes are split into several TLVs on emit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    entries: Vec<(u8, Vec<u8>)>,
}

impl Options {
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `tag`, if present.
    pub fn get(&self, tag: u8) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| v.as_slice())
    }

    pub fn contains(&self, tag: u8) -> bool {
        self.get(tag).is_some()
    }

    /// Sets `tag` to `value`, replacing any earlier value but keeping its position.
    pub fn set(&mut self, tag: u8, value: impl Into<Vec<u8>>) {
        let value = value.into();
        match self.entries.iter_mut().find(|(t, _)| *t == tag) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((tag, value)),
        }
    }

    /// Appends bytes to `tag` (RFC 3396 concatenation).
    fn append(&mut self, tag: u8, bytes: &[u8]) {
        match self.entries.iter_mut().find(|(t, _)| *t == tag) {
            Some(entry) => entry.1.extend_from_slice(bytes),
            None => self.entries.push((tag, bytes.to_vec())),
        }
    }

    pub fn remove(&mut self, tag: u8) -> Option<Vec<u8>> {
        let index = self.entries.iter().position(|(t, _)| *t == tag)?;
        Some(self.entries.remove(index).1)
    }

    /// (tag, value) pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &[u8])> {
        self.entries.iter().map(|(t, v)| (*t, v.as_slice()))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Option 53.
    pub fn message_type(&self) -> Option<MessageType> {
        self.get(tag::MESSAGE_TYPE)
            .and_then(|v| v.first())
            .map(|b| MessageType::from_byte(*b))
    }

    fn ipv4(&self, tag: u8) -> Option<Ipv4Addr> {
        let v = self.get(tag)?;
        let bytes: [u8; 4] = v.try_into().ok()?;
        Some(Ipv4Addr::from(bytes))
    }

    /// Option 50.
    pub fn requested_ip(&self) -> Option<Ipv4Addr> {
        self.ipv4(tag::REQUESTED_IP)
    }

    /// Option 54.
    pub fn server_id(&self) -> Option<Ipv4Addr> {
        self.ipv4(tag::SERVER_ID)
    }

    /// Option 55 (empty when absent).
    pub fn parameter_request_list(&self) -> &[u8] {
        self.get(tag::PARAMETER_REQUEST_LIST).unwrap_or(&[])
    }

    /// True when option 55 lists `tag`.
    pub fn requests(&self, tag: u8) -> bool {
        self.parameter_request_list().contains(&tag)
    }

    /// Option 57, when it is well formed.
    pub fn max_message_size(&self) -> Option<u16> {
        let v = self.get(tag::MAX_MESSAGE_SIZE)?;
        let bytes: [u8; 2] = v.try_into().ok()?;
        Some(u16::from_be_bytes(bytes))
    }

    /// Option 60.
    pub fn vendor_class(&self) -> Option<&[u8]> {
        self.get(tag::VENDOR_CLASS)
    }

    /// Option 61.
    pub fn client_id(&self) -> Option<&[u8]> {
        self.get(tag::CLIENT_ID)
    }

    /// Option 77 as a list of classes. RFC 3004 says each class is length-prefixed,
    /// but iPXE sends its class as bare text; like dnsmasq, a value that does not
    /// decode as counted strings is taken as one class.
    pub fn user_classes(&self) -> Vec<&[u8]> {
        let Some(value) = self.get(tag::USER_CLASS) else {
            return Vec::new();
        };
        let mut classes = Vec::new();
        let mut rest = value;
        while let Some((&len, tail)) = rest.split_first() {
            let len = usize::from(len);
            if len == 0 || len > tail.len() {
                return vec![value];
            }
            classes.push(&tail[..len]);
            rest = &tail[len..];
        }
        classes
    }

    /// Option 82, raw (echoed verbatim).
    pub fn relay_agent_info(&self) -> Option<&[u8]> {
        self.get(tag::RELAY_AGENT_INFO)
    }

    /// Option 93: the architecture types the client supports, in its order of preference.
    pub fn client_architectures(&self) -> Vec<u16> {
        self.get(tag::CLIENT_ARCH)
            .unwrap_or(&[])
            .chunks_exact(2)
            .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
            .collect()
    }

    /// Option 94: (interface type, major, minor), when it has its 3 bytes.
    #[cfg(test)]
    pub fn client_network_interface(&self) -> Option<(u8, u8, u8)> {
        match self.get(tag::CLIENT_NDI)? {
            [kind, major, minor] => Some((*kind, *major, *minor)),
            _ => None,
        }
    }

    /// Option 97, raw (type byte + identifier).
    pub fn client_machine_id(&self) -> Option<&[u8]> {
        self.get(tag::CLIENT_UUID)
    }

    /// Option 43, raw.
    #[cfg(test)]
    pub fn vendor_specific(&self) -> Option<&[u8]> {
        self.get(tag::VENDOR_SPECIFIC)
    }

    /// Option 52: which of `file` (bit 0) and `sname` (bit 1) carry options.
    fn overload(&self) -> u8 {
        self.get(tag::OVERLOAD)
            .and_then(|v| v.first())
            .copied()
            .unwrap_or(0)
            & 0x03
    }
}

/// Reads TLVs from `area` into `options`. Pads are skipped however many there are;
/// END or the end of the area finishes the list; bytes after END are ignored.
fn read_options(area: &[u8], which: OptionArea, options: &mut Options) -> Result<(), ParseError> {
    let mut offset = 0;
    while let Some(&code) = area.get(offset) {
        match code {
            tag::PAD => offset += 1,
            tag::END => return Ok(()),
            _ => {
                let truncated = ParseError::TruncatedOption {
                    area: which,
                    tag: code,
                    offset,
                };
                let len = usize::from(*area.get(offset + 1).ok_or(truncated.clone())?);
                let value = area.get(offset + 2..offset + 2 + len).ok_or(truncated)?;
                options.append(code, value);
                offset += 2 + len;
            }
        }
    }
    Ok(())
}

/// Bytes of a NUL-terminated text field up to its first NUL.
fn c_string(field: &[u8]) -> Vec<u8> {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    field[..end].to_vec()
}

/// A parsed BOOTP/DHCP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub op: u8,
    pub htype: u8,
    pub hlen: u8,
    pub hops: u8,
    pub xid: u32,
    pub secs: u16,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub chaddr: [u8; 16],
    /// Server host name, without its NUL; empty when the field carries options.
    pub sname: Vec<u8>,
    /// Boot file name, without its NUL; empty when the field carries options.
    pub file: Vec<u8>,
    /// False for an RFC 951 packet without the magic cookie (then there are no options).
    pub has_magic_cookie: bool,
    pub options: Options,
}

impl Default for Message {
    fn default() -> Self {
        Message {
            op: OP_BOOTREQUEST,
            htype: HTYPE_ETHERNET,
            hlen: 6,
            hops: 0,
            xid: 0,
            secs: 0,
            flags: 0,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            chaddr: [0; 16],
            sname: Vec::new(),
            file: Vec::new(),
            has_magic_cookie: true,
            options: Options::new(),
        }
    }
}

impl Message {
    /// Parses one datagram. Options are read from the options field, then from
    /// `file` and `sname` when option 52 says so (the order RFC 3396 §7 gives for
    /// concatenation).
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        let packet = Packet::new_checked(bytes)?;
        let mut options = Options::new();
        read_options(packet.options_area(), OptionArea::Options, &mut options)?;
        let overload = options.overload();
        let file_has_options = overload & 0x01 != 0;
        let sname_has_options = overload & 0x02 != 0;
        if file_has_options {
            read_options(packet.file_field(), OptionArea::File, &mut options)?;
        }
        if sname_has_options {
            read_options(packet.sname_field(), OptionArea::Sname, &mut options)?;
        }
        Ok(Message {
            op: packet.op(),
            htype: packet.htype(),
            hlen: packet.hlen(),
            hops: packet.hops(),
            xid: packet.xid(),
            secs: packet.secs(),
            flags: packet.flags(),
            ciaddr: packet.ciaddr(),
            yiaddr: packet.yiaddr(),
            siaddr: packet.siaddr(),
            giaddr: packet.giaddr(),
            chaddr: packet.chaddr(),
            sname: if sname_has_options {
                Vec::new()
            } else {
                c_string(packet.sname_field())
            },
            file: if file_has_options {
                Vec::new()
            } else {
                c_string(packet.file_field())
            },
            has_magic_cookie: packet.has_magic_cookie(),
            options,
        })
    }

    /// The client's MAC: the first 6 bytes of `chaddr`.
    pub fn client_mac(&self) -> MacAddr {
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&self.chaddr[..6]);
        MacAddr(mac)
    }

    pub fn message_type(&self) -> Option<MessageType> {
        self.options.message_type()
    }

    #[cfg(test)]
    pub fn broadcast_flag(&self) -> bool {
        self.flags & FLAG_BROADCAST != 0
    }

    /// Serialises the message into at most `max_len` bytes (never less than the
    /// BOOTP minimum of 300: the caller derives `max_len` from option 57, which
    /// cannot go below 576). Options are written in order; one that would not fit
    /// (with room left for END) is left out and its tag returned in `omitted`, so
    /// the caller can put its essential options first and log what was lost.
    /// `sname` and `file` are cut to leave room for their terminating NUL.
    pub fn emit(&self, max_len: usize) -> Emitted {
        let max_len = max_len.max(MIN_BOOTP_MESSAGE_LEN);
        let mut out = vec![0u8; OPTIONS_OFFSET];
        out[field::OP] = self.op;
        out[field::HTYPE] = self.htype;
        out[field::HLEN] = self.hlen;
        out[field::HOPS] = self.hops;
        out[field::XID].copy_from_slice(&self.xid.to_be_bytes());
        out[field::SECS].copy_from_slice(&self.secs.to_be_bytes());
        out[field::FLAGS].copy_from_slice(&self.flags.to_be_bytes());
        out[field::CIADDR].copy_from_slice(&self.ciaddr.octets());
        out[field::YIADDR].copy_from_slice(&self.yiaddr.octets());
        out[field::SIADDR].copy_from_slice(&self.siaddr.octets());
        out[field::GIADDR].copy_from_slice(&self.giaddr.octets());
        out[field::CHADDR].copy_from_slice(&self.chaddr);
        write_c_string(&mut out[field::SNAME], &self.sname);
        write_c_string(&mut out[field::FILE], &self.file);
        let mut omitted = Vec::new();
        if self.has_magic_cookie {
            out[field::COOKIE].copy_from_slice(&MAGIC_COOKIE);
            for (code, value) in self.options.iter() {
                if code == tag::PAD || code == tag::END {
                    continue;
                }
                let encoded = encode_option(code, value);
                // One byte stays free for END.
                if out.len() + encoded.len() < max_len {
                    out.extend_from_slice(&encoded);
                } else {
                    omitted.push(code);
                }
            }
            out.push(tag::END);
        } else {
            out.truncate(HEADER_LEN);
        }
        if out.len() < MIN_BOOTP_MESSAGE_LEN {
            out.resize(MIN_BOOTP_MESSAGE_LEN, tag::PAD);
        }
        Emitted {
            bytes: out,
            omitted,
        }
    }
}

/// What [`Message::emit`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    pub bytes: Vec<u8>,
    /// Tags left out because the client's size limit was reached.
    pub omitted: Vec<u8>,
}

/// Copies `text` into a fixed field, keeping at least one NUL at the end (ROMs
/// read `file` as a C string and run past a field without one).
fn write_c_string(field: &mut [u8], text: &[u8]) {
    let room = field.len().saturating_sub(1);
    let len = text.len().min(room);
    field[..len].copy_from_slice(&text[..len]);
}

/// One option as TLVs; values over 255 bytes become several TLVs (RFC 3396).
pub fn encode_option(code: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 2);
    if value.is_empty() {
        out.extend_from_slice(&[code, 0]);
        return out;
    }
    for chunk in value.chunks(255) {
        out.push(code);
        // chunks(255) bounds the length.
        out.push(u8::try_from(chunk.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(chunk);
    }
    out
}

/// The largest reply a client accepts, as a DHCP message (without IP/UDP headers).
/// Without option 57 the RFC 2131 default of 576-byte datagrams applies; a value
/// under 576 is illegal and treated as 576.
pub fn max_reply_len(request: &Options) -> usize {
    let datagram = request
        .max_message_size()
        .unwrap_or(MIN_MAX_MESSAGE_SIZE)
        .max(MIN_MAX_MESSAGE_SIZE);
    usize::from(datagram) - IP_UDP_HEADERS_LEN
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Hex with whitespace and `#` comments (to the end of the line) into bytes.
    pub(crate) fn hex(text: &str) -> Vec<u8> {
        let digits: String = text
            .lines()
            .map(|line| line.split('#').next().unwrap_or(""))
            .flat_map(|line| line.chars())
            .filter(|c| c.is_ascii_hexdigit())
            .collect();
        assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
        (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn option_53_is_found_past_pads_and_other_options_without_a_full_parse() {
        let with = |options: &str| {
            let mut b = vec![0u8; HEADER_LEN];
            b.extend_from_slice(&MAGIC_COOKIE);
            b.extend(hex(options));
            b
        };
        let peek = |b: &[u8]| Packet::new_checked(b).unwrap().message_type_byte();
        // pad, option 12 "pc", option 53 REQUEST, end
        assert_eq!(peek(&with("00 0c 02 7063 35 01 03 ff")), Some(3));
        // no option 53 (plain BOOTP), or after the end option
        assert_eq!(peek(&with("0c 02 7063 ff 35 01 01")), None);
        // truncated: option 53's length runs past the datagram
        assert_eq!(peek(&with("35 05 01")), None);
        // no magic cookie: no options area at all
        assert_eq!(peek(&vec![0u8; HEADER_LEN]), None);
    }

    /// A 236-byte header: the given fields, zero elsewhere.
    fn header(op: u8, xid: u32, flags: u16, mac: [u8; 6]) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b[0] = op;
        b[1] = 1;
        b[2] = 6;
        b[4..8].copy_from_slice(&xid.to_be_bytes());
        b[10..12].copy_from_slice(&flags.to_be_bytes());
        b[28..34].copy_from_slice(&mac);
        b
    }

    #[test]
    fn too_short_is_a_typed_error() {
        assert_eq!(
            Message::parse(&[1; 235]),
            Err(ParseError::TooShort { len: 235 })
        );
        assert_eq!(Message::parse(&[]), Err(ParseError::TooShort { len: 0 }));
    }

    #[test]
    fn header_without_cookie_is_plain_bootp_without_options() {
        let mut b = header(1, 0x01020304, 0x8000, [2, 0, 0, 0, 0, 1]);
        b.extend_from_slice(&[0; 64]); // RFC 951 vend field, no cookie
        let m = Message::parse(&b).unwrap();
        assert!(!m.has_magic_cookie);
        assert!(m.options.is_empty());
        assert_eq!(m.xid, 0x01020304);
        assert!(m.broadcast_flag());
        assert_eq!(m.client_mac(), MacAddr([2, 0, 0, 0, 0, 1]));
    }

    #[test]
    fn header_fields_decode() {
        let b = hex("
            01 01 06 02          # op BOOTREQUEST, htype Ethernet, hlen 6, hops 2
            de ad be ef          # xid
            00 05 80 00          # secs 5, flags broadcast
            0a 00 00 05          # ciaddr 10.0.0.5
            0a 00 00 06          # yiaddr
            0a 00 00 07          # siaddr
            0a 00 00 08          # giaddr
            525400123456 00000000000000000000  # chaddr
        ");
        let mut b = b;
        b.resize(HEADER_LEN, 0);
        b[44..48].copy_from_slice(b"srv\0");
        b[108..115].copy_from_slice(b"boot.0\0");
        b.extend_from_slice(&MAGIC_COOKIE);
        b.extend_from_slice(&[53, 1, 1, 255]);
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.hops, 2);
        assert_eq!(m.xid, 0xdeadbeef);
        assert_eq!(m.secs, 5);
        assert_eq!(m.flags, 0x8000);
        assert_eq!(m.ciaddr, Ipv4Addr::new(10, 0, 0, 5));
        assert_eq!(m.yiaddr, Ipv4Addr::new(10, 0, 0, 6));
        assert_eq!(m.siaddr, Ipv4Addr::new(10, 0, 0, 7));
        assert_eq!(m.giaddr, Ipv4Addr::new(10, 0, 0, 8));
        assert_eq!(m.sname, b"srv");
        assert_eq!(m.file, b"boot.0");
        assert_eq!(m.message_type(), Some(MessageType::Discover));
    }

    fn with_options(options: &[u8]) -> Vec<u8> {
        let mut b = header(1, 1, 0, [2, 0, 0, 0, 0, 1]);
        b.extend_from_slice(&MAGIC_COOKIE);
        b.extend_from_slice(options);
        b
    }

    #[test]
    fn missing_end_is_accepted() {
        let m = Message::parse(&with_options(&[53, 1, 1, 50, 4, 10, 0, 0, 9])).unwrap();
        assert_eq!(m.message_type(), Some(MessageType::Discover));
        assert_eq!(m.options.requested_ip(), Some(Ipv4Addr::new(10, 0, 0, 9)));
    }

    #[test]
    fn garbage_after_end_is_ignored() {
        let m = Message::parse(&with_options(&[53, 1, 3, 255, 77, 200, 1])).unwrap();
        assert_eq!(m.message_type(), Some(MessageType::Request));
        assert_eq!(m.options.len(), 1);
    }

    #[test]
    fn long_pad_runs_are_accepted() {
        // pybootd refused more than 255 pads in a row; 1000 pads are still just pads.
        let mut opts = vec![0u8; 1000];
        opts.extend_from_slice(&[53, 1, 1, 255]);
        let m = Message::parse(&with_options(&opts)).unwrap();
        assert_eq!(m.message_type(), Some(MessageType::Discover));
    }

    #[test]
    fn truncated_option_is_a_typed_error() {
        assert_eq!(
            Message::parse(&with_options(&[53, 1, 1, 60, 10, b'P'])),
            Err(ParseError::TruncatedOption {
                area: OptionArea::Options,
                tag: 60,
                offset: 3
            })
        );
        // A tag as the very last byte, without its length.
        assert!(matches!(
            Message::parse(&with_options(&[53, 1, 1, 61])),
            Err(ParseError::TruncatedOption { tag: 61, .. })
        ));
    }

    #[test]
    fn repeated_tags_concatenate_rfc3396() {
        let m = Message::parse(&with_options(&[
            43, 2, 1, 2, // first part
            53, 1, 1, // something else in between
            43, 1, 3, // second part
            255,
        ]))
        .unwrap();
        assert_eq!(m.options.vendor_specific(), Some(&[1u8, 2, 3][..]));
        // First-seen order is kept.
        let tags: Vec<u8> = m.options.iter().map(|(t, _)| t).collect();
        assert_eq!(tags, vec![43, 53]);
    }

    #[test]
    fn overload_reads_file_then_sname() {
        let mut b = header(1, 1, 0, [2, 0, 0, 0, 0, 1]);
        // sname carries option 12, file carries option 60 then END then junk.
        b[44..50].copy_from_slice(&[12, 3, b'a', b'b', b'c', 255]);
        b[108..115].copy_from_slice(&[60, 3, b'P', b'X', b'E', 255, 0x42]);
        b.extend_from_slice(&MAGIC_COOKIE);
        b.extend_from_slice(&[53, 1, 1, 52, 1, 3, 255]);
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.options.vendor_class(), Some(&b"PXE"[..]));
        assert_eq!(m.options.get(tag::HOST_NAME), Some(&b"abc"[..]));
        assert!(m.file.is_empty(), "file carried options, not a name");
        assert!(m.sname.is_empty());
        let tags: Vec<u8> = m.options.iter().map(|(t, _)| t).collect();
        assert_eq!(tags, vec![53, 52, 60, 12]);
    }

    #[test]
    fn overload_file_only_keeps_sname_text() {
        let mut b = header(1, 1, 0, [2, 0, 0, 0, 0, 1]);
        b[44..48].copy_from_slice(b"srv\0");
        b[108..111].copy_from_slice(&[60, 1, b'X']); // no END: area ends the list
        b.extend_from_slice(&MAGIC_COOKIE);
        b.extend_from_slice(&[52, 1, 1]);
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.sname, b"srv");
        assert_eq!(m.options.vendor_class(), Some(&b"X"[..]));
    }

    #[test]
    fn truncated_option_in_overloaded_file_names_the_area() {
        let mut b = header(1, 1, 0, [2, 0, 0, 0, 0, 1]);
        b[235] = 60; // last byte of file: a tag without its length
        b.extend_from_slice(&MAGIC_COOKIE);
        b.extend_from_slice(&[52, 1, 1, 255]);
        assert!(matches!(
            Message::parse(&b),
            Err(ParseError::TruncatedOption {
                area: OptionArea::File,
                tag: 60,
                offset: 127
            })
        ));
    }

    #[test]
    fn typed_accessors() {
        let m = Message::parse(&with_options(&[
            53, 1, 3, // REQUEST
            50, 4, 192, 168, 1, 25, // requested IP
            54, 4, 192, 168, 1, 1, // server id
            55, 3, 1, 3, 6, // PRL
            57, 2, 0x05, 0xdc, // max size 1500
            60, 9, b'P', b'X', b'E', b'C', b'l', b'i', b'e', b'n', b't', // vendor class
            61, 7, 1, 2, 0, 0, 0, 0, 1, // client id
            77, 4, b'i', b'P', b'X', b'E', // user class, iPXE's bare form
            82, 4, 1, 2, 0xab, 0xcd, // relay agent info
            93, 4, 0, 7, 0, 0, // arch list
            94, 3, 1, 3, 16, // NDI
            97, 3, 0, 1, 2, // short UUID
            43, 3, 6, 1, 8, // vendor specific
            255,
        ]))
        .unwrap();
        let o = &m.options;
        assert_eq!(o.requested_ip(), Some(Ipv4Addr::new(192, 168, 1, 25)));
        assert_eq!(o.server_id(), Some(Ipv4Addr::new(192, 168, 1, 1)));
        assert_eq!(o.parameter_request_list(), &[1, 3, 6]);
        assert!(o.requests(6) && !o.requests(15));
        assert_eq!(o.max_message_size(), Some(1500));
        assert_eq!(o.vendor_class(), Some(&b"PXEClient"[..]));
        assert_eq!(o.client_id(), Some(&[1u8, 2, 0, 0, 0, 0, 1][..]));
        assert_eq!(o.user_classes(), vec![&b"iPXE"[..]]);
        assert_eq!(o.relay_agent_info(), Some(&[1u8, 2, 0xab, 0xcd][..]));
        assert_eq!(o.client_architectures(), vec![7, 0]);
        assert_eq!(o.client_network_interface(), Some((1, 3, 16)));
        assert_eq!(o.client_machine_id(), Some(&[0u8, 1, 2][..]));
        assert_eq!(o.vendor_specific(), Some(&[6u8, 1, 8][..]));
    }

    #[test]
    fn user_class_rfc3004_counted_form() {
        let m = Message::parse(&with_options(&[77, 6, 2, b'a', b'b', 2, b'c', b'd'])).unwrap();
        assert_eq!(m.options.user_classes(), vec![&b"ab"[..], &b"cd"[..]]);
    }

    #[test]
    fn malformed_fixed_size_options_read_as_absent() {
        let m = Message::parse(&with_options(&[50, 3, 1, 2, 3, 57, 1, 9, 94, 2, 1, 2])).unwrap();
        assert_eq!(m.options.requested_ip(), None);
        assert_eq!(m.options.max_message_size(), None);
        assert_eq!(m.options.client_network_interface(), None);
    }

    #[test]
    fn emit_pads_to_300_and_terminates_strings() {
        let mut m = Message {
            op: OP_BOOTREPLY,
            xid: 7,
            ..Message::default()
        };
        m.sname = vec![b's'; 100]; // longer than the field: cut, NUL kept
        m.file = b"pxelinux.0".to_vec();
        m.options.set(tag::MESSAGE_TYPE, [2]);
        let out = m.emit(548);
        assert_eq!(out.bytes.len(), 300);
        assert!(out.omitted.is_empty());
        assert_eq!(out.bytes[44 + 63], 0, "sname keeps its NUL");
        assert_eq!(out.bytes[44 + 62], b's');
        assert_eq!(&out.bytes[108..119], b"pxelinux.0\0");
        assert_eq!(&out.bytes[236..240], &MAGIC_COOKIE);
        assert_eq!(&out.bytes[240..244], &[53, 1, 2, 255]);
        assert!(out.bytes[244..].iter().all(|b| *b == 0));
        let back = Message::parse(&out.bytes).unwrap();
        assert_eq!(back.sname.len(), 63);
        assert_eq!(back.file, b"pxelinux.0");
    }

    #[test]
    fn emit_splits_long_options_and_parse_joins_them() {
        let mut m = Message::default();
        let long: Vec<u8> = (0..600u16).map(|i| (i % 251) as u8 + 1).collect();
        m.options.set(tag::VENDOR_SPECIFIC, long.clone());
        let out = m.emit(1500);
        // 255 + 255 + 90 bytes in three TLVs.
        assert_eq!(out.bytes[240], 43);
        assert_eq!(out.bytes[241], 255);
        assert_eq!(out.bytes[240 + 257], 43);
        assert_eq!(out.bytes[240 + 258], 255);
        assert_eq!(out.bytes[240 + 514], 43);
        assert_eq!(out.bytes[240 + 515], 90);
        let back = Message::parse(&out.bytes).unwrap();
        assert_eq!(back.options.vendor_specific(), Some(&long[..]));
    }

    #[test]
    fn emit_respects_the_size_limit() {
        let mut m = Message::default();
        m.options.set(tag::MESSAGE_TYPE, [5]);
        m.options.set(tag::VENDOR_SPECIFIC, vec![1u8; 320]);
        m.options.set(tag::SERVER_ID, [10, 0, 0, 1]);
        let out = m.emit(548);
        assert!(out.bytes.len() <= 548);
        assert_eq!(out.omitted, vec![43]);
        let back = Message::parse(&out.bytes).unwrap();
        assert_eq!(back.options.server_id(), Some(Ipv4Addr::new(10, 0, 0, 1)));
    }

    #[test]
    fn max_reply_len_follows_option_57() {
        let mut o = Options::new();
        assert_eq!(max_reply_len(&o), 548);
        o.set(tag::MAX_MESSAGE_SIZE, 1500u16.to_be_bytes());
        assert_eq!(max_reply_len(&o), 1472);
        o.set(tag::MAX_MESSAGE_SIZE, 300u16.to_be_bytes()); // illegal: below 576
        assert_eq!(max_reply_len(&o), 548);
    }
}
