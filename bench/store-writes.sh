#!/usr/bin/env bash
# store-writes: what synchronous=FULL costs. Deploy transitions (the store's commonest write:
# the deploy's state changes and its event is recorded, one transaction) per second on a
# real tovuk store, with synchronous=FULL (what tovuk runs: acknowledged means on disk)
# beside synchronous=NORMAL (WAL default: may lose the last commits on power loss), in the
# same run on the same disk.
#
# Anchor (issue): FULL vs NORMAL, same run. This prints figures; it never fails on them.
#
# Usage: bench/store-writes.sh       (builds target/release/tovuk first)
# Env:   TOVUK_BIN     use this binary instead of running `cargo build --release`
#        TRANSITIONS   transactions per mode (default 2000); RUNS per mode (default 3)
#        BENCH_KEEP    1 keeps the temp dir
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TRANSITIONS=${TRANSITIONS:-2000}
RUNS=${RUNS:-3}
bench_positive_ints TRANSITIONS RUNS
command -v sqlite3 >/dev/null || die "sqlite3 is needed (Debian: apt-get install sqlite3)"

bench_binary
bench_tmp
bench_isolate_env
bench_start_server
"$BIN" app create bench --json >"$TMP/app.json" || die "tovuk app create failed"
stop_pid "$SERVER_PID" 15 "the server"
SERVER_PID=
APP_ID=$(grep -o '"id": *"app_[^"]*"' "$TMP/app.json" | head -1 | cut -d'"' -f4)
[[ -n $APP_ID ]] || die "no app id"

# One transition: what a deploy going from one state to the next writes.
{
    for ((i = 0; i < TRANSITIONS; i++)); do
        echo "BEGIN IMMEDIATE;"
        echo "UPDATE deploys SET state = CASE state WHEN 'queued' THEN 'building' ELSE 'queued' END, updated_at = '2026-01-01T00:00:00.000Z' WHERE id = 'dep_bench';"
        echo "INSERT INTO deploy_events (deploy_id, seq, state, at) SELECT 'dep_bench', coalesce(max(seq), 0) + 1, 'building', '2026-01-01T00:00:00.000Z' FROM deploy_events WHERE deploy_id = 'dep_bench';"
        echo "COMMIT;"
    done
} >"$TMP/transitions.sql"

run_mode() { # synchronous mode -> transitions per second
    local db=$TMP/$1.db start end
    cp "$TMP/data/state.db" "$db"
    sqlite3 "$db" "PRAGMA journal_mode=WAL;" >/dev/null
    sqlite3 "$db" "PRAGMA foreign_keys=OFF; INSERT INTO deploys (id, app_id, state, source_kind, ref, sha, forced, token_id, source_op_id, build_op_id, deploy_op_id, build_job_id, created_at, updated_at) VALUES ('dep_bench', '$APP_ID', 'queued', 'git', 'refs/heads/main', 'abc', 0, NULL, 'op_a', 'op_b', 'op_c', 'bld_bench', 'x', 'x');" ||
        die "cannot seed the bench deploy (the schema changed?)"
    start=$(date +%s%N)
    { echo "PRAGMA synchronous=$1; PRAGMA wal_autocheckpoint=0;"; cat "$TMP/transitions.sql"; } | sqlite3 "$db" >/dev/null
    end=$(date +%s%N)
    echo $((TRANSITIONS * 1000000000 / (end - start)))
}

echo "$RUNS runs of $TRANSITIONS transitions per mode, alternating ..." >&2
FULL=() NORMAL=()
for ((run = 0; run < RUNS; run++)); do
    FULL+=("$(run_mode FULL)")
    NORMAL+=("$(run_mode NORMAL)")
done
echo
echo "store writes: deploy transitions per second, WAL, one transaction each"
bench_version_line "sqlite3 $(sqlite3 --version | cut -d' ' -f1)" "$(df -T "$TMP" | awk 'NR == 2 { print $2 }') disk"
echo
printf '%-34s %12s %12s\n' "" median min
printf '%-34s %12s %12s\n' "synchronous=FULL (tovuk)" "$(median "${FULL[@]}")/s" "$(minimum "${FULL[@]}")/s"
printf '%-34s %12s %12s\n' "synchronous=NORMAL" "$(median "${NORMAL[@]}")/s" "$(minimum "${NORMAL[@]}")/s"
