"""Many DHCP clients at once: a storm of DISCOVER, OFFER, REQUEST, ACK exchanges.

    storm_client.py IFACE RATE MACFILE

Starts one exchange per MAC of MACFILE (one a line), RATE new ones a second,
without waiting for those under way. A DISCOVER or REQUEST unanswered for a
second is sent again, twice at most. Prints one line per MAC as its exchange
ends, flushed at once: `ACK <mac> <address>`, `NAK <mac>`, or `LOST <mac>`;
then exits. The REQUEST names the offered address (option 50) and the server
(option 54), as a client in SELECTING state does.
"""
import os
import select
import socket
import struct
import sys
import time

iface, rate, macfile = sys.argv[1], float(sys.argv[2]), sys.argv[3]
with open(macfile) as f:
    macs = [line.strip() for line in f if line.strip()]

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
sock.bind(("0.0.0.0", 68))
sock.setblocking(False)


def request(xid, mac, options):
    """A broadcast BOOTREQUEST (Ethernet, no relay) padded to BOOTP's 300 bytes."""
    packet = (
        struct.pack("!BBBB", 1, 1, 6, 0)
        + xid
        + struct.pack("!HH", 0, 0x8000)
        + bytes(16)
        + mac
        + bytes(10)
        + bytes(192)
        + bytes([99, 130, 83, 99])
        + options
        + bytes([255])
    )
    return packet + bytes(max(0, 300 - len(packet)))


def parse(reply):
    """(xid, message type, yiaddr, server identifier) of a BOOTREPLY, or None."""
    if len(reply) < 240 or reply[0] != 2:
        return None
    kind, server, i = None, None, 240
    while i + 1 < len(reply) and reply[i] != 255:
        if reply[i] == 0:
            i += 1
            continue
        tag, length = reply[i], reply[i + 1]
        value = reply[i + 2 : i + 2 + length]
        if tag == 53 and length == 1:
            kind = value[0]
        if tag == 54 and length == 4:
            server = value
        i += 2 + length
    return bytes(reply[4:8]), kind, bytes(reply[16:20]), server


class Exchange:
    def __init__(self, text):
        self.text = text
        self.mac = bytes.fromhex(text.replace(":", "").replace("-", ""))
        self.xid = os.urandom(4)
        self.packet = request(self.xid, self.mac, bytes([53, 1, 1]))
        self.tries = 0
        self.sent = 0.0

    def send(self, now):
        try:
            sock.sendto(self.packet, ("255.255.255.255", 67))
        except BlockingIOError:
            pass  # as if lost: sent again in a second
        self.tries += 1
        self.sent = now


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


pending = {}
started = time.monotonic()
next_mac = 0
while next_mac < len(macs) or pending:
    now = time.monotonic()
    while next_mac < len(macs) and next_mac < (now - started) * rate + 1:
        exchange = Exchange(macs[next_mac])
        next_mac += 1
        pending[exchange.xid] = exchange
        exchange.send(now)
    for xid, exchange in list(pending.items()):
        if now - exchange.sent < 1.0:
            continue
        if exchange.tries >= 3:
            del pending[xid]
            say(f"LOST {exchange.text}")
            continue
        exchange.send(now)
    select.select([sock], [], [], 0.002)
    while True:
        try:
            reply = sock.recv(2048)
        except BlockingIOError:
            break
        parsed = parse(reply)
        if parsed is None:
            continue
        xid, kind, yiaddr, server = parsed
        exchange = pending.get(xid)
        if exchange is None:
            continue
        if kind == 2 and server is not None and exchange.packet[242] == 1:
            options = bytes([53, 1, 3, 50, 4]) + yiaddr + bytes([54, 4]) + server
            exchange.packet = request(xid, exchange.mac, options)
            exchange.tries = 0
            exchange.send(time.monotonic())
        elif kind == 5:
            del pending[xid]
            say(f"ACK {exchange.text} {socket.inet_ntoa(yiaddr)}")
        elif kind == 6:
            del pending[xid]
            say(f"NAK {exchange.text}")
