#!/usr/bin/env bash
# Benchmarks wscgi side by side with Pushpin (WebSocket-over-HTTP mode) and websocketd.
#
#   bash examples/bench/compare.sh            default sizes: about 4.5 minutes on 2 cores, plus the build
#   bash examples/bench/compare.sh --quick    tiny sizes, about a minute: proves the tools work
#   bash examples/bench/compare.sh --quick --servers "wscgi wscgi-tls" --no-install   CI smoke test
#
# Owns: installing the peers from Debian packages (pushpin, websocketd, wrk), building
# wscgi and the bench examples, starting every server on 127.0.0.1 with its own config
# in a temporary directory, running the same bench-load scenarios against each (a fresh
# server process per scenario), measuring the backend's own ceiling with wrk, and
# printing one table (examples/bench/report.py) with the ratios wscgi/peer and
# wscgi/ceiling. Everything it starts it stops again, by pid (each server's whole
# process tree), also on Ctrl-C or error. Results land in target/bench/<time>/.
#
# Servers (each in front of the same backend, examples/bench/fast_backend.rs):
#   wscgi            --backend http://127.0.0.1:FB/, push API for fanout (default build)
#   wscgi-tls        the same built with --features tls and given --tls-cert/--tls-key (a
#                    self-signed EC P-256 certificate from openssl): wss://, for the idle and
#                    connect scenarios (bench-load built with --features tls too; its TLS
#                    client resumes no session, so every handshake is a full one)
#   pushpin          route `* 127.0.0.1:FB,over_http` (WebSocket-over-HTTP), default
#                    handler rate limits (message_rate=2500/s, message_hwm=25000)
#   pushpin-raised   the same with the rate limit off (message_rate=-1: with any positive
#                    rate, Pushpin's limiter paces deliveries in 25 ms batches, measured as
#                    >= 25 ms to the first delivery) and message_hwm=1,000,000
#                    (only the fanout scenario depends on them, so only it runs)
#   websocketd       `websocketd cat`: one process per connection, no pub/sub (no fanout)
#   nginx-hop        reference for the echo scenario: wrk -> nginx (1 worker, keep-alive
#                    upstream, access log off) -> the same backend, same concurrency and body
#                    size; requests/s and nginx's CPU per request (whole process tree, user +
#                    system, as bench-load measures wscgi's)
#   shape-floor      reference for the echo scenario: examples/bench/shape_floor.rs, the
#                    design card's shape and nothing else (a mio reactor, a queue to blocking
#                    worker threads, one HTTP request per message over a kept connection, the
#                    reply back through a waker), against the same backend: what the shape
#                    itself costs, so that wscgi/shape-floor is what wscgi's own code adds
#   write-ceiling    reference for the fanout scenarios: examples/bench/write_ceiling.rs holds
#   write-ceiling1   the same subscribers and on each publish writes one pre-framed message
#                    to every socket in a tight loop, from one thread per core (write-ceiling)
#                    or one thread (write-ceiling1): the physical limit of a fan-out here
#   wscgi-cluster    scenario `cluster` only: three wscgi instances (built with --features
#                    redis) joined through one redis-server (`--redis`), the subscribers split
#                    evenly over them, publishes on the first; compared with one plain wscgi
#                    holding all the subscribers (needs redis-server, else skipped)
#
# Options:
#   --quick                  tiny sizes (CI smoke test)
#   --repeat N               run every scenario N times, report medians (default 1)
#   --scenarios "LIST"       subset of: idle echo echo1 fanout connect cluster deflate (default all)
#   --servers "LIST"         subset of: wscgi wscgi-tls pushpin pushpin-raised websocketd
#                            nginx-hop shape-floor write-ceiling write-ceiling1
#   --pushpin-backend KIND   rust (default, bench-fast-backend) or python
#                            (examples/bench/pushpin_backend.py)
#   --no-install             do not apt-get install missing peers (they are skipped)
#   --out DIR                where results go (default target/bench/YYYYmmdd-HHMMSS)
#   --keep                   keep the temporary directory (configs, server logs)
#   --baseline BIN           also run an earlier wscgi binary (server wscgi-before) in the
#                            idle, echo, fanout and connect scenarios, beside this one, so that
#                            a change is measured before and after in one run (the two take
#                            turns going first, round by round)
#
# The deflate scenario is wscgi alone, with and without permessage-deflate (the load generator
# offers it like a browser, `--deflate`): chat-like JSON of about 200 B and a 16 KB JSON
# document, echo and fan-out to 1,000, bytes on the wire and server CPU per message; and the
# idle scenario again with deflate negotiated on every connection (memory per connection).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
BENCH=$ROOT/examples/bench

