//! One HTTP connection's state machine (sans-IO): it reads request heads, composes
//! each response (head, then a body taken from a file or a stream), says what to
//! write next, keeps the connection for the next request or closes it, and holds the
//! deadlines that bound what a client may cost: a new or kept-alive connection silent
//! for `idle_timeout`, a request head not complete within `request_timeout` of its
//! first byte (a client sending a byte a second), a client that stops reading its
//! response, and the lingering close after the last response.
//!
//! The endpoint feeds it (bytes received, bytes written, the source's answer) and
//! takes from it the requests to resolve and the exchanges to log; the connection
//! never sees a socket, a file or a clock.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::wire::{
    self, ByteRange, ContentRange, Method, RangeAnswer, Request, ResponseHead, Status,
};

/// Unparsed input kept while a response is under way (pipelined requests); a client
/// that sends more before reading its answers is cut off.
const INPUT_CAP: usize = 2 * wire::MAX_HEAD;
/// After the last response, input is read and dropped this long, so that closing
/// with unread bytes does not reset the connection before the client has read the
/// answer (an oversized head's 431, say)…
pub const LINGER: Duration = Duration::from_secs(2);
/// … and at most this much of it (an oversized head's rest, a refused body).
const LINGER_MAX: usize = 256 * 1024;

/// How long a connection may wait on its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A connection with no request under way, and a response the client stops
    /// reading, are closed after this much silence.
    pub idle: Duration,
    /// A request head must be complete within this of its first byte.
    pub request: Duration,
}

/// What to write on the connection next.
#[derive(Debug, PartialEq, Eq)]
pub enum Write<'a> {
    /// These bytes (a response head, an error body, bytes from a stream).
    Bytes(&'a [u8]),
    /// `len` bytes of the connection's open file, from `offset`.
    File { offset: u64, len: u64 },
    /// Nothing more to send: shut down the sending side.
    Shutdown,
}

/// What the connection tells the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A request head arrived: resolve it.
    Request(Request),
    /// A response is complete (or cut): log it.
    Done(Exchange),
    /// The source is no longer needed (file or stream).
    ReleaseSource,
    /// A line for the log, at debug (closing reasons).
    Debug(String),
}

/// One request and its answer, for the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub method: String,
    pub target: String,
    pub status: Option<Status>,
    /// Body bytes sent.
    pub bytes: u64,
    pub started: Instant,
    pub ended: Instant,
    /// Why it ended early, if it did.
    pub cut: Option<String>,
    /// `first-last/size` of a 206.
    pub range: Option<(u64, u64, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for (the rest of) a request head.
    Reading,
    /// The request is resolved and its source opened (or the mirror asked).
    Resolving,
    /// Writing the response: `out`, then the body.
    Sending,
    /// The last response is out: write what is left, shut down, drop input.
    Lingering {
        since: Instant,
        shut: bool,
    },
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    None,
    /// File bytes `next..end` are still to send.
    File {
        next: u64,
        end: u64,
    },
    /// Stream bytes: `skip` to drop first, then `remaining` to send (all, when the
    /// length is unknown); `ended` once the source said so.
    Stream {
        skip: u64,
        remaining: Option<u64>,
        ended: bool,
    },
}

/// The request being answered.
#[derive(Debug, Clone)]
struct Current {
    request: Request,
    exchange: Exchange,
    keep_alive: bool,
}

#[derive(Debug)]
pub struct Connection {
    pub peer: SocketAddr,
    state: State,
    input: Vec<u8>,
    out: Vec<u8>,
    written: usize,
    body: Body,
    current: Option<Current>,
    last_progress: Instant,
    /// When the first byte of the head being read arrived.
    head_since: Option<Instant>,
    /// No more requests on this connection (the client half-closed, or sent more
    /// than it may before reading).
    last_request: bool,
    discarded: usize,
    notes: VecDeque<Note>,
}

