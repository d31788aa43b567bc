#!/usr/bin/env bash
# bindings: what a service-binding call costs over calling the called app's port directly.
# One keep-alive client makes N sequential GETs, measured per request, two ways in one run:
#   direct:  from inside the called app's own network, to its port (no platform in between);
#   binding: from inside the calling app's network, to http://callee.internal with its token
#            (the platform's forwarder, the router's internal listener, then the app).
# Same client, same app, same machine: the difference is the binding's overhead.
#
# Anchor (issue): <= +100 µs p50 over the direct call.
# This prints figures; it never fails because a goal was missed.
#
# Usage: bench/bindings.sh                  (builds target/release/tovuk first)
#        TOVUK_BIN=/path/to/tovuk REQUESTS=5000 bench/bindings.sh
# Env:   TOVUK_BIN   use this binary instead of running `cargo build --release`
#        REQUESTS    requests per way (default 3000)
#        BENCH_KEEP  1 keeps the temp dir
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REQUESTS=${REQUESTS:-3000}
GOAL_US=100
bench_positive_ints REQUESTS
command -v git >/dev/null || die "git is needed (Debian: apt-get install git)"
command -v python3 >/dev/null || die "python3 is needed (Debian: apt-get install python3)"
command -v nsenter >/dev/null || die "nsenter is needed (Debian: apt-get install util-linux)"

bench_binary
bench_tmp
bench_isolate_env
bench_start_server

APP_SERVER='import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per answer, sent at once: without these Nagle and delayed ACKs add ~40 ms.
    disable_nagle_algorithm = True
    wbufsize = 1 << 16
    def log_message(self, *args):
        pass
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()'

deploy() { # app, [binding service]
    local app=$1 dir=$TMP/$1
    bench_create_app "$app" "$TMP/$app.json"
    git init -q -b main "$dir"
    write_manifest "$dir" "$app" "python3 server.py"
    if [[ -n ${2:-} ]]; then
        sed -i 's/capabilities = \["http"\]/capabilities = ["http", "service-bindings"]/' "$dir/tovuk.toml"
        printf '\n[[bindings]]\nbinding = "API"\nservice = "%s"\n' "$2" >>"$dir/tovuk.toml"
    fi
    printf '%s\n' "$APP_SERVER" >"$dir/server.py"
    git -C "$dir" add -A
    git -C "$dir" commit -q -m "$app"
    git -C "$dir" push "$PLATFORM_REMOTE" main >"$TMP/push-$app.log" 2>&1 || { cat "$TMP/push-$app.log" >&2; die "the push of $app failed"; }
    grep -q "is running" "$TMP/push-$app.log" || { cat "$TMP/push-$app.log" >&2; die "$app did not run"; }
}
deploy callee
deploy caller callee

# The instance's pid, port and network namespace, from tovuk app status.
instance_of() { # app
    local status
    status=$("$BIN" app status "$1" --json)
    PID=$(grep -o '"pid": *[0-9]*' <<<"$status" | head -1 | grep -o '[0-9]*$')
    PORT=$(grep -o '"port": *[0-9]*' <<<"$status" | head -1 | grep -o '[0-9]*$')
    NETNS=$(grep -o '"netns": *"[^"]*"' <<<"$status" | head -1 | sed 's/.*"\(\/proc[^"]*\)"/\1/')
    [[ -n $PID && -n $PORT && $NETNS = /proc/* ]] || die "no instance of $1 in its own network (network isolation off?)"
}
# The caller's token, as its instance has it.
instance_of caller
TOKEN=$(tr '\0' '\n' <"/proc/$PID/environ" 2>/dev/null | grep '^API_TOKEN=' | cut -d= -f2- || true)
if [[ -z $TOKEN ]]; then
    # The sandbox's first process holds the environment when the app's own pid is its child.
    for child in $(cat "/proc/$PID/task/"*/children 2>/dev/null); do
        TOKEN=$(tr '\0' '\n' <"/proc/$child/environ" 2>/dev/null | grep '^API_TOKEN=' | cut -d= -f2- || true)
        [[ -n $TOKEN ]] && break
    done
fi
[[ -n $TOKEN ]] || die "cannot read the caller's API_TOKEN"
CALLER_NETNS=$NETNS
instance_of callee
CALLEE_NETNS=$NETNS CALLEE_PORT=$PORT

cat >"$TMP/client.py" <<'EOF'
import http.client, sys, time
port, host, token, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
headers = {"Host": host}
if token != "-":
    headers["Authorization"] = "Bearer " + token
connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
times = []
for i in range(n + 200):
    start = time.perf_counter_ns()
    connection.request("GET", "/x", headers=headers)
    answer = connection.getresponse()
    answer.read()
    if answer.status != 200:
        sys.exit(f"status {answer.status}")
    if i >= 200:  # the first ones warm up
        times.append((time.perf_counter_ns() - start) // 1000)
times.sort()
print(times[len(times) // 2], times[len(times) * 99 // 100])
EOF

read -r DIRECT_P50 DIRECT_P99 < <(nsenter --net="$CALLEE_NETNS" python3 "$TMP/client.py" "$CALLEE_PORT" localhost - "$REQUESTS")
read -r BOUND_P50 BOUND_P99 < <(nsenter --net="$CALLER_NETNS" python3 "$TMP/client.py" 80 callee.internal "$TOKEN" "$REQUESTS")

echo "bindings: $REQUESTS sequential GETs on one keep-alive connection, each way, in one run"
bench_version_line python3
echo
printf '%-52s %10s %10s\n' "" p50 p99
printf '%-52s %7s µs %7s µs\n' "direct: callee's port, from its own network" "$DIRECT_P50" "$DIRECT_P99"
printf '%-52s %7s µs %7s µs\n' "binding: http://callee.internal, from the caller" "$BOUND_P50" "$BOUND_P99"
overhead=$((BOUND_P50 - DIRECT_P50))
verdict=$([[ $overhead -le $GOAL_US ]] && echo met || echo "NOT met")
echo "binding overhead (p50)                              +${overhead} µs   goal <= +${GOAL_US} µs: $verdict"
