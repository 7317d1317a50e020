//! The HTTP/1.1 wire format of the file service (sans-IO): request heads parsed by
//! `httparse` under hard caps (bytes and header fields), the one `Range` form served
//! (a single byte range), request targets percent-decoded into the name asked for,
//! response heads emitted byte for byte, and the content type of a served name.
//!
//! Parsing is total: any bytes give a request, "not complete yet", or a typed error
//! that names the status to answer with; nothing here panics or allocates without a
//! bound.

use std::fmt;
use std::fmt::Write as _;

/// Largest request head accepted, request line and fields included. Firmware and
/// download tools send a few hundred bytes; anything near this is not a boot client.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most header fields accepted in one request.
pub const MAX_HEADERS: usize = 32;

/// The methods the file service knows; any other is answered 405.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Other,
}

/// A request head, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The method as sent (for the log), at most 16 characters.
    pub method_text: String,
    /// The request target as sent.
    pub target: String,
    /// HTTP/1.`minor`: 0 or 1.
    pub minor_version: u8,
    /// Whether the client asks to keep the connection open after the response.
    pub keep_alive: bool,
    /// The `Range` field, when there is exactly one.
    pub range: Option<String>,
    /// `If-Range` is present: without validators to compare, the whole file is sent.
    pub if_range: bool,
    /// The request announces a body (`Content-Length` above 0, or `Transfer-Encoding`):
    /// it is not read, so the connection closes after the response.
    pub has_body: bool,
    /// HTTP/1.1 requires `Host`.
    pub has_host: bool,
}

/// Why a request head was refused, and the status that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// More than [`MAX_HEAD`] bytes without the end of the head (431).
    TooLarge,
    /// More than [`MAX_HEADERS`] fields (431).
    TooManyFields,
    /// Not HTTP/1.x, or not a request head at all (400).
    Malformed(String),
}

impl RequestError {
    pub fn status(&self) -> Status {
        match self {
            RequestError::TooLarge | RequestError::TooManyFields => Status::HeaderFieldsTooLarge,
            RequestError::Malformed(_) => Status::BadRequest,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::TooLarge => write!(f, "request head over {MAX_HEAD} bytes"),
            RequestError::TooManyFields => write!(f, "more than {MAX_HEADERS} header fields"),
            RequestError::Malformed(why) => write!(f, "malformed request: {why}"),
        }
    }
}

/// Parses the request head at the start of `buffer`: `Ok(None)` while it is
/// incomplete (and within [`MAX_HEAD`]), else the request and the length of its head.
pub fn parse_request(buffer: &[u8]) -> Result<Option<(Request, usize)>, RequestError> {
    // Blank lines before a request line are to be ignored (RFC 9112 §2.2); httparse
    // skips them too, and they count towards the cap like any byte.
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut fields);
    let status = match parsed.parse(buffer) {
        Ok(status) => status,
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::TooManyFields),
        Err(e) => return Err(RequestError::Malformed(e.to_string())),
    };
    let length = match status {
        httparse::Status::Complete(length) if length <= MAX_HEAD => length,
        httparse::Status::Complete(_) => return Err(RequestError::TooLarge),
        httparse::Status::Partial if buffer.len() >= MAX_HEAD => {
            return Err(RequestError::TooLarge);
        }
        httparse::Status::Partial => return Ok(None),
    };
    let (Some(method_text), Some(target), Some(minor_version)) =
        (parsed.method, parsed.path, parsed.version)
    else {
        return Err(RequestError::Malformed("incomplete request line".into()));
    };
    let method = match method_text {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        _ => Method::Other,
    };
    let mut connection_close = false;
    let mut connection_keep_alive = false;
    let mut ranges = Vec::new();
    let mut request = Request {
        method,
        method_text: method_text.chars().take(16).collect(),
        target: target.to_owned(),
        minor_version,
        keep_alive: false,
        range: None,
        if_range: false,
        has_body: false,
        has_host: false,
    };
    for field in parsed.headers.iter() {
        let value = String::from_utf8_lossy(field.value);
        let value = value.trim();
        let name = field.name;
        if name.eq_ignore_ascii_case("connection") {
            for option in value.split(',').map(str::trim) {
                connection_close |= option.eq_ignore_ascii_case("close");
                connection_keep_alive |= option.eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case("range") {
            ranges.push(value.to_owned());
        } else if name.eq_ignore_ascii_case("if-range") {
            request.if_range = true;
        } else if name.eq_ignore_ascii_case("host") {
            request.has_host = true;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            request.has_body = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            // Anything but a plain 0 may announce a body.
            request.has_body |= value != "0";
        }
    }
    // HTTP/1.1 keeps the connection unless told to close; 1.0 only when asked.
    request.keep_alive = !connection_close && (minor_version >= 1 || connection_keep_alive);
    // Two Range fields are no single range: ignored, as an invalid Range must be.
    if ranges.len() == 1 {
        request.range = ranges.pop();
    }
    Ok(Some((request, length)))
}

/// One byte range, as the client wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=a-b`: from `a` to `b`, inclusive.
    FromTo(u64, u64),
    /// `bytes=a-`: from `a` to the end.
    From(u64),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

/// What a `Range` asks of a file of a known size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// Bytes `first..=last` (206).
    Partial { first: u64, last: u64 },
    /// No byte of the file is in the range (416).
    Unsatisfiable,
}

