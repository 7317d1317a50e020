//! One NBD connection (sans-IO): the fixed-newstyle handshake, the options, and
//! the transmission phase, as a state machine fed with the bytes the client sent
//! and `now`, with no socket, file or clock of its own.
//!
//! Input: [`Connection::handle_input`] (at most [`Connection::input_room`] bytes),
//! [`Connection::handle_transmitted`] (how much of its output left), the answers to
//! what it asked of the disk ([`Connection::handle_read`], [`Connection::handle_done`])
//! and [`Connection::handle_timeout`]. Output: [`Connection::poll_transmit`] (the
//! bytes to send), [`Connection::poll_event`] (log lines, the export chosen, and one
//! disk operation at a time) and [`Connection::poll_timeout`].
//!
//! Memory is bounded whatever the client sends: the input buffer has a fixed size,
//! a WRITE's data is handed on in chunks as it arrives rather than gathered, and a
//! READ's data is asked for in chunks only while the output waiting for the client
//! is small. One disk operation is outstanding at a time, and replies leave in the
//! order of the requests.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use log::Level;

use super::wire::{self, Command, InfoRequest, OptionCode, OptionHeader, Request, SimpleReply};

/// The largest READ or WRITE payload (the size every client may assume).
pub const MAX_PAYLOAD: u32 = 32 << 20;
/// Option data longer than this is skipped and refused: names are at most 4096 bytes.
const MAX_OPTION_DATA: u32 = 8 << 10;
/// Options in one handshake; a client looping on options is cut off.
const MAX_OPTIONS: usize = 64;
/// Bytes of input held at once.
pub const INPUT_CAPACITY: usize = 256 << 10;
/// A WRITE's data is handed on once this much of it (or all that is left) is in.
const WRITE_CHUNK: usize = 128 << 10;
/// A READ's data is asked for in pieces of this size...
const READ_CHUNK: u32 = 256 << 10;
/// ...and only while less than this waits to be sent.
const OUTPUT_HIGH: usize = 256 << 10;
/// Small replies are appended to the output's last buffer up to this size.
const COALESCE: usize = 64 << 10;
/// How long a client may take from connecting to choosing an export.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may leave a request half sent, or its replies unread.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// What the connection knows about an export: what a client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportInfo {
    pub name: String,
    pub size: u64,
    /// Transmission flags (`wire::TX_*`).
    pub flags: u16,
}

/// What the shell should do or log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Log(Level, String),
    /// The client chose the `export`-th export; the transmission phase begins.
    Selected {
        export: usize,
    },
    /// Read `len` bytes at `offset`: answer with [`Connection::handle_read`].
    Read {
        offset: u64,
        len: u32,
    },
    /// Write `data` at `offset` (and make it durable when `fua`): answer with
    /// [`Connection::handle_done`].
    Write {
        offset: u64,
        data: Vec<u8>,
        fua: bool,
    },
    /// Make every write answered so far durable: answer with `handle_done`.
    Flush,
    /// The client no longer needs these bytes: answer with `handle_done`.
    Trim {
        offset: u64,
        len: u32,
    },
    /// Write zeroes: answer with `handle_done`.
    WriteZeroes {
        offset: u64,
        len: u32,
        fua: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    ClientFlags,
    OptionHeader,
    OptionData(OptionHeader),
    /// Option data too long to hold: `remaining` bytes are skipped, then refused.
    SkipOption {
        header: OptionHeader,
        remaining: u32,
    },
    Transmission,
    /// A WRITE's data arriving; `error` set: it is skipped and that error replied.
    WriteData {
        cookie: u64,
        offset: u64,
        remaining: u32,
        fua: bool,
        error: Option<u32>,
    },
    /// No more input: close once the output has left.
    Closing,
    /// Close now.
    Closed,
}

/// The disk operation the connection is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Read { len: u32 },
    WriteChunk,
    Simple { cookie: u64 },
}

/// A READ being answered piece by piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reading {
    cookie: u64,
    offset: u64,
    remaining: u32,
    /// The reply's header has been queued (with error 0): a later failure can only
    /// close the connection.
    started: bool,
}

