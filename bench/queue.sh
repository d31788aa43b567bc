#!/usr/bin/env bash
# queue: 100k messages produced and consumed end to end through a tovuk queue, pushed by the
# platform to a consumer app and pulled by clients, beside the same workload through
# redis-server used as a list queue (LPUSH, then BRPOP), measured in the same run.
#
# One app declares two queues: PUSHED (consumer = itself, POST /consume, batch_size BATCH,
# max_wait 10ms) and PULLED (pulled). The app (Python's ThreadingHTTPServer) notes each
# delivered message's latency. The clients (bench/queue-load.py: standard-library Python,
# PRODUCERS producer and CONSUMERS consumer processes, one keep-alive connection each) run in
# the instance's network namespace (nsenter --net, as root) with the app's own PUSHED_URL,
# PULLED_URL and tokens read from /proc/<pid>/environ; redis-server runs there too, so every
# target is reached over the same loopback. Each message's body carries the time it was sent.
#
#   tovuk push:  producers send batches of BATCH (POST $URL/messages/batch); the platform
#                delivers them to the app, which acks each batch with its 200.
#   tovuk pull:  producers as above; consumers POST $URL/pull (max BATCH, wait_seconds 1)
#                and ack each batch (POST $URL/ack).
#   redis BRPOP: producers LPUSH BATCH values per command; consumers BRPOP one at a time
#                (the list-queue idiom); redis-server with appendonly yes, appendfsync everysec.
#   redis BLMPOP: the same, consumers taking up to BATCH per BLMPOP (redis 7), for reference.
#
# Rate = messages / (first send .. last message received); latency = receipt - send, per
# message (p50, p99). A tovuk send is answered only after its fsync; redis fsyncs once a
# second. Anchor (issue 16): tovuk push and pull >= 0.3x redis BRPOP's rate. This prints
# figures; it never fails because a goal was missed.
#
# Usage: bench/queue.sh                      (builds target/release/tovuk first)
#        TOVUK_BIN=/path/to/tovuk RUNS=3 bench/queue.sh
# Env:   TOVUK_BIN   use this binary instead of running `cargo build --release`
#        RUNS        rounds, each workload once per round, the order alternating (default 1)
#        MESSAGES    per workload (default 100000); BATCH per send and pull (default 100)
#        PRODUCERS   producer processes (default 2); CONSUMERS consumer processes (default 2)
#        BENCH_KEEP  1 keeps the temp dir (server log, client reports)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-1}
MESSAGES=${MESSAGES:-100000}
BATCH=${BATCH:-100}
PRODUCERS=${PRODUCERS:-2}
CONSUMERS=${CONSUMERS:-2}
GOAL=0.30 # tovuk / redis BRPOP, messages/s, at least
APP=benchqueue

bench_positive_ints RUNS MESSAGES BATCH PRODUCERS CONSUMERS
((BATCH <= 100)) || die "BATCH may be at most 100 (a queue's batch limit)"

command -v git >/dev/null || die "git is needed (Debian: apt-get install git)"
command -v python3 >/dev/null || die "python3 is needed for the clients and the app (Debian: apt-get install python3)"
command -v bwrap >/dev/null || die "bubblewrap is needed by the runner (Debian: apt-get install bubblewrap)"
command -v nsenter >/dev/null || die "nsenter is needed to reach the instance's network namespace (Debian: apt-get install util-linux)"
if ! command -v redis-server >/dev/null; then
    if [[ $(id -u) = 0 ]] && command -v apt-get >/dev/null; then
        echo "$BENCH_NAME: installing redis-server (apt-get install redis-server) ..." >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >&2 || die "apt-get install redis-server failed"
    else
        die "needs redis-server; run: sudo apt-get install redis-server"
    fi
fi
LOAD=$ROOT/bench/queue-load.py

bench_binary
bench_tmp REDIS_PID:10
bench_isolate_env
bench_start_server
bench_create_app "$APP" "$TMP/app.json"

# --- the app: consumes PUSHED and says what it got ----------------------------------------
WORK=$TMP/app
git init -q -b main "$WORK"
cat >"$WORK/app.py" <<'PY'
import json, os, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
state = {"latencies": [], "ids": set(), "received": 0, "last_at": 0.0}

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, value):
        data = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        with lock:
            if self.path == "/reset":
                state.update(latencies=[], ids=set(), received=0, last_at=0.0)
            latencies = sorted(state["latencies"])
            pick = lambda f: round(latencies[min(len(latencies) - 1, int(f * len(latencies)))] * 1000, 2) if latencies else None
            self.answer({"received": state["received"], "distinct": len(state["ids"]), "last_at": state["last_at"],
                         "p50_ms": pick(0.5), "p99_ms": pick(0.99)})

    def do_POST(self):
        delivery = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        now = time.time()
        with lock:
            for message in delivery["messages"]:
                state["latencies"].append(now - message["body"]["t"])
                state["ids"].add(message["body"]["i"])
            state["received"] += len(delivery["messages"])
            state["last_at"] = now
        self.answer({})

ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
PY
write_manifest "$WORK" "$APP" "python3 app.py" 30s
sed -i 's/^capabilities = .*/capabilities = ["http", "queues"]/' "$WORK/tovuk.toml"
cat >>"$WORK/tovuk.toml" <<EOF

