#!/usr/bin/env bash
# build-overhead: the platform's overhead per build (checkout + phases + pack + sign, with no
# build commands) for a 1 MB and a 50 MB app, printed beside the same work done by hand in
# the same run: `git clone --no-local file://` of the same commit, `tar | zstd -3`,
# `sha256sum` (the floor).
#
# Anchor (issue): median build overhead (building -> artifact_ready) within 1.5x of the
# median by-hand floor, for each app size. This prints figures; it never fails because a
# goal was missed.
#
# Usage: bench/build-overhead.sh            (builds target/release/tovuk first)
#        TOVUK_BIN=/path/to/tovuk RUNS=20 bench/build-overhead.sh
# Env:   TOVUK_BIN   use this binary instead of running `cargo build --release`
#        RUNS        timed builds per app size and side (default 10)
#        BENCH_KEEP  1 keeps the temp dir (server log, repos, build logs) and prints where it is
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-10}
GOAL_PERCENT=150 # the platform's median may be at most 1.5x the floor's
GOAL=$((GOAL_PERCENT / 100)).$((GOAL_PERCENT % 100 / 10))
# App sizes: "MB FILES" (FILES counts every file, the manifest and two small files included).
SIZES=("1 50" "50 500")

bench_positive_ints RUNS
command -v git >/dev/null || die "git is needed (Debian: apt-get install git)"
command -v zstd >/dev/null || die "zstd is needed for the by-hand floor (Debian: apt-get install zstd)"
command -v bwrap >/dev/null || die "bubblewrap is needed by the builder (Debian: apt-get install bubblewrap)"
command -v sha256sum >/dev/null || die "sha256sum is needed (Debian: apt-get install coreutils)"
date -u -d 2026-01-01T00:00:00.123Z +%s%3N >/dev/null 2>&1 || die "GNU date is needed to read timestamps (Debian: apt-get install coreutils)"

bench_binary
bench_tmp
bench_isolate_env ZSTD_CLEVEL ZSTD_NBTHREADS
bench_start_server

# --- reading a deploy (load_deploy, entered_ms: lib.sh) ------------------------------
field() { # the first string field $1 of the loaded deploy
    grep -o "\"$1\":\"[^\"]*\"" <<<"$SHOW" | head -1 | sed 's/.*:"\([^"]*\)"/\1/'
}

# Pushes HEAD of $WORK to the app and waits for the build: sets DEP and E2E_US (push start
# to the end of the build, as `tovuk logs --follow` sees it). $1 names the log files.
DEP=
E2E_US=
push_and_build() {
    local name=$1 log=$TMP/$APP/push-$1.log start end
    start=$(now_us)
    git -C "$WORK" push -o detach platform main >"$log" 2>&1 || { cat "$log" >&2; die "$APP $name: the push to tovuk failed"; }
    DEP=$(queued_dep "$log")
    [[ -n $DEP ]] || { cat "$log" >&2; die "$APP $name: the push did not report a queued deploy"; }
    # Streams the build log and exits when the build ends (1 if it failed).
    "$BIN" logs --build "$DEP" --follow --json >"$TMP/$APP/build-$name.log" 2>&1 || true
    end=$(now_us)
    E2E_US=$((end - start))
    load_deploy "$DEP"
    local sha
    # The runner takes a sealed artifact on at once, so the deploy may already be past
    # artifact_ready: what counts is that the build succeeded.
    grep -q '"final_build":{"status":"succeeded"}' <<<"$SHOW" || {
        cat "$TMP/$APP/build-$name.log" >&2
        die "$APP $name: the build of deploy $DEP did not succeed (state '$(deploy_state)')"
    }
    sha=$(field sha)
    [[ $sha = "$(git -C "$WORK" rev-parse HEAD)" ]] || die "$APP $name: deploy $DEP built $sha, not the pushed HEAD"
}

