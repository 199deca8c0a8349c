"""kosoku (0.1.0) for the Autobahn compression cases (12.*, 13.*), with one bug of its undone.

kosoku hands a case's onMessage an uncompressed message as str and a compressed one as bytes;
the case code hashes the message, and hashing a str fails ("Strings must be encoded before
hashing") before the message is compared. The message is turned back into the bytes it came as
(text: UTF-8; binary: Latin-1, one char per byte, as kosoku decoded it), then judged by the case
as written. Used by tests/conformance.rs; arguments are kosoku's own.
"""

import sys

import kosoku.cases  # noqa: F401  imports the vendored case modules, case12_x_x among them
from kosoku._cli import main

case12 = sys.modules["case12_x_x"]


def as_bytes(on_message):
    def wrapped(self, msg, binary):
        if isinstance(msg, str):
            msg = msg.encode("latin-1" if binary else "utf-8")
        return on_message(self, msg, binary)

    return wrapped


for case in case12.Case12_X_X + case12.Case13_X_X:
    case.onMessage = as_bytes(case.onMessage)

sys.exit(main())