impl ByteRange {
    /// The `Range` value `value`, when it is a single byte range; `None` for anything
    /// else (another unit, several ranges, bad syntax), which is ignored: the whole
    /// file is sent (RFC 9110 §14.2).
    pub fn parse(value: &str) -> Option<ByteRange> {
        let spec = value.trim();
        let unit = spec.get(..6)?;
        if !unit.eq_ignore_ascii_case("bytes=") {
            return None;
        }
        let spec = spec.get(6..)?.trim();
        if spec.contains(',') {
            return None;
        }
        let (first, last) = spec.split_once('-')?;
        let (first, last) = (first.trim(), last.trim());
        let number = |text: &str| -> Option<u64> {
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            text.parse().ok()
        };
        match (first.is_empty(), last.is_empty()) {
            (true, true) => None,
            (true, false) => number(last).map(ByteRange::Suffix),
            (false, true) => number(first).map(ByteRange::From),
            (false, false) => {
                let (a, b) = (number(first)?, number(last)?);
                (a <= b).then_some(ByteRange::FromTo(a, b))
            }
        }
    }

    /// The bytes of a file of `size` bytes this range names.
    pub fn answer(self, size: u64) -> RangeAnswer {
        let Some(end) = size.checked_sub(1) else {
            return RangeAnswer::Unsatisfiable;
        };
        match self {
            ByteRange::FromTo(first, _) | ByteRange::From(first) if first > end => {
                RangeAnswer::Unsatisfiable
            }
            ByteRange::FromTo(first, last) => RangeAnswer::Partial {
                first,
                last: last.min(end),
            },
            ByteRange::From(first) => RangeAnswer::Partial { first, last: end },
            ByteRange::Suffix(0) => RangeAnswer::Unsatisfiable,
            ByteRange::Suffix(n) => RangeAnswer::Partial {
                first: size - n.min(size),
                last: end,
            },
        }
    }
}

/// Why a request target names no file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// Not a path (`*`, an authority, another scheme).
    NotAPath,
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetError::NotAPath => "request target is not a path",
            TargetError::BadEscape => "broken percent-escape in request target",
            TargetError::NotUtf8 => "request target does not decode to UTF-8",
        })
    }
}

/// The name a request target asks for: its path (of an origin-form target, or of an
/// `http://` absolute-form one), without query or fragment, percent-decoded once. The
/// name then goes through the same checks as a TFTP name, so a `..`, a NUL or a
/// backslash that was escaped is refused like one written plainly, and a
/// double-encoded `%252e` is refused as the `%2e` it decodes to.
pub fn target_name(target: &str) -> Result<String, TargetError> {
    let path = if target.starts_with('/') {
        target
    } else {
        let rest = target
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("http://"))
            .and_then(|_| target.get(7..))
            .ok_or(TargetError::NotAPath)?;
        match rest.find('/') {
            Some(slash) => rest.get(slash..).ok_or(TargetError::NotAPath)?,
            None => "/",
        }
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let hex = |at: usize| bytes.get(at).and_then(|b| char::from(*b).to_digit(16));
            let (Some(high), Some(low)) = (hex(i + 1), hex(i + 2)) else {
                return Err(TargetError::BadEscape);
            };
            // Two hex digits make at most 0xff.
            decoded.push(u8::try_from(high * 16 + low).unwrap_or(u8::MAX));
            i += 3;
        } else {
            decoded.push(byte);
            i += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| TargetError::NotUtf8)
}

