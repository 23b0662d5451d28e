#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft combined mode: broker and controller in one process)
# on 127.0.0.1, from Maven Central jars resolved on first use and cached. No Docker.
#
#   kafka.sh start  [--name N] [--port P] [--controller-port P] [--sasl] [--sasl-port P]
#                   [--tls] [--tls-port P] [--acl] [--owner-pid PID] [--timeout S]
#   kafka.sh stop   [--name N | --all] [--keep-data] [--kill] [--grace S]
#   kafka.sh status [--name N]
#   kafka.sh grant  --name N [--input T] [--output T] [--dlq T] [--group G]
#                   [--transactional-id-prefix P]
#
# start prints `name=N`, with --sasl `sasl_bootstrap=127.0.0.1:S`, with --tls
# `tls_bootstrap=127.0.0.1:T` and `ca_file=<path>`, and as its LAST line the PLAINTEXT bootstrap
# address `127.0.0.1:P`. Progress goes to standard error.
# --tls: a SASL_SSL listener with SCRAM-SHA-512 (users admin and scorer); a CA and a broker
# certificate are generated with openssl into the broker's folder. --acl (implies --tls): the
# StandardAuthorizer, admin a super user, scorer granted only what the consumer needs on the
# default topics; `grant` gives scorer the same on other topics (see docs/security.md).
# Each broker lives in .local/kafka/data/<name>/ (server.properties, instance.env, broker.log,
# broker.pid, the log dirs). `start --name N` on data kept by `stop --keep-data` restarts the same
# broker: same ports, same cluster id, same records.
# --owner-pid: stop (and remove) the broker once that process has exited (used by pytest).
#
# Environment: KAFKA_VERSION (default below), KAFKA_LOCAL_DIR (default <repo>/.local/kafka),
# KAFKA_HEAP_OPTS, KAFKA_JVM_OPTS, KAFKA_READY_TIMEOUT (s), KAFKA_STOP_GRACE (s).
# Exit codes: 0 ok, 1 failure, 2 usage, 3 (status) not running, 69 Java/Maven missing.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
STATE_DIR=${KAFKA_LOCAL_DIR:-$ROOT/.local/kafka}
LIBS=$STATE_DIR/libs-$KAFKA_VERSION
PROBE=$STATE_DIR/probe-$KAFKA_VERSION
DATA_ROOT=$STATE_DIR/data
READY_TIMEOUT=${KAFKA_READY_TIMEOUT:-90}
STOP_GRACE=${KAFKA_STOP_GRACE:-30}
HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}
JVM_OPTS=${KAFKA_JVM_OPTS:-}
SASL_USER=scorer
SASL_PASSWORD=scorer-secret
# SCRAM users of the --tls listener (test credentials): a super user and the scorer.
ADMIN_USER=admin
ADMIN_PASSWORD=admin-secret
# What `start --acl` grants the scorer: the consumer's defaults (consumer/settings.py).
DEFAULT_INPUT=sessions
DEFAULT_OUTPUT=session-scores
DEFAULT_DLQ=sessions-dlq
DEFAULT_GROUP=shopper-intent-scorer
SCRIPT_NAME=kafka.sh
USAGE_LAST_LINE=26
ALIVE_MARKER=server.properties
PID_FILE=broker.pid
SERVER_NOUN=broker
# shellcheck source=deploy/local/lib.sh
source "$HERE/lib.sh"

# --- prerequisites -------------------------------------------------------------------------------

require_jdk() {
    require_java
    command -v javac >/dev/null 2>&1 ||
        die "javac not found: install a Java 17+ JDK, not only a JRE (Debian: apt-get install openjdk-17-jdk-headless)" 69
    local version major
    version=$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n 1)
    major=${version%%.*}
    [[ $major == 1 ]] && major=$(echo "$version" | cut -d. -f2)
    [[ $major =~ ^[0-9]+$ ]] || die "cannot read the Java version from 'java -version'"
    ((major >= 17)) || die "Kafka $KAFKA_VERSION needs Java 17 or newer; found $version" 69
}

