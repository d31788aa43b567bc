#!/usr/bin/env bash
# density: many small apps on one machine. Deploys APPS small web apps (a perl server each,
# in its sandbox and control group), checks that every one answers through the router, then
# measures the platform process while idle: its CPU over IDLE seconds (the usage sampler,
# the health probes, the reconcile loops) and its resident memory per app.
#
# Anchor (issue): at 200 apps the platform burned a full core while idle (the sampler read
# /proc of every process for every instance) and held ~250 KB per app. Goal: idle CPU < 2 %
# of one core and < 200 KB per app at 200 apps. Printed; this never fails on a missed goal.
#
# Usage: bench/density.sh          (builds target/release/tovuk first)
# Env:   TOVUK_BIN   use this binary instead of running `cargo build --release`
#        APPS        how many apps (default 200); IDLE seconds measured idle (default 30)
#        HEALTH_INTERVAL  the apps' [health] interval (default 2s, the contract's default):
#                    liveness probes go on at it for each app's whole life
#        BENCH_KEEP  1 keeps the temp dir
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

APPS=${APPS:-200}
IDLE=${IDLE:-30}
HEALTH_INTERVAL=${HEALTH_INTERVAL:-2s}
bench_positive_ints APPS IDLE
command -v git >/dev/null || die "git is needed (Debian: apt-get install git)"
command -v curl >/dev/null || die "curl is needed (Debian: apt-get install curl)"
command -v perl >/dev/null || die "perl is needed for the apps (Debian: apt-get install perl)"

bench_binary
bench_tmp
bench_isolate_env
bench_start_server
bench_router_url
ROUTER=$ROUTER_URL

# CPU ticks (user + system) and resident kB of the server process.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status"; }
TICKS_PER_SECOND=$(getconf CLK_TCK)

sleep 2
RSS_EMPTY=$(rss_kb)

echo "deploying $APPS apps ..." >&2
APP_DIR=$TMP/app
git init -q -b main "$APP_DIR"
cat >"$APP_DIR/server.pl" <<'PERL'
use IO::Socket::INET;
my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ENV{PORT}, Listen => 16, ReuseAddr => 1) or die "cannot listen: $!";
while (my $c = $s->accept) {
  my $req = <$c>;
  while (my $l = <$c>) { last if $l =~ /^\r?\n$/ }
  print $c "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
  close $c;
}
PERL
started=$(date +%s)
for n in $(seq -w 1 "$APPS"); do
    app="d$n"
    bench_create_app "$app" "$TMP/create.json"
    write_manifest "$APP_DIR" "$app" "perl server.pl" 60s
    printf 'interval = "%s"\n\n[limits]\nmemory_mb = 32\n' "$HEALTH_INTERVAL" >>"$APP_DIR/tovuk.toml"
    git -C "$APP_DIR" add -A
    git -C "$APP_DIR" commit -q -m "$app" --allow-empty
    git -C "$APP_DIR" push -q -o detach "$PLATFORM_REMOTE" main:main 2>"$TMP/push.log" || { cat "$TMP/push.log" >&2; die "push of $app failed"; }
done
echo "pushed in $(($(date +%s) - started)) s; waiting for every app to answer ..." >&2
answering=0
for n in $(seq -w 1 "$APPS"); do
    for _ in $(seq 600); do
        if curl -sf --max-time 2 -H "Host: d$n.localhost" "$ROUTER/" >/dev/null; then
            answering=$((answering + 1))
            continue 2
        fi
        sleep 0.1
    done
done

echo "measuring the platform idle for $IDLE s ..." >&2
sleep 5
before=$(cpu_ticks)
sleep "$IDLE"
after=$(cpu_ticks)
RSS_FULL=$(rss_kb)
idle_pct=$(awk -v t=$((after - before)) -v hz="$TICKS_PER_SECOND" -v s="$IDLE" 'BEGIN { printf "%.2f", 100 * t / hz / s }')
per_app_kb=$(awk -v full="$RSS_FULL" -v empty="$RSS_EMPTY" -v n="$APPS" 'BEGIN { printf "%.0f", (full - empty) / n }')
cgroup=$("$BIN" status --json | grep -o '"cgroup": *"[a-z0-9]*"' | cut -d'"' -f4 || true)

echo
echo "density: $APPS small web apps (perl, memory_mb = 32, health probed every $HEALTH_INTERVAL), idle platform measured over $IDLE s"
bench_version_line
echo "control groups: ${cgroup:-unknown}"
echo
printf '%-34s %12s %14s\n' "" "this run" "goal"
printf '%-34s %12s %14s\n' "apps answering through the router" "$answering/$APPS" "all"
printf '%-34s %11s%% %14s\n' "platform CPU while idle (1 core)" "$idle_pct" "< 2 %"
printf '%-34s %9s KB %14s\n' "platform memory per app" "$per_app_kb" "< 200 KB"
printf '%-34s %9s KB\n' "platform memory, no apps" "$RSS_EMPTY"
printf '%-34s %9s KB\n' "platform memory, $APPS apps" "$RSS_FULL"
echo
echo "anchor (issue, before control groups): a full core while idle, ~250 KB per app at 200 apps"
