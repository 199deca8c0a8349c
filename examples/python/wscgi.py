"""wscgi push-API helpers for Python backends: standard library only, Python 3.9+.

wscgi turns each WebSocket event into an HTTP POST to your backend; these
functions let the backend talk to clients at any time through wscgi's push API
(``--push-listen``, default 127.0.0.1:8081).

Configuration (read on every call): the module attributes ``PUSH_URL`` and
``PUSH_TOKEN`` if set, else the environment variables ``WSCGI_PUSH_URL``
(default ``http://127.0.0.1:8081``) and ``WSCGI_PUSH_TOKEN`` (sent as
``Authorization: Bearer ...``; needed when wscgi runs with ``--push-token``).

Every function returns wscgi's JSON answer as a dict with the HTTP status added
as ``"status"``, and raises no exception for 4xx/5xx answers or an unreachable
wscgi: errors are data, e.g. ``{"error": "not found: connection abc",
"status": 404}``, and ``{"status": 0, "error": "..."}`` when wscgi could not be
reached at all. ``msg`` may be str (sent as UTF-8) or bytes.

Usage from a backend handler (wscgi POSTs every event to it)::

    import wscgi

    def handle(headers, body):
        conn = headers["WS-Connection-Id"]
        if headers["WS-Event"] == "open":
            wscgi.subscribe(conn, "lobby")   # or answer `WS-Subscribe: lobby`
            return b"welcome"                # the reply body goes to this client
        if headers["WS-Event"] == "message":
            r = wscgi.publish("lobby", body, exclude=[conn])  # everyone else
            if r["status"] != 200:
                log.warning("publish: %s", r.get("error"))
        return b""

And from anywhere else (a worker, a cron job)::

    wscgi.send(conn, "hello")                  # text
    wscgi.send(conn, png_bytes, binary=True)   # binary
    wscgi.broadcast("maintenance at 5", path_prefix="/chat")
    wscgi.close(conn, 4000, "logged out")
"""

import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["send", "publish", "broadcast", "subscribe", "unsubscribe", "close"]

#: Overrides ``WSCGI_PUSH_URL`` / ``WSCGI_PUSH_TOKEN`` when not None.
PUSH_URL = None
PUSH_TOKEN = None
#: Seconds a push-API call may take.
TIMEOUT = 5

# The push API is a local service: never route it through an http_proxy.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def send(id, msg, binary=False):
    """One message to one connection; ``binary=True`` sends a binary frame."""
    return _request("POST", "/connections/" + _seg(id), body=_bytes(msg), binary=binary)


def publish(channel, msg, exclude=(), binary=False):
    """One message to every member of ``channel`` except the ids in ``exclude``.

    200 with ``"delivered"`` when someone got it, 404 when nobody did.
    """
    if isinstance(exclude, str):
        exclude = [exclude]
    query = {"exclude": ",".join(exclude)} if exclude else None
    return _request(
        "POST", "/channels/" + _seg(channel), query, body=_bytes(msg), binary=binary
    )


def broadcast(msg, path_prefix=None, binary=False):
    """One message to every open connection, or those whose path starts with ``path_prefix``."""
    query = None if path_prefix is None else {"path": path_prefix}
    return _request("POST", "/broadcast", query, body=_bytes(msg), binary=binary)


def subscribe(id, channel):
    return _request("PUT", _membership(id, channel), body=b"")


def unsubscribe(id, channel):
    """404 when the connection is not in the channel."""
    return _request("DELETE", _membership(id, channel))


def close(id, code=1000, reason=""):
    """Closes the connection with a close frame carrying ``code`` and ``reason`` (<= 123 bytes)."""
    query = {"code": str(code)}
    if reason:
        query["reason"] = reason
    return _request("DELETE", "/connections/" + _seg(id), query)


def _seg(value):
    return urllib.parse.quote(str(value), safe="")


def _membership(id, channel):
    return "/channels/%s/connections/%s" % (_seg(channel), _seg(id))


def _bytes(msg):
    return msg.encode("utf-8") if isinstance(msg, str) else bytes(memoryview(msg))


def _config(override, name, default):
    if override is not None:
        return override
    return os.environ.get(name) or default


def _request(method, path, query=None, body=None, binary=False):
    base = _config(PUSH_URL, "WSCGI_PUSH_URL", "http://127.0.0.1:8081")
    if not base.lower().startswith(("http://", "https://")):
        return {"status": 0, "error": "WSCGI_PUSH_URL is not an http:// URL: %r" % base}
    url = base.rstrip("/") + path
    if query:
        url += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
    headers = {"Connection": "close"}
    token = _config(PUSH_TOKEN, "WSCGI_PUSH_TOKEN", None)
    if token:
        headers["Authorization"] = "Bearer " + token
    if body is not None:
        # Explicit: urllib would otherwise label any body as a form.
        headers["Content-Type"] = (
            "application/octet-stream" if binary else "text/plain; charset=utf-8"
        )
    try:
        request = urllib.request.Request(url, data=body, headers=headers, method=method)
        with _opener.open(request, timeout=TIMEOUT) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as e:  # 4xx/5xx: the body is the answer
        status = e.code
        try:
            raw = e.read()
        except (OSError, http.client.HTTPException, AttributeError):
            raw = b""
        finally:
            e.close()
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        return {"status": 0, "error": "%s %s: %s" % (method, url, reason)}
    try:
        answer = json.loads(raw.decode("utf-8"))
    except ValueError:  # includes UnicodeDecodeError
        answer = None
    if not isinstance(answer, dict):
        answer = {"error": "answer is not a JSON object", "body": raw.decode("utf-8", "replace")}
    answer["status"] = status
    return answer
