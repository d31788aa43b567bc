#!/usr/bin/env bash
# router: requests per second and p99 latency through the tovuk router, printed beside the
# same load sent straight to the backend and through nginx as a keep-alive reverse proxy to
# the same backend, all in the same run. nginx runs twice, with one worker and with
# `worker_processes auto`, and tovuk is compared with the better of the two.
#
# The backend is nginx serving a small static file, deployed as a tovuk app: its
# `[run] command` writes an nginx config for $PORT and starts nginx inside the sandbox. The
# load is `wrk -t2 -c64 -d10s --latency`:
#   tovuk:  wrk -> tovuk router (Host: <app>.localhost) -> the instance
#   direct: wrk -> the instance (port from `tovuk app status --json`)
#   nginx:  wrk -> nginx (upstream keepalive 64, HTTP/1.1) -> the instance, once per
#           worker count (1 and auto), each its own nginx on its own port
# The instance runs in a network namespace of its own (`.instance.netns` in
# `tovuk app status --json`), which only the router reaches from the host: wrk for direct,
# the nginx proxies and wrk against them run inside that namespace (`nsenter --net`, as
# root), wrk for tovuk on the host. With no namespace (a server started with
# --share-host-network) all of them run on the host.
#
# Anchor (issue): tovuk >= 1.1x the best nginx's req/s, and tovuk <= the best nginx's p99
# latency (best: the higher median req/s, the lower median p99, of the worker counts run).
# This prints figures; it never fails because a goal was missed.
#
# Usage: bench/router.sh                    (builds target/release/tovuk first)
#        TOVUK_BIN=/path/to/tovuk RUNS=5 bench/router.sh
# Env:   TOVUK_BIN    use this binary instead of running `cargo build --release`
#        RUNS         wrk runs per target, alternating the order (default 5)
#        DURATION     seconds per wrk run (default 10)
#        CONNECTIONS  wrk connections (default 64); THREADS wrk threads (default 2)
#        NGINX_WORKERS  run nginx with only this worker_processes (a number or auto) instead
#                     of both 1 and auto
#        BENCH_KEEP   1 keeps the temp dir (server log, nginx configs, wrk reports)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-5}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
NGINX_WORKERS=${NGINX_WORKERS:-}
GOAL_RPS=1.10 # tovuk / best nginx, req/s, at least
APP=benchrouter

bench_positive_ints RUNS DURATION CONNECTIONS THREADS
[[ -z $NGINX_WORKERS || $NGINX_WORKERS = auto || $NGINX_WORKERS =~ ^[1-9][0-9]*$ ]] || die "NGINX_WORKERS must be auto or a positive integer, not '$NGINX_WORKERS'"
command -v git >/dev/null || die "git is needed (Debian: apt-get install git)"
command -v curl >/dev/null || die "curl is needed (Debian: apt-get install curl)"
command -v perl >/dev/null || die "perl is needed (Debian: apt-get install perl)"
command -v bwrap >/dev/null || die "bubblewrap is needed by the builder and runner (Debian: apt-get install bubblewrap)"
command -v nsenter >/dev/null || die "nsenter is needed to reach the instance's network namespace (Debian: apt-get install util-linux)"
bench_need_wrk_nginx
NGINX=/usr/sbin/nginx

bench_binary
bench_tmp PROXY1_PID:10 PROXY2_PID:10
bench_isolate_env
bench_start_server
bench_router_url
bench_create_app "$APP" "$TMP/app.json"

# --- the backend app: nginx inside the sandbox, one worker, a small static file ----------
WORK=$TMP/app
git init -q -b main "$WORK"
mkdir -p "$WORK/public"
write_manifest "$WORK" "$APP" "sh start.sh" 30s
write_nginx_app "$WORK"
printf '<!doctype html>\n<title>%s</title>\n<p>hello from the backend</p>\n' "$APP" >"$WORK/public/index.html"
EXPECTED_BODY=$(cat "$WORK/public/index.html")
git -C "$WORK" add -A
git -C "$WORK" commit -q -m "nginx backend"
git -C "$WORK" remote add platform "$PLATFORM_REMOTE"

