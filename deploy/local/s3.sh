#!/usr/bin/env bash
# A local S3 API server on 127.0.0.1: S3Proxy (Apache-2.0, org.gaul:s3proxy from Maven Central,
# one jar with its dependencies) with its filesystem backend. Resolved through Maven on first use
# and cached. No Docker.
#
#   s3.sh start  [--name N] [--port P] [--bucket B]... [--owner-pid PID] [--timeout S]
#   s3.sh stop   [--name N | --all] [--keep-data] [--kill] [--grace S]
#   s3.sh status [--name N]
#
# start prints `name=N`, the client settings (`AWS_ACCESS_KEY_ID=...`, `AWS_SECRET_ACCESS_KEY=...`,
# `AWS_REGION=...`, `AWS_REQUEST_CHECKSUM_CALCULATION=when_required`), and as its LAST line the
# endpoint `http://127.0.0.1:P` (for AWS_ENDPOINT_URL_S3). Progress goes to standard error.
# Each server lives in .local/s3/data/<name>/ (s3proxy.conf, instance.env, server.log, server.pid,
# and buckets/, one directory per bucket). --bucket creates that bucket if it does not exist.
# --owner-pid: stop (and remove) the server once that process has exited (used by pytest).
#
# Environment: S3PROXY_VERSION (default below), S3_LOCAL_DIR (default <repo>/.local/s3),
# S3_JVM_OPTS. Exit codes: 0 ok, 1 failure, 2 usage, 3 (status) not running, 69 Java/Maven missing.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
S3PROXY_VERSION=${S3PROXY_VERSION:-2.6.0}
STATE_DIR=${S3_LOCAL_DIR:-$ROOT/.local/s3}
JAR=$STATE_DIR/libs/s3proxy-$S3PROXY_VERSION-jar-with-dependencies.jar
DATA_ROOT=$STATE_DIR/data
JVM_OPTS=${S3_JVM_OPTS:--Xms64m -Xmx256m}
# Credentials of the local server only (it listens on 127.0.0.1): not a secret.
ACCESS_KEY=local-access-key
SECRET_KEY=local-secret-key
REGION=us-east-1
SCRIPT_NAME=s3.sh
USAGE_LAST_LINE=18
ALIVE_MARKER=s3proxy.conf
PID_FILE=server.pid
SERVER_NOUN="S3 server"
STOP_GRACE=10
# shellcheck source=deploy/local/lib.sh
source "$HERE/lib.sh"

# Resolve the jar through Maven once per version (the POM only pins the dependency plugin).
ensure_jar() {
    [[ -f $JAR ]] && return 0
    command -v mvn >/dev/null 2>&1 ||
        die "mvn not found: install Maven to resolve S3Proxy (Debian: apt-get install maven)" 69
    mkdir -p "$STATE_DIR/libs"
    exec 8>"$STATE_DIR/.resolve.lock"
    flock 8
    if [[ ! -f $JAR ]]; then
        local tmp
        tmp=$(mktemp -d "$STATE_DIR/.libs-tmp.XXXXXX")
        log "resolving org.gaul:s3proxy:$S3PROXY_VERSION (jar-with-dependencies) through Maven (first use only)"
        if ! mvn -q -B -f "$HERE/pom.xml" dependency:copy \
            "-Dartifact=org.gaul:s3proxy:$S3PROXY_VERSION:jar:jar-with-dependencies" \
            "-DoutputDirectory=$tmp" >"$tmp.log" 2>&1; then
            tail -n 30 "$tmp.log" >&2
            rm -rf "$tmp" "$tmp.log"
            die "Maven could not resolve S3Proxy $S3PROXY_VERSION (output above)"
        fi
        mv "$tmp"/s3proxy-*.jar "$JAR"
        rm -rf "$tmp" "$tmp.log"
        log "resolved $JAR"
    fi
    flock -u 8
    exec 8>&-
}

print_settings() {
    echo "name=$NAME"
    echo "AWS_ACCESS_KEY_ID=$ACCESS_KEY"
    echo "AWS_SECRET_ACCESS_KEY=$SECRET_KEY"
    echo "AWS_REGION=$REGION"
    # S3Proxy refuses the CRC32 checksum header that current AWS SDKs send by default.
    echo "AWS_REQUEST_CHECKSUM_CALCULATION=when_required"
    echo "http://127.0.0.1:$PORT"
}

