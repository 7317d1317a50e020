//! The read-transfer state machine (sans-IO): one RRQ from one client endpoint.
//!
//! The transfer owns no socket, no clock and no file. Its owner (the endpoint):
//! 1. calls [`Transfer::start`] with the parsed request, the [`Limits`] and the file
//!    size when known;
//! 2. keeps it supplied with bytes: while [`Transfer::wanted_bytes`] is non-zero it
//!    reads that many bytes (from a local file, or whatever an HTTP reader thread has
//!    delivered) and calls [`Transfer::feed`] (or reads straight into the transfer's
//!    buffer with [`Transfer::feed_with`]), then [`Transfer::feed_eof`] at the end;
//! 3. sends every datagram [`Transfer::poll_transmit`] produces (DATA payloads are
//!    lent from the transfer's buffer, so they can be sent without a copy);
//! 4. passes every datagram from the client endpoint to [`Transfer::handle_datagram`]
//!    and calls [`Transfer::handle_timeout`] when [`Transfer::poll_timeout`] is reached;
//! 5. drops the transfer once [`Transfer::is_finished`] and `poll_transmit` has
//!    nothing more (a final ERROR may still be queued when it finishes);
//!    [`Transfer::outcome`] says how it ended.
//!
//! Only bytes not yet acknowledged are kept, so memory is about window × blksize. Block
//! numbers are tracked as 64-bit indices and written modulo 65536 (after 65535 comes 0,
//! as tftp-hpa and most clients expect), so files of any size transfer intact.
//!
//! Retransmission rules (RFC 1123 §4.2.3.1 and RFC 7440):
//! - a timeout resends from the block after the last acknowledged one (go-back-N);
//! - an ACK that acknowledges part of the window (a new block, but not the last one sent)
//!   means the client saw a gap: sending restarts after that block. Such an ACK also
//!   advances the window, so a stale copy of it is a duplicate afterwards;
//! - a duplicate ACK (for the block already acknowledged) never triggers a resend, which
//!   is what stops the Sorcerer's Apprentice doubling of traffic.
//!
//! netascii is converted (LF → CR LF, CR → CR NUL, RFC 1350/RFC 764) as bytes are fed;
//! `tsize` is then not offered, as the converted size is unknown in advance. The obsolete
//! "mail" mode is refused with ERROR 4.

use std::time::{Duration, Instant};

use super::wire::{self, ErrorCode, Mode, Packet, Request, TftpOption};

/// RFC 2348 limits for `blksize`.
pub const MIN_BLKSIZE: u16 = 8;
pub const MAX_BLKSIZE: u16 = 65464;
/// The RFC 1350 block size, used when `blksize` is not negotiated.
pub const DEFAULT_BLKSIZE: u16 = 512;
/// Windows beyond 64 blocks bring no gain and break some clients; keeping the window
/// far below 32768 also keeps 16-bit ACK numbers unambiguous.
pub const MAX_WINDOWSIZE: u16 = 64;
/// IPv4 (20) + UDP (8) + TFTP DATA header (4): `blksize` = MTU − 32 avoids fragmentation.
pub const MTU_OVERHEAD: u32 = 32;
/// The longest `timeout` RFC 2349 lets a client ask for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(255);

/// What the server grants at most; the same for every transfer on one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest `blksize` granted (8–65464).
    pub max_blksize: u16,
    /// Largest `windowsize` granted (1–64).
    pub max_windowsize: u16,
    /// Retransmission timeout unless the client negotiates `timeout`.
    pub timeout: Duration,
    /// Consecutive timeouts (each followed by a retransmission) before giving up.
    pub retries: u32,
    /// Longest `timeout` granted to a client that asks; a longer ask is not granted
    /// (RFC 2349 lets a server only accept the value or leave the option out), so a
    /// silent client holds its slot for at most `retries` + 1 of these.
    pub max_timeout: Duration,
}

impl Limits {
    /// Clamps every value into its legal range.
    pub fn new(max_blksize: u16, max_windowsize: u16, timeout: Duration, retries: u32) -> Limits {
        Limits {
            max_blksize: max_blksize.clamp(MIN_BLKSIZE, MAX_BLKSIZE),
            max_windowsize: max_windowsize.clamp(1, MAX_WINDOWSIZE),
            // A zero timeout would spin the event loop.
            timeout: timeout.max(Duration::from_millis(10)),
            retries,
            max_timeout: MAX_TIMEOUT,
        }
    }

    /// These limits granting a client's `timeout` up to `max` (1-255 s).
    pub fn with_max_timeout(self, max: Duration) -> Limits {
        Limits {
            max_timeout: max.clamp(Duration::from_secs(1), MAX_TIMEOUT),
            ..self
        }
    }

    /// These limits on an interface of `mtu` bytes (when known): the block size is
    /// the smaller of MTU − 32 and `max_blksize`, so blocks are not fragmented.
    pub fn with_mtu(self, mtu: Option<u32>) -> Limits {
        let from_mtu =
            mtu.map(|m| u16::try_from(m.saturating_sub(MTU_OVERHEAD)).unwrap_or(MAX_BLKSIZE));
        Limits::new(
            from_mtu.map_or(self.max_blksize, |m| m.min(self.max_blksize)),
            self.max_windowsize,
            self.timeout,
            self.retries,
        )
        .with_max_timeout(self.max_timeout)
    }
}

/// How a transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The last block was acknowledged.
    Completed,
    /// The client sent an ERROR (nothing is sent back).
    ClientError { code: ErrorCode, message: String },
    /// `retries` timeouts in a row; an ERROR is queued for the client.
    TimedOut,
    /// The server refused or gave up (unsupported mode, source failure); an ERROR is queued.
    Aborted { code: ErrorCode, message: String },
}

/// Counters for the end-of-transfer log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    pub blksize: u16,
    pub windowsize: u16,
    /// Blocks acknowledged (64-bit: counts past the 16-bit rollover).
    pub blocks: u64,
    /// Payload bytes acknowledged (after netascii conversion).
    pub bytes: u64,
    /// Every datagram produced, the final ERROR included.
    pub datagrams: u64,
    /// DATA and OACK datagrams that were sent again.
    pub retransmits: u64,
    /// The `tsize` answered in the OACK, if any.
    pub tsize: Option<u64>,
}

/// What a datagram from the client did, for debug logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// ACK 0 for the OACK: data starts.
    OackAcknowledged,
    /// New blocks acknowledged, the whole window sent so far.
    Advanced { acked: u64 },
    /// New blocks acknowledged but not all that were sent: resend from `acked + 1`.
    Rewound { acked: u64 },
    /// The last block was acknowledged.
    Completed,
    /// ACK for the block already acknowledged: ignored (Sorcerer's Apprentice).
    Duplicate,
    /// ACK outside the window (older than the acknowledged block, or never sent).
    OutOfWindow { block: u16 },
    /// The client aborted with an ERROR.
    ClientError,
    /// Not an ACK or ERROR, not parseable, or the transfer is already over.
    Ignored(&'static str),
}

