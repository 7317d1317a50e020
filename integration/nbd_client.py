#!/usr/bin/env python3
"""A hand-made NBD client for bootd's integration tests: well-behaved requests
with exact checks, and the malformed, oversized and abandoned ones real clients
never send.

    nbd_client.py HOST PORT [--source ADDR] COMMAND ARGS...

Commands (each prints what it found and exits 1 on a mismatch):
    write EXPORT OFFSET BYTE LEN     write LEN bytes of BYTE (hex) at OFFSET
    expect EXPORT OFFSET BYTE LEN    read them back, fail unless all are BYTE
    expect-not EXPORT OFFSET BYTE LEN  fail if all are BYTE
    contains EXPORT TEXT             prints yes or no: whether TEXT is on the disk
    abuse EXPORT RO_EXPORT SIZE      every kind of bad input, in one run
    storm EXPORT N                   N connections at once, each reads a block,
                                     all held open until told (stdin line)
"""

import socket
import struct
import sys

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x0003E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY = 0x67446698
OPT_GO, OPT_LIST, OPT_STRUCTURED = 7, 3, 8
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM, CMD_CACHE = 0, 1, 2, 3, 4, 5
EPERM, EINVAL, ENOSPC = 1, 22, 28

HOST, PORT, SOURCE = None, None, None


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def connect():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(20)
    if SOURCE:
        sock.bind((SOURCE, 0))
    sock.connect((HOST, PORT))
    return sock


def greeting(sock, flags=3):
    magic, opt, hflags = struct.unpack(">QQH", recv_exact(sock, 18))
    if magic != NBDMAGIC or opt != IHAVEOPT or hflags & 1 == 0:
        fail("bad greeting %x %x %x" % (magic, opt, hflags))
    sock.sendall(struct.pack(">I", flags))


def option(sock, code, data):
    sock.sendall(struct.pack(">QII", IHAVEOPT, code, len(data)) + data)


def option_reply(sock):
    magic, opt, kind, length = struct.unpack(">QIII", recv_exact(sock, 20))
    if magic != REPLY_MAGIC:
        fail("bad option reply magic %x" % magic)
    return opt, kind, recv_exact(sock, length)


def go(sock, name):
    """GO on `name`: returns (size, flags)."""
    data = name.encode()
    option(sock, OPT_GO, struct.pack(">I", len(data)) + data + struct.pack(">H", 0))
    size = flags = None
    while True:
        opt, kind, body = option_reply(sock)
        if kind == 3 and struct.unpack(">H", body[:2])[0] == 0:
            size, flags = struct.unpack(">QH", body[2:12])
        elif kind == 1:
            return size, flags
        elif kind & 0x80000000:
            fail("GO %s refused: %x %r" % (name, kind, body))


def open_export(name):
    sock = connect()
    greeting(sock)
    size, flags = go(sock, name)
    return sock, size, flags


def request(sock, command, offset, length, cookie=1, flags=0, data=b""):
    sock.sendall(struct.pack(">IHHQQI", REQUEST_MAGIC, flags, command, cookie, offset, length) + data)


def reply(sock, read_len=0):
    magic, error, cookie = struct.unpack(">IIQ", recv_exact(sock, 16))
    if magic != SIMPLE_REPLY:
        fail("bad reply magic %x" % magic)
    data = recv_exact(sock, read_len) if error == 0 and read_len else b""
    return error, cookie, data


def expect_error(sock, want, what, read_len=0):
    error, _, _ = reply(sock, read_len)
    if error != want:
        fail("%s: error %d, wanted %d" % (what, error, want))
    print("ok: %s -> %d" % (what, error))


def expect_closed(sock, what):
    try:
        sock.settimeout(10)
        data = sock.recv(1)
        while data:
            data = sock.recv(65536)
    except (ConnectionResetError, EOFError):
        pass
    except socket.timeout:
        fail("%s: the connection stayed open" % what)
    print("ok: %s -> closed" % what)


def cmd_write(export, offset, byte, length):
    sock, _, _ = open_export(export)
    request(sock, CMD_WRITE, offset, length, data=bytes([byte]) * length)
    error, _, _ = reply(sock)
    if error:
        fail("write: error %d" % error)
    request(sock, CMD_FLUSH, 0, 0, cookie=2)
    error, _, _ = reply(sock)
    if error:
        fail("flush: error %d" % error)
    request(sock, CMD_DISC, 0, 0)
    print("ok: wrote %d bytes of %02x at %d" % (length, byte, offset))


def read_block(export, offset, length):
    sock, _, _ = open_export(export)
    request(sock, CMD_READ, offset, length)
    error, _, data = reply(sock, length)
    if error:
        fail("read: error %d" % error)
    request(sock, CMD_DISC, 0, 0)
    return data


def cmd_contains(export, text):
    sock, size, _ = open_export(export)
    needle = text.encode()
    chunk = 1 << 20
    tail = b""
    found = False
    for offset in range(0, size, chunk):
        length = min(chunk, size - offset)
        request(sock, CMD_READ, offset, length)
        error, _, data = reply(sock, length)
        if error:
            fail("read: error %d" % error)
        if needle in tail + data:
            found = True
            break
        tail = data[-len(needle):]
    request(sock, CMD_DISC, 0, 0)
    print("yes" if found else "no")