QUICK=0
REPEAT=1
INSTALL=1
KEEP=0
OUT=""
PUSHPIN_BACKEND=rust
BASELINE=""
SCENARIOS="idle echo echo1 fanout connect cluster deflate"
SERVERS="wscgi wscgi-tls pushpin pushpin-raised websocketd nginx-hop shape-floor write-ceiling write-ceiling1"

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --repeat) REPEAT=$2; shift ;;
        --scenarios) SCENARIOS=$2; shift ;;
        --servers) SERVERS=$2; shift ;;
        --pushpin-backend) PUSHPIN_BACKEND=$2; shift ;;
        --no-install) INSTALL=0 ;;
        --out) OUT=$2; shift ;;
        --keep) KEEP=1 ;;
        --baseline) BASELINE=$(realpath "$2"); SERVERS="$SERVERS wscgi-before"; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$PUSHPIN_BACKEND" in rust|python) ;; *) echo "--pushpin-backend is rust or python" >&2; exit 2 ;; esac

SIZE=64
if [ "$QUICK" = 1 ]; then
    IDLE_N=200; IDLE_HOLD=1
    ECHO_C=4; ECHO_M=100; ECHO_DUR=5; ECHO1_DUR=1
    FANOUT_NS="50"; FANOUT_K=3; FANOUT_DUR=10
    CONNECT_C=4; CONNECT_DUR=1
    CLUSTER_N=20
    WRK_DUR=1
    DFL_SIZES="200 16384"; DFL_ECHO_C=4; DFL_ECHO_M=50; DFL_FAN_N=50; DFL_FAN_K=3
else
    IDLE_N=10000; IDLE_HOLD=5
    ECHO_C=50; ECHO_M=2000; ECHO_DUR=10; ECHO1_DUR=3
    FANOUT_NS="1000 10000"; FANOUT_K=20; FANOUT_DUR=20
    CONNECT_C=50; CONNECT_DUR=5
    CLUSTER_N=1000
    WRK_DUR=5
    DFL_SIZES="200 16384"; DFL_ECHO_C=20; DFL_ECHO_M=500; DFL_FAN_N=1000; DFL_FAN_K=20
fi

step() { echo "[$(date -u '+%H:%M:%S')] == $*"; }

# --- peers from Debian packages ---

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for pkg in pushpin websocketd wrk nginx; do
    installed "$pkg" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ] && [ "$INSTALL" = 1 ]; then
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    step "apt-get install ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # Debian's pushpin package enables a system service (port 7999/5561); this script
    # never uses those ports, so a running one does not interfere.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
have() { command -v "$1" >/dev/null 2>&1; }
wanted() { case " $SERVERS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
if ! have pushpin || ! have zurl || ! have condure; then
    echo "pushpin (with zurl, condure) not installed: skipping Pushpin" >&2
    SERVERS=$(echo " $SERVERS " | sed 's/ pushpin-raised / /; s/ pushpin / /')
fi
if ! have websocketd; then
    echo "websocketd not installed: skipping it" >&2
    SERVERS=$(echo " $SERVERS " | sed 's/ websocketd / /')
fi
HAVE_WRK=1
have wrk || { echo "wrk not installed: no backend ceiling" >&2; HAVE_WRK=0; }
if wanted nginx-hop && { ! have nginx || [ "$HAVE_WRK" = 0 ]; }; then
    echo "nginx or wrk not installed: skipping nginx-hop" >&2
    SERVERS=$(echo " $SERVERS " | sed 's/ nginx-hop / /')
fi
if wanted wscgi-tls && ! have openssl; then
    echo "openssl not installed: skipping wscgi-tls" >&2
    SERVERS=$(echo " $SERVERS " | sed 's/ wscgi-tls / /')
fi

HAVE_REDIS=1
case " $SCENARIOS " in *" cluster "*)
    have redis-server || { echo "redis-server not installed: skipping the cluster scenario" >&2; HAVE_REDIS=0; } ;;
