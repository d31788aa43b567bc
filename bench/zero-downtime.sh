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
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEPLOYS=${DEPLOYS:-10}
CONTROL=${CONTROL:-10}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
SETTLE_S=2 # load before the first deploy and after the last one, so every swap is under load
APP=benchzero

bench_positive_ints DEPLOYS CONTROL CONNECTIONS THREADS
command -v git >/dev/null || die "git is needed (Debian: apt-get install git)"
command -v curl >/dev/null || die "curl is needed (Debian: apt-get install curl)"
command -v bwrap >/dev/null || die "bubblewrap is needed by the builder and runner (Debian: apt-get install bubblewrap)"
bench_need_wrk_nginx

bench_binary
bench_tmp WRK_PID:5
bench_isolate_env
bench_start_server
bench_router_url
bench_create_app "$APP" "$TMP/app.json"

# --- the app: nginx inside the sandbox, serving a file that names the version -------------
WORK=$TMP/app
git init -q -b main "$WORK"
mkdir -p "$WORK/public"
write_manifest "$WORK" "$APP" "sh start.sh" 30s
write_nginx_app "$WORK"
write_version() { printf '<!doctype html>\n<title>%s</title>\n<p>hello v%d</p>\n' "$APP" "$1" >"$WORK/public/index.html"; }
write_version 0
git -C "$WORK" add -A
git -C "$WORK" commit -q -m "nginx app v0"
git -C "$WORK" remote add platform "$PLATFORM_REMOTE"

# Pushes HEAD and waits until its deploy is running; sets DEP and DEPLOY_US.
DEP=
DEPLOY_US=
deploy() { # label
    local log=$TMP/push-$1.log start state=
    start=$(now_us)
    git -C "$WORK" push platform main >"$log" 2>&1 || { cat "$log" >&2; die "$1: the push failed"; }
    DEP=$(queued_dep "$log")
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

# --- figures (median: lib.sh) --------------------------------------------------------
failed=$((R_NON2XX + R_ERRORS))
if ((failed == 0)); then verdict="met"; else verdict="NOT met"; fi

echo
echo "zero downtime: wrk -t$THREADS -c$CONNECTIONS through the router while $DEPLOYS deploys roll (nginx app in the sandbox)"
bench_version_line "$(/usr/sbin/nginx -v 2>&1 | sed 's/^nginx version: //')" "$(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
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
