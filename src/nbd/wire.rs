//! NBD messages on the wire (sans-IO): the fixed-newstyle handshake, option
//! requests and replies, transmission requests and simple replies, each parsed
//! from bytes and emitted to bytes. Every integer is big-endian. Parsing is total:
//! any input gives a value or a typed error, never a panic.

use std::fmt;

/// `NBDMAGIC`, the first eight bytes the server sends.
pub const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
/// `IHAVEOPT`: after the greeting's magic, and before every option request.
pub const IHAVEOPT: u64 = 0x4948_4156_454F_5054;
/// Before every option reply.
pub const OPTION_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
/// Before every transmission request.
pub const REQUEST_MAGIC: u32 = 0x2560_9513;
/// Before every simple reply.
pub const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;

/// Handshake flags (server) and client flags: the same two bits.
pub const FLAG_FIXED_NEWSTYLE: u16 = 1 << 0;
pub const FLAG_NO_ZEROES: u16 = 1 << 1;

/// Transmission flags.
pub const TX_HAS_FLAGS: u16 = 1 << 0;
pub const TX_READ_ONLY: u16 = 1 << 1;
pub const TX_SEND_FLUSH: u16 = 1 << 2;
pub const TX_SEND_FUA: u16 = 1 << 3;
pub const TX_SEND_TRIM: u16 = 1 << 5;
pub const TX_SEND_WRITE_ZEROES: u16 = 1 << 6;
pub const TX_CAN_MULTI_CONN: u16 = 1 << 8;

/// Command flags.
pub const CMD_FLAG_FUA: u16 = 1 << 0;
pub const CMD_FLAG_NO_HOLE: u16 = 1 << 1;

/// Option reply types.
pub const REP_ACK: u32 = 1;
pub const REP_SERVER: u32 = 2;
pub const REP_INFO: u32 = 3;
pub const REP_ERR_UNSUP: u32 = (1 << 31) + 1;
pub const REP_ERR_INVALID: u32 = (1 << 31) + 3;
pub const REP_ERR_UNKNOWN: u32 = (1 << 31) + 6;
pub const REP_ERR_TOO_BIG: u32 = (1 << 31) + 9;

/// Information types of `NBD_REP_INFO`.
pub const INFO_EXPORT: u16 = 0;
pub const INFO_NAME: u16 = 1;
#[cfg(test)]
pub const INFO_DESCRIPTION: u16 = 2;
pub const INFO_BLOCK_SIZE: u16 = 3;

/// Error values of simple replies (the NBD protocol's, the same as Linux errno).
pub const EPERM: u32 = 1;
pub const EIO: u32 = 5;
pub const EINVAL: u32 = 22;
pub const ENOSPC: u32 = 28;

/// The option codes the server knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionCode {
    ExportName,
    Abort,
    List,
    Info,
    Go,
    /// Any other code (STARTTLS, STRUCTURED_REPLY, meta contexts, …): refused
    /// with `NBD_REP_ERR_UNSUP`.
    Other(u32),
}

impl OptionCode {
    pub fn from_u32(code: u32) -> OptionCode {
        match code {
            1 => OptionCode::ExportName,
            2 => OptionCode::Abort,
            3 => OptionCode::List,
            6 => OptionCode::Info,
            7 => OptionCode::Go,
            other => OptionCode::Other(other),
        }
    }

    pub fn as_u32(self) -> u32 {
        match self {
            OptionCode::ExportName => 1,
            OptionCode::Abort => 2,
            OptionCode::List => 3,
            OptionCode::Info => 6,
            OptionCode::Go => 7,
            OptionCode::Other(code) => code,
        }
    }
}

/// The commands of the transmission phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Read,
    Write,
    Disconnect,
    Flush,
    Trim,
    WriteZeroes,
    /// CACHE, BLOCK_STATUS, RESIZE and unknown codes: answered `EINVAL`.
    Other(u16),
}

impl Command {
    pub fn from_u16(code: u16) -> Command {
        match code {
            0 => Command::Read,
            1 => Command::Write,
            2 => Command::Disconnect,
            3 => Command::Flush,
            4 => Command::Trim,
            6 => Command::WriteZeroes,
            other => Command::Other(other),
        }
    }