esac

# --- build ---

# The default build of wscgi is what the ws:// rows and the binary size are about; it is kept
# aside before the builds with --features tls (wscgi-tls, and a bench-load that speaks wss://
# too) and --features redis (the cluster scenario's instances) replace target/release/wscgi.
BIN=$ROOT/target/bench-bin
mkdir -p "$BIN"
step "cargo build --release (wscgi, bench-load, bench-fast-backend)"
cargo build --release --quiet --bin wscgi --example bench-load --example bench-fast-backend \
    --example bench-write-ceiling --example bench-shape-floor
cp "$ROOT/target/release/wscgi" "$BIN/wscgi"
cp "$ROOT/target/release/examples/bench-load" "$BIN/bench-load"
if wanted wscgi-tls; then
    step "cargo build --release --features tls (wscgi-tls, bench-load with wss://)"
    cargo build --release --quiet --features tls --bin wscgi --example bench-load
    cp "$ROOT/target/release/wscgi" "$BIN/wscgi-tls"
    cp "$ROOT/target/release/examples/bench-load" "$BIN/bench-load"
fi
WSCGI_REDIS=$BIN/wscgi-redis
if [ "$HAVE_REDIS" = 1 ] && [[ " $SCENARIOS " == *" cluster "* ]]; then
    step "cargo build --release --features redis (wscgi for the cluster scenario)"
    cargo build --release --quiet --features redis --bin wscgi
    cp "$ROOT/target/release/wscgi" "$WSCGI_REDIS"
fi
WSCGI=$BIN/wscgi
WSCGI_TLS=$BIN/wscgi-tls
LOAD=$BIN/bench-load
FAST=$ROOT/target/release/examples/bench-fast-backend
CEILING=$ROOT/target/release/examples/bench-write-ceiling
FLOOR=$ROOT/target/release/examples/bench-shape-floor

# The generator and the servers hold up to 10,000 sockets each.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

TMP=$(mktemp -d "${TMPDIR:-/tmp}/wscgi-bench.XXXXXX")
[ -n "$OUT" ] || OUT=$ROOT/target/bench/$(date -u '+%Y%m%d-%H%M%S')
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: > "$RESULTS"
if wanted wscgi-tls; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=localhost -keyout "$TMP/tls.key" -out "$TMP/tls.crt" 2>/dev/null
fi

# --- processes: started with setsid, stopped by pid with their whole tree ---

STARTED=()
LAST_PID=""

start_bg() { # LOG CMD...: starts CMD in its own session; sets LAST_PID
    local log=$1; shift
    setsid "$@" >"$log" 2>&1 </dev/null &
    LAST_PID=$!
    STARTED+=("$LAST_PID")
}

tree_of() { # PID: the pid and all its descendants
    ps -e -o pid=,ppid= | awk -v root="$1" '
        { parent[$1] = $2; pids[NR] = $1 }
        END {
            keep[root] = 1; changed = 1
            while (changed) {
                changed = 0
                for (i in pids) { p = pids[i]
                    if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 } }
            }
            for (p in keep) print p
        }'
}

stop_tree() { # PID: SIGTERM to the root (a runner stops its own children), then to what
    # is left of its tree, SIGKILL after 5 s in all
    local root=$1 pids alive i p
    pids=$(tree_of "$root")
    [ -n "$pids" ] || return 0
    kill -TERM "$root" 2>/dev/null || true
    for i in $(seq 50); do
        alive=""
        for p in $pids; do
            if kill -0 "$p" 2>/dev/null; then alive="$alive $p"; fi
        done
        [ -n "$alive" ] || break
        # After 2 s, the rest of the tree gets its own SIGTERM (once).
        # shellcheck disable=SC2086
        if [ "$i" = 20 ]; then kill -TERM $alive 2>/dev/null || true; fi
        sleep 0.1
    done
    if [ -n "$alive" ]; then
        # shellcheck disable=SC2086
        kill -KILL $alive 2>/dev/null || true
    fi
    wait "$root" 2>/dev/null || true
}

