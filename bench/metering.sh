#!/usr/bin/env bash
# metering: requests per second and p99 latency through the tovuk router with usage metering
# and caps on, printed beside the same load through a router with metering off, same binary,
# same backend app, same run.
#
# Two `tovuk server`s run side by side from one binary, each with its own data dir:
#   A (metering on):  started as usual; app caps on `requests` and `egress_bytes` set far
#                     above what the run can reach, so every request takes the cap-checking
#                     path (the exact request cap's atomic add, the egress check) and is
#                     counted, and the control plane stores the counts every second.
#   B (metering off): started with `--no-metering` (counts nothing, enforces no caps).
# The same commit of the same app (nginx serving a small static file inside the sandbox, as
# in router.sh) is deployed to each. The load is `wrk -t2 -c64 -d10s --latency` against each
# router with `Host: <app>.localhost`, the sides alternating, each run after a check that the
# router answers the backend's file.
#
# Anchor (issue): metering and caps cost < 3 % of router throughput (median req/s, on vs off).
# This prints figures; it never fails because a goal was missed.
#
# Usage: bench/metering.sh                  (builds target/release/tovuk first)
#        TOVUK_BIN=/path/to/tovuk RUNS=5 bench/metering.sh
# Env:   TOVUK_BIN    use this binary instead of running `cargo build --release`
#        RUNS         wrk runs per side, alternating the order (default 5)
#        DURATION     seconds per wrk run (default 10)
#        CONNECTIONS  wrk connections (default 64); THREADS wrk threads (default 2)
#        BENCH_KEEP   1 keeps the temp dir (server logs, wrk reports, push logs)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-5}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
APP=benchmeter
CAP=1000000000000 # per meter: 1e12 requests, 1e12 bytes (1 TB); never reached here
SIDES=(on off)

bench_positive_ints RUNS DURATION CONNECTIONS THREADS
command -v git >/dev/null || die "git is needed (Debian: apt-get install git)"
command -v curl >/dev/null || die "curl is needed (Debian: apt-get install curl)"
command -v perl >/dev/null || die "perl is needed (Debian: apt-get install perl)"
perl -MJSON::PP -e 1 2>/dev/null || die "perl's JSON::PP is needed (Debian: apt-get install perl)"
command -v bwrap >/dev/null || die "bubblewrap is needed by the builder and runner (Debian: apt-get install bubblewrap)"
bench_need_wrk_nginx

bench_binary
# Both servers are stopped on exit (lib.sh's SERVER_PID stays empty: there are two here).
bench_tmp SERVER_ON_PID:15 SERVER_OFF_PID:15
bench_isolate_env

# --- two servers: A (metering on) and B (--no-metering) ---------------------------------
declare -A DIR API TOKEN ROUTER PID SERVER_NAME
SERVER_NAME[on]="server A (metering on)"
SERVER_NAME[off]="server B (--no-metering)"