# --- the two sides of one run ------------------------------------------------------------
platform_run() {
    local run=$1 building typechecking testing ready
    push_and_build "$run"
    building=$(entered_ms building)
    typechecking=$(entered_ms typechecking)
    testing=$(entered_ms testing)
    ready=$(entered_ms artifact_ready)
    # Server timestamps have ms precision; kept in µs like every other figure.
    P_TOTAL+=($(((ready - building) * 1000)))
    P_CHECKOUT+=($(((typechecking - building) * 1000)))
    P_SEAL+=($(((ready - testing) * 1000)))
    P_E2E+=("$E2E_US")
    P_SIZE=$(grep -o '"size_bytes":[0-9]*' <<<"$SHOW" | head -1 | cut -d: -f2)
}

# By hand: clone the same commit from a local bare repo, pack the tree, hash the archive.
floor_run() {
    local run=$1 dir=$TMP/$APP/by-hand start cloned end
    rm -rf "$dir"
    mkdir -p "$dir"
    start=$(now_us)
    git clone --quiet --no-local "file://$FLOOR" "$dir/clone" || die "$APP $run: git clone of the floor repo failed"
    cloned=$(now_us)
    tar -C "$dir/clone" --exclude=.git -cf - . | zstd -3 -q -o "$dir/out.tar.zst" || die "$APP $run: tar | zstd failed"
    sha256sum "$dir/out.tar.zst" >"$dir/out.sha256" || die "$APP $run: sha256sum failed"
    end=$(now_us)
    [[ $(git -C "$dir/clone" rev-parse HEAD) = "$(git -C "$WORK" rev-parse HEAD)" ]] ||
        die "$APP $run: the by-hand clone is not at the pushed HEAD"
    F_TOTAL+=($((end - start)))
    F_CLONE+=($((cloned - start)))
    F_PACK+=($((end - cloned)))
    F_SIZE=$(stat -c %s "$dir/out.tar.zst")
    rm -rf "$dir"
}

# --- figures (ms, median, p90, minimum, row: lib.sh) ---------------------------------
mb() { # bytes -> "1.02"
    local centi=$((($1 * 100 + 524288) / 1048576))
    printf '%d.%02d' $((centi / 100)) $((centi % 100))
}

