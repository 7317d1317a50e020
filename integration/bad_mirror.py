#!/usr/bin/env python3
"""A misbehaving HTTP mirror for bootd's integration tests: what the first path
segment of a GET names, it does.

Usage: bad_mirror.py ADDRESS PORT REDIRECT_TO
  /good/NAME         200 with Content-Length and 100,000 bytes (byte i = i % 251)
  /silent/NAME       accepts, reads the request, never answers (holds 120 s)
  /stall/NAME        200 with Content-Length 100,000, sends 30,000 bytes, then
                     nothing (holds 120 s)
  /redirect/NAME     302 to REDIRECT_TO
  /endless/NAME      200, a header line of 8,191 bytes ended by a bare LF, then
                     header lines up to 256 MiB (until the client hangs up)
  /chunked-cut/NAME  200 chunked: 30,000 bytes in chunks, then closes without the
                     last (zero-size) chunk
Prints "READY" once listening, and one line per request: "GET <path>".
"""

import socket
import sys
import threading
import time

GOOD = bytes(i % 251 for i in range(100_000))


def handle(conn, redirect_to):
    try:
        conn.settimeout(10)
        request = b""
        while b"\r\n\r\n" not in request and len(request) < 65536:
            data = conn.recv(4096)
            if not data:
                return
            request += data
        path = request.split(b" ")[1].decode("ascii", "replace")
        print("GET " + path, flush=True)
        kind = path.split("/")[1] if path.count("/") >= 2 else ""
        conn.settimeout(None)
        if kind == "good":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(GOOD) + GOOD)
        elif kind == "silent":
            time.sleep(120)
        elif kind == "stall":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(GOOD) + GOOD[:30_000])
            time.sleep(120)
        elif kind == "redirect":
            conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: " + redirect_to.encode()
                         + b"\r\nContent-Length: 0\r\n\r\n")
        elif kind == "endless":
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 8191 + b"\n")
            line = b"X-More: " + b"b" * 1016 + b"\n"
            block = line * 1024  # 1 MiB
            for _ in range(256):
                conn.sendall(block)
        elif kind == "chunked-cut":
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for start in range(0, 30_000, 10_000):
                piece = GOOD[start:start + 10_000]
                conn.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            # No "0\r\n\r\n": the answer is cut.
        else:
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    except OSError:
        pass
    finally:
        conn.close()


def main():
    address, port, redirect_to = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((address, port))
    server.listen(128)
    print("READY", flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=handle, args=(conn, redirect_to), daemon=True).start()


if __name__ == "__main__":
    main()