cleanup() {
    local pid
    for pid in "${STARTED[@]}"; do
        stop_tree "$pid"
    done
    STARTED=()
    if [ "$KEEP" = 1 ]; then
        echo "kept $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget() { # PID: drop from STARTED after stopping it
    local keep=() p
    for p in "${STARTED[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    STARTED=("${keep[@]}")
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() { # PORT PID SECONDS
    local i
    for i in $(seq $(( $3 * 10 ))); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# --- backends ---

step "starting bench-fast-backend"
FB_PORT=$(free_port)
start_bg "$TMP/fast-backend.log" "$FAST" "127.0.0.1:$FB_PORT"
FB_PID=$LAST_PID
wait_port "$FB_PORT" "$FB_PID" 10 || { echo "bench-fast-backend did not start" >&2; cat "$TMP/fast-backend.log" >&2; exit 1; }

PP_BACKEND_PORT=$FB_PORT
PP_BACKEND_PID=$FB_PID
if [ "$PUSHPIN_BACKEND" = python ] && wanted pushpin; then
    PY_PORT=$(free_port)
    start_bg "$TMP/pushpin-backend.log" python3 "$BENCH/pushpin_backend.py" "127.0.0.1:$PY_PORT"
    PP_BACKEND_PID=$LAST_PID
    PP_BACKEND_PORT=$PY_PORT
    wait_port "$PY_PORT" "$PP_BACKEND_PID" 10 || { echo "pushpin_backend.py did not start" >&2; exit 1; }
fi

# --- servers ---

SRV_PID=""; WS_URL=""; PUSH_URL=""; PUSH_FORMAT=raw; BACKEND_PID=""
N_STARTS=0

start_server() { # NAME
    local name=$1 port push dir
    N_STARTS=$((N_STARTS + 1))
    port=$(free_port)
    WS_URL="ws://127.0.0.1:$port/bench"
    case "$name" in
        wscgi|wscgi-before)
            push=$(free_port)
            local bin=$WSCGI
            [ "$name" = wscgi ] || bin=$BASELINE
            start_bg "$TMP/wscgi-$N_STARTS.log" "$bin" --backend "http://127.0.0.1:$FB_PORT/" \
                --listen "127.0.0.1:$port" --push-listen "127.0.0.1:$push" --log-level warn
            SRV_PID=$LAST_PID; BACKEND_PID=$FB_PID
            PUSH_URL="http://127.0.0.1:$push/channels/bench"; PUSH_FORMAT=raw
            ;;
        wscgi-tls)
            push=$(free_port)
            start_bg "$TMP/wscgi-$N_STARTS.log" "$WSCGI_TLS" --backend "http://127.0.0.1:$FB_PORT/" \
                --listen "127.0.0.1:$port" --push-listen "127.0.0.1:$push" --log-level warn \
                --tls-cert "$TMP/tls.crt" --tls-key "$TMP/tls.key"
            SRV_PID=$LAST_PID; BACKEND_PID=$FB_PID
            PUSH_URL="http://127.0.0.1:$push/channels/bench"; PUSH_FORMAT=raw
            WS_URL="wss://127.0.0.1:$port/bench"
            ;;
        pushpin|pushpin-raised)
            push=$(free_port)
            dir=$TMP/pushpin-$N_STARTS
            mkdir -p "$dir/run" "$dir/log"
            # Debian's pushpin expects zurl as a system service under /var/run/zurl: run our
            # own, with the loopback allowed, and point pushpin's internal specs at it.
            sed "s#ipc:///var/run/zurl/#ipc://$dir/run/zurl-#g" /usr/lib/pushpin/internal.conf \
                > "$dir/internal.conf"
            cat > "$dir/zurl.conf" <<EOF
