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

# Kills the app sandboxes recorded under DIR (apps outlive a stopped server by design), each
# with every process below it (an app's inner bwrap does not die with the outer one).
bench_kill_apps() { # DIR
    local record pid tree child i
    while IFS= read -r record; do
        pid=$(grep -o '"pid": *[0-9]*' "$record" | grep -o '[0-9]*$') || continue
        [[ -n $pid ]] && grep -q bwrap "/proc/$pid/comm" 2>/dev/null || continue
        tree=("$pid")
        for ((i = 0; i < ${#tree[@]}; i++)); do
            for child in $(cat "/proc/${tree[i]}/task/${tree[i]}/children" 2>/dev/null); do tree+=("$child"); done
        done
        kill -KILL "${tree[@]}" 2>/dev/null || true
    done < <(find "$1" -path '*/instances/*/instance.json' 2>/dev/null)
}

# Makes the temp dir TMP and the exit trap: on exit the processes in the named variables are
# stopped (in the given order, each with its SIGTERM grace), then the server (SERVER_PID,
# 15 s) and the apps it left running, then TMP is removed (kept with BENCH_KEEP=1). The
# named variables start empty.
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

free_port() {
    perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0")->sockport, "\n"'
}

# --- the platform ------------------------------------------------------------------
# Starts `tovuk server` on port 0 with its data in TMP, waits for server.json and the admin
# token, sets SERVER_PID and API_URL and exports TOVUK_URL and TOVUK_TOKEN.
bench_start_server() {
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
    [[ $API_URL = http://127.0.0.1:* ]] || die "unexpected api_url in server.json: '$API_URL'"
    export TOVUK_URL=$API_URL
    TOVUK_TOKEN=$(cat "$TMP/data/admin.token")
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

# --- figures ------------------------------------------------------------------------
ms() { # microseconds -> "12.3"
    local us=$1 sign=
    ((us < 0)) && { sign=-; us=$((-us)); }
    us=$((us + 50))
    printf '%s%d.%d' "$sign" $((us / 1000)) $(((us % 1000) / 100))
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