/// The statuses the file service answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    PartialContent,
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    RangeNotSatisfiable,
    HeaderFieldsTooLarge,
    BadGateway,
    ServiceUnavailable,
    GatewayTimeout,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::PartialContent => 206,
            Status::BadRequest => 400,
            Status::Unauthorized => 401,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::RequestTimeout => 408,
            Status::RangeNotSatisfiable => 416,
            Status::HeaderFieldsTooLarge => 431,
            Status::BadGateway => 502,
            Status::ServiceUnavailable => 503,
            Status::GatewayTimeout => 504,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::PartialContent => "Partial Content",
            Status::BadRequest => "Bad Request",
            Status::Unauthorized => "Unauthorized",
            Status::Forbidden => "Forbidden",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::RequestTimeout => "Request Timeout",
            Status::RangeNotSatisfiable => "Range Not Satisfiable",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::BadGateway => "Bad Gateway",
            Status::ServiceUnavailable => "Service Unavailable",
            Status::GatewayTimeout => "Gateway Timeout",
        }
    }
}

/// A response head to emit. Every response carries its exact `Content-Length`, but
/// for a body streamed from a mirror that announced none, which ends with the
/// connection instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: Status,
    pub content_type: &'static str,
    /// `None`: the body ends when the connection closes.
    pub content_length: Option<u64>,
    /// `Content-Range`: the part sent of a file of `size` bytes, or, for 416, only
    /// `size`.
    pub content_range: Option<ContentRange>,
    pub keep_alive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentRange {
    Partial { first: u64, last: u64, size: u64 },
    Unsatisfied { size: u64 },
}

impl ResponseHead {
    /// Appends the head to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut head = String::with_capacity(192);
        // Writing to a String cannot fail.
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nServer: bootd\r\n",
            self.status.code(),
            self.status.reason()
        );
        let _ = write!(head, "Content-Type: {}\r\n", self.content_type);
        if let Some(length) = self.content_length {
            let _ = write!(head, "Content-Length: {length}\r\n");
        }
        match self.content_range {
            Some(ContentRange::Partial { first, last, size }) => {
                let _ = write!(head, "Content-Range: bytes {first}-{last}/{size}\r\n");
            }
            Some(ContentRange::Unsatisfied { size }) => {
                let _ = write!(head, "Content-Range: bytes */{size}\r\n");
            }
            None => {}
        }
        if matches!(
            self.status,
            Status::Ok | Status::PartialContent | Status::RangeNotSatisfiable
        ) {
            head.push_str("Accept-Ranges: bytes\r\n");
        }
        if self.status == Status::MethodNotAllowed {
            head.push_str("Allow: GET, HEAD\r\n");
        }
        head.push_str(if self.keep_alive {
            "Connection: keep-alive\r\n\r\n"
        } else {
            "Connection: close\r\n\r\n"
        });
        out.extend_from_slice(head.as_bytes());
    }
}

/// The short text body of an error response.
pub fn error_body(status: Status) -> String {
    format!("{} {}\n", status.code(), status.reason())
}

