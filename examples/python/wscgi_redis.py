"""Publish to wscgi clients straight through Redis (wscgi --redis), with redis-py.

When several wscgi instances share a Redis (``--redis URL``), a backend can
reach the members of a channel on every instance with one Redis ``PUBLISH`` on
``{prefix}publish`` (prefix: ``--redis-prefix``, default ``wscgi:``), without an
HTTP call. The message is JSON, format version 1 (README, "Cluster")::

    {"v": 1, "channel": "room", "data": "text message"}
    {"v": 1, "channel": "room", "base64": "AAH/"}         # binary message
    {"v": 1, "path": "/chat", "data": "..."}             # broadcast by path
    ... "exclude": ["connection id", ...]                # optional

Usage::

    import redis, wscgi_redis
    r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    wscgi_redis.publish(r, "room", "hello")              # -> instances that got it
    wscgi_redis.publish(r, "room", png_bytes, binary=True, exclude=[conn_id])
    wscgi_redis.broadcast(r, "maintenance at 5", path="/chat")

From a shell (what tests/cluster_failures.rs runs)::

    WSCGI_REDIS=redis://127.0.0.1:6379/ python3 wscgi_redis.py room "hello"
"""

import base64
import json
import os
import sys

VERSION = 1


def message(msg, binary=False, exclude=(), **audience):
    """The JSON text of one publish: text (str, or UTF-8 bytes) or binary."""
    body = {"v": VERSION, **audience}
    if binary:
        data = msg.encode() if isinstance(msg, str) else msg
        body["base64"] = base64.b64encode(data).decode("ascii")
    else:
        body["data"] = msg.decode("utf-8") if isinstance(msg, bytes) else msg
    if exclude:
        body["exclude"] = list(exclude)
    return json.dumps(body)


def publish(redis, channel, msg, binary=False, exclude=(), prefix="wscgi:"):
    """To the members of ``channel`` on every instance; returns how many instances got it."""
    return redis.publish(prefix + "publish", message(msg, binary, exclude, channel=channel))


def broadcast(redis, msg, path="/", binary=False, exclude=(), prefix="wscgi:"):
    """To every client whose WebSocket path starts with ``path``, on every instance."""
    return redis.publish(prefix + "publish", message(msg, binary, exclude, path=path))


if __name__ == "__main__":
    import redis as redis_py

    r = redis_py.Redis.from_url(os.environ.get("WSCGI_REDIS", "redis://127.0.0.1:6379/"))
    prefix = os.environ.get("WSCGI_REDIS_PREFIX", "wscgi:")
    print(publish(r, sys.argv[1], sys.argv[2], exclude=sys.argv[3:], prefix=prefix))