pub struct Connection {
    state: State,
    input: Vec<u8>,
    /// Bytes of `input` already consumed.
    consumed: usize,
    output: VecDeque<Vec<u8>>,
    /// Bytes of the first output buffer already sent.
    sent: usize,
    output_len: usize,
    events: VecDeque<Event>,
    waiting: Option<Waiting>,
    reading: Option<Reading>,
    no_zeroes: bool,
    options: usize,
    /// The chosen export: its size and transmission flags.
    export: Option<(u64, u16)>,
    handshake_deadline: Instant,
    /// When input last arrived and output last left.
    last_input: Instant,
    last_output: Instant,
    /// Refused requests so far: the first is logged at info, the rest at debug.
    refusals: u64,
}

impl Connection {
    /// A new connection: its greeting is ready to send.
    pub fn new(now: Instant) -> Connection {
        let mut c = Connection {
            state: State::ClientFlags,
            input: Vec::new(),
            consumed: 0,
            output: VecDeque::new(),
            sent: 0,
            output_len: 0,
            events: VecDeque::new(),
            waiting: None,
            reading: None,
            no_zeroes: false,
            options: 0,
            export: None,
            handshake_deadline: now + HANDSHAKE_TIMEOUT,
            last_input: now,
            last_output: now,
            refusals: 0,
        };
        c.push_output(wire::emit_greeting(
            wire::FLAG_FIXED_NEWSTYLE | wire::FLAG_NO_ZEROES,
        ));
        c
    }

    /// How many bytes [`Connection::handle_input`] takes now.
    pub fn input_room(&self) -> usize {
        if matches!(self.state, State::Closing | State::Closed) {
            return 0;
        }
        INPUT_CAPACITY.saturating_sub(self.input.len() - self.consumed)
    }

