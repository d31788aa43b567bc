#!/usr/bin/env bash
# edge-auth: requests per second and p99 latency through the tovuk router on a route that
# verifies a bearer JWT (`auth = "capability"`), printed beside a route of the same app with
# `auth = "none"`, same server, same backend, same run.
#
# One app (nginx serving the same small static file at / and /api/x inside the sandbox, as
# in router.sh) declares `/` with `auth = "none"` and `/api` with `auth = "capability"`,
# `capability = "orders:write"`; its config puts the router in `jwt` mode against a real
# OIDC provider on 127.0.0.1 (npm's oauth2-mock-server, driven by the edge-auth tests'
# provider.js), which mints an RS256 token granting orders:write. The router fetches the
# provider's keys (JWKS) once and caches them, so each request on /api pays the token's
# parse, signature check and claim checks, not a fetch. The load is
# `wrk -t2 -c64 -d10s --latency` against the router with `Host: <app>.localhost:<port>`:
#   none:        GET /
#   capability:  GET /api/x with `Authorization: Bearer <token>`
# the two alternating run by run. Before loading, the router must answer /api/x with the
# token 200 (the backend's file), with no token 401 and with a token lacking the capability
# 403, and any non-2xx answer during a run stops the bench: it never measures refusals.
#
# Anchor (issue): verification costs < 10 % of req/s ((none - capability) / none, medians),
# keys cached. This prints figures; it never fails because a goal was missed.
#
# Usage: bench/edge-auth.sh                 (builds target/release/tovuk first)
#        TOVUK_BIN=/path/to/tovuk RUNS=5 bench/edge-auth.sh
# Env:   TOVUK_BIN       use this binary instead of running `cargo build --release`
#        RUNS            wrk runs per route, alternating the order (default 5)
#        DURATION        seconds per wrk run (default 10)
#        CONNECTIONS     wrk connections (default 64); THREADS wrk threads (default 2)
#        TOVUK_TEST_NPM  the npm prefix holding oauth2-mock-server 7.2.1 (default
#                        target/test-npm, where scripts/test installs it; installed there
#                        with npm when missing)
#        BENCH_KEEP      1 keeps the temp dir (server log, wrk reports, push log)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-5}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
NPM_PREFIX=${TOVUK_TEST_NPM:-$ROOT/target/test-npm}
MOCK_VERSION=7.2.1
GOAL_PCT=10 # verification may cost less than this share of req/s
APP=benchauth
AUDIENCE=benchauth-api
CAPABILITY=orders:write
SIDES=(none cap)

bench_positive_ints RUNS DURATION CONNECTIONS THREADS
command -v git >/dev/null || die "git is needed (Debian: apt-get install git)"
command -v curl >/dev/null || die "curl is needed (Debian: apt-get install curl)"
command -v bwrap >/dev/null || die "bubblewrap is needed by the builder and runner (Debian: apt-get install bubblewrap)"
command -v node >/dev/null || die "node is needed for the OIDC provider (Debian: apt-get install nodejs npm)"
bench_need_wrk_nginx
if ! grep -qs "\"version\": \"$MOCK_VERSION\"" "$NPM_PREFIX/node_modules/oauth2-mock-server/package.json"; then
    command -v npm >/dev/null || die "npm is needed to install oauth2-mock-server (Debian: apt-get install npm)"
    echo "installing oauth2-mock-server@$MOCK_VERSION into $NPM_PREFIX (npm) ..." >&2
    npm install --prefix "$NPM_PREFIX" --no-audit --no-fund --silent "oauth2-mock-server@$MOCK_VERSION" >&2 ||
        die "npm install oauth2-mock-server@$MOCK_VERSION failed"
fi
NPM_PREFIX=$(cd "$NPM_PREFIX" && pwd)

