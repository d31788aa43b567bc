#!/usr/bin/env bash
# isolation: what running each app instance in a network namespace of its own costs, in
# router throughput and in push-to-live time, measured against the same server with
# isolation turned off, same binary, same app, same run.
#
# Two `tovuk server`s run side by side from one binary, each with its own data dir:
#   isolated: started as usual; each instance gets a network namespace of its own
#             (bubblewrap --unshare-net), which the router and the health probes connect
#             into;
#   shared:   started with `--share-host-network`; instances listen on the host's loopback.
# The same commit of the same app (nginx serving a small static file inside the sandbox, as
# in router.sh) is deployed to each. Then:
#   router:       `wrk -t2 -c64 -d8s --latency` through each server's router with
#                 `Host: <app>.localhost`, the sides alternating, each run after a check that
#                 the router answers the backend's file;
#   push -> live: a new commit (the file names its version) pushed to each side in turn, timed
#                 from the start of `git push` until that side's router first answers 200 with
#                 the new version (polled every 10 ms over bash's /dev/tcp, as in
#                 push-to-live.sh); which side goes first alternates.
# With OUTBOUND=1 the app also declares capability `outbound-network`: on the isolated side
# each instance then also gets a route to the outside through pasta (Debian: passt); on the
# shared side it simply has the host's network.
#
# Anchor (issue): isolation costs < 5 % of router req/s (median, isolated vs shared) and
# < 20 ms of push-to-live (median isolated - median shared).
# This prints figures; it never fails because a goal was missed.
#
# Usage: bench/isolation.sh                 (builds target/release/tovuk first)
#        TOVUK_BIN=/path/to/tovuk RUNS=5 PUSHES=10 bench/isolation.sh
# Env:   TOVUK_BIN    use this binary instead of running `cargo build --release`
#        RUNS         wrk runs per side, alternating the order (default 3)
#        DURATION     seconds per wrk run (default 8)
#        CONNECTIONS  wrk connections (default 64); THREADS wrk threads (default 2)
#        PUSHES       timed pushes per side, alternating the order (default 5)
#        SETTLE       seconds to wait after each push (default 0): past the app's
#                     [health] min_healthy (5 s), the replaced instance is stopped before
#                     the next push instead of while it starts
#        OUTBOUND     1: the app declares `outbound-network` (pasta on the isolated side)
#        BENCH_KEEP   1 keeps the temp dir (server logs, wrk reports, push logs)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-3}
DURATION=${DURATION:-8}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
PUSHES=${PUSHES:-5}
SETTLE=${SETTLE:-0}
OUTBOUND=${OUTBOUND:-0}
GOAL_RPS_PCT=5    # isolation may cost less than this share of the median req/s
GOAL_PUSH_MS=20   # ... and add less than this to the median push -> live
POLL_MS=10        # how often the router is polled for the new version
POLL_S=$(printf "0.%03d" "$POLL_MS")
LIVE_TIMEOUT_S=60
APP=benchiso
SIDES=(iso shared)

bench_positive_ints RUNS DURATION CONNECTIONS THREADS PUSHES
[[ $OUTBOUND = 0 || $OUTBOUND = 1 ]] || die "OUTBOUND must be 0 or 1, not '$OUTBOUND'"
command -v git >/dev/null || die "git is needed (Debian: apt-get install git)"
command -v curl >/dev/null || die "curl is needed (Debian: apt-get install curl)"
command -v perl >/dev/null || die "perl is needed (Debian: apt-get install perl)"
command -v bwrap >/dev/null || die "bubblewrap is needed by the builder and runner (Debian: apt-get install bubblewrap)"
[[ $OUTBOUND = 0 ]] || command -v pasta >/dev/null || die "OUTBOUND=1 needs pasta (Debian: apt-get install passt)"
[[ -n ${EPOCHREALTIME:-} ]] || die "bash 5+ is needed (EPOCHREALTIME)"
bench_need_wrk_nginx

bench_binary
# Both servers are stopped on exit (lib.sh's SERVER_PID stays empty: there are two here).
bench_tmp SERVER_ISO_PID:15 SERVER_SHARED_PID:15
bench_isolate_env

# The polls of push -> live sleep without forking (lib.sh's nap).
nap_open

