//! The notifier thread: one UDP datagram per target for every lease event, in
//! pybootd's format (`BOOT,UUID,MAC,IP`, `LEASE,[UUID,]MAC,IP`, `RELEASE,[UUID,]MAC,IP`).
//! It blocks only on its own inbox; a dead target costs a failed `send_to`, never a
//! delayed DHCP reply.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};

use crossbeam_channel::Receiver;

use crate::event::{Event, EventKind, LeaseEvent, Message};

/// The datagram payload for `event` (ASCII, no trailing newline).
pub fn datagram(event: &LeaseEvent) -> String {
    let kind = match event.kind {
        EventKind::Boot => "BOOT",
        EventKind::Lease => "LEASE",
        EventKind::Release => "RELEASE",
    };
    match event.uuid {
        Some(uuid) => format!("{kind},{uuid},{},{}", event.mac, event.ip),
        None => format!("{kind},{},{}", event.mac, event.ip),
    }
}

/// Runs until `Message::Stop` or until every sender is gone.
pub fn run(targets: Vec<SocketAddr>, inbox: Receiver<Message>) -> Result<(), String> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .map_err(|e| format!("cannot open the notification socket: {e}"))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| format!("cannot configure the notification socket: {e}"))?;
    while let Ok(message) = inbox.recv() {
        match message {
            Message::Stop => return Ok(()),
            Message::Event(Event::ServerAddress(_)) => {}
            Message::Event(Event::Lease(event)) => {
                let payload = datagram(&event);
                for target in &targets {
                    match socket.send_to(payload.as_bytes(), target) {
                        Ok(_) => log::debug!("notified {target}: {payload}"),
                        Err(e) => log::warn!("cannot notify {target} of `{payload}`: {e}"),
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Mailbox;
    use crate::types::{MacAddr, Uuid};
    use std::time::Duration;

    fn event(kind: EventKind, uuid: Option<u128>) -> LeaseEvent {
        LeaseEvent {
            kind,
            mac: MacAddr([0x00, 0x0a, 0x86, 0xa2, 0x2f, 0x3e]),
            uuid: uuid.map(Uuid),
            ip: Ipv4Addr::new(10, 0, 0, 100),
            boot_file: Some("pxelinux.0".into()),
            server_ip: Ipv4Addr::new(10, 0, 0, 1),
        }
    }

    #[test]
    fn payloads() {
        let uuid = 0x12345678_abcd_ef00_1111_abcdefabcdef;
        assert_eq!(
            datagram(&event(EventKind::Boot, Some(uuid))),
            "BOOT,12345678-abcd-ef00-1111-abcdefabcdef,00-0A-86-A2-2F-3E,10.0.0.100"
        );
        assert_eq!(
            datagram(&event(EventKind::Lease, None)),
            "LEASE,00-0A-86-A2-2F-3E,10.0.0.100"
        );
        assert_eq!(
            datagram(&event(EventKind::Release, Some(uuid))),
            "RELEASE,12345678-abcd-ef00-1111-abcdefabcdef,00-0A-86-A2-2F-3E,10.0.0.100"
        );
    }

    #[test]
    fn every_target_receives_each_event_and_a_dead_one_does_not_block() {
        let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        // A port nobody listens on: sends fail or vanish, the thread goes on.
        let dead: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let targets = vec![dead, listener.local_addr().unwrap()];
        let (mailbox, inbox) = Mailbox::new(8, None);
        let thread = std::thread::spawn(move || run(targets, inbox));
        mailbox.send(Message::Event(Event::Lease(event(EventKind::Lease, None))));
        mailbox.send(Message::Event(Event::Lease(event(
            EventKind::Release,
            None,
        ))));
        let mut buf = [0u8; 128];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"LEASE,00-0A-86-A2-2F-3E,10.0.0.100");
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"RELEASE,00-0A-86-A2-2F-3E,10.0.0.100");
        mailbox.send(Message::Stop);
        assert_eq!(thread.join().unwrap(), Ok(()));
    }
}
