#!/usr/bin/env bash
# build-cache: a second deploy after a one-line change, with the app's build caches (the
# package managers' downloads, kept per app) and without them (the cache emptied first),
# measured in the same run, for a stock Node app (express, from npm) and a stock Python app
# (flask and gunicorn, from PyPI), both deployed without a tovuk.toml.
#
# Anchor (issue): show what the caches buy; the figures are the `git push` wall time, which
# follows the deploy until it runs (installing the dependencies is most of it).
# This prints figures; it never fails because one side is slower than hoped.
#
# Usage: bench/build-cache.sh               (builds target/release/tovuk first)
#        TOVUK_BIN=/path/to/tovuk RUNS=5 bench/build-cache.sh
# Env:   TOVUK_BIN   use this binary instead of running `cargo build --release`
#        RUNS        one-line-change deploys per side and app (default 3)
#        BENCH_KEEP  1 keeps the temp dir (server log, push logs)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-3}
bench_positive_ints RUNS
command -v git >/dev/null || die "git is needed (Debian: apt-get install git)"
command -v npm >/dev/null || die "npm is needed for the Node app (Debian: apt-get install npm)"
/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || die "python3-venv is needed for the Python app (Debian: apt-get install python3-venv)"
[[ -n ${EPOCHREALTIME:-} ]] || die "bash 5+ is needed (EPOCHREALTIME)"

bench_binary
bench_tmp
bench_isolate_env
bench_start_server

# The two stock apps, as a user would push them: no tovuk.toml.
write_node() { # dir
    cat >"$1/package.json" <<'EOF'
{"name": "web", "dependencies": {"express": "^4"}, "scripts": {"start": "node server.js"}}
EOF
    cat >"$1/server.js" <<'EOF'
const express = require('express');
const app = express();
app.get('/', (req, res) => res.send('hello'));
app.listen(process.env.PORT);
EOF
}
write_python() { # dir
    printf 'flask\ngunicorn\n' >"$1/requirements.txt"
    printf 'web: gunicorn app:app\n' >"$1/Procfile"
    cat >"$1/app.py" <<'EOF'
from flask import Flask
app = Flask(__name__)
@app.get("/")
def index():
    return "hello"
EOF
}

# One timed push of a one-line change (ms), which returns once the deploy runs.
timed_push() { # dir, log
    local start end
    echo "// $(now_us)" >>"$1/marker.txt"
    git -C "$1" add -A
    git -C "$1" commit -q -m "one-line change"
    start=$(now_us)
    git -C "$1" push tovuk main >"$2" 2>&1 || { cat "$2" >&2; die "a push failed"; }
    end=$(now_us)
    grep -q "is running" "$2" || { cat "$2" >&2; die "the deploy did not run (see above)"; }
    echo $(((end - start) / 1000))
}

declare -A WARM COLD FIRST
for kind in node python; do
    app=cache-$kind
    bench_create_app "$app" "$TMP/$app.json"
    dir=$TMP/$app
    git init -q -b main "$dir"
    "write_$kind" "$dir"
    git -C "$dir" remote add tovuk "$PLATFORM_REMOTE"
    echo "$kind: first deploy (nothing cached) ..." >&2
    FIRST[$kind]=$(timed_push "$dir" "$TMP/$app-first.log")
    warm=() cold=()
    for ((run = 1; run <= RUNS; run++)); do
        # Alternate which side goes first, so machine noise hits both.
        for side in $( ((run % 2)) && echo "warm cold" || echo "cold warm"); do
            if [[ $side = cold ]]; then
                rm -rf "$TMP/data/cache/$app"
            fi
            ms=$(timed_push "$dir" "$TMP/$app-$side-$run.log")
            echo "  $kind run $run $side: $ms ms" >&2
            if [[ $side = warm ]]; then warm+=("$ms"); else cold+=("$ms"); fi
        done
    done
    WARM[$kind]=$(printf '%s\n' "${warm[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    COLD[$kind]=$(printf '%s\n' "${cold[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
done

echo "build-cache: git push -> running after a one-line change, with and without the app's build caches"
VERSION_SUFFIX="; median of $RUNS" bench_version_line "npm $(npm --version)" "$(/usr/bin/python3 --version)"
echo
printf '%-28s %12s %12s %12s %10s\n' "app (no tovuk.toml)" "first" "no cache" "cached" "saved"
for kind in node python; do
    label=$([[ $kind = node ]] && echo "node: express (npm)" || echo "python: flask, gunicorn (pip)")
    saved=$(awk -v c="${COLD[$kind]}" -v w="${WARM[$kind]}" 'BEGIN { if (c > 0) printf "%.0f%%", 100 * (c - w) / c; else print "-" }')
    printf '%-28s %9s ms %9s ms %9s ms %10s\n' "$label" "${FIRST[$kind]}" "${COLD[$kind]}" "${WARM[$kind]}" "$saved"
done
