#!/usr/bin/env bash
# resources: throughput of the KV (Redis protocol) and the object storage (S3 API) the
# platform serves to apps, printed beside the same load on redis-server and on nginx,
# measured in the same run. (SQLite is a file the app opens with its own library: the
# platform is not on its path, so there is nothing of the platform's to time there.)
#
# One idle app (a perl server) declares a kv and an object-storage resource. The endpoints
# listen inside the instance's network namespace (127.0.0.1:6379 and :9000, or ports of the
# host's loopback on a machine without namespaces): the script reads the app process's
# variables (REDIS_URL, AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
# BUCKET_NAME) from /proc/<pid>/environ, and runs the clients, redis-server and nginx in that
# namespace (`nsenter --net`, as root), so every target is reached over the same loopback.
#
#   KV:  redis-benchmark -t set,get -P 16 -c 50 -n 200000 -r 1 --csv (the issue's command: one
#        key, as without -r; KV_KEYS spreads the keys), against the tovuk
#        KV (AUTH with the URL's user and password) and against redis-server with
#        appendonly yes and appendfsync everysec (the floor; also always, for reference).
#   S3:  curl, one keep-alive connection, requests one after another: GET and PUT of a 1 KiB
#        and a 16 MiB object, signed with SigV4 (--aws-sigv4) for tovuk; the same files GET
#        from nginx (static) and PUT to it (WebDAV `dav_methods PUT`), unsigned.
#
# Anchor (issue): tovuk KV >= 0.5x redis-server's ops/s for SET and for GET (p99 printed
# for both); tovuk GET of a 16 MiB object >= 0.8x nginx's throughput. This prints figures;
# it never fails because a goal was missed.
#
# Usage: bench/resources.sh                 (builds target/release/tovuk first)
#        TOVUK_BIN=/path/to/tovuk RUNS=5 bench/resources.sh
# Env:   TOVUK_BIN     use this binary instead of running `cargo build --release`
#        RUNS          rounds, each target once per round, the order alternating (default 3)
#        KV_REQUESTS   redis-benchmark -n (default 200000); KV_CLIENTS -c (default 50);
#        KV_PIPELINE   -P (default 16); KV_KEYS -r, the random keyspace (default 1)
#        REDIS_FSYNC   the redis-server floors, a list of no (no AOF), everysec, always;
#                      the first is the one the goal is against (default "everysec always")
#        SMALL_OPS     1 KiB requests per run and side (default 500)
#        LARGE_OPS     16 MiB requests per run and side (default 20)
#        BENCH_KEEP    1 keeps the temp dir (server log, redis-benchmark and curl reports)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-3}
KV_REQUESTS=${KV_REQUESTS:-200000}
KV_CLIENTS=${KV_CLIENTS:-50}
KV_PIPELINE=${KV_PIPELINE:-16}
KV_KEYS=${KV_KEYS:-1}
REDIS_FSYNC=${REDIS_FSYNC:-everysec always}
SMALL_OPS=${SMALL_OPS:-500}
LARGE_OPS=${LARGE_OPS:-20}
GOAL_KV=0.50  # tovuk / redis-server, ops/s, SET and GET, at least
GOAL_GET=0.80 # tovuk / nginx, GET 16 MiB, MiB/s, at least
SMALL=1024
LARGE=$((16 << 20))
APP=benchres