# Resolve the broker's jars through Maven once per version; later calls find them cached.
ensure_libs() {
    [[ -f $LIBS/.complete ]] && return 0
    command -v mvn >/dev/null 2>&1 ||
        die "mvn not found: install Maven to resolve the Kafka jars (Debian: apt-get install maven)" 69
    mkdir -p "$STATE_DIR"
    exec 8>"$STATE_DIR/.resolve.lock"
    flock 8
    if [[ ! -f $LIBS/.complete ]]; then
        local tmp t0 t1
        tmp=$(mktemp -d "$STATE_DIR/.libs-tmp.XXXXXX")
        t0=$(date +%s.%N)
        log "resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION and log4j2 through Maven (first use only)"
        if ! mvn -q -B -f "$HERE/pom.xml" "-Dkafka.version=$KAFKA_VERSION" \
            dependency:copy-dependencies -DincludeScope=runtime "-DoutputDirectory=$tmp" \
            >"$tmp.log" 2>&1; then
            tail -n 30 "$tmp.log" >&2
            rm -rf "$tmp" "$tmp.log"
            die "Maven could not resolve Kafka $KAFKA_VERSION (output above)"
        fi
        ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "Maven finished but no kafka_2.13 jar in $tmp"
        t1=$(date +%s.%N)
        rm -rf "$LIBS" "$tmp.log"
        mv "$tmp" "$LIBS"
        awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", b - a }' >"$LIBS/.resolve-seconds"
        touch "$LIBS/.complete"
        log "resolved $(find "$LIBS" -name '*.jar' | wc -l) jars in $(cat "$LIBS/.resolve-seconds") s into $LIBS"
    fi
    flock -u 8
    exec 8>&-
}

# The readiness probe and the ACL helper are tiny Java classes compiled against kafka-clients.
probe_stale() {
    local name
    for name in Ready Acls; do
        [[ -f $PROBE/$name.class && ! $HERE/$name.java -nt $PROBE/$name.class ]] || return 0
    done
    return 1
}

ensure_probe() {
    probe_stale || return 0
    exec 8>"$STATE_DIR/.resolve.lock"
    flock 8
    if probe_stale; then
        local tmp
        tmp=$(mktemp -d "$STATE_DIR/.probe-tmp.XXXXXX")
        javac -nowarn -cp "$LIBS/*" -d "$tmp" "$HERE/Ready.java" "$HERE/Acls.java" >&2 ||
            die "could not compile $HERE/Ready.java and $HERE/Acls.java"
        rm -rf "$PROBE"
        mv "$tmp" "$PROBE"
    fi
    flock -u 8
    exec 8>&-
}

# --- instances -----------------------------------------------------------------------------------

# started_alive PID: the broker this script has just started is still running. Its command line is
# not checked: until the forked child has exec'd java (which can take a while on a busy machine),
# /proc/PID/cmdline is still this script's. Being our own child (parent pid $$) identifies it.
started_alive() {
    local pid=$1 stat state ppid
    kill -0 "$pid" 2>/dev/null || return 1
    stat=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null) || return 1
    read -r state ppid _ <<<"$stat"
    [[ $state != Z && $ppid == "$$" ]]
}

check_port() {
    if [[ ! $2 =~ ^[0-9]+$ ]] || (($2 < 1 || $2 > 65535)); then
        die "$1 must be a TCP port number, got '$2'" 2
    fi
    ! port_in_use "$2" || die "$1 $2 is already in use on 127.0.0.1"
}

random_cluster_id() {
    # A Kafka cluster id: 16 random bytes in URL-safe base64 without padding (22 characters).
    # One id in 64 would start with '-', which the storage tool's argument parser reads as an
    # option ("--cluster-id: expected one argument"); like Kafka's own Uuid.randomUuid, draw again.
    local id
    while :; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
        [[ $id == -* ]] || break
    done
    printf '%s\n' "$id"
}

cmd_cluster_ids() {
    # Hidden: print N fresh cluster ids, one per line (lets the tests check the generator).
    local n=${1:-1} i
    [[ $n =~ ^[0-9]+$ ]] || die "_cluster-ids: N must be a whole number, got '$n'"
    for ((i = 0; i < n; i++)); do random_cluster_id; done
}

