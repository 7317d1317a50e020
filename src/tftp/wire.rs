//! TFTP packets on the wire: RRQ, WRQ, DATA, ACK, ERROR (RFC 1350) and OACK (RFC 2347).
//!
//! [`Packet::parse`] is total: any byte slice gives `Ok` or a [`ParseError`], never a
//! panic. Option names and the transfer mode are compared case-insensitively; option
//! names are kept lower-cased after parsing so the rest of the code compares plain strings.
//! [`Packet::emit`] appends the exact datagram to a caller-owned buffer so that a
//! transfer can reuse one allocation for every block it sends.

use std::fmt;

/// Opcodes (RFC 1350 §5, RFC 2347).
pub const OPCODE_RRQ: u16 = 1;
pub const OPCODE_WRQ: u16 = 2;
pub const OPCODE_DATA: u16 = 3;
pub const OPCODE_ACK: u16 = 4;
pub const OPCODE_ERROR: u16 = 5;
pub const OPCODE_OACK: u16 = 6;

/// The size of the opcode + block-number header of DATA and ACK.
pub const HEADER_LEN: usize = 4;

/// TFTP error codes (RFC 1350 appendix, RFC 2347 adds 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    NotDefined,
    FileNotFound,
    AccessViolation,
    DiskFull,
    IllegalOperation,
    UnknownTransferId,
    FileExists,
    NoSuchUser,
    OptionRefused,
    /// A code outside 0–8 sent by a peer: kept so that it can be logged as received.
    Other(u16),
}

impl ErrorCode {
    pub fn from_u16(code: u16) -> ErrorCode {
        match code {
            0 => ErrorCode::NotDefined,
            1 => ErrorCode::FileNotFound,
            2 => ErrorCode::AccessViolation,
            3 => ErrorCode::DiskFull,
            4 => ErrorCode::IllegalOperation,
            5 => ErrorCode::UnknownTransferId,
            6 => ErrorCode::FileExists,
            7 => ErrorCode::NoSuchUser,
            8 => ErrorCode::OptionRefused,
            other => ErrorCode::Other(other),
        }
    }

    pub fn as_u16(self) -> u16 {
        match self {
            ErrorCode::NotDefined => 0,
            ErrorCode::FileNotFound => 1,
            ErrorCode::AccessViolation => 2,
            ErrorCode::DiskFull => 3,
            ErrorCode::IllegalOperation => 4,
            ErrorCode::UnknownTransferId => 5,
            ErrorCode::FileExists => 6,
            ErrorCode::NoSuchUser => 7,
            ErrorCode::OptionRefused => 8,
            ErrorCode::Other(code) => code,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ErrorCode::NotDefined => "not defined",
            ErrorCode::FileNotFound => "file not found",
            ErrorCode::AccessViolation => "access violation",
            ErrorCode::DiskFull => "disk full",
            ErrorCode::IllegalOperation => "illegal operation",
            ErrorCode::UnknownTransferId => "unknown transfer id",
            ErrorCode::FileExists => "file exists",
            ErrorCode::NoSuchUser => "no such user",
            ErrorCode::OptionRefused => "option refused",
            ErrorCode::Other(_) => "unknown error code",
        };
        write!(f, "{} ({text})", self.as_u16())
    }
}

/// Transfer mode of a request (RFC 1350 §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Netascii,
    Octet,
    /// Obsolete (RFC 1350 says it "should not be implemented"); parsed so it can be refused clearly.
    Mail,
}

impl Mode {
    fn parse(text: &[u8]) -> Option<Mode> {
        if text.eq_ignore_ascii_case(b"octet") {
            Some(Mode::Octet)
        } else if text.eq_ignore_ascii_case(b"netascii") {
            Some(Mode::Netascii)
        } else if text.eq_ignore_ascii_case(b"mail") {
            Some(Mode::Mail)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Netascii => "netascii",
            Mode::Octet => "octet",
            Mode::Mail => "mail",
        }
    }
}

/// One `name=value` option of a request or OACK. `name` is lower-case after parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TftpOption {
    pub name: String,
    pub value: String,
}

impl TftpOption {
    #[cfg(test)]
    pub fn new(name: &str, value: &str) -> TftpOption {
        TftpOption {
            name: name.to_owned(),
            value: value.to_owned(),
        }
    }
}

/// A read or write request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub filename: String,
    pub mode: Mode,
    /// In the order the client sent them; duplicates kept (the first one counts).
    pub options: Vec<TftpOption>,
}