[General]
instance_id=bench-zurl-$N_STARTS
in_spec=ipc://$dir/run/zurl-zurl-in
in_stream_spec=ipc://$dir/run/zurl-zurl-in-stream
out_spec=ipc://$dir/run/zurl-zurl-out
defpolicy=allow
allow=
deny=
max_open_requests=20000
buffer_size=200000
timeout=600
in_hwm=1000
out_hwm=1000
EOF
            local rate=2500 hwm=25000
            if [ "$name" = pushpin-raised ]; then rate=-1; hwm=1000000; fi
            sed -e "s#^include=.*#include=$dir/internal.conf#" \
                -e "s#^rundir=.*#rundir=$dir/run#" \
                -e "s#^logdir=.*#logdir=$dir/log#" \
                -e "s#^http_port=.*#http_port=127.0.0.1:$port#" \
                -e "s#^log_level=.*#log_level=1#" \
                -e "s#^push_in_spec=.*#push_in_spec=ipc://{rundir}/{ipc_prefix}push-in#" \
                -e "s#^push_in_sub_specs=.*#push_in_sub_specs=ipc://{rundir}/{ipc_prefix}push-in-sub#" \
                -e "s#^push_in_http_addr=.*#push_in_http_addr=127.0.0.1#" \
                -e "s#^push_in_http_port=.*#push_in_http_port=$push#" \
                -e "s#^command_spec=tcp.*#command_spec=ipc://{rundir}/{ipc_prefix}command#" \
                -e "s#^routesfile=.*#routesfile=$dir/routes#" \
                -e "s#^message_rate=.*#message_rate=$rate#" \
                -e "s#^message_hwm=.*#message_hwm=$hwm#" \
                /etc/pushpin/pushpin.conf > "$dir/pushpin.conf"
            echo "* 127.0.0.1:$PP_BACKEND_PORT,over_http" > "$dir/routes"
            # One session: zurl, then pushpin (its runner starts condure, proxy, handler).
            start_bg "$dir/log/out.log" bash -c \
                'cd "$1" && zurl --config="$1/zurl.conf" & cd "$1" && exec pushpin --config "$1/pushpin.conf" --merge-output' \
                _ "$dir"
            SRV_PID=$LAST_PID; BACKEND_PID=$PP_BACKEND_PID
            PUSH_URL="http://127.0.0.1:$push/publish/"; PUSH_FORMAT=pushpin
            wait_port "$push" "$SRV_PID" 20 || { echo "$name: push API did not start" >&2; return 1; }
            ;;
        shape-floor)
            start_bg "$TMP/shape-floor-$N_STARTS.log" "$FLOOR" --listen "127.0.0.1:$port" \
                --backend "127.0.0.1:$FB_PORT"
            SRV_PID=$LAST_PID; BACKEND_PID=$FB_PID
            PUSH_URL=""; PUSH_FORMAT=raw
            ;;
        write-ceiling|write-ceiling1)
            push=$(free_port)
            local threads=0
            [ "$name" = write-ceiling ] || threads=1
            start_bg "$TMP/$name-$N_STARTS.log" "$CEILING" --listen "127.0.0.1:$port" \
                --push-listen "127.0.0.1:$push" --threads "$threads"
            SRV_PID=$LAST_PID; BACKEND_PID=""
            PUSH_URL="http://127.0.0.1:$push/channels/bench"; PUSH_FORMAT=raw
            ;;
        websocketd)
            start_bg "$TMP/websocketd-$N_STARTS.log" websocketd --address 127.0.0.1 --port "$port" \
                --loglevel error cat
            SRV_PID=$LAST_PID; BACKEND_PID=""
            PUSH_URL=""; PUSH_FORMAT=raw
            ;;
    esac
    if ! wait_port "$port" "$SRV_PID" 20; then
        echo "$name did not start" >&2
        return 1
    fi
    sleep 0.3
}