write_server_properties() {
    local dir=$1 listeners advertised
    listeners="PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT"
    advertised="PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT"
    if [[ -n $SASL_PORT ]]; then
        listeners+=",SASL_PLAINTEXT://127.0.0.1:$SASL_PORT"
        advertised+=",SASL_PLAINTEXT://127.0.0.1:$SASL_PORT"
    fi
    if [[ -n $TLS_PORT ]]; then
        listeners+=",SASL_SSL://127.0.0.1:$TLS_PORT"
        advertised+=",SASL_SSL://127.0.0.1:$TLS_PORT"
    fi
    cat >"$dir/server.properties" <<EOF
# Written by deploy/local/kafka.sh for instance '$NAME'.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=$listeners
advertised.listeners=$advertised
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/kraft
num.partitions=1
# Tests create their topics; a consumer must never create one by accident.
auto.create.topics.enable=false
# One broker: internal topics cannot have three replicas. Few partitions make first use quick.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# After a SIGKILL the restarted broker waits for its old registration to expire: keep that short.
broker.session.timeout.ms=4000
broker.heartbeat.interval.ms=1000
EOF
    if [[ -n $SASL_PORT ]]; then
        cat >>"$dir/server.properties" <<EOF
# SASL/PLAIN on its own listener, with one test user ($SASL_USER).
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$SASL_PASSWORD";
EOF
    fi
    if [[ -n $TLS_PORT ]]; then
        cat >>"$dir/server.properties" <<EOF
# SASL_SSL with SCRAM-SHA-512 on its own listener; the users are created by the storage format.
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$dir/tls/broker-keystore.pem
EOF
    fi
    if ((ACL)); then
        cat >>"$dir/server.properties" <<EOF
# ACLs: nothing is allowed that is not granted. The PLAINTEXT and CONTROLLER listeners on
# 127.0.0.1 are the broker's own (inter-broker, controller, the scripts' admin calls); their
# ANONYMOUS principal is a super user, like admin on the SASL_SSL listener.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:$ADMIN_USER;User:ANONYMOUS
EOF
    fi
}

# make_tls DIR: a throwaway CA and a broker certificate for 127.0.0.1/localhost, signed by it.
make_tls() {
    local tls=$1/tls
    command -v openssl >/dev/null 2>&1 ||
        die "openssl not found: --tls generates certificates with it (Debian: apt-get install openssl)" 69
    mkdir -p "$tls"
    (
        cd "$tls"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
            -keyout ca.key -out ca.pem -subj "/CN=shopper-intent local CA ($NAME)" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout broker.key -out broker.csr -subj "/CN=localhost"
        printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "extendedKeyUsage=serverAuth" >broker.ext
        openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
            -extfile broker.ext -out broker.pem
        # Kafka's PEM keystore: the PKCS#8 private key, then the certificate chain.
        cat broker.key broker.pem ca.pem >broker-keystore.pem
        chmod 600 ca.key broker.key broker-keystore.pem
    ) >"$1/tls.log" 2>&1 || {
        cat "$1/tls.log" >&2
        die "generating the TLS certificates failed (output above)"
    }
}

# grant_scorer DIR INPUT OUTPUT DLQ GROUP TXN_PREFIX: the scorer's least-privilege ACLs.
grant_scorer() {
    java -Dlog4j2.configurationFile="$HERE/log4j2-tools.properties" -cp "$PROBE:$LIBS/*" Acls \
        "127.0.0.1:$PORT" "User:$SASL_USER" "$2" "$3" "$4" "$5" "$6" </dev/null >>"$1/acls.log" 2>&1 || {
        tail -n 20 "$1/acls.log" >&2
        return 1
    }
    log "granted User:$SASL_USER: Read on topic $2 and group $5; Write, Describe on topics $3, $4 and transactional ids $6*; IdempotentWrite on the cluster"
}