bench_positive_ints RUNS KV_REQUESTS KV_CLIENTS KV_PIPELINE KV_KEYS SMALL_OPS LARGE_OPS
read -r -a FSYNC_MODES <<<"$REDIS_FSYNC"
((${#FSYNC_MODES[@]})) || die "REDIS_FSYNC names no mode"
declare -A SEEN_MODE
for mode in "${FSYNC_MODES[@]}"; do
    [[ $mode = no || $mode = everysec || $mode = always ]] || die "REDIS_FSYNC takes no, everysec and always, not '$mode'"
    [[ -z ${SEEN_MODE[$mode]:-} ]] || die "REDIS_FSYNC names $mode twice"
    SEEN_MODE[$mode]=1
done

# redis-server, redis-tools (redis-benchmark, redis-cli), nginx and curl, installed with
# apt-get when missing and running as root (as lib.sh's bench_need_wrk_nginx does).
need_packages() {
    local missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v redis-benchmark >/dev/null && command -v redis-cli >/dev/null || missing+=(redis-tools)
    [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
    command -v curl >/dev/null || missing+=(curl)
    if ((${#missing[@]})); then
        if [[ $(id -u) = 0 ]] && command -v apt-get >/dev/null; then
            echo "$BENCH_NAME: installing ${missing[*]} (apt-get install ${missing[*]}) ..." >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 ||
                die "apt-get install ${missing[*]} failed"
        else
            die "needs ${missing[*]}; run: sudo apt-get install ${missing[*]}"
        fi
    fi
}
command -v git >/dev/null || die "git is needed (Debian: apt-get install git)"
command -v perl >/dev/null || die "perl is needed for the app (Debian: apt-get install perl)"
command -v bwrap >/dev/null || die "bubblewrap is needed by the runner (Debian: apt-get install bubblewrap)"
command -v nsenter >/dev/null || die "nsenter is needed to reach the instance's network namespace (Debian: apt-get install util-linux)"
need_packages
NGINX=/usr/sbin/nginx
# --aws-sigv4 came with curl 7.75.
CURL_VERSION=$(curl --version | awk 'NR == 1 { print $2 }')
printf '7.75.0\n%s\n' "$CURL_VERSION" | sort -V -C || die "curl $CURL_VERSION has no --aws-sigv4 (7.75 or later is needed)"

bench_binary
bench_tmp NGINX_PID:10 REDIS1_PID:10 REDIS2_PID:10 REDIS3_PID:10
bench_isolate_env
bench_start_server
bench_create_app "$APP" "$TMP/app.json"

# --- the app: an idle perl server that declares a kv and an object store -----------------
WORK=$TMP/app
git init -q -b main "$WORK"
cat >"$WORK/server.pl" <<'PERL'
use IO::Socket::INET;
my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ENV{PORT}, Listen => 16, ReuseAddr => 1) or die "cannot listen: $!";
while (my $c = $s->accept) {
  my $req = <$c>;
  while (my $l = <$c>) { last if $l =~ /^\r?\n$/ }
  print $c "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
  close $c;
}
PERL
write_manifest "$WORK" "$APP" "perl server.pl" 30s
sed -i 's/^capabilities = .*/capabilities = ["http", "object-storage", "kv"]/' "$WORK/tovuk.toml"
printf '\n[[resources]]\nkind = "object-storage"\nbinding = "FILES"\n\n[[resources]]\nkind = "kv"\nbinding = "CACHE"\n' \
    >>"$WORK/tovuk.toml"
git -C "$WORK" add -A
git -C "$WORK" commit -q -m "idle app with a kv and an object store"

echo "deploying app $APP ..." >&2
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
STATUS=$("$BIN" app status "$APP" --json | tr -d ' \n\t')
SANDBOX_PID=$(grep -o '"instance":{[^}]*}' <<<"$STATUS" | grep -o '"pid":[0-9]*' | cut -d: -f2)
[[ -n $SANDBOX_PID ]] || die "tovuk app status has no instance pid: $STATUS"
# The instance's network namespace (/proc/PID/ns/net); empty when it shares the host's.
NETNS=$(grep -o '"instance":{[^}]*}' <<<"$STATUS" | grep -o '"netns":"[^"]*"' | cut -d'"' -f4) || true

# The app process: the last of the sandbox's descendants (bwrap -> bwrap -> perl).
APP_PID=$SANDBOX_PID
while :; do
    child=$(awk '{ print $1 }' "/proc/$APP_PID/task/$APP_PID/children" 2>/dev/null)
    [[ -n $child ]] || break
    APP_PID=$child
done
[[ $(cat "/proc/$APP_PID/comm") = perl ]] || die "the instance's last process ($APP_PID) is $(cat "/proc/$APP_PID/comm"), not the app's perl"
[[ -r /proc/$APP_PID/environ ]] || die "cannot read /proc/$APP_PID/environ: run as root"
app_env() { # name -> its value in the app's environment
    local value
    value=$(tr '\0' '\n' <"/proc/$APP_PID/environ" | sed -n "s/^$1=//p" | head -1)
    [[ -n $value ]] || die "the app has no $1 in its environment"
    echo "$value"
}
REDIS_URL=$(app_env REDIS_URL)
S3_ENDPOINT=$(app_env AWS_ENDPOINT_URL_S3)
S3_KEY=$(app_env AWS_ACCESS_KEY_ID)
S3_SECRET=$(app_env AWS_SECRET_ACCESS_KEY)
S3_REGION=$(app_env AWS_REGION)
BUCKET=$(app_env BUCKET_NAME)
# redis://<user>:<password>@<host>:<port>/0
[[ $REDIS_URL =~ ^redis://([^:@/]+):([^@/]+)@([0-9.]+):([0-9]+)(/[0-9]+)?$ ]] ||
    die "REDIS_URL is not redis://user:password@host:port/db: ${REDIS_URL%%:*}://..."
KV_USER=${BASH_REMATCH[1]} KV_PASS=${BASH_REMATCH[2]} KV_HOST=${BASH_REMATCH[3]} KV_PORT=${BASH_REMATCH[4]}
[[ $S3_ENDPOINT =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || die "unexpected AWS_ENDPOINT_URL_S3: $S3_ENDPOINT"

IN_NS=()
if [[ -n $NETNS ]]; then
    [[ $(id -u) = 0 ]] || die "the instance runs in a network namespace of its own ($NETNS): run as root to enter it"
    nsenter --net="$NETNS" true || die "cannot enter the instance's network namespace $NETNS"
    IN_NS=(nsenter --net="$NETNS")
    echo "the instance is in network namespace $NETNS: clients, redis-server and nginx run inside it" >&2
fi

# --- the floors: redis-server per fsync mode, nginx with WebDAV PUT -----------------------
declare -A REDIS_PORT
start_redis() { # index (1-3), mode
    local dir=$TMP/redis-$2 port aof=(--appendonly yes --appendfsync "$2")
    [[ $2 != no ]] || aof=(--appendonly no)
    port=$(free_port "$NETNS")
    mkdir -p "$dir"
    # nsenter --net execs redis-server: $! is its pid.
    "${IN_NS[@]}" redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' "${aof[@]}" \
        --daemonize no --logfile "$dir/redis.log" >/dev/null 2>&1 &
    printf -v "REDIS$1_PID" '%s' "$!"
    REDIS_PORT[redis-$2]=$port
}
for ((i = 0; i < ${#FSYNC_MODES[@]}; i++)); do start_redis $((i + 1)) "${FSYNC_MODES[i]}"; done

NGINX_DIR=$TMP/nginx
mkdir -p "$NGINX_DIR/root/$BUCKET" "$NGINX_DIR/body"
NGINX_PORT=$(free_port "$NETNS")
# As root, nginx's worker would run as nobody and could not read or write the temp dir
# (mode 0700): it runs as root, like the platform.
NGINX_USER=
[[ $(id -u) != 0 ]] || NGINX_USER="user root;"
cat >"$NGINX_DIR/nginx.conf" <<EOF
$NGINX_USER
worker_processes 1;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    client_max_body_size 0;
    client_body_temp_path $NGINX_DIR/body;
    proxy_temp_path $NGINX_DIR/proxy;
    fastcgi_temp_path $NGINX_DIR/fastcgi;
    uwsgi_temp_path $NGINX_DIR/uwsgi;
    scgi_temp_path $NGINX_DIR/scgi;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $NGINX_DIR/root;
        location / {
            dav_methods PUT;
            create_full_put_path on;
        }
    }
}
EOF
"${IN_NS[@]}" "$NGINX" -p "$NGINX_DIR/" -e "$NGINX_DIR/error.log" -c "$NGINX_DIR/nginx.conf" -g 'daemon off;' \
    >"$NGINX_DIR/stdout.log" 2>&1 &
# shellcheck disable=SC2034 # the exit trap (bench_tmp) stops it
NGINX_PID=$!
NGINX_URL=http://127.0.0.1:$NGINX_PORT

# --- checks: every target answers before it is loaded -------------------------------------
redis_cli() { # target, redis-cli args...
    local target=$1
    shift
    if [[ $target = tovuk ]]; then
        REDISCLI_AUTH=$KV_PASS "${IN_NS[@]}" redis-cli --no-auth-warning -h "$KV_HOST" -p "$KV_PORT" --user "$KV_USER" "$@"
    else
        "${IN_NS[@]}" redis-cli -h 127.0.0.1 -p "${REDIS_PORT[$target]}" "$@"
    fi
}
KV_TARGETS=(tovuk)
for mode in "${FSYNC_MODES[@]}"; do KV_TARGETS+=("redis-$mode"); done
for target in "${KV_TARGETS[@]}"; do
    answer=
    for _ in $(seq 100); do
        answer=$(redis_cli "$target" ping 2>&1) && [[ $answer = PONG ]] && break
        sleep 0.1
    done
    [[ $answer = PONG ]] || die "$target does not answer PING: $answer"
done

# curl with one keep-alive connection for a whole list of requests; SigV4 for tovuk. curl
# 7.x does not send x-amz-content-sha256, which S3 requires: UNSIGNED-PAYLOAD, as SDKs send
# over TLS. PUTs go with curl's `Expect: 100-continue` on both sides (as SDKs send it; curl
# would sign an `Expect:` header that removes it, and the signature would not match).
SIGN=(--aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_KEY:$S3_SECRET" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD')
base_of() { # side -> the bucket's URL
    if [[ $1 = tovuk ]]; then echo "$S3_ENDPOINT/$BUCKET"; else echo "$NGINX_URL/$BUCKET"; fi
}
s3_curl() { # side, curl args...
    local side=$1
    shift
    if [[ $side = tovuk ]]; then
        "${IN_NS[@]}" curl -sS "${SIGN[@]}" "$@"
    else
        "${IN_NS[@]}" curl -sS "$@"
    fi
}

FILES=$TMP/files
mkdir -p "$FILES"
head -c "$SMALL" /dev/urandom >"$FILES/small"
head -c "$LARGE" /dev/urandom >"$FILES/large"
# The objects GETs read: PUT to tovuk, copied into nginx's root.
for size in small large; do
    code=
    for _ in $(seq 100); do
        code=$(s3_curl tovuk -o "$TMP/put.out" -w '%{http_code}' -T "$FILES/$size" "$(base_of tovuk)/get-$size" 2>&1) &&
            [[ $code = 200 ]] && break
        sleep 0.1
    done
    [[ $code = 200 ]] || { cat "$TMP/put.out" >&2 2>/dev/null || true; die "PUT of the $size object to tovuk answered '$code'"; }
    cp "$FILES/$size" "$NGINX_DIR/root/$BUCKET/get-$size"
    for side in tovuk nginx; do
        ok=
        for _ in $(seq 100); do
            s3_curl "$side" -f -o "$TMP/get.out" "$(base_of "$side")/get-$size" 2>/dev/null && cmp -s "$TMP/get.out" "$FILES/$size" && { ok=1; break; }
            sleep 0.1
        done
        [[ -n $ok ]] || { tail -3 "$NGINX_DIR/error.log" >&2 2>/dev/null || true; die "a GET of the $size object from $side does not return the file"; }
    done
done

# --- load ----------------------------------------------------------------------------
declare -A KV_RPS KV_P99 S3_US CONNECTS
# One redis-benchmark run: appends ops/s and p99 (µs) of SET and GET for the target.
run_kv() { # target, label
    local target=$1 report=$TMP/kv-$1-$2.csv auth=() port row rps p99
    if [[ $target = tovuk ]]; then
        auth=(--user "$KV_USER" -a "$KV_PASS")
        port=$KV_PORT
    else
        port=${REDIS_PORT[$target]}
    fi
    "${IN_NS[@]}" redis-benchmark -h 127.0.0.1 -p "$port" "${auth[@]}" -t set,get -P "$KV_PIPELINE" -c "$KV_CLIENTS" \
        -n "$KV_REQUESTS" -r "$KV_KEYS" --csv >"$report" 2>"$report.err" ||
        { cat "$report" "$report.err" >&2; die "redis-benchmark against $target failed"; }
    LAST=
    for test in SET GET; do
        # Columns by their header ("rps", "p99_latency_ms"): redis-benchmark 7 prints both.
        row=$(awk -F, -v t="\"$test\"" '
            NR == 1 { for (i = 1; i <= NF; i++) { gsub("\"", "", $i); col[$i] = i }; next }
            $1 == t { gsub("\"", ""); if (col["rps"] && col["p99_latency_ms"]) printf "%d %d", $col["rps"] + 0.5, $col["p99_latency_ms"] * 1000 + 0.5 }' "$report")
        read -r rps p99 <<<"$row"
        [[ ${rps:-0} -gt 0 && -n ${p99:-} ]] || { cat "$report" "$report.err" >&2; die "cannot read $test ops/s and p99 from redis-benchmark's CSV for $target (redis-benchmark 7 or later prints them)"; }
        KV_RPS[$target:$test]+="$rps "
        KV_P99[$target:$test]+="$p99 "
        LAST+=" $test $rps/s p99 $(ms2 "$p99") ms"
    done
}

# One curl run of OPS requests on one connection: appends the summed request time (µs).
run_s3() { # side, op (get, put), size (small, large), ops, label
    local side=$1 op=$2 size=$3 ops=$4 label=$5 base args=() report i bad total connects bytes=$SMALL
    [[ $size = small ]] || bytes=$LARGE
    base=$(base_of "$side")
    report=$TMP/s3-$side-$op-$size-$label.txt
    for ((i = 1; i <= ops; i++)); do
        if [[ $op = get ]]; then args+=(-o /dev/null "$base/get-$size"); else args+=(-T "$FILES/$size" -o /dev/null "$base/put-$size-$i"); fi
    done
    s3_curl "$side" -w '%{http_code} %{time_total} %{num_connects} %{size_download} %{size_upload}\n' "${args[@]}" \
        >"$report" 2>"$report.err" || { cat "$report.err" >&2; die "curl $op $size against $side failed"; }
    bad=$(awk '$1 !~ /^2/' "$report" | wc -l)
    (($(wc -l <"$report") == ops && bad == 0)) || { head -5 "$report" "$report.err" >&2; die "$op $size against $side: $bad of $ops requests did not answer 2xx"; }
    # Each request's bytes must be the object's, both ways.
    awk -v op="$op" -v n="$bytes" '(op == "get" ? $4 : $5) != n { bad = 1 } END { exit bad }' "$report" ||
        { head -5 "$report" >&2; die "$op $size against $side moved other than $bytes bytes in a request"; }
    total=$(awk '{ s += $2 } END { printf "%d", s * 1000000 + 0.5 }' "$report")
    connects=$(awk '{ s += $3 } END { print s }' "$report")
    S3_US[$side:$op:$size]+="$total "
    CONNECTS[$side:$op:$size]=$((${CONNECTS[$side:$op:$size]:-0} + connects))
    LAST="$(awk -v n="$ops" -v t="$total" 'BEGIN { printf "%.0f", n * 1000000 / t }') ops/s"
}

S3_CASES=("get small $SMALL_OPS" "get large $LARGE_OPS" "put small $SMALL_OPS" "put large $LARGE_OPS")
echo "warm-up: a short run on each target ..." >&2
saved=$KV_REQUESTS
KV_REQUESTS=$((KV_REQUESTS / 10 + 1))
for target in "${KV_TARGETS[@]}"; do run_kv "$target" warmup; done
KV_REQUESTS=$saved
for case in "${S3_CASES[@]}"; do
    read -r op size ops <<<"$case"
    for side in tovuk nginx; do run_s3 "$side" "$op" "$size" $(((ops + 9) / 10)) warmup; done
done
unset KV_RPS KV_P99 S3_US CONNECTS
declare -A KV_RPS KV_P99 S3_US CONNECTS

echo "timing $RUNS rounds ..." >&2
for ((run = 1; run <= RUNS; run++)); do
    order=("${KV_TARGETS[@]}")
    if ((run % 2 == 0)); then
        order=()
        for ((i = ${#KV_TARGETS[@]} - 1; i >= 0; i--)); do order+=("${KV_TARGETS[i]}"); done
    fi
    for target in "${order[@]}"; do
        run_kv "$target" "$run"
        printf '  run %d/%d: %-15s%s\n' "$run" "$RUNS" "$target" "$LAST" >&2
    done
    sides=(tovuk nginx)
    ((run % 2)) || sides=(nginx tovuk)
    for case in "${S3_CASES[@]}"; do
        read -r op size ops <<<"$case"
        line=
        for side in "${sides[@]}"; do
            run_s3 "$side" "$op" "$size" "$ops" "$run"
            line+="   $side $LAST"
        done
        printf '  run %d/%d: %s %-5s%s\n' "$run" "$RUNS" "$op" "$size" "$line" >&2
    done
done

# --- figures -------------------------------------------------------------------------
floor=redis-${FSYNC_MODES[0]}
floor_mode=${FSYNC_MODES[0]}
[[ $floor_mode != no ]] || floor_mode="no AOF"
label_of() {
    case $1 in
    tovuk) echo "tovuk KV (redb, fsync per group commit)" ;;
    redis-no) echo "redis-server, no AOF, no RDB" ;;
    redis-*) echo "redis-server, AOF appendfsync ${1#redis-}" ;;
    esac
}
verdict() { # value, base, goal -> met / NOT met (value >= goal x base)
    if awk -v a="$1" -v b="$2" -v g="$3" 'BEGIN { exit !(a >= g * b) }'; then echo met; else echo "NOT met"; fi
}
declare -A M
for key in "${!KV_RPS[@]}"; do
    # shellcheck disable=SC2086 # the lists are space-separated numbers
    M[rps:$key]=$(median ${KV_RPS[$key]})
    # shellcheck disable=SC2086
    M[p99:$key]=$(median ${KV_P99[$key]})
done
for key in "${!S3_US[@]}"; do
    # shellcheck disable=SC2086
    M[s3:$key]=$(median ${S3_US[$key]})
done

echo
echo "resources: the KV and the object storage an app reaches, beside redis-server and nginx; median of $RUNS runs"
where="clients and floors on the host (the instance shares the host's network)"
[[ -z $NETNS ]] || where="clients and floors in the instance's network namespace"
VERSION_SUFFIX="; $where" bench_version_line "redis-server $(redis-server --version | grep -o 'v=[0-9.]*' | cut -d= -f2)" \
    "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')" "curl $CURL_VERSION"
echo
echo "KV: redis-benchmark -t set,get -P $KV_PIPELINE -c $KV_CLIENTS -n $KV_REQUESTS -r $KV_KEYS (3-byte values)"
printf '%-44s %5s %11s %10s %11s %10s\n' "" runs "SET ops/s" "SET p99" "GET ops/s" "GET p99"
for target in "${KV_TARGETS[@]}"; do
    printf '%-44s %5d %11d %10s %11d %10s\n' "$(label_of "$target")" "$RUNS" \
        "${M[rps:$target:SET]}" "$(ms2 "${M[p99:$target:SET]}") ms" "${M[rps:$target:GET]}" "$(ms2 "${M[p99:$target:GET]}") ms"
done
for test in SET GET; do
    printf '%-44s %5s %11s %10s   goal >= %.2fx: %s\n' "tovuk / redis ($floor_mode), $test ops/s" "" \
        "$(ratio "${M[rps:tovuk:$test]}" "${M[rps:$floor:$test]}")" "" "$GOAL_KV" \
        "$(verdict "${M[rps:tovuk:$test]}" "${M[rps:$floor:$test]}" "$GOAL_KV")"
done

echo
echo "S3: curl, one keep-alive connection, requests one after another; tovuk signed (SigV4, UNSIGNED-PAYLOAD),"
echo "nginx 1 worker: GET static files (sendfile), PUT with WebDAV (no fsync); time = sum of curl's time_total"
printf '%-16s %5s %12s %12s %12s %12s %12s\n' "" ops "tovuk ops/s" "tovuk MiB/s" "nginx ops/s" "nginx MiB/s" "tovuk/nginx"
for case in "${S3_CASES[@]}"; do
    read -r op size ops <<<"$case"
    bytes=$SMALL
    [[ $size = small ]] || bytes=$LARGE
    name="${op^^} $([[ $size = small ]] && echo 1 KiB || echo 16 MiB)"
    rates=()
    for side in tovuk nginx; do
        rates+=("$(awk -v n="$ops" -v t="${M[s3:$side:$op:$size]}" 'BEGIN { printf "%.0f", n * 1000000 / t }')")
        rates+=("$(awk -v n="$ops" -v b="$bytes" -v t="${M[s3:$side:$op:$size]}" 'BEGIN { printf "%.1f", n * b / 1048576 * 1000000 / t }')")
    done
    # Same bytes per request on both sides: the throughput ratio is the inverse time ratio.
    r=$(ratio "${M[s3:nginx:$op:$size]}" "${M[s3:tovuk:$op:$size]}")
    goal=
    [[ $op:$size != get:large ]] ||
        goal=$(printf '   goal >= %.2fx: %s' "$GOAL_GET" "$(verdict "${M[s3:nginx:$op:$size]}" "${M[s3:tovuk:$op:$size]}" "$GOAL_GET")")
    printf '%-16s %5d %12s %12s %12s %12s %12s%s\n' "$name" "$ops" "${rates[@]}" "$r" "$goal"
done
for key in "${!CONNECTS[@]}"; do
    ((CONNECTS[$key] <= RUNS)) || echo "note: ${key//:/ } opened ${CONNECTS[$key]} connections over $RUNS runs (not kept alive)"
done
