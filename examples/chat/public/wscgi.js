// wscgi.js: a WebSocket to wscgi that survives network blinks (README, "Resume").
//
// One dependency-free ES module. It makes up a secret session key, counts the messages it
// receives, and when the connection drops it reconnects (exponential backoff with jitter,
// capped) with `wscgi-resume=KEY&wscgi-received=N`: wscgi then sends exactly the messages it
// missed, in order, and the backend sees one unbroken connection. When the session cannot be
// resumed (wscgi answers 4409, or the server itself closed it) the helper starts a fresh session
// and calls `onreset`, so the app can reload its state. Messages this side sent that were in
// flight at the drop are not recovered.
//
//   import { connect } from "./wscgi.js";
//   const chat = connect("wss://example.com/chat?name=ann", {
//     onmessage: (data) => show(data),          // string, or ArrayBuffer for binary messages
//     onstatus: (status, info) => badge(status), // connecting | open | reconnecting | closed
//     onreset: () => reload(),                   // a new session: messages may have been missed
//   });
//   chat.send("hello");                          // false when not connected (nothing queued)
//   chat.close();                                // ends the session for good

/// Close code wscgi sends when a resume is impossible (unknown or expired key, count outside
/// what it kept).
export const CANNOT_RESUME = 4409;

/// Browsers report this when the connection ended without a close frame: a network drop.
const ABNORMAL = 1006;

const DEFAULTS = {
  minDelay: 250,        // ms before the first retry
  maxDelay: 10_000,     // backoff cap, ms
  openTimeout: 10_000,  // ms a connection attempt may take before it is abandoned
};

/// A new session key: 128 random bits as URL-safe base64 (22 characters).
export function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/// `url` with the resume parameters for `key` (and `received`, when resuming) added.
export function resumeUrl(url, key, received) {
  const u = new URL(url, typeof location === "undefined" ? undefined : location.href);
  u.searchParams.delete("wscgi-resume");
  u.searchParams.delete("wscgi-received");
  u.searchParams.set("wscgi-resume", key);
  if (received !== undefined) u.searchParams.set("wscgi-received", String(received));
  return u.href;
}

/// The wait before retry number `attempt` (0, 1, ...): doubling from `minDelay` up to
/// `maxDelay`, then a random point in its upper half, so clients dropped together do not all
/// come back in the same instant.
export function backoff(attempt, { minDelay, maxDelay } = DEFAULTS, random = Math.random) {
  const cap = Math.min(maxDelay, minDelay * 2 ** Math.min(attempt, 30));
  return Math.round(cap / 2 + random() * cap / 2);
}

/// Opens a resumable connection to `url` (ws:// or wss://, any query of the app's own).
/// `handlers`: onmessage(data), onstatus(status, info), onreset(),
/// onopen({resumed, extensions}) (`extensions`: what the server accepted, e.g.
/// "permessage-deflate; ...").
/// `options`: minDelay, maxDelay, openTimeout (ms), binaryType ("arraybuffer").
export function connect(url, handlers = {}, options = {}) {
  const opts = { ...DEFAULTS, binaryType: "arraybuffer", ...options };
  const call = (name, ...args) => { if (handlers[name]) handlers[name](...args); };
  const session = {
    status: "connecting",
    /// Messages received in this session, over all its connections.
    received: 0,
    /// When status is "reconnecting": the time (ms since the epoch) of the next attempt.
    retryAt: 0,
    /// The close code that ended the last connection.
    lastCode: 0,
  };
  let key = newKey();
  let resuming = false;   // the next connection continues the session
  let attempt = 0;
  let ws = null;
  let retryTimer = 0;
  let openTimer = 0;
  let stopped = false;

  const setStatus = (status, info = {}) => {
    session.status = status;
    call("onstatus", status, { code: session.lastCode, retryAt: session.retryAt, ...info });
  };

  const fresh = () => {
    key = newKey();
    session.received = 0;
    resuming = false;
  };

  const open = () => {
    clearTimeout(retryTimer);
    if (stopped) return;
    session.retryAt = 0;
    setStatus("connecting");
    const target = resuming ? resumeUrl(url, key, session.received) : resumeUrl(url, key);
    let sock;
    try {
      sock = new WebSocket(target);
    } catch (e) {  // a malformed URL: retrying will not help
      stopped = true;
      setStatus("closed", { error: String(e.message || e) });
      return;
    }
    sock.binaryType = opts.binaryType;
    ws = sock;
    // A connection attempt into a black hole can take minutes to fail by itself.
    openTimer = setTimeout(() => { if (ws === sock) sock.close(); }, opts.openTimeout);
    sock.onopen = () => {
      if (ws !== sock) return;
      clearTimeout(openTimer);
      attempt = 0;
      setStatus("open");
      call("onopen", { resumed: resuming, extensions: sock.extensions });
      resuming = true;
    };
    sock.onmessage = (ev) => {
      if (ws !== sock) return;
      session.received += 1;
      call("onmessage", ev.data);
    };
    sock.onclose = (ev) => {
      if (ws !== sock) return;
      clearTimeout(openTimer);
      ws = null;
      session.lastCode = ev.code;
      if (stopped) return setStatus("closed");
      // Only a drop leaves the session waiting at wscgi; any close frame from the server
      // (4409 included) means it ended there, so the next connection is a new session.
      const dropped = ev.code === ABNORMAL;
      if (!dropped && resuming) {
        fresh();
        call("onreset");
      } else if (!resuming) {
        // It never opened here, but wscgi may have opened it (the 101 came too late, or was
        // lost): that session now waits under this key, and starting another with the same
        // key is refused (409) until it expires. A first connection takes a new key.
        key = newKey();
      }
      if (ev.code === CANNOT_RESUME) return open();  // a fresh start at once
      retry();
    };
  };

  const retry = () => {
    const wait = backoff(attempt, opts);
    attempt += 1;
    session.retryAt = Date.now() + wait;
    setStatus("reconnecting");
    retryTimer = setTimeout(open, wait);
  };

  /// Sends a message now; false when there is no open connection (nothing is queued).
  session.send = (data) => {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(data);
    return true;
  };

  /// Ends the session for good (wscgi sends the backend its close event).
  session.close = (code = 1000, reason = "") => {
    stopped = true;
    clearTimeout(retryTimer);
    if (ws) ws.close(code, reason);
    else setStatus("closed");
  };

  /// Retries at once, e.g. when the app learns the network is back.
  session.reconnect = () => {
    if (stopped || ws) return;
    attempt = 0;
    open();
  };

  /// Starts over with a new session (the app changed who it is, say); no onreset.
  session.restart = () => {
    const old = ws;
    ws = null;
    if (old) old.close(1000, "restart");
    fresh();
    stopped = false;
    attempt = 0;
    open();
  };

  if (typeof addEventListener === "function") {
    addEventListener("online", () => session.reconnect());
  }
  open();
  return session;
}
