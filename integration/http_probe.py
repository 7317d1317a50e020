#!/usr/bin/env python3
"""Misbehaving HTTP clients for integration/http.rs.

  http_probe.py slow HOST PORT PATH        send a request one byte a second; print
                                           "GOT <status line>" or "CLOSED" and the
                                           seconds it took, then exit
  http_probe.py idle HOST PORT COUNT SECS  open COUNT connections that send nothing,
                                           print "READY <opened>", hold them SECS
                                           seconds (or until stdin closes), exit
  http_probe.py raw HOST PORT HEX          send the bytes HEX, print the status line
"""
import resource
import socket
import sys
import time


def slow(host, port, path):
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    start = time.monotonic()
    s = socket.create_connection((host, port), timeout=30)
    try:
        for byte in request:
            s.send(bytes([byte]))
            time.sleep(1)
            # Answered (or cut) before the head was complete?
            s.setblocking(False)
            try:
                data = s.recv(4096)
            except BlockingIOError:
                data = None
            finally:
                s.setblocking(True)
            if data is not None:
                report(data, start)
                return
        report(s.recv(4096), start)
    except OSError:
        report(b"", start)


def report(data, start):
    elapsed = time.monotonic() - start
    if data:
        line = data.split(b"\r\n", 1)[0].decode(errors="replace")
        print(f"GOT {line} after {elapsed:.1f}", flush=True)
    else:
        print(f"CLOSED after {elapsed:.1f}", flush=True)


def idle(host, port, count, seconds):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 64), hard))
    held = []
    for _ in range(count):
        try:
            held.append(socket.create_connection((host, port), timeout=5))
        except OSError as e:
            print(f"connect failed: {e}", flush=True)
            break
    print(f"READY {len(held)}", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.2)


def raw(host, port, hexbytes):
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(bytes.fromhex(hexbytes))
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    print(data.split(b"\r\n", 1)[0].decode(errors="replace") or "CLOSED", flush=True)


def main():
    command, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if command == "slow":
        slow(host, port, sys.argv[4])
    elif command == "idle":
        idle(host, port, int(sys.argv[4]), float(sys.argv[5]))
    elif command == "raw":
        raw(host, port, sys.argv[4])
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
