#!/usr/bin/env bash
# zero-downtime: constant load through the tovuk router while 10 deploys of the same app roll
# one after another, printed beside the same load with no deploys (the control) measured in
# the same run. Every request must succeed: no non-2xx answer, no connection error.
#
# The app is nginx serving a small static file that names its version, run inside the
# sandbox (its `[run] command` writes an nginx config for $PORT). The load is wrk with a Lua
# script that counts answers by status and by version. nginx stops at once on SIGTERM, so
# a request still in flight to an old instance when the runner stops it would show up.
#
# Anchor (issue): 0 non-2xx answers and 0 connection errors during the deploys.
# This prints figures; it never fails because a goal was missed.
#
# Usage: bench/zero-downtime.sh             (builds target/release/tovuk first)
#        TOVUK_BIN=/path/to/tovuk DEPLOYS=20 bench/zero-downtime.sh
# Env:   TOVUK_BIN    use this binary instead of running `cargo build --release`
#        DEPLOYS      deploys rolled under load (default 10)
#        CONTROL      seconds of the same load with no deploys (default 10)
#        CONNECTIONS  wrk connections (default 64); THREADS wrk threads (default 2)
#        BENCH_KEEP   1 keeps the temp dir (server log, wrk reports, push logs)
set -euo pipefail

DEPLOYS=${DEPLOYS:-10}
CONTROL=${CONTROL:-10}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
SETTLE_S=2 # load before the first deploy and after the last one, so every swap is under load
APP=benchzero
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() {
    echo "zero-downtime: $*" >&2
    exit 1
}

for knob in DEPLOYS CONTROL CONNECTIONS THREADS; do
    [[ ${!knob} =~ ^[1-9][0-9]*$ ]] || die "$knob must be a positive integer, not '${!knob}'"
