#!/usr/bin/env bash
# push-to-live: how long from `git push` of a trivial web app until the router answers
# with the NEW version, beside the same change deployed with `tovuk deploy` (an upload of
# the directory) and the app's own start measured by hand in the same run (the same Perl
# server started directly with PORT, polled until it answers).
#
# Anchor (issue): median push -> first 200 of the new version through the router < 1.5 s,
# and the platform's share (that median minus the median by-hand app start) < 500 ms; the
# same goals for the upload, which should be claimed as fast as a push.
# This prints figures; it never fails because a goal was missed.
#
# Usage: bench/push-to-live.sh              (builds target/release/tovuk first)
#        TOVUK_BIN=/path/to/tovuk RUNS=20 bench/push-to-live.sh
# Env:   TOVUK_BIN   use this binary instead of running `cargo build --release`
#        RUNS        timed pushes, uploads and by-hand starts (default 10 each)
#        BENCH_KEEP  1 keeps the temp dir (server log, repo, push logs) and prints where it is
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-10}
GOAL_TOTAL_MS=1500
GOAL_SHARE_MS=500
POLL_MS=10 # how often the router (and the by-hand app) is polled
POLL_S=$(printf "0.%03d" "$POLL_MS")
LIVE_TIMEOUT_S=60
APP=benchlive

bench_positive_ints RUNS
command -v git >/dev/null || die "git is needed (Debian: apt-get install git)"
command -v perl >/dev/null || die "perl is needed for the app (Debian: apt-get install perl)"
command -v bwrap >/dev/null || die "bubblewrap is needed by the builder and runner (Debian: apt-get install bubblewrap)"
date -u -d 2026-01-01T00:00:00.123Z +%s%3N >/dev/null 2>&1 || die "GNU date is needed to read timestamps (Debian: apt-get install coreutils)"
[[ -n ${EPOCHREALTIME:-} ]] || die "bash 5+ is needed (EPOCHREALTIME)"

bench_binary
bench_tmp HAND_PID:5
bench_isolate_env

# One clock for everything the script times: bash's EPOCHREALTIME (now_us in lib.sh). The
# server's timestamps (ms, same machine, same clock) are compared with it for the breakdown.

# Polls sleep without forking and GET over bash's /dev/tcp (lib.sh's nap and http_get).
nap_open

# --- the platform ------------------------------------------------------------------
bench_start_server
bench_router_url
ROUTER_ADDR=${ROUTER_URL#http://}
bench_create_app "$APP" "$TMP/app.json"

# --- the app: the Perl server of the end-to-end tests, answering /health at once ----------
WORK=$TMP/app
git init -q -b main "$WORK"
write_manifest "$WORK" "$APP" "perl server.pl" 30s
write_app() { # version
    cat >"$WORK/server.pl" <<EOF
use IO::Socket::INET;
my \$s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => \$ENV{PORT}, Listen => 64, ReuseAddr => 1) or die "cannot listen: \$!";
\$| = 1; print "listening on \$ENV{PORT}\\n";
while (my \$c = \$s->accept) {
  my \$req = <\$c>;
  next unless defined \$req;
  while (my \$l = <\$c>) { last if \$l =~ /^\\r?\\n\$/ }
  my (\$path) = \$req =~ m{^\\S+ (\\S+)};
  my (\$status, \$body) = \$path eq "/health" ? ("200 OK", "health") : ("200 OK", "hello $1\\n");
  print \$c "HTTP/1.1 \$status\\r\\nContent-Length: " . length(\$body) . "\\r\\nConnection: close\\r\\n\\r\\n\$body";
  close \$c;
}
EOF
}
write_app r0
git -C "$WORK" add -A
git -C "$WORK" commit -q -m "trivial perl app"
git -C "$WORK" remote add platform "$PLATFORM_REMOTE"

# Polls the router every POLL_S until it answers 200 with "hello $1"; sets LIVE_US (the
# script clock when it did). Dies after LIVE_TIMEOUT_S.
wait_live() { # version, label, deploy id
    poll_until_body "$ROUTER_ADDR" "$APP.localhost" "hello $1"$'\n' "$POLL_S" "$LIVE_TIMEOUT_S" && return 0
    load_deploy "$3"
    tail -20 "$TMP/server.log" >&2
    die "$2: the router did not serve '$1' within $LIVE_TIMEOUT_S s (deploy $3 is '$(deploy_state)', last answer $HTTP_STATUS)"
}
# Waits until the deploy has a `running` state change (the runner reports it right after
# switching the route, so the router may answer first). Leaves it loaded.
wait_running() { # deploy id, label
    local state
    for _ in $(seq 600); do
        load_deploy "$1"
        state=$(deploy_state)
        [[ $state = running ]] && return 0
        [[ $state = failed || $state = cancelled ]] && die "$2: deploy $1 ended '$state': $SHOW"
        sleep 0.05
    done
    die "$2: deploy $1 is not running after 30 s"
}

