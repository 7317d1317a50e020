//! The connection driven byte by byte, with a disk held in memory answering its
//! operations as the shell would.

use super::*;
use crate::nbd::wire::*;

fn exports() -> Vec<ExportInfo> {
    vec![
        ExportInfo {
            name: "disk".into(),
            size: 1 << 20,
            flags: TX_HAS_FLAGS | TX_SEND_FLUSH | TX_SEND_FUA | TX_SEND_TRIM | TX_SEND_WRITE_ZEROES,
        },
        ExportInfo {
            name: "ro".into(),
            size: 8192,
            flags: TX_HAS_FLAGS | TX_READ_ONLY,
        },
    ]
}

/// A connection, its disk, and what it sent.
struct Harness {
    now: Instant,
    c: Connection,
    exports: Vec<ExportInfo>,
    disk: Vec<u8>,
    sent: Vec<u8>,
    logs: Vec<(Level, String)>,
    selected: Option<usize>,
    ops: Vec<Event>,
}

impl Harness {
    fn new() -> Harness {
        let now = Instant::now();
        let mut h = Harness {
            now,
            c: Connection::new(now),
            exports: exports(),
            disk: (0..1 << 20).map(|i| (i % 251) as u8).collect(),
            sent: Vec::new(),
            logs: Vec::new(),
            selected: None,
            ops: Vec::new(),
        };
        h.pump();
        h
    }

    /// Sends what the connection has to send and answers its operations.
    fn pump(&mut self) {
        loop {
            let out: Vec<u8> = self.c.poll_transmit().flatten().copied().collect();
            if !out.is_empty() {
                self.sent.extend_from_slice(&out);
                self.c
                    .handle_transmitted(self.now, out.len(), &self.exports);
                continue;
            }
            let Some(event) = self.c.poll_event() else {
                return;
            };
            self.ops.push(event.clone());
            match event {
                Event::Log(level, line) => self.logs.push((level, line)),
                Event::Selected { export } => self.selected = Some(export),
                Event::Read { offset, len } => {
                    let data =
                        self.disk[offset as usize..(offset + u64::from(len)) as usize].to_vec();
                    self.c.handle_read(Ok(data), &self.exports);
                }
                Event::Write { offset, data, .. } => {
                    self.disk[offset as usize..offset as usize + data.len()].copy_from_slice(&data);
                    self.c.handle_done(Ok(()), &self.exports);
                }
                Event::WriteZeroes { offset, len, .. } => {
                    self.disk[offset as usize..(offset + u64::from(len)) as usize].fill(0);
                    self.c.handle_done(Ok(()), &self.exports);
                }
                Event::Flush | Event::Trim { .. } => self.c.handle_done(Ok(()), &self.exports),
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = self.c.input_room();
            assert!(room > 0, "the connection takes no more input");
            let n = room.min(rest.len());
            self.c.handle_input(self.now, &rest[..n], &self.exports);
            rest = &rest[n..];
            self.pump();
        }
        self.pump();
    }

    fn take_sent(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.sent)
    }

    fn option(&mut self, code: u32, data: &[u8]) -> Vec<OptionReply> {
        let mut bytes = OptionHeader {
            code: OptionCode::from_u32(code),
            length: data.len() as u32,
        }
        .emit();
        bytes.extend_from_slice(data);
        self.send(&bytes);
        let sent = self.take_sent();
        let mut replies = Vec::new();
        let mut at = 0;
        while at < sent.len() {
            let (reply, len) = OptionReply::parse(&sent[at..]).unwrap();
            replies.push(reply);
            at += len;
        }
        replies
    }

    /// Greeting read, client flags sent.
    fn negotiated(flags: u32) -> Harness {
        let mut h = Harness::new();
        assert_eq!(h.take_sent(), emit_greeting(3));
        h.send(&flags.to_be_bytes());
        h
    }