# Three instances of wscgi-redis on one redis-server; SRV_PID lists all four processes.
start_cluster() {
    local redis_port ports=() push0="" urls="" pids="" i port push
    N_STARTS=$((N_STARTS + 1))
    redis_port=$(free_port)
    start_bg "$TMP/redis-$N_STARTS.log" redis-server --bind 127.0.0.1 --port "$redis_port" \
        --save "" --appendonly no --dir "$TMP"
    pids=$LAST_PID
    wait_port "$redis_port" "$LAST_PID" 10 || { echo "redis-server did not start" >&2; return 1; }
    for i in 1 2 3; do
        port=$(free_port); push=$(free_port)
        start_bg "$TMP/wscgi-cluster-$N_STARTS-$i.log" "$WSCGI_REDIS" \
            --backend "http://127.0.0.1:$FB_PORT/" --listen "127.0.0.1:$port" \
            --push-listen "127.0.0.1:$push" --log-level warn --redis "redis://127.0.0.1:$redis_port/"
        pids="$pids,$LAST_PID"
        wait_port "$port" "$LAST_PID" 20 || { echo "cluster instance $i did not start" >&2; return 1; }
        wait_port "$push" "$LAST_PID" 20 || return 1
        # Joined once /metrics says the Redis link is up.
        python3 - "$push" <<'PY' || { echo "cluster instance $i did not join" >&2; return 1; }
import sys, time, urllib.request
for _ in range(100):
    text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics").read().decode()
    if "\nwscgi_redis_up 1\n" in text:
        sys.exit(0)
    time.sleep(0.1)
sys.exit(1)
PY
        [ -n "$push0" ] || push0=$push
        urls="$urls${urls:+,}ws://127.0.0.1:$port/bench"
    done
    SRV_PID=$pids; BACKEND_PID=$FB_PID
    WS_URL=$urls
    PUSH_URL="http://127.0.0.1:$push0/channels/bench"; PUSH_FORMAT=raw
}

stop_server() {
    local pid
    for pid in ${SRV_PID//,/ }; do
        stop_tree "$pid"
        forget "$pid"
    done
    # Let the loopback settle (sockets in TIME_WAIT, reaped children) before the next run.
    sleep 1
}

record() { # KEY SERVER JSON
    if [ -n "$3" ] && [ "${3:0:1}" = "{" ]; then
        echo "{\"key\":\"$1\",\"server\":\"$2\",${3#\{}" >> "$RESULTS"
    else
        echo "{\"key\":\"$1\",\"server\":\"$2\",\"ok\":false,\"error\":\"no result\"}" >> "$RESULTS"
    fi
}

run_load() { # KEY SERVER TIMEOUT SCENARIO ARGS...
    local key=$1 server=$2 t=$3 scenario=$4 out json
    shift 4
    # Placeholders for what only the started server knows.
    local args=() a
    for a in "$@"; do
        case "$a" in
            @PUSH_URL@) args+=("$PUSH_URL") ;;
            @PUSH_FORMAT@) args+=("$PUSH_FORMAT") ;;
            *) args+=("$a") ;;
        esac
    done
    local pids=(--pid "$SRV_PID")
    [ -z "$BACKEND_PID" ] || pids+=(--backend-pid "$BACKEND_PID")
    out=$(timeout -k 5 $((t + 20)) "$LOAD" "$scenario" --url "$WS_URL" --label "$server" \
        --timeout "$t" "${pids[@]}" "${args[@]}" 2>>"$TMP/load-stderr.log") || true
    json=$(printf '%s\n' "$out" | sed -n 1p)
    printf '   %s\n' "$(printf '%s\n' "$out" | sed -n 2p)"
    record "$key" "$server" "$json"
}

scenario_on() { # KEY SERVER TIMEOUT SCENARIO ARGS...: fresh server, one run, stop
    local server=$2 started=start_server
    [ "$server" != wscgi-cluster ] || started=start_cluster
    if ! $started "$server"; then
        record "$1" "$server" ""
        stop_server
        return 0
    fi
    run_load "$@"
    stop_server
}

ceiling() { # KEY CONNECTIONS
    [ "$HAVE_WRK" = 1 ] || return 0
    local out json
    out=$(BENCH_SIZE=$SIZE BENCH_LABEL="$1" timeout -k 5 $((WRK_DUR + 30)) \
        wrk -t1 -c"$2" -d"${WRK_DUR}s" -s "$BENCH/ceiling.lua" "http://127.0.0.1:$FB_PORT/" 2>&1) || true
    json=$(printf '%s\n' "$out" | grep '^{' | head -1)
    printf '   %s\n' "$(printf '%s\n' "$out" | grep '^ceiling' | head -1)"
    record "$1" ceiling "$json"
}