echo "deploying the nginx backend as app $APP ..." >&2
git -C "$WORK" push platform main >"$TMP/push.log" 2>&1 || { cat "$TMP/push.log" >&2; die "the push failed"; }
DEP=$(queued_dep "$TMP/push.log")
[[ -n $DEP ]] || { cat "$TMP/push.log" >&2; die "the push did not report a queued deploy"; }
state=
for _ in $(seq 600); do
    state=$("$BIN" deploy show "$DEP" --json | tr -d ' \n\t' | grep -o '"state":"[a-z_]*","source"' | cut -d'"' -f4)
    [[ $state = running || $state = failed || $state = cancelled ]] && break
    sleep 0.1
done
[[ $state = running ]] || { "$BIN" deploy show "$DEP" >&2 || true; die "deploy $DEP is '$state', not running"; }
STATUS=$("$BIN" app status "$APP" --json | tr -d ' \n\t')
INSTANCE_PORT=$(grep -o '"instance":{[^}]*}' <<<"$STATUS" | grep -o '"port":[0-9]*' | cut -d: -f2)
[[ -n $INSTANCE_PORT ]] || die "tovuk app status has no instance port: $STATUS"
BACKEND_URL=http://127.0.0.1:$INSTANCE_PORT
# The instance's network namespace (/proc/PID/ns/net); empty when it shares the host's.
NETNS=$(grep -o '"instance":{[^}]*}' <<<"$STATUS" | grep -o '"netns":"[^"]*"' | cut -d'"' -f4) || true
if [[ -n $NETNS ]]; then
    [[ $(id -u) = 0 ]] || die "the instance runs in a network namespace of its own ($NETNS): run as root to enter it"
    nsenter --net="$NETNS" true || die "cannot enter the instance's network namespace $NETNS"
    echo "the instance is in network namespace $NETNS: direct and nginx load run inside it" >&2
fi
# The prefix that runs a command in the instance's network namespace (none without one).
# nsenter --net does not fork: it enters the namespace and execs the command, so a command
# started in the background with it is that command's pid ($! is nginx's, not nsenter's).
IN_NS=()
[[ -z $NETNS ]] || IN_NS=(nsenter --net="$NETNS")
# Runs a command where target $1 is reached: tovuk (the router) on the host, direct and the
# nginx proxies in the instance's network namespace. (Not for background commands: a
# function run with & is a subshell, and $! would be its pid.)
at() { # target name, command...
    local name=$1
    shift
    if [[ $name = tovuk ]]; then "$@"; else "${IN_NS[@]}" "$@"; fi
}