    /// In transmission on `name` through GO.
    fn transmitting(name: &str) -> Harness {
        let mut h = Harness::negotiated(3);
        let go = InfoRequest {
            name: name.into(),
            requests: vec![],
        };
        let replies = h.option(7, &go.emit());
        assert_eq!(replies.last().map(|r| r.reply), Some(REP_ACK));
        h
    }

    fn request(&mut self, command: u16, flags: u16, cookie: u64, offset: u64, length: u32) {
        let bytes = Request {
            flags,
            command: Command::from_u16(command),
            cookie,
            offset,
            length,
        }
        .emit();
        self.send(&bytes);
    }

    fn reply(&mut self) -> (SimpleReply, Vec<u8>) {
        let sent = self.take_sent();
        let reply = SimpleReply::parse(&sent).unwrap();
        (reply, sent[16..].to_vec())
    }
}

#[test]
fn export_name_answers_size_flags_and_zeroes_unless_no_zeroes() {
    for (client_flags, padded) in [(1u32, true), (3, false)] {
        let mut h = Harness::negotiated(client_flags);
        let mut bytes = OptionHeader {
            code: OptionCode::ExportName,
            length: 4,
        }
        .emit();
        bytes.extend_from_slice(b"disk");
        h.send(&bytes);
        let sent = h.take_sent();
        let flags = exports()[0].flags;
        assert_eq!(sent, emit_export_name_reply(1 << 20, flags, !padded));
        assert_eq!(h.selected, Some(0));
        assert!(h.c.is_transmitting());
    }
}

#[test]
fn an_unknown_export_name_closes_without_a_reply() {
    let mut h = Harness::negotiated(3);
    let mut bytes = OptionHeader {
        code: OptionCode::ExportName,
        length: 4,
    }
    .emit();
    bytes.extend_from_slice(b"nope");
    h.send(&bytes);
    assert!(h.take_sent().is_empty());
    assert!(h.c.is_finished());
    assert_eq!(h.logs.len(), 1, "{:?}", h.logs);
    assert!(h.logs[0].1.contains("no export named \"nope\""));
}

#[test]
fn go_answers_info_export_then_ack_and_starts_transmission() {
    let mut h = Harness::negotiated(3);
    let go = InfoRequest {
        name: "ro".into(),
        requests: vec![INFO_BLOCK_SIZE, INFO_NAME, INFO_DESCRIPTION],
    };
    let replies = h.option(7, &go.emit());
    let kinds: Vec<u32> = replies.iter().map(|r| r.reply).collect();
    assert_eq!(kinds, vec![REP_INFO, REP_INFO, REP_INFO, REP_ACK]);
    assert!(replies.iter().all(|r| r.option == 7));
    assert_eq!(
        replies[0].data,
        info_export_data(8192, TX_HAS_FLAGS | TX_READ_ONLY)
    );
    assert_eq!(replies[1].data, info_block_size_data(1, 4096, MAX_PAYLOAD));
    assert_eq!(replies[2].data, info_name_data("ro"));
    assert_eq!(h.selected, Some(1));
}

#[test]
fn info_answers_without_starting_transmission_and_the_empty_name_is_the_first_export() {
    let mut h = Harness::negotiated(3);
    let info = InfoRequest {
        name: String::new(),
        requests: vec![],
    };
    let replies = h.option(6, &info.emit());
    assert_eq!(replies.len(), 2);
    assert_eq!(
        replies[0].data,
        info_export_data(1 << 20, exports()[0].flags)
    );
    assert_eq!(replies[1].reply, REP_ACK);
    assert_eq!(h.selected, None);
    assert!(!h.c.is_transmitting());
}

