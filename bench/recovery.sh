#!/usr/bin/env bash
# recovery: three apps under constant load through the router, then `kill -9` of
# `tovuk server` and a start on the same data dir and ports. The apps' instances outlive
# the server (the runner adopts them) and so do its listening sockets (the listener keeper
# holds them): connections made while no server runs wait in the backlog until the new
# server accepts. What fails is what the killed process was answering at that moment.
# Printed beside the same load through nginx in front of the same three apps, with nginx
# killed (-9) and started again the same way.
#
# Each instance runs in a network namespace of its own (`.instance.netns` in
# `tovuk app status --json`), which from the host only the tovuk router reaches. So the two
# sides run on two servers from the same binary, one after the other:
#   tovuk: a server as usual (apps isolated, as users run it); load -> its router, and the
#          server is killed and restarted;
#   nginx: once the first server and its apps are stopped, a server started with
#          `--share-host-network` gets the same three commits; its instances listen on the
#          host's loopback, and one nginx (one worker, a server block per app) proxies to
#          them there; load -> nginx, and nginx is killed and restarted. That server only
#          hosts the apps: it is not in the path and is never killed.
# This keeps nginx's side what it was before isolation: one proxy process for all apps on
# the host, the same load generator on the host, the same backends; the isolation of the
# backends plays no part in how a proxy restart goes. (One nginx per app inside each app's
# namespace would instead compare one process against three, with the load split across
# namespaces.) The tovuk side keeps isolation on, so its restart includes re-adopting
# instances in namespaces. Nothing here enters a namespace (no nsenter, no root for that).
# The version line says whether tovuk's apps had namespaces (on a machine where the server
# cannot make them, they run on the host's network and the comparison still runs).
#
# Per app: requests, non-2xx answers, failed exchanges (refused/reset) and the longest gap
# between two successful answers.
# Anchor (issue): 0 non-2xx for the apps; print what is achieved, and nginx's figures.
# This prints figures; it never fails because a goal was missed.
#
# Usage: bench/recovery.sh        (builds target/release/tovuk first)
# Env:   TOVUK_BIN   use this binary instead of running `cargo build --release`
#        BEFORE      seconds of load before the kill (default 3); AFTER after it (default 5)
#        THREADS     load threads per app (default 2)
#        BENCH_KEEP  1 keeps the temp dir
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BEFORE=${BEFORE:-3}
AFTER=${AFTER:-5}
THREADS=${THREADS:-2}
APPS=(alpha beta gamma)
bench_positive_ints BEFORE AFTER THREADS
command -v git >/dev/null || die "git is needed (Debian: apt-get install git)"
command -v curl >/dev/null || die "curl is needed (Debian: apt-get install curl)"
command -v python3 >/dev/null || die "python3 is needed for the load (Debian: apt-get install python3)"
command -v perl >/dev/null || die "perl is needed (Debian: apt-get install perl)"
bench_need_wrk_nginx

bench_binary
bench_tmp LOAD_PID:5 NGINX_PID:5
bench_isolate_env
API_PORT=$(free_port)
ROUTER_PORT=$(free_port)

start_server() {
    rm -f "$TMP/data/server.json"
    "$BIN" server --data-dir "$TMP/data" --listen "127.0.0.1:$API_PORT" --router-listen "127.0.0.1:$ROUTER_PORT" \
        >>"$TMP/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 300); do
        [[ -s $TMP/data/server.json ]] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$TMP/server.log" >&2; die "the server exited while starting"; }
        sleep 0.01
    done
    die "the server did not start within 3 s"
}
start_server
API_URL="http://127.0.0.1:$API_PORT"
export TOVUK_URL=$API_URL
TOVUK_TOKEN=$(cat "$TMP/data/admin.token")
export TOVUK_TOKEN

# The three apps: nginx in the sandbox serving "hello <app>", one commit each.
for app in "${APPS[@]}"; do
    work=$TMP/$app
    git init -q -b main "$work"
    mkdir -p "$work/public"
    write_manifest "$work" "$app" "sh start.sh" 30s
    write_nginx_app "$work"
    printf 'hello %s\n' "$app" >"$work/public/index.html"
    git -C "$work" add -A
    git -C "$work" commit -q -m "$app"