def cmd_abuse(export, ro_export, size):
    # Client flags the server did not offer: closed.
    sock = connect()
    greeting(sock, flags=0x8)
    expect_closed(sock, "unknown client flags")
    # A bad option magic: closed.
    sock = connect()
    greeting(sock)
    sock.sendall(b"NOTMAGIC" + struct.pack(">II", OPT_GO, 0))
    expect_closed(sock, "bad option magic")
    # A handshake cut off in the middle of an option: the server copes.
    sock = connect()
    greeting(sock)
    sock.sendall(struct.pack(">QII", IHAVEOPT, OPT_GO, 100) + b"half")
    sock.close()
    # An unsupported option and an oversized one: refused, the handshake goes on.
    sock = connect()
    greeting(sock)
    option(sock, OPT_STRUCTURED, b"")
    opt, kind, _ = option_reply(sock)
    if (opt, kind) != (OPT_STRUCTURED, 0x80000001):
        fail("STRUCTURED_REPLY: %d %x" % (opt, kind))
    print("ok: STRUCTURED_REPLY -> NBD_REP_ERR_UNSUP")
    option(sock, 6, b"\0" * 100000)
    opt, kind, _ = option_reply(sock)
    if kind != 0x80000009:
        fail("oversized INFO: %x" % kind)
    print("ok: oversized option -> NBD_REP_ERR_TOO_BIG")
    go(sock, export)
    # Out of range, unknown command, read-only export.
    request(sock, CMD_READ, size - 1, 2)
    expect_error(sock, EINVAL, "read past the end")
    request(sock, CMD_WRITE, size, 4, data=b"abcd")
    expect_error(sock, ENOSPC, "write past the end")
    request(sock, CMD_CACHE, 0, 512)
    expect_error(sock, EINVAL, "CACHE")
    request(sock, CMD_READ, 0, (32 << 20) + 1)
    expect_error(sock, EINVAL, "read over 32 MiB")
    request(sock, CMD_READ, 0, 512, cookie=77)
    error, cookie, data = reply(sock, 512)
    if error or cookie != 77 or len(data) != 512:
        fail("the stream lost its step after refusals")
    print("ok: still in step")
    # A write over 32 MiB: refused and closed (its data cannot be skipped cheaply).
    request(sock, CMD_WRITE, 0, 0xFFFFFFFF)
    expect_error(sock, EINVAL, "write over 32 MiB")
    expect_closed(sock, "after an oversized write")
    sock, _, flags = open_export(ro_export)
    if not flags & 2:
        fail("read-only export without READ_ONLY flag")
    request(sock, CMD_WRITE, 0, 512, data=b"\1" * 512)
    expect_error(sock, EPERM, "write to a read-only export")
    request(sock, CMD_TRIM, 0, 512)
    expect_error(sock, EPERM, "trim on a read-only export")
    # A bad request magic: closed.
    sock.sendall(b"\0" * 28)
    expect_closed(sock, "bad request magic")
    # Vanishing mid-request: half a header, then half a write's data.
    sock, _, _ = open_export(export)
    sock.sendall(struct.pack(">IHH", REQUEST_MAGIC, 0, CMD_WRITE))
    sock.close()
    sock, _, _ = open_export(export)
    request(sock, CMD_WRITE, 0, 1 << 20, data=b"\2" * (300 << 10))
    sock.close()
    sock, _, _ = open_export(export)
    for i in range(64):  # many reads, no reply read, then gone
        request(sock, CMD_READ, 0, 1 << 20, cookie=i)
    sock.close()
    print("ok: abuse survived")


def cmd_storm(export, count):
    socks = []
    for _ in range(count):
        sock = connect()
        socks.append(sock)
    for sock in socks:
        greeting(sock)
        go(sock, export)
    for i, sock in enumerate(socks):
        request(sock, CMD_READ, 4096 * (i % 16), 4096, cookie=i)
    for i, sock in enumerate(socks):
        error, cookie, data = reply(sock, 4096)
        if error or cookie != i or len(data) != 4096:
            fail("connection %d: error %d" % (i, error))
    print("ok: %d connections served" % count, flush=True)
    sys.stdin.readline()
    for sock in socks:
        request(sock, CMD_DISC, 0, 0)
        sock.close()


def main():
    global HOST, PORT, SOURCE
    args = sys.argv[1:]
    HOST, PORT = args[0], int(args[1])
    args = args[2:]
    if args[0] == "--source":
        SOURCE = args[1]
        args = args[2:]
    command, rest = args[0], args[1:]
    if command == "write":
        cmd_write(rest[0], int(rest[1]), int(rest[2], 16), int(rest[3]))
    elif command in ("expect", "expect-not"):
        data = read_block(rest[0], int(rest[1]), int(rest[3]))
        same = data == bytes([int(rest[2], 16)]) * int(rest[3])
        if same != (command == "expect"):
            fail("%s: the bytes at %s are %r…" % (command, rest[1], data[:8]))
        print("ok: %s" % command)
    elif command == "contains":
        cmd_contains(rest[0], rest[1])
    elif command == "abuse":
        cmd_abuse(rest[0], rest[1], int(rest[2]))
    elif command == "storm":
        cmd_storm(rest[0], int(rest[1]))
    else:
        fail("unknown command " + command)


if __name__ == "__main__":
    main()