    #[cfg(test)]
    pub fn as_u16(self) -> u16 {
        match self {
            Command::Read => 0,
            Command::Write => 1,
            Command::Disconnect => 2,
            Command::Flush => 3,
            Command::Trim => 4,
            Command::WriteZeroes => 6,
            Command::Other(code) => code,
        }
    }
}

/// Why bytes are not a valid message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the message needs.
    Truncated { needed: usize, got: usize },
    /// A magic number other than the one this message starts with.
    BadMagic { expected: u64, got: u64 },
    /// Client flags with bits the server did not offer.
    UnknownClientFlags(u32),
    /// The lengths inside an INFO or GO request do not add up to its length.
    BadInfoRequest,
    /// An export name that is not UTF-8 text.
    NameNotUtf8,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated { needed, got } => {
                write!(f, "{got} bytes where {needed} are needed")
            }
            WireError::BadMagic { expected, got } => {
                write!(f, "magic {got:#x} where {expected:#x} is expected")
            }
            WireError::UnknownClientFlags(flags) => {
                write!(
                    f,
                    "client flags {flags:#x} name bits the server did not offer"
                )
            }
            WireError::BadInfoRequest => {
                f.write_str("the lengths inside the request do not add up to its length")
            }
            WireError::NameNotUtf8 => f.write_str("the export name is not UTF-8"),
        }
    }
}

fn bytes<const N: usize>(data: &[u8], at: usize) -> Result<[u8; N], WireError> {
    data.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or(WireError::Truncated {
            needed: at + N,
            got: data.len(),
        })
}

fn u16_at(data: &[u8], at: usize) -> Result<u16, WireError> {
    bytes::<2>(data, at).map(u16::from_be_bytes)
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, WireError> {
    bytes::<4>(data, at).map(u32::from_be_bytes)
}

fn u64_at(data: &[u8], at: usize) -> Result<u64, WireError> {
    bytes::<8>(data, at).map(u64::from_be_bytes)
}

/// The server's greeting: `NBDMAGIC`, `IHAVEOPT`, the handshake flags.
pub fn emit_greeting(flags: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(18);
    out.extend_from_slice(&NBDMAGIC.to_be_bytes());
    out.extend_from_slice(&IHAVEOPT.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out
}

pub const CLIENT_FLAGS_LEN: usize = 4;

/// The client's flags, which may name only bits the server offered (`offered`).
pub fn parse_client_flags(data: &[u8], offered: u16) -> Result<u16, WireError> {
    let flags = u32_at(data, 0)?;
    if flags & !u32::from(offered) != 0 {
        return Err(WireError::UnknownClientFlags(flags));
    }
    Ok(flags as u16)
}

/// The header of an option request: `IHAVEOPT`, the option, its data's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionHeader {
    pub code: OptionCode,
    pub length: u32,
}

impl OptionHeader {
    pub const LEN: usize = 16;

    pub fn parse(data: &[u8]) -> Result<OptionHeader, WireError> {
        let magic = u64_at(data, 0)?;
        if magic != IHAVEOPT {
            return Err(WireError::BadMagic {
                expected: IHAVEOPT,
                got: magic,
            });
        }
        Ok(OptionHeader {
            code: OptionCode::from_u32(u32_at(data, 8)?),
            length: u32_at(data, 12)?,
        })
    }

    #[cfg(test)]
    pub fn emit(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.extend_from_slice(&IHAVEOPT.to_be_bytes());
        out.extend_from_slice(&self.code.as_u32().to_be_bytes());
        out.extend_from_slice(&self.length.to_be_bytes());
        out
    }
}

/// The data of an INFO or GO request: an export name and the information asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoRequest {
    pub name: String,
    pub requests: Vec<u16>,
}