bench_binary
bench_tmp PROVIDER_PID:5
bench_isolate_env
bench_start_server
bench_router_url
ROUTER_PORT=${ROUTER_URL##*:}
HOST=$APP.localhost:$ROUTER_PORT
bench_create_app "$APP" "$TMP/app.json"

# --- the OIDC provider ----------------------------------------------------------------
# A coprocess: its stdin stays open while the script runs (it exits when stdin closes). The
# descriptors are the script's alone, so it is asked only from the main shell, never from a
# $(...) subshell.
coproc PROVIDER { exec node "$ROOT/crates/tovuk-edge-auth/tests/it/provider.js" "$NPM_PREFIX" 2>"$TMP/provider.log"; }
ANSWER=
ask_provider() { # JSON command -> ANSWER (one JSON line)
    printf '%s\n' "$1" >&"${PROVIDER[1]}" || die "the provider is gone: $(cat "$TMP/provider.log")"
    IFS= read -r -t 30 -u "${PROVIDER[0]}" ANSWER || die "the provider did not answer '$1': $(cat "$TMP/provider.log")"
}
IFS= read -r -t 30 -u "${PROVIDER[0]}" started || die "the provider did not start: $(cat "$TMP/provider.log")"
[[ $started =~ \"issuer\":\"(http://127\.0\.0\.1:[0-9]+)\" ]] || die "unexpected first line from the provider: $started"
ISSUER=${BASH_REMATCH[1]}
# A token for the app's audience with these capabilities (a JSON array), valid well past the run.
TOKEN=
mint() { # capabilities
    ask_provider "{\"op\":\"mint\",\"claims\":{\"sub\":\"bench\",\"aud\":\"$AUDIENCE\",\"capabilities\":$1},\"expires_in\":$((3600 + 2 * (RUNS + 1) * DURATION))}"
    [[ $ANSWER =~ \"token\":\"([A-Za-z0-9_.-]+)\" ]] || die "the provider minted no token: $ANSWER"
    TOKEN=${BASH_REMATCH[1]}
}
mint "[\"$CAPABILITY\"]"
GRANTED=$TOKEN
mint '["orders:read"]'
LACKING=$TOKEN
# The token's signature algorithm, from its header (base64url, padded for base64 -d).
JWT_ALG=${GRANTED%%.*}
JWT_ALG=$JWT_ALG$(printf '%*s' $(((4 - ${#JWT_ALG} % 4) % 4)) '' | tr ' ' =)
JWT_ALG=$(tr '_-' '/+' <<<"$JWT_ALG" | base64 -d 2>/dev/null | grep -o '"alg":"[A-Za-z0-9]*"' | cut -d'"' -f4) || true

# --- the app: nginx inside the sandbox, / open, /api behind a capability -------------------
WORK=$TMP/app
git init -q -b main "$WORK"
mkdir -p "$WORK/public/api"
write_manifest "$WORK" "$APP" "sh start.sh" 30s
printf '\n[[routes]]\npath = "/"\nauth = "none"\n\n[[routes]]\npath = "/api"\nauth = "capability"\ncapability = "%s"\n' \
    "$CAPABILITY" >>"$WORK/tovuk.toml"
write_nginx_app "$WORK"
# The same bytes on both routes, so only the auth differs.
printf '<!doctype html>\n<title>%s</title>\n<p>hello from the backend</p>\n' "$APP" >"$WORK/public/index.html"
cp "$WORK/public/index.html" "$WORK/public/api/x"
EXPECTED_BODY=$(cat "$WORK/public/index.html")
git -C "$WORK" add -A
git -C "$WORK" commit -q -m "nginx backend behind edge auth"

# The auth config first: the gate blocks the deploy until it is complete.
for pair in TOVUK_AUTH_MODE=jwt "TOVUK_AUTH_ISSUER=$ISSUER" "TOVUK_AUTH_AUDIENCE=$AUDIENCE" \
    TOVUK_AUTH_CAPABILITY_CLAIM=capabilities; do
    "$BIN" env set "$APP" "$pair" >"$TMP/env-set.log" 2>&1 || { cat "$TMP/env-set.log" >&2; die "tovuk env set $APP $pair failed"; }
done
"$BIN" preflight "$APP" --dir "$WORK" >"$TMP/preflight.log" 2>&1 ||
    { cat "$TMP/preflight.log" >&2; die "tovuk preflight $APP does not say ready"; }

echo "deploying the nginx backend as app $APP (routes / and /api, jwt mode) ..." >&2
git -C "$WORK" push -o detach "$PLATFORM_REMOTE" main >"$TMP/push.log" 2>&1 || { cat "$TMP/push.log" >&2; die "the push failed"; }
DEP=$(queued_dep "$TMP/push.log")
[[ -n $DEP ]] || { cat "$TMP/push.log" >&2; die "the push did not report a queued deploy"; }
state=
for _ in $(seq 600); do
    load_deploy "$DEP"
    state=$(deploy_state)
    [[ $state = running || $state = failed || $state = cancelled ]] && break
    sleep 0.1
done
[[ $state = running ]] || { "$BIN" deploy show "$DEP" >&2 || true; die "deploy $DEP is '$state', not running"; }

# --- sanity: the router serves /, and enforces /api --------------------------------------
# One GET through the router: sets CODE and BODY.
CODE= BODY=
get() { # path, [curl args...]
    local path=$1
    shift
    CODE=$(curl -s --max-time 5 -o "$TMP/body" -w '%{http_code}' -H "Host: $HOST" "$@" "$ROUTER_URL$path") || true
    BODY=$(cat "$TMP/body" 2>/dev/null) || true
}
for _ in $(seq 100); do
    get /
    [[ $CODE = 200 && $BODY = "$EXPECTED_BODY" ]] && break
    sleep 0.1
done
[[ $CODE = 200 && $BODY = "$EXPECTED_BODY" ]] || die "GET / answered $CODE, not the backend's file: $BODY"
get /api/x -H "Authorization: Bearer $GRANTED"
[[ $CODE = 200 && $BODY = "$EXPECTED_BODY" ]] || die "GET /api/x with a token granting $CAPABILITY answered $CODE, not the backend's file: $BODY"
get /api/x
[[ $CODE = 401 ]] || die "GET /api/x without a token answered $CODE, not 401: $BODY"
get /api/x -H "Authorization: Bearer $LACKING"
[[ $CODE = 403 && $BODY == *capability_missing* ]] ||
    die "GET /api/x with a token lacking $CAPABILITY answered $CODE, not 403 capability_missing: $BODY"
echo "checked: / 200; /api/x 200 with the token, 401 without one, 403 with one lacking $CAPABILITY" >&2

# --- load ---------------------------------------------------------------------------
declare -A RPS P50 P99 CPU ERRORS
# One wrk run through the router on route $1; dies on any non-2xx answer (a refusal would
# be measured instead of a verification).
load() { # side, label
    local side=$1 label=$2 report ticks0 ticks1 non2xx path=/ auth=()
    report=$TMP/wrk-$side-$label.txt
    if [[ $side = cap ]]; then path=/api/x auth=(-H "Authorization: Bearer $GRANTED"); fi
    ticks0=$(proc_ticks "$SERVER_PID") || die "the server is gone"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "Host: $HOST" "${auth[@]}" "$ROUTER_URL$path" \
        >"$report" 2>&1 || { cat "$report" >&2; die "wrk against $path failed"; }
    ticks1=$(proc_ticks "$SERVER_PID") || die "the server is gone"
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$report")
    [[ -z $non2xx ]] || { cat "$report" >&2; die "GET $path answered $non2xx non-2xx responses under load: not measuring what it should"; }
    wrk_record "$side" "$report" "GET $path" $((ticks1 - ticks0))
}

echo "warm-up: 2 s of load on each route ..." >&2
wrk_warm_up load "${SIDES[@]}"
ask_provider '{"op":"jwks_requests"}'
JWKS_BEFORE=$(grep -o '"count":[0-9]*' <<<"$ANSWER" | cut -d: -f2)

echo "timing $RUNS runs of wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s per route ..." >&2
for ((run = 1; run <= RUNS; run++)); do
    if ((run % 2)); then order=(none cap); else order=(cap none); fi
    line=
    for side in "${order[@]}"; do
        load "$side" "$run"
        line+="   $side: $LAST"
    done
    printf '  run %d/%d:%s\n' "$run" "$RUNS" "$line" >&2
done
ask_provider '{"op":"jwks_requests"}'
JWKS_AFTER=$(grep -o '"count":[0-9]*' <<<"$ANSWER" | cut -d: -f2)

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
# The cost: how much lower the median req/s is on the capability route (negative: faster).
COST=$(awk -v none="${M_RPS[none]}" -v cap="${M_RPS[cap]}" 'BEGIN { printf "%.1f", (none - cap) * 100 / none }')
if awk -v c="$COST" -v g="$GOAL_PCT" 'BEGIN { exit !(c < g) }'; then verdict="met"; else verdict="NOT met"; fi

echo
echo "edge auth: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency through the router, one app (a $(wc -c <"$WORK/public/index.html")-byte file from nginx, 1 worker, in the sandbox); median of $RUNS runs per route, alternating"
bench_version_line "$(/usr/sbin/nginx -v 2>&1 | sed 's/^nginx version: //')" "$(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')" \
    "oauth2-mock-server $MOCK_VERSION on node $(node --version)"
echo
label_of() {
    case $1 in
    none) echo "GET / (auth = \"none\")" ;;
    cap) echo "GET /api/x (capability, ${JWT_ALG:-JWT} bearer)" ;;
    esac
}
print_side_rows
printf '%-44s %5s %10s %14s %10s %10s %12s\n' "capability vs none (cap - none) / none" "" \
    "$(pct "${M_RPS[cap]}" "${M_RPS[none]}")" "" "$(pct "${M_P50[cap]}" "${M_P50[none]}")" \
    "$(pct "${M_P99[cap]}" "${M_P99[none]}")" "$(pct "${M_CPU[cap]}" "${M_CPU[none]}")"
printf 'server CPU per verified request: %+.1f us\n' "$(awk -v a="${M_CPU[cap]}" -v b="${M_CPU[none]}" 'BEGIN { print (a - b) / 1000 }')"
echo "goal: verification costs < $GOAL_PCT % of req/s (keys cached): $verdict (cost $COST % of median req/s)"
echo "JWKS fetched by the router: $JWKS_AFTER times in all, $((JWKS_AFTER - JWKS_BEFORE)) during the timed runs"
