#!/usr/bin/env bash
# resources-memory: what the platform process holds for apps' resources. Deploys APPS idle
# apps (a perl server each, memory_mb = 32) to a `tovuk server`, each declaring one sqlite,
# one object-storage and one kv resource; checks that every resource is active
# (`tovuk service show --json`) and its SQLite file exists, then uses each KV and bucket once
# from inside the app's network namespace (a SET and a GET, a PUT and a GET, with the app's
# own credentials). The platform's resident memory (VmRSS of `tovuk server` and of its
# listener keeper, `tovuk server --hold-listeners`) is read with no apps, with the apps
# deployed, and after they used their resources and sat idle for IDLE seconds.
#
# The floor, in the same run and before it: another server with the same APPS apps declaring
# no resources, so what the resources cost per app shows apart from what an app costs.
#
# Anchor (issue): the platform (server + keeper) < 60 MB (10^6 bytes) with 100 apps idle,
# each with its three resources. This prints figures; it never fails because a goal was
# missed.
#
# Usage: bench/resources-memory.sh          (builds target/release/tovuk first)
# Env:   TOVUK_BIN   use this binary instead of running `cargo build --release`
#        APPS        apps per server (default 100)
#        IDLE        seconds idle before the last reading (default 75: a bucket's index is
#                    let go 30 s after its last use, at the next size measurement, every 30 s)
#        FLOOR       0 skips the server with apps without resources (default 1)
#        KINDS       the resources each app declares, a list of sqlite, object-storage and
#                    kv (default all three), to see what each kind costs
#        BENCH_KEEP  1 keeps the temp dir (server logs)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

