//! An HTTP/1.1 response, sans-IO: its head parsed with hard caps on its size and its
//! number of headers, and its body's framing (`Content-Length`, `chunked`, or until
//! the connection closes) decoded from whatever bytes arrive, reporting a body that
//! ends before its framing says it is complete.
//!
//! No socket, no clock: the blocking client in the parent module reads bytes and
//! hands them here. Every input gives a value or a typed error, never a panic, and
//! nothing here holds more than the caps below, whatever the server sends.

use std::fmt;

/// Most bytes a response head (status line and headers) may take. A real one is
/// well under 2 KiB; beyond this the answer is refused, never buffered further.
pub const MAX_HEAD: usize = 32 * 1024;
/// Most header fields a response head may have.
pub const MAX_HEADERS: usize = 64;
/// Most bytes a chunk-size line (size and extensions) may take.
const MAX_CHUNK_LINE: usize = 1024;
/// Most bytes of trailer fields after the last chunk.
const MAX_TRAILERS: usize = 8 * 1024;

/// A response head: the status line and the header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (case-insensitive), in order.
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A redirection (3xx): the client never follows one.
    pub fn is_redirect(&self) -> bool {
        (300..400).contains(&self.status)
    }

    /// An interim answer (1xx) that the real one follows.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status)
    }

    /// How the body of this answer to a GET is delimited (RFC 9112 section 6.3).
    pub fn framing(&self) -> Result<Framing, HeadError> {
        if self.is_interim() || self.status == 204 || self.status == 304 {
            return Ok(Framing::Length(0));
        }
        let codings: Vec<String> = self
            .values("transfer-encoding")
            .flat_map(|v| v.split(','))
            .map(|c| c.trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty())
            .collect();
        if let Some(last) = codings.last() {
            // Only `chunked` alone is decoded: bootd asks for the identity coding.
            return match (last.as_str(), codings.len()) {
                ("chunked", 1) => Ok(Framing::Chunked),
                _ => Err(HeadError::Framing(format!(
                    "unsupported transfer coding `{}`",
                    codings.join(", ")
                ))),
            };
        }
        let mut length = None;
        for value in self.values("content-length").flat_map(|v| v.split(',')) {
            let value = value.trim();
            let parsed = (!value.is_empty()
                && value.len() <= 19
                && value.bytes().all(|b| b.is_ascii_digit()))
            .then(|| value.parse::<u64>().ok())
            .flatten()
            .ok_or_else(|| HeadError::Framing(format!("bad Content-Length `{value}`")))?;
            if length.is_some_and(|l| l != parsed) {
                return Err(HeadError::Framing(
                    "conflicting Content-Length values".into(),
                ));
            }
            length = Some(parsed);
        }
        Ok(length.map_or(Framing::UntilClose, Framing::Length))
    }
}

/// Why a response head is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// More than [`MAX_HEAD`] bytes without the end of the head.
    TooLarge,
    /// More than [`MAX_HEADERS`] header fields.
    TooManyHeaders,
    /// Not an HTTP/1.x response head.
    Malformed(String),
    /// The body's framing cannot be trusted or decoded.
    Framing(String),
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::TooLarge => write!(f, "response head larger than {MAX_HEAD} bytes"),
            HeadError::TooManyHeaders => write!(f, "more than {MAX_HEADERS} header fields"),
            HeadError::Malformed(what) => write!(f, "malformed response head: {what}"),
            HeadError::Framing(what) => write!(f, "{what}"),
        }
    }
}

impl std::error::Error for HeadError {}

/// Parses the head at the start of `buffer`: the head and the bytes it took, or
/// `None` when more bytes are needed. A buffer past [`MAX_HEAD`] without a complete
/// head is an error, whatever its line endings.
pub fn parse_head(buffer: &[u8]) -> Result<Option<(Head, usize)>, HeadError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    match response.parse(buffer) {
        Ok(httparse::Status::Complete(used)) if used <= MAX_HEAD => {
            let head = Head {
                status: response.code.unwrap_or(0),
                reason: response.reason.unwrap_or("").to_string(),
                headers: response
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect(),
            };
            Ok(Some((head, used)))
        }
        Ok(httparse::Status::Complete(_)) => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) if buffer.len() >= MAX_HEAD => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooManyHeaders),
        Err(e) => Err(HeadError::Malformed(e.to_string())),
    }
}

