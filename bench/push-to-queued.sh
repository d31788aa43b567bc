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
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-20}
GOAL_MS=150
APP=benchapp

bench_positive_ints RUNS
command -v git >/dev/null || die "git is needed (Debian: apt-get install git)"

bench_binary
bench_tmp
bench_isolate_env
bench_start_server
bench_create_app "$APP" "$TMP/app.json"

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
git -C "$WORK" push -o detach platform main >"$TMP/warmup-platform.log" 2>&1 || { cat "$TMP/warmup-platform.log" >&2; die "the warm-up push to tovuk failed"; }
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
    git -C "$WORK" push -o detach platform main >"$log" 2>&1 || { cat "$log" >&2; die "run $1: the push to tovuk failed"; }
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
p_med=$(median "${PLATFORM_US[@]}")
f_med=$(median "${FLOOR_US[@]}")
overhead=$((p_med - f_med))
if ((overhead < GOAL_MS * 1000)); then verdict="met"; else verdict="NOT met"; fi

ROW_WIDTH=30
echo
echo "push -> queued deploy row, 10-file app, one new one-file commit per push"
bench_version_line "$(git --version)"
echo
printf '%-30s %5s %10s %10s %10s\n' "" runs median p90 min
row "tovuk push -> queued row" "${PLATFORM_US[@]}"
row "git push file:// (floor)" "${FLOOR_US[@]}"
printf '%-30s %5s %10s   goal < %d ms: %s\n' "overhead (median difference)" "" "$(ms "$overhead") ms" "$GOAL_MS" "$verdict"