# --- the three sides of one run ----------------------------------------------------------
# Per way (push, upload): the total and its breakdown, in µs.
P_TOTAL=() P_PUSH=() P_BUILD=() P_CLAIM=() P_GOLIVE=() P_SPAWN=() P_UP=()
U_TOTAL=() U_PUSH=() U_BUILD=() U_CLAIM=() U_GOLIVE=() U_SPAWN=() U_UP=()
H_START=()
# One deploy of a one-line change: `git push` of a new commit (push), or `tovuk deploy` of
# the work tree with that change (upload; committed too, so the next push is one change).
platform_run() { # push|upload, run, version
    local way=$1 run=$2 version=$3 log=$TMP/$1-$2.log start pushed dep queued ready deploying started_ms started_at instance kind
    local x=P # the arrays it appends to: P_* for a push, U_* for an upload
    [[ $way = upload ]] && x=U
    local -n total=${x}_TOTAL push=${x}_PUSH build=${x}_BUILD claim=${x}_CLAIM
    local -n golive=${x}_GOLIVE spawn=${x}_SPAWN up=${x}_UP
    write_app "$version"
    git -C "$WORK" commit -q -a -m "bench run $run ($way)"
    start=$(now_us)
    if [[ $way = push ]]; then
        git -C "$WORK" push -o detach platform main >"$log" 2>&1 || { cat "$log" >&2; die "run $run: the push to tovuk failed"; }
    else
        (cd "$WORK" && "$BIN" deploy) >"$log" 2>&1 || { cat "$log" >&2; die "run $run: tovuk deploy failed"; }
    fi
    pushed=$(now_us)
    dep=$(queued_dep "$log")
    [[ -n $dep ]] || { cat "$log" >&2; die "run $run: the $way did not report a queued deploy"; }
    wait_live "$version" "run $run ($way)" "$dep"
    wait_running "$dep" "run $run ($way)"
    kind=$(grep -o '"source":{"kind":"[a-z]*"' <<<"$SHOW" | cut -d'"' -f6)
    if [[ $way = push ]]; then
        [[ $kind = git && $(grep -o '"sha":"[0-9a-f]*"' <<<"$SHOW" | head -1 | cut -d'"' -f4) = "$(git -C "$WORK" rev-parse HEAD)" ]] ||
            die "run $run: deploy $dep is not for the pushed HEAD"
    else
        [[ $kind = archive ]] || die "run $run: deploy $dep is not an upload (source kind '$kind')"
    fi
    queued=$(entered_ms queued)
    ready=$(entered_ms artifact_ready)
    deploying=$(entered_ms deploying)
    instance=$("$BIN" app status "$APP" --json | tr -d ' \n\t' | grep -o '"instance":{[^}]*}')
    [[ $instance = *"\"deploy_id\":\"$dep\""* ]] || die "run $run: tovuk app status shows another instance: $instance"
    started_at=$(grep -o '"started_at":"[^"]*"' <<<"$instance" | cut -d'"' -f4)
    [[ -n $started_at ]] || die "run $run: tovuk app status has no instance start time"
    started_ms=$(date -u -d "$started_at" +%s%3N)
    total+=($((LIVE_US - start)))
    push+=($((pushed - start)))
    build+=($(((ready - queued) * 1000)))
    claim+=($(((deploying - ready) * 1000)))
    golive+=($((LIVE_US - deploying * 1000)))
    spawn+=($(((started_ms - deploying) * 1000)))
    up+=($((LIVE_US - started_ms * 1000)))
}

