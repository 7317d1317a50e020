#!/usr/bin/env python3
"""A raw TFTP client for bootd's integration tests: it crafts what real clients
cannot send (NUL inside a name, a foreign endpoint, a repeated RRQ, a client
that never ACKs) and reports what came back, one line on stdout.

Usage (names are given in hex so any byte can be sent):
  get HOST PORT NAMEHEX MODE OUT [opt=value ...]
      download (lockstep, or windowed when windowsize is asked); prints
      "OK <bytes> <blocks> <distinct server ports>" and writes OUT, or
      "ERROR <code> <message>", or "TIMEOUT <what>".
  foreign HOST PORT NAMEHEX OUT
      like get, but after DATA 1 a second socket sends an ACK to the transfer's
      port; prints "FOREIGN <code> <message>" for what that socket got, then the
      get result.
  repeat HOST PORT NAMEHEX OUT
      sends the same RRQ twice from one socket, then downloads; the get result
      counts the distinct server ports that sent DATA.
  hold HOST PORT NAMEHEX SECONDS
      sends an RRQ, prints "HELD <first opcode> <server port>" once the first
      answer arrives, then never ACKs and exits after SECONDS.
  slow HOST PORT NAMEHEX OUT MILLISECONDS
      like get (octet, lockstep), but waits MILLISECONDS before each ACK: a
      client on a slow link.
  rrq HOST PORT NAMEHEX [SECONDS]
      sends one RRQ (octet) and prints the first answer: "ERROR code msg",
      "DATA block len", "OACK ..." or "TIMEOUT" after SECONDS (default 3).
  flood HOST PORT NAMEHEX COUNT [opt=value ...]
      sends COUNT RRQs (octet, with the options), each from its own port, never
      acknowledges anything, and after 3 s prints "FLOOD" and how many first
      answers of each kind came, as "kind=count" separated by ";" (kinds: DATA,
      OACK, "ERROR code message", NONE).
  slow-get HOST PORT NAMEHEX OUT MILLISECONDS [opt=value ...]
      slow, with options.

The client binds to the address in the environment variable TFTP_BIND, if set.
"""

import collections
import os
import select
import socket
import struct
import sys
import time

RRQ, WRQ, DATA, ACK, ERROR, OACK = 1, 2, 3, 4, 5, 6


def rrq(name, mode, options):
    packet = struct.pack("!H", RRQ) + name + b"\0" + mode.encode() + b"\0"
    for key, value in options:
        packet += key.encode() + b"\0" + value.encode() + b"\0"
    return packet


def describe(packet):
    if len(packet) < 4:
        return "SHORT %d" % len(packet)
    opcode, arg = struct.unpack("!HH", packet[:4])
    if opcode == ERROR:
        message = packet[4:].split(b"\0")[0].decode("ascii", "replace")
        return "ERROR %d %s" % (arg, message)
    if opcode == DATA:
        return "DATA %d %d" % (arg, len(packet) - 4)
    if opcode == OACK:
        parts = packet[2:].split(b"\0")
        return "OACK " + " ".join(p.decode("ascii", "replace") for p in parts if p)
    return "OPCODE %d" % opcode


def get(sock, server, name, mode, options, out, first_rrq=True, after_data1=None,
        deadline_s=60.0, ack_delay_s=0.0):
    """Downloads into `out`; returns the result line."""
    asked = dict(options)
    blksize = 512
    window = 1
    if first_rrq:
        sock.sendto(rrq(name, mode, options), server)
    deadline = time.monotonic() + deadline_s
    peer = None
    ports = set()
    expected = 1  # next block index (64-bit, not wrapped)
    received = bytearray()
    in_window = 0
    tries = 0
    sock.settimeout(1.0)
    while True:
        if time.monotonic() > deadline:
            return "TIMEOUT transfer after %d bytes" % len(received)
        try:
            packet, source = sock.recvfrom(70000)
        except socket.timeout:
            tries += 1
            if tries > 10:
                return "TIMEOUT no answer after %d bytes" % len(received)
            if peer is None:
                sock.sendto(rrq(name, mode, options), server)
            else:
                sock.sendto(struct.pack("!HH", ACK, (expected - 1) & 0xFFFF), peer)
            continue
        if len(packet) < 4:
            continue
        opcode, arg = struct.unpack("!HH", packet[:4])
        if peer is None:
            peer = source
        if opcode in (DATA, OACK):
            ports.add(source[1])
        if source != peer:
            # A second transfer answering: note it (ports) but do not follow it.
            continue
        tries = 0
        if opcode == ERROR:
            return describe(packet)
        if opcode == OACK:
            parts = packet[2:].split(b"\0")
            granted = {parts[i].decode().lower(): parts[i + 1].decode()
                       for i in range(0, len(parts) - 1, 2) if parts[i]}
            for key in granted:
                if key not in asked:
                    return "BADOACK %s not asked" % key
            blksize = int(granted.get("blksize", "512"))
            window = int(granted.get("windowsize", "1"))
            if expected == 1:
                sock.sendto(struct.pack("!HH", ACK, 0), peer)
            continue
        if opcode != DATA:
            continue
        if arg == (expected & 0xFFFF):
            payload = packet[4:]
            received += payload
            expected += 1
            in_window += 1
            if expected == 2 and after_data1 is not None:
                after_data1(peer)
            last = len(payload) < blksize
            if last or in_window >= window:
                if ack_delay_s:
                    time.sleep(ack_delay_s)
                sock.sendto(struct.pack("!HH", ACK, (expected - 1) & 0xFFFF), peer)
                in_window = 0
            if last:
                # Dally: answer a retransmitted last block (our ACK was lost).
                dally_end = time.monotonic() + 1.5
                while time.monotonic() < dally_end:
                    sock.settimeout(max(0.01, dally_end - time.monotonic()))
                    try:
                        again, source = sock.recvfrom(70000)
                    except socket.timeout:
                        break
                    if source == peer and again[:2] == struct.pack("!H", DATA):
                        sock.sendto(struct.pack("!HH", ACK, (expected - 1) & 0xFFFF), peer)
                with open(out, "wb") as f:
                    f.write(received)
                return "OK %d %d %d" % (len(received), expected - 1, len(ports))
        else:
            # Out of order or duplicate: acknowledge what we have (RFC 7440).
            sock.sendto(struct.pack("!HH", ACK, (expected - 1) & 0xFFFF), peer)
            in_window = 0