/// A datagram to send, as [`Transfer::poll_transmit`] lends it.
#[derive(Debug, PartialEq, Eq)]
pub enum Datagram<'a> {
    /// An OACK or ERROR, whole.
    Whole(&'a [u8]),
    /// DATA: the four header bytes, then the payload (send them as one datagram).
    Data { header: [u8; 4], payload: &'a [u8] },
}

/// What `poll_transmit` sends next.
enum Next {
    /// The queued ERROR (the transfer is over).
    Error,
    Oack,
    /// DATA `block`, whose payload is `buffer[range]`.
    Data {
        block: u64,
        range: std::ops::Range<usize>,
    },
}

/// One read transfer. See the module documentation for the calling sequence.
#[derive(Debug)]
pub struct Transfer {
    blksize: usize,
    windowsize: u64,
    timeout: Duration,
    retries: u32,
    netascii: bool,
    /// Options granted; empty when the request gets DATA 1 directly.
    granted: Vec<TftpOption>,
    /// An OACK (re)transmission is owed.
    oack_due: bool,
    oack_sent: bool,
    /// ACK 0 received (or no OACK needed).
    data_phase: bool,
    /// `buffer[head..tail]` is the payload of blocks `acked + 1 ..`: everything fed
    /// and not yet acknowledged. Bytes before `head` are acknowledged; bytes after
    /// `tail` are room already initialised, which source reads fill without zeroing.
    buffer: Vec<u8>,
    head: usize,
    tail: usize,
    /// The OACK or ERROR being sent (DATA is lent from `buffer`).
    control: Vec<u8>,
    source_eof: bool,
    /// Index of the final (short, possibly empty) block, known once the source ended.
    final_block: Option<u64>,
    /// Highest block index acknowledged (0: none, or the OACK).
    acked: u64,
    /// Next block index `poll_transmit` sends.
    next_to_send: u64,
    /// Highest block index ever sent.
    highest_sent: u64,
    /// The highest block sent when sending last restarted (timeout or rewind). An ACK
    /// below it may be a late answer to the burst that was already resent: it advances
    /// the window but does not rewind it again, so stale or duplicated ACKs cannot
    /// multiply the traffic (Sorcerer's Apprentice). `None`: nothing resent yet.
    rewind_guard: Option<u64>,
    deadline: Option<Instant>,
    timeouts_in_a_row: u32,
    pending_error: Option<(ErrorCode, String)>,
    outcome: Option<Outcome>,
    /// When the transfer ended (the `now` of the call that ended it).
    ended_at: Option<Instant>,
    stats: Stats,
}

/// Parses a decimal option value; anything else means "option not taken".
fn parse_number(value: &str) -> Option<u64> {
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

impl Transfer {
    /// Starts a read transfer. `size_hint` is the file size when known (local file
    /// metadata, HTTP Content-Length); it answers `tsize`.
    ///
    /// Options are taken in the client's order, the first occurrence of each name only;
    /// unknown or malformed ones are left out of the OACK (RFC 2347).
    pub fn start(
        request: &Request,
        limits: &Limits,
        size_hint: Option<u64>,
        now: Instant,
    ) -> Transfer {
        let limits = Limits::new(
            limits.max_blksize,
            limits.max_windowsize,
            limits.timeout,
            limits.retries,
        )
        .with_max_timeout(limits.max_timeout);
        let mut blksize = DEFAULT_BLKSIZE;
        let mut windowsize: u16 = 1;
        let mut timeout = limits.timeout;
        let mut granted: Vec<TftpOption> = Vec::new();
        for option in &request.options {
            if granted.iter().any(|g| g.name == option.name) {
                continue;
            }
            let value = parse_number(&option.value);
            let answer = match (option.name.as_str(), value) {
                ("blksize", Some(v)) if v >= u64::from(MIN_BLKSIZE) => {
                    blksize = u16::try_from(v)
                        .unwrap_or(MAX_BLKSIZE)
                        .min(limits.max_blksize);
                    Some(u64::from(blksize))
                }
                // The converted size of a netascii file is not known in advance.
                ("tsize", _) if request.mode == Mode::Octet => size_hint,
                ("timeout", Some(v @ 1..=255)) if Duration::from_secs(v) <= limits.max_timeout => {
                    timeout = Duration::from_secs(v);
                    Some(v)
                }
                ("windowsize", Some(v @ 1..=65535)) => {
                    windowsize = u16::try_from(v)
                        .unwrap_or(MAX_WINDOWSIZE)
                        .min(limits.max_windowsize);
                    Some(u64::from(windowsize))
                }
                _ => None,
            };
            if let Some(answer) = answer {
                granted.push(TftpOption {
                    name: option.name.clone(),
                    value: answer.to_string(),
                });
            }
        }
        let tsize = granted
            .iter()
            .find(|o| o.name == "tsize")
            .and_then(|o| o.value.parse().ok());
        let negotiated = !granted.is_empty();
        let mut transfer = Transfer {
            blksize: usize::from(blksize),
            windowsize: u64::from(windowsize),
            timeout,
            retries: limits.retries,
            netascii: request.mode == Mode::Netascii,
            granted,
            oack_due: negotiated,
            oack_sent: false,
            data_phase: !negotiated,
            buffer: Vec::new(),
            head: 0,
            tail: 0,
            control: Vec::new(),
            source_eof: false,
            final_block: None,
            acked: 0,
            next_to_send: 1,
            highest_sent: 0,
            rewind_guard: None,
            deadline: None,
            timeouts_in_a_row: 0,
            pending_error: None,
            outcome: None,
            ended_at: None,
            stats: Stats {
                blksize,
                windowsize,
                tsize,
                ..Stats::default()
            },
        };
        if request.mode == Mode::Mail {
            transfer.abort(
                now,
                ErrorCode::IllegalOperation,
                "mail mode is not supported; use octet or netascii",
            );
        }
        transfer
    }

    /// The options granted in the OACK (empty: no OACK, DATA 1 directly).
    #[cfg(test)]
    pub fn granted_options(&self) -> &[TftpOption] {
        &self.granted
    }

    /// Counters so far (final once the transfer is finished).
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// How many more source bytes the transfer would like buffered now: enough to fill
    /// the window. Zero once the source ended or the transfer is over. Feeding more is
    /// allowed but only grows the buffer.
    pub fn wanted_bytes(&self) -> usize {
        if self.source_eof || self.outcome.is_some() {
            return 0;
        }
        let window_bytes = self.blksize.saturating_mul(self.window_len());
        window_bytes.saturating_sub(self.live_len())
    }

    /// Bytes fed and not yet acknowledged.
    fn live_len(&self) -> usize {
        self.tail - self.head
    }

    /// Makes room for `n` more bytes after `tail` and returns it. Acknowledged bytes
    /// are dropped first when they outweigh the live ones, so each byte moves at most
    /// once per byte acknowledged; in lock-step the source is read when less than a
    /// block is live, so that is a short move every read-ahead.
    fn room(&mut self, n: usize) -> &mut [u8] {
        if self.head > 0 && self.head >= self.live_len() {
            self.buffer.copy_within(self.head..self.tail, 0);
            self.tail -= self.head;
            self.head = 0;
        }
        let end = self.tail.saturating_add(n);
        if self.buffer.len() < end {
            self.buffer.resize(end, 0);
        }
        &mut self.buffer[self.tail..end]
    }

    fn append(&mut self, bytes: &[u8]) {
        self.room(bytes.len()).copy_from_slice(bytes);
        self.tail += bytes.len();
    }

    fn window_len(&self) -> usize {
        usize::try_from(self.windowsize).unwrap_or(1)
    }

    /// Appends source bytes (converted to netascii when that mode was requested).
    /// Ignored after `feed_eof` or once the transfer is over.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.source_eof || self.outcome.is_some() {
            return;
        }
        if self.netascii {
            let mut converted = Vec::with_capacity(bytes.len() + bytes.len() / 8);
            for &byte in bytes {
                match byte {
                    b'\n' => converted.extend_from_slice(b"\r\n"),
                    b'\r' => converted.extend_from_slice(b"\r\0"),
                    other => converted.push(other),
                }
            }
            self.append(&converted);
        } else {
            self.append(bytes);
        }
    }

    /// Like `feed`, but `read` fills the transfer's own buffer (up to `n` bytes) and
    /// returns how many it wrote: a local file is read straight into place. In
    /// netascii mode the bytes are read aside and converted. Returns what `read`
    /// returned; nothing is kept when it fails, or after `feed_eof` or the end.
    pub fn feed_with<E>(
        &mut self,
        n: usize,
        read: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        if self.source_eof || self.outcome.is_some() {
            return Ok(0);
        }
        if self.netascii {
            let mut raw = vec![0; n];
            let got = read(&mut raw)?.min(n);
            self.feed(&raw[..got]);
            return Ok(got);
        }
        let got = read(self.room(n))?.min(n);
        self.tail += got;
        Ok(got)
    }

    /// The source has no more bytes: the block holding the rest (short, possibly empty)
    /// is the last one.
    pub fn feed_eof(&mut self) {
        if self.source_eof || self.outcome.is_some() {
            return;
        }
        self.source_eof = true;
        let remaining_blocks = u64::try_from(self.live_len() / self.blksize).unwrap_or(0);
        self.final_block = Some(self.acked + remaining_blocks + 1);
    }

    /// Ends the transfer from the server side (e.g. the HTTP source failed) and queues
    /// an ERROR for the client.
    pub fn abort(&mut self, now: Instant, code: ErrorCode, message: &str) {
        if self.outcome.is_some() {
            return;
        }
        self.pending_error = Some((code, message.to_owned()));
        self.finish(
            now,
            Outcome::Aborted {
                code,
                message: message.to_owned(),
            },
        );
    }

    fn finish(&mut self, now: Instant, outcome: Outcome) {
        self.outcome = Some(outcome);
        self.ended_at = Some(now);
        self.deadline = None;
        self.buffer = Vec::new();
        self.head = 0;
        self.tail = 0;
    }

    /// Whether the transfer is over. Drain `poll_transmit` before dropping it: a
    /// final ERROR may be queued.
    pub fn is_finished(&self) -> bool {
        self.outcome.is_some()
    }

    /// How the transfer ended; `None` while it runs.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// When the transfer ended; `None` while it runs.
    pub fn ended_at(&self) -> Option<Instant> {
        self.ended_at
    }

    /// When `handle_timeout` should be called next; `None` when nothing is outstanding.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Handles one datagram from the client endpoint. `now` dates the end of the
    /// transfer when this datagram ends it (the last ACK, or the client's ERROR).
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) -> Received {
        if self.outcome.is_some() {
            return Received::Ignored("transfer already finished");
        }
        match Packet::parse(datagram) {
            Ok(Packet::Ack { block }) => self.on_ack(now, block),
            Ok(Packet::Error { code, message }) => {
                self.finish(now, Outcome::ClientError { code, message });
                Received::ClientError
            }
            // A repeated RRQ is the endpoint's business (it arrives on port 69); DATA,
            // WRQ and OACK make no sense here. Ignoring them keeps spoofed junk from
            // killing a live transfer; the timeout still covers a confused client.
            Ok(_) => Received::Ignored("not an ACK or ERROR"),
            Err(_) => Received::Ignored("malformed datagram"),
        }
    }

    fn on_ack(&mut self, now: Instant, block: u16) -> Received {
        if !self.data_phase {
            if block != 0 {
                return Received::OutOfWindow { block };
            }
            self.data_phase = true;
            self.oack_due = false;
            self.timeouts_in_a_row = 0;
            self.deadline = None;
            return Received::OackAcknowledged;
        }
        // Block numbers on the wire are the low 16 bits of the index; only the blocks
        // sent and not yet acknowledged (at most one window) can be meant.
        let delta = u64::from(block.wrapping_sub(self.acked as u16));
        if delta == 0 {
            // RFC 7440: with a window, an ACK for the block already acknowledged means
            // the first block after it was lost. Honoured once per burst, and only if
            // that block has not been resent since (else the ACK may answer a resent
            // copy, the very pattern that makes the Sorcerer's Apprentice). Without a
            // window, RFC 1123: only the timer resends.
            let outstanding = self.highest_sent > self.acked;
            let fresh = self.rewind_guard.is_none_or(|guard| self.acked > guard);
            if self.windowsize > 1 && outstanding && fresh {
                self.rewind_guard = Some(self.highest_sent);
                self.next_to_send = self.acked + 1;
                return Received::Rewound { acked: self.acked };
            }
            return Received::Duplicate;
        }
        if delta > self.highest_sent - self.acked {
            return Received::OutOfWindow { block };
        }
        let newly_acked = self.acked + delta;
        let acked_bytes = usize::try_from(delta)
            .unwrap_or(usize::MAX)
            .saturating_mul(self.blksize)
            .min(self.live_len());
        self.head += acked_bytes;
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
        self.acked = newly_acked;
        self.stats.blocks = newly_acked;
        self.stats.bytes += acked_bytes as u64;
        self.timeouts_in_a_row = 0;
        if self.final_block == Some(newly_acked) {
            self.finish(now, Outcome::Completed);
            return Received::Completed;
        }
        if newly_acked < self.highest_sent {
            if self.rewind_guard.is_none_or(|guard| newly_acked >= guard) {
                // RFC 7440: the client saw a gap after `newly_acked`; restart from there.
                self.rewind_guard = Some(self.highest_sent);
                self.next_to_send = newly_acked + 1;
                return Received::Rewound { acked: newly_acked };
            }
            // Blocks after it are already being resent; the timer covers the rest.
            self.next_to_send = self.next_to_send.max(newly_acked + 1);
            return Received::Advanced { acked: newly_acked };
        }
        self.next_to_send = self.next_to_send.max(newly_acked + 1);
        // Nothing in flight: no retransmission timer until the next block goes out.
        self.deadline = None;
        Received::Advanced { acked: newly_acked }
    }

    /// Call when `poll_timeout` is reached (an early or stale call does nothing and
    /// returns `false`). Schedules a retransmission, or ends the transfer after
    /// `retries` timeouts in a row.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        if self.outcome.is_some() {
            return false;
        }
        match self.deadline {
            Some(deadline) if now >= deadline => {}
            _ => return false,
        }
        self.deadline = None;
        if self.timeouts_in_a_row >= self.retries {
            let message = format!(
                "transfer timed out after {} retransmissions",
                self.timeouts_in_a_row
            );
            self.pending_error = Some((ErrorCode::NotDefined, message));
            self.finish(now, Outcome::TimedOut);
            return true;
        }
        self.timeouts_in_a_row += 1;
        if self.data_phase {
            self.next_to_send = self.acked + 1;
            self.rewind_guard = Some(self.highest_sent);
        } else {
            self.oack_due = true;
        }
        true
    }

    /// Whether `poll_transmit` has a datagram to give now.
    pub fn has_datagram(&self) -> bool {
        self.next_datagram().is_some()
    }

    /// What `poll_transmit` sends next, decided without sending it.
    fn next_datagram(&self) -> Option<Next> {
        if self.pending_error.is_some() {
            return Some(Next::Error);
        }
        if self.outcome.is_some() {
            return None;
        }
        if self.oack_due {
            return Some(Next::Oack);
        }
        if !self.data_phase {
            return None;
        }
        let block = self.next_to_send;
        if block > self.acked + self.windowsize || self.final_block.is_some_and(|f| block > f) {
            return None;
        }
        let range = self.block_range(block)?;
        Some(Next::Data { block, range })
    }

    /// The next datagram to send, or `None` when nothing is to be sent now. Call
    /// until `None`; each datagram counts as sent.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Datagram<'_>> {
        match self.next_datagram()? {
            Next::Error => {
                let (code, message) = self.pending_error.take()?;
                self.control.clear();
                wire::emit_error(code, &message, &mut self.control);
                self.stats.datagrams += 1;
                Some(Datagram::Whole(&self.control))
            }
            Next::Oack => {
                self.control.clear();
                Packet::Oack {
                    options: self.granted.clone(),
                }
                .emit(&mut self.control);
                self.oack_due = false;
                if self.oack_sent {
                    self.stats.retransmits += 1;
                }
                self.oack_sent = true;
                self.sent(now);
                Some(Datagram::Whole(&self.control))
            }
            Next::Data { block, range } => {
                if block <= self.highest_sent {
                    self.stats.retransmits += 1;
                } else {
                    self.highest_sent = block;
                }
                self.next_to_send = block + 1;
                self.sent(now);
                Some(Datagram::Data {
                    header: wire::data_header(block as u16),
                    payload: &self.buffer[range],
                })
            }
        }
    }

    fn sent(&mut self, now: Instant) {
        self.stats.datagrams += 1;
        self.deadline = Some(now + self.timeout);
    }

    /// Where in `buffer` the payload of unacknowledged block `block` is, if the source
    /// has supplied it: a full block, or the rest after end of file.
    fn block_range(&self, block: u64) -> Option<std::ops::Range<usize>> {
        let index = usize::try_from(block.checked_sub(self.acked + 1)?).ok()?;
        let start = index.checked_mul(self.blksize)?.checked_add(self.head)?;
        let available = self.tail.checked_sub(start)?;
        let len = if available >= self.blksize {
            self.blksize
        } else if self.source_eof {
            available
        } else {
            return None;
        };
        Some(start..start + len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tftp::wire::OPCODE_DATA;
    use proptest::prelude::*;

    fn request(mode: Mode, options: &[(&str, &str)]) -> Request {
        Request {
            filename: "file".into(),
            mode,
            options: options.iter().map(|(n, v)| TftpOption::new(n, v)).collect(),
        }
    }

    fn limits() -> Limits {
        Limits::new(1468, 64, Duration::from_secs(1), 5)
    }

    fn ack(block: u16) -> Vec<u8> {
        Packet::Ack { block }.to_bytes()
    }

    /// Writes the next datagram `poll_transmit` lends into `out` (cleared first) as
    /// whole bytes, for comparing datagrams byte for byte; false when there is none.
    /// `has_datagram` must have said so beforehand.
    fn transmit(transfer: &mut Transfer, now: Instant, out: &mut Vec<u8>) -> bool {
        out.clear();
        let announced = transfer.has_datagram();
        let datagram = transfer.poll_transmit(now);
        assert_eq!(announced, datagram.is_some(), "has_datagram disagrees");
        match datagram {
            Some(Datagram::Whole(bytes)) => out.extend_from_slice(bytes),
            Some(Datagram::Data { header, payload }) => {
                out.extend_from_slice(&header);
                out.extend_from_slice(payload);
            }
            None => return false,
        }
        true
    }

    /// Everything `poll_transmit` has to send now.
    fn drain(transfer: &mut Transfer, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut sent = Vec::new();
        while transmit(transfer, now, &mut out) {
            sent.push(out.clone());
            assert!(sent.len() < 100_000, "runaway transmit");
        }
        sent
    }

    /// Feeds as much of `source[*offset..]` as the transfer wants, then EOF at the end.
    fn supply(transfer: &mut Transfer, source: &[u8], offset: &mut usize) {
        let want = transfer.wanted_bytes();
        let end = (*offset + want).min(source.len());
        transfer.feed(&source[*offset..end]);
        *offset = end;
        if *offset == source.len() {
            transfer.feed_eof();
        }
    }

    /// (block, payload) of a DATA datagram.
    fn data_of(datagram: &[u8]) -> Option<(u16, Vec<u8>)> {
        match Packet::parse(datagram) {
            Ok(Packet::Data { block, data }) => Some((block, data.to_vec())),
            _ => None,
        }
    }

    fn blocks_of(datagrams: &[Vec<u8>]) -> Vec<u16> {
        datagrams
            .iter()
            .filter_map(|d| data_of(d).map(|(b, _)| b))
            .collect()
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    /// An RFC 7440 receiver: ACKs every `window` in-order blocks, the short final block,
    /// and, on a gap or a duplicate, the last in-order block.
    struct Client {
        blksize: usize,
        window: u64,
        expected: u64,
        since_ack: u64,
        received: Vec<u8>,
        done: bool,
        wire_blocks: Vec<u16>,
    }

    impl Client {
        fn new(blksize: usize, window: u64) -> Client {
            Client {
                blksize,
                window,
                expected: 1,
                since_ack: 0,
                received: Vec::new(),
                done: false,
                wire_blocks: Vec::new(),
            }
        }

        fn last_in_order(&self) -> u16 {
            (self.expected - 1) as u16
        }

        fn on_datagram(&mut self, datagram: &[u8]) -> Option<Vec<u8>> {
            match Packet::parse(datagram) {
                Ok(Packet::Oack { .. }) if self.expected == 1 => Some(ack(0)),
                Ok(Packet::Data { block, data }) => {
                    self.wire_blocks.push(block);
                    if !self.done && block == self.expected as u16 {
                        self.received.extend_from_slice(data);
                        self.expected += 1;
                        self.since_ack += 1;
                        if data.len() < self.blksize {
                            self.done = true;
                            return Some(ack(block));
                        }
                        if self.since_ack == self.window {
                            self.since_ack = 0;
                            return Some(ack(block));
                        }
                        None
                    } else {
                        self.since_ack = 0;
                        Some(ack(self.last_in_order()))
                    }
                }
                _ => None,
            }
        }
    }

    /// A tiny deterministic PRNG for loss patterns (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn chance(&mut self, percent: u64) -> bool {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) % 100 < percent
        }
    }

    struct Run {
        received: Vec<u8>,
        outcome: Option<Outcome>,
        stats: Stats,
        server_datagrams: usize,
        wire_blocks: Vec<u16>,
        elapsed: Duration,
    }

    /// Runs a whole transfer over a simulated network. `drop_to_client(n)` and
    /// `drop_to_server(n)` decide the fate of the n-th datagram in each direction.
    fn simulate(
        source: &[u8],
        req: &Request,
        limits: &Limits,
        mut drop_to_client: impl FnMut(usize) -> bool,
        mut drop_to_server: impl FnMut(usize) -> bool,
    ) -> Run {
        let start = Instant::now();
        let mut now = start;
        let mut transfer = Transfer::start(req, limits, Some(source.len() as u64), now);
        let stats = transfer.stats();
        let mut client = Client::new(usize::from(stats.blksize), u64::from(stats.windowsize));
        let mut offset = 0;
        let (mut to_client, mut to_server) = (0usize, 0usize);
        let mut out = Vec::new();
        for _ in 0..10_000_000 {
            supply(&mut transfer, source, &mut offset);
            let mut acks = Vec::new();
            while transmit(&mut transfer, now, &mut out) {
                to_client += 1;
                if !drop_to_client(to_client) {
                    acks.extend(client.on_datagram(&out));
                }
            }
            if transfer.outcome().is_some() {
                break;
            }
            if acks.is_empty() {
                let Some(deadline) = transfer.poll_timeout() else {
                    panic!("stalled: nothing to send and no timer");
                };
                now = deadline;
                // The client's own timer fires too: it re-ACKs its last in-order block.
                if !client.done {
                    to_server += 1;
                    if !drop_to_server(to_server) {
                        transfer.handle_datagram(now, &ack(client.last_in_order()));
                    }
                }
                transfer.handle_timeout(now);
                continue;
            }
            for datagram in acks {
                to_server += 1;
                if !drop_to_server(to_server) {
                    transfer.handle_datagram(now, &datagram);
                }
            }
        }
        Run {
            received: client.received,
            outcome: transfer.outcome().cloned(),
            stats: transfer.stats(),
            server_datagrams: to_client,
            wire_blocks: client.wire_blocks,
            elapsed: now - start,
        }
    }

    #[test]
    fn request_without_options_gets_data_1_directly() {
        let now = Instant::now();
        let mut transfer = Transfer::start(&request(Mode::Octet, &[]), &limits(), Some(3), now);
        transfer.feed(b"abc");
        transfer.feed_eof();
        let sent = drain(&mut transfer, now);
        // opcode 3 | block 1 | "abc"
        assert_eq!(sent, vec![vec![0x00, 0x03, 0x00, 0x01, b'a', b'b', b'c']]);
        assert!(transfer.granted_options().is_empty());
        assert_eq!(transfer.handle_datagram(now, &ack(1)), Received::Completed);
        assert_eq!(transfer.outcome(), Some(&Outcome::Completed));
        assert_eq!(transfer.stats().blocks, 1);
        assert_eq!(transfer.stats().bytes, 3);
    }

    #[test]
    fn unknown_options_only_gets_data_1_directly() {
        let now = Instant::now();
        let req = request(
            Mode::Octet,
            &[("multicast", ""), ("rollover", "0"), ("blksize", "abc")],
        );
        let mut transfer = Transfer::start(&req, &limits(), None, now);
        transfer.feed(&[1; 600]);
        let sent = drain(&mut transfer, now);
        assert_eq!(blocks_of(&sent), vec![1]);
        assert_eq!(sent[0].len(), 4 + 512);
    }

    #[test]
    fn oack_is_byte_exact_in_request_order() {
        let now = Instant::now();
        let req = request(
            Mode::Octet,
            &[
                ("tsize", "0"),
                ("foo", "bar"),
                ("blksize", "1428"),
                ("timeout", "3"),
                ("windowsize", "8"),
                ("blksize", "9000"),
            ],
        );
        let mut transfer = Transfer::start(&req, &limits(), Some(123_456), now);
        let sent = drain(&mut transfer, now);
        let mut expected = vec![0x00, 0x06]; // opcode 6 (OACK)
        expected.extend_from_slice(b"tsize\x00123456\x00");
        expected.extend_from_slice(b"blksize\x001428\x00");
        expected.extend_from_slice(b"timeout\x003\x00");
        expected.extend_from_slice(b"windowsize\x008\x00");
        assert_eq!(sent, vec![expected]);
        let stats = transfer.stats();
        assert_eq!(
            (stats.blksize, stats.windowsize, stats.tsize),
            (1428, 8, Some(123_456))
        );
        // The negotiated timeout drives the retransmission timer.
        assert_eq!(transfer.poll_timeout(), Some(now + Duration::from_secs(3)));
    }

    #[test]
    fn option_names_are_case_insensitive_on_the_wire() {
        // "f" NUL "octet" NUL "BLKSIZE" NUL "1024" NUL
        let datagram = b"\x00\x01f\x00octet\x00BLKSIZE\x001024\x00";
        let Ok(Packet::Rrq(req)) = Packet::parse(datagram) else {
            panic!("valid RRQ");
        };
        let now = Instant::now();
        let mut transfer = Transfer::start(&req, &limits(), None, now);
        assert_eq!(
            drain(&mut transfer, now),
            vec![b"\x00\x06blksize\x001024\x00".to_vec()]
        );
    }

    #[test]
    fn blksize_is_clamped() {
        let now = Instant::now();
        let granted = |value: &str, max: u16| {
            let limits = Limits::new(max, 64, Duration::from_secs(1), 5);
            let t = Transfer::start(
                &request(Mode::Octet, &[("blksize", value)]),
                &limits,
                None,
                now,
            );
            t.granted_options().first().map(|o| o.value.clone())
        };
        assert_eq!(granted("65464", 1468).as_deref(), Some("1468"));
        assert_eq!(granted("1468", 1468).as_deref(), Some("1468"));
        assert_eq!(granted("512", 1468).as_deref(), Some("512"));
        assert_eq!(granted("8", 1468).as_deref(), Some("8"));
        assert_eq!(granted("99999999", 65464).as_deref(), Some("65464"));
        assert_eq!(granted("70000", 60000).as_deref(), Some("60000"));
        assert_eq!(granted("7", 1468), None);
        assert_eq!(granted("0", 1468), None);
        assert_eq!(granted("-5", 1468), None);
        assert_eq!(granted("", 1468), None);
        // A configured maximum below 8 is raised to the RFC minimum.
        assert_eq!(granted("1468", 2).as_deref(), Some("8"));
    }

    #[test]
    fn limits_take_the_smaller_of_mtu_and_max_blocksize() {
        // As the service builds them: no `[tftp] blocksize` means the RFC maximum.
        let configured = |max_blocksize: Option<u16>, max_windowsize: u16| {
            Limits::new(
                max_blocksize.unwrap_or(MAX_BLKSIZE),
                max_windowsize,
                Duration::from_secs(2),
                4,
            )
        };
        let limits = configured(None, 16);
        assert_eq!(limits.with_mtu(Some(1500)).max_blksize, 1468);
        assert_eq!(limits.with_mtu(Some(9000)).max_blksize, 8968);
        assert_eq!(limits.with_mtu(Some(65536)).max_blksize, MAX_BLKSIZE);
        assert_eq!(limits.with_mtu(None).max_blksize, MAX_BLKSIZE);
        let limits = configured(Some(1024), 16);
        assert_eq!(limits.with_mtu(Some(1500)).max_blksize, 1024);
        assert_eq!(limits.with_mtu(None).max_blksize, 1024);
        let limits = configured(Some(1024), 500).with_mtu(Some(1500));
        assert_eq!(limits.max_windowsize, MAX_WINDOWSIZE);
        assert_eq!(
            (limits.timeout, limits.retries),
            (Duration::from_secs(2), 4)
        );
        // A tiny MTU still leaves the RFC minimum block size.
        assert_eq!(limits.with_mtu(Some(20)).max_blksize, MIN_BLKSIZE);
    }

    #[test]
    fn timeout_and_windowsize_ranges() {
        let now = Instant::now();
        let granted = |name: &str, value: &str| {
            let limits = Limits::new(1468, 16, Duration::from_secs(1), 5);
            let t = Transfer::start(&request(Mode::Octet, &[(name, value)]), &limits, None, now);
            t.granted_options().first().map(|o| o.value.clone())
        };
        assert_eq!(granted("timeout", "1").as_deref(), Some("1"));
        assert_eq!(granted("timeout", "255").as_deref(), Some("255"));
        assert_eq!(granted("timeout", "0"), None);
        assert_eq!(granted("timeout", "256"), None);
        assert_eq!(granted("timeout", "1.5"), None);
        assert_eq!(granted("windowsize", "1").as_deref(), Some("1"));
        assert_eq!(granted("windowsize", "16").as_deref(), Some("16"));
        assert_eq!(granted("windowsize", "64").as_deref(), Some("16"));
        assert_eq!(granted("windowsize", "0"), None);
        assert_eq!(granted("windowsize", "65536"), None);
    }

    /// A client asking a long timeout and then falling silent would hold its slot
    /// for (retries + 1) × that timeout: 25 minutes at 255 s. Above the maximum the
    /// option is not granted, and the server's own timeout applies.
    #[test]
    fn a_timeout_above_the_maximum_is_not_granted() {
        let now = Instant::now();
        let limits = Limits::new(1468, 16, Duration::from_secs(1), 5)
            .with_max_timeout(Duration::from_secs(10));
        let start = |value: &str| {
            let req = request(Mode::Octet, &[("timeout", value), ("blksize", "1024")]);
            Transfer::start(&req, &limits, Some(5000), now)
        };
        let mut t = start("10");
        assert_eq!(
            t.granted_options(),
            &[
                TftpOption::new("timeout", "10"),
                TftpOption::new("blksize", "1024")
            ]
        );
        let mut t255 = start("255");
        assert_eq!(
            t255.granted_options(),
            &[TftpOption::new("blksize", "1024")]
        );
        t.poll_transmit(now);
        assert_eq!(t.poll_timeout(), Some(now + Duration::from_secs(10)));
        t255.poll_transmit(now);
        assert_eq!(t255.poll_timeout(), Some(now + Duration::from_secs(1)));
        // The limit survives the interface's MTU.
        assert_eq!(
            limits.with_mtu(Some(1500)).max_timeout,
            Duration::from_secs(10)
        );
    }

    #[test]
    fn tsize_only_when_the_size_is_known_and_mode_is_octet() {
        let now = Instant::now();
        let req = request(Mode::Octet, &[("tsize", "0")]);
        assert!(
            Transfer::start(&req, &limits(), None, now)
                .granted_options()
                .is_empty()
        );
        let t = Transfer::start(&req, &limits(), Some(0), now);
        assert_eq!(t.granted_options(), &[TftpOption::new("tsize", "0")]);
        let req = request(Mode::Netascii, &[("tsize", "0")]);
        assert!(
            Transfer::start(&req, &limits(), Some(10), now)
                .granted_options()
                .is_empty()
        );
    }

    #[test]
    fn oack_is_retransmitted_until_ack_0() {
        let now = Instant::now();
        let req = request(Mode::Octet, &[("blksize", "1024")]);
        let mut t = Transfer::start(&req, &limits(), None, now);
        t.feed(&[7; 3000]);
        let oack = drain(&mut t, now);
        assert_eq!(oack.len(), 1);
        // Nothing before the timeout, and an early call does nothing.
        assert!(!t.handle_timeout(now + Duration::from_millis(999)));
        assert!(drain(&mut t, now).is_empty());
        // The OACK was lost: resent on each timeout.
        let mut at = now;
        for _ in 0..3 {
            at = t.poll_timeout().unwrap_or(at);
            assert!(t.handle_timeout(at));
            assert_eq!(drain(&mut t, at), oack);
        }
        // ACKs other than 0 do not start the data.
        assert_eq!(
            t.handle_datagram(at, &ack(1)),
            Received::OutOfWindow { block: 1 }
        );
        assert!(drain(&mut t, at).is_empty());
        assert_eq!(t.handle_datagram(at, &ack(0)), Received::OackAcknowledged);
        assert_eq!(blocks_of(&drain(&mut t, at)), vec![1]);
        // A late duplicate ACK 0 changes nothing.
        assert_eq!(t.handle_datagram(at, &ack(0)), Received::Duplicate);
        assert!(drain(&mut t, at).is_empty());
        assert_eq!(t.stats().retransmits, 3);
    }

    #[test]
    fn data_loss_is_recovered_by_timeout() {
        let data = pattern(512 * 10 + 100);
        let req = request(Mode::Octet, &[]);
        // Lose the 3rd and 7th datagrams to the client.
        let run = simulate(&data, &req, &limits(), |n| n == 3 || n == 7, |_| false);
        assert_eq!(run.outcome, Some(Outcome::Completed));
        assert_eq!(run.received, data);
        assert_eq!(run.stats.retransmits, 2);
        assert_eq!(run.server_datagrams, 11 + 2);
        assert_eq!(run.stats.blocks, 11);
        assert_eq!(run.stats.bytes, data.len() as u64);
    }

    #[test]
    fn ack_loss_is_recovered_by_timeout() {
        let data = pattern(512 * 5);
        let req = request(Mode::Octet, &[("tsize", "0")]);
        // Lose ACK 0 (the first datagram to the server) and the 4th.
        let run = simulate(&data, &req, &limits(), |_| false, |n| n == 1 || n == 4);
        assert_eq!(run.outcome, Some(Outcome::Completed));
        assert_eq!(run.received, data);
        // 5 full blocks + an empty final block (exact multiple of 512).
        assert_eq!(run.stats.blocks, 6);
    }

    #[test]
    fn duplicate_acks_never_double_the_traffic() {
        let now = Instant::now();
        let mut t = Transfer::start(&request(Mode::Octet, &[]), &limits(), None, now);
        t.feed(&pattern(512 * 20));
        assert_eq!(blocks_of(&drain(&mut t, now)), vec![1]);
        assert_eq!(
            t.handle_datagram(now, &ack(1)),
            Received::Advanced { acked: 1 }
        );
        assert_eq!(blocks_of(&drain(&mut t, now)), vec![2]);
        // ACK 1 again, ten times (the client retransmitted it): no DATA at all.
        for _ in 0..10 {
            assert_eq!(t.handle_datagram(now, &ack(1)), Received::Duplicate);
            assert!(drain(&mut t, now).is_empty());
        }
        // Every ACK duplicated from here on: still one DATA per new ACK.
        let mut datagrams = 0;
        for block in 2..=10u16 {
            t.handle_datagram(now, &ack(block));
            datagrams += drain(&mut t, now).len();
            t.handle_datagram(now, &ack(block));
            datagrams += drain(&mut t, now).len();
        }
        assert_eq!(datagrams, 9);
        assert_eq!(t.stats().retransmits, 0);
        assert_eq!(t.stats().datagrams, 11);
    }

    #[test]
    fn duplicate_acks_in_a_window_never_double_the_traffic() {
        let now = Instant::now();
        let req = request(Mode::Octet, &[("windowsize", "4")]);
        let mut t = Transfer::start(&req, &limits(), None, now);
        t.feed(&pattern(512 * 40));
        drain(&mut t, now);
        t.handle_datagram(now, &ack(0));
        assert_eq!(blocks_of(&drain(&mut t, now)), vec![1, 2, 3, 4]);
        assert_eq!(
            t.handle_datagram(now, &ack(4)),
            Received::Advanced { acked: 4 }
        );
        assert_eq!(blocks_of(&drain(&mut t, now)), vec![5, 6, 7, 8]);
        // ACK 4 again means "block 5 was lost" (RFC 7440): the window is resent once.
        assert_eq!(
            t.handle_datagram(now, &ack(4)),
            Received::Rewound { acked: 4 }
        );
        assert_eq!(blocks_of(&drain(&mut t, now)), vec![5, 6, 7, 8]);
        // More copies of ACK 4, and older ACKs, many times: nothing more is resent.
        for stale in [4u16, 4, 3, 2, 0, 4, 1, 4] {
            t.handle_datagram(now, &ack(stale));
            assert!(drain(&mut t, now).is_empty(), "ACK {stale} caused traffic");
        }
        assert_eq!(t.stats().retransmits, 4);
        // The client answers each resent copy with ACK 8: one new window, no more.
        assert_eq!(
            t.handle_datagram(now, &ack(8)),
            Received::Advanced { acked: 8 }
        );
        assert_eq!(blocks_of(&drain(&mut t, now)), vec![9, 10, 11, 12]);
        for _ in 0..4 {
            assert_eq!(t.handle_datagram(now, &ack(8)), Received::Duplicate);
            assert!(drain(&mut t, now).is_empty());
        }
    }

    #[test]
    fn window_without_loss_ignores_a_duplicate_after_a_timeout_resend() {
        // Sorcerer's Apprentice with a window: the ACK for a window arrives late, after
        // the timer resent it; the client ACKs each resent copy too.
        let now = Instant::now();
        let req = request(Mode::Octet, &[("windowsize", "4")]);
        let mut t = Transfer::start(&req, &limits(), None, now);
        t.feed(&pattern(512 * 40));
        drain(&mut t, now);
        t.handle_datagram(now, &ack(0));
        assert_eq!(drain(&mut t, now).len(), 4);
        let at = now + Duration::from_secs(1);
        t.handle_timeout(at);
        assert_eq!(blocks_of(&drain(&mut t, at)), vec![1, 2, 3, 4]);
        assert_eq!(
            t.handle_datagram(at, &ack(4)),
            Received::Advanced { acked: 4 }
        );
        assert_eq!(blocks_of(&drain(&mut t, at)), vec![5, 6, 7, 8]);
        for _ in 0..4 {
            assert_eq!(t.handle_datagram(at, &ack(4)), Received::Duplicate);
            assert!(drain(&mut t, at).is_empty());
        }
        assert_eq!(
            t.handle_datagram(at, &ack(8)),
            Received::Advanced { acked: 8 }
        );
        assert_eq!(blocks_of(&drain(&mut t, at)), vec![9, 10, 11, 12]);
        assert_eq!(t.stats().retransmits, 4);
    }

    #[test]
    fn windowsize_1_never_resends_on_a_duplicate() {
        let now = Instant::now();
        let mut t = Transfer::start(&request(Mode::Octet, &[]), &limits(), None, now);
        t.feed(&pattern(512 * 4));
        drain(&mut t, now);
        t.handle_datagram(now, &ack(1));
        drain(&mut t, now);
        for _ in 0..5 {
            assert_eq!(t.handle_datagram(now, &ack(1)), Received::Duplicate);
            assert!(drain(&mut t, now).is_empty());
        }
    }

    #[test]
    fn window_resends_from_the_block_after_a_partial_ack() {
        let now = Instant::now();
        let req = request(Mode::Octet, &[("windowsize", "4")]);
        let mut t = Transfer::start(&req, &limits(), None, now);
        t.feed(&pattern(512 * 40));
        drain(&mut t, now);
        t.handle_datagram(now, &ack(0));
        assert_eq!(blocks_of(&drain(&mut t, now)), vec![1, 2, 3, 4]);
        // Block 3 lost: the client ACKs 2, the last in-order block.
        assert_eq!(
            t.handle_datagram(now, &ack(2)),
            Received::Rewound { acked: 2 }
        );
        assert_eq!(blocks_of(&drain(&mut t, now)), vec![3, 4, 5, 6]);
        // The client saw 4 out of order and ACKs 2 again: a duplicate, ignored.
        assert_eq!(t.handle_datagram(now, &ack(2)), Received::Duplicate);
        assert!(drain(&mut t, now).is_empty());
        assert_eq!(
            t.handle_datagram(now, &ack(6)),
            Received::Advanced { acked: 6 }
        );
        assert_eq!(blocks_of(&drain(&mut t, now)), vec![7, 8, 9, 10]);
        assert_eq!(t.stats().retransmits, 2);
    }

    #[test]
    fn stale_partial_acks_from_a_resent_burst_do_not_rewind_again() {
        let now = Instant::now();
        let req = request(Mode::Octet, &[("windowsize", "8")]);
        let mut t = Transfer::start(&req, &limits(), None, now);
        t.feed(&pattern(512 * 100));
        drain(&mut t, now);
        t.handle_datagram(now, &ack(0));
        assert_eq!(drain(&mut t, now).len(), 8);
        // Timeout: the whole window goes again.
        let at = now + Duration::from_secs(1);
        assert!(t.handle_timeout(at));
        assert_eq!(blocks_of(&drain(&mut t, at)), (1..=8).collect::<Vec<_>>());
        // Late ACKs for blocks of the first burst arrive one by one (a client that
        // ACKs every block). They advance the window but never trigger a resend burst.
        let mut traffic = 0;
        for block in 1..=7u16 {
            assert_eq!(
                t.handle_datagram(at, &ack(block)),
                Received::Advanced {
                    acked: u64::from(block)
                }
            );
            traffic += drain(&mut t, at).len();
        }
        // Each advance opens room for exactly one new block: no duplicates.
        assert_eq!(traffic, 7);
        assert_eq!(t.stats().retransmits, 8);
    }

    #[test]
    fn reordered_acks_are_harmless() {
        let now = Instant::now();
        let req = request(Mode::Octet, &[("windowsize", "2")]);
        let mut t = Transfer::start(&req, &limits(), None, now);
        let data = pattern(512 * 6 + 1);
        t.feed(&data);
        t.feed_eof();
        drain(&mut t, now);
        t.handle_datagram(now, &ack(0));
        assert_eq!(blocks_of(&drain(&mut t, now)), vec![1, 2]);
        t.handle_datagram(now, &ack(2));
        assert_eq!(blocks_of(&drain(&mut t, now)), vec![3, 4]);
        t.handle_datagram(now, &ack(4));
        assert_eq!(blocks_of(&drain(&mut t, now)), vec![5, 6]);
        // ACK 2 overtaken by ACK 4 arrives now: out of window, ignored.
        assert_eq!(
            t.handle_datagram(now, &ack(2)),
            Received::OutOfWindow { block: 2 }
        );
        // An ACK for a block never sent: ignored.
        assert_eq!(
            t.handle_datagram(now, &ack(9)),
            Received::OutOfWindow { block: 9 }
        );
        assert!(drain(&mut t, now).is_empty());
        t.handle_datagram(now, &ack(6));
        assert_eq!(blocks_of(&drain(&mut t, now)), vec![7]);
        assert_eq!(t.handle_datagram(now, &ack(7)), Received::Completed);
    }

    #[test]
    fn last_block_is_retransmitted_until_acknowledged() {
        let now = Instant::now();
        let mut t = Transfer::start(&request(Mode::Octet, &[]), &limits(), None, now);
        t.feed(&pattern(512));
        t.feed_eof();
        assert_eq!(blocks_of(&drain(&mut t, now)), vec![1]);
        t.handle_datagram(now, &ack(1));
        // 512 bytes exactly: an empty block 2 ends the transfer.
        let sent = drain(&mut t, now);
        assert_eq!(sent, vec![vec![0x00, 0x03, 0x00, 0x02]]); // DATA, block 2, no payload
        assert_eq!(t.outcome(), None);
        let mut at = now;
        for _ in 0..3 {
            at += Duration::from_secs(1);
            assert!(t.handle_timeout(at));
            assert_eq!(drain(&mut t, at), sent);
        }
        assert_eq!(t.handle_datagram(at, &ack(2)), Received::Completed);
        assert_eq!(t.outcome(), Some(&Outcome::Completed));
        assert!(drain(&mut t, at).is_empty());
        assert_eq!(t.poll_timeout(), None);
        assert!(!t.handle_timeout(at + Duration::from_secs(60)));
    }

    #[test]
    fn final_ack_loss_is_recovered() {
        let data = pattern(1000);
        // The last datagram to the server (ACK 2) is lost twice.
        let run = simulate(
            &data,
            &request(Mode::Octet, &[]),
            &limits(),
            |_| false,
            |n| n == 2 || n == 3,
        );
        assert_eq!(run.outcome, Some(Outcome::Completed));
        assert_eq!(run.received, data);
        assert_eq!(run.wire_blocks, vec![1, 2, 2, 2]);
    }

    #[test]
    fn empty_file_is_one_empty_block_after_the_oack() {
        let now = Instant::now();
        let req = request(Mode::Octet, &[("tsize", "0")]);
        let mut t = Transfer::start(&req, &limits(), Some(0), now);
        t.feed_eof();
        // opcode 6 | "tsize" NUL "0" NUL
        assert_eq!(drain(&mut t, now), vec![b"\x00\x06tsize\x000\x00".to_vec()]);
        t.handle_datagram(now, &ack(0));
        assert_eq!(drain(&mut t, now), vec![vec![0x00, 0x03, 0x00, 0x01]]);
        assert_eq!(t.handle_datagram(now, &ack(1)), Received::Completed);
        assert_eq!(t.stats().bytes, 0);
    }

    #[test]
    fn client_error_ends_the_transfer_at_once() {
        let now = Instant::now();
        let mut t = Transfer::start(
            &request(Mode::Octet, &[("tsize", "0")]),
            &limits(),
            Some(5000),
            now,
        );
        t.feed(&pattern(5000));
        drain(&mut t, now);
        // The client refuses the OACK with ERROR 8.
        let error = wire::error_packet(ErrorCode::OptionRefused, "no thanks");
        assert_eq!(t.handle_datagram(now, &error), Received::ClientError);
        assert_eq!(
            t.outcome(),
            Some(&Outcome::ClientError {
                code: ErrorCode::OptionRefused,
                message: "no thanks".into()
            })
        );
        assert!(drain(&mut t, now).is_empty(), "no reply to an ERROR");
        assert_eq!(t.poll_timeout(), None);
        assert_eq!(t.wanted_bytes(), 0);
        assert_eq!(
            t.handle_datagram(now, &ack(0)),
            Received::Ignored("transfer already finished")
        );
    }

    #[test]
    fn timeout_exhaustion_sends_an_error_and_ends() {
        let now = Instant::now();
        let limits = Limits::new(1468, 64, Duration::from_secs(2), 3);
        let mut t = Transfer::start(&request(Mode::Octet, &[]), &limits, None, now);
        t.feed(&pattern(2000));
        let first = drain(&mut t, now);
        let mut at = now;
        let mut copies = first.len();
        while t.outcome().is_none() {
            at = t.poll_timeout().unwrap_or(at + Duration::from_secs(1000));
            t.handle_timeout(at);
            let sent = drain(&mut t, at);
            if t.outcome().is_none() {
                assert_eq!(sent, first);
                copies += sent.len();
            } else {
                // opcode 5 | code 0 | message NUL
                assert_eq!(sent.len(), 1);
                assert_eq!(&sent[0][..4], &[0x00, 0x05, 0x00, 0x00]);
                assert_eq!(sent[0].last(), Some(&0));
            }
        }
        assert_eq!(copies, 4, "the original and 3 retransmissions");
        assert_eq!(at - now, Duration::from_secs(8));
        assert_eq!(t.outcome(), Some(&Outcome::TimedOut));
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn progress_resets_the_retry_count() {
        let data = pattern(512 * 30);
        let limits = Limits::new(1468, 64, Duration::from_secs(1), 2);
        // Every block is lost twice before it gets through; 2 retries suffice each time.
        let mut attempt = 0;
        let run = simulate(
            &data,
            &request(Mode::Octet, &[]),
            &limits,
            |_| {
                attempt += 1;
                attempt % 3 != 0
            },
            |_| false,
        );
        assert_eq!(run.outcome, Some(Outcome::Completed));
        assert_eq!(run.received, data);
    }

    #[test]
    fn block_numbers_roll_over_to_0() {
        // blksize 8, 65540 full blocks + 3 bytes: blocks 1..=65535, 0, 1, 2, 3, 4, 5.
        let data = pattern(8 * 65540 + 3);
        let req = request(Mode::Octet, &[("blksize", "8"), ("tsize", "0")]);
        let run = simulate(&data, &req, &limits(), |_| false, |_| false);
        assert_eq!(run.outcome, Some(Outcome::Completed));
        assert_eq!(run.stats.blocks, 65541);
        assert_eq!(run.received.len(), data.len());
        assert!(run.received == data, "content differs");
        let blocks = &run.wire_blocks;
        assert_eq!(blocks.len(), 65541);
        assert_eq!(&blocks[65533..], &[65534, 65535, 0, 1, 2, 3, 4, 5]);
        assert!(
            blocks
                .iter()
                .enumerate()
                .all(|(i, b)| *b == ((i + 1) % 65536) as u16)
        );
    }

    #[test]
    fn rollover_with_a_window_and_losses_around_the_wrap() {
        let data = pattern(8 * 65600);
        let req = request(Mode::Octet, &[("blksize", "8"), ("windowsize", "16")]);
        // Drop a few DATA datagrams right around the wrap and some ACKs.
        let run = simulate(
            &data,
            &req,
            &limits(),
            |n| matches!(n, 65530 | 65536 | 65537 | 65545),
            |n| n % 1000 == 999,
        );
        assert_eq!(run.outcome, Some(Outcome::Completed));
        assert!(run.received == data, "content differs");
        assert_eq!(run.stats.blocks, 65601);
    }

    #[test]
    fn lossy_network_transfers_intact() {
        for (seed, window) in [(1u64, 1u16), (2, 4), (3, 8), (4, 16), (5, 64)] {
            let data = pattern(1468 * 300 + 77);
            let window_text = window.to_string();
            let req = request(
                Mode::Octet,
                &[("blksize", "1468"), ("windowsize", &window_text)],
            );
            let limits = Limits::new(1468, 64, Duration::from_millis(500), 20);
            let mut down = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut up = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
            let run = simulate(&data, &req, &limits, |_| down.chance(5), |_| up.chance(5));
            assert_eq!(run.outcome, Some(Outcome::Completed), "window {window}");
            assert!(run.received == data, "window {window}: content differs");
            // Go-back-N costs grow with the window, but nothing like doubling per loss.
            let percent_allowed = match window {
                1 => 115,
                4 | 8 => 150,
                16 => 170,
                _ => 400,
            };
            assert!(
                run.server_datagrams * 100 < 302 * percent_allowed,
                "window {window}: {} datagrams",
                run.server_datagrams
            );
            assert!(run.elapsed < Duration::from_secs(600));
        }
    }

    #[test]
    fn streaming_source_with_late_data() {
        let now = Instant::now();
        let req = request(Mode::Octet, &[("windowsize", "2")]);
        let mut t = Transfer::start(&req, &limits(), None, now);
        assert_eq!(t.wanted_bytes(), 1024);
        drain(&mut t, now);
        t.handle_datagram(now, &ack(0));
        // Nothing yet: no DATA and no timer (nothing is in flight).
        assert!(drain(&mut t, now).is_empty());
        assert_eq!(t.poll_timeout(), None);
        // 300 bytes: not a full block yet.
        t.feed(&[1; 300]);
        assert!(drain(&mut t, now).is_empty());
        t.feed(&[2; 300]);
        let sent = drain(&mut t, now);
        assert_eq!(blocks_of(&sent), vec![1]);
        assert_eq!(sent[0].len(), 4 + 512);
        assert_eq!(t.wanted_bytes(), 1024 - 600);
        // The HTTP stream ends: the 88 bytes left become the short final block 2.
        t.feed_eof();
        assert_eq!(t.wanted_bytes(), 0);
        let sent = drain(&mut t, now);
        assert_eq!(data_of(&sent[0]), Some((2, vec![2; 88])));
        t.handle_datagram(now, &ack(2));
        assert_eq!(t.outcome(), Some(&Outcome::Completed));
        assert_eq!(t.stats().bytes, 600);
    }

    #[test]
    fn memory_stays_within_the_window() {
        let now = Instant::now();
        let req = request(Mode::Octet, &[("blksize", "1024"), ("windowsize", "4")]);
        let mut t = Transfer::start(&req, &limits(), None, now);
        let data = pattern(1024 * 50);
        let mut offset = 0;
        drain(&mut t, now);
        t.handle_datagram(now, &ack(0));
        let mut acked = 0u16;
        while t.outcome().is_none() {
            supply(&mut t, &data, &mut offset);
            assert!(t.live_len() <= 4 * 1024);
            let sent = drain(&mut t, now);
            if let Some(last) = blocks_of(&sent).last() {
                acked = *last;
            }
            t.handle_datagram(now, &ack(acked));
        }
        assert_eq!(t.stats().bytes, data.len() as u64);
    }

    #[test]
    fn netascii_is_converted() {
        let now = Instant::now();
        let mut t = Transfer::start(&request(Mode::Netascii, &[]), &limits(), Some(8), now);
        t.feed(b"a\nb\rc\r\n");
        t.feed_eof();
        let sent = drain(&mut t, now);
        // DATA 1: a CR LF b CR NUL c CR NUL CR LF
        assert_eq!(
            data_of(&sent[0]),
            Some((1, b"a\r\nb\r\0c\r\0\r\n".to_vec()))
        );
        assert_eq!(sent[0][..2], OPCODE_DATA.to_be_bytes());
    }

    #[test]
    fn netascii_read_in_place_is_converted_too() {
        let now = Instant::now();
        let mut t = Transfer::start(&request(Mode::Netascii, &[]), &limits(), Some(3), now);
        let got = t.feed_with(64, |room| {
            room[..3].copy_from_slice(b"a\nb");
            Ok::<_, ()>(3)
        });
        assert_eq!(got, Ok(3));
        t.feed_eof();
        assert_eq!(
            data_of(&drain(&mut t, now)[0]),
            Some((1, b"a\r\nb".to_vec()))
        );
    }

    #[test]
    fn a_failed_read_in_place_keeps_nothing() {
        let now = Instant::now();
        let mut t = Transfer::start(&request(Mode::Octet, &[]), &limits(), None, now);
        assert_eq!(t.feed_with(512, |_| Err("disk error")), Err("disk error"));
        assert_eq!(t.wanted_bytes(), 512);
        assert!(drain(&mut t, now).is_empty());
    }

    /// Reading ahead straight into the buffer, as the service does with a local file:
    /// every block arrives intact and the buffer stays within a few windows.
    #[test]
    fn read_ahead_in_place_delivers_every_block_in_bounded_memory() {
        const READ_AHEAD: usize = 4 * 1024;
        for window in ["1", "4", "64"] {
            let now = Instant::now();
            let source = pattern(3_000_000);
            let options = [("blksize", "1468"), ("windowsize", window)];
            let mut t = Transfer::start(&request(Mode::Octet, &options), &limits(), None, now);
            let mut offset = 0;
            let mut received = Vec::new();
            let mut largest_buffer = 0;
            let bound = 3 * 1468 * window.parse::<usize>().unwrap() + READ_AHEAD;
            let mut pending = vec![ack(0)];
            while t.outcome().is_none() {
                for packet in pending.drain(..) {
                    t.handle_datagram(now, &packet);
                }
                while t.wanted_bytes() > 0 {
                    let asked = t.wanted_bytes().max(READ_AHEAD);
                    let n = t
                        .feed_with(asked, |room| {
                            let n = room.len().min(source.len() - offset);
                            room[..n].copy_from_slice(&source[offset..offset + n]);
                            Ok::<_, ()>(n)
                        })
                        .unwrap();
                    offset += n;
                    if n < asked {
                        t.feed_eof();
                    }
                }
                largest_buffer = largest_buffer.max(t.buffer.len());
                let mut last = None;
                for datagram in drain(&mut t, now) {
                    if let Some((block, data)) = data_of(&datagram) {
                        received.extend_from_slice(&data);
                        last = Some(block);
                    }
                }
                pending.extend(last.map(ack));
            }
            assert_eq!(t.outcome(), Some(&Outcome::Completed), "window {window}");
            assert!(received == source, "window {window}: bytes differ");
            assert!(
                largest_buffer <= bound,
                "window {window}: buffer grew to {largest_buffer} (bound {bound})"
            );
        }
    }

    #[test]
    fn mail_mode_is_refused() {
        let now = Instant::now();
        let mut t = Transfer::start(&request(Mode::Mail, &[]), &limits(), None, now);
        assert!(matches!(
            t.outcome(),
            Some(Outcome::Aborted {
                code: ErrorCode::IllegalOperation,
                ..
            })
        ));
        let sent = drain(&mut t, now);
        assert_eq!(sent.len(), 1);
        assert_eq!(&sent[0][..4], &[0x00, 0x05, 0x00, 0x04]); // ERROR, code 4
        assert_eq!(t.wanted_bytes(), 0);
    }

    #[test]
    fn source_failure_aborts_with_an_error() {
        let now = Instant::now();
        let mut t = Transfer::start(&request(Mode::Octet, &[]), &limits(), None, now);
        t.feed(&[0; 512]);
        drain(&mut t, now);
        t.abort(now, ErrorCode::FileNotFound, "HTTP 404");
        assert_eq!(
            drain(&mut t, now),
            vec![wire::error_packet(ErrorCode::FileNotFound, "HTTP 404")]
        );
        assert_eq!(t.poll_timeout(), None);
        // A second abort does not queue a second ERROR.
        t.abort(now, ErrorCode::NotDefined, "again");
        assert!(drain(&mut t, now).is_empty());
    }

    #[test]
    fn non_ack_packets_are_ignored() {
        let now = Instant::now();
        let mut t = Transfer::start(&request(Mode::Octet, &[]), &limits(), None, now);
        t.feed(&[0; 1000]);
        drain(&mut t, now);
        for junk in [
            vec![0x00, 0x03, 0x00, 0x01, 0xAA],    // DATA
            b"\x00\x01file\x00octet\x00".to_vec(), // RRQ again
            vec![0x00, 0x06],                      // empty OACK
            vec![0x00, 0x09, 0x01],                // unknown opcode
            vec![0x00],                            // truncated
        ] {
            assert!(matches!(
                t.handle_datagram(now, &junk),
                Received::Ignored(_)
            ));
            assert!(drain(&mut t, now).is_empty());
        }
        assert_eq!(t.outcome(), None);
    }

    proptest! {
        #[test]
        fn random_packets_never_panic(
            options in prop::collection::vec((prop::sample::select(vec!["blksize", "tsize", "timeout", "windowsize", "x"]), "[0-9]{0,7}"), 0..5),
            size in 0usize..5000,
            events in prop::collection::vec((any::<u8>(), any::<u16>(), prop::collection::vec(any::<u8>(), 0..8), 0u64..3000), 0..200),
        ) {
            let options: Vec<(&str, &str)> = options.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let req = request(Mode::Octet, &options);
            let mut now = Instant::now();
            let mut t = Transfer::start(&req, &Limits::new(64, 8, Duration::from_millis(500), 3), Some(size as u64), now);
            let data = pattern(size);
            let mut offset = 0;
            let mut out = Vec::new();
            for (kind, block, junk, step) in events {
                now += Duration::from_millis(step);
                supply(&mut t, &data, &mut offset);
                match kind % 4 {
                    0 | 1 => { t.handle_datagram(now, &ack(block)); }
                    2 => { t.handle_datagram(now, &junk); }
                    _ => { t.handle_timeout(now); }
                }
                let mut n = 0;
                while transmit(&mut t, now, &mut out) {
                    n += 1;
                    prop_assert!(n <= 16, "one event produced more than a window of datagrams");
                    prop_assert!(Packet::parse(&out).is_ok());
                }
                // Without `blksize` the block is 512 bytes whatever the limit.
                prop_assert!(t.live_len() <= 8 * 512);
            }
        }
    }
}
