# Shared by kafka.sh and s3.sh, which source it: usage, logging, Java, instance names, processes,
# free ports. The sourcing script sets HERE (its folder), SCRIPT_NAME, USAGE_LAST_LINE (its header comment, line 2 to
# this one, is its usage), DATA_ROOT (one folder per instance, each with an instance.env that
# records its ports) and ALIVE_MARKER (the file of an instance folder that its process names on
# its command line).

# Free ports are drawn below the kernel's ephemeral range, so client sockets cannot take them.
PORT_MIN=20000
PORT_MAX=32000

usage() {
    sed -n "2,${USAGE_LAST_LINE}p" "$HERE/$SCRIPT_NAME" | sed 's/^# \{0,1\}//' >&2
    exit "${1:-2}"
}

log() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }
die() {
    log "error: $1"
    exit "${2:-1}"
}

require_java() {
    command -v java >/dev/null 2>&1 ||
        die "java not found: install a Java 17+ JDK and Maven (Debian: apt-get install openjdk-17-jdk-headless maven)" 69
}

valid_name() { [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]]; }

# alive PID DIR: the process exists, is not a zombie and is the server of instance folder DIR.
alive() {
    local pid=$1 dir=$2 state
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
    state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ $state != Z ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/$ALIVE_MARKER"
}

# Ports recorded by every instance, running or kept: never handed out again.
taken_ports() {
    local env
    for env in "$DATA_ROOT"/*/instance.env; do
        [[ -f $env ]] || continue
        grep -E '^([A-Z]+_)?PORT=' "$env" | cut -d= -f2
    done
    return 0
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pick_port EXCLUDED...: a port nobody listens on and no instance has recorded. Free ports are
# drawn below the kernel's ephemeral range, so client sockets cannot take them.
pick_port() {
    local excluded port tries
    excluded=" $* $(taken_ports | tr '\n' ' ') "
    for ((tries = 0; tries < 200; tries++)); do
        port=$((PORT_MIN + RANDOM % (PORT_MAX - PORT_MIN)))
        [[ $excluded == *" $port "* ]] && continue
        port_in_use "$port" && continue
        echo "$port"
        return 0
    done
    die "no free port found in $PORT_MIN-$PORT_MAX"
}

# watch_owner OWNER PID NAME DIR: in the background, stop instance NAME once process OWNER has
# exited (instances started by tests die with their test session).
watch_owner() {
    setsid "$HERE/$SCRIPT_NAME" _watch "$1" "$2" "$3" >>"$4/watchdog.log" 2>&1 </dev/null &
}

# _watch OWNER PID NAME: the watcher itself.
cmd_watch() {
    local owner=$1 pid=$2 name=$3 dir=$DATA_ROOT/$3
    while kill -0 "$owner" 2>/dev/null && alive "$pid" "$dir"; do
        sleep 2
    done
    if alive "$pid" "$dir"; then
        log "owner process $owner is gone; stopping '$name'"
        exec "$HERE/$SCRIPT_NAME" stop --name "$name"
    fi
}