impl Connection {
    pub fn new(now: Instant, peer: SocketAddr) -> Connection {
        Connection {
            peer,
            state: State::Reading,
            input: Vec::new(),
            out: Vec::new(),
            written: 0,
            body: Body::None,
            current: None,
            last_progress: now,
            head_since: None,
            last_request: false,
            discarded: 0,
            notes: VecDeque::new(),
        }
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Waiting for a request with nothing of it received: the connection a new
    /// client may take when every slot is held.
    pub fn is_idle(&self) -> bool {
        self.state == State::Reading && self.input.is_empty()
    }

    pub fn idle_since(&self) -> Instant {
        self.last_progress
    }

    /// Waiting for the stream's answer or more of its bytes, with room for them.
    pub fn wants_stream(&self) -> bool {
        match (self.state, self.body) {
            (State::Resolving, Body::Stream { .. }) => true,
            (State::Sending, Body::Stream { ended: false, .. }) => self.written == self.out.len(),
            _ => false,
        }
    }

    /// The name the request under way asks for (decoded), or nothing.
    pub fn current_name(&self) -> String {
        self.current
            .as_ref()
            .and_then(|c| wire::target_name(&c.request.target).ok())
            .unwrap_or_default()
    }

    pub fn take_note(&mut self) -> Option<Note> {
        self.notes.pop_front()
    }

    /// Bytes from the client. Only a response's own progress keeps it alive: a
    /// client that sends while it does not read is still cut when its answer stalls.
    pub fn receive(&mut self, now: Instant, bytes: &[u8]) {
        match self.state {
            State::Closed => {}
            State::Lingering { .. } => {
                self.discarded = self.discarded.saturating_add(bytes.len());
                if self.discarded > LINGER_MAX {
                    self.close("sent too much after its last response".into());
                }
            }
            State::Reading => {
                self.last_progress = now;
                if self.head_since.is_none() && !bytes.is_empty() {
                    self.head_since = Some(now);
                }
                self.input.extend_from_slice(bytes);
                self.next_request(now);
            }
            State::Resolving | State::Sending if !self.reads_more() => {
                // No further request will be read: what comes is dropped, up to a point.
                self.discarded = self.discarded.saturating_add(bytes.len());
                if self.discarded > LINGER_MAX {
                    self.cut(
                        now,
                        "sent too much after a request that ends the connection",
                    );
                }
            }
            State::Resolving | State::Sending => {
                if self.input.len() + bytes.len() > INPUT_CAP {
                    self.cut(now, "sent too many requests ahead of its answers");
                    return;
                }
                self.input.extend_from_slice(bytes);
            }
        }
    }

    /// The client closed its sending side: the request under way (if any) is
    /// answered, and no other is read.
    pub fn receive_end(&mut self) {
        self.last_request = true;
        match self.state {
            State::Reading if self.input.is_empty() => self.close("closed by the client".into()),
            State::Reading => self.close("closed by the client in the middle of a request".into()),
            State::Lingering { .. } => self.close("closed".into()),
            State::Resolving | State::Sending | State::Closed => {
                if let Some(current) = &mut self.current {
                    current.keep_alive = false;
                }
            }
        }
    }

    /// Whether another request may follow the one under way.
    fn reads_more(&self) -> bool {
        !self.last_request && self.current.as_ref().is_some_and(|c| c.keep_alive)
    }

    /// Parses the next request head from the input, if it is all there.
    fn next_request(&mut self, now: Instant) {
        if self.input.is_empty() {
            return;
        }
        match wire::parse_request(&self.input) {
            Ok(None) => {}
            Ok(Some((request, length))) => {
                self.input.drain(..length);
                self.head_since = None;
                self.state = State::Resolving;
                let keep_alive = request.keep_alive && !request.has_body && !self.last_request;
                self.current = Some(Current {
                    exchange: Exchange {
                        method: request.method_text.clone(),
                        target: printable(&request.target),
                        status: None,
                        bytes: 0,
                        started: now,
                        ended: now,
                        cut: None,
                        range: None,
                    },
                    request: request.clone(),
                    keep_alive,
                });
                self.notes.push_back(Note::Request(request));
            }
            Err(error) => {
                let target = first_line(&self.input);
                self.input.clear();
                self.current = Some(Current {
                    exchange: Exchange {
                        method: "-".into(),
                        target,
                        status: None,
                        bytes: 0,
                        started: now,
                        ended: now,
                        cut: Some(error.to_string()),
                        range: None,
                    },
                    request: Request {
                        method: Method::Other,
                        method_text: "-".into(),
                        target: String::new(),
                        minor_version: 1,
                        keep_alive: false,
                        range: None,
                        if_range: false,
                        has_body: false,
                        has_host: true,
                    },
                    keep_alive: false,
                });
                self.respond_error(now, error.status());
            }
        }
    }

    /// Answers the current request with an error status and a short text body.
    pub fn respond_error(&mut self, now: Instant, status: Status) {
        self.respond_error_with(now, status, None);
    }

    fn respond_error_with(&mut self, now: Instant, status: Status, range: Option<ContentRange>) {
        let Some(current) = &mut self.current else {
            return;
        };
        // A refused request may leave a body or garbage behind: only a plain
        // refusal (404, 403, 401…) of a well-formed request keeps the connection.
        let keep_alive = current.keep_alive
            && !matches!(
                status,
                Status::BadRequest
                    | Status::RequestTimeout
                    | Status::HeaderFieldsTooLarge
                    | Status::ServiceUnavailable
            );
        current.keep_alive = keep_alive;
        let text = wire::error_body(status);
        let head_only = current.request.method == Method::Head;
        self.start_response(
            now,
            ResponseHead {
                status,
                content_type: "text/plain; charset=utf-8",
                content_length: Some(text.len() as u64),
                content_range: range,
                keep_alive,
            },
            Body::None,
        );
        if !head_only {
            self.out.extend_from_slice(text.as_bytes());
        }
        self.settle(now);
    }

    /// Answers the current request with a page bootd made itself (200, whole).
    pub fn respond_page(&mut self, now: Instant, content_type: &'static str, body: &[u8]) {
        if self.state != State::Resolving {
            return;
        }
        let Some(current) = &mut self.current else {
            return;
        };
        let keep_alive = current.keep_alive;
        let head_only = current.request.method == Method::Head;
        self.start_response(
            now,
            ResponseHead {
                status: Status::Ok,
                content_type,
                content_length: Some(body.len() as u64),
                content_range: None,
                keep_alive,
            },
            Body::None,
        );
        if !head_only {
            self.out.extend_from_slice(body);
            if let Some(current) = &mut self.current {
                current.exchange.bytes = body.len() as u64;
            }
        }
        self.settle(now);
    }

    /// Answers the current request from a file of `size` bytes (200, 206 or 416).
    pub fn respond_file(&mut self, now: Instant, size: u64, content_type: &'static str) {
        if self.state != State::Resolving {
            return;
        }
        let Some((first, end, range)) = self.span(now, size) else {
            return;
        };
        let keep_alive = self.current.as_ref().is_some_and(|c| c.keep_alive);
        self.start_response(
            now,
            ResponseHead {
                status: if range.is_some() {
                    Status::PartialContent
                } else {
                    Status::Ok
                },
                content_type,
                content_length: Some(end - first),
                content_range: range,
                keep_alive,
            },
            Body::File { next: first, end },
        );
        self.settle(now);
    }

    /// Answers the current request from a stream whose length is `length` (when the
    /// mirror said it); without one the body ends with the connection.
    pub fn respond_stream(
        &mut self,
        now: Instant,
        length: Option<u64>,
        content_type: &'static str,
    ) {
        if self.state != State::Resolving {
            return;
        }
        let keep_alive = self.current.as_ref().is_some_and(|c| c.keep_alive);
        let Some(size) = length else {
            if let Some(current) = &mut self.current {
                current.keep_alive = false;
            }
            self.start_response(
                now,
                ResponseHead {
                    status: Status::Ok,
                    content_type,
                    content_length: None,
                    content_range: None,
                    keep_alive: false,
                },
                Body::Stream {
                    skip: 0,
                    remaining: None,
                    ended: false,
                },
            );
            return self.settle(now);
        };
        let Some((first, end, range)) = self.span(now, size) else {
            return;
        };
        self.start_response(
            now,
            ResponseHead {
                status: if range.is_some() {
                    Status::PartialContent
                } else {
                    Status::Ok
                },
                content_type,
                content_length: Some(end - first),
                content_range: range,
                keep_alive,
            },
            Body::Stream {
                skip: first,
                remaining: Some(end - first),
                ended: false,
            },
        );
        self.settle(now);
    }

    /// The source is a stream: wait for its answer before the head.
    pub fn await_stream(&mut self) {
        if self.state == State::Resolving {
            self.body = Body::Stream {
                skip: 0,
                remaining: None,
                ended: false,
            };
        }
    }

    /// Bytes `first..end` of a file of `size` the request asks for, and the
    /// `Content-Range` of a 206; `None` when it was answered 416 here.
    fn span(&mut self, now: Instant, size: u64) -> Option<(u64, u64, Option<ContentRange>)> {
        let current = self.current.as_ref()?;
        let range = match &current.request.range {
            Some(value) if !current.request.if_range => ByteRange::parse(value),
            _ => None,
        };
        match range.map(|r| r.answer(size)) {
            None => Some((0, size, None)),
            Some(RangeAnswer::Partial { first, last }) => {
                if let Some(current) = &mut self.current {
                    current.exchange.range = Some((first, last, size));
                }
                Some((
                    first,
                    last + 1,
                    Some(ContentRange::Partial { first, last, size }),
                ))
            }
            Some(RangeAnswer::Unsatisfiable) => {
                self.notes.push_back(Note::ReleaseSource);
                self.body = Body::None;
                self.respond_error_with(
                    now,
                    Status::RangeNotSatisfiable,
                    Some(ContentRange::Unsatisfied { size }),
                );
                None
            }
        }
    }

    fn start_response(&mut self, now: Instant, head: ResponseHead, body: Body) {
        self.last_progress = now;
        self.out.clear();
        self.written = 0;
        head.emit(&mut self.out);
        let head_only = self
            .current
            .as_ref()
            .is_some_and(|c| c.request.method == Method::Head);
        if let Some(current) = &mut self.current {
            current.exchange.status = Some(head.status);
        }
        self.body = if head_only { Body::None } else { body };
        if head_only && !matches!(body, Body::None) {
            self.notes.push_back(Note::ReleaseSource);
        }
        self.state = State::Sending;
    }

    /// Bytes of the stream (only asked for when [`Connection::wants_stream`]).
    pub fn stream_data(&mut self, now: Instant, mut bytes: &[u8]) {
        let Body::Stream {
            skip, remaining, ..
        } = &mut self.body
        else {
            return;
        };
        self.last_progress = now;
        let skipped = (*skip).min(bytes.len() as u64);
        *skip -= skipped;
        bytes = bytes.get(skipped as usize..).unwrap_or_default();
        if let Some(left) = remaining {
            let taken = (*left).min(bytes.len() as u64);
            bytes = bytes.get(..taken as usize).unwrap_or_default();
            *left -= taken;
            if *left == 0 {
                self.body = Body::Stream {
                    skip: 0,
                    remaining: Some(0),
                    ended: true,
                };
                self.notes.push_back(Note::ReleaseSource);
            }
        }
        if self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
        }
        self.out.extend_from_slice(bytes);
        if let Some(current) = &mut self.current {
            current.exchange.bytes += bytes.len() as u64;
        }
        self.settle(now);
    }

