"""Floods bootd from a client namespace.

    flood.py HOST PORT COUNT SECONDS SEED
    flood.py discover|inform IFACE COUNT RATE SECONDS SEED

The first form sends COUNT hostile datagrams to HOST:PORT, stopping after
SECONDS: a mix of random bytes of random length (0-1500), truncated and
mutated BOOTP requests and TFTP requests with random options, so both parsers
see malformed input in every shape.

The second broadcasts up to COUNT well-formed DHCPDISCOVERs (or DHCPINFORMs)
from IFACE, each from a new random MAC, at RATE a second for at most SECONDS,
and counts the answers: one line `second N: sent S, answered A` per second,
then `sent S answered A`. Deterministic for a seed.
"""
import random
import socket
import struct
import sys
import time



def new_macs(kind, iface, count, rate, seconds, seed):
    """DISCOVERs or INFORMs from a new MAC each, at `rate` a second; counts replies."""
    rng = random.Random(seed)
    message = 1 if kind == "discover" else 8
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("0.0.0.0", 68))
    sock.setblocking(False)
    options = bytes([53, 1, message, 55, 3, 1, 3, 6, 255])
    start = time.monotonic()
    sent = answered = 0
    second, second_sent, second_answered = 0, 0, 0
    while sent < count:
        now = time.monotonic()
        elapsed = now - start
        if elapsed >= seconds:
            break
        if int(elapsed) > second:
            print(f"second {second}: sent {second_sent}, answered {second_answered}", flush=True)
            second, second_sent, second_answered = int(elapsed), 0, 0
        # Keep to the rate: send what is due by now.
        due = min(count, int(elapsed * rate) + 1)
        while sent < due:
            mac = bytes([0x02]) + rng.randbytes(5)
            packet = (
                struct.pack("!BBBB", 1, 1, 6, 0)
                + rng.randbytes(4)
                + bytes(20)
                + mac
                + bytes(10 + 192)
                + bytes([99, 130, 83, 99])
                + options
            )
            try:
                sock.sendto(packet, ("255.255.255.255", 67))
                sent += 1
                second_sent += 1
            except OSError:
                time.sleep(0.0005)
                break
        while True:
            try:
                reply = sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                break
            if len(reply) > 240 and reply[0] == 2:
                answered += 1
                second_answered += 1
        time.sleep(0.0005)
    print(f"second {second}: sent {second_sent}, answered {second_answered}", flush=True)
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        try:
            reply = sock.recv(2048)
            if len(reply) > 240 and reply[0] == 2:
                answered += 1
        except (BlockingIOError, InterruptedError):
            time.sleep(0.01)
    print(f"sent {sent} answered {answered}", flush=True)


if sys.argv[1] in ("discover", "inform"):
    new_macs(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]))
    sys.exit(0)

host, port, count, seconds, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
rng = random.Random(seed)


def bootp_like():
    header = bytearray(
        struct.pack("!BBBB", 1, 1, 6, rng.randrange(256))
        + rng.randbytes(4)
        + rng.randbytes(4)
        + bytes(16)
        + rng.randbytes(6)
        + bytes(202)
        + bytes([99, 130, 83, 99])
    )
    options = bytearray()
    for _ in range(rng.randrange(0, 40)):
        tag = rng.choice([0, 53, 50, 54, 55, 57, 60, 61, 43, 52, 82, 93, 94, 97, 255, rng.randrange(256)])
        length = rng.choice([0, 1, 2, 4, 16, 17, 255, rng.randrange(256)])
        options += bytes([tag, length]) + rng.randbytes(min(length, rng.randrange(0, 300)))
    packet = header + options
    for _ in range(rng.randrange(0, 8)):
        if packet:
            packet[rng.randrange(len(packet))] = rng.randrange(256)
    return bytes(packet[: rng.randrange(0, len(packet) + 1)] if rng.random() < 0.3 else packet)


def tftp_like():
    opcode = rng.choice([1, 2, 3, 4, 5, 6, 0, 7, 65535])
    name = rng.choice([b"pxelinux.0", b"../../etc/passwd", b"%2e%2e/x", rng.randbytes(rng.randrange(0, 600))])
    mode = rng.choice([b"octet", b"netascii", b"mail", rng.randbytes(rng.randrange(0, 20))])
    options = b""
    for _ in range(rng.randrange(0, 10)):
        options += rng.choice([b"blksize", b"tsize", b"timeout", b"windowsize", rng.randbytes(8)]) + b"\0"
        options += rng.choice([b"0", b"8", b"65464", b"99999999999999999999", b"-1", rng.randbytes(6)]) + b"\0"
    packet = struct.pack("!H", opcode) + name + b"\0" + mode + b"\0" + options
    return packet[: rng.randrange(0, len(packet) + 1)] if rng.random() < 0.3 else packet


sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
deadline = time.monotonic() + seconds
sent = 0
for _ in range(count):
    if time.monotonic() > deadline:
        break
    kind = rng.random()
    if kind < 0.2:
        packet = rng.randbytes(rng.randrange(0, 1500))
    elif port in (67, 6767):
        packet = bootp_like()
    else:
        packet = tftp_like()
    try:
        sock.sendto(packet, (host, port))
        sent += 1
    except OSError:
        time.sleep(0.001)
print(f"sent {sent}", flush=True)