[[resources]]
kind = "queue"
binding = "PUSHED"
consumer = "$APP"
consumer_path = "/consume"
batch_size = $BATCH
max_wait = "10ms"

[[resources]]
kind = "queue"
binding = "PULLED"
EOF
git -C "$WORK" add -A
git -C "$WORK" commit -q -m "a consumer of its own queue"

echo "deploying app $APP ..." >&2
git -C "$WORK" push -o detach "$PLATFORM_REMOTE" main >"$TMP/push.log" 2>&1 || { cat "$TMP/push.log" >&2; die "the push failed"; }
DEP=$(queued_dep "$TMP/push.log")
[[ -n $DEP ]] || { cat "$TMP/push.log" >&2; die "the push did not report a queued deploy"; }
state=
for _ in $(seq 600); do
    load_deploy "$DEP"
    state=$(deploy_state)
    [[ $state = running || $state = failed || $state = cancelled ]] && break
    sleep 0.1
done
[[ $state = running ]] || { "$BIN" deploy show "$DEP" >&2 || true; die "deploy $DEP is '$state', not running"; }
STATUS=$("$BIN" app status "$APP" --json | tr -d ' \n\t')
SANDBOX_PID=$(grep -o '"instance":{[^}]*}' <<<"$STATUS" | grep -o '"pid":[0-9]*' | cut -d: -f2)
[[ -n $SANDBOX_PID ]] || die "tovuk app status has no instance pid: $STATUS"
NETNS=$(grep -o '"instance":{[^}]*}' <<<"$STATUS" | grep -o '"netns":"[^"]*"' | cut -d'"' -f4) || true
APP_PID=$SANDBOX_PID
while :; do
    child=$(awk '{ print $1 }' "/proc/$APP_PID/task/$APP_PID/children" 2>/dev/null)
    [[ -n $child ]] || break
    APP_PID=$child
done
[[ $(cat "/proc/$APP_PID/comm") = python3 ]] || die "the instance's last process ($APP_PID) is $(cat "/proc/$APP_PID/comm"), not the app's python3"
[[ -r /proc/$APP_PID/environ ]] || die "cannot read /proc/$APP_PID/environ: run as root"
app_env() { # name -> its value in the app's environment
    local value
    value=$(tr '\0' '\n' <"/proc/$APP_PID/environ" | sed -n "s/^$1=//p" | head -1)
    [[ -n $value ]] || die "the app has no $1 in its environment"
    echo "$value"
}
PUSHED_URL=$(app_env PUSHED_URL) PUSHED_TOKEN=$(app_env PUSHED_TOKEN)
PULLED_URL=$(app_env PULLED_URL) PULLED_TOKEN=$(app_env PULLED_TOKEN)
# What the app noted is asked of it directly, on its own port, where the clients run.
APP_PORT=$(app_env PORT)
IN_NS=()
if [[ -n $NETNS ]]; then
    [[ $(id -u) = 0 ]] || die "the instance runs in a network namespace of its own ($NETNS): run as root to enter it"
    IN_NS=(nsenter --net="$NETNS")
    echo "the instance is in network namespace $NETNS: clients and redis-server run inside it" >&2
fi

REDIS_DIR=$TMP/redis
mkdir -p "$REDIS_DIR"
REDIS_PORT=$(free_port "$NETNS")
"${IN_NS[@]}" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$REDIS_DIR" --save '' --appendonly yes \
    --appendfsync everysec --daemonize no --logfile "$REDIS_DIR/redis.log" >/dev/null 2>&1 &
REDIS_PID=$!
for _ in $(seq 100); do
    [[ $("${IN_NS[@]}" redis-cli -p "$REDIS_PORT" ping 2>/dev/null) = PONG ]] && break
    sleep 0.1
done
[[ $("${IN_NS[@]}" redis-cli -p "$REDIS_PORT" ping 2>/dev/null) = PONG ]] || die "redis-server did not come up"

