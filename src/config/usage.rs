//! The `--help` text, written by hand so that it groups options and fits a terminal.

pub fn usage() -> String {
    "\
wscgi - WebSockets for any HTTP backend, the CGI way
Usage: wscgi --backend BACKEND [OPTIONS]

Holds WebSocket connections and turns each WebSocket event into one request
to the backend: an HTTP POST, a CGI program run, or a FastCGI request.

Listening:
  --listen ADDR            WebSocket address, IP:PORT (default 127.0.0.1:8080)
  --handshake-timeout DUR  time allowed for the upgrade request, the TLS
                           handshake included (default 10s)
  --ping-interval DUR      ping clients this often; 0 or off disables
                           (default 30s)
  --idle-timeout DUR       close clients silent this long (default off)
  --origin LIST            allowed Origin values, comma separated: exact
                           (https://example.com) or *.example.com; others get
                           403 (default: any origin)
  --static DIR             serve plain GET/HEAD requests from DIR, except
                           the routes' CGI programs and FastCGI scripts and
                           any *.php file (404) (default none: 426 Upgrade
                           Required)
  --tls-cert FILE          PEM certificate (the chain may follow it): with
                           --tls-key, the listener speaks TLS only, wss://
                           and https:// for --static (TLS 1.3 and 1.2);
                           SIGHUP loads both files again (default none:
                           plain ws://; needs a build with --features tls)
  --tls-key FILE           PEM private key for --tls-cert (default none)

Backend:
  --backend BACKEND        where events go, for every path (this or --route
                           is required): http://HOST:PORT/PATH (https:// when
                           built with --features tls), cgi:PROGRAM,
                           fastcgi://HOST:PORT/SCRIPT or
                           fastcgi://unix:SOCKET:SCRIPT
  --route PREFIX=BACKEND   BACKEND for WebSocket paths under PREFIX; longest
                           prefix wins, no match is 404; repeatable
  --cgi-env NAME           pass this variable of wscgi's environment to CGI
                           programs (default: a clean environment); repeatable
  --event-format FORMAT    headers: fields in WS-* headers, message as body;
                           form: all in one urlencoded body (default headers)
  --workers N              concurrent backend requests, 1-1024 (default 8)
  --backend-timeout DUR    time allowed per backend request (default 10s)
  --retries N              retries of a failed request, 0-10 (default 2)
  --pass-header LIST       client handshake headers to forward, comma
                           separated; repeatable; replaces the default list,
                           \"none\" forwards none (default cookie,
                           authorization, origin, user-agent, accept-language,
                           x-forwarded-for, x-real-ip, x-forwarded-proto)

Limits:
  --max-connections N      open WebSocket connections (default 10000)
  --max-pending N          events one connection may have waiting for the
                           backend; reading pauses at the limit (default 64)
  --max-message SIZE       largest message accepted from a client
                           (default 1MiB)
  --max-outbuf SIZE        unsent output held per connection, at least 4K
                           (default 1MiB)

Compression (permessage-deflate, RFC 7692; accepted when a client offers it):
  --no-deflate             decline it: every message goes uncompressed
  --deflate-context        keep compression state between messages where the
                           client allows (smaller messages, up to ~350KiB more
                           memory per connection; default: no state between
                           messages, so idle connections cost nothing extra)
  --deflate-min SIZE       send shorter messages uncompressed (default 128B)
  --deflate-level N        1 (fastest) to 9 (smallest) (default 1)

Push API:
  --push-listen ADDR       address of the push API, which lets the backend
                           send to clients (default 127.0.0.1:8081)
  --push-token TOKEN       require \"Authorization: Bearer TOKEN\" on push
                           requests (default none: no check)
  --secret KEY             sign backend requests: WS-Timestamp and
                           WS-Signature (HMAC-SHA1) (default none)

Resume (clients that add wscgi-resume=KEY to their URL):
  --resume-window DUR      keep a dropped client's session this long for it to
                           come back with wscgi-resume=KEY&wscgi-received=N and
                           get what it missed; 0 or off disables (default 30s)
  --resume-buffer SIZE     messages kept per session for a resume; a parked
                           session that needs more ends with 1008
                           (default 256KiB)
  --resume-max-bytes SIZE  all parked sessions' messages together; over it,
                           the oldest parked sessions end first (default 64MiB)

Cluster (wscgi built with --features redis):
  --redis URL              share channels, pushes and presence with every
                           wscgi on this Redis: redis://[user:password@]
                           host:port[/db] or redis+unix:///path/to/socket
                           (default none: this instance alone)
  --redis-prefix PREFIX    starts every Redis key and channel wscgi uses;
                           instances with the same prefix form one cluster
                           (default wscgi:)
  --redis-node-ttl DUR     expiry of this instance's liveness key in Redis,
                           refreshed every third of it (it lists running
                           instances; calls go to whoever is subscribed);
                           also how long a silent Redis connection waits
                           before a ping (default 15s)

Shutdown:
  --shutdown-timeout DUR   on SIGTERM/SIGINT, time to close clients (1001) and
                           deliver their last events (default 10s)

Logging:
  --log-level LEVEL        error, warn, info or debug (default info)
  --log-format FORMAT      text or json, one line per event to stderr
                           (default text)

Other:
  -h, --help               show this help
  -V, --version            show the version

DUR is a number with unit ms, s, m or h; a plain number is seconds: 10, 500ms,
2m (at most 24h). SIZE is bytes with optional B, K/KiB, M/MiB or G/GiB: 65536,
64K, 1MiB (at most 1GiB). Every option can also be set in the environment as
WSCGI_<NAME>, e.g. WSCGI_PUSH_LISTEN for --push-listen; the command line wins.
"
    .to_string()
}