# Runs the readiness probe in the background and fails fast if the broker process dies.
wait_ready() {
    local dir=$1 pid=$2 probe_pid rc
    shift 2
    java -Dlog4j2.configurationFile="$HERE/log4j2-tools.properties" -cp "$PROBE:$LIBS/*" Ready \
        "$@" >>"$dir/probe.log" 2>&1 </dev/null &
    probe_pid=$!
    while kill -0 "$probe_pid" 2>/dev/null; do
        if ! started_alive "$pid"; then
            kill "$probe_pid" 2>/dev/null || true
            wait "$probe_pid" 2>/dev/null || true
            rc=0
            wait "$pid" 2>/dev/null || rc=$?
            if ((rc > 128)); then
                log "the broker process was killed by signal $((rc - 128)) during start-up"
            else
                log "the broker process exited with status $rc during start-up"
            fi
            return 1
        fi
        sleep 0.2
    done
    rc=0
    wait "$probe_pid" || rc=$?
    ((rc == 0)) || tail -n 3 "$dir/probe.log" >&2
    return "$rc"
}

print_addresses() {
    echo "name=$NAME"
    [[ -z $SASL_PORT ]] || echo "sasl_bootstrap=127.0.0.1:$SASL_PORT"
    if [[ -n $TLS_PORT ]]; then
        echo "tls_bootstrap=127.0.0.1:$TLS_PORT"
        echo "ca_file=$DATA_ROOT/$NAME/tls/ca.pem"
    fi
    echo "127.0.0.1:$PORT"
}

# For `status` (lib.sh), with the instance's instance.env sourced.
instance_addresses() {
    printf ' bootstrap=127.0.0.1:%s' "$PORT"
    [[ -z $SASL_PORT ]] || printf ' sasl_bootstrap=127.0.0.1:%s' "$SASL_PORT"
    [[ -z ${TLS_PORT:-} ]] || printf ' tls_bootstrap=127.0.0.1:%s' "$TLS_PORT"
    return 0
}