done
command -v git >/dev/null || die "git is needed (Debian: apt-get install git)"
command -v curl >/dev/null || die "curl is needed (Debian: apt-get install curl)"
command -v bwrap >/dev/null || die "bubblewrap is needed by the builder and runner (Debian: apt-get install bubblewrap)"
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[[ -x /usr/sbin/nginx ]] || missing+=(nginx)
if ((${#missing[@]})); then
    # nginx must be under /usr: the app runs it inside the sandbox, which sees only /usr.
    if [[ $(id -u) = 0 ]] && command -v apt-get >/dev/null; then
        echo "zero-downtime: installing ${missing[*]} (apt-get install ${missing[*]}) ..." >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 ||
            die "apt-get install ${missing[*]} failed"
    else
        die "needs ${missing[*]} under /usr; run: sudo apt-get install ${missing[*]}"
    fi
fi

# --- the binary -------------------------------------------------------------------
if [[ -n ${TOVUK_BIN:-} ]]; then
    BIN=$TOVUK_BIN
else
    echo "building tovuk (cargo build --release) ..." >&2
    (cd "$ROOT" && cargo build --release) >&2 || die "the release build failed; fix it or pass TOVUK_BIN=/path/to/tovuk"
    target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
    [[ $target_dir = /* ]] || target_dir=$ROOT/$target_dir
    BIN=$target_dir/release/tovuk
fi
[[ -x $BIN ]] || die "no tovuk binary at $BIN"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# --- an isolated environment --------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tovuk-bench.XXXXXX")
SERVER_PID=
WRK_PID=
stop_pid() { # pid, seconds to wait after SIGTERM before SIGKILL
    local pid=$1 tenths=$(($2 * 10))
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < tenths; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "zero-downtime: process $pid did not stop within $2 s of SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local status=$?
    [[ -n $WRK_PID ]] && stop_pid "$WRK_PID" 5
    [[ -n $SERVER_PID ]] && stop_pid "$SERVER_PID" 15
    if [[ ${BENCH_KEEP:-} = 1 ]]; then
        echo "zero-downtime: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0
export GIT_AUTHOR_NAME=tovuk-bench GIT_AUTHOR_EMAIL=bench@tovuk.invalid
export GIT_COMMITTER_NAME=tovuk-bench GIT_COMMITTER_EMAIL=bench@tovuk.invalid
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES \
    GIT_TRACE GIT_TRACE_PERFORMANCE GIT_TRACE_PACKET GIT_TRACE_CURL GIT_ASKPASS SSH_ASKPASS \
    http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY TOVUK_URL TOVUK_TOKEN
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
export TOVUK_CONFIG_DIR=$TMP/config TOVUK_DATA_DIR=$TMP/data NO_COLOR=1

now_us() {
    local t=${EPOCHREALTIME/[.,]/}
    echo $((10#$t))
}

# --- the platform ------------------------------------------------------------------
"$BIN" server --data-dir "$TMP/data" --listen 127.0.0.1:0 --router-listen 127.0.0.1:0 \
    >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 300); do
    [[ -s $TMP/data/server.json && -s $TMP/data/admin.token ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/server.log" >&2; die "the server exited while starting"; }
    sleep 0.1
done
[[ -s $TMP/data/server.json ]] || { tail -20 "$TMP/server.log" >&2; die "the server did not write server.json within 30 s"; }
API_URL=$(grep -o '"api_url": *"[^"]*"' "$TMP/data/server.json" | sed 's/.*"\(http[^"]*\)"/\1/')
ROUTER_URL=$(grep -o '"router_url": *"[^"]*"' "$TMP/data/server.json" | sed 's/.*"\(http[^"]*\)"/\1/')
[[ $API_URL = http://127.0.0.1:* ]] || die "unexpected api_url in server.json: '$API_URL'"
[[ $ROUTER_URL = http://127.0.0.1:* ]] || die "unexpected router_url in server.json: '$ROUTER_URL'"
ROUTER_URL=${ROUTER_URL%/}
export TOVUK_URL=$API_URL
TOVUK_TOKEN=$(cat "$TMP/data/admin.token")
export TOVUK_TOKEN

"$BIN" app create "$APP" --json >"$TMP/app.json" || die "tovuk app create failed"
SECRET=$(grep -o '"secret": *"tovuk_[^"]*"' "$TMP/app.json" | sed 's/.*"\(tovuk_[^"]*\)"/\1/')
[[ -n $SECRET ]] || die "no deploy token secret in the output of tovuk app create"

# --- the app: nginx inside the sandbox, serving a file that names the version -------------
WORK=$TMP/app
git init -q -b main "$WORK"
mkdir -p "$WORK/public"
printf '[app]\nname = "%s"\nkind = "web"\ncapabilities = ["http"]\n\n[run]\ncommand = "sh start.sh"\n\n[health]\npath = "/health"\ntimeout = "30s"\n' \
    "$APP" >"$WORK/tovuk.toml"
# Only /usr, the release (/app, read-only) and a private /tmp are there: config, pid and
# temp paths go to /tmp, the log to stderr (the runner keeps its tail).
cat >"$WORK/start.sh" <<'EOF'
#!/bin/sh
set -eu
mkdir -p /tmp/nginx
sed "s/@PORT@/$PORT/g" /app/nginx.conf.in >/tmp/nginx/nginx.conf
exec nginx -p /tmp/nginx/ -c /tmp/nginx/nginx.conf -g 'daemon off;'
EOF
cat >"$WORK/nginx.conf.in" <<'EOF'
worker_processes 1;
pid /tmp/nginx/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path /tmp/nginx/body;
    proxy_temp_path /tmp/nginx/proxy;
    fastcgi_temp_path /tmp/nginx/fastcgi;
    uwsgi_temp_path /tmp/nginx/uwsgi;
    scgi_temp_path /tmp/nginx/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:@PORT@;
        root /app/public;
        default_type text/html;
        location = /health { return 200 "ok\n"; }
    }
}
EOF
write_version() { printf '<!doctype html>\n<title>%s</title>\n<p>hello v%d</p>\n' "$APP" "$1" >"$WORK/public/index.html"; }
write_version 0
git -C "$WORK" add -A
git -C "$WORK" commit -q -m "nginx app v0"
git -C "$WORK" remote add platform "http://deploy:$SECRET@${API_URL#http://}/git/$APP.git"

# Pushes HEAD and waits until its deploy is running; sets DEP and DEPLOY_US.
DEP=
DEPLOY_US=
deploy() { # label
    local log=$TMP/push-$1.log start state=
    start=$(now_us)
    git -C "$WORK" push platform main >"$log" 2>&1 || { cat "$log" >&2; die "$1: the push failed"; }
    DEP=$(grep -o 'deploy dep_[0-9a-z]* queued' "$log" | head -1 | cut -d' ' -f2)
    [[ -n $DEP ]] || { cat "$log" >&2; die "$1: the push did not report a queued deploy"; }
    for _ in $(seq 1200); do
        state=$("$BIN" deploy show "$DEP" --json | tr -d ' \n\t' | grep -o '"state":"[a-z_]*","source"' | cut -d'"' -f4)
        [[ $state = running || $state = failed || $state = cancelled ]] && break
        sleep 0.05
    done
    [[ $state = running ]] || { "$BIN" deploy show "$DEP" >&2 || true; die "$1: deploy $DEP is '$state', not running"; }
    DEPLOY_US=$(($(now_us) - start))
}
# The router must serve version $1.
check_version() { # version, label
    local body=
    for _ in $(seq 50); do
        body=$(curl -sf --max-time 2 -H "Host: $APP.localhost" "$ROUTER_URL/") && [[ $body = *"hello v$1<"* ]] && return 0
        sleep 0.1
    done
    die "$2: the router does not serve v$1; last body: '$body'"
}

echo "first deploy of $APP (untimed) ..." >&2
deploy warmup
check_version 0 warm-up

# --- load ---------------------------------------------------------------------------
# Counts answers by status and by the version in the body, summed over wrk's threads.
cat >"$TMP/count.lua" <<'EOF'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {}; versions = {} end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  local v = body and body:match("hello (v%d+)") or "none"
  versions[v] = (versions[v] or 0) + 1
end
function done(summary, latency, requests)
  local s, v = {}, {}
  for _, t in ipairs(threads) do
    for k, n in pairs(t:get("statuses")) do s[k] = (s[k] or 0) + n end
    for k, n in pairs(t:get("versions")) do v[k] = (v[k] or 0) + n end
  end
  for k, n in pairs(s) do io.write(string.format("count status %s %d\n", k, n)) end
  for k, n in pairs(v) do io.write(string.format("count version %s %d\n", k, n)) end
end
EOF
WRK=(wrk -t"$THREADS" -c"$CONNECTIONS" --latency -s "$TMP/count.lua" -H "Host: $APP.localhost")

# Reads a wrk report into R_* variables.
read_report() { # file
    local f=$1 line
    R_REQUESTS=$(awk '/ requests in / { print $1 }' "$f")
    R_SECONDS=$(awk '/ requests in / { sub(",", "", $4); print $4 }' "$f")
    R_NON2XX=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$f")
    R_NON2XX=${R_NON2XX:-0}
    R_CONNECT=0 R_READ=0 R_WRITE=0 R_TIMEOUT=0
    line=$(grep 'Socket errors:' "$f" || true)
    if [[ -n $line ]]; then
        read -r R_CONNECT R_READ R_WRITE R_TIMEOUT < <(awk '{ gsub(",", ""); print $4, $6, $8, $10 }' <<<"$line")
    fi
    R_ERRORS=$((R_CONNECT + R_READ + R_WRITE + R_TIMEOUT))
    R_P99=$(awk '$1 == "99%" { print $2 }' "$f")
    R_MAX=$(awk '$1 == "Latency" && NF >= 4 { print $4; exit }' "$f")
    R_STATUSES=$(awk '$1 == "count" && $2 == "status" { printf "%s%s x%s", sep, $3, $4; sep = ", " }' "$f")
    R_VERSIONS=$(awk '$1 == "count" && $2 == "version" { n++ } END { print n + 0 }' "$f")
    [[ $R_REQUESTS =~ ^[0-9]+$ && -n $R_P99 && -n $R_MAX ]] || { cat "$f" >&2; die "cannot read the wrk report $f"; }
}

echo "control: ${CONTROL} s of load through the router, no deploys ..." >&2
"${WRK[@]}" -d"${CONTROL}s" "$ROUTER_URL/" >"$TMP/wrk-control.txt" 2>&1 ||
    { cat "$TMP/wrk-control.txt" >&2; die "wrk (control) failed"; }
read_report "$TMP/wrk-control.txt"
C=("$R_REQUESTS" "$R_SECONDS" "$R_NON2XX" "$R_CONNECT" "$R_READ" "$R_WRITE" "$R_TIMEOUT" "$R_P99" "$R_MAX" "$R_STATUSES" "$R_VERSIONS")

echo "deploys: $DEPLOYS deploys of $APP under the same load ..." >&2
# Runs until SIGINT, then prints its report as usual.
"${WRK[@]}" -d3600s "$ROUTER_URL/" >"$TMP/wrk-deploys.txt" 2>&1 &
WRK_PID=$!
sleep "$SETTLE_S"
kill -0 "$WRK_PID" 2>/dev/null || { cat "$TMP/wrk-deploys.txt" >&2; die "wrk exited early"; }
DEPLOY_TIMES=()
for ((i = 1; i <= DEPLOYS; i++)); do
    write_version "$i"
    git -C "$WORK" commit -q -a -m "v$i"
    deploy "$i"
    DEPLOY_TIMES+=("$DEPLOY_US")
    printf '  deploy %2d/%d: %s running after %d ms\n' "$i" "$DEPLOYS" "$DEP" $((DEPLOY_US / 1000)) >&2
done
sleep "$SETTLE_S"
kill -INT "$WRK_PID" 2>/dev/null || true
for _ in $(seq 100); do
    kill -0 "$WRK_PID" 2>/dev/null || break
    sleep 0.1
done
wait "$WRK_PID" 2>/dev/null || true
WRK_PID=
read_report "$TMP/wrk-deploys.txt"
check_version "$DEPLOYS" "after the deploys"

# --- figures ------------------------------------------------------------------------
sort_values() { mapfile -t SORTED < <(printf '%s\n' "$@" | sort -n); }
median() {
    sort_values "$@"
    local n=${#SORTED[@]}
    if ((n % 2)); then
        echo "${SORTED[n / 2]}"
    else
        echo $(((SORTED[n / 2 - 1] + SORTED[n / 2]) / 2))
    fi
}
failed=$((R_NON2XX + R_ERRORS))
if ((failed == 0)); then verdict="met"; else verdict="NOT met"; fi

rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -n $(git -C "$ROOT" status --porcelain 2>/dev/null) ]] && rev="$rev+dirty"
echo
echo "zero downtime: wrk -t$THREADS -c$CONNECTIONS through the router while $DEPLOYS deploys roll (nginx app in the sandbox)"
echo "$("$BIN" --version) @ $rev, $(/usr/sbin/nginx -v 2>&1 | sed 's/^nginx version: //'), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'), $(nproc 2>/dev/null || echo '?') cores"
echo
printf '%-30s %9s %8s %9s %8s %8s %8s %8s %9s %9s\n' "" requests seconds non-2xx connect read write timeout p99 max
printf '%-30s %9s %8s %9s %8s %8s %8s %8s %9s %9s\n' "control (no deploys)" "${C[0]}" "${C[1]}" "${C[2]}" "${C[3]}" \
    "${C[4]}" "${C[5]}" "${C[6]}" "${C[7]}" "${C[8]}"
printf '%-30s %9s %8s %9s %8s %8s %8s %8s %9s %9s\n' "during $DEPLOYS deploys" "$R_REQUESTS" "$R_SECONDS" "$R_NON2XX" \
    "$R_CONNECT" "$R_READ" "$R_WRITE" "$R_TIMEOUT" "$R_P99" "$R_MAX"
echo
echo "answers by status during the deploys: $R_STATUSES; versions served: $R_VERSIONS of $((DEPLOYS + 1))"
echo "push -> running under load: median $(($(median "${DEPLOY_TIMES[@]}") / 1000)) ms over $DEPLOYS deploys"
printf 'failed requests during the deploys (non-2xx + socket errors): %d   goal 0: %s\n' "$failed" "$verdict"