#[test]
fn go_for_an_unknown_export_is_refused_and_the_handshake_goes_on() {
    let mut h = Harness::negotiated(3);
    let go = InfoRequest {
        name: "nope".into(),
        requests: vec![],
    };
    let replies = h.option(7, &go.emit());
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].reply, REP_ERR_UNKNOWN);
    assert!(!h.c.is_finished());
    // A malformed GO is refused too, and the stream stays in step.
    let replies = h.option(7, &[0, 0, 0, 9, b'x']);
    assert_eq!(replies[0].reply, REP_ERR_INVALID);
    let go = InfoRequest {
        name: "disk".into(),
        requests: vec![],
    };
    let replies = h.option(7, &go.emit());
    assert_eq!(replies.last().map(|r| r.reply), Some(REP_ACK));
}

#[test]
fn list_names_every_export_then_acks_and_refuses_data() {
    let mut h = Harness::negotiated(3);
    let replies = h.option(3, &[]);
    assert_eq!(replies.len(), 3);
    assert_eq!(replies[0].reply, REP_SERVER);
    assert_eq!(replies[0].data, server_data("disk"));
    assert_eq!(replies[1].data, server_data("ro"));
    assert_eq!(replies[2].reply, REP_ACK);
    let replies = h.option(3, b"x");
    assert_eq!(replies[0].reply, REP_ERR_INVALID);
}

#[test]
fn other_options_are_refused_as_unsupported_and_their_data_skipped() {
    let mut h = Harness::negotiated(3);
    for code in [5u32, 8, 9, 10, 11, 4, 1000] {
        let replies = h.option(code, b"some data");
        assert_eq!(replies.len(), 1, "option {code}");
        assert_eq!(replies[0].option, code);
        assert_eq!(replies[0].reply, REP_ERR_UNSUP);
    }
    assert!(!h.c.is_finished());
}

#[test]
fn abort_is_acknowledged_then_the_connection_closes() {
    let mut h = Harness::negotiated(3);
    let replies = h.option(2, &[]);
    assert_eq!(replies[0].reply, REP_ACK);
    assert!(h.c.is_finished());
}

#[test]
fn bad_client_flags_or_option_magic_close_with_one_log_line() {
    let h = Harness::negotiated(4);
    assert!(h.c.is_finished());
    assert_eq!(h.logs.len(), 1);
    let mut h = Harness::negotiated(3);
    h.send(b"NOTMAGIC\0\0\0\x07\0\0\0\0");
    assert!(h.c.is_finished());
    assert_eq!(h.logs.len(), 1);
    assert!(h.logs[0].1.contains("bad option request"), "{:?}", h.logs);
}

#[test]
fn oversized_option_data_is_skipped_and_refused_too_big() {
    let mut h = Harness::negotiated(3);
    let replies = h.option(6, &vec![0u8; 100_000]);
    assert_eq!(replies[0].reply, REP_ERR_TOO_BIG);
    let replies = h.option(3, &[]);
    assert_eq!(replies.last().map(|r| r.reply), Some(REP_ACK));
}

#[test]
fn endless_options_are_cut_off() {
    let mut h = Harness::negotiated(3);
    for _ in 0..MAX_OPTIONS {
        h.option(3, &[]);
    }
    assert!(!h.c.is_finished());
    h.option(3, &[]);
    assert!(h.c.is_finished());
}

#[test]
fn the_handshake_times_out() {
    let mut h = Harness::negotiated(3);
    assert_eq!(h.c.poll_timeout(), Some(h.now + HANDSHAKE_TIMEOUT));
    h.c.handle_timeout(h.now + HANDSHAKE_TIMEOUT - Duration::from_millis(1));
    assert!(!h.c.is_finished());
    h.c.handle_timeout(h.now + HANDSHAKE_TIMEOUT);
    assert!(h.c.is_finished());
}

#[test]
fn a_read_returns_exactly_the_bytes_asked_for() {
    let mut h = Harness::transmitting("disk");
    h.request(0, 0, 7, 100, 512);
    let (reply, data) = h.reply();
    assert_eq!(
        reply,
        SimpleReply {
            error: 0,
            cookie: 7
        }
    );
    assert_eq!(data, h.disk[100..612].to_vec());
    assert_eq!(
        h.c.poll_timeout(),
        None,
        "an idle connection has no deadline"
    );
}