# --- two servers: isolated (as usual) and shared (--share-host-network) ------------------
declare -A DIR API TOKEN ROUTER PID SERVER_NAME
SERVER_NAME[iso]="the isolated server"
SERVER_NAME[shared]="the server with --share-host-network"
start_server() { # side, extra server flags...
    local side=$1 pidvar=SERVER_${1^^}_PID
    shift
    DIR[$side]=$TMP/$side
    bench_start_server_in "$pidvar" "${DIR[$side]}" "$@"
    PID[$side]=${!pidvar}
    API[$side]=$STARTED_API_URL
    ROUTER[$side]=$STARTED_ROUTER_URL
    TOKEN[$side]=$STARTED_TOKEN
}

start_server iso
start_server shared --share-host-network

# The isolated server must say it isolates instances (else there is nothing to compare).
iso_status=$(tv iso status --json | tr -d ' \n\t') || die "tovuk status failed on ${SERVER_NAME[iso]}"
if [[ $iso_status != *'"network_isolation":true'* ]]; then
    tv iso status >&2 || true
    die "${SERVER_NAME[iso]} does not run instances in a network namespace of their own on this machine: nothing to compare"
fi
if [[ $OUTBOUND = 1 && $iso_status != *'"outbound_isolation":true'* ]]; then
    tv iso status >&2 || true
    die "${SERVER_NAME[iso]} does not give outbound apps a namespace with pasta on this machine (OUTBOUND=1)"
fi

# --- the backend app: nginx inside the sandbox, one worker, a small static file ----------
WORK=$TMP/app
git init -q -b main "$WORK"
mkdir -p "$WORK/public"
write_manifest "$WORK" "$APP" "sh start.sh" 30s
if [[ $OUTBOUND = 1 ]]; then
    sed -i 's/^capabilities = \["http"\]$/capabilities = ["http", "outbound-network"]/' "$WORK/tovuk.toml"
    grep -q '"outbound-network"' "$WORK/tovuk.toml" || die "could not add outbound-network to the manifest"
fi
write_nginx_app "$WORK"
# The file names its version, so the router's answer tells which deploy serves.
write_index() { # version
    printf '<!doctype html>\n<title>%s</title>\n<p>hello %s</p>\n' "$APP" "$1" >"$WORK/public/index.html"
}
write_index v0
git -C "$WORK" add -A
git -C "$WORK" commit -q -m "nginx backend"
bench_create_app_on_sides

# `tovuk deploy show DEP --json` of one side, whitespace removed.
deploy_json() { # side, deploy id
    tv "$1" deploy show "$2" --json | tr -d ' \n\t'
}
# Waits until the deploy is `running` (dies if it ends otherwise).
wait_running() { # side, deploy id, label
    local state=
    for _ in $(seq 600); do
        state=$(deploy_json "$1" "$2" | grep -o '"state":"[a-z_]*","source"' | cut -d'"' -f4) || true
        [[ $state = running ]] && return 0
        [[ $state = failed || $state = cancelled ]] && break
        sleep 0.05
    done
    tv "$1" deploy show "$2" >&2 || true
    die "$3: deploy $2 on ${SERVER_NAME[$1]} is '$state', not running"
}
# Pushes main to one side; sets DEP to the deploy it queued.
DEP=
push() { # side, log file, label
    git -C "$WORK" push -o detach "$1" main >"$2" 2>&1 || { cat "$2" >&2; die "$3: the push to ${SERVER_NAME[$1]} failed"; }
    DEP=$(queued_dep "$2")
    [[ -n $DEP ]] || { cat "$2" >&2; die "$3: the push to ${SERVER_NAME[$1]} did not report a queued deploy"; }
}

for side in "${SIDES[@]}"; do
    echo "deploying the nginx backend as app $APP to ${SERVER_NAME[$side]} ..." >&2
    push "$side" "${DIR[$side]}/push-first.log" "first deploy"
    wait_running "$side" "$DEP" "first deploy"
done

# The instance of each side, from `tovuk app status --json`: the isolated one must be in a
# network namespace of its own (.instance.netns), the shared one in the host's.
declare -A NETNS
for side in "${SIDES[@]}"; do
    status=$(tv "$side" app status "$APP" --json | tr -d ' \n\t') || die "tovuk app status $APP failed on ${SERVER_NAME[$side]}"
    instance=$(grep -o '"instance":{[^}]*}' <<<"$status") || die "tovuk app status on ${SERVER_NAME[$side]} shows no instance: $status"
    NETNS[$side]=$(grep -o '"netns":"[^"]*"' <<<"$instance" | cut -d'"' -f4) || true