done
# Creates and pushes the three apps on the server in TOVUK_URL (app JSON and push logs in
# DIR) and waits until its router (port) answers each.
deploy_apps() { # dir, router port
    local app
    for app in "${APPS[@]}"; do
        bench_create_app "$app" "$1/$app.json"
        git -C "$TMP/$app" push -q "$PLATFORM_REMOTE" main 2>"$1/push-$app.log" || { cat "$1/push-$app.log" >&2; die "push of $app failed"; }
    done
    for app in "${APPS[@]}"; do
        for _ in $(seq 600); do
            curl -sf --max-time 1 -H "Host: $app.localhost" "http://127.0.0.1:$2/" >/dev/null && continue 2
            sleep 0.05
        done
        die "$app never served"
    done
}
# `.instance.port` and `.instance.netns` (empty when none) of an app, from
# `tovuk app status --json` on the server in TOVUK_URL.
instance_of() { # app; sets INSTANCE_PORT, INSTANCE_NETNS
    local status instance
    status=$("$BIN" app status "$1" --json | tr -d ' \n\t') || die "tovuk app status $1 failed"
    instance=$(grep -o '"instance":{[^}]*}' <<<"$status") || die "tovuk app status $1 shows no instance: $status"
    INSTANCE_PORT=$(grep -o '"port":[0-9]*' <<<"$instance" | cut -d: -f2) || die "$1's instance has no port: $instance"
    INSTANCE_NETNS=$(grep -o '"netns":"[^"]*"' <<<"$instance" | cut -d'"' -f4) || true
}
deploy_apps "$TMP" "$ROUTER_PORT"
# Whether the tovuk side's apps are isolated (on a machine where the server cannot make
# namespaces they share the host's network; the comparison then still runs).
ISOLATED=0
for app in "${APPS[@]}"; do
    instance_of "$app"
    [[ -z $INSTANCE_NETNS ]] || ISOLATED=$((ISOLATED + 1))
done

# Runs the load through 127.0.0.1:$1 while $2 (a command) kills and restarts what listens there.
measure() { # port, restart command, report file
    rm -f "$TMP/stop"
    python3 "$ROOT/bench/recovery-load.py" "127.0.0.1:$1" "$TMP/stop" "$THREADS" "${APPS[@]}" >"$3" &
    LOAD_PID=$!
    sleep "$BEFORE"
    local started
    started=$(date +%s%N)
    eval "$2"
    RESTART_MS=$((($(date +%s%N) - started) / 1000000))
    sleep "$AFTER"
    touch "$TMP/stop"
    wait "$LOAD_PID" || die "the load generator failed"
    LOAD_PID=
}

echo "tovuk: ${BEFORE}s of load, kill -9 of the server, start again, ${AFTER}s of load ..." >&2
restart_tovuk() {
    kill -KILL "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    start_server
}
measure "$ROUTER_PORT" restart_tovuk "$TMP/tovuk.txt"
TOVUK_RESTART_MS=$RESTART_MS

SURVIVED=$(find "$TMP/data/instances" -mindepth 2 -maxdepth 2 -name instance.json | wc -l)

# The first server, its apps (they outlive a stopped server) and its listener keeper go, so
# the nginx side has the machine as the tovuk side had it.
stop_pid "$SERVER_PID" 15 "the server"
SERVER_PID=
bench_kill_apps "$TMP/data"
bench_stop_keepers "$TMP/data"

# The same three commits on a server with --share-host-network (its data in TMP/shared):
# instances on the host's loopback, where nginx reaches them. It stays up, untouched, while
# nginx is killed and restarted (SERVER_PID: stopped on exit).
echo "nginx: deploying the same apps on a server with --share-host-network ..." >&2
bench_start_server_in SERVER_PID "$TMP/shared" --share-host-network
API_URL=$STARTED_API_URL
export TOVUK_URL=$API_URL TOVUK_TOKEN=$STARTED_TOKEN
deploy_apps "$TMP/shared" "${STARTED_ROUTER_URL##*:}"

