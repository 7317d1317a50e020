"""An HTTP authorisation server for bootd's `access = http` tests.

    auth_server.py ADDRESS PORT LOG ALLOW_UUIDS [NEVER_ANSWER]

Answers GET /boot and /linux: 200 when the `uuid` parameter is in the
comma-separated ALLOW_UUIDS list, with a body `Client: host-<last 4 hex>` and
`File: custom-<last 4 hex>.0`; 401 otherwise. A request whose `mac` is in the
comma-separated NEVER_ANSWER list (an entry ending in `*` is a prefix) is
never answered: the connection is held open, silent, until the client gives
up. Each request's path and query goes to LOG, one line each. Threaded, so a
held request does not hold the others.
"""
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

address, port, log_path, allowed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
never = [m for m in (sys.argv[5] if len(sys.argv) > 5 else "").split(",") if m]
allowed = {u.lower() for u in allowed.split(",") if u}
log_lock = threading.Lock()


def silent_for(mac):
    return any(mac.startswith(m[:-1]) if m.endswith("*") else mac == m for m in never)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        with log_lock, open(log_path, "a") as log:
            log.write(self.path + "\n")
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        mac = query.get("mac", [""])[0]
        uuid = query.get("uuid", [""])[0].lower()
        if silent_for(mac):
            # Hold the connection, say nothing, until the client closes it.
            while self.rfile.read(1):
                pass
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


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


server = Server((address, port), Handler)
print("listening", flush=True)
server.serve_forever()