# --- nginx as a keep-alive reverse proxy to the same instance ----------------------------
# One nginx per worker count, each with its own directory and port, all running for the
# whole run (an idle nginx only waits in epoll), next to the instance: in its network
# namespace when it has one. By default 1 and auto (one per core): on a few cores shared
# with wrk and the backend one worker can beat auto, so both are run and tovuk is compared
# with the better.
if [[ -n $NGINX_WORKERS ]]; then NGINX_COUNTS=("$NGINX_WORKERS"); else NGINX_COUNTS=(1 auto); fi
NGINX_TARGETS=()
declare -A PROXY_URL PROXY_DIR_OF PROXY_PIDVAR
start_proxy() { # index (1, 2), worker_processes
    local name=nginx-$2 dir=$TMP/nginx-proxy-$2 port
    port=$(free_port "$NETNS")
    NGINX_TARGETS+=("$name")
    PROXY_URL[$name]=http://127.0.0.1:$port
    PROXY_DIR_OF[$name]=$dir
    PROXY_PIDVAR[$name]=PROXY$1_PID
    mkdir -p "$dir"
    # Host and X-Forwarded-* are set because the tovuk router sets them too.
    cat >"$dir/nginx.conf" <<EOF
worker_processes $2;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    keepalive_requests 1000000;
    upstream backend {
        server 127.0.0.1:$INSTANCE_PORT;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
EOF
    "${IN_NS[@]}" "$NGINX" -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;' >"$dir/stdout.log" 2>&1 &
    printf -v "PROXY$1_PID" '%s' "$!"
}
for ((i = 0; i < ${#NGINX_COUNTS[@]}; i++)); do start_proxy $((i + 1)) "${NGINX_COUNTS[i]}"; done

# Every target must answer the backend's file before it is loaded.
check_target() { # name, url, [Host header]
    local body=
    for _ in $(seq 100); do
        body=$(at "$1" curl -sf --max-time 2 ${3:+-H "Host: $3"} "$2/") && [[ $body = "$EXPECTED_BODY" ]] && return 0
        sleep 0.1
    done
    [[ -z ${PROXY_DIR_OF[$1]:-} ]] || cat "${PROXY_DIR_OF[$1]}/error.log" >&2 2>/dev/null || true
    die "$1 ($2) does not answer the backend's index.html; last body: '$body'"
}
check_target tovuk "$ROUTER_URL" "$APP.localhost"
check_target direct "$BACKEND_URL"
for name in "${NGINX_TARGETS[@]}"; do check_target "$name" "${PROXY_URL[$name]}"; done

# --- load ---------------------------------------------------------------------------
# CPU time (clock ticks, user + system, all threads) of the proxy in front of the instance:
# the tovuk server process, or the nginx master and its workers. 0 for direct.
proxy_ticks() { # name
    local pids=() pid total=0 ticks master
    case $1 in
    tovuk) pids=("$SERVER_PID") ;;
    nginx-*)
        master=${PROXY_PIDVAR[$1]}
        master=${!master}
        mapfile -t pids < <(echo "$master"; ps -o pid= --ppid "$master" | tr -d ' ')
        ;;
    *) echo 0; return ;;
    esac
    for pid in "${pids[@]}"; do
        ticks=$(proc_ticks "$pid" 2>/dev/null) || continue
        total=$((total + ticks))
    done
    echo "$total"
}

declare -A RPS P99 P50 CPU ERRORS
# One wrk run against target $1; appends req/s (x100), p50 and p99 (µs), the proxy's CPU
# time per request (ns) and errors (lib.sh's wrk_record).
load() { # name, url, [Host header], label
    local name=$1 url=$2 host=$3 label=$4 report ticks0 ticks1
    report=$TMP/wrk-$name-$label.txt
    ticks0=$(proxy_ticks "$name")
    at "$name" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency ${host:+-H "Host: $host"} "$url/" >"$report" 2>&1 ||
        { cat "$report" >&2; die "wrk against $name failed"; }
    ticks1=$(proxy_ticks "$name")
    wrk_record "$name" "$report" "$name" $((ticks1 - ticks0))
}
run_target() { # name, label
    case $1 in
    tovuk) load tovuk "$ROUTER_URL" "$APP.localhost" "$2" ;;
    direct) load direct "$BACKEND_URL" "" "$2" ;;
    nginx-*) load "$1" "${PROXY_URL[$1]}" "" "$2" ;;
    esac
}

TARGETS=(tovuk direct "${NGINX_TARGETS[@]}")
echo "warm-up: 2 s of load on each target ..." >&2
wrk_warm_up run_target "${TARGETS[@]}"

