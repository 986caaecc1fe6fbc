# shellcheck shell=bash
# Helpers shared by the scripts: `PROG=name; source scripts/lib.sh`.
#   say MSG             "==> MSG" on stderr
#   die MSG             "$PROG: ERROR: MSG" on stderr, exit 1
#   free_port           a free TCP port on 127.0.0.1
#   wait_port H P SECS  until H:P accepts a connection (status 1 after SECS seconds)
#   java_bin WHAT       the java binary ($JAVA_HOME/bin/java, else `java` on PATH), checked to be
#                       Java 17 or newer (WHAT names what needs it, for the error)
#   as_postgres CMD...  CMD as the postgres system user when run as root (initdb and postgres
#                       refuse to run as root), else as is
#   start_postgres DIR [CONF...]  a throwaway cluster: initdb into DIR/data (wal_level=logical,
#                       trust auth, fsync off, extra postgresql.conf lines CONF), started on a free
#                       port; sets PG_PORT, PG_URL, PGDATA and PSQL. Needs $PG_BIN (scripts/env.sh).
#   stop_postgres       stops that cluster (immediate), if it was started
#   psql_q ARGS...      psql on $PG_URL, quiet, stopping at the first error
#   usage               the running script's header comment (up to `set -euo`) on stderr, exit 2
#   service_args CMD DIR  for the `run|start|stop DIR` launchers (kafka.sh, debezium.sh): checks
#                       them (usage otherwise), makes DIR, sets cmd and dir (absolute)
#   stop_pidfile DIR SECS  SIGTERM to the process in DIR/pid, SIGKILL after SECS s; removes DIR/pid

say() { echo "==> $*" >&2; }
die() {
    echo "${PROG:-outboxd}: ERROR: $*" >&2
    exit 1
}
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
    local _
    for _ in $(seq $(($3 * 10))); do
        if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}
java_bin() {
    local j v
    if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then j="$JAVA_HOME/bin/java"; else j="$(command -v java || true)"; fi
    [ -n "$j" ] || die "java not found: install a Java 17+ runtime (Debian: openjdk-17-jre-headless) or set JAVA_HOME"
    v="$("$j" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)"
    [ -n "$v" ] && [ "$v" -ge 17 ] || die "$j is Java ${v:-?}; $1 needs Java 17 or newer (set JAVA_HOME)"
    echo "$j"
}
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}
PG_STARTED=0
start_postgres() {
    local dir="$1" line
    shift
    [ -n "${PG_BIN:-}" ] || die "PostgreSQL server binaries not found (scripts/install-deps.sh)"
    PG_PORT="$(free_port)"
    PGDATA="$dir/data"
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown -R postgres: "$dir"
    (cd "$dir" && as_postgres "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust --no-sync \
        --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1) ||
        { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    {
        echo "port = $PG_PORT"
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '$dir'"
        echo "wal_level = logical"
        echo "max_replication_slots = 10"
        echo "max_wal_senders = 10"
        echo "fsync = off"
        for line in "$@"; do echo "$line"; done
    } >>"$PGDATA/postgresql.conf"
    (cd "$dir" && as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$dir/postgres.log" -w -t 60 start >/dev/null) ||
        { tail -n 30 "$dir/postgres.log" >&2; die "PostgreSQL did not start"; }
    PG_STARTED=1
    PSQL="$PG_BIN/psql"
    [ -x "$PSQL" ] || PSQL="psql"
    PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable"
}
stop_postgres() {
    [ "$PG_STARTED" -eq 1 ] || return 0
    as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
    PG_STARTED=0
}
psql_q() { "$PSQL" "$PG_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }
usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[-1]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}
service_args() {
    cmd="${1:-}"
    dir="${2:-}"
    [ -n "$cmd" ] && [ -n "$dir" ] || usage
    case "$cmd" in run | start | stop) ;; *) usage ;; esac
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
}
stop_pidfile() {
    local pid _
    [ -f "$1/pid" ] || return 0
    pid="$(cat "$1/pid")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq $(($2 * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$1/pid"
}