# Like lib.sh's bench_start_server, for one side: data in TMP/<side>/data.
start_server() { # side, extra server args...
    local side=$1 dir=$TMP/$1
    shift
    DIR[$side]=$dir
    mkdir -p "$dir"
    "$BIN" server --data-dir "$dir/data" --listen 127.0.0.1:0 --router-listen 127.0.0.1:0 "$@" \
        >"$dir/server.log" 2>&1 &
    PID[$side]=$!
    printf -v "SERVER_${side^^}_PID" '%s' "${PID[$side]}"
    for _ in $(seq 300); do
        [[ -s $dir/data/server.json && -s $dir/data/admin.token ]] && break
        kill -0 "${PID[$side]}" 2>/dev/null || { cat "$dir/server.log" >&2; die "${SERVER_NAME[$side]} exited while starting"; }
        sleep 0.1
    done
    [[ -s $dir/data/server.json && -s $dir/data/admin.token ]] ||
        { tail -20 "$dir/server.log" >&2; die "${SERVER_NAME[$side]} did not write server.json within 30 s"; }
    API[$side]=$(grep -o '"api_url": *"[^"]*"' "$dir/data/server.json" | sed 's/.*"\(http[^"]*\)"/\1/')
    [[ ${API[$side]} = http://127.0.0.1:* ]] || die "unexpected api_url in $dir/data/server.json: '${API[$side]}'"
    ROUTER[$side]=$(grep -o '"router_url": *"[^"]*"' "$dir/data/server.json" | sed 's/.*"\(http[^"]*\)"/\1/')
    [[ ${ROUTER[$side]} = http://127.0.0.1:* ]] || die "unexpected router_url in $dir/data/server.json: '${ROUTER[$side]}'"
    ROUTER[$side]=${ROUTER[$side]%/}
    TOKEN[$side]=$(cat "$dir/data/admin.token")
}

start_server on
start_server off --no-metering

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
bench_create_app_on_sides

# The caps on A, set before the first deploy (they take effect at once).
for meter in requests egress_bytes; do
    tv on caps set "$APP" "$meter" "$CAP" >"${DIR[on]}/caps-set-$meter.log" 2>&1 ||
        { cat "${DIR[on]}/caps-set-$meter.log" >&2; die "tovuk caps set $APP $meter $CAP failed on server A"; }
done

# Reads `tovuk caps list APP --json`: "meter limit used state" per cap, one a line.
caps_of() { # side
    tv "$1" caps list "$APP" --json | perl -MJSON::PP -e '
        my $list = decode_json(join "", <STDIN>);
        printf "%s %.0f %.0f %s\n", $_->{meter}, $_->{limit}, $_->{used}, $_->{state} for @{ $list->{caps} };'
}
CAPS_BEFORE=$(caps_of on) || die "tovuk caps list $APP failed on server A"
for meter in requests egress_bytes; do
    grep -q "^$meter $CAP [0-9]* ok$" <<<"$CAPS_BEFORE" || die "server A has no '$meter' cap of $CAP in state ok: $CAPS_BEFORE"
done

deploy() { # side
    local side=$1 log=${DIR[$1]}/push.log dep state=
    echo "deploying the nginx backend as app $APP to ${SERVER_NAME[$side]} ..." >&2
    git -C "$WORK" push -o detach "$side" main >"$log" 2>&1 || { cat "$log" >&2; die "the push to ${SERVER_NAME[$side]} failed"; }
    dep=$(queued_dep "$log")
    [[ -n $dep ]] || { cat "$log" >&2; die "the push to ${SERVER_NAME[$side]} did not report a queued deploy"; }
    for _ in $(seq 600); do
        state=$(tv "$side" deploy show "$dep" --json | tr -d ' \n\t' | grep -o '"state":"[a-z_]*","source"' | cut -d'"' -f4)
        [[ $state = running || $state = failed || $state = cancelled ]] && break
        sleep 0.1
    done
    [[ $state = running ]] || { tv "$side" deploy show "$dep" >&2 || true; die "deploy $dep on ${SERVER_NAME[$side]} is '$state', not running"; }
}
for side in "${SIDES[@]}"; do deploy "$side"; done

# The router must answer the backend's file (retried while the route settles at startup).
for side in "${SIDES[@]}"; do check_router "$side" 100; done

# --- usage ----------------------------------------------------------------------------
# `tovuk usage APP --json`: "<requests> <egress bytes>" counted for the app this period.
usage_of() { # side
    tv "$1" usage "$APP" --json | perl -MJSON::PP -e '
        my $report = decode_json(join "", <STDIN>);
        my %q = (requests => 0, egress_bytes => 0);
        for my $app (@{ $report->{accountUsage}{apps} }) {
            next unless $app->{app} eq $ARGV[0];
            $q{$_->{meter}} += $_->{quantity} for @{ $app->{meters} };
        }
        printf "%.0f %.0f\n", $q{requests}, $q{egress_bytes};' "$APP"
}
# The usage once the server has stored the router's counts (it does every second): the same
# figures twice, 1.5 s apart.
settled_usage() { # side
    local last now
    last=$(usage_of "$1") || die "tovuk usage $APP --json failed on ${SERVER_NAME[$1]}"
    for _ in $(seq 20); do
        sleep 1.5
        now=$(usage_of "$1") || die "tovuk usage $APP --json failed on ${SERVER_NAME[$1]}"
        [[ $now = "$last" ]] && { echo "$now"; return; }
        last=$now
    done
    die "the usage on ${SERVER_NAME[$1]} did not settle within 30 s (last: $now)"
}

# --- load ---------------------------------------------------------------------------
declare -A RPS P50 P99 CPU ERRORS SENT
# One wrk run against side $1's router (lib.sh's load_router: req/s, p50, p99, the server's
# CPU time per request, its metering loop included, and errors); adds up completed requests.
load() { # side, label
    load_router "$1" "$2"
    SENT[$1]=$((${SENT[$1]:-0} + WRK_REQUESTS))
}

echo "warm-up: 2 s of load on each router ..." >&2
wrk_warm_up load "${SIDES[@]}"
unset SENT
declare -A SENT CHECKS

# Usage before the timed runs (warm-up and checks included), once stored.
declare -A USAGE_BEFORE USAGE_AFTER
for side in "${SIDES[@]}"; do USAGE_BEFORE[$side]=$(settled_usage "$side"); done

echo "timing $RUNS runs of wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s per side ..." >&2
for ((run = 1; run <= RUNS; run++)); do
    if ((run % 2)); then order=(on off); else order=(off on); fi
    line=
    for side in "${order[@]}"; do
        check_router "$side" 1 # one request, counted below
        CHECKS[$side]=$((${CHECKS[$side]:-0} + 1))
        load "$side" "$run"
        line+="   metering $side: $LAST"
    done
    printf '  run %d/%d:%s\n' "$run" "$RUNS" "$line" >&2
done

for side in "${SIDES[@]}"; do USAGE_AFTER[$side]=$(settled_usage "$side"); done
CAPS_AFTER=$(caps_of on) || die "tovuk caps list $APP failed on server A"

# --- figures (median, pct, print_side_rows: lib.sh) -----------------------------------

declare -A M_RPS M_P50 M_P99 M_CPU
for side in "${SIDES[@]}"; do
    # shellcheck disable=SC2086 # the lists are space-separated numbers
    M_RPS[$side]=$(median ${RPS[$side]})
    # shellcheck disable=SC2086
    M_P50[$side]=$(median ${P50[$side]})
    # shellcheck disable=SC2086
    M_P99[$side]=$(median ${P99[$side]})
    # shellcheck disable=SC2086
    M_CPU[$side]=$(median ${CPU[$side]})
done
# The cost: how much lower the median req/s is with metering on (negative: on was faster).
COST=$(awk -v on="${M_RPS[on]}" -v off="${M_RPS[off]}" 'BEGIN { printf "%.1f", (off - on) * 100 / off }')
if awk -v c="$COST" 'BEGIN { exit !(c < 3) }'; then verdict="met"; else verdict="NOT met"; fi

echo
echo "metering: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency through the router, GET / (a $(wc -c <"$WORK/public/index.html")-byte file from nginx, 1 worker, in the sandbox); median of $RUNS runs per side, alternating"
bench_version_line "$(/usr/sbin/nginx -v 2>&1 | sed 's/^nginx version: //')" "$(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
echo
label_of() {
    case $1 in
    on) echo "metering on (A: caps set, not reached)" ;;
    off) echo "metering off (B: --no-metering)" ;;
    esac
}
print_side_rows
printf '%-44s %5s %10s %14s %10s %10s %12s\n' "on vs off (on - off) / off" "" \
    "$(pct "${M_RPS[on]}" "${M_RPS[off]}")" "" "$(pct "${M_P50[on]}" "${M_P50[off]}")" \
    "$(pct "${M_P99[on]}" "${M_P99[off]}")" "$(pct "${M_CPU[on]}" "${M_CPU[off]}")"
echo "goal: metering costs < 3 % of router throughput: $verdict (cost $COST % of median req/s)"

# Sanity: A counted every request it served during the timed runs; B counted none.
read -r req0 egress0 <<<"${USAGE_BEFORE[on]}"
read -r req1 egress1 <<<"${USAGE_AFTER[on]}"
counted=$((req1 - req0))
expected=$((SENT[on] + CHECKS[on]))
echo
echo "usage on server A (metering on), tovuk usage $APP --json: $req1 requests, $egress1 egress bytes this period"
printf '  timed runs: %d requests counted; wrk completed %d + %d body checks = %d; counted - completed = %+d\n' \
    "$counted" "${SENT[on]}" "${CHECKS[on]}" "$expected" $((counted - expected))
if ((counted > 0)); then
    printf '  egress counted per request: %s bytes (the body is %d bytes)\n' \
        "$(awk -v e=$((egress1 - egress0)) -v n="$counted" 'BEGIN { printf "%.1f", e / n }')" "$(wc -c <"$WORK/public/index.html")"
fi
if ((counted < expected)); then
    echo "  ODD: server A counted fewer requests than wrk completed"
fi
while read -r meter limit used state; do
    [[ -n $meter ]] && printf '  cap %s: limit %s, used %s, %s\n' "$meter" "$limit" "$used" "$state"
done <<<"$CAPS_AFTER"
read -r reqb egressb <<<"${USAGE_AFTER[off]}"
echo "usage on server B (--no-metering), tovuk usage $APP --json: $reqb requests, $egressb egress bytes (wrk completed ${SENT[off]} in the timed runs)"
((reqb == 0)) || echo "  ODD: server B counted requests with metering off"
