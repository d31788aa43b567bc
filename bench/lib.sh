# shellcheck shell=bash
# bench/lib.sh: the setup and figures shared by the benchmark scripts. Each script sources it
# right after `set -euo pipefail`:
#
#     source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Sourcing only defines ROOT, BENCH_NAME (the script's name, the prefix of its messages) and
# functions; the script calls them in its own order (checks first, then bench_binary,
# bench_tmp, bench_isolate_env, bench_start_server, ...). Not meant to be run on its own.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_NAME=$(basename "${BASH_SOURCE[1]:-$0}" .sh)

die() {
    echo "$BENCH_NAME: $*" >&2
    exit 1
}

# Dies unless every named variable holds a positive integer.
bench_positive_ints() { # VAR...
    local knob
    for knob in "$@"; do
        [[ ${!knob} =~ ^[1-9][0-9]*$ ]] || die "$knob must be a positive integer, not '${!knob}'"
    done
}

# wrk and nginx (under /usr: the app runs nginx inside the sandbox, which sees only /usr);
# installed with apt-get when missing and running as root.
bench_need_wrk_nginx() {
    local missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
    if ((${#missing[@]})); then
        if [[ $(id -u) = 0 ]] && command -v apt-get >/dev/null; then
            echo "$BENCH_NAME: installing ${missing[*]} (apt-get install ${missing[*]}) ..." >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 ||
                die "apt-get install ${missing[*]} failed"
        else
            die "needs ${missing[*]} under /usr; run: sudo apt-get install ${missing[*]}"
        fi
    fi
}

# --- the binary -------------------------------------------------------------------
# Sets BIN (absolute): TOVUK_BIN, else target/release/tovuk after `cargo build --release`.
bench_binary() {
    if [[ -n ${TOVUK_BIN:-} ]]; then
        BIN=$TOVUK_BIN
    else
        echo "building tovuk (cargo build --release) ..." >&2
        (cd "$ROOT" && cargo build --release) >&2 || die "the release build failed; fix it or pass TOVUK_BIN=/path/to/tovuk"
        local target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
        [[ $target_dir = /* ]] || target_dir=$ROOT/$target_dir
        BIN=$target_dir/release/tovuk
    fi
    [[ -x $BIN ]] || die "no tovuk binary at $BIN"
    BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
}

# --- an isolated environment --------------------------------------------------------
stop_pid() { # pid, seconds to wait after SIGTERM before SIGKILL, [what, for the message]
    local pid=$1 tenths=$(($2 * 10)) what=${3:-process $1} i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < tenths; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "$BENCH_NAME: $what did not stop within $2 s of SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# Kills the app sandboxes of the data under DIR (apps outlive a stopped server by design),
# each with every process below it (an app's inner bwrap does not die with the outer one):
# those the instance records name, and every bwrap whose arguments name a path under DIR
# (a server stopped with SIGTERM can remove the record of an app it leaves running).
bench_kill_apps() { # DIR
    local record pid tree=() child i
    while IFS= read -r record; do
        pid=$(grep -o '"pid": *[0-9]*' "$record" | grep -o '[0-9]*$') || continue
        [[ -n $pid ]] && grep -q bwrap "/proc/$pid/comm" 2>/dev/null && tree+=("$pid")
    done < <(find "$1" -path '*/instances/*/instance.json' 2>/dev/null)
    for pid in $(bench_pids_of bwrap "$1/"); do tree+=("$pid"); done
    ((${#tree[@]})) || return 0
    for ((i = 0; i < ${#tree[@]}; i++)); do
        for child in $(cat "/proc/${tree[i]}/task/${tree[i]}/children" 2>/dev/null); do tree+=("$child"); done
    done
    kill -KILL "${tree[@]}" 2>/dev/null || true
}

# Unmounts the apps' /data volumes under DIR (loop-mounted images that outlive a server, as
# the apps do), so DIR can be removed.
bench_unmount_volumes() { # DIR
    local mountpoint mountpoints=()
    # Read whole first: the mount table changes under a reader as each one goes.
    while read -r _ mountpoint _; do
        [[ $mountpoint = "$1"/* ]] && mountpoints+=("$mountpoint")
    done < <(cat /proc/self/mounts)
    for mountpoint in ${mountpoints[@]+"${mountpoints[@]}"}; do umount -l "$mountpoint" 2>/dev/null || true; done
}

# Stops the listener keepers (`tovuk server --hold-listeners`) of the data under DIR: one
# outlives its server for 30 s, or until its data dir is removed.
bench_stop_keepers() { # DIR
    local pid
    for pid in $(bench_pids_of tovuk "$1/"); do
        if grep -aqF -- --hold-listeners "/proc/$pid/cmdline" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
    done
}

# The pids of the processes named NAME (their comm) whose command line holds TEXT.
bench_pids_of() { # name, text
    local dir comm
    for dir in /proc/[0-9]*; do
        { read -r comm <"$dir/comm"; } 2>/dev/null || continue
        [[ $comm = "$1" ]] && grep -aqF -- "$2" "$dir/cmdline" 2>/dev/null && echo "${dir#/proc/}"
    done
    return 0
}

# Makes the temp dir TMP and the exit trap: on exit the processes in the named variables are
# stopped (in the given order, each with its SIGTERM grace), then the server (SERVER_PID,
# 15 s), the apps, the listener keepers and the volumes of every data dir under TMP, then TMP is removed
# (kept with BENCH_KEEP=1). The named variables start empty.
BENCH_STOP_FIRST=()
bench_tmp() { # [PIDVAR:SECONDS ...]
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/tovuk-bench.XXXXXX")
    SERVER_PID=
    BENCH_STOP_FIRST=("$@")
    local spec
    for spec in "$@"; do printf -v "${spec%%:*}" '%s' ''; done
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
bench_cleanup() {
    local status=$? spec var
    for spec in ${BENCH_STOP_FIRST[@]+"${BENCH_STOP_FIRST[@]}"}; do
        var=${spec%%:*}
        [[ -n ${!var:-} ]] && stop_pid "${!var}" "${spec##*:}"
    done
    [[ -n ${SERVER_PID:-} ]] && stop_pid "$SERVER_PID" 15 "the server"
    bench_kill_apps "$TMP"
    bench_stop_keepers "$TMP"
    bench_unmount_volumes "$TMP"
    if [[ ${BENCH_KEEP:-} = 1 ]]; then
        echo "$BENCH_NAME: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$status"
}

# Git and tovuk see only the temp dir: no user or system git config, fixed author, no
# proxies, no TOVUK_URL/TOVUK_TOKEN from the caller. Extra names to unset may be given.
bench_isolate_env() { # [VAR to unset ...]
    export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0
    export GIT_AUTHOR_NAME=tovuk-bench GIT_AUTHOR_EMAIL=bench@tovuk.invalid
    export GIT_COMMITTER_NAME=tovuk-bench GIT_COMMITTER_EMAIL=bench@tovuk.invalid
    unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES \
        GIT_TRACE GIT_TRACE_PERFORMANCE GIT_TRACE_PACKET GIT_TRACE_CURL GIT_ASKPASS SSH_ASKPASS \
        http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY TOVUK_URL TOVUK_TOKEN "$@"
    export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
    export TOVUK_CONFIG_DIR=$TMP/config TOVUK_DATA_DIR=$TMP/data NO_COLOR=1
}

# One clock for the script's own timings: bash's EPOCHREALTIME (no fork), else date.
now_us() {
    if [[ -n ${EPOCHREALTIME:-} ]]; then
        local t=${EPOCHREALTIME/[.,]/}
        echo $((10#$t))
    else
        echo $(($(date +%s%N) / 1000))
    fi
}

# A free port on 127.0.0.1: the host's, or that of the network namespace given (a path like
# /proc/PID/ns/net, entered with nsenter; empty: the host's).
free_port() { # [netns]
    ${1:+nsenter --net="$1"} perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0")->sockport, "\n"'
}

# --- the platform ------------------------------------------------------------------
# Starts `tovuk server` on port 0 with its data in DIR/data, its log in DIR/server.log and
# any extra server flags, and waits for server.json and the admin token. Its pid goes into
# the variable named PIDVAR at once (so an exit trap that stops that variable stops a server
# that dies while starting); sets STARTED_API_URL, STARTED_ROUTER_URL (no trailing slash) and
# STARTED_TOKEN, and exports nothing. For scripts that run more than one server.
bench_start_server_in() { # PIDVAR, dir, [server flag ...]
    local pidvar=$1 dir=$2 what="the server" pid
    shift 2
    [[ $dir = "$TMP" ]] || what="the server in ${dir#"$TMP"/}"
    mkdir -p "$dir"
    "$BIN" server --data-dir "$dir/data" --listen 127.0.0.1:0 --router-listen 127.0.0.1:0 "$@" \
        >"$dir/server.log" 2>&1 &
    pid=$!
    printf -v "$pidvar" '%s' "$pid"
    for _ in $(seq 300); do
        [[ -s $dir/data/server.json && -s $dir/data/admin.token ]] && break
        kill -0 "$pid" 2>/dev/null || { cat "$dir/server.log" >&2; die "$what exited while starting"; }
        sleep 0.1
    done
    [[ -s $dir/data/server.json && -s $dir/data/admin.token ]] ||
        { tail -20 "$dir/server.log" >&2; die "$what did not write server.json within 30 s"; }
    STARTED_API_URL=$(grep -o '"api_url": *"[^"]*"' "$dir/data/server.json" | sed 's/.*"\(http[^"]*\)"/\1/')
    [[ $STARTED_API_URL = http://127.0.0.1:* ]] || die "unexpected api_url in $dir/data/server.json: '$STARTED_API_URL'"
    STARTED_ROUTER_URL=$(grep -o '"router_url": *"[^"]*"' "$dir/data/server.json" | sed 's/.*"\(http[^"]*\)"/\1/')
    [[ $STARTED_ROUTER_URL = http://127.0.0.1:* ]] || die "unexpected router_url in $dir/data/server.json: '$STARTED_ROUTER_URL'"
    STARTED_ROUTER_URL=${STARTED_ROUTER_URL%/}
    STARTED_TOKEN=$(cat "$dir/data/admin.token")
}

# Starts `tovuk server` on port 0 with its data in TMP (bench_start_server_in), sets
# SERVER_PID and API_URL and exports TOVUK_URL and TOVUK_TOKEN.
bench_start_server() {
    bench_start_server_in SERVER_PID "$TMP"
    API_URL=$STARTED_API_URL
    export TOVUK_URL=$API_URL
    TOVUK_TOKEN=$STARTED_TOKEN
    export TOVUK_TOKEN
}

# Sets ROUTER_URL (no trailing slash) from the running server's server.json.
bench_router_url() {
    ROUTER_URL=$(grep -o '"router_url": *"[^"]*"' "$TMP/data/server.json" | sed 's/.*"\(http[^"]*\)"/\1/')
    [[ $ROUTER_URL = http://127.0.0.1:* ]] || die "unexpected router_url in server.json: '$ROUTER_URL'"
    ROUTER_URL=${ROUTER_URL%/}
}

# Creates the app (its JSON kept in the given file), sets SECRET (its deploy token) and
# PLATFORM_REMOTE (the git remote URL that pushes to it with that token).
bench_create_app() { # app, json file
    "$BIN" app create "$1" --json >"$2" || die "tovuk app create $1 failed"
    SECRET=$(grep -o '"secret": *"tovuk_[^"]*"' "$2" | sed 's/.*"\(tovuk_[^"]*\)"/\1/')
    [[ -n $SECRET ]] || die "no deploy token secret in the output of tovuk app create $1"
    PLATFORM_REMOTE="http://deploy:$SECRET@${API_URL#http://}/git/$1.git"
}

# Writes DIR/tovuk.toml for a web app with a /health check (and a health timeout if given).
write_manifest() { # dir, app, run command, [health timeout]
    printf '[app]\nname = "%s"\nkind = "web"\ncapabilities = ["http"]\n\n[run]\ncommand = "%s"\n\n[health]\npath = "/health"\n' \
        "$2" "$3" >"$1/tovuk.toml"
    [[ -z ${4:-} ]] || printf 'timeout = "%s"\n' "$4" >>"$1/tovuk.toml"
}

# Writes DIR/start.sh and DIR/nginx.conf.in: nginx inside the sandbox, one worker, serving
# DIR/public (as /app/public) on $PORT with /health answered by nginx itself.
write_nginx_app() { # dir
    # Only /usr, the release (/app, read-only) and a private /tmp are there: config, pid and
    # temp paths go to /tmp, the log to stderr (the runner keeps its tail).
    cat >"$1/start.sh" <<'EOF'
#!/bin/sh
set -eu
mkdir -p /tmp/nginx
sed "s/@PORT@/$PORT/g" /app/nginx.conf.in >/tmp/nginx/nginx.conf
exec nginx -p /tmp/nginx/ -c /tmp/nginx/nginx.conf -g 'daemon off;'
EOF
    cat >"$1/nginx.conf.in" <<'EOF'
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
}

# --- reading a deploy ----------------------------------------------------------------
# The deploy id a `git push` log reports as queued (empty if none).
queued_dep() { # push log
    grep -o 'deploy dep_[0-9a-z]* queued' "$1" | head -1 | cut -d' ' -f2
}
# `tovuk deploy show DEP --json`, whitespace removed, so one grep finds one field.
SHOW=
load_deploy() {
    SHOW=$("$BIN" deploy show "$1" --json | tr -d ' \n\t') || die "tovuk deploy show $1 failed"
}
deploy_state() { grep -o '"state":"[a-z_]*","source"' <<<"$SHOW" | cut -d'"' -f4; }
# The time (unix ms, server clock) the loaded deploy entered state $1.
entered_ms() {
    local at
    at=$(grep -o "\"state\":\"$1\",\"at\":\"[^\"]*\"" <<<"$SHOW" | head -1 | sed 's/.*"at":"\([^"]*\)"/\1/')
    [[ -n $at ]] || die "deploy has no '$1' state change: $SHOW"
    date -u -d "$at" +%s%3N
}

# --- polling without forks ----------------------------------------------------------
# Sleeps without forking (nap SECONDS): a read that times out on a FIFO nobody writes to,
# which nap_open (after bench_tmp) makes in TMP and opens as NAP_FD.
nap_open() {
    mkfifo "$TMP/nap.fifo"
    exec {NAP_FD}<>"$TMP/nap.fifo"
}
nap() { read -r -t "$1" -u "$NAP_FD" _ || true; }

# One HTTP/1.1 GET over bash's /dev/tcp (no fork, so polling every 10 ms is cheap and
# precise): sets HTTP_STATUS ("000" when nothing answered) and HTTP_BODY.
HTTP_STATUS=000
HTTP_BODY=
http_get() { # host:port, Host header, path
    local addr=$1 host=$2 path=$3 fd response=
    HTTP_STATUS=000 HTTP_BODY=
    { exec {fd}<>"/dev/tcp/${addr%:*}/${addr##*:}"; } 2>/dev/null || return 0
    printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$host" 1>&"$fd" 2>/dev/null || true
    IFS= read -r -d '' -t 2 -u "$fd" response || true
    exec {fd}>&-
    [[ $response =~ ^HTTP/1\.[01]\ ([0-9]{3}) ]] && HTTP_STATUS=${BASH_REMATCH[1]}
    [[ $response == *$'\r\n\r\n'* ]] && HTTP_BODY=${response#*$'\r\n\r\n'}
    return 0
}

# Polls http://ADDR/ (http_get, then nap) until it answers 200 with BODY: sets LIVE_US (the
# now_us clock when it did) and returns 0; returns 1 after the timeout (HTTP_STATUS is the
# last answer).
LIVE_US=
poll_until_body() { # host:port, Host header, body, poll seconds, timeout seconds
    local addr=$1 host=$2 want=$3 t deadline
    t=${EPOCHREALTIME/[.,]/}
    deadline=$((10#$t + $5 * 1000000))
    while :; do
        http_get "$addr" "$host" /
        t=${EPOCHREALTIME/[.,]/}
        if [[ $HTTP_STATUS = 200 && $HTTP_BODY = "$want" ]]; then
            # shellcheck disable=SC2034 # the script reads it
            LIVE_US=$((10#$t))
            return 0
        fi
        ((10#$t <= deadline)) || return 1
        nap "$4"
    done
}

# --- a wrk run ----------------------------------------------------------------------
# Converts wrk's "1.23ms" / "850.00us" / "1.02s" to integer microseconds.
wrk_latency_us() { # latency as wrk prints it
    local v=$1 num unit
    [[ $v =~ ^([0-9.]+)(us|ms|s|m)$ ]] || die "cannot read wrk latency '$v'"
    num=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]}
    case $unit in
    us) awk -v n="$num" 'BEGIN { printf "%d", n + 0.5 }' ;;
    ms) awk -v n="$num" 'BEGIN { printf "%d", n * 1000 + 0.5 }' ;;
    s) awk -v n="$num" 'BEGIN { printf "%d", n * 1000000 + 0.5 }' ;;
    m) awk -v n="$num" 'BEGIN { printf "%d", n * 60000000 + 0.5 }' ;;
    esac
}

# CPU time (clock ticks, user + system, all threads) of a process; fails once it is gone.
proc_ticks() { # pid
    local stat fields
    stat=$(cat "/proc/$1/stat") || return 1
    stat=${stat##*) }
    read -r -a fields <<<"$stat"
    echo $((fields[11] + fields[12])) # utime, stime (fields 14 and 15 of stat)
}

# Reads the report of one `wrk --latency` run against KEY (WHAT in messages; dies showing
# the report when it cannot) into the script's associative arrays: appends req/s (x100) to
# RPS, p50 and p99 (µs) to P50 and P99, and the CPU time per request (ns) of the clock ticks
# the proxy used to CPU; adds non-2xx answers and socket errors to ERRORS. Sets WRK_REQUESTS
# (completed requests) and LAST ("<req/s> req/s, p99 <as wrk prints it>").
wrk_record() { # key, report file, what, clock ticks used during the run
    local key=$1 report=$2 what=$3 ticks=$4 rps p50 p99 non2xx socket clk_tck
    WRK_REQUESTS=$(awk '/ requests in / { print $1 }' "$report")
    [[ $WRK_REQUESTS =~ ^[1-9][0-9]*$ ]] || { cat "$report" >&2; die "cannot read the request count of the wrk report for $what"; }
    rps=$(awk '/^Requests\/sec:/ { printf "%d", $2 * 100 + 0.5 }' "$report")
    p50=$(awk '$1 == "50%" { print $2 }' "$report")
    p99=$(awk '$1 == "99%" { print $2 }' "$report")
    [[ -n $rps && -n $p50 && -n $p99 ]] || { cat "$report" >&2; die "cannot read the wrk report for $what"; }
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$report")
    socket=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$report")
    clk_tck=$(getconf CLK_TCK)
    RPS[$key]+="$rps "
    P50[$key]+="$(wrk_latency_us "$p50") "
    P99[$key]+="$(wrk_latency_us "$p99") "
    CPU[$key]+="$((ticks * 1000000000 / clk_tck / WRK_REQUESTS)) "
    ERRORS[$key]=$((${ERRORS[$key]:-0} + ${non2xx:-0} + ${socket:-0}))
    # shellcheck disable=SC2034 # the script reads it
    LAST="$(awk -v r="$rps" 'BEGIN { printf "%.0f", r / 100 }') req/s, p99 $p99"
}

# The warm-up: the command once per target with DURATION=2 and the label "warmup", then the
# figures wrk_record kept are dropped (RPS, P50, P99, CPU and ERRORS start again empty).
wrk_warm_up() { # command (target, label), targets...
    local cmd=$1 DURATION=2 target
    shift
    for target in "$@"; do "$cmd" "$target" warmup; done
    unset RPS P50 P99 CPU ERRORS
    declare -gA RPS P50 P99 CPU ERRORS
}

# --- two servers side by side -------------------------------------------------------
# For scripts that run two `tovuk server`s from one binary, the "sides" named in SIDES, with
# the associative arrays DIR (its dir under TMP), API, ROUTER (URLs), TOKEN, PID and
# SERVER_NAME (for messages) by side, and the app APP (in the repo WORK) on both.

# Runs the CLI against one side's server.
tv() { # side, tovuk args...
    local side=$1
    shift
    TOVUK_URL=${API[$side]} TOVUK_TOKEN=${TOKEN[$side]} "$BIN" "$@"
}

# Creates APP on every side's server (bench_create_app, the JSON in the side's DIR) and adds
# each as a git remote of WORK named after its side.
bench_create_app_on_sides() {
    local side
    for side in "${SIDES[@]}"; do
        # bench_create_app talks to the server in TOVUK_URL, TOVUK_TOKEN and API_URL.
        API_URL=${API[$side]} TOVUK_URL=${API[$side]} TOVUK_TOKEN=${TOKEN[$side]} \
            bench_create_app "$APP" "${DIR[$side]}/app.json"
        git -C "$WORK" remote add "$side" "$PLATFORM_REMOTE"
    done
}

# Dies unless one side's router answers EXPECTED_BODY for Host APP.localhost within the
# given number of attempts, 0.1 s apart (retried while the route settles at startup).
check_router() { # side, attempts
    local body=
    for _ in $(seq "$2"); do
        body=$(curl -sf --max-time 2 -H "Host: $APP.localhost" "${ROUTER[$1]}/") && [[ $body = "$EXPECTED_BODY" ]] && return 0
        sleep 0.1
    done
    die "the router of ${SERVER_NAME[$1]} (${ROUTER[$1]}) does not answer the backend's index.html; last body: '$body'"
}

# CPU time (clock ticks) of one side's `tovuk server` process (router, control plane,
# runner; not the sandboxed backend).
server_ticks() { # side
    proc_ticks "${PID[$1]}" || die "${SERVER_NAME[$1]} (pid ${PID[$1]}) is gone"
}

# One wrk run (THREADS, CONNECTIONS, DURATION) through one side's router with Host
# APP.localhost, its report in the side's DIR, recorded by wrk_record with the server's CPU.
load_router() { # side, label
    local side=$1 label=$2 report ticks0 ticks1
    report=${DIR[$side]}/wrk-$label.txt
    ticks0=$(server_ticks "$side")
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "Host: $APP.localhost" "${ROUTER[$side]}/" \
        >"$report" 2>&1 || { cat "$report" >&2; die "wrk against ${SERVER_NAME[$side]} failed"; }
    ticks1=$(server_ticks "$side")
    wrk_record "$side" "$report" "${SERVER_NAME[$side]}" $((ticks1 - ticks0))
}

# The table of the router load per side: a header, then a row per side (label_of, the
# script's) with RUNS, the median req/s and its range, p50, p99, server CPU per request and
# errors (medians from M_RPS, M_P50, M_P99 and M_CPU, the range from RPS).
print_side_rows() {
    local side
    printf '%-44s %5s %10s %14s %10s %10s %12s %8s\n' "" runs "req/s" "req/s range" p50 p99 "server CPU" errors
    for side in "${SIDES[@]}"; do
        # shellcheck disable=SC2086 # the list is space-separated numbers
        printf '%-44s %5d %10s %14s %10s %10s %12s %8d\n' "$(label_of "$side")" "$RUNS" \
            "$(awk -v r="${M_RPS[$side]}" 'BEGIN { printf "%.0f", r / 100 }')" "$(rps_range ${RPS[$side]})" \
            "$(ms2 "${M_P50[$side]}") ms" "$(ms2 "${M_P99[$side]}") ms" \
            "$(awk -v n="${M_CPU[$side]}" 'BEGIN { printf "%.1f", n / 1000 }') us/req" "${ERRORS[$side]}"
    done
}

# --- figures ------------------------------------------------------------------------
ms() { # microseconds -> "12.3"
    local us=$1 sign=
    ((us < 0)) && { sign=-; us=$((-us)); }
    us=$((us + 50))
    printf '%s%d.%d' "$sign" $((us / 1000)) $(((us % 1000) / 100))
}
# Two decimals, for the small latencies under load.
ms2() { # microseconds -> "1.23"
    local us=$1
    us=$((us + 5))
    printf '%d.%02d' $((us / 1000)) $(((us % 1000) / 10))
}
# The change from base to new, in percent.
pct() { # new, base -> "+1.2 %" ((new - base) / base)
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f %%", (a - b) * 100 / b }'
}
# a / b as a factor.
ratio() { # a, b -> "0.97x"
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'
}
# Sets SORTED to the values sorted ascending.
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
p90() { # nearest rank
    sort_values "$@"
    local n=${#SORTED[@]}
    echo "${SORTED[(9 * n + 9) / 10 - 1]}"
}
minimum() {
    sort_values "$@"
    echo "${SORTED[0]}"
}
# The lowest and highest of req/s values kept x100 (as wrk_record keeps them): "20123-23456".
rps_range() { # values (req/s x100)...
    sort_values "$@"
    awk -v lo="${SORTED[0]}" -v hi="${SORTED[${#SORTED[@]} - 1]}" 'BEGIN { printf "%.0f-%.0f", lo / 100, hi / 100 }'
}
# One table row: label (ROW_WIDTH columns, default 46), count, median, p90, min in ms.
row() { # label, values (µs)...
    local label=$1
    shift
    printf '%-*s %5d %10s %10s %10s\n' "${ROW_WIDTH:-46}" "$label" $# "$(ms "$(median "$@")") ms" \
        "$(ms "$(p90 "$@")") ms" "$(ms "$(minimum "$@")") ms"
}

# The version line under a table's title:
#   "<tovuk --version> @ <short rev>[+dirty], <component>, ..., <N> cores<VERSION_SUFFIX>"
bench_version_line() { # component...
    local rev line c
    rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    [[ -z $(git -C "$ROOT" status --porcelain 2>/dev/null) ]] || rev="$rev+dirty"
    line="$("$BIN" --version) @ $rev"
    for c in "$@"; do line+=", $c"; done
    echo "$line, $(nproc 2>/dev/null || echo '?') cores${VERSION_SUFFIX:-}"
}
