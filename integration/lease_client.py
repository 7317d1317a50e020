"""DHCP clients, one after the other, each DISCOVER, OFFER, REQUEST, ACK.

    lease_client.py IFACE MAC [MAC...] [--until-failure]

Prints one line per MAC: `ACK <mac> <address>`, `NAK <mac>`, `NOOFFER <mac>` or
`NOACK <mac> <offered address>` (no answer to the REQUEST within a second). The
REQUEST names the offered address (option 50) and the server (option 54), as a
client in SELECTING state does. With --until-failure, stops after the first MAC
that is not ACKed.
"""
import os
import socket
import struct
import sys

args = [a for a in sys.argv[1:] if a != "--until-failure"]
until_failure = "--until-failure" in sys.argv[1:]
iface, macs = args[0], args[1:]

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
sock.bind(("0.0.0.0", 68))


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


def answer(xid, timeout=1.0):
    """(message type, yiaddr, server identifier) of the reply to xid, or None."""
    sock.settimeout(timeout)
    while True:
        try:
            reply, _ = sock.recvfrom(2048)
        except socket.timeout:
            return None
        if len(reply) < 240 or reply[0] != 2 or reply[4:8] != xid:
            continue
        kind, server, i = None, None, 240
        while i < len(reply) and reply[i] != 255:
            if reply[i] == 0:
                i += 1
                continue
            if i + 1 >= len(reply):
                break
            tag, length = reply[i], reply[i + 1]
            value = reply[i + 2 : i + 2 + length]
            if tag == 53 and length == 1:
                kind = value[0]
            if tag == 54 and length == 4:
                server = value
            i += 2 + length
        return kind, reply[16:20], server


for mac_text in macs:
    mac = bytes.fromhex(mac_text.replace(":", "").replace("-", ""))
    xid = os.urandom(4)
    sock.sendto(request(xid, mac, bytes([53, 1, 1])), ("255.255.255.255", 67))
    offer = answer(xid)
    if offer is None or offer[0] != 2 or offer[2] is None:
        print(f"NOOFFER {mac_text}", flush=True)
        if until_failure:
            break
        continue
    offered, server = offer[1], offer[2]
    options = bytes([53, 1, 3, 50, 4]) + offered + bytes([54, 4]) + server
    sock.sendto(request(xid, mac, options), ("255.255.255.255", 67))
    ack = answer(xid)
    if ack is not None and ack[0] == 5:
        print(f"ACK {mac_text} {socket.inet_ntoa(ack[1])}", flush=True)
        continue
    if ack is not None and ack[0] == 6:
        print(f"NAK {mac_text}", flush=True)
    else:
        print(f"NOACK {mac_text} {socket.inet_ntoa(offered)}", flush=True)
    if until_failure:
        break
