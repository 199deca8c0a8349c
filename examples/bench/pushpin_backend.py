#!/usr/bin/env python3
"""Echo backend for Pushpin's WebSocket-over-HTTP mode; Python 3 standard library only.

Pushpin (route option `over_http`) turns each WebSocket's activity into POSTs with
`Content-Type: application/websocket-events`; the body is a list of events, each
`TYPE\\r\\n` or `TYPE <hex length>\\r\\n<content>\\r\\n`. The answer, with the same content
type, is a list of events to apply:

- OPEN    -> OPEN, plus the GRIP control message `c:{"type":"subscribe","channel":"bench"}`
             (with `Sec-WebSocket-Extensions: grip; message-prefix=""`, so ordinary
             messages need no `m:` prefix), so `bench-load fanout` finds every client in
             channel `bench`;
- TEXT/BINARY -> the same event back (echo);
- CLOSE   -> CLOSE (acknowledge); anything else (PING, PONG, DISCONNECT) -> nothing.

The same answers as examples/bench/fast_backend.rs gives (compare.sh uses that one by
default so both servers face the same backend; `--pushpin-backend python` uses this).

Usage: pushpin_backend.py [HOST:PORT]   (default 127.0.0.1:9200)
"""

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHANNEL = "bench"
CONTROL = ('c:{"type":"subscribe","channel":"%s"}' % CHANNEL).encode()
MAX_BODY = 16 * 1024 * 1024


def decode_events(body):
    """[(type, content or None)] from an application/websocket-events body."""
    events, at = [], 0
    while at < len(body):
        eol = body.find(b"\r\n", at)
        if eol < 0:
            break
        line = body[at:eol]
        at = eol + 2
        kind, sep, size = line.partition(b" ")
        if sep:
            n = int(size, 16)
            events.append((kind, body[at:at + n]))
            at += n + 2
        else:
            events.append((kind, None))
    return events


def encode_event(kind, content=None):
    if content is None:
        return kind + b"\r\n"
    return kind + b" " + (b"%x" % len(content)) + b"\r\n" + content + b"\r\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    # Head and body leave in two writes; without TCP_NODELAY the second waits for the
    # peer's delayed ACK (40 ms) on every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, *args):  # quiet: one line per request would dominate the cost
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_error(413)
            return
        body = self.rfile.read(length)
        if self.headers.get("Content-Type") != "application/websocket-events":
            # wscgi-style event or a plain request: echo the body (open gets WS-Subscribe).
            self.send_response(200)
            if self.headers.get("WS-Event", "").lower() == "open":
                self.send_header("WS-Subscribe", CHANNEL)
                body = b""
            elif self.headers.get("Content-Type"):
                self.send_header("Content-Type", self.headers["Content-Type"])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        out, opened = [], False
        for kind, content in decode_events(body):
            if kind == b"OPEN":
                opened = True
                out.append(encode_event(b"OPEN"))
                out.append(encode_event(b"TEXT", CONTROL))
            elif kind in (b"TEXT", b"BINARY"):
                out.append(encode_event(kind, content or b""))
            elif kind == b"CLOSE":
                out.append(encode_event(b"CLOSE"))
        reply = b"".join(out)
        self.send_response(200)
        self.send_header("Content-Type", "application/websocket-events")
        if opened:
            self.send_header("Sec-WebSocket-Extensions", 'grip; message-prefix=""')
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


def main():
    addr = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9200"
    host, _, port = addr.rpartition(":")
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 1024
    server = ThreadingHTTPServer((host, int(port)), Handler)
    print("listening on %s:%d" % server.server_address, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