# --- one app size -------------------------------------------------------------------
TABLES=()
bench_size() {
    local size_mb=$1 files=$2
    APP=bench-${size_mb}mb
    WORK=$TMP/$APP/app
    FLOOR=$TMP/$APP/floor.git
    P_TOTAL=() P_CHECKOUT=() P_SEAL=() P_E2E=() F_TOTAL=() F_CLONE=() F_PACK=()
    mkdir -p "$TMP/$APP"

    bench_create_app "$APP" "$TMP/$APP/app.json"

    # The tree: a manifest without build commands, a start script, a one-line file each
    # run changes, and files-3 files of incompressible data, 20 to a directory.
    echo "$APP: writing $files files, $size_mb MB of random data ..." >&2
    git init -q -b main "$WORK"
    git init -q --bare -b main "$FLOOR"
    write_manifest "$WORK" "$APP" ./server
    printf '#!/bin/sh\nexec python3 -m http.server "${PORT:-8000}"\n' >"$WORK/server"
    chmod +x "$WORK/server"
    printf 'run 0\n' >"$WORK/version.txt"
    local data_files=$((files - 3)) i
    local per_file=$((size_mb * 1048576 / data_files))
    for ((i = 0; i < data_files; i++)); do
        mkdir -p "$WORK/assets/d$((i / 20))"
        head -c "$per_file" /dev/urandom >"$WORK/assets/d$((i / 20))/blob$i.bin"
    done
    git -C "$WORK" add -A
    local count
    count=$(git -C "$WORK" ls-files | wc -l)
    [[ $count -eq $files ]] || die "$APP has $count files, expected $files"
    git -C "$WORK" commit -q -m "$APP: $files files, $size_mb MB"
    git -C "$WORK" remote add platform "$PLATFORM_REMOTE"
    git -C "$WORK" remote add floor "file://$FLOOR"

    # Untimed warm-up: the first (full) push and build, and one by-hand run.
    echo "$APP: warm-up push, build and by-hand run ..." >&2
    git -C "$WORK" push -q floor main >"$TMP/$APP/push-floor-warmup.log" 2>&1 ||
        { cat "$TMP/$APP/push-floor-warmup.log" >&2; die "the warm-up push of $APP to the floor repo failed"; }
    push_and_build warmup
    floor_run warmup
    P_TOTAL=() P_CHECKOUT=() P_SEAL=() P_E2E=() F_TOTAL=() F_CLONE=() F_PACK=()

    # Timed runs: each commits a change to one small file (so each push is a new build) and
    # measures both sides, alternating which goes first so machine noise hits both.
    echo "$APP: timing $RUNS builds on each side ..." >&2
    local run
    for ((run = 1; run <= RUNS; run++)); do
        printf 'run %d\n' "$run" >"$WORK/version.txt"
        git -C "$WORK" commit -q -a -m "bench run $run"
        git -C "$WORK" push -q floor main >"$TMP/$APP/push-floor-$run.log" 2>&1 ||
            { cat "$TMP/$APP/push-floor-$run.log" >&2; die "$APP $run: the push to the floor repo failed"; }
        if ((run % 2)); then
            platform_run "$run"
            floor_run "$run"
        else
            floor_run "$run"
            platform_run "$run"
        fi
        printf '  %s run %2d/%d: tovuk %7s ms (checkout %s, pack+sign %s, e2e %s)   by hand %7s ms (clone %s, pack %s)\n' \
            "$APP" "$run" "$RUNS" "$(ms "${P_TOTAL[-1]}")" "$(ms "${P_CHECKOUT[-1]}")" "$(ms "${P_SEAL[-1]}")" \
            "$(ms "${P_E2E[-1]}")" "$(ms "${F_TOTAL[-1]}")" "$(ms "${F_CLONE[-1]}")" "$(ms "${F_PACK[-1]}")" >&2
    done

    local p_med f_med ratio verdict table
    p_med=$(median "${P_TOTAL[@]}")
    f_med=$(median "${F_TOTAL[@]}")
    ratio=$(((p_med * 100 + f_med / 2) / f_med)) # percent
    if ((p_med * 100 <= f_med * GOAL_PERCENT)); then verdict="met"; else verdict="NOT met"; fi
    table=$(
        echo "$size_mb MB app: $files files, artifact $(mb "$P_SIZE") MB (by hand $(mb "$F_SIZE") MB)"
        printf '%-46s %5s %10s %10s %10s\n' "" runs median p90 min
        row "tovuk build overhead (building -> ready)" "${P_TOTAL[@]}"
        row "  checkout (building -> typechecking)" "${P_CHECKOUT[@]}"
        row "  pack + sign (testing -> artifact_ready)" "${P_SEAL[@]}"
        row "tovuk push start -> build end (script)" "${P_E2E[@]}"
        row "by hand: clone + tar|zstd + sha256 (floor)" "${F_TOTAL[@]}"
        row "  git clone --no-local file://" "${F_CLONE[@]}"
        row "  tar | zstd -3 + sha256sum" "${F_PACK[@]}"
        printf '%-46s %5s %10s   goal <= %sx: %s\n' "ratio (median overhead / median floor)" "" \
            "$((ratio / 100)).$(printf '%02d' $((ratio % 100)))x" "$GOAL" "$verdict"
    )
    TABLES+=("$table")
}

for size in "${SIZES[@]}"; do
    # shellcheck disable=SC2086 # "MB FILES" splits into two arguments
    bench_size $size
done

echo
echo "build overhead: push of a one-file commit -> signed artifact, no build commands; $RUNS runs per side"
bench_version_line "$(git --version)" "zstd $(zstd -V | grep -o 'v[0-9.]*' | head -1)"
for table in "${TABLES[@]}"; do
    echo
    echo "$table"
done