impl InfoRequest {
    pub fn parse(data: &[u8]) -> Result<InfoRequest, WireError> {
        let name_len = u32_at(data, 0)? as usize;
        let name_end = 4usize
            .checked_add(name_len)
            .filter(|end| *end <= data.len())
            .ok_or(WireError::BadInfoRequest)?;
        let name = std::str::from_utf8(&data[4..name_end])
            .map_err(|_| WireError::NameNotUtf8)?
            .to_string();
        let count = u16_at(data, name_end).map_err(|_| WireError::BadInfoRequest)? as usize;
        let list = &data[name_end + 2..];
        if list.len() != count * 2 {
            return Err(WireError::BadInfoRequest);
        }
        let requests = list
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        Ok(InfoRequest { name, requests })
    }

    #[cfg(test)]
    pub fn emit(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.name.len() as u32).to_be_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&(self.requests.len() as u16).to_be_bytes());
        for r in &self.requests {
            out.extend_from_slice(&r.to_be_bytes());
        }
        out
    }
}

/// An export name sent with `NBD_OPT_EXPORT_NAME`.
pub fn parse_export_name(data: &[u8]) -> Result<String, WireError> {
    std::str::from_utf8(data)
        .map(str::to_string)
        .map_err(|_| WireError::NameNotUtf8)
}

/// An option reply: the magic, the option echoed, the reply type, the data.
pub fn emit_option_reply(option: OptionCode, reply: u32, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + data.len());
    out.extend_from_slice(&OPTION_REPLY_MAGIC.to_be_bytes());
    out.extend_from_slice(&option.as_u32().to_be_bytes());
    out.extend_from_slice(&reply.to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// A parsed option reply (what a client reads; the tests use it).
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionReply {
    pub option: u32,
    pub reply: u32,
    pub data: Vec<u8>,
}

#[cfg(test)]
impl OptionReply {
    pub const HEADER_LEN: usize = 20;

    /// Parses one reply at the start of `data`; returns it and its length.
    pub fn parse(data: &[u8]) -> Result<(OptionReply, usize), WireError> {
        let magic = u64_at(data, 0)?;
        if magic != OPTION_REPLY_MAGIC {
            return Err(WireError::BadMagic {
                expected: OPTION_REPLY_MAGIC,
                got: magic,
            });
        }
        let option = u32_at(data, 8)?;
        let reply = u32_at(data, 12)?;
        let len = u32_at(data, 16)? as usize;
        let end = Self::HEADER_LEN.saturating_add(len);
        let body = data
            .get(Self::HEADER_LEN..end)
            .ok_or(WireError::Truncated {
                needed: end,
                got: data.len(),
            })?;
        Ok((
            OptionReply {
                option,
                reply,
                data: body.to_vec(),
            },
            end,
        ))
    }
}

/// `NBD_REP_SERVER` data: the name's length, the name.
pub fn server_data(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + name.len());
    out.extend_from_slice(&(name.len() as u32).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out
}

/// `NBD_INFO_EXPORT` data: the size and the transmission flags.
pub fn info_export_data(size: u64, flags: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    out.extend_from_slice(&INFO_EXPORT.to_be_bytes());
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out
}

/// `NBD_INFO_NAME` data.
pub fn info_name_data(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + name.len());
    out.extend_from_slice(&INFO_NAME.to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out
}

/// `NBD_INFO_BLOCK_SIZE` data: minimum, preferred and largest payload.
pub fn info_block_size_data(minimum: u32, preferred: u32, maximum: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(14);
    out.extend_from_slice(&INFO_BLOCK_SIZE.to_be_bytes());
    out.extend_from_slice(&minimum.to_be_bytes());
    out.extend_from_slice(&preferred.to_be_bytes());
    out.extend_from_slice(&maximum.to_be_bytes());
    out
}

/// The answer to `NBD_OPT_EXPORT_NAME`: size, transmission flags, and 124 zero
/// bytes unless the client agreed to `NO_ZEROES`.
pub fn emit_export_name_reply(size: u64, flags: u16, no_zeroes: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(134);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    if !no_zeroes {
        out.extend_from_slice(&[0u8; 124]);
    }
    out
}

/// A transmission request's header (a WRITE's data follows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub flags: u16,
    pub command: Command,
    pub cookie: u64,
    pub offset: u64,
    pub length: u32,
}