# For `status` (lib.sh), with the instance's instance.env sourced.
instance_addresses() { printf ' endpoint=http://127.0.0.1:%s' "$PORT"; }

cmd_start() {
    local name="" port="" owner="" timeout=60 buckets=()
    while (($#)); do
        case $1 in
        --name) name=${2:?--name needs a value}; shift 2 ;;
        --port) port=${2:?--port needs a value}; shift 2 ;;
        --bucket) buckets+=("${2:?--bucket needs a value}"); shift 2 ;;
        --owner-pid) owner=${2:?--owner-pid needs a value}; shift 2 ;;
        --timeout) timeout=${2:?--timeout needs a value}; shift 2 ;;
        *) log "unknown option for start: $1"; usage ;;
        esac
    done
    [[ -z $owner || $owner =~ ^[0-9]+$ ]] || die "--owner-pid must be a process id, got '$owner'" 2
    [[ $timeout =~ ^[0-9]+$ ]] || die "--timeout must be whole seconds, got '$timeout'" 2
    name=${name:-s3}
    valid_name "$name" || die "--name may hold letters, digits, '.', '_' and '-', got '$name'" 2
    local b
    for b in ${buckets[@]+"${buckets[@]}"}; do
        [[ $b =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || die "--bucket '$b' is not a valid bucket name" 2
    done

    require_java
    ensure_jar
    mkdir -p "$DATA_ROOT"
    local dir=$DATA_ROOT/$name
    exec 9>"$DATA_ROOT/.lock"
    flock 9
    if [[ -f $dir/instance.env ]]; then
        # shellcheck disable=SC1091
        source "$dir/instance.env"
        [[ -z $port || $port == "$PORT" ]] || die "instance '$name' uses port $PORT, not $port" 2
    else
        if [[ -n $port ]]; then
            ! port_in_use "$port" || die "port $port is already in use on 127.0.0.1" 2
        else
            port=$(pick_port)
        fi
        NAME=$name PORT=$port
        mkdir -p "$dir/buckets"
        printf '%s\n' "NAME=$NAME" "PORT=$PORT" >"$dir/instance.env"
    fi
    for b in ${buckets[@]+"${buckets[@]}"}; do mkdir -p "$dir/buckets/$b"; done
    if is_running "$dir"; then
        flock -u 9
        exec 9>&-
        log "instance '$NAME' is already running (pid $(instance_pid "$dir"))"
        print_settings
        return 0
    fi
    cat >"$dir/s3proxy.conf" <<EOF
# Written by deploy/local/s3.sh for instance '$NAME'.
s3proxy.endpoint=http://127.0.0.1:$PORT
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=$ACCESS_KEY
s3proxy.credential=$SECRET_KEY
jclouds.provider=filesystem
jclouds.filesystem.basedir=$dir/buckets
EOF
    flock -u 9
    exec 9>&-

    # setsid: the server outlives this script and its caller's terminal and process group.
    # shellcheck disable=SC2086
    setsid java $JVM_OPTS -jar "$JAR" --properties "$dir/s3proxy.conf" \
        >>"$dir/server.log" 2>&1 </dev/null &
    local pid=$! waited=0
    echo "$pid" >"$dir/$PID_FILE"
    log "started '$NAME' (pid $pid); waiting up to ${timeout}s for 127.0.0.1:$PORT"
    until port_in_use "$PORT"; do
        if ! kill -0 "$pid" 2>/dev/null || ((waited >= timeout * 5)); then
            tail -n 30 "$dir/server.log" >&2 || true
            kill -KILL "$pid" 2>/dev/null || true
            rm -f "$dir/$PID_FILE"
            die "S3 server '$NAME' did not start"
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
    log "S3 server '$NAME' ready; data in $dir/buckets"
    if [[ -n $owner ]]; then
        watch_owner "$owner" "$pid" "$NAME" "$dir"
    fi
    print_settings
}

case ${1:-} in
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
status) shift; cmd_status "$@" ;;
_watch) shift; cmd_watch "$@" ;;
-h | --help | help) usage 0 ;;
*) usage ;;
esac
