#!/usr/bin/python3
# chat.py: a whole chat room as a Python 3 CGI script for wscgi (stdlib only); the same as chat.sh.
#   wscgi --static examples/chat/public --backend cgi:$PWD/examples/chat/chat.py
# Everyone connected to ws://HOST/chat?name=NAME hears everyone, their own lines included.
# The shebang names python3 by path: wscgi runs CGI programs with a clean environment (no PATH),
# so "#!/usr/bin/env python3" would not find it. Adjust it if python3 lives elsewhere.
import os
import re
import sys
from urllib.parse import parse_qs


def name() -> str:
    """Only [A-Za-z0-9_-], at most 20 characters; none: "guest-" + 4 characters of the id."""
    given = parse_qs(os.environ.get("QUERY_STRING", "")).get("name", [""])[-1]
    clean = re.sub(r"[^A-Za-z0-9_-]", "", given)[:20]
    return clean or "guest-" + os.environ.get("HTTP_WS_CONNECTION_ID", "")[:4]


def main() -> None:
    event = os.environ.get("HTTP_WS_EVENT", "")
    who = name()
    head = ["Content-Type: text/plain; charset=utf-8"]
    body = b""
    if event == "open":
        head += ["WS-Subscribe: chat", "WS-Publish: chat"]
        body = f"* {who} joined".encode()
    elif event == "message":
        head.append("WS-Publish: chat")
        length = int(os.environ.get("CONTENT_LENGTH") or 0)
        body = f"{who}: ".encode() + sys.stdin.buffer.read(length)
    elif event == "close":
        head.append("WS-Publish: chat")
        body = f"* {who} left".encode()
    # reset (and anything newer): an empty 200, nothing to do
    out = sys.stdout.buffer
    out.write("".join(h + "\r\n" for h in head).encode() + b"\r\n" + body)
    out.flush()


if __name__ == "__main__":
    main()