impl Request {
    pub const LEN: usize = 28;

    pub fn parse(data: &[u8]) -> Result<Request, WireError> {
        let magic = u32_at(data, 0)?;
        if magic != REQUEST_MAGIC {
            return Err(WireError::BadMagic {
                expected: u64::from(REQUEST_MAGIC),
                got: u64::from(magic),
            });
        }
        Ok(Request {
            flags: u16_at(data, 4)?,
            command: Command::from_u16(u16_at(data, 6)?),
            cookie: u64_at(data, 8)?,
            offset: u64_at(data, 16)?,
            length: u32_at(data, 24)?,
        })
    }

    #[cfg(test)]
    pub fn emit(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.extend_from_slice(&REQUEST_MAGIC.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&self.command.as_u16().to_be_bytes());
        out.extend_from_slice(&self.cookie.to_be_bytes());
        out.extend_from_slice(&self.offset.to_be_bytes());
        out.extend_from_slice(&self.length.to_be_bytes());
        out
    }
}

/// A simple reply's header: the magic, the error (0: success), the cookie echoed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimpleReply {
    pub error: u32,
    pub cookie: u64,
}

impl SimpleReply {
    pub fn emit(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[0..4].copy_from_slice(&SIMPLE_REPLY_MAGIC.to_be_bytes());
        out[4..8].copy_from_slice(&self.error.to_be_bytes());
        out[8..16].copy_from_slice(&self.cookie.to_be_bytes());
        out
    }

