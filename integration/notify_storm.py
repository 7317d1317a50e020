"""Many DHCP leases in a row, and a listener that counts the notifications they cause.

    notify_storm.py listen ADDRESS PORT IDLE-SECONDS
    notify_storm.py leases IFACE MACS ROUNDS

`listen` prints `READY`, then one line per datagram received, and exits after
IDLE-SECONDS without one. `leases` does DISCOVER, OFFER, REQUEST, ACK for MACS
machines (02:00:00:00:xx:yy), ROUNDS times over (each round asks again for the
same address, so each ACK is a new lease event), and prints `ACKS <count>`.
"""
import os
import socket
import struct
import sys
import time


def listen(address, port, idle):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # Room for every datagram of a burst, whatever rmem_max says (we are root).
    SO_RCVBUFFORCE = 33
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
    sock.bind((address, int(port)))
    sock.settimeout(float(idle))
    print("READY", flush=True)
    while True:
        try:
            data, _ = sock.recvfrom(2048)
        except socket.timeout:
            return
        print(data.decode("ascii", "replace"), flush=True)


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


def answer(sock, xid, kind, deadline):
    """The reply to `xid` whose message type is `kind`, or None at the deadline."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            reply, _ = sock.recvfrom(2048)
        except socket.timeout:
            return None
        if len(reply) < 240 or reply[0] != 2 or reply[4:8] != xid:
            continue
        options = reply[240:]
        i = 0
        while i + 1 < len(options) and options[i] != 255:
            if options[i] == 0:
                i += 1
                continue
            tag, length = options[i], options[i + 1]
            if tag == 53 and length == 1 and options[i + 2] == kind:
                return reply
            i += 2 + length


def server_id(reply):
    options = reply[240:]
    i = 0
    while i + 1 < len(options) and options[i] != 255:
        if options[i] == 0:
            i += 1
            continue
        tag, length = options[i], options[i + 1]
        if tag == 54 and length == 4:
            return options[i + 2 : i + 6]
        i += 2 + length
    return None


def leases(iface, macs, rounds):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    sock.bind(("0.0.0.0", 68))
    acks = 0
    for _ in range(int(rounds)):
        for n in range(int(macs)):
            mac = bytes([2, 0, 0, 0, n >> 8, n & 0xFF])
            xid = os.urandom(4)
            sock.sendto(request(xid, mac, bytes([53, 1, 1])), ("255.255.255.255", 67))
            offer = answer(sock, xid, 2, time.monotonic() + 2)
            if offer is None:
                continue
            sid = server_id(offer)
            options = bytes([53, 1, 3, 50, 4]) + offer[16:20]
            if sid is not None:
                options += bytes([54, 4]) + sid
            sock.sendto(request(xid, mac, options), ("255.255.255.255", 67))
            if answer(sock, xid, 5, time.monotonic() + 2) is not None:
                acks += 1
    print(f"ACKS {acks}", flush=True)


if sys.argv[1] == "listen":
    listen(*sys.argv[2:5])
elif sys.argv[1] == "leases":
    leases(*sys.argv[2:5])
else:
    sys.exit(f"unknown mode {sys.argv[1]}")