    /// Bytes from the client (at most `input_room()`; more are dropped, unread).
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8], exports: &[ExportInfo]) {
        let room = self.input_room();
        if bytes.is_empty() || room == 0 {
            return;
        }
        if self.consumed > 0 && self.consumed * 2 >= self.input.len() {
            self.input.drain(..self.consumed);
            self.consumed = 0;
        }
        self.input
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.last_input = now;
        self.advance(exports);
    }

    /// The bytes to send next (empty: nothing to send).
    pub fn poll_transmit(&self) -> impl Iterator<Item = &[u8]> {
        self.output.iter().enumerate().map(|(i, b)| {
            if i == 0 {
                b.get(self.sent..).unwrap_or_default()
            } else {
                b.as_slice()
            }
        })
    }

    /// Bytes waiting to be sent.
    pub fn output_len(&self) -> usize {
        self.output_len
    }

    /// `n` bytes of [`Connection::poll_transmit`] were sent.
    pub fn handle_transmitted(&mut self, now: Instant, mut n: usize, exports: &[ExportInfo]) {
        if n > 0 {
            self.last_output = now;
        }
        while n > 0 {
            let Some(front) = self.output.front() else {
                break;
            };
            let left = front.len() - self.sent;
            let taken = left.min(n);
            self.sent += taken;
            self.output_len -= taken;
            n -= taken;
            if self.sent == front.len() {
                self.output.pop_front();
                self.sent = 0;
            }
        }
        self.advance(exports);
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The answer to [`Event::Read`]: the bytes, or the error to send.
    pub fn handle_read(&mut self, result: Result<Vec<u8>, u32>, exports: &[ExportInfo]) {
        let Some(Waiting::Read { len }) = self.waiting else {
            return;
        };
        self.waiting = None;
        let Some(mut reading) = self.reading.take() else {
            return;
        };
        let result = result.and_then(|data| {
            if data.len() == len as usize {
                Ok(data)
            } else {
                Err(wire::EIO)
            }
        });
        match result {
            Ok(data) => {
                if !reading.started {
                    self.reply(reading.cookie, 0);
                    reading.started = true;
                }
                self.push_output(data);
                reading.offset += u64::from(len);
                reading.remaining -= len;
                if reading.remaining > 0 {
                    self.reading = Some(reading);
                }
            }
            Err(error) if !reading.started => self.refuse(reading.cookie, error, "the read failed"),
            Err(error) => {
                self.log(
                    Level::Info,
                    format!(
                        "a read failed (error {error}) after its reply had begun; closing the connection"
                    ),
                );
                self.state = State::Closed;
            }
        }
        self.advance(exports);
    }

    /// The answer to a WRITE, FLUSH, TRIM or WRITE_ZEROES: `Err` holds the error to send.
    pub fn handle_done(&mut self, result: Result<(), u32>, exports: &[ExportInfo]) {
        match self.waiting.take() {
            Some(Waiting::WriteChunk) => {
                if let (State::WriteData { error, .. }, Err(e)) = (&mut self.state, result) {
                    error.get_or_insert(e);
                }
                self.finish_write();
            }
            Some(Waiting::Simple { cookie }) => match result {
                Ok(()) => self.reply(cookie, 0),
                Err(error) => self.refuse(cookie, error, "the operation failed"),
            },
            other => self.waiting = other,
        }
        self.advance(exports);
    }

    /// When [`Connection::handle_timeout`] should be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Closed => None,
            _ if self.export.is_none() => Some(self.handshake_deadline),
            _ if self.output_len > 0 => Some(self.last_output + STALL_TIMEOUT),
            State::WriteData { .. } => Some(self.last_input + STALL_TIMEOUT),
            _ if self.input.len() > self.consumed => Some(self.last_input + STALL_TIMEOUT),
            _ => None,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(at) = self.poll_timeout() else {
            return;
        };
        if now < at {
            return;
        }
        let why = if self.export.is_none() {
            format!(
                "refused: no export chosen within {} s of connecting",
                HANDSHAKE_TIMEOUT.as_secs()
            )
        } else if self.output_len > 0 {
            format!(
                "closed: the client read none of its replies for {} s",
                STALL_TIMEOUT.as_secs()
            )
        } else {
            format!(
                "closed: the client left a request half sent for {} s",
                STALL_TIMEOUT.as_secs()
            )
        };
        self.log(Level::Info, why);
        self.state = State::Closed;
    }

    /// The connection is over: close its socket.
    pub fn is_finished(&self) -> bool {
        match self.state {
            State::Closed => true,
            State::Closing => self.output_len == 0,
            _ => false,
        }
    }

    /// Whether the client has chosen an export.
    #[cfg(test)]
    pub fn is_transmitting(&self) -> bool {
        self.export.is_some()
    }

    fn log(&mut self, level: Level, line: String) {
        self.events.push_back(Event::Log(level, line));
    }

    fn push_output(&mut self, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        self.output_len += data.len();
        // The first buffer may be partly sent already: it is not appended to.
        let appendable = self.output.len() > 1 || self.sent == 0;
        if data.len() <= 4096
            && appendable
            && let Some(back) = self.output.back_mut()
            && back.len() + data.len() <= COALESCE
        {
            back.extend_from_slice(&data);
            return;
        }
        self.output.push_back(data);
    }

    fn reply(&mut self, cookie: u64, error: u32) {
        self.push_output(SimpleReply { error, cookie }.emit().to_vec());
    }

    /// Replies `error` to a request, logging the first refusal of the connection at
    /// info and the others at debug.
    fn refuse(&mut self, cookie: u64, error: u32, why: &str) {
        self.refusals += 1;
        let level = if self.refusals == 1 {
            Level::Info
        } else {
            Level::Debug
        };
        let more = if self.refusals == 1 {
            " (further refusals on this connection are logged at debug)"
        } else {
            ""
        };
        self.log(
            level,
            format!("request refused with {}: {why}{more}", errno_name(error)),
        );
        self.reply(cookie, error);
    }

    /// Ends the connection at once for a protocol violation, with one log line.
    fn drop_client(&mut self, why: String) {
        self.log(Level::Info, format!("refused: {why}"));
        self.state = State::Closed;
    }

    fn available(&self) -> &[u8] {
        &self.input[self.consumed..]
    }

    /// Takes `n` bytes of input, if that many are there.
    fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        let bytes = self.available().get(..n)?.to_vec();
        self.consumed += n;
        Some(bytes)
    }

    /// Works through the input until it runs out, a disk operation is out, or the
    /// output must drain first.
    fn advance(&mut self, exports: &[ExportInfo]) {
        loop {
            if self.waiting.is_some() {
                return;
            }
            if let Some(reading) = self.reading {
                if matches!(self.state, State::Closed) || self.output_len >= OUTPUT_HIGH {
                    return;
                }
                let len = reading.remaining.min(READ_CHUNK);
                self.waiting = Some(Waiting::Read { len });
                self.events.push_back(Event::Read {
                    offset: reading.offset,
                    len,
                });
                return;
            }
            let progressed = match self.state {
                State::ClientFlags => self.on_client_flags(),
                State::OptionHeader => self.on_option_header(),
                State::OptionData(header) => self.on_option_data(header, exports),
                State::SkipOption { header, remaining } => self.on_skip_option(header, remaining),
                State::Transmission => {
                    // A request is taken only once earlier replies have mostly left.
                    self.output_len < OUTPUT_HIGH && self.on_request()
                }
                State::WriteData { .. } => self.on_write_data(),
                State::Closing | State::Closed => false,
            };
            if !progressed {
                return;
            }
        }
    }

    fn on_client_flags(&mut self) -> bool {
        let Some(bytes) = self.take(wire::CLIENT_FLAGS_LEN) else {
            return false;
        };
        match wire::parse_client_flags(&bytes, wire::FLAG_FIXED_NEWSTYLE | wire::FLAG_NO_ZEROES) {
            Ok(flags) => {
                self.no_zeroes = flags & wire::FLAG_NO_ZEROES != 0;
                self.state = State::OptionHeader;
            }
            Err(e) => self.drop_client(format!("bad client flags: {e}")),
        }
        true
    }

    fn on_option_header(&mut self) -> bool {
        let Some(bytes) = self.take(OptionHeader::LEN) else {
            return false;
        };
        let header = match OptionHeader::parse(&bytes) {
            Ok(h) => h,
            Err(e) => {
                self.drop_client(format!("bad option request: {e}"));
                return true;
            }
        };
        self.options += 1;
        if self.options > MAX_OPTIONS {
            self.drop_client(format!(
                "more than {MAX_OPTIONS} options without choosing an export"
            ));
            return true;
        }
        self.state = if header.length > MAX_OPTION_DATA {
            State::SkipOption {
                header,
                remaining: header.length,
            }
        } else {
            State::OptionData(header)
        };
        true
    }

    fn on_skip_option(&mut self, header: OptionHeader, remaining: u32) -> bool {
        let n = self.available().len().min(remaining as usize);
        if n == 0 && remaining > 0 {
            return false;
        }
        self.consumed += n;
        let remaining = remaining - n as u32;
        if remaining > 0 {
            self.state = State::SkipOption { header, remaining };
            return true;
        }
        if header.code == OptionCode::ExportName {
            // No error reply exists for EXPORT_NAME: the server closes.
            self.drop_client(format!(
                "export name of {} bytes (at most 4096)",
                header.length
            ));
            return true;
        }
        self.log(
            Level::Info,
            format!(
                "option {} refused: {} bytes of data is too long",
                header.code.as_u32(),
                header.length
            ),
        );
        self.option_reply(header.code, wire::REP_ERR_TOO_BIG, b"option data too long");
        self.state = State::OptionHeader;
        true
    }

    fn option_reply(&mut self, option: OptionCode, reply: u32, data: &[u8]) {
        self.push_output(wire::emit_option_reply(option, reply, data));
    }

    fn on_option_data(&mut self, header: OptionHeader, exports: &[ExportInfo]) -> bool {
        let Some(data) = self.take(header.length as usize) else {
            return false;
        };
        self.state = State::OptionHeader;
        match header.code {
            OptionCode::ExportName => {
                let name = wire::parse_export_name(&data).unwrap_or_default();
                match find_export(exports, &name) {
                    Some(index) => {
                        let export = &exports[index];
                        let reply =
                            wire::emit_export_name_reply(export.size, export.flags, self.no_zeroes);
                        self.push_output(reply);
                        self.select(index, export.size, export.flags);
                    }
                    None => self.drop_client(format!("no export named {name:?}")),
                }
            }
            OptionCode::Abort => {
                self.option_reply(header.code, wire::REP_ACK, &[]);
                self.log(Level::Debug, "the client aborted the handshake".into());
                self.state = State::Closing;
            }
            OptionCode::List => {
                if !data.is_empty() {
                    self.option_reply(header.code, wire::REP_ERR_INVALID, b"LIST takes no data");
                } else {
                    for export in exports {
                        let server = wire::server_data(&export.name);
                        self.option_reply(header.code, wire::REP_SERVER, &server);
                    }
                    self.option_reply(header.code, wire::REP_ACK, &[]);
                }
            }
            OptionCode::Info | OptionCode::Go => self.on_info(header.code, &data, exports),
            OptionCode::Other(code) => {
                self.log(
                    Level::Debug,
                    format!("option {code} is not supported: answered NBD_REP_ERR_UNSUP"),
                );
                self.option_reply(header.code, wire::REP_ERR_UNSUP, &[]);
            }
        }
        true
    }

    fn on_info(&mut self, code: OptionCode, data: &[u8], exports: &[ExportInfo]) {
        let request = match InfoRequest::parse(data) {
            Ok(r) => r,
            Err(e) => {
                self.log(
                    Level::Info,
                    format!("malformed INFO/GO option refused: {e}"),
                );
                let message = e.to_string();
                self.option_reply(code, wire::REP_ERR_INVALID, message.as_bytes());
                return;
            }
        };
        let Some(index) = find_export(exports, &request.name) else {
            self.log(
                Level::Info,
                format!("refused: no export named {:?}", request.name),
            );
            let message = format!("no export named {:?}", request.name);
            self.option_reply(code, wire::REP_ERR_UNKNOWN, message.as_bytes());
            return;
        };
        let export = &exports[index];
        let (size, flags) = (export.size, export.flags);
        let info = wire::info_export_data(size, flags);
        self.option_reply(code, wire::REP_INFO, &info);
        for asked in &request.requests {
            let data = match *asked {
                wire::INFO_NAME => wire::info_name_data(&exports[index].name),
                wire::INFO_BLOCK_SIZE => wire::info_block_size_data(1, 4096, MAX_PAYLOAD),
                _ => continue,
            };
            self.option_reply(code, wire::REP_INFO, &data);
        }
        self.option_reply(code, wire::REP_ACK, &[]);
        if code == OptionCode::Go {
            self.select(index, size, flags);
        }
    }

    fn select(&mut self, index: usize, size: u64, flags: u16) {
        self.export = Some((size, flags));
        self.state = State::Transmission;
        self.events.push_back(Event::Selected { export: index });
    }

    fn on_request(&mut self) -> bool {
        let Some(bytes) = self.take(Request::LEN) else {
            return false;
        };
        let request = match Request::parse(&bytes) {
            Ok(r) => r,
            Err(e) => {
                self.drop_client(format!("bad request: {e}"));
                return true;
            }
        };
        let (size, flags) = self.export.unwrap_or((0, wire::TX_READ_ONLY));
        let read_only = flags & wire::TX_READ_ONLY != 0;
        let in_range = request
            .offset
            .checked_add(u64::from(request.length))
            .is_some_and(|end| end <= size);
        let mut allowed_flags = 0;
        if flags & wire::TX_SEND_FUA != 0 {
            allowed_flags |= wire::CMD_FLAG_FUA;
        }
        if request.command == Command::WriteZeroes {
            allowed_flags |= wire::CMD_FLAG_NO_HOLE;
        }
        let bad_flags = request.flags & !allowed_flags != 0;
        let fua = request.flags & wire::CMD_FLAG_FUA != 0;
        let cookie = request.cookie;
        let (offset, len) = (request.offset, request.length);
        match request.command {
            Command::Write => {
                if len > MAX_PAYLOAD {
                    self.refuse(cookie, wire::EINVAL, "a write larger than 32 MiB");
                    self.log(
                        Level::Info,
                        "closing: the data of an oversized write cannot be skipped".into(),
                    );
                    self.state = State::Closing;
                    return true;
                }
                let error = if bad_flags {
                    Some((wire::EINVAL, "unknown command flags"))
                } else if read_only {
                    Some((wire::EPERM, "a write to a read-only export"))
                } else if !in_range {
                    Some((wire::ENOSPC, "a write past the end of the export"))
                } else {
                    None
                };
                if let Some((_, why)) = error {
                    // Logged now; replied once the data has been skipped.
                    self.refusals += 1;
                    let level = if self.refusals == 1 {
                        Level::Info
                    } else {
                        Level::Debug
                    };
                    let name = errno_name(error.map_or(0, |e| e.0));
                    self.log(level, format!("request refused with {name}: {why}"));
                }
                self.state = State::WriteData {
                    cookie,
                    offset,
                    remaining: len,
                    fua,
                    error: error.map(|e| e.0),
                };
                if len == 0 {
                    self.finish_write();
                }
            }
            Command::Read => {
                if bad_flags {
                    self.refuse(cookie, wire::EINVAL, "unknown command flags");
                } else if len > MAX_PAYLOAD {
                    self.refuse(cookie, wire::EINVAL, "a read larger than 32 MiB");
                } else if !in_range {
                    self.refuse(cookie, wire::EINVAL, "a read past the end of the export");
                } else if len == 0 {
                    self.reply(cookie, 0);
                } else {
                    self.reading = Some(Reading {
                        cookie,
                        offset,
                        remaining: len,
                        started: false,
                    });
                }
            }
            Command::Disconnect => {
                self.log(Level::Debug, "the client disconnected".into());
                self.state = State::Closing;
            }
            Command::Flush => {
                if flags & wire::TX_SEND_FLUSH == 0 {
                    self.refuse(cookie, wire::EINVAL, "FLUSH on an export that offers none");
                } else if bad_flags {
                    self.refuse(cookie, wire::EINVAL, "unknown command flags");
                } else {
                    self.ask(Waiting::Simple { cookie }, Event::Flush);
                }
            }
            Command::Trim | Command::WriteZeroes => {
                let is_trim = request.command == Command::Trim;
                if read_only {
                    self.refuse(cookie, wire::EPERM, "a change to a read-only export");
                } else if bad_flags {
                    self.refuse(cookie, wire::EINVAL, "unknown command flags");
                } else if !in_range {
                    let error = if is_trim { wire::EINVAL } else { wire::ENOSPC };
                    self.refuse(cookie, error, "a range past the end of the export");
                } else if len == 0 {
                    self.reply(cookie, 0);
                } else if is_trim {
                    self.ask(Waiting::Simple { cookie }, Event::Trim { offset, len });
                } else {
                    let event = Event::WriteZeroes { offset, len, fua };
                    self.ask(Waiting::Simple { cookie }, event);
                }
            }
            Command::Other(code) => {
                let why = format!("command {code} is not supported");
                self.refuse(cookie, wire::EINVAL, &why);
            }
        }
        true
    }

    fn ask(&mut self, waiting: Waiting, event: Event) {
        self.waiting = Some(waiting);
        self.events.push_back(event);
    }

    fn on_write_data(&mut self) -> bool {
        let State::WriteData {
            offset,
            remaining,
            fua,
            error,
            ..
        } = &mut self.state
        else {
            return false;
        };
        let available = self.input.len() - self.consumed;
        let n = available.min(*remaining as usize);
        if error.is_some() {
            if n == 0 {
                return false;
            }
            *remaining -= n as u32;
            self.consumed += n;
            if *remaining == 0 {
                self.finish_write();
            }
            return true;
        }
        // Wait for a chunk worth handing on, unless the input is full.
        if n == 0 || (n < *remaining as usize && n < WRITE_CHUNK && available < INPUT_CAPACITY) {
            return false;
        }
        let at = *offset;
        *offset += n as u64;
        *remaining -= n as u32;
        let last = *remaining == 0;
        let fua = *fua && last;
        let data = self.input[self.consumed..self.consumed + n].to_vec();
        self.consumed += n;
        self.ask(
            Waiting::WriteChunk,
            Event::Write {
                offset: at,
                data,
                fua,
            },
        );
        true
    }

    /// After a write chunk's answer or skipped data: replies once the data is all in.
    fn finish_write(&mut self) {
        if let State::WriteData {
            cookie,
            remaining: 0,
            error,
            ..
        } = self.state
        {
            self.reply(cookie, error.unwrap_or(0));
            self.state = State::Transmission;
        }
    }
}

/// The export a client names: the empty name is the first (the default export).
fn find_export(exports: &[ExportInfo], name: &str) -> Option<usize> {
    if name.is_empty() {
        return (!exports.is_empty()).then_some(0);
    }
    exports.iter().position(|e| e.name == name)
}

pub fn errno_name(error: u32) -> &'static str {
    match error {
        wire::EPERM => "EPERM",
        wire::EIO => "EIO",
        wire::EINVAL => "EINVAL",
        wire::ENOSPC => "ENOSPC",
        _ => "an error",
    }
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