done
[[ -n ${NETNS[iso]} ]] || die "the instance on ${SERVER_NAME[iso]} has no network namespace of its own (no .instance.netns)"
[[ -z ${NETNS[shared]} ]] || die "the instance on ${SERVER_NAME[shared]} is in a network namespace of its own (${NETNS[shared]})"

# The router must answer the backend's file (retried while the route settles at startup).
EXPECTED_BODY=$(cat "$WORK/public/index.html")
for side in "${SIDES[@]}"; do check_router "$side" 100; done

# --- (a) router load ----------------------------------------------------------------------
# Each wrk run (lib.sh's load_router) appends req/s (x100), p50 and p99 (µs) and the
# server's CPU time per request (ns), and adds up errors.
declare -A RPS P50 P99 CPU ERRORS

echo "warm-up: 2 s of load on each router ..." >&2
wrk_warm_up load_router "${SIDES[@]}"

echo "timing $RUNS runs of wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s per side ..." >&2
for ((run = 1; run <= RUNS; run++)); do
    if ((run % 2)); then order=(iso shared); else order=(shared iso); fi
    line=
    for side in "${order[@]}"; do
        check_router "$side" 1
        load_router "$side" "$run"
        line+="   $side: $LAST"
    done
    printf '  run %d/%d:%s\n' "$run" "$RUNS" "$line" >&2
done

# --- (b) push -> live ---------------------------------------------------------------------
# Polls side $1's router every POLL_S until it answers 200 with the current index.html; sets
# LIVE_US (the script clock when it did). Dies after LIVE_TIMEOUT_S.
wait_live() { # side, label, deploy id
    local want state
    want=$(<"$WORK/public/index.html")$'\n'
    poll_until_body "${ROUTER[$1]#http://}" "$APP.localhost" "$want" "$POLL_S" "$LIVE_TIMEOUT_S" && return 0
    state=$(deploy_json "$1" "$3" | grep -o '"state":"[a-z_]*","source"' | cut -d'"' -f4) || true
    tail -20 "${DIR[$1]}/server.log" >&2
    die "$2: the router of ${SERVER_NAME[$1]} did not serve the new version within $LIVE_TIMEOUT_S s (deploy $3 is '$state', last answer $HTTP_STATUS)"
}

declare -A PUSH_LIVE
# One timed push of the current commit to one side: git push start -> the router serves it.
# Then waits for the deploy's `running` state (the runner reports it right after switching
# the route), so the next push starts from a settled app.
push_live() { # side, label
    local side=$1 label=$2 start
    start=$(now_us)
    push "$side" "${DIR[$side]}/push-$label.log" "push $label"
    wait_live "$side" "push $label" "$DEP"
    PUSH_LIVE[$side]+="$((LIVE_US - start)) "
    wait_running "$side" "$DEP" "push $label"
    sleep "$SETTLE"
}

# One untimed push per side first (the first swap from an old instance to a new one).
echo "warm-up: one untimed push to each side ..." >&2
write_index warmup
git -C "$WORK" commit -q -a -m "warm-up"
for side in "${SIDES[@]}"; do push_live "$side" warmup; done
unset PUSH_LIVE
declare -A PUSH_LIVE

echo "timing $PUSHES pushes per side (git push -> first 200 of the new version, polled every $POLL_MS ms) ..." >&2
for ((run = 1; run <= PUSHES; run++)); do
    if ((run % 2)); then order=(iso shared); else order=(shared iso); fi
    write_index "v$run"
    git -C "$WORK" commit -q -a -m "bench push $run"
    line=
    for side in "${order[@]}"; do
        push_live "$side" "$run"
        read -r -a values <<<"${PUSH_LIVE[$side]}"
        line+="   $side: $(ms "${values[-1]}") ms"
    done
    printf '  push %d/%d:%s\n' "$run" "$PUSHES" "$line" >&2
done

# The isolated side's new instances stayed isolated, the shared side's shared.
for side in "${SIDES[@]}"; do
    instance=$(tv "$side" app status "$APP" --json | tr -d ' \n\t' | grep -o '"instance":{[^}]*}') ||
        die "tovuk app status on ${SERVER_NAME[$side]} shows no instance after the pushes"
    if [[ $side = iso ]]; then
        [[ $instance = *'"netns":"'* ]] || die "the last instance on ${SERVER_NAME[iso]} has no network namespace of its own"
    else
        [[ $instance != *'"netns":"'* ]] || die "the last instance on ${SERVER_NAME[shared]} is in a network namespace of its own"
    fi
done

# --- figures (median, ms, pct, ratio, print_side_rows: lib.sh) ----------------------------

