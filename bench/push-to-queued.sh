#!/usr/bin/env bash
# push-to-queued: how long `git push` to tovuk takes until the queued deploy row exists,
# printed beside a plain `git push` of the same commits to a local bare repository over
# file:// (the floor), measured in the same run with the same clock.
#
# Anchor (issue): platform overhead (median push→queued minus median floor) < 150 ms.
# This prints figures; it never fails because a goal was missed.
#
# Usage: bench/push-to-queued.sh            (builds target/release/tovuk first)
#        TOVUK_BIN=/path/to/tovuk RUNS=50 bench/push-to-queued.sh
# Env:   TOVUK_BIN   use this binary instead of running `cargo build --release`
#        RUNS        timed pushes per side (default 20)
#        BENCH_KEEP  1 keeps the temp dir (server log, repos) and prints where it is
set -euo pipefail

RUNS=${RUNS:-20}
GOAL_MS=150
APP=benchapp
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() {
    echo "push-to-queued: $*" >&2
    exit 1
}

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$RUNS'"
command -v git >/dev/null || die "git is needed (Debian: apt-get install git)"

# --- the binary -------------------------------------------------------------------
if [[ -n ${TOVUK_BIN:-} ]]; then
    BIN=$TOVUK_BIN
else
    echo "building tovuk (cargo build --release) ..." >&2
    (cd "$ROOT" && cargo build --release) >&2 || die "the release build failed; fix it or pass TOVUK_BIN=/path/to/tovuk"
    target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
    [[ $target_dir = /* ]] || target_dir=$ROOT/$target_dir
    BIN=$target_dir/release/tovuk
fi
[[ -x $BIN ]] || die "no tovuk binary at $BIN"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# --- an isolated environment --------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tovuk-bench.XXXXXX")
SERVER_PID=
cleanup() {
    local status=$?
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 150); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "push-to-queued: the server did not stop within 15 s of SIGTERM; killing it" >&2
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ ${BENCH_KEEP:-} = 1 ]]; then
        echo "push-to-queued: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0
export GIT_AUTHOR_NAME=tovuk-bench GIT_AUTHOR_EMAIL=bench@tovuk.invalid
export GIT_COMMITTER_NAME=tovuk-bench GIT_COMMITTER_EMAIL=bench@tovuk.invalid
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES \
    GIT_TRACE GIT_TRACE_PERFORMANCE GIT_TRACE_PACKET GIT_TRACE_CURL GIT_ASKPASS SSH_ASKPASS \
    http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY TOVUK_URL TOVUK_TOKEN
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
export TOVUK_CONFIG_DIR=$TMP/config TOVUK_DATA_DIR=$TMP/data NO_COLOR=1

# One clock for both sides: bash's EPOCHREALTIME (no fork), else date.
now_us() {
    if [[ -n ${EPOCHREALTIME:-} ]]; then
        local t=${EPOCHREALTIME/[.,]/}
        echo $((10#$t))
    else
        echo $(($(date +%s%N) / 1000))
    fi
}

# --- the platform ------------------------------------------------------------------
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

"$BIN" app create "$APP" --json >"$TMP/app.json" || die "tovuk app create failed"
SECRET=$(grep -o '"secret": *"tovuk_[^"]*"' "$TMP/app.json" | sed 's/.*"\(tovuk_[^"]*\)"/\1/')
[[ -n $SECRET ]] || die "no deploy token secret in the output of tovuk app create"
PLATFORM_REMOTE="http://deploy:$SECRET@${API_URL#http://}/git/$APP.git"

deploy_count() {
    "$BIN" deploy list "$APP" --json --limit $((RUNS + 10)) | grep -c '"id": *"dep_' || true
}
newest_deploy_sha() {
    "$BIN" deploy list "$APP" --json --limit 1 | grep -o '"sha": *"[0-9a-f]*"' | head -1 | sed 's/.*"\([0-9a-f]*\)"$/\1/'
}

# --- the 10-file app, one repo, two remotes ----------------------------------------
WORK=$TMP/app
FLOOR=$TMP/floor.git
git init -q -b main "$WORK"
git init -q --bare -b main "$FLOOR"
mkdir -p "$WORK/src" "$WORK/static"
printf '[app]\nname = "%s"\nkind = "web"\ncapabilities = ["http"]\n\n[run]\ncommand = "./server"\n\n[health]\npath = "/health"\n' \
    "$APP" >"$WORK/tovuk.toml"
printf '#!/bin/sh\nexec python3 -m http.server "${PORT:-8000}"\n' >"$WORK/server"
chmod +x "$WORK/server"
printf '# %s\n\nA 10-file app for bench/push-to-queued.sh.\n' "$APP" >"$WORK/README.md"
printf '*.log\n' >"$WORK/.gitignore"
printf '<!doctype html>\n<title>%s</title>\n<p>hello</p>\n' "$APP" >"$WORK/static/index.html"
printf 'body { font-family: sans-serif; }\n' >"$WORK/static/style.css"
printf 'ok\n' >"$WORK/static/health"
printf 'fn main() {}\n' >"$WORK/src/main.rs"
printf 'pub fn add(a: u32, b: u32) -> u32 { a + b }\n' >"$WORK/src/lib.rs"
printf 'run 0\n' >"$WORK/src/version.txt"
git -C "$WORK" add -A
files=$(git -C "$WORK" ls-files | wc -l)
[[ $files -eq 10 ]] || die "the app has $files files, expected 10"
git -C "$WORK" commit -q -m "app with 10 files"
git -C "$WORK" remote add platform "$PLATFORM_REMOTE"
git -C "$WORK" remote add floor "file://$FLOOR"

# Untimed warm-up: the first (full) push to each side, so every timed push sends one commit.
git -C "$WORK" push platform main >"$TMP/warmup-platform.log" 2>&1 || { cat "$TMP/warmup-platform.log" >&2; die "the warm-up push to tovuk failed"; }
git -C "$WORK" push floor main >"$TMP/warmup-floor.log" 2>&1 || { cat "$TMP/warmup-floor.log" >&2; die "the warm-up push to the floor failed"; }
expected=$(deploy_count)
[[ $expected -eq 1 ]] || die "after the warm-up push there are $expected deploys, expected 1"

# --- timed runs ---------------------------------------------------------------------
# Each run makes one new commit changing one file and pushes it to both sides; the side
# that goes first alternates, so machine noise and cache effects hit both.
PLATFORM_US=()
FLOOR_US=()

push_platform() {
    local log=$TMP/push-platform-$1.log sha=$2 start end
    start=$(now_us)
    git -C "$WORK" push platform main >"$log" 2>&1 || { cat "$log" >&2; die "run $1: the push to tovuk failed"; }
    end=$(now_us)
    grep -q 'remote: deploy dep_[0-9a-z]* queued' "$log" || { cat "$log" >&2; die "run $1: the push did not report a queued deploy"; }
    expected=$((expected + 1))
    local count newest
    count=$(deploy_count)
    newest=$(newest_deploy_sha)
    [[ $count -eq $expected ]] || die "run $1: tovuk lists $count deploys, expected $expected"
    [[ $newest = "$sha" ]] || die "run $1: the newest deploy is for $newest, expected the pushed $sha"
    PLATFORM_US+=($((end - start)))
}

push_floor() {
    local log=$TMP/push-floor-$1.log sha=$2 start end
    start=$(now_us)
    git -C "$WORK" push floor main >"$log" 2>&1 || { cat "$log" >&2; die "run $1: the push to the floor failed"; }
    end=$(now_us)
    [[ $(git --git-dir="$FLOOR" rev-parse refs/heads/main) = "$sha" ]] || die "run $1: the floor repo did not get $sha"
    FLOOR_US+=($((end - start)))
}

ms() { # microseconds -> "12.3"
    local us=$1 sign=
    ((us < 0)) && { sign=-; us=$((-us)); }
    us=$((us + 50))
    printf '%s%d.%d' "$sign" $((us / 1000)) $(((us % 1000) / 100))
}

echo "timing $RUNS pushes to each side ..." >&2
for ((run = 1; run <= RUNS; run++)); do
    printf 'run %d\n' "$run" >"$WORK/src/version.txt"
    git -C "$WORK" commit -q -a -m "bench run $run"
    sha=$(git -C "$WORK" rev-parse HEAD)
    if ((run % 2)); then
        push_platform "$run" "$sha"
        push_floor "$run" "$sha"
    else
        push_floor "$run" "$sha"
        push_platform "$run" "$sha"
    fi
    printf '  run %2d/%d: tovuk %7s ms   floor %7s ms\n' "$run" "$RUNS" \
        "$(ms "${PLATFORM_US[-1]}")" "$(ms "${FLOOR_US[-1]}")" >&2
done

# --- figures ------------------------------------------------------------------------
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

p_med=$(median "${PLATFORM_US[@]}")
f_med=$(median "${FLOOR_US[@]}")
overhead=$((p_med - f_med))
if ((overhead < GOAL_MS * 1000)); then verdict="met"; else verdict="NOT met"; fi

row() { # label, values...
    local label=$1
    shift
    printf '%-30s %5d %10s %10s %10s\n' "$label" $# "$(ms "$(median "$@")") ms" "$(ms "$(p90 "$@")") ms" \
        "$(ms "$(minimum "$@")") ms"
}

rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -n $(git -C "$ROOT" status --porcelain 2>/dev/null) ]] && rev="$rev+dirty"
echo
echo "push -> queued deploy row, 10-file app, one new one-file commit per push"
echo "$("$BIN" --version) @ $rev, $(git --version), $(nproc 2>/dev/null || echo '?') cores"
echo
printf '%-30s %5s %10s %10s %10s\n' "" runs median p90 min
row "tovuk push -> queued row" "${PLATFORM_US[@]}"
row "git push file:// (floor)" "${FLOOR_US[@]}"
printf '%-30s %5s %10s   goal < %d ms: %s\n' "overhead (median difference)" "" "$(ms "$overhead") ms" "$GOAL_MS" "$verdict"