#[test]
fn a_large_read_is_asked_for_in_pieces_and_arrives_whole() {
    let mut h = Harness::transmitting("disk");
    h.request(0, 0, 1, 0, 1 << 20);
    let (reply, data) = h.reply();
    assert_eq!(reply.error, 0);
    assert_eq!(data, h.disk);
    let reads = h
        .ops
        .iter()
        .filter(|e| matches!(e, Event::Read { .. }))
        .count();
    assert_eq!(reads, 4);
}

#[test]
fn a_write_then_a_read_sees_it_and_pipelined_replies_keep_their_order() {
    let mut h = Harness::transmitting("disk");
    let mut bytes = Request {
        flags: CMD_FLAG_FUA,
        command: Command::Write,
        cookie: 1,
        offset: 4000,
        length: 300,
    }
    .emit();
    bytes.extend_from_slice(&[0xAB; 300]);
    bytes.extend(
        Request {
            flags: 0,
            command: Command::Read,
            cookie: 2,
            offset: 4000,
            length: 300,
        }
        .emit(),
    );
    bytes.extend(
        Request {
            flags: 0,
            command: Command::Flush,
            cookie: 3,
            offset: 0,
            length: 0,
        }
        .emit(),
    );
    h.send(&bytes);
    let sent = h.take_sent();
    assert_eq!(
        SimpleReply::parse(&sent).unwrap(),
        SimpleReply {
            error: 0,
            cookie: 1
        }
    );
    assert_eq!(
        SimpleReply::parse(&sent[16..]).unwrap(),
        SimpleReply {
            error: 0,
            cookie: 2
        }
    );
    assert_eq!(sent[32..332], [0xAB; 300]);
    assert_eq!(
        SimpleReply::parse(&sent[332..]).unwrap(),
        SimpleReply {
            error: 0,
            cookie: 3
        }
    );
    assert_eq!(sent.len(), 348);
    assert!(
        h.ops
            .iter()
            .any(|e| matches!(e, Event::Write { fua: true, .. }))
    );
}

#[test]
fn reads_past_the_end_are_einval_and_writes_past_it_enospc() {
    let mut h = Harness::transmitting("disk");
    h.request(0, 0, 1, (1 << 20) - 10, 11);
    assert_eq!(h.reply().0.error, EINVAL);
    h.request(0, 0, 2, u64::MAX, 1);
    assert_eq!(h.reply().0.error, EINVAL);
    let mut bytes = Request {
        flags: 0,
        command: Command::Write,
        cookie: 3,
        offset: 1 << 20,
        length: 4,
    }
    .emit();
    bytes.extend_from_slice(b"abcd");
    h.send(&bytes);
    assert_eq!(
        h.reply().0,
        SimpleReply {
            error: ENOSPC,
            cookie: 3
        }
    );
    h.request(4, 0, 4, 1 << 20, 1);
    assert_eq!(h.reply().0.error, EINVAL, "trim past the end");
    // The stream is still in step.
    h.request(0, 0, 5, 0, 1);
    assert_eq!(
        h.reply().0,
        SimpleReply {
            error: 0,
            cookie: 5
        }
    );
    let info: Vec<_> = h.logs.iter().filter(|(l, _)| *l == Level::Info).collect();
    assert_eq!(info.len(), 1, "one info line, then debug: {:?}", h.logs);
}