def main():
    command, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    name = bytes.fromhex(sys.argv[4])
    server = (host, port)
    bind = os.environ.get("TFTP_BIND", "0.0.0.0")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((bind, 0))
    if command == "get":
        mode, out = sys.argv[5], sys.argv[6]
        options = [tuple(o.split("=", 1)) for o in sys.argv[7:]]
        print(get(sock, server, name, mode, options, out), flush=True)
    elif command == "foreign":
        out = sys.argv[5]

        def intrude(peer):
            other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            other.bind(("0.0.0.0", 0))
            other.settimeout(3.0)
            other.sendto(struct.pack("!HH", ACK, 1), peer)
            try:
                answer, source = other.recvfrom(70000)
                print("FOREIGN " + describe(answer) + " from %d" % source[1], flush=True)
            except socket.timeout:
                print("FOREIGN TIMEOUT", flush=True)
            other.close()

        print(get(sock, server, name, "octet", [], out, after_data1=intrude), flush=True)
    elif command == "repeat":
        out = sys.argv[5]
        sock.sendto(rrq(name, "octet", []), server)
        sock.sendto(rrq(name, "octet", []), server)
        print(get(sock, server, name, "octet", [], out, first_rrq=False), flush=True)
    elif command == "hold":
        seconds = float(sys.argv[5])
        sock.sendto(rrq(name, "octet", []), server)
        sock.settimeout(5.0)
        try:
            packet, source = sock.recvfrom(70000)
            print("HELD %s %d" % (describe(packet), source[1]), flush=True)
        except socket.timeout:
            print("TIMEOUT", flush=True)
        time.sleep(seconds)
    elif command == "slow":
        out, delay_ms = sys.argv[5], float(sys.argv[6])
        print(get(sock, server, name, "octet", [], out, ack_delay_s=delay_ms / 1000),
              flush=True)
    elif command == "slow-get":
        out, delay_ms = sys.argv[5], float(sys.argv[6])
        options = [tuple(o.split("=", 1)) for o in sys.argv[7:]]
        print(get(sock, server, name, "octet", options, out, ack_delay_s=delay_ms / 1000),
              flush=True)
    elif command == "flood":
        count = int(sys.argv[5])
        options = [tuple(o.split("=", 1)) for o in sys.argv[6:]]
        sockets = []
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((bind, 0))
            s.sendto(rrq(name, "octet", options), server)
            sockets.append(s)
        answers = {}
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and len(answers) < count:
            waiting = [s for s in sockets if s.fileno() not in answers]
            ready, _, _ = select.select(waiting, [], [], max(0.01, deadline - time.monotonic()))
            for s in ready:
                packet, _ = s.recvfrom(70000)
                kind = describe(packet)
                if kind.startswith(("DATA", "OACK")):
                    kind = kind.split(" ")[0]
                answers[s.fileno()] = kind
        counts = collections.Counter(answers.values())
        counts["NONE"] = count - len(answers)
        print("FLOOD " + ";".join("%s=%d" % kv for kv in sorted(counts.items()) if kv[1]),
              flush=True)
    elif command == "rrq":
        sock.sendto(rrq(name, "octet", []), server)
        sock.settimeout(float(sys.argv[5]) if len(sys.argv) > 5 else 3.0)
        try:
            packet, source = sock.recvfrom(70000)
            print(describe(packet), flush=True)
        except socket.timeout:
            print("TIMEOUT", flush=True)
    else:
        sys.exit("unknown command " + command)


if __name__ == "__main__":
    main()