APPS=${APPS:-100}
IDLE=${IDLE:-75}
FLOOR=${FLOOR:-1}
KINDS=${KINDS:-sqlite object-storage kv}
GOAL_MB=60
bench_positive_ints APPS IDLE
[[ $FLOOR = 0 || $FLOOR = 1 ]] || die "FLOOR must be 0 or 1, not '$FLOOR'"
read -r -a KIND_LIST <<<"$KINDS"
((${#KIND_LIST[@]})) || die "KINDS names no resource kind"
declare -A BINDING_OF=([sqlite]=DB [object-storage]=FILES [kv]=CACHE) DECLARED
for kind in "${KIND_LIST[@]}"; do
    [[ -n ${BINDING_OF[$kind]:-} ]] || die "KINDS takes sqlite, object-storage and kv, not '$kind'"
    [[ -z ${DECLARED[$kind]:-} ]] || die "KINDS names $kind twice"
    DECLARED[$kind]=1
done
# What the app's manifest declares beyond a web app's: capabilities and [[resources]].
CAPABILITIES='"http"'
RESOURCES=
for kind in "${KIND_LIST[@]}"; do
    CAPABILITIES+=", \"$kind\""
    RESOURCES+=$(printf '\n[[resources]]\nkind = "%s"\nbinding = "%s"\n' "$kind" "${BINDING_OF[$kind]}")
    RESOURCES+=$'\n'
done
# "one sqlite, one object-storage and one kv resource"
DESCRIBED=
for ((i = 0; i < ${#KIND_LIST[@]}; i++)); do
    if ((i > 0 && i == ${#KIND_LIST[@]} - 1)); then DESCRIBED+=" and "; elif ((i > 0)); then DESCRIBED+=", "; fi
    DESCRIBED+="one ${KIND_LIST[i]}"
done
DESCRIBED+=" resource"
command -v git >/dev/null || die "git is needed (Debian: apt-get install git)"
command -v perl >/dev/null || die "perl is needed for the apps (Debian: apt-get install perl)"
command -v bwrap >/dev/null || die "bubblewrap is needed by the runner (Debian: apt-get install bubblewrap)"
command -v nsenter >/dev/null || die "nsenter is needed to reach the apps' network namespaces (Debian: apt-get install util-linux)"
# redis-cli (redis-tools) and curl (7.75+, for --aws-sigv4) use each resource once.
missing=()
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
    if [[ $(id -u) = 0 ]] && command -v apt-get >/dev/null; then
        echo "$BENCH_NAME: installing ${missing[*]} (apt-get install ${missing[*]}) ..." >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
    else
        die "needs ${missing[*]}; run: sudo apt-get install ${missing[*]}"
    fi
fi
CURL_VERSION=$(curl --version | awk 'NR == 1 { print $2 }')
printf '7.75.0\n%s\n' "$CURL_VERSION" | sort -V -C || die "curl $CURL_VERSION has no --aws-sigv4 (7.75 or later is needed)"

bench_binary
bench_tmp FLOOR_PID:15
bench_isolate_env

# --- readings --------------------------------------------------------------------------
# "<VmRSS> <RssAnon> <RssFile> <Threads>" (kB, kB, kB, count) of a process; zeros when gone.
proc_mem() { # pid
    awk '/^VmRSS:/ { r = $2 } /^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } /^Threads:/ { t = $2 }
        END { printf "%d %d %d %d\n", r, a, f, t }' "/proc/$1/status" 2>/dev/null || echo "0 0 0 0"
}
# The listener keeper of the server whose data is in DIR (empty if none).
keeper_of() { # dir
    local pid
    for pid in $(bench_pids_of tovuk "$1/data"); do
        if grep -aqF -- --hold-listeners "/proc/$pid/cmdline" 2>/dev/null; then
            echo "$pid"
            return
        fi
    done
}
declare -A MEM # phase:point -> "server rss anon file threads keeper rss"
read_mem() { # phase, point, server pid, dir
    local keeper keeper_rss=0
    keeper=$(keeper_of "$4")
    [[ -z $keeper ]] || read -r keeper_rss _ < <(proc_mem "$keeper")
    MEM[$1:$2]="$(proc_mem "$3") $keeper_rss"
    echo "  $1, $2: server $(awk '{ print $1 }' <<<"${MEM[$1:$2]}") kB, keeper $keeper_rss kB${keeper:+ (pid $keeper)}" >&2
}

# --- the apps ----------------------------------------------------------------------------
# The app process of an instance: the last of the sandbox's descendants (bwrap -> bwrap ->
# perl).
leaf_of() { # pid
    local pid=$1 child
    while :; do
        child=$(awk '{ print $1 }' "/proc/$pid/task/$pid/children" 2>/dev/null)
        [[ -n $child ]] || break
        pid=$child
    done
    echo "$pid"
}
env_of() { # pid, name -> its value in the process's environment
    tr '\0' '\n' <"/proc/$1/environ" | sed -n "s/^$2=//p" | head -1
}

# Deploys APPS apps (d001...) to the server in TOVUK_URL, with the three resources or none,
# and waits until each answers through the router.
deploy_apps() { # phase (plain, resources), router URL
    local phase=$1 router=$2 dir=$TMP/$1/app n app started answering=0
    git init -q -b main "$dir"
    cat >"$dir/server.pl" <<'PERL'
use IO::Socket::INET;
my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ENV{PORT}, Listen => 16, ReuseAddr => 1) or die "cannot listen: $!";
while (my $c = $s->accept) {
  my $req = <$c>;
  while (my $l = <$c>) { last if $l =~ /^\r?\n$/ }
  print $c "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
  close $c;
}
PERL
    echo "$phase: deploying $APPS apps ..." >&2
    started=$(date +%s)
    for n in $(seq -w 1 "$APPS"); do
        app=d$n
        bench_create_app "$app" "$TMP/$phase/create.json"
        write_manifest "$dir" "$app" "perl server.pl" 60s
        printf '\n[limits]\nmemory_mb = 32\n' >>"$dir/tovuk.toml"
        if [[ $phase = resources ]]; then
            sed -i "s/^capabilities = .*/capabilities = [$CAPABILITIES]/" "$dir/tovuk.toml"
            printf '%s' "$RESOURCES" >>"$dir/tovuk.toml"
        fi
        git -C "$dir" add -A
        git -C "$dir" commit -q -m "$app" --allow-empty
        git -C "$dir" push -q -o detach "$PLATFORM_REMOTE" main:main 2>"$TMP/$phase/push.log" ||
            { cat "$TMP/$phase/push.log" >&2; die "push of $app failed"; }
    done
    echo "$phase: pushed in $(($(date +%s) - started)) s; waiting for every app to answer ..." >&2
    for n in $(seq -w 1 "$APPS"); do
        for _ in $(seq 600); do
            if curl -sf --max-time 2 -H "Host: d$n.localhost" "$router/" >/dev/null; then
                answering=$((answering + 1))
                continue 2
            fi
            sleep 0.1
        done
    done
    ((answering == APPS)) || die "$phase: only $answering of $APPS apps answer through the router"
    echo "$phase: all $APPS apps answer after $(($(date +%s) - started)) s" >&2
}

# Checks that each app's resources are active and its SQLite file (if any) is there.
check_resources() { # data dir
    local n app show active kind
    for n in $(seq -w 1 "$APPS"); do
        app=d$n
        show=$("$BIN" service show "$app" --json | tr -d ' \n\t') || die "tovuk service show $app failed"
        active=0
        for kind in "${KIND_LIST[@]}"; do
            grep -qF "\"kind\":\"$kind\",\"binding\":\"${BINDING_OF[$kind]}\",\"status\":\"active\"" <<<"$show" &&
                active=$((active + 1))
        done
        ((active == ${#KIND_LIST[@]})) || die "$app has $active of its ${#KIND_LIST[@]} resources active: $show"
        [[ -z ${DECLARED[sqlite]:-} || -s $1/volumes/$app/sqlite/DB.db ]] ||
            die "$app has no SQLite file at $1/volumes/$app/sqlite/DB.db"
    done
}

# Uses each app's KV (SET, GET) and bucket (PUT, GET) once, from inside its network (those
# it declares).
use_resources() {
    local n app status pid netns leaf in_ns url key secret region endpoint bucket answer code
    printf 'hello from the bench\n' >"$TMP/object"
    for n in $(seq -w 1 "$APPS"); do
        app=d$n
        status=$("$BIN" app status "$app" --json | tr -d ' \n\t')
        pid=$(grep -o '"instance":{[^}]*}' <<<"$status" | grep -o '"pid":[0-9]*' | cut -d: -f2)
        [[ -n $pid ]] || die "tovuk app status $app has no instance pid: $status"
        netns=$(grep -o '"instance":{[^}]*}' <<<"$status" | grep -o '"netns":"[^"]*"' | cut -d'"' -f4) || true
        in_ns=()
        [[ -z $netns ]] || in_ns=(nsenter --net="$netns")
        leaf=$(leaf_of "$pid")
        [[ -r /proc/$leaf/environ ]] || die "cannot read /proc/$leaf/environ: run as root"
        if [[ -n ${DECLARED[kv]:-} ]]; then
            url=$(env_of "$leaf" REDIS_URL)
            [[ -n $url ]] || die "$app's process $leaf has no REDIS_URL"
            answer=$("${in_ns[@]}" redis-cli --no-auth-warning -u "$url" set bench "$app" 2>&1) || true
            [[ $answer = OK ]] || die "SET in $app's KV answered '$answer'"
            answer=$("${in_ns[@]}" redis-cli --no-auth-warning -u "$url" get bench 2>&1) || true
            [[ $answer = "$app" ]] || die "GET in $app's KV answered '$answer'"
        fi
        if [[ -n ${DECLARED[object-storage]:-} ]]; then
            key=$(env_of "$leaf" AWS_ACCESS_KEY_ID)
            secret=$(env_of "$leaf" AWS_SECRET_ACCESS_KEY)
            region=$(env_of "$leaf" AWS_REGION)
            endpoint=$(env_of "$leaf" AWS_ENDPOINT_URL_S3)
            bucket=$(env_of "$leaf" BUCKET_NAME)
            [[ -n $key && -n $secret && -n $region && -n $endpoint && -n $bucket ]] ||
                die "$app's process $leaf lacks the object storage's variables"
            # curl 7.x sends no x-amz-content-sha256, which S3 requires.
            code=$("${in_ns[@]}" curl -sS -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:$region:s3" \
                --user "$key:$secret" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -T "$TMP/object" \
                "$endpoint/$bucket/bench" 2>&1) || true
            [[ $code = 200 ]] || die "PUT to $app's bucket answered '$code'"
            answer=$("${in_ns[@]}" curl -sS --aws-sigv4 "aws:amz:$region:s3" --user "$key:$secret" \
                -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$endpoint/$bucket/bench" 2>&1) || true
            [[ $answer = "$(cat "$TMP/object")" ]] || die "GET from $app's bucket answered '$answer'"
        fi
    done
}

# One server: its memory with no apps, APPS apps deployed (with resources: checked, then each
# used once), and after IDLE seconds idle.
run_phase() { # phase (plain, resources), pid variable
    local phase=$1 pidvar=$2 dir=$TMP/$1 pid
    bench_start_server_in "$pidvar" "$dir"
    pid=${!pidvar}
    API_URL=$STARTED_API_URL
    export TOVUK_URL=$API_URL TOVUK_TOKEN=$STARTED_TOKEN
    sleep 2
    read_mem "$phase" empty "$pid" "$dir"
    deploy_apps "$phase" "$STARTED_ROUTER_URL"
    if [[ $phase = resources ]]; then
        check_resources "$dir/data"
        echo "$phase: every app has its ${#KIND_LIST[@]} resources active" >&2
        sleep 5
        read_mem "$phase" deployed "$pid" "$dir"
        echo "$phase: using each KV and bucket once (those declared) ..." >&2
        use_resources
    fi
    echo "$phase: idle for $IDLE s ..." >&2
    sleep "$IDLE"
    read_mem "$phase" idle "$pid" "$dir"
}

if ((FLOOR)); then
    run_phase plain FLOOR_PID
    echo "plain: stopping that server and its apps ..." >&2
    stop_pid "$FLOOR_PID" 15 "the server without resources"
    FLOOR_PID=
    bench_kill_apps "$TMP/plain"
    bench_stop_keepers "$TMP/plain"
    bench_unmount_volumes "$TMP/plain"
fi
run_phase resources SERVER_PID

# --- figures ---------------------------------------------------------------------------
mb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k * 1024 / 1e6 }'; } # kB -> MB (10^6 bytes)
field() { awk -v i="$3" '{ print $i }' <<<"${MEM[$1:$2]}"; }       # phase, point, field number
platform_kb() { echo $(($(field "$1" "$2" 1) + $(field "$1" "$2" 5))); }
per_app() { # phase, point -> KB per app over the phase's empty server (platform)
    awk -v full="$(platform_kb "$1" "$2")" -v empty="$(platform_kb "$1" empty)" -v n="$APPS" \
        'BEGIN { printf "%.0f KB", (full - empty) / n }'
}
row() { # label, phase, point
    local per=-
    [[ $3 = empty ]] || per=$(per_app "$2" "$3")
    printf '%-46s %10s %10s %10s %8s %10s %10s %10s\n' "$1" "$(mb "$(field "$2" "$3" 1)")" "$(mb "$(field "$2" "$3" 2)")" \
        "$(mb "$(field "$2" "$3" 3)")" "$(field "$2" "$3" 4)" "$(mb "$(field "$2" "$3" 5)")" \
        "$(mb "$(platform_kb "$2" "$3")")" "$per"
}

echo
echo "resources-memory: $APPS idle apps (perl, memory_mb = 32), each with $DESCRIBED"
VERSION_SUFFIX="; readings after $IDLE s idle; MB = 10^6 bytes" bench_version_line
echo
printf '%-46s %10s %10s %10s %8s %10s %10s %10s\n' "" "server" "anon" "file" threads "keeper" "platform" "per app"
if ((FLOOR)); then
    row "no apps (server without resources)" plain empty
    row "$APPS apps, no resources (floor)" plain idle
fi
row "no apps (server with resources)" resources empty
row "$APPS apps with their resources, deployed" resources deployed
row "$APPS apps, KV and bucket used once, idle" resources idle
if ((FLOOR)); then
    printf '%-46s %75s\n' "the resources' cost per app (with - without)" "$(awk -v a="$(platform_kb resources idle)" \
        -v ae="$(platform_kb resources empty)" -v b="$(platform_kb plain idle)" -v be="$(platform_kb plain empty)" \
        -v n="$APPS" 'BEGIN { printf "%.0f KB", ((a - ae) - (b - be)) / n }')"
fi
total=$(platform_kb resources idle)
if ((total * 1024 < GOAL_MB * 1000000)); then verdict=met; else verdict="NOT met"; fi
printf '%-46s %64s   goal < %d MB: %s\n' "platform with $APPS apps and their resources" "$(mb "$total")" "$GOAL_MB" "$verdict"
echo
echo "server: VmRSS of \`tovuk server\` (anon and file: RssAnon, RssFile); keeper: \`tovuk server --hold-listeners\`;"
echo "platform = server + keeper; per app = (platform - platform with no apps) / $APPS"
