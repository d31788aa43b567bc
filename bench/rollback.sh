#!/usr/bin/env bash
# rollback: how long `tovuk rollback APP` takes to bring the previous version back, with no
# build: from the command until the router first answers with that version, and the
# platform's share of it (the rollback deploy's `artifact_ready` to `running`, server clock).
#
# Anchor (issue): the previous version back in under a second of platform time.
# This prints figures; it never fails because a goal was missed.
#
# Usage: bench/rollback.sh                  (builds target/release/tovuk first)
#        TOVUK_BIN=/path/to/tovuk RUNS=20 bench/rollback.sh
# Env:   TOVUK_BIN   use this binary instead of running `cargo build --release`
#        RUNS        rollbacks (default 10), each back to the version before
#        BENCH_KEEP  1 keeps the temp dir
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-10}
GOAL_MS=1000
POLL_S=0.010
APP=benchback
bench_positive_ints RUNS
command -v git >/dev/null || die "git is needed (Debian: apt-get install git)"
command -v perl >/dev/null || die "perl is needed for the app (Debian: apt-get install perl)"
[[ -n ${EPOCHREALTIME:-} ]] || die "bash 5+ is needed (EPOCHREALTIME)"

bench_binary
bench_tmp
bench_isolate_env
nap_open
bench_start_server
bench_router_url
ROUTER_ADDR=${ROUTER_URL#http://}
bench_create_app "$APP" "$TMP/app.json"

WORK=$TMP/app
git init -q -b main "$WORK"
# min_healthy 0: each rollback settles at once, so the next one has the one before to go to.
write_manifest "$WORK" "$APP" "perl server.pl" 30s
printf 'min_healthy = "0s"\n' >>"$WORK/tovuk.toml"
write_app() { # version
    cat >"$WORK/server.pl" <<EOF
use IO::Socket::INET;
my \$s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => \$ENV{PORT}, Listen => 64, ReuseAddr => 1) or die "cannot listen: \$!";
while (my \$c = \$s->accept) {
  my \$req = <\$c>;
  next unless defined \$req;
  while (my \$l = <\$c>) { last if \$l =~ /^\\r?\\n\$/ }
  my \$body = "hello $1\\n";
  print \$c "HTTP/1.1 200 OK\\r\\nContent-Length: " . length(\$body) . "\\r\\nConnection: close\\r\\n\\r\\n\$body";
  close \$c;
}
EOF
}
git -C "$WORK" remote add platform "$PLATFORM_REMOTE"
for version in v1 v2; do
    write_app "$version"
    git -C "$WORK" add -A
    git -C "$WORK" commit -q -m "$version"
    git -C "$WORK" push platform main >"$TMP/push-$version.log" 2>&1 || { cat "$TMP/push-$version.log" >&2; die "the push of $version failed"; }
    grep -q "is running" "$TMP/push-$version.log" || { cat "$TMP/push-$version.log" >&2; die "$version did not run"; }
done

TOTAL=() PLATFORM=()
serving=v2
for ((run = 1; run <= RUNS; run++)); do
    want=$([[ $serving = v2 ]] && echo v1 || echo v2)
    start=$(now_us)
    answer=$("$BIN" rollback "$APP" --json) || die "run $run: tovuk rollback failed"
    id=$(grep -o '"id": *"dep_[0-9a-z]*"' <<<"$answer" | head -1 | grep -o 'dep_[0-9a-z]*')
    poll_until_body "$ROUTER_ADDR" "$APP.localhost" "hello $want"$'\n' "$POLL_S" 30 ||
        die "run $run: the router did not serve $want within 30 s (last answer $HTTP_STATUS)"
    TOTAL+=($((LIVE_US - start)))
    for _ in $(seq 600); do
        load_deploy "$id"
        [[ $(deploy_state) = running ]] && break
        nap 0.05
    done
    PLATFORM+=($((($(entered_ms running) - $(entered_ms artifact_ready)) * 1000)))
    echo "  run $run: back to $want in $(ms "${TOTAL[-1]}") ms (platform $(ms "${PLATFORM[-1]}") ms)" >&2
    serving=$want
    # The next rollback needs this one settled (min_healthy 0) to name the one before.
    nap 0.2
done

echo "rollback: tovuk rollback -> the router serves the previous version (no build)"
bench_version_line
echo
export ROW_WIDTH=46
printf '%-46s %5s %10s %10s %10s\n' "" runs median p90 min
row "tovuk rollback -> first 200 of that version" "${TOTAL[@]}"
row "platform: artifact_ready -> running" "${PLATFORM[@]}"
median_ms=$(($(median "${PLATFORM[@]}") / 1000))
verdict=$([[ $median_ms -lt $GOAL_MS ]] && echo met || echo "NOT met")
echo "platform time (median)                          ${median_ms} ms   goal < ${GOAL_MS} ms: $verdict"
