#!/usr/bin/env bash
# recovery: three apps under constant load through the router, then `kill -9` of
# `tovuk server` and a start on the same data dir and ports. The apps' instances outlive
# the server (the runner adopts them) and so do its listening sockets (the listener keeper
# holds them): connections made while no server runs wait in the backlog until the new
# server accepts. What fails is what the killed process was answering at that moment. Printed beside the same load through nginx in front of the same
# app instances, with nginx killed (-9) and started again the same way.
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
bench_need_wrk_nginx

bench_binary
bench_tmp LOAD_PID:5 NGINX_PID:5
bench_isolate_env
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
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

for app in "${APPS[@]}"; do
    bench_create_app "$app" "$TMP/$app.json"
    work=$TMP/$app
    git init -q -b main "$work"
    mkdir -p "$work/public"
    write_manifest "$work" "$app" "sh start.sh" 30s
    write_nginx_app "$work"
    printf 'hello %s\n' "$app" >"$work/public/index.html"
    git -C "$work" add -A
    git -C "$work" commit -q -m "$app"
    git -C "$work" push -q "$PLATFORM_REMOTE" main 2>"$TMP/push-$app.log" || { cat "$TMP/push-$app.log" >&2; die "push of $app failed"; }
done
for app in "${APPS[@]}"; do
    for _ in $(seq 600); do
        curl -sf --max-time 1 -H "Host: $app.localhost" "http://127.0.0.1:$ROUTER_PORT/" >/dev/null && continue 2
        sleep 0.05
    done
    die "$app never served"
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

# nginx in front of the same instances (their ports from the runner's records).
NGINX_PORT=$(free_port)
mkdir -p "$TMP/nginx"
{
    echo "worker_processes 1; pid $TMP/nginx/nginx.pid; error_log $TMP/nginx/error.log; daemon off;"
    echo "events { worker_connections 4096; }"
    echo "http { access_log off; client_body_temp_path $TMP/nginx/body; proxy_temp_path $TMP/nginx/proxy;"
    echo "  fastcgi_temp_path $TMP/nginx/fcgi; uwsgi_temp_path $TMP/nginx/uwsgi; scgi_temp_path $TMP/nginx/scgi;"
    for record in "$TMP"/data/instances/*/instance.json; do
        app=$(grep -o '"app": *"[^"]*"' "$record" | cut -d'"' -f4)
        port=$(grep -o '"port": *[0-9]*' "$record" | grep -o '[0-9]*$')
        echo "  server { listen 127.0.0.1:$NGINX_PORT; server_name $app.localhost; location / { proxy_pass http://127.0.0.1:$port; } }"
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
echo "apps' instances survived the server's restart: $(ls "$TMP"/data/instances | wc -l) of ${#APPS[@]} still recorded"
NON2XX=$(awk '{ s += $4 } END { print s + 0 }' "$TMP/tovuk.txt")
echo "non-2xx answers for the apps across the tovuk restart: $NON2XX   goal 0: $([[ $NON2XX = 0 ]] && echo met || echo 'NOT met')"