#[test]
fn writes_trims_and_flushes_on_a_read_only_export_are_refused() {
    let mut h = Harness::transmitting("ro");
    let mut bytes = Request {
        flags: 0,
        command: Command::Write,
        cookie: 1,
        offset: 0,
        length: 512,
    }
    .emit();
    bytes.extend_from_slice(&[1; 512]);
    h.send(&bytes);
    assert_eq!(
        h.reply().0,
        SimpleReply {
            error: EPERM,
            cookie: 1
        }
    );
    h.request(4, 0, 2, 0, 512);
    assert_eq!(h.reply().0.error, EPERM);
    h.request(6, 0, 3, 0, 512);
    assert_eq!(h.reply().0.error, EPERM);
    h.request(3, 0, 4, 0, 0);
    assert_eq!(h.reply().0.error, EINVAL, "FLUSH is not offered");
    assert!(!h.ops.iter().any(|e| matches!(e, Event::Write { .. })));
}

#[test]
fn unknown_commands_and_flags_are_einval() {
    let mut h = Harness::transmitting("disk");
    h.request(5, 0, 1, 0, 512); // CACHE
    assert_eq!(h.reply().0.error, EINVAL);
    h.request(7, 0, 2, 0, 512); // BLOCK_STATUS
    assert_eq!(h.reply().0.error, EINVAL);
    h.request(0, 1 << 2, 3, 0, 512); // DF without structured replies
    assert_eq!(h.reply().0.error, EINVAL);
    let mut h = Harness::transmitting("ro");
    h.request(0, CMD_FLAG_FUA, 4, 0, 512); // FUA not offered
    assert_eq!(h.reply().0.error, EINVAL);
}

#[test]
fn an_oversized_read_is_refused_and_an_oversized_write_closes() {
    let mut h = Harness::transmitting("disk");
    h.request(0, 0, 1, 0, MAX_PAYLOAD + 1);
    assert_eq!(h.reply().0.error, EINVAL);
    h.request(1, 0, 2, 0, u32::MAX);
    assert_eq!(
        h.reply().0,
        SimpleReply {
            error: EINVAL,
            cookie: 2
        }
    );
    assert!(h.c.is_finished());
}

#[test]
fn a_bad_request_magic_closes_the_connection() {
    let mut h = Harness::transmitting("disk");
    h.send(&[0u8; 28]);
    assert!(h.c.is_finished());
    assert!(h.take_sent().is_empty());
}

#[test]
fn disconnect_closes_after_the_replies_leave() {
    let mut h = Harness::transmitting("disk");
    h.request(2, 0, 1, 0, 0);
    assert!(h.take_sent().is_empty(), "DISC has no reply");
    assert!(h.c.is_finished());
}

#[test]
fn trim_and_write_zeroes_reach_the_disk() {
    let mut h = Harness::transmitting("disk");
    h.request(6, CMD_FLAG_NO_HOLE, 1, 0, 4096);
    assert_eq!(h.reply().0.error, 0);
    assert!(h.disk[..4096].iter().all(|b| *b == 0));
    h.request(4, 0, 2, 0, 4096);
    assert_eq!(h.reply().0.error, 0);
    assert!(h.ops.iter().any(|e| matches!(
        e,
        Event::Trim {
            offset: 0,
            len: 4096
        }
    )));
}

#[test]
fn a_large_write_is_handed_on_in_chunks_and_a_failed_chunk_fails_the_request() {
    let mut h = Harness::transmitting("disk");
    let len = 600 << 10;
    let mut bytes = Request {
        flags: 0,
        command: Command::Write,
        cookie: 9,
        offset: 0,
        length: len,
    }
    .emit();
    bytes.extend(std::iter::repeat_n(0x5A, len as usize));
    h.send(&bytes);
    assert_eq!(
        h.reply().0,
        SimpleReply {
            error: 0,
            cookie: 9
        }
    );
    assert!(h.disk[..len as usize].iter().all(|b| *b == 0x5A));
    let chunks = h
        .ops
        .iter()
        .filter(|e| matches!(e, Event::Write { .. }))
        .count();
    assert!(chunks >= 3, "{chunks}");

    // The disk refuses the first chunk: the rest is skipped and the error replied.
    let mut h = Harness::transmitting("disk");
    let mut header = Request {
        flags: 0,
        command: Command::Write,
        cookie: 10,
        offset: 0,
        length: len,
    }
    .emit();
    header.extend(std::iter::repeat_n(1u8, WRITE_CHUNK));
    h.c.handle_input(h.now, &header, &h.exports.clone());
    let event = std::iter::from_fn(|| h.c.poll_event()).find(|e| matches!(e, Event::Write { .. }));
    assert!(event.is_some());
    h.c.handle_done(Err(ENOSPC), &h.exports.clone());
    let rest = vec![1u8; len as usize - WRITE_CHUNK];
    h.send(&rest);
    assert_eq!(
        h.reply().0,
        SimpleReply {
            error: ENOSPC,
            cookie: 10
        }
    );
    h.request(0, 0, 11, 0, 1);
    assert_eq!(
        h.reply().0,
        SimpleReply {
            error: 0,
            cookie: 11
        }
    );
}