declare -A M_RPS M_P50 M_P99 M_CPU M_PUSH
for side in "${SIDES[@]}"; do
    # shellcheck disable=SC2086 # the lists are space-separated numbers
    M_RPS[$side]=$(median ${RPS[$side]})
    # shellcheck disable=SC2086
    M_P50[$side]=$(median ${P50[$side]})
    # shellcheck disable=SC2086
    M_P99[$side]=$(median ${P99[$side]})
    # shellcheck disable=SC2086
    M_CPU[$side]=$(median ${CPU[$side]})
    # shellcheck disable=SC2086
    M_PUSH[$side]=$(median ${PUSH_LIVE[$side]})
done
# The costs: how much lower the median req/s is isolated (negative: isolated was faster),
# and how much longer the median push -> live is.
RPS_COST=$(awk -v i="${M_RPS[iso]}" -v s="${M_RPS[shared]}" 'BEGIN { printf "%.1f", (s - i) * 100 / s }')
if awk -v c="$RPS_COST" -v g="$GOAL_RPS_PCT" 'BEGIN { exit !(c < g) }'; then rps_verdict="met"; else rps_verdict="NOT met"; fi
PUSH_COST=$((M_PUSH[iso] - M_PUSH[shared]))
if ((PUSH_COST < GOAL_PUSH_MS * 1000)); then push_verdict="met"; else push_verdict="NOT met"; fi

label_of() {
    case $1 in
    iso) echo "isolated (own network namespace)" ;;
    shared) echo "shared (--share-host-network)" ;;
    esac
}
app_kind="nginx, 1 worker, in the sandbox"
[[ $OUTBOUND = 0 ]] || app_kind+=", capability outbound-network (pasta when isolated)"
# (`wrk -v` exits 1 after printing its version.)
nginx_version=$(/usr/sbin/nginx -v 2>&1 | sed 's/^nginx version: //') || true
wrk_version=$(wrk -v 2>&1 | head -1 | awk '{print $1, $2}') || true
components=("$nginx_version" "$wrk_version")
if [[ $OUTBOUND = 1 ]]; then
    # (Debian's pasta says "unknown version"; its package knows.)
    pasta_version=$(dpkg-query -W -f='${Version}' passt 2>/dev/null) || pasta_version=$(pasta --version 2>/dev/null | head -1) || true
    components+=("passt ${pasta_version:-?}")
fi

echo
echo "isolation: the same app ($app_kind) on a server with network isolation and one with --share-host-network, same run"
bench_version_line "${components[@]}"
echo
echo "router: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency, GET / (a $(wc -c <"$WORK/public/index.html")-byte file); median of $RUNS runs per side, alternating"
print_side_rows
printf '%-44s %5s %10s %14s %10s %10s %12s\n' "isolated / shared" "" \
    "$(ratio "${M_RPS[iso]}" "${M_RPS[shared]}")" "" "$(ratio "${M_P50[iso]}" "${M_P50[shared]}")" \
    "$(ratio "${M_P99[iso]}" "${M_P99[shared]}")" "$(ratio "${M_CPU[iso]}" "${M_CPU[shared]}")"
printf '%-44s %5s %10s %14s %10s %10s %12s\n' "isolated vs shared (iso - shared) / shared" "" \
    "$(pct "${M_RPS[iso]}" "${M_RPS[shared]}")" "" "$(pct "${M_P50[iso]}" "${M_P50[shared]}")" \
    "$(pct "${M_P99[iso]}" "${M_P99[shared]}")" "$(pct "${M_CPU[iso]}" "${M_CPU[shared]}")"
echo
echo "push -> live: git push of a one-file change -> first 200 of the new version through the router (polled every $POLL_MS ms); $PUSHES pushes per side, alternating"
printf '%-44s %5s %10s %10s %10s\n' "" runs median p90 min
for side in "${SIDES[@]}"; do
    # shellcheck disable=SC2086
    ROW_WIDTH=44 row "$(label_of "$side")" ${PUSH_LIVE[$side]}
done
printf '%-44s %5s %10s\n' "isolated - shared (medians)" "" "$(ms "$PUSH_COST") ms"
echo
echo "goal: isolation costs < $GOAL_RPS_PCT % of router req/s: $rps_verdict (cost $RPS_COST % of median req/s)"
echo "goal: isolation costs < $GOAL_PUSH_MS ms of push -> live: $push_verdict (cost $(ms "$PUSH_COST") ms of median push -> live)"