cpu_ticks() { # PID: clock ticks of CPU (user + system) used so far by the pid and its tree
    local total=0 p
    for p in $(tree_of "$1"); do
        # Fields 14 and 15 of /proc/PID/stat, counted after the command name's closing paren.
        total=$((total + $(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}' || echo 0)))
    done
    echo "$total"
}

nginx_hop() { # KEY CONNECTIONS: wrk -> nginx -> the backend; requests/s, nginx CPU per request
    wanted nginx-hop || return 0
    local dir=$TMP/nginx-hop-$1 port out json before after pid user=""
    mkdir -p "$dir/tmp"
    port=$(free_port)
    [ "$(id -u)" -ne 0 ] || user="user root;"
    cat > "$dir/nginx.conf" <<EOF
$user
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body; proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi; uwsgi_temp_path $dir/tmp/uwsgi; scgi_temp_path $dir/tmp/scgi;
    upstream backend { server 127.0.0.1:$FB_PORT; keepalive 64; }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    start_bg "$dir/out.log" nginx -p "$dir" -c "$dir/nginx.conf"
    pid=$LAST_PID
    if ! wait_port "$port" "$pid" 10; then
        echo "nginx did not start" >&2; cat "$dir/error.log" >&2 || true
        record "$1" nginx-hop ""
        stop_tree "$pid"; forget "$pid"
        return 0
    fi
    # A short warm-up fills nginx's upstream keep-alive pool, as bench-load's warm-up does.
    wrk -t1 -c"$2" -d1s -s "$BENCH/ceiling.lua" "http://127.0.0.1:$port/" >/dev/null 2>&1 || true
    before=$(cpu_ticks "$pid")
    out=$(BENCH_SIZE=$SIZE BENCH_LABEL="$1" timeout -k 5 $((WRK_DUR + 30)) \
        wrk -t1 -c"$2" -d"${WRK_DUR}s" -s "$BENCH/ceiling.lua" "http://127.0.0.1:$port/" 2>&1) || true
    after=$(cpu_ticks "$pid")
    json=$(printf '%s\n' "$out" | grep '^{' | head -1)
    if [ -n "$json" ]; then
        json=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); t=int(sys.argv[2]); hz=int(sys.argv[3])
r["scenario"]="nginx-hop"; r["server_cpu_s"]=round(t/hz,3)
r["server_cpu_us_per_request"]=round(t/hz*1e6/max(r["requests"],1),2); print(json.dumps(r))' \
            "$json" $((after - before)) "$(getconf CLK_TCK)")
        printf '   nginx-hop: %s\n' "$(python3 -c 'import json,sys; r=json.loads(sys.argv[1])
print("%.0f requests/s, nginx CPU %.1f µs per request" % (r["requests_per_s"], r["server_cpu_us_per_request"]))' "$json")"
    fi
    record "$1" nginx-hop "$json"
    stop_tree "$pid"; forget "$pid"
    sleep 1
}

has_scenario() { case " $SCENARIOS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# wscgi and --baseline's build take turns going first, round by round: whichever runs first after
# another server's run meets a different machine (sockets in TIME_WAIT, caches), and a fixed
# order would bias their ratio.
pair() { if [ $((rep % 2)) = 1 ]; then echo "wscgi wscgi-before"; else echo "wscgi-before wscgi"; fi; }

# --- the runs ---

START=$SECONDS
for rep in $(seq "$REPEAT"); do
    if has_scenario idle; then
        step "[$rep/$REPEAT] idle: $IDLE_N connections held ${IDLE_HOLD}s"
        for s in $(pair) wscgi-tls pushpin websocketd; do
            wanted "$s" || continue
            scenario_on idle "$s" $((IDLE_N / 1000 + 60)) idle -n "$IDLE_N" --hold "$IDLE_HOLD"
        done
    fi
    if has_scenario echo; then
        step "[$rep/$REPEAT] echo: C=$ECHO_C, $ECHO_M messages of $SIZE B each (≤ ${ECHO_DUR}s)"
        ceiling ceiling "$ECHO_C"
        nginx_hop echo "$ECHO_C"
        for s in $(pair) shape-floor pushpin websocketd; do
            wanted "$s" || continue
            scenario_on echo "$s" $((ECHO_DUR + 60)) echo -c "$ECHO_C" -m "$ECHO_M" -b "$SIZE" \
                --duration "$ECHO_DUR"
        done
    fi
    if has_scenario echo1; then
        step "[$rep/$REPEAT] echo C=1: latency added per message (${ECHO1_DUR}s)"
        ceiling ceiling1 1
        for s in wscgi pushpin websocketd; do
            wanted "$s" || continue
            scenario_on echo1 "$s" $((ECHO1_DUR + 60)) echo -c 1 -m 1000000 -b "$SIZE" \
                --duration "$ECHO1_DUR"
        done
    fi
    if has_scenario fanout; then
        for n in $FANOUT_NS; do
            step "[$rep/$REPEAT] fanout: $n subscribers, $FANOUT_K publishes of $SIZE B (≤ ${FANOUT_DUR}s)"
            for s in $(pair) pushpin pushpin-raised write-ceiling write-ceiling1; do
                wanted "$s" || continue
                scenario_on "fanout$n" "$s" $((n / 500 + FANOUT_DUR + 90)) fanout -n "$n" \
                    -k "$FANOUT_K" -b "$SIZE" --duration "$FANOUT_DUR" \
                    --push @PUSH_URL@ --push-format @PUSH_FORMAT@
            done
        done
    fi
    if has_scenario deflate && wanted wscgi; then
        step "[$rep/$REPEAT] deflate: idle $IDLE_N with permessage-deflate negotiated on all"
        scenario_on idle-deflate wscgi $((IDLE_N / 1000 + 60)) idle -n "$IDLE_N" \
            --hold "$IDLE_HOLD" --deflate
        for b in $DFL_SIZES; do
            for mode in off on; do
                flag=(); [ "$mode" = on ] && flag=(--deflate)
                step "[$rep/$REPEAT] deflate $mode: echo C=$DFL_ECHO_C, JSON of $b B; fan-out to $DFL_FAN_N"
                scenario_on "dfl-echo$b-$mode" wscgi $((ECHO_DUR + 60)) echo -c "$DFL_ECHO_C" \
                    -m "$DFL_ECHO_M" -b "$b" --json --duration "$ECHO_DUR" "${flag[@]}"
                scenario_on "dfl-fan$b-$mode" wscgi $((FANOUT_DUR + 90)) fanout -n "$DFL_FAN_N" \
                    -k "$DFL_FAN_K" -b "$b" --json --duration "$FANOUT_DUR" \
                    --push @PUSH_URL@ --push-format @PUSH_FORMAT@ "${flag[@]}"
            done
        done
    fi
    if has_scenario cluster && [ "$HAVE_REDIS" = 1 ]; then
        n=$((3 * CLUSTER_N))
        step "[$rep/$REPEAT] cluster: $n subscribers on one instance, then 3 × $CLUSTER_N on three instances through Redis"
        for s in wscgi wscgi-cluster; do
            scenario_on "cluster$n" "$s" $((n / 500 + FANOUT_DUR + 90)) fanout -n "$n" \
                -k "$FANOUT_K" -b "$SIZE" --duration "$FANOUT_DUR" \
                --push @PUSH_URL@ --push-format @PUSH_FORMAT@
        done
    fi
    if has_scenario connect; then
        step "[$rep/$REPEAT] connect: C=$CONNECT_C for ${CONNECT_DUR}s"
        for s in $(pair) wscgi-tls pushpin websocketd; do
            wanted "$s" || continue
            scenario_on connect "$s" $((CONNECT_DUR + 60)) connect -c "$CONNECT_C" \
                --duration "$CONNECT_DUR"
        done
    fi
done

# Stripped size of the release binary (the release profile may strip already).
BIN_BYTES=$(stat -c %s "$WSCGI")
if have strip && strip -o "$TMP/wscgi.stripped" "$WSCGI" 2>/dev/null; then
    BIN_BYTES=$(stat -c %s "$TMP/wscgi.stripped")
fi

step "done in $((SECONDS - START))s; results in $RESULTS"
python3 "$BENCH/report.py" "$RESULTS" --binary-bytes "$BIN_BYTES" | tee "$OUT/table.md"

# Exit non-zero when a wscgi run produced no result, so CI notices a broken tool.
if grep -E '"server":"wscgi(-tls)?"' "$RESULTS" | grep -q '"ok":false'; then
    echo "some wscgi runs failed (see $RESULTS)" >&2
    exit 1
fi