# nginx in front of those instances (their ports from `tovuk app status --json`).
NGINX_PORT=$(free_port)
mkdir -p "$TMP/nginx"
{
    echo "worker_processes 1; pid $TMP/nginx/nginx.pid; error_log $TMP/nginx/error.log; daemon off;"
    echo "events { worker_connections 4096; }"
    echo "http { access_log off; client_body_temp_path $TMP/nginx/body; proxy_temp_path $TMP/nginx/proxy;"
    echo "  fastcgi_temp_path $TMP/nginx/fcgi; uwsgi_temp_path $TMP/nginx/uwsgi; scgi_temp_path $TMP/nginx/scgi;"
    for app in "${APPS[@]}"; do
        instance_of "$app"
        [[ -z $INSTANCE_NETNS ]] || die "$app on the server with --share-host-network is in a network namespace of its own ($INSTANCE_NETNS)"
        echo "  server { listen 127.0.0.1:$NGINX_PORT; server_name $app.localhost; location / { proxy_pass http://127.0.0.1:$INSTANCE_PORT; } }"
    done
    echo "}"
} >"$TMP/nginx/nginx.conf"
start_nginx() {
    # A session of its own: the master and its worker are one process group, killed together.
    setsid /usr/sbin/nginx -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx" >>"$TMP/nginx/start.log" 2>&1 &
    NGINX_PID=$!
    for _ in $(seq 300); do
        curl -s --max-time 1 -o /dev/null "http://127.0.0.1:$NGINX_PORT/" && return 0
        sleep 0.01
    done
    die "nginx did not start"
}
# Kills nginx whole (master and worker, like a crash of the proxy), then starts it again.
# (A kill of the master alone leaves its worker serving on the inherited socket.)
stop_nginx() {
    kill -KILL -- "-$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
}
restart_nginx() {
    stop_nginx
    start_nginx
}
start_nginx
echo "nginx: the same load, kill -9 of nginx, start again ..." >&2
measure "$NGINX_PORT" restart_nginx "$TMP/nginx.txt"
NGINX_RESTART_MS=$RESTART_MS

stop_nginx
NGINX_PID=

echo
echo "recovery: ${THREADS} load threads per app, kill -9 after ${BEFORE}s, then ${AFTER}s"
if ((ISOLATED == ${#APPS[@]})); then
    where="tovuk's apps in network namespaces of their own"
elif ((ISOLATED == 0)); then
    where="tovuk's apps on the host's network (no namespaces on this machine)"
else
    where="$ISOLATED of tovuk's ${#APPS[@]} apps in network namespaces of their own"
fi
VERSION_SUFFIX="; $where, nginx's on a server with --share-host-network" \
    bench_version_line "$(/usr/sbin/nginx -v 2>&1 | sed 's|.*/||; s|^|nginx/|')"
echo
printf '%-18s %-6s %9s %9s %8s %8s %14s\n' "" app requests ok non-2xx failed "longest gap"
while read -r app requests ok non2xx errors gap; do
    printf '%-18s %-6s %9s %9s %8s %8s %11s ms\n' "tovuk (restart)" "$app" "$requests" "$ok" "$non2xx" "$errors" "$gap"
done <"$TMP/tovuk.txt"
while read -r app requests ok non2xx errors gap; do
    printf '%-18s %-6s %9s %9s %8s %8s %11s ms\n' "nginx (restart)" "$app" "$requests" "$ok" "$non2xx" "$errors" "$gap"
done <"$TMP/nginx.txt"
echo
echo "kill -9 to accepting again: tovuk ${TOVUK_RESTART_MS} ms, nginx ${NGINX_RESTART_MS} ms"
echo "apps' instances survived the server's restart: $SURVIVED of ${#APPS[@]} still recorded"
NON2XX=$(awk '{ s += $4 } END { print s + 0 }' "$TMP/tovuk.txt")
echo "non-2xx answers for the apps across the tovuk restart: $NON2XX   goal 0: $([[ $NON2XX = 0 ]] && echo met || echo 'NOT met')"