    /// The stream ended.
    pub fn stream_end(&mut self, now: Instant) {
        match self.body {
            Body::Stream {
                remaining: Some(left),
                ended: false,
                ..
            } if left > 0 => self.cut(now, "the source ended before its announced length"),
            Body::Stream { ended: false, .. } => {
                self.body = Body::Stream {
                    skip: 0,
                    remaining: Some(0),
                    ended: true,
                };
                self.settle(now);
            }
            _ => {}
        }
    }

    /// The source failed: before the head an error answers the request; after it
    /// the connection is cut (the client sees a short body, never a whole one).
    pub fn source_failed(&mut self, now: Instant, status: Status, reason: String) {
        match self.state {
            State::Resolving => {
                if let Some(current) = &mut self.current {
                    current.exchange.cut = Some(reason);
                }
                self.body = Body::None;
                self.respond_error(now, status);
            }
            State::Sending => self.cut(now, &reason),
            _ => {}
        }
    }

    /// The response under way, when its body is being sent: the target asked for,
    /// the body bytes sent, and their total when known.
    pub fn progress(&self) -> Option<(&str, u64, Option<u64>)> {
        if self.state != State::Sending {
            return None;
        }
        let current = self.current.as_ref()?;
        let sent = current.exchange.bytes;
        let total = match self.body {
            Body::File { next, end } => Some(sent + end.saturating_sub(next)),
            Body::Stream { remaining, .. } => remaining.map(|r| sent + r),
            Body::None => return None,
        };
        Some((&current.exchange.target, sent, total))
    }