# By hand: the same server.pl started directly (no sandbox) with PORT, polled every POLL_S
# until /health answers 200.
hand_run() {
    local run=$1 port start t deadline
    port=$(free_port)
    t=${EPOCHREALTIME/[.,]/}
    start=$((10#$t))
    PORT=$port perl "$WORK/server.pl" >"$TMP/hand-$run.log" 2>&1 &
    HAND_PID=$!
    deadline=$((start + 10 * 1000000))
    while :; do
        http_get "127.0.0.1:$port" localhost /health
        t=${EPOCHREALTIME/[.,]/}
        [[ $HTTP_STATUS = 200 ]] && break
        ((10#$t < deadline)) || { cat "$TMP/hand-$run.log" >&2; die "run $run: the app started by hand did not answer within 10 s"; }
        nap "$POLL_S"
    done
    H_START+=($((10#$t - start)))
    stop_pid "$HAND_PID" 5
    HAND_PID=
}

# --- warm-up: the first deploy and one by-hand start, untimed -----------------------------
echo "warm-up: first deploy of $APP, one upload and one by-hand start ..." >&2
git -C "$WORK" push -o detach platform main >"$TMP/push-warmup.log" 2>&1 || { cat "$TMP/push-warmup.log" >&2; die "the warm-up push failed"; }
warm_dep=$(queued_dep "$TMP/push-warmup.log")
[[ -n $warm_dep ]] || { cat "$TMP/push-warmup.log" >&2; die "the warm-up push did not report a queued deploy"; }
wait_live r0 warm-up "$warm_dep"
wait_running "$warm_dep" warm-up
platform_run upload warmup r0-upload
hand_run warmup
P_TOTAL=() P_PUSH=() P_BUILD=() P_CLAIM=() P_GOLIVE=() P_SPAWN=() P_UP=()
U_TOTAL=() U_PUSH=() U_BUILD=() U_CLAIM=() U_GOLIVE=() U_SPAWN=() U_UP=()
H_START=()

# --- timed runs: a new version per deploy, the three sides in turn -----------------------
# Which side goes first rotates, so machine noise hits each side alike.
echo "timing $RUNS pushes, $RUNS uploads and $RUNS by-hand starts ..." >&2
SIDES=(push upload hand)
for ((run = 1; run <= RUNS; run++)); do
    for ((i = 0; i < 3; i++)); do
        case ${SIDES[(run - 1 + i) % 3]} in
        push) platform_run push "$run" "r$run-push" ;;
        upload) platform_run upload "$run" "r$run-upload" ;;
        hand) hand_run "$run" ;;
        esac
    done
    printf '  run %2d/%d: push -> live %7s ms (push %s, build %s, claim %s, deploying -> live %s)\n' \
        "$run" "$RUNS" "$(ms "${P_TOTAL[-1]}")" "$(ms "${P_PUSH[-1]}")" "$(ms "${P_BUILD[-1]}")" \
        "$(ms "${P_CLAIM[-1]}")" "$(ms "${P_GOLIVE[-1]}")" >&2
    printf '          upload -> live %7s ms (upload %s, build %s, claim %s, deploying -> live %s)   by hand %6s ms\n' \
        "$(ms "${U_TOTAL[-1]}")" "$(ms "${U_PUSH[-1]}")" "$(ms "${U_BUILD[-1]}")" \
        "$(ms "${U_CLAIM[-1]}")" "$(ms "${U_GOLIVE[-1]}")" "$(ms "${H_START[-1]}")" >&2
done

h_med=$(median "${H_START[@]}")
# Prints the two goal lines for one way to deploy.
verdicts() { # label, totals...
    local label=$1 t_med share total_verdict share_verdict
    shift
    t_med=$(median "$@")
    share=$((t_med - h_med))
    if ((t_med < GOAL_TOTAL_MS * 1000)); then total_verdict="met"; else total_verdict="NOT met"; fi
    if ((share < GOAL_SHARE_MS * 1000)); then share_verdict="met"; else share_verdict="NOT met"; fi
    printf '%-46s %5s %10s   goal < %d ms: %s\n' "total, $label (median)" "" "$(ms "$t_med") ms" "$GOAL_TOTAL_MS" "$total_verdict"
    printf '%-46s %5s %10s   goal < %d ms: %s\n' "platform share, $label (median - floor)" "" "$(ms "$share") ms" \
        "$GOAL_SHARE_MS" "$share_verdict"
}

echo
echo "push -> live: a one-line change, git push or tovuk deploy (upload) -> first 200 of the new version through the router"
VERSION_SUFFIX="; polls every $POLL_MS ms" bench_version_line "$(git --version)" "perl $(perl -e 'printf "%vd", $^V')"
echo
printf '%-46s %5s %10s %10s %10s\n' "" runs median p90 min
row "tovuk push -> first 200 of new version" "${P_TOTAL[@]}"
row "  git push (until git returns; queued)" "${P_PUSH[@]}"
row "  queued -> artifact_ready (claim + build)" "${P_BUILD[@]}"
row "  artifact_ready -> deploying (runner claim)" "${P_CLAIM[@]}"
row "  deploying -> first 200 of new version" "${P_GOLIVE[@]}"
row "    deploying -> instance started (server)" "${P_SPAWN[@]}"
row "    instance started -> first 200" "${P_UP[@]}"
row "tovuk upload -> first 200 of new version" "${U_TOTAL[@]}"
row "  tovuk deploy (until it returns; queued)" "${U_PUSH[@]}"
row "  queued -> artifact_ready (claim + build)" "${U_BUILD[@]}"
row "  artifact_ready -> deploying (runner claim)" "${U_CLAIM[@]}"
row "  deploying -> first 200 of new version" "${U_GOLIVE[@]}"
row "    deploying -> instance started (server)" "${U_SPAWN[@]}"
row "    instance started -> first 200" "${U_UP[@]}"
row "by hand: perl server.pl -> first 200 (floor)" "${H_START[@]}"
verdicts "git push" "${P_TOTAL[@]}"
verdicts "upload" "${U_TOTAL[@]}"