#[test]
fn a_client_that_reads_no_replies_is_not_given_more_work_and_times_out() {
    let mut h = Harness::transmitting("disk");
    let mut bytes = Vec::new();
    for cookie in 0..64 {
        bytes.extend(
            Request {
                flags: 0,
                command: Command::Read,
                cookie,
                offset: 0,
                length: 1 << 20,
            }
            .emit(),
        );
    }
    // Feed the requests without sending anything back.
    h.c.handle_input(h.now, &bytes, &h.exports.clone());
    while let Some(event) = h.c.poll_event() {
        if let Event::Read { offset, len } = event {
            let data = h.disk[offset as usize..(offset + u64::from(len)) as usize].to_vec();
            h.c.handle_read(Ok(data), &h.exports.clone());
        }
    }
    assert!(h.c.output_len() <= OUTPUT_HIGH + READ_CHUNK as usize + 16);
    let at = h.c.poll_timeout().unwrap();
    assert_eq!(at, h.now + STALL_TIMEOUT);
    h.c.handle_timeout(at);
    assert!(h.c.is_finished());
}

#[test]
fn a_read_that_fails_before_its_reply_is_an_error_reply() {
    let mut h = Harness::transmitting("disk");
    let bytes = Request {
        flags: 0,
        command: Command::Read,
        cookie: 3,
        offset: 0,
        length: 512,
    }
    .emit();
    h.c.handle_input(h.now, &bytes, &h.exports.clone());
    assert!(matches!(h.c.poll_event(), Some(Event::Read { .. })));
    h.c.handle_read(Err(EIO), &h.exports.clone());
    h.pump();
    assert_eq!(
        h.reply().0,
        SimpleReply {
            error: EIO,
            cookie: 3
        }
    );
    // A short answer is an I/O error too.
    h.c.handle_input(h.now, &bytes, &h.exports.clone());
    assert!(matches!(h.c.poll_event(), Some(Event::Read { .. })));
    h.c.handle_read(Ok(vec![0; 10]), &h.exports.clone());
    h.pump();
    assert_eq!(h.reply().0.error, EIO);
}

#[test]
fn random_bytes_never_panic_and_input_stays_bounded() {
    // A deterministic generator: the same bytes on every run.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..300 {
        let mut h = Harness::new();
        h.take_sent();
        // Valid prefixes now and then, so the later states are reached too.
        if round % 3 == 0 {
            h.send(&3u32.to_be_bytes());
            if round % 2 == 0 {
                let go = InfoRequest {
                    name: "disk".into(),
                    requests: vec![],
                };
                h.option(7, &go.emit());
            }
        }
        for _ in 0..50 {
            let len = (next() % 64) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let room = h.c.input_room();
            h.c.handle_input(h.now, &bytes[..len.min(room)], &h.exports.clone());
            h.pump();
            if h.c.is_finished() {
                break;
            }
        }
        assert!(h.c.input_room() <= INPUT_CAPACITY);
    }
}
