//! Pieces every mio service loop shares: the waker token, EINTR-safe polling,
//! and draining the inbox.

use std::io;
use std::time::Duration;

use crossbeam_channel::{Receiver, TryRecvError};
use mio::{Events, Poll, Token};

use crate::event::{Event, Message, Reloaded};

/// The token of each service's `mio::Waker`.
pub const WAKER: Token = Token(usize::MAX);

/// `Poll::poll`, retried when a signal interrupts it (signals reach any thread).
pub fn poll(poll: &mut Poll, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
    loop {
        match poll.poll(events, timeout) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// What the inbox asked for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Inbox {
    pub stop: bool,
    pub events: Vec<Event>,
    /// The newest configuration SIGHUP loaded, if one came: an older one in the
    /// same drain is superseded by it.
    pub reload: Option<Reloaded>,
}

/// Empties the inbox (wake-ups coalesce, so one wake may stand for many messages).
/// A closed inbox means the supervisor is gone: stop.
pub fn drain(inbox: &Receiver<Message>) -> Inbox {
    let mut out = Inbox::default();
    loop {
        match inbox.try_recv() {
            Ok(Message::Stop) => out.stop = true,
            Ok(Message::Event(e)) => out.events.push(e),
            Ok(Message::Reload(config)) => out.reload = Some(config),
            Err(TryRecvError::Empty) => return out,
            Err(TryRecvError::Disconnected) => {
                out.stop = true;
                return out;
            }
        }
    }
}
