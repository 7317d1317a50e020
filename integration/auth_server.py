"""An HTTP authorisation server for bootd's `access = http` tests.

    auth_server.py ADDRESS PORT LOG ALLOW_UUIDS [HANG_MAC]

Answers GET /boot and /linux: 200 when the `uuid` parameter is in the
comma-separated ALLOW_UUIDS list, with a body `Client: host-<last 4 hex>` and
`File: custom-<last 4 hex>.0`; 401 otherwise. A request for HANG_MAC is held
for 30 s without an answer. Each request's path and query goes to LOG, one
line each. Threaded, so a held request does not hold the others.
"""
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

address, port, log_path, allowed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
hang_mac = sys.argv[5] if len(sys.argv) > 5 else None
allowed = {u.lower() for u in allowed.split(",") if u}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        with open(log_path, "a") as log:
            log.write(self.path + "\n")
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        mac = query.get("mac", [""])[0]
        uuid = query.get("uuid", [""])[0].lower()
        if hang_mac and mac == hang_mac:
            time.sleep(30)
            return
        if url.path in ("/boot", "/linux") and uuid in allowed:
            tail = uuid[-4:]
            body = f"\n\nClient: host-{tail}\nFile: custom-{tail}.0\n".encode()
            self.send_response(200)
        else:
            body = b"Not authorized\n"
            self.send_response(401)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer((address, port), Handler)
server.daemon_threads = True
print("listening", flush=True)
server.serve_forever()