/// The content type of a served name, by its extension. UEFI HTTP boot takes the
/// image type from it first (`application/efi`, and the two RAM-disk types), and
/// fails on an image it cannot type.
pub fn content_type(name: &str) -> &'static str {
    let base = name.rsplit('/').next().unwrap_or(name);
    let extension = match base.rsplit_once('.') {
        Some((_, extension)) => extension.to_ascii_lowercase(),
        None => return "application/octet-stream",
    };
    match extension.as_str() {
        "efi" => "application/efi",
        "iso" => "application/vnd.efi-iso",
        "img" => "application/vnd.efi-img",
        "ipxe" | "cfg" | "conf" | "txt" | "sh" | "seed" | "preseed" | "cfg32" => {
            "text/plain; charset=utf-8"
        }
        "html" | "htm" => "text/html; charset=utf-8",
        "json" => "application/json",
        "xml" => "application/xml",
        "gz" | "tgz" => "application/gzip",
        "xz" => "application/x-xz",
        "zst" => "application/zstd",
        "tar" => "application/x-tar",
        "torrent" => "application/x-bittorrent",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(bytes: &[u8]) -> (Request, usize) {
        match parse_request(bytes) {
            Ok(Some(done)) => done,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_get_is_parsed_with_its_head_length() {
        let bytes = b"GET /grubx64.efi HTTP/1.1\r\nHost: 10.0.0.1\r\nAccept: */*\r\nUser-Agent: UefiHttpBoot/1.0\r\n\r\nNEXT";
        let (request, length) = parsed(bytes);
        assert_eq!(length, bytes.len() - 4);
        assert_eq!(request.method, Method::Get);
        assert_eq!(request.target, "/grubx64.efi");
        assert_eq!(request.minor_version, 1);
        assert!(request.keep_alive && request.has_host && !request.has_body);
        assert_eq!(request.range, None);
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_field() {
        let keep = |bytes: &[u8]| parsed(bytes).0.keep_alive;
        assert!(keep(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
        assert!(!keep(
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        ));
        assert!(!keep(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(keep(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(!keep(
            b"GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n"
        ));
    }

    #[test]
    fn an_incomplete_head_waits_and_a_huge_one_is_refused() {
        assert_eq!(parse_request(b"GET /x HTTP/1.1\r\nHost: h\r\n"), Ok(None));
        assert_eq!(parse_request(b""), Ok(None));
        let mut huge = b"GET /x HTTP/1.1\r\nX-Big: ".to_vec();
        huge.resize(MAX_HEAD, b'a');
        assert_eq!(parse_request(&huge), Err(RequestError::TooLarge));
        huge.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_request(&huge), Err(RequestError::TooLarge));
        assert_eq!(RequestError::TooLarge.status().code(), 431);
    }

    #[test]
    fn too_many_fields_and_garbage_are_refused() {
        let mut many = b"GET /x HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_request(&many), Err(RequestError::TooManyFields));
        for garbage in [
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
            b"GET /x HTTP/2.0\r\n\r\n",
            b"GET /x\r\n\r\n",
            b"G\0T / HTTP/1.1\r\n\r\n",
            b"GET /a b HTTP/1.1\r\n\r\n",
        ] {
            match parse_request(garbage) {
                Err(e @ RequestError::Malformed(_)) => assert_eq!(e.status().code(), 400),
                other => panic!("{garbage:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn bodies_ranges_and_other_methods_are_noted() {
        let (r, _) = parsed(b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc");
        assert_eq!((r.method, r.has_body), (Method::Other, true));
        assert_eq!(r.method_text, "POST");
        let (r, _) = parsed(b"GET /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert!(!r.has_body && !r.has_host);
        let (r, _) = parsed(b"HEAD /x HTTP/1.1\r\nrange: bytes=0-9\r\nIf-Range: \"e\"\r\n\r\n");
        assert_eq!(r.method, Method::Head);
        assert_eq!(r.range.as_deref(), Some("bytes=0-9"));
        assert!(r.if_range);
        let (r, _) = parsed(b"GET /x HTTP/1.1\r\nRange: bytes=0-1\r\nRange: bytes=2-3\r\n\r\n");
        assert_eq!(r.range, None);
    }

    #[test]
    fn single_byte_ranges_parse_and_others_are_ignored() {
        assert_eq!(
            ByteRange::parse("bytes=0-499"),
            Some(ByteRange::FromTo(0, 499))
        );
        assert_eq!(ByteRange::parse("bytes=500-"), Some(ByteRange::From(500)));
        assert_eq!(ByteRange::parse("bytes=-500"), Some(ByteRange::Suffix(500)));
        assert_eq!(ByteRange::parse("Bytes = 1 - 2"), None);
        assert_eq!(ByteRange::parse("BYTES=1-2"), Some(ByteRange::FromTo(1, 2)));
        for ignored in [
            "bytes=0-1,4-5",
            "bytes=5-1",
            "bytes=-",
            "bytes=",
            "items=0-1",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=99999999999999999999999-",
            "bytes",
            "",
        ] {
            assert_eq!(ByteRange::parse(ignored), None, "{ignored}");
        }
    }

    #[test]
    fn ranges_answer_against_the_size() {
        use RangeAnswer::*;
        let partial = |first, last| Partial { first, last };
        assert_eq!(ByteRange::FromTo(0, 499).answer(1000), partial(0, 499));
        assert_eq!(ByteRange::FromTo(900, 5000).answer(1000), partial(900, 999));
        assert_eq!(ByteRange::FromTo(1000, 1001).answer(1000), Unsatisfiable);
        assert_eq!(ByteRange::From(999).answer(1000), partial(999, 999));
        assert_eq!(ByteRange::From(1000).answer(1000), Unsatisfiable);
        assert_eq!(ByteRange::Suffix(10).answer(1000), partial(990, 999));
        assert_eq!(ByteRange::Suffix(5000).answer(1000), partial(0, 999));
        assert_eq!(ByteRange::Suffix(0).answer(1000), Unsatisfiable);
        assert_eq!(ByteRange::From(0).answer(0), Unsatisfiable);
        assert_eq!(ByteRange::Suffix(1).answer(0), Unsatisfiable);
        assert_eq!(
            ByteRange::From(0).answer(u64::MAX),
            partial(0, u64::MAX - 1)
        );
    }

    #[test]
    fn targets_decode_once_to_the_name() {
        assert_eq!(target_name("/pxelinux.0").as_deref(), Ok("/pxelinux.0"));
        assert_eq!(target_name("/a%20b?x=1#f").as_deref(), Ok("/a b"));
        assert_eq!(
            target_name("/%2e%2e/etc/passwd").as_deref(),
            Ok("/../etc/passwd")
        );
        assert_eq!(target_name("/%252e%252e/x").as_deref(), Ok("/%2e%2e/x"));
        assert_eq!(target_name("/a%00b").as_deref(), Ok("/a\0b"));
        assert_eq!(target_name("/a%5c..%5cb").as_deref(), Ok("/a\\..\\b"));
        assert_eq!(target_name("http://10.0.0.1/x/y").as_deref(), Ok("/x/y"));
        assert_eq!(target_name("HTTP://h").as_deref(), Ok("/"));
        assert_eq!(target_name("*"), Err(TargetError::NotAPath));
        assert_eq!(target_name("h:80"), Err(TargetError::NotAPath));
        assert_eq!(target_name("ftp://h/x"), Err(TargetError::NotAPath));
        assert_eq!(target_name("/a%2"), Err(TargetError::BadEscape));
        assert_eq!(target_name("/a%zz"), Err(TargetError::BadEscape));
        assert_eq!(target_name("/%ff%fe"), Err(TargetError::NotUtf8));
    }

    #[test]
    fn response_heads_are_emitted_byte_for_byte() {
        let mut out = Vec::new();
        ResponseHead {
            status: Status::PartialContent,
            content_type: "application/efi",
            content_length: Some(500),
            content_range: Some(ContentRange::Partial {
                first: 0,
                last: 499,
                size: 1000,
            }),
            keep_alive: true,
        }
        .emit(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 206 Partial Content\r\n\
             Server: bootd\r\n\
             Content-Type: application/efi\r\n\
             Content-Length: 500\r\n\
             Content-Range: bytes 0-499/1000\r\n\
             Accept-Ranges: bytes\r\n\
             Connection: keep-alive\r\n\r\n"
        );
        let mut out = Vec::new();
        ResponseHead {
            status: Status::RangeNotSatisfiable,
            content_type: "text/plain; charset=utf-8",
            content_length: Some(26),
            content_range: Some(ContentRange::Unsatisfied { size: 1000 }),
            keep_alive: false,
        }
        .emit(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 416 Range Not Satisfiable\r\n\
             Server: bootd\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 26\r\n\
             Content-Range: bytes */1000\r\n\
             Accept-Ranges: bytes\r\n\
             Connection: close\r\n\r\n"
        );
        let mut out = Vec::new();
        ResponseHead {
            status: Status::MethodNotAllowed,
            content_type: "text/plain; charset=utf-8",
            content_length: None,
            content_range: None,
            keep_alive: false,
        }
        .emit(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 405 Method Not Allowed\r\n\
             Server: bootd\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Allow: GET, HEAD\r\n\
             Connection: close\r\n\r\n"
        );
        assert_eq!(error_body(Status::NotFound), "404 Not Found\n");
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("EFI/BOOT/BOOTX64.EFI"), "application/efi");
        assert_eq!(content_type("grubx64.efi"), "application/efi");
        assert_eq!(content_type("d.iso"), "application/vnd.efi-iso");
        assert_eq!(content_type("boot.ipxe"), "text/plain; charset=utf-8");
        assert_eq!(content_type("initrd.gz"), "application/gzip");
        assert_eq!(content_type("vmlinuz"), "application/octet-stream");
        assert_eq!(content_type("dir.d/vmlinuz"), "application/octet-stream");
        assert_eq!(content_type("pxelinux.0"), "application/octet-stream");
    }
}