# --- the runs ---------------------------------------------------------------------------
WORKLOADS=(push pull brpop blmpop)
declare -A RATE P50 P99 DUPS
run_workload() { # workload, messages, label
    local report=$TMP/$1-$3.json args
    case $1 in
    push) args=(tovuk-push "$PUSHED_URL" "$PUSHED_TOKEN" "$2" "$BATCH" "$PRODUCERS" "127.0.0.1:$APP_PORT" "$APP") ;;
    pull) args=(tovuk-pull "$PULLED_URL" "$PULLED_TOKEN" "$2" "$BATCH" "$PRODUCERS" "$CONSUMERS") ;;
    brpop | blmpop)
        "${IN_NS[@]}" redis-cli -p "$REDIS_PORT" del queue >/dev/null
        args=("redis-$1" "$REDIS_PORT" "$2" "$BATCH" "$PRODUCERS" "$CONSUMERS")
        ;;
    esac
    "${IN_NS[@]}" python3 "$LOAD" "${args[@]}" >"$report" 2>"$report.err" || true
    [[ -s $report ]] || { cat "$report.err" >&2; tail -20 "$TMP/server.log" >&2; die "the $1 workload failed"; }
    LAST=$(cat "$report")
    field() { grep -o "\"$1\": *[0-9.]*" <<<"$LAST" | grep -o '[0-9.]*$'; }
    RATE[$1]+="$(field rate) "
    P50[$1]+="$(field p50_ms) "
    P99[$1]+="$(field p99_ms) "
    DUPS[$1]=$((${DUPS[$1]:-0} + $(field duplicates)))
}

echo "warm-up: $((MESSAGES / 10)) messages through each workload ..." >&2
for workload in "${WORKLOADS[@]}"; do run_workload "$workload" $((MESSAGES / 10)) warmup; done
unset RATE P50 P99 DUPS
declare -A RATE P50 P99 DUPS
echo "timing $RUNS rounds of $MESSAGES messages ..." >&2
for ((run = 1; run <= RUNS; run++)); do
    order=("${WORKLOADS[@]}")
    ((run % 2)) || order=(blmpop brpop pull push)
    for workload in "${order[@]}"; do
        run_workload "$workload" "$MESSAGES" "$run"
        printf '  run %d/%d: %-7s %s\n' "$run" "$RUNS" "$workload" "$LAST" >&2
    done
done

# --- figures -------------------------------------------------------------------------------
fmedian() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
declare -A M
for workload in "${WORKLOADS[@]}"; do
    # shellcheck disable=SC2086 # space-separated numbers
    M[rate:$workload]=$(fmedian ${RATE[$workload]})
    # shellcheck disable=SC2086
    M[p50:$workload]=$(fmedian ${P50[$workload]})
    # shellcheck disable=SC2086
    M[p99:$workload]=$(fmedian ${P99[$workload]})
done
label_of() {
    case $1 in
    push) echo "tovuk push (platform -> app, batch $BATCH)" ;;
    pull) echo "tovuk pull (pull $BATCH + ack)" ;;
    brpop) echo "redis LPUSH/BRPOP (AOF everysec)" ;;
    blmpop) echo "redis LPUSH/BLMPOP $BATCH (AOF everysec)" ;;
    esac
}
verdict() { # value, base, goal -> met / NOT met (value >= goal x base)
    if awk -v a="$1" -v b="$2" -v g="$3" 'BEGIN { exit !(a >= g * b) }'; then echo met; else echo "NOT met"; fi
}
ratio_of() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }

echo
echo "queue: $MESSAGES messages end to end, sends of $BATCH, $PRODUCERS producers, $CONSUMERS consumers (pull, redis); median of $RUNS runs"
where="clients and redis-server on the host (the instance shares the host's network)"
[[ -z $NETNS ]] || where="clients and redis-server in the instance's network namespace"
VERSION_SUFFIX="; $where" bench_version_line "redis-server $(redis-server --version | grep -o 'v=[0-9.]*' | cut -d= -f2)" \
    "$(python3 --version)"
echo
printf '%-42s %5s %12s %10s %10s %6s\n' "" runs "messages/s" "p50" "p99" dups
for workload in "${WORKLOADS[@]}"; do
    printf '%-42s %5d %12d %10s %10s %6d\n' "$(label_of "$workload")" "$RUNS" "${M[rate:$workload]}" \
        "${M[p50:$workload]} ms" "${M[p99:$workload]} ms" "${DUPS[$workload]}"
done
for workload in push pull; do
    printf '%-42s %5s %12s   goal >= %.2fx: %s\n' "tovuk $workload / redis BRPOP, messages/s" "" \
        "$(ratio_of "${M[rate:$workload]}" "${M[rate:brpop]}")" "$GOAL" \
        "$(verdict "${M[rate:$workload]}" "${M[rate:brpop]}" "$GOAL")"
done