cmd_start() {
    local name="" port="" cport="" sasl=0 sport="" tls=0 tport="" acl=0 owner="" timeout=$READY_TIMEOUT
    while (($#)); do
        case $1 in
        --name) name=${2:?--name needs a value}; shift 2 ;;
        --port) port=${2:?--port needs a value}; shift 2 ;;
        --controller-port) cport=${2:?--controller-port needs a value}; shift 2 ;;
        --sasl) sasl=1; shift ;;
        --sasl-port) sport=${2:?--sasl-port needs a value}; sasl=1; shift 2 ;;
        --tls) tls=1; shift ;;
        --tls-port) tport=${2:?--tls-port needs a value}; tls=1; shift 2 ;;
        --acl) acl=1; tls=1; shift ;;
        --owner-pid) owner=${2:?--owner-pid needs a value}; shift 2 ;;
        --timeout) timeout=${2:?--timeout needs a value}; shift 2 ;;
        *) log "unknown option for start: $1"; usage ;;
        esac
    done
    [[ -z $owner || $owner =~ ^[0-9]+$ ]] || die "--owner-pid must be a process id, got '$owner'" 2
    [[ $timeout =~ ^[0-9]+$ ]] || die "--timeout must be whole seconds, got '$timeout'" 2
    [[ -z $name && -n $port ]] && name="kafka-$port"
    [[ -z $name ]] || valid_name "$name" || die "--name may hold letters, digits, '.', '_' and '-' (at most 64), got '$name'" 2

    require_jdk
    ensure_libs
    ensure_probe
    mkdir -p "$DATA_ROOT"

    local dir="" fresh=1
    exec 9>"$DATA_ROOT/.lock"
    flock 9
    TLS_PORT="" ACL=0 # absent from instances made before --tls existed
    if [[ -n $name && -f $DATA_ROOT/$name/instance.env ]]; then
        dir=$DATA_ROOT/$name
        # shellcheck disable=SC1091
        source "$dir/instance.env"
        [[ -z $port || $port == "$PORT" ]] || die "instance '$name' uses port $PORT, not $port" 2
        [[ -z $cport || $cport == "$CONTROLLER_PORT" ]] || die "instance '$name' uses controller port $CONTROLLER_PORT, not $cport" 2
        [[ -z $sport || $sport == "$SASL_PORT" ]] || die "instance '$name' uses SASL port ${SASL_PORT:-none}, not $sport" 2
        ((sasl == 0)) || [[ -n $SASL_PORT ]] ||
            die "instance '$name' was created without --sasl; remove it first (kafka.sh stop --name $name)" 2
        [[ -z $tport || $tport == "$TLS_PORT" ]] || die "instance '$name' uses TLS port ${TLS_PORT:-none}, not $tport" 2
        ((tls == 0)) || [[ -n $TLS_PORT ]] ||
            die "instance '$name' was created without --tls; remove it first (kafka.sh stop --name $name)" 2
        ((acl == 0 || ACL == 1)) ||
            die "instance '$name' was created without --acl; remove it first (kafka.sh stop --name $name)" 2
        [[ $KAFKA_VERSION == "$INSTANCE_KAFKA_VERSION" ]] ||
            die "instance '$name' was formatted by Kafka $INSTANCE_KAFKA_VERSION, not $KAFKA_VERSION" 2
        if is_running "$dir"; then
            flock -u 9
            exec 9>&-
            log "instance '$name' is already running (pid $(instance_pid "$dir"))"
            print_addresses
            return 0
        fi
        fresh=0
        log "restarting instance '$name' on its kept data (cluster id $CLUSTER_ID)"
    else
        [[ -n $name && -d $DATA_ROOT/$name ]] && rm -rf "${DATA_ROOT:?}/$name" # an unfinished start
        if [[ -n $port ]]; then check_port --port "$port"; else port=$(pick_port); fi
        if [[ -n $cport ]]; then check_port --controller-port "$cport"; else cport=$(pick_port "$port"); fi
        if ((sasl)); then
            if [[ -n $sport ]]; then check_port --sasl-port "$sport"; else sport=$(pick_port "$port" "$cport"); fi
        fi
        if ((tls)); then
            if [[ -n $tport ]]; then check_port --tls-port "$tport"; else tport=$(pick_port "$port" "$cport" "$sport"); fi
        fi
        NAME=${name:-kafka-$port}
        PORT=$port CONTROLLER_PORT=$cport SASL_PORT=$sport TLS_PORT=$tport ACL=$acl
        CLUSTER_ID=$(random_cluster_id) INSTANCE_KAFKA_VERSION=$KAFKA_VERSION
        dir=$DATA_ROOT/$NAME
        [[ ! -e $dir ]] || die "$dir exists already"
        mkdir -p "$dir"
        printf '%s\n' "NAME=$NAME" "PORT=$PORT" "CONTROLLER_PORT=$CONTROLLER_PORT" "SASL_PORT=$SASL_PORT" \
            "TLS_PORT=$TLS_PORT" "ACL=$ACL" \
            "CLUSTER_ID=$CLUSTER_ID" "INSTANCE_KAFKA_VERSION=$INSTANCE_KAFKA_VERSION" >"$dir/instance.env.tmp"
        write_server_properties "$dir"
        [[ -z $TLS_PORT ]] || make_tls "$dir"
        mv "$dir/instance.env.tmp" "$dir/instance.env"
    fi
    flock -u 9
    exec 9>&-

    local t0
    t0=$(date +%s.%N)
    if ((fresh)); then
        local scram=()
        if [[ -n $TLS_PORT ]]; then
            # SCRAM credentials live in the cluster metadata: written once, with the format.
            scram=(--add-scram "SCRAM-SHA-512=[name=$ADMIN_USER,password=$ADMIN_PASSWORD]"
                --add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$SASL_PASSWORD]")
        fi
        java -Dlog4j2.configurationFile="$HERE/log4j2-tools.properties" -cp "$LIBS/*" \
            kafka.tools.StorageTool format --config "$dir/server.properties" \
            --cluster-id "$CLUSTER_ID" --standalone ${scram[@]+"${scram[@]}"} >"$dir/format.log" 2>&1 </dev/null || {
            cat "$dir/format.log" >&2
            rm -rf "$dir"
            die "formatting the storage of '$NAME' failed (output above)"
        }
    fi

    # setsid: the broker outlives this script and its caller's terminal and process group.
    # shellcheck disable=SC2086
    setsid java $HEAP_OPTS $JVM_OPTS -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$HERE/log4j2.properties" \
        -cp "$LIBS/*" kafka.Kafka "$dir/server.properties" >>"$dir/broker.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$dir/$PID_FILE"
    log "started '$NAME' (pid $pid); waiting up to ${timeout}s for a metadata answer on 127.0.0.1:$PORT"

    local ok=1
    wait_ready "$dir" "$pid" "127.0.0.1:$PORT" "$((timeout * 1000))" || ok=0
    if ((ok)) && [[ -n $SASL_PORT ]]; then
        wait_ready "$dir" "$pid" "127.0.0.1:$SASL_PORT" 20000 "$SASL_USER" "$SASL_PASSWORD" || ok=0
    fi
    if ((ok)) && [[ -n $TLS_PORT ]]; then
        wait_ready "$dir" "$pid" "127.0.0.1:$TLS_PORT" 20000 "$ADMIN_USER" "$ADMIN_PASSWORD" \
            "$dir/tls/ca.pem" || ok=0
    fi
    if ((ok && fresh && ACL)); then
        grant_scorer "$dir" "$DEFAULT_INPUT" "$DEFAULT_OUTPUT" "$DEFAULT_DLQ" "$DEFAULT_GROUP" \
            "$DEFAULT_GROUP-" || ok=0
    fi
    if ((!ok)); then
        log "broker '$NAME' did not come up; last lines of $dir/broker.log:"
        tail -n 40 "$dir/broker.log" >&2 || true
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$dir/$PID_FILE"
        ((fresh)) && rm -rf "$dir"
        die "broker '$NAME' failed to start"
    fi
    local t1
    t1=$(date +%s.%N)
    log "broker '$NAME' ready in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"

    if [[ -n $owner ]]; then
        watch_owner "$owner" "$pid" "$NAME" "$dir"
    fi
    print_addresses
}

# grant --name N ...: give the scorer its least-privilege ACLs on other topics (tests, by hand).
cmd_grant() {
    local name="" input=$DEFAULT_INPUT output=$DEFAULT_OUTPUT dlq=$DEFAULT_DLQ group=$DEFAULT_GROUP prefix=""
    while (($#)); do
        case $1 in
        --name) name=${2:?--name needs a value}; shift 2 ;;
        --input) input=${2:?--input needs a value}; shift 2 ;;
        --output) output=${2:?--output needs a value}; shift 2 ;;
        --dlq) dlq=${2:?--dlq needs a value}; shift 2 ;;
        --group) group=${2:?--group needs a value}; shift 2 ;;
        --transactional-id-prefix) prefix=${2:?--transactional-id-prefix needs a value}; shift 2 ;;
        *) log "unknown option for grant: $1"; usage ;;
        esac
    done
    [[ -n $name ]] || die "grant needs --name" 2
    valid_name "$name" || die "invalid --name '$name'" 2
    local dir=$DATA_ROOT/$name
    [[ -f $dir/instance.env ]] || die "no instance named '$name'" 2
    ACL=0
    # shellcheck disable=SC1091
    source "$dir/instance.env"
    ((ACL)) || die "instance '$name' was started without --acl" 2
    is_running "$dir" || die "instance '$name' is not running"
    ensure_probe
    grant_scorer "$dir" "$input" "$output" "$dlq" "$group" "${prefix:-$group-}" || die "granting ACLs failed"
}

case ${1:-} in
start) shift; cmd_start "$@" ;;
grant) shift; cmd_grant "$@" ;;
stop) shift; cmd_stop "$@" ;;
status) shift; cmd_status "$@" ;;
_watch) shift; cmd_watch "$@" ;;
_cluster-ids) shift; cmd_cluster_ids "$@" ;;
-h | --help | help) usage 0 ;;
*) usage ;;
esac