    /// What to write next.
    pub fn write(&self) -> Option<Write<'_>> {
        if let Some(rest) = self.out.get(self.written..).filter(|r| !r.is_empty()) {
            return match self.state {
                State::Sending | State::Lingering { shut: false, .. } => Some(Write::Bytes(rest)),
                _ => None,
            };
        }
        match (self.state, self.body) {
            (State::Sending, Body::File { next, end }) if next < end => Some(Write::File {
                offset: next,
                len: end - next,
            }),
            (State::Lingering { shut: false, .. }, _) => Some(Write::Shutdown),
            _ => None,
        }
    }

    /// `n` bytes of what [`Connection::write`] gave were written (for a shutdown, 0).
    pub fn written(&mut self, now: Instant, n: u64) {
        self.last_progress = now;
        let pending = self.out.len() - self.written;
        if pending > 0 {
            let n = usize::try_from(n).unwrap_or(usize::MAX).min(pending);
            self.written += n;
        } else if let Body::File { next, end } = &mut self.body {
            let n = n.min(*end - *next);
            *next += n;
            if let Some(current) = &mut self.current {
                current.exchange.bytes += n;
            }
        } else if let State::Lingering { since, .. } = self.state {
            self.state = State::Lingering { since, shut: true };
            return;
        }
        self.settle(now);
    }

    /// The file ended before the bytes its response announced: it shrank.
    pub fn file_ended(&mut self, now: Instant) {
        self.cut(
            now,
            "the file ended before its announced size (changed while served)",
        );
    }

    /// Writing failed: the client is gone.
    pub fn write_failed(&mut self, now: Instant, reason: &str) {
        if self.current.is_some() && self.state == State::Sending {
            self.cut(now, reason);
        } else {
            self.close(format!("write failed: {reason}"));
        }
    }

    /// Moves on once the response is all written.
    fn settle(&mut self, now: Instant) {
        if self.state != State::Sending || self.written < self.out.len() {
            return;
        }
        let done = match self.body {
            Body::None => true,
            Body::File { next, end } => next >= end,
            Body::Stream { ended, .. } => ended,
        };
        if !done {
            return;
        }
        if !matches!(self.body, Body::None) {
            self.notes.push_back(Note::ReleaseSource);
        }
        self.body = Body::None;
        let keep_alive = self.current.as_ref().is_some_and(|c| c.keep_alive);
        if let Some(mut current) = self.current.take() {
            current.exchange.ended = now;
            self.notes.push_back(Note::Done(current.exchange));
        }
        self.out.clear();
        self.written = 0;
        self.last_progress = now;
        if keep_alive && !self.last_request {
            self.state = State::Reading;
            if !self.input.is_empty() {
                self.head_since = Some(now);
            }
            self.next_request(now);
        } else {
            self.state = State::Lingering {
                since: now,
                shut: false,
            };
        }
    }

    /// Ends the response under way early: logged with `reason`, connection closed.
    fn cut(&mut self, now: Instant, reason: &str) {
        if let Some(mut current) = self.current.take() {
            current.exchange.ended = now;
            current.exchange.cut = Some(reason.to_owned());
            self.notes.push_back(Note::Done(current.exchange));
        }
        if !matches!(self.body, Body::None) {
            self.notes.push_back(Note::ReleaseSource);
        }
        self.body = Body::None;
        self.state = State::Closed;
    }

    fn close(&mut self, reason: String) {
        if self.state != State::Closed {
            self.notes.push_back(Note::Debug(reason));
            if !matches!(self.body, Body::None) {
                self.notes.push_back(Note::ReleaseSource);
            }
            self.body = Body::None;
            self.state = State::Closed;
        }
    }

    /// When [`Connection::expire`] must be called.
    pub fn deadline(&self, timeouts: &Timeouts) -> Option<Instant> {
        match self.state {
            State::Closed => None,
            State::Reading => Some(match self.head_since {
                Some(since) => since + timeouts.request,
                None => self.last_progress + timeouts.idle,
            }),
            State::Resolving | State::Sending => Some(self.last_progress + timeouts.idle),
            State::Lingering { since, .. } => Some(since + LINGER),
        }
    }

    /// The deadline passed (the caller checked it against [`Connection::deadline`]).
    pub fn expire(&mut self, now: Instant, timeouts: &Timeouts) {
        match self.state {
            State::Reading if self.head_since.is_some() => {
                let request = timeouts.request.as_secs_f64();
                let target = first_line(&self.input);
                self.input.clear();
                self.head_since = None;
                self.current = Some(Current {
                    exchange: Exchange {
                        method: "-".into(),
                        target,
                        status: None,
                        bytes: 0,
                        started: now,
                        ended: now,
                        cut: Some(format!("request head not complete within {request} s")),
                        range: None,
                    },
                    request: Request {
                        method: Method::Other,
                        method_text: "-".into(),
                        target: String::new(),
                        minor_version: 1,
                        keep_alive: false,
                        range: None,
                        if_range: false,
                        has_body: false,
                        has_host: true,
                    },
                    keep_alive: false,
                });
                self.last_request = true;
                self.respond_error(now, Status::RequestTimeout);
            }
            State::Reading => self.close(format!("idle for {} s", timeouts.idle.as_secs_f64())),
            State::Resolving if matches!(self.body, Body::Stream { .. }) => self.source_failed(
                now,
                Status::GatewayTimeout,
                "the mirror did not answer in time".into(),
            ),
            State::Resolving | State::Sending => self.cut(
                now,
                &format!("no progress for {} s", timeouts.idle.as_secs_f64()),
            ),
            State::Lingering { .. } => self.close("closed after its last response".into()),
            State::Closed => {}
        }
    }
}

/// The start of what a client sent, for the log line of a request that did not parse.
fn first_line(input: &[u8]) -> String {
    let line = input
        .split(|b| *b == b'\r' || *b == b'\n')
        .next()
        .unwrap_or_default();
    printable(&String::from_utf8_lossy(line.get(..80).unwrap_or(line)))
}

/// `text` with control characters escaped, cut to 200 characters, for log lines.
pub fn printable(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().take(200) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if text.chars().nth(200).is_some() {
        out.push('…');
    }
    out
}
