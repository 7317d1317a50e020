//! The messages that cross threads, and the mailboxes that carry them.
//!
//! Each service thread owns one inbox (a crossbeam channel). A service with a mio
//! loop also owns a `mio::Waker`: a sender always sends first and wakes second, so
//! the loop, woken, finds the message.

use std::net::Ipv4Addr;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::config::Config;
use crate::types::{MacAddr, Uuid};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// ACK (or BOOTP reply) to a PXE client.
    Boot,
    /// ACK (or BOOTP reply) to an operating system.
    Lease,
    Release,
}

/// An ACK or a RELEASE, as the BOOTP service reports it to the notifier and TFTP
/// threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseEvent {
    pub kind: EventKind,
    pub mac: MacAddr,
    pub uuid: Option<Uuid>,
    pub ip: Ipv4Addr,
    pub boot_file: Option<String>,
    /// The server address the client was told (serve TFTP there).
    pub server_ip: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The BOOTP side serves a network from this address: TFTP should listen on it.
    ServerAddress(Ipv4Addr),
    Lease(LeaseEvent),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Stop,
    Event(Event),
    /// SIGHUP: a new configuration, checked; each service applies what it can to
    /// new requests and keeps what is in flight.
    Reload(Reloaded),
}

/// A reloaded configuration, shared by every service. Two are equal when they are
/// the same load (a configuration has no meaningful equality of its own).
#[derive(Debug, Clone)]
pub struct Reloaded(pub Arc<Config>);

impl PartialEq for Reloaded {
    fn eq(&self, other: &Reloaded) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Reloaded {}

impl std::ops::Deref for Reloaded {
    type Target = Config;
    fn deref(&self) -> &Config {
        &self.0
    }
}

/// The sending side of one service's inbox.
#[derive(Clone)]
pub struct Mailbox {
    sender: Sender<Message>,
    waker: Option<Arc<mio::Waker>>,
}

impl Mailbox {
    /// A mailbox with room for `capacity` messages. A full inbox drops the message
    /// rather than block the sender: the BOOTP loop must never wait on a slow consumer.
    pub fn new(capacity: usize, waker: Option<Arc<mio::Waker>>) -> (Mailbox, Receiver<Message>) {
        let (sender, receiver) = crossbeam_channel::bounded(capacity);
        (Mailbox { sender, waker }, receiver)
    }

    /// Delivers `message`; false when the inbox is full or its service has gone.
    pub fn send(&self, message: Message) -> bool {
        let delivered = match self.sender.try_send(message) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        };
        if delivered && let Some(waker) = &self.waker {
            // A failed wake means the poll is gone, i.e. the service is stopping.
            let _ = waker.wake();
        }
        delivered
    }
}

/// Fans each event out to every subscriber (TFTP thread, notifier thread).
///
/// It is built once from the complete list of subscribers and cannot gain one
/// afterwards, nor be copied: a service that publishes holds a bus that reaches
/// every subscriber, whatever order start-up makes them in.
pub struct EventBus {
    subscribers: Vec<(&'static str, Mailbox)>,
}

impl EventBus {
    /// A bus reaching each named mailbox.
    pub fn new(subscribers: Vec<(&'static str, Mailbox)>) -> EventBus {
        EventBus { subscribers }
    }

    pub fn publish(&self, event: Event) {
        for (name, mailbox) in &self.subscribers {
            if !mailbox.send(Message::Event(event.clone())) {
                log::warn!(
                    "the {name} thread's inbox is full or closed; one event was dropped: {event:?}"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_reaches_every_subscriber_and_wakes_their_poll() {
        let mut poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(7)).unwrap());
        let (tftp, tftp_inbox) = Mailbox::new(4, Some(waker));
        let (notify, notify_inbox) = Mailbox::new(4, None);
        let bus = EventBus::new(vec![("tftp", tftp), ("notify", notify)]);
        let event = Event::ServerAddress(Ipv4Addr::new(10, 0, 0, 1));
        bus.publish(event.clone());
        assert_eq!(tftp_inbox.try_recv(), Ok(Message::Event(event.clone())));
        assert_eq!(notify_inbox.try_recv(), Ok(Message::Event(event)));
        let mut events = mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(std::time::Duration::from_secs(1)))
            .unwrap();
        assert!(events.iter().any(|e| e.token() == mio::Token(7)));
    }

    #[test]
    fn a_full_inbox_drops_instead_of_blocking() {
        let (mailbox, inbox) = Mailbox::new(1, None);
        assert!(mailbox.send(Message::Stop));
        assert!(!mailbox.send(Message::Stop));
        drop(inbox);
        assert!(!mailbox.send(Message::Stop));
    }
}