impl Request {
    /// The value of the first option called `name` (lower-case).
    #[cfg(test)]
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|o| o.name == name)
            .map(|o| o.value.as_str())
    }
}

/// A parsed TFTP packet. DATA borrows its payload from the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    Rrq(Request),
    Wrq(Request),
    Data { block: u16, data: &'a [u8] },
    Ack { block: u16 },
    Error { code: ErrorCode, message: String },
    Oack { options: Vec<TftpOption> },
}

/// Why a datagram is not a TFTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than its opcode (or, for DATA/ACK/ERROR, its fixed header).
    Truncated,
    UnknownOpcode(u16),
    /// The filename or the mode of a request is not NUL-terminated.
    MissingTerminator,
    EmptyFilename,
    /// The filename or an option is not UTF-8.
    NotUtf8,
    UnknownMode(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Truncated => write!(f, "truncated packet"),
            ParseError::UnknownOpcode(op) => write!(f, "unknown opcode {op}"),
            ParseError::MissingTerminator => {
                write!(f, "request filename or mode is not NUL-terminated")
            }
            ParseError::EmptyFilename => write!(f, "empty filename"),
            ParseError::NotUtf8 => write!(f, "filename or option is not valid UTF-8"),
            ParseError::UnknownMode(mode) => write!(f, "unknown transfer mode {mode:?}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Reads a big-endian u16 at `offset`, or `None` when the slice is too short.
fn read_u16(bytes: &[u8], offset: usize) -> Option<u16> {
    let hi = *bytes.get(offset)?;
    let lo = *bytes.get(offset + 1)?;
    Some(u16::from_be_bytes([hi, lo]))
}

/// Splits off one NUL-terminated field; `None` when there is no NUL.
fn take_cstr(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let nul = bytes.iter().position(|b| *b == 0)?;
    let (field, rest) = bytes.split_at(nul);
    // `rest` starts with the NUL, so `get(1..)` always succeeds; written checked anyway.
    Some((field, rest.get(1..).unwrap_or_default()))
}

/// Parses NUL-terminated `name\0value\0` pairs.
///
/// Lenient where real clients are sloppy: runs of NUL padding (empty names) are skipped
/// and a trailing unterminated or value-less option is ignored, as tftp-hpa does.
fn parse_options(mut rest: &[u8]) -> Result<Vec<TftpOption>, ParseError> {
    let mut options = Vec::new();
    while !rest.is_empty() {
        let Some((name, after_name)) = take_cstr(rest) else {
            break;
        };
        if name.is_empty() {
            rest = after_name;
            continue;
        }
        let Some((value, after_value)) = take_cstr(after_name) else {
            break;
        };
        let name = std::str::from_utf8(name).map_err(|_| ParseError::NotUtf8)?;
        let value = std::str::from_utf8(value).map_err(|_| ParseError::NotUtf8)?;
        options.push(TftpOption {
            name: name.to_ascii_lowercase(),
            value: value.to_owned(),
        });
        rest = after_value;
    }
    Ok(options)
}

fn parse_request(body: &[u8]) -> Result<Request, ParseError> {
    let (filename, rest) = take_cstr(body).ok_or(ParseError::MissingTerminator)?;
    let (mode, rest) = take_cstr(rest).ok_or(ParseError::MissingTerminator)?;
    if filename.is_empty() {
        return Err(ParseError::EmptyFilename);
    }
    let filename = std::str::from_utf8(filename).map_err(|_| ParseError::NotUtf8)?;
    let mode = Mode::parse(mode)
        .ok_or_else(|| ParseError::UnknownMode(String::from_utf8_lossy(mode).into_owned()))?;
    Ok(Request {
        filename: filename.to_owned(),
        mode,
        options: parse_options(rest)?,
    })
}

impl<'a> Packet<'a> {
    /// Parses one datagram. Total: never panics, whatever the bytes.
    pub fn parse(bytes: &'a [u8]) -> Result<Packet<'a>, ParseError> {
        let opcode = read_u16(bytes, 0).ok_or(ParseError::Truncated)?;
        let body = bytes.get(2..).unwrap_or_default();
        match opcode {
            OPCODE_RRQ => Ok(Packet::Rrq(parse_request(body)?)),
            OPCODE_WRQ => Ok(Packet::Wrq(parse_request(body)?)),
            OPCODE_DATA => {
                let block = read_u16(bytes, 2).ok_or(ParseError::Truncated)?;
                let data = bytes.get(HEADER_LEN..).unwrap_or_default();
                Ok(Packet::Data { block, data })
            }
            OPCODE_ACK => {
                // Trailing bytes after the block number are ignored: some stacks pad.
                let block = read_u16(bytes, 2).ok_or(ParseError::Truncated)?;
                Ok(Packet::Ack { block })
            }
            OPCODE_ERROR => {
                let code = read_u16(bytes, 2).ok_or(ParseError::Truncated)?;
                let text = bytes.get(HEADER_LEN..).unwrap_or_default();
                // A missing final NUL is tolerated: the message is only logged.
                let text = match take_cstr(text) {
                    Some((message, _)) => message,
                    None => text,
                };
                Ok(Packet::Error {
                    code: ErrorCode::from_u16(code),
                    message: String::from_utf8_lossy(text).into_owned(),
                })
            }
            OPCODE_OACK => Ok(Packet::Oack {
                options: parse_options(body)?,
            }),
            other => Err(ParseError::UnknownOpcode(other)),
        }
    }

    /// Appends the datagram to `out` (which is not cleared).
    pub fn emit(&self, out: &mut Vec<u8>) {
        match self {
            Packet::Rrq(request) => emit_request(OPCODE_RRQ, request, out),
            Packet::Wrq(request) => emit_request(OPCODE_WRQ, request, out),
            Packet::Data { block, data } => emit_data(*block, data, out),
            Packet::Ack { block } => {
                out.extend_from_slice(&OPCODE_ACK.to_be_bytes());
                out.extend_from_slice(&block.to_be_bytes());
            }
            Packet::Error { code, message } => emit_error(*code, message, out),
            Packet::Oack { options } => {
                out.extend_from_slice(&OPCODE_OACK.to_be_bytes());
                emit_options(options, out);
            }
        }
    }

    /// The datagram as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.emit(&mut out);
        out
    }
}

fn emit_cstr(text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(text.as_bytes());
    out.push(0);
}

fn emit_options(options: &[TftpOption], out: &mut Vec<u8>) {
    for option in options {
        emit_cstr(&option.name, out);
        emit_cstr(&option.value, out);
    }
}

fn emit_request(opcode: u16, request: &Request, out: &mut Vec<u8>) {
    out.extend_from_slice(&opcode.to_be_bytes());
    emit_cstr(&request.filename, out);
    emit_cstr(request.mode.as_str(), out);
    emit_options(&request.options, out);
}

/// Appends a DATA datagram; the hot path of every transfer.
pub fn emit_data(block: u16, data: &[u8], out: &mut Vec<u8>) {
    out.reserve(HEADER_LEN + data.len());
    out.extend_from_slice(&data_header(block));
    out.extend_from_slice(data);
}

/// The four bytes that start DATA `block` (the payload follows them).
pub fn data_header(block: u16) -> [u8; 4] {
    let [op_high, op_low] = OPCODE_DATA.to_be_bytes();
    let [block_high, block_low] = block.to_be_bytes();
    [op_high, op_low, block_high, block_low]
}

/// Appends an ERROR datagram. A NUL inside `message` would cut it short on the
/// client, so NULs are dropped.
pub fn emit_error(code: ErrorCode, message: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&OPCODE_ERROR.to_be_bytes());
    out.extend_from_slice(&code.as_u16().to_be_bytes());
    out.extend(message.bytes().filter(|b| *b != 0));
    out.push(0);
}

/// An ERROR datagram as a new vector (for the shell: ERROR 5 to a foreign endpoint,
/// ERROR 2 for a refused name, ...).
pub fn error_packet(code: ErrorCode, message: &str) -> Vec<u8> {
    let mut out = Vec::new();
    emit_error(code, message, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text
            .bytes()
            .filter(|b| b.is_ascii_hexdigit())
            .map(|b| (b as char).to_digit(16).map(|d| d as u8).unwrap_or(0))
            .collect();
        digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
    }

    #[test]
    fn rrq_with_options_parses_case_insensitively() {
        // opcode 1 | "pxelinux.0" NUL | "OCTET" NUL | "BlkSize" NUL "1468" NUL | "TSIZE" NUL "0" NUL
        let bytes = hex(
            "0001 7078656c696e75782e3000 4f4354455400 426c6b53697a6500 3134363800 5453495a4500 3000",
        );
        let packet = Packet::parse(&bytes);
        assert_eq!(
            packet,
            Ok(Packet::Rrq(Request {
                filename: "pxelinux.0".into(),
                mode: Mode::Octet,
                options: vec![
                    TftpOption::new("blksize", "1468"),
                    TftpOption::new("tsize", "0")
                ],
            }))
        );
    }

    #[test]
    fn rrq_emits_byte_exact() {
        let request = Request {
            filename: "a".into(),
            mode: Mode::Netascii,
            options: vec![TftpOption::new("windowsize", "8")],
        };
        // opcode 1 | "a" NUL | "netascii" NUL | "windowsize" NUL "8" NUL
        assert_eq!(
            Packet::Rrq(request).to_bytes(),
            hex("0001 6100 6e65746173636969 00 77696e646f7773697a65 00 38 00")
        );
    }

    #[test]
    fn wrq_parses() {
        // opcode 2 | "up" NUL | "octet" NUL
        let bytes = hex("0002 757000 6f6374657400");
        assert!(matches!(Packet::parse(&bytes), Ok(Packet::Wrq(r)) if r.filename == "up"));
    }

    #[test]
    fn data_round_trip_byte_exact() {
        // opcode 3 | block 0x1234 | payload de ad
        let bytes = hex("0003 1234 dead");
        let packet = Packet::parse(&bytes);
        assert_eq!(
            packet,
            Ok(Packet::Data {
                block: 0x1234,
                data: &[0xde, 0xad]
            })
        );
        assert_eq!(packet.map(|p| p.to_bytes()), Ok(bytes.clone()));
    }

    #[test]
    fn empty_data_is_valid() {
        // opcode 3 | block 7 | no payload (the final block of an exact multiple)
        assert_eq!(
            Packet::parse(&hex("0003 0007")),
            Ok(Packet::Data {
                block: 7,
                data: &[]
            })
        );
    }

    #[test]
    fn ack_round_trip_and_padding() {
        // opcode 4 | block 0xffff
        assert_eq!(Packet::Ack { block: 0xffff }.to_bytes(), hex("0004 ffff"));
        assert_eq!(
            Packet::parse(&hex("0004 ffff 0000")),
            Ok(Packet::Ack { block: 0xffff })
        );
        assert_eq!(Packet::parse(&hex("0004 ff")), Err(ParseError::Truncated));
    }

    #[test]
    fn error_round_trip() {
        // opcode 5 | code 2 | "no" NUL
        let bytes = hex("0005 0002 6e6f00");
        let packet = Packet::parse(&bytes);
        assert_eq!(
            packet,
            Ok(Packet::Error {
                code: ErrorCode::AccessViolation,
                message: "no".into()
            })
        );
        assert_eq!(error_packet(ErrorCode::AccessViolation, "no"), bytes);
        // code 8 (RFC 2347) and an out-of-range code survive parsing.
        assert!(matches!(
            Packet::parse(&hex("0005 0008 00")),
            Ok(Packet::Error {
                code: ErrorCode::OptionRefused,
                ..
            })
        ));
        assert!(matches!(
            Packet::parse(&hex("0005 0063 78")),
            Ok(Packet::Error { code: ErrorCode::Other(99), message }) if message == "x"
        ));
    }

    #[test]
    fn error_message_nul_is_dropped() {
        // opcode 5 | code 0 | "ab" NUL (the inner NUL removed)
        assert_eq!(
            error_packet(ErrorCode::NotDefined, "a\0b"),
            hex("0005 0000 616200")
        );
    }

    #[test]
    fn error_codes_round_trip() {
        for code in 0..=8u16 {
            assert_eq!(ErrorCode::from_u16(code).as_u16(), code);
            assert!(!matches!(ErrorCode::from_u16(code), ErrorCode::Other(_)));
        }
    }

    #[test]
    fn oack_byte_exact() {
        let packet = Packet::Oack {
            options: vec![
                TftpOption::new("blksize", "1428"),
                TftpOption::new("tsize", "1024"),
            ],
        };
        // opcode 6 | "blksize" NUL "1428" NUL | "tsize" NUL "1024" NUL
        let bytes = hex("0006 626c6b73697a6500 3134323800 7473697a6500 3130323400");
        assert_eq!(packet.to_bytes(), bytes);
        assert_eq!(Packet::parse(&bytes), Ok(packet));
    }

    #[test]
    fn malformed_requests_give_typed_errors() {
        assert_eq!(Packet::parse(&[]), Err(ParseError::Truncated));
        assert_eq!(Packet::parse(&[0]), Err(ParseError::Truncated));
        assert_eq!(
            Packet::parse(&hex("0009")),
            Err(ParseError::UnknownOpcode(9))
        );
        assert_eq!(
            Packet::parse(&hex("0000")),
            Err(ParseError::UnknownOpcode(0))
        );
        // No NUL after the filename.
        assert_eq!(
            Packet::parse(&hex("0001 6161")),
            Err(ParseError::MissingTerminator)
        );
        // No NUL after the mode.
        assert_eq!(
            Packet::parse(&hex("0001 6100 6f63746574")),
            Err(ParseError::MissingTerminator)
        );
        assert_eq!(
            Packet::parse(&hex("0001 00 6f6374657400")),
            Err(ParseError::EmptyFilename)
        );
        assert_eq!(
            Packet::parse(&hex("0001 ff00 6f6374657400")),
            Err(ParseError::NotUtf8)
        );
        assert_eq!(
            Packet::parse(&hex("0001 6100 62696e00")),
            Err(ParseError::UnknownMode("bin".into()))
        );
        assert_eq!(Packet::parse(&hex("0003 01")), Err(ParseError::Truncated));
    }

    #[test]
    fn sloppy_options_are_tolerated() {
        // "a" NUL "octet" NUL | NUL NUL (padding) | "tsize" NUL "0" NUL | "blksize" (no NUL)
        let bytes = hex("0001 6100 6f6374657400 0000 7473697a6500 3000 626c6b73697a65");
        let Ok(Packet::Rrq(request)) = Packet::parse(&bytes) else {
            panic!("request should parse");
        };
        assert_eq!(request.options, vec![TftpOption::new("tsize", "0")]);
        assert_eq!(request.option("tsize"), Some("0"));
        assert_eq!(request.option("blksize"), None);
    }

    #[test]
    fn mode_is_case_insensitive() {
        for mode in ["octet", "OCTET", "Octet", "NetAscii", "MAIL"] {
            let mut bytes = hex("0001 6100");
            bytes.extend_from_slice(mode.as_bytes());
            bytes.push(0);
            assert!(Packet::parse(&bytes).is_ok(), "{mode}");
        }
    }

    fn arbitrary_packet() -> impl Strategy<Value = Vec<u8>> {
        let name = "[a-zA-Z0-9./_-]{1,20}";
        prop_oneof![
            (
                name,
                prop::sample::select(vec!["octet", "netascii"]),
                prop::collection::vec(("[a-z]{1,8}", "[0-9]{1,6}"), 0..4)
            )
                .prop_map(|(filename, mode, options)| {
                    Packet::Rrq(Request {
                        filename,
                        mode: Mode::parse(mode.as_bytes()).unwrap_or(Mode::Octet),
                        options: options.iter().map(|(n, v)| TftpOption::new(n, v)).collect(),
                    })
                    .to_bytes()
                }),
            (any::<u16>(), prop::collection::vec(any::<u8>(), 0..600))
                .prop_map(|(block, data)| Packet::Data { block, data: &data }.to_bytes()),
            any::<u16>().prop_map(|block| Packet::Ack { block }.to_bytes()),
            (0u16..9, "[ -~]{0,40}").prop_map(|(code, message)| {
                Packet::Error {
                    code: ErrorCode::from_u16(code),
                    message,
                }
                .to_bytes()
            }),
        ]
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..700)) {
            let _ = Packet::parse(&bytes);
        }

        #[test]
        fn parse_never_panics_on_near_valid(mut bytes in arbitrary_packet(), cut in any::<prop::sample::Index>(), flip in any::<u8>()) {
            let _ = Packet::parse(&bytes);
            if !bytes.is_empty() {
                let at = cut.index(bytes.len());
                bytes[at] ^= flip;
                let _ = Packet::parse(&bytes);
                bytes.truncate(at);
                let _ = Packet::parse(&bytes);
            }
        }

        #[test]
        fn emitted_packets_round_trip(bytes in arbitrary_packet()) {
            let parsed = Packet::parse(&bytes);
            prop_assert!(parsed.is_ok());
            let reemitted = parsed.map(|p| p.to_bytes()).unwrap_or_default();
            prop_assert_eq!(reemitted, bytes);
        }
    }
}