    #[cfg(test)]
    pub fn parse(data: &[u8]) -> Result<SimpleReply, WireError> {
        let magic = u32_at(data, 0)?;
        if magic != SIMPLE_REPLY_MAGIC {
            return Err(WireError::BadMagic {
                expected: u64::from(SIMPLE_REPLY_MAGIC),
                got: u64::from(magic),
            });
        }
        Ok(SimpleReply {
            error: u32_at(data, 4)?,
            cookie: u64_at(data, 8)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        let digits: String = text.split_whitespace().collect();
        (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn the_greeting_is_nbdmagic_ihaveopt_and_the_flags() {
        assert_eq!(
            emit_greeting(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES),
            hex("4e42444d41474943 \
                 49484156454f5054 \
                 0003") // NBDMAGIC, IHAVEOPT, FIXED_NEWSTYLE | NO_ZEROES
        );
    }

    #[test]
    fn client_flags_may_name_only_offered_bits() {
        assert_eq!(parse_client_flags(&hex("00000003"), 3), Ok(3));
        assert_eq!(parse_client_flags(&hex("00000001"), 3), Ok(1));
        assert_eq!(
            parse_client_flags(&hex("00000004"), 3),
            Err(WireError::UnknownClientFlags(4))
        );
        // NO_ZEROES asked for when it was not offered.
        assert_eq!(
            parse_client_flags(&hex("00000002"), 1),
            Err(WireError::UnknownClientFlags(2))
        );
        assert!(matches!(
            parse_client_flags(&hex("0000"), 3),
            Err(WireError::Truncated { .. })
        ));
    }

    #[test]
    fn an_option_header_round_trips_and_checks_its_magic() {
        let bytes = hex("49484156454f5054 00000007 0000000c"); // IHAVEOPT, GO, 12 bytes
        let header = OptionHeader::parse(&bytes).unwrap();
        assert_eq!(
            header,
            OptionHeader {
                code: OptionCode::Go,
                length: 12
            }
        );
        assert_eq!(header.emit(), bytes);
        let bad = hex("49484156454f5055 00000007 0000000c");
        assert!(matches!(
            OptionHeader::parse(&bad),
            Err(WireError::BadMagic { .. })
        ));
        assert_eq!(
            OptionCode::from_u32(8),
            OptionCode::Other(8),
            "STRUCTURED_REPLY is refused"
        );
    }

    #[test]
    fn an_info_request_is_name_then_requests() {
        // name length 4, "disk", 2 requests: BLOCK_SIZE, NAME
        let bytes = hex("00000004 6469736b 0002 0003 0001");
        let request = InfoRequest::parse(&bytes).unwrap();
        assert_eq!(
            request,
            InfoRequest {
                name: "disk".into(),
                requests: vec![INFO_BLOCK_SIZE, INFO_NAME]
            }
        );
        assert_eq!(request.emit(), bytes);
        // Zero requests, empty name: what nbd-client sends for the default export.
        assert_eq!(
            InfoRequest::parse(&hex("00000000 0000")).unwrap(),
            InfoRequest {
                name: String::new(),
                requests: vec![]
            }
        );
    }

    #[test]
    fn an_info_request_whose_lengths_disagree_is_refused() {
        for bad in [
            "ffffffff 0000",                  // name longer than the data
            "00000004 6469736b",              // no request count
            "00000004 6469736b 0002 0003",    // one request of two
            "00000004 6469736b 0001 0003 00", // a byte too many
            "000000",                         // not even a name length
        ] {
            assert!(InfoRequest::parse(&hex(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            InfoRequest::parse(&hex("00000001 ff 0000")),
            Err(WireError::NameNotUtf8)
        );
    }

    #[test]
    fn option_replies_echo_the_option() {
        let reply = emit_option_reply(OptionCode::Go, REP_INFO, &info_export_data(1 << 20, 0x0103));
        assert_eq!(
            reply,
            hex("0003e889045565a9 00000007 00000003 0000000c \
                 0000 0000000000100000 0103") // magic, GO, INFO, 12 bytes: EXPORT, size, flags
        );
        let (parsed, len) = OptionReply::parse(&reply).unwrap();
        assert_eq!(len, reply.len());
        assert_eq!(parsed.option, 7);
        assert_eq!(parsed.reply, REP_INFO);
        assert_eq!(
            emit_option_reply(OptionCode::Other(8), REP_ERR_UNSUP, &[]),
            hex("0003e889045565a9 00000008 80000001 00000000") // STRUCTURED_REPLY: UNSUP
        );
        assert_eq!(server_data("ab"), hex("00000002 6162"));
        assert_eq!(info_name_data("ab"), hex("0001 6162"));
        assert_eq!(
            info_block_size_data(1, 4096, 32 << 20),
            hex("0003 00000001 00001000 02000000")
        );
    }

    #[test]
    fn the_export_name_reply_pads_unless_no_zeroes() {
        let short = emit_export_name_reply(512, 0x0003, true);
        assert_eq!(short, hex("0000000000000200 0003"));
        let long = emit_export_name_reply(512, 0x0003, false);
        assert_eq!(long.len(), 8 + 2 + 124);
        assert!(long[10..].iter().all(|b| *b == 0));
    }

    #[test]
    fn a_request_round_trips_and_checks_its_magic() {
        // magic, flags FUA, WRITE, cookie, offset 4096, length 512
        let bytes = hex("25609513 0001 0001 0102030405060708 0000000000001000 00000200");
        let request = Request::parse(&bytes).unwrap();
        assert_eq!(
            request,
            Request {
                flags: CMD_FLAG_FUA,
                command: Command::Write,
                cookie: 0x0102030405060708,
                offset: 4096,
                length: 512
            }
        );
        assert_eq!(request.emit(), bytes);
        assert!(matches!(
            Request::parse(&hex(
                "25609514 0000 0000 0000000000000000 0000000000000000 00000000"
            )),
            Err(WireError::BadMagic { .. })
        ));
        assert!(matches!(
            Request::parse(&bytes[..27]),
            Err(WireError::Truncated { .. })
        ));
        assert_eq!(Command::from_u16(5), Command::Other(5), "CACHE is refused");
    }

    #[test]
    fn a_simple_reply_is_magic_error_cookie() {
        let reply = SimpleReply {
            error: EINVAL,
            cookie: 9,
        };
        assert_eq!(
            reply.emit().to_vec(),
            hex("67446698 00000016 0000000000000009")
        );
        assert_eq!(SimpleReply::parse(&reply.emit()), Ok(reply));
    }
}