echo "timing $RUNS runs of wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s per target ..." >&2
for ((run = 1; run <= RUNS; run++)); do
    order=("${TARGETS[@]}")
    if ((run % 2 == 0)); then
        order=()
        for ((i = ${#TARGETS[@]} - 1; i >= 0; i--)); do order+=("${TARGETS[i]}"); done
    fi
    line=
    for name in "${order[@]}"; do
        run_target "$name" "$run"
        line+="   $name $LAST"
    done
    printf '  run %d/%d:%s\n' "$run" "$RUNS" "$line" >&2
done

# --- figures (median, ms2, ratio: lib.sh) ---------------------------------------------

declare -A M_RPS M_P50 M_P99 M_CPU
for name in "${TARGETS[@]}"; do
    # shellcheck disable=SC2086
    M_CPU[$name]=$(median ${CPU[$name]})
    # shellcheck disable=SC2086 # the lists are space-separated numbers
    M_RPS[$name]=$(median ${RPS[$name]})
    # shellcheck disable=SC2086
    M_P50[$name]=$(median ${P50[$name]})
    # shellcheck disable=SC2086
    M_P99[$name]=$(median ${P99[$name]})
done
# nginx at its best: the higher median req/s and, apart, the lower median p99 of the worker
# counts run (possibly two different counts).
BEST_RPS=${NGINX_TARGETS[0]} BEST_P99=${NGINX_TARGETS[0]}
for name in "${NGINX_TARGETS[@]}"; do
    if ((M_RPS[$name] > M_RPS[$BEST_RPS])); then BEST_RPS=$name; fi
    if ((M_P99[$name] < M_P99[$BEST_P99])); then BEST_P99=$name; fi
done
if awk -v a="${M_RPS[tovuk]}" -v b="${M_RPS[$BEST_RPS]}" -v g="$GOAL_RPS" 'BEGIN { exit !(a >= g * b) }'; then
    rps_verdict="met"
else
    rps_verdict="NOT met"
fi
if ((M_P99[tovuk] <= M_P99[$BEST_P99])); then p99_verdict="met"; else p99_verdict="NOT met"; fi

echo
echo "router: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency, GET / (a $(wc -c <"$WORK/public/index.html")-byte file from nginx, 1 worker, in the sandbox); median of $RUNS runs"
where="direct and nginx on the host (the instance shares the host's network)"
[[ -z $NETNS ]] || where="direct and nginx in the instance's network namespace"
VERSION_SUFFIX="; $where" bench_version_line "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')" "$(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
echo
printf '%-44s %5s %10s %10s %10s %12s %8s\n' "" runs "req/s" p50 p99 "proxy CPU" errors
label_of() {
    case $1 in
    tovuk) echo "tovuk router -> instance" ;;
    direct) echo "direct to the instance (ceiling)" ;;
    nginx-1) echo "nginx keep-alive proxy, 1 worker" ;;
    nginx-auto) echo "nginx keep-alive proxy, auto ($(nproc) workers)" ;;
    nginx-*) echo "nginx keep-alive proxy, ${1#nginx-} workers" ;;
    esac
}
for name in "${TARGETS[@]}"; do
    cpu=-
    [[ $name = direct ]] || cpu="$(awk -v n="${M_CPU[$name]}" 'BEGIN { printf "%.1f", n / 1000 }') us/req"
    printf '%-44s %5d %10s %10s %10s %12s %8d\n' "$(label_of "$name")" "$RUNS" \
        "$(awk -v r="${M_RPS[$name]}" 'BEGIN { printf "%.0f", r / 100 }')" \
        "$(ms2 "${M_P50[$name]}") ms" "$(ms2 "${M_P99[$name]}") ms" "$cpu" "${ERRORS[$name]}"
done
short_of() { # "nginx-1" -> "1 worker", "nginx-auto" -> "auto", "nginx-4" -> "4 workers"
    case $1 in
    nginx-1) echo "1 worker" ;;
    nginx-auto) echo auto ;;
    *) echo "${1#nginx-} workers" ;;
    esac
}
printf '%-44s %5s %10s %10s %10s   goal >= %.2fx: %s\n' "tovuk / best nginx ($(short_of "$BEST_RPS")), req/s" "" \
    "$(ratio "${M_RPS[tovuk]}" "${M_RPS[$BEST_RPS]}")" "" "" "$GOAL_RPS" "$rps_verdict"
printf '%-44s %5s %10s %10s %10s   goal <= 1.00x: %s\n' "tovuk / best nginx ($(short_of "$BEST_P99")), p99" "" "" "" \
    "$(ratio "${M_P99[tovuk]}" "${M_P99[$BEST_P99]}")" "$p99_verdict"
printf '%-44s %5s %10s %10s %10s\n' "tovuk / direct, req/s and p99" "" \
    "$(ratio "${M_RPS[tovuk]}" "${M_RPS[direct]}")" "" "$(ratio "${M_P99[tovuk]}" "${M_P99[direct]}")"
for name in "${NGINX_TARGETS[@]}"; do
    printf '%-44s %5s %10s %10s %10s\n' "nginx ($(short_of "$name")) / direct, req/s and p99" "" \
        "$(ratio "${M_RPS[$name]}" "${M_RPS[direct]}")" "" "$(ratio "${M_P99[$name]}" "${M_P99[direct]}")"
done