/// How a body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`, ended by a zero-size chunk.
    Chunked,
    /// Until the server closes the connection: a cut cannot be told from the end.
    UntilClose,
}

/// Why a body cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The connection closed before `Content-Length` bytes came.
    Short { received: u64, expected: u64 },
    /// The connection closed before the last (zero-size) chunk.
    Unterminated { received: u64 },
    /// Chunked framing that does not parse.
    Malformed(&'static str),
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Short { received, expected } => {
                write!(f, "the body ended after {received} of {expected} bytes")
            }
            BodyError::Unterminated { received } => write!(
                f,
                "the chunked body ended after {received} bytes, before its last chunk"
            ),
            BodyError::Malformed(what) => write!(f, "malformed chunked body: {what}"),
        }
    }
}

impl std::error::Error for BodyError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length {
        remaining: u64,
    },
    UntilClose,
    /// Expecting a chunk-size line.
    ChunkSize,
    ChunkData {
        remaining: u64,
    },
    /// Expecting the CRLF after a chunk's data.
    ChunkEnd,
    /// After the last chunk: trailer fields, then an empty line.
    Trailers {
        seen: usize,
    },
    Done,
}

/// A body being decoded: feed it the bytes after the head with [`Body::decode`],
/// and tell it the connection closed with [`Body::finish`].
#[derive(Debug, Clone)]
pub struct Body {
    state: State,
    framing: Framing,
    /// Payload bytes handed out so far.
    received: u64,
}

