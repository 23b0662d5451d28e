# Shared by kafka.sh and s3.sh, which source it: usage, logging, Java, instance names, processes,
# free ports, and the `stop` and `status` commands. The sourcing script sets HERE (its folder),
# SCRIPT_NAME, USAGE_LAST_LINE (its header comment, line 2 to this one, is its usage), DATA_ROOT
# (one folder per instance, each with an instance.env that records its ports), ALIVE_MARKER (the
# file of an instance folder that its process names on its command line), PID_FILE (the file of
# an instance folder that holds its process id), SERVER_NOUN (what an instance is, for messages:
# "broker"), STOP_GRACE (seconds `stop` waits after SIGTERM before SIGKILL) and defines
# instance_addresses (run with the instance's instance.env sourced: prints its addresses for
# `status`, each preceded by a space).

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

# --- instances: pid, stop, status -------------------------------------------------------------

instance_pid() { cat "$1/$PID_FILE" 2>/dev/null || true; }

# is_running DIR: the server of instance folder DIR is running.
is_running() { alive "$(instance_pid "$1")" "$1"; }

# stop_one NAME KEEP SIGNAL GRACE: stop instance NAME with SIGNAL, SIGKILL after GRACE seconds;
# remove its folder unless KEEP is 1.
stop_one() {
    local name=$1 keep=$2 sig=$3 grace=$4 dir=$DATA_ROOT/$1 pid waited
    pid=$(instance_pid "$dir")
    if alive "$pid" "$dir"; then
        log "stopping '$name' (pid $pid) with SIG$sig"
        kill -"$sig" "$pid" 2>/dev/null || true
        waited=0
        while alive "$pid" "$dir" && ((waited < grace * 5)); do
            sleep 0.2
            waited=$((waited + 1))
        done
        if alive "$pid" "$dir"; then
            log "'$name' still running after ${grace}s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            waited=0
            while alive "$pid" "$dir" && ((waited < 50)); do
                sleep 0.2
                waited=$((waited + 1))
            done
            ! alive "$pid" "$dir" || die "could not kill '$name' (pid $pid)"
        fi
    else
        log "'$name' is not running"
    fi
    rm -f "${dir:?}/$PID_FILE"
    if ((keep)); then
        log "kept the data of '$name' in $dir"
    else
        rm -rf "${dir:?}"
    fi
}

# stop [--name N | --all] [--keep-data] [--kill] [--grace S]: without --name, the only instance.
cmd_stop() {
    local name="" all=0 keep=0 sig=TERM grace=$STOP_GRACE
    while (($#)); do
        case $1 in
        --name) name=${2:?--name needs a value}; shift 2 ;;
        --all) all=1; shift ;;
        --keep-data) keep=1; shift ;;
        --kill) sig=KILL; shift ;;
        --grace) grace=${2:?--grace needs a value}; shift 2 ;;
        *) log "unknown option for stop: $1"; usage ;;
        esac
    done
    [[ $grace =~ ^[0-9]+$ ]] || die "--grace must be whole seconds, got '$grace'" 2
    local names=() d
    for d in "$DATA_ROOT"/*/; do
        [[ -d $d ]] && names+=("$(basename "$d")")
    done
    if ((all)); then
        :
    elif [[ -n $name ]]; then
        valid_name "$name" || die "invalid --name '$name'" 2
        [[ -d $DATA_ROOT/$name ]] || { log "no instance named '$name'"; return 0; }
        names=("$name")
    elif ((${#names[@]} == 1)); then
        :
    elif ((${#names[@]} == 0)); then
        log "no instances under $DATA_ROOT"
        return 0
    else
        die "several instances (${names[*]}): name one with --name or use --all" 2
    fi
    for d in ${names[@]+"${names[@]}"}; do
        stop_one "$d" "$keep" "$sig" "$grace"
    done
}

# status [--name N]: one line per instance, running or kept; exit 3 when none is running.
cmd_status() {
    local name="" any=0 d n
    while (($#)); do
        case $1 in
        --name) name=${2:?--name needs a value}; shift 2 ;;
        *) log "unknown option for status: $1"; usage ;;
        esac
    done
    for d in "$DATA_ROOT"/*/; do
        [[ -f $d/instance.env ]] || continue
        n=$(basename "$d")
        [[ -z $name || $n == "$name" ]] || continue
        (
            # shellcheck disable=SC1091
            source "$d/instance.env"
            local line="$NAME"
            if is_running "${d%/}"; then
                line+=" running pid=$(instance_pid "${d%/}")"
            else
                line+=" stopped (data kept)"
            fi
            echo "$line$(instance_addresses) dir=${d%/}"
        )
        is_running "${d%/}" && any=1
    done
    if ((!any)); then
        if [[ -n $name ]]; then log "'$name' is not running"; else log "no $SERVER_NOUN is running"; fi
        return 3
    fi
}