impl Body {
    pub fn new(framing: Framing) -> Body {
        let state = match framing {
            Framing::Length(0) => State::Done,
            Framing::Length(remaining) => State::Length { remaining },
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        };
        Body {
            state,
            framing,
            received: 0,
        }
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Whether the framing says the body is complete: nothing more is to be read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from the start of `input`: returns how many bytes of it were used and
    /// the payload found (a part of `input`, at most `room` bytes). `(0, [])` means
    /// more input is needed (or the body is done). Call again with the rest.
    pub fn decode<'a>(
        &mut self,
        input: &'a [u8],
        room: usize,
    ) -> Result<(usize, &'a [u8]), BodyError> {
        match self.state {
            State::Done => Ok((0, &[])),
            State::UntilClose => Ok(self.payload(input, room, u64::MAX)),
            State::Length { remaining } => {
                let (used, data) = self.payload(input, room, remaining);
                self.state = match remaining - used as u64 {
                    0 => State::Done,
                    remaining => State::Length { remaining },
                };
                Ok((used, data))
            }
            State::ChunkData { remaining } => {
                let (used, data) = self.payload(input, room, remaining);
                self.state = match remaining - used as u64 {
                    0 => State::ChunkEnd,
                    remaining => State::ChunkData { remaining },
                };
                Ok((used, data))
            }
            State::ChunkSize => {
                // httparse takes an empty size as 0: a size needs a hex digit.
                if input.first().is_some_and(|b| !b.is_ascii_hexdigit()) {
                    return Err(BodyError::Malformed("chunk size is not hexadecimal"));
                }
                match httparse::parse_chunk_size(input) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.state = match size {
                            0 => State::Trailers { seen: 0 },
                            size => State::ChunkData { remaining: size },
                        };
                        Ok((used, &[]))
                    }
                    Ok(httparse::Status::Partial) if input.len() > MAX_CHUNK_LINE => {
                        Err(BodyError::Malformed("chunk-size line too long"))
                    }
                    Ok(httparse::Status::Partial) => Ok((0, &[])),
                    Err(_) => Err(BodyError::Malformed("bad chunk-size line")),
                }
            }
            State::ChunkEnd => match input {
                [b'\r', b'\n', ..] => {
                    self.state = State::ChunkSize;
                    Ok((2, &[]))
                }
                [] | [b'\r'] => Ok((0, &[])),
                _ => Err(BodyError::Malformed("chunk data not followed by CRLF")),
            },
            State::Trailers { seen } => match input.windows(2).position(|w| w == b"\r\n") {
                Some(0) => {
                    self.state = State::Done;
                    Ok((2, &[]))
                }
                Some(at) if seen + at + 2 <= MAX_TRAILERS => {
                    self.state = State::Trailers {
                        seen: seen + at + 2,
                    };
                    Ok((at + 2, &[]))
                }
                None if seen + input.len() <= MAX_TRAILERS => Ok((0, &[])),
                _ => Err(BodyError::Malformed("trailer fields too long")),
            },
        }
    }

    /// At most `room` and `limit` payload bytes from the start of `input`.
    fn payload<'a>(&mut self, input: &'a [u8], room: usize, limit: u64) -> (usize, &'a [u8]) {
        let n = usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .min(room)
            .min(input.len());
        self.received += n as u64;
        (n, &input[..n])
    }

    /// The connection closed: fine if the framing is complete (or the body runs
    /// until the close), an error if it was cut.
    pub fn finish(&self) -> Result<(), BodyError> {
        match (self.state, self.framing) {
            (State::Done | State::UntilClose, _) => Ok(()),
            (_, Framing::Length(expected)) => Err(BodyError::Short {
                received: self.received,
                expected,
            }),
            _ => Err(BodyError::Unterminated {
                received: self.received,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &[u8]) -> Result<Option<(Head, usize)>, HeadError> {
        parse_head(text)
    }

    /// Decodes `input` given in pieces of `piece` bytes (as reads deliver them), the
    /// way the blocking client does: unused bytes wait for the next piece.
    fn decode_all(
        framing: Framing,
        input: &[u8],
        piece: usize,
    ) -> (Vec<u8>, Result<(), BodyError>) {
        let mut body = Body::new(framing);
        let mut out = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        for part in input.chunks(piece.max(1)) {
            pending.extend_from_slice(part);
            loop {
                match body.decode(&pending, 7) {
                    Ok((0, _)) => break,
                    Ok((used, data)) => {
                        out.extend_from_slice(data);
                        pending.drain(..used);
                    }
                    Err(e) => return (out, Err(e)),
                }
            }
        }
        let end = if body.is_done() {
            Ok(())
        } else {
            body.finish()
        };
        (out, end)
    }

    #[test]
    fn a_head_is_parsed_with_its_headers_and_length() {
        let text = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello";
        let (h, used) = head(text).unwrap().unwrap();
        assert_eq!(used, text.len() - 5);
        assert_eq!((h.status, h.reason.as_str()), (200, "OK"));
        assert_eq!(h.header("content-length"), Some("5"));
        assert_eq!(h.header("SERVER"), Some("x"));
        assert_eq!(h.framing(), Ok(Framing::Length(5)));
        // Incomplete: more bytes needed.
        assert_eq!(head(&text[..20]), Ok(None));
    }

    /// A header line of 8,191 bytes ended by a bare LF, then an endless header: the
    /// parser never asks for more than the cap, whatever the line endings.
    #[test]
    fn an_endless_head_is_refused_at_the_cap_whatever_its_line_endings() {
        let mut text = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
        text.extend(std::iter::repeat_n(b'a', 8191));
        text.push(b'\n');
        assert_eq!(head(&text), Ok(None), "still under the cap");
        while text.len() < MAX_HEAD {
            text.extend_from_slice(b"X-More: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n");
        }
        assert!(
            matches!(
                head(&text),
                Err(HeadError::TooLarge | HeadError::TooManyHeaders)
            ),
            "{:?}",
            head(&text).map(|h| h.map(|(_, n)| n))
        );
        // One long line without any end.
        let mut text = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
        text.resize(MAX_HEAD, b'a');
        assert_eq!(head(&text), Err(HeadError::TooLarge));
        // A complete head just over the cap is refused too.
        let mut text = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
        text.resize(MAX_HEAD, b'a');
        text.extend_from_slice(b"\r\n\r\n");
        assert_eq!(head(&text), Err(HeadError::TooLarge));
    }

    #[test]
    fn bare_lf_heads_under_the_cap_parse() {
        let (h, _) = head(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing(), Ok(Framing::Length(2)));
    }

    #[test]
    fn too_many_headers_are_refused() {
        let mut text = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            text.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        text.extend_from_slice(b"\r\n");
        assert_eq!(head(&text), Err(HeadError::TooManyHeaders));
    }

    #[test]
    fn malformed_heads_are_errors() {
        for text in [
            &b"HTTP/1.1 2000 OK\r\n\r\n"[..],
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"\x00\x01\x02\r\n\r\n",
        ] {
            assert!(
                matches!(head(text), Err(HeadError::Malformed(_))),
                "{text:?}"
            );
        }
    }

    #[test]
    fn framing_follows_the_headers() {
        let framing = |text: &str| head(text.as_bytes()).unwrap().unwrap().0.framing();
        assert_eq!(framing("HTTP/1.1 200 OK\r\n\r\n"), Ok(Framing::UntilClose));
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n"),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            framing("HTTP/1.1 204 No Content\r\n\r\n"),
            Ok(Framing::Length(0))
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n"),
            Ok(Framing::Length(7))
        );
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 8\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        ] {
            assert!(matches!(framing(bad), Err(HeadError::Framing(_))), "{bad}");
        }
    }

    #[test]
    fn redirects_are_recognised_with_their_location() {
        let (h, _) = head(b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:8080/x\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.is_redirect());
        assert_eq!(h.header("location"), Some("http://127.0.0.1:8080/x"));
        let (h, _) = head(b"HTTP/1.1 200 OK\r\n\r\n").unwrap().unwrap();
        assert!(!h.is_redirect());
    }

    #[test]
    fn a_length_body_is_cut_at_its_length_and_a_short_one_is_an_error() {
        for piece in [1, 3, 100] {
            let (data, end) = decode_all(Framing::Length(10), b"0123456789extra", piece);
            assert_eq!(
                (data.as_slice(), end),
                (&b"0123456789"[..], Ok(())),
                "{piece}"
            );
            let (data, end) = decode_all(Framing::Length(10), b"abc", piece);
            assert_eq!(data, b"abc");
            assert_eq!(
                end,
                Err(BodyError::Short {
                    received: 3,
                    expected: 10
                })
            );
            assert_eq!(
                end.unwrap_err().to_string(),
                "the body ended after 3 of 10 bytes"
            );
        }
        assert!(Body::new(Framing::Length(0)).is_done());
    }

    #[test]
    fn a_chunked_body_is_decoded_in_any_pieces() {
        let wire = b"5;name=value\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n";
        for piece in [1, 2, 5, 1000] {
            let (data, end) = decode_all(Framing::Chunked, wire, piece);
            assert_eq!(data, b"hello 0123456789", "{piece}");
            assert_eq!(end, Ok(()), "{piece}");
        }
    }

    /// A chunked answer cut before its last chunk looked complete: it is an error.
    #[test]
    fn a_chunked_body_cut_before_its_last_chunk_is_an_error() {
        for cut in [
            &b"5\r\nhello\r\n"[..],
            b"5\r\nhel",
            b"5\r\nhello",
            b"5\r\nhello\r\n0",
            b"5\r\nhello\r\n0\r\n",
            b"5\r\nhello\r\n0\r\nTrailer: x\r\n",
            b"",
        ] {
            let (_, end) = decode_all(Framing::Chunked, cut, 3);
            assert!(
                matches!(end, Err(BodyError::Unterminated { .. })),
                "{:?}: {end:?}",
                String::from_utf8_lossy(cut)
            );
        }
        let (_, end) = decode_all(Framing::Chunked, b"5\r\nhello\r\n", 100);
        assert_eq!(
            end.unwrap_err().to_string(),
            "the chunked body ended after 5 bytes, before its last chunk"
        );
    }

    #[test]
    fn malformed_chunks_are_errors() {
        for bad in [
            &b"\r\nhello\r\n0\r\n\r\n"[..],
            b"zz\r\nhello",
            b"5\r\nhelloXX0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"fffffffffffffffff\r\n",
        ] {
            let (_, end) = decode_all(Framing::Chunked, bad, 4);
            assert!(
                matches!(end, Err(BodyError::Malformed(_))),
                "{:?}: {end:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut long = b"5;".to_vec();
        long.resize(MAX_CHUNK_LINE + 10, b'x');
        let (_, end) = decode_all(Framing::Chunked, &long, 64);
        assert_eq!(end, Err(BodyError::Malformed("chunk-size line too long")));
        let mut trailers = b"0\r\n".to_vec();
        while trailers.len() < MAX_TRAILERS + 100 {
            trailers.extend_from_slice(b"T: vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\r\n");
        }
        let (_, end) = decode_all(Framing::Chunked, &trailers, 64);
        assert_eq!(end, Err(BodyError::Malformed("trailer fields too long")));
    }

    #[test]
    fn a_body_until_close_ends_with_the_connection() {
        let (data, end) = decode_all(Framing::UntilClose, b"anything", 3);
        assert_eq!((data.as_slice(), end), (&b"anything"[..], Ok(())));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300), piece in 1usize..40) {
            let _ = parse_head(&bytes);
            for framing in [Framing::Chunked, Framing::Length(50), Framing::UntilClose] {
                let _ = decode_all(framing, &bytes, piece);
            }
        }
    }
}
