#!/usr/bin/env bash
# A private PostgreSQL cluster for development and tests, made from the installed server
# binaries. Nothing is shared with a system cluster.
#
#   scripts/pg.sh start DATA_DIR PORT [-c name=value ...]   start (initialise on first use)
#   scripts/pg.sh stop DATA_DIR [fast|immediate]              stop (immediate: as a crash)
#   scripts/pg.sh report DATA_DIR                             whether it runs, and its log's
#                                                             errors and last lines
#
# As root, the server runs as the `postgres` user (PostgreSQL refuses to run as root).
# Prints the URL of the `postgres` database on stdout.
set -euo pipefail

find_bin() {
  if [[ -n "${PG_BIN:-}" ]]; then echo "$PG_BIN"; return; fi
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n "$dir" && -x "$dir/initdb" ]]; then echo "$dir"; return; fi
  if command -v pg_config >/dev/null && [[ -x "$(pg_config --bindir)/initdb" ]]; then pg_config --bindir; return; fi
  return 1
}

install_server() {
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "PostgreSQL server not found; installing it with apt-get" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  else
    echo "PostgreSQL server binaries not found: install PostgreSQL 15 or set PG_BIN" >&2
    exit 1
  fi
}

# Runs a command as the cluster's owner.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# The data folder, or a private one elsewhere when the postgres user cannot reach it (a
# project checked out under /root, say).
resolve_data_dir() {
  local wanted=$1
  mkdir -p "$wanted"
  wanted=$(cd "$wanted" && pwd)
  if [[ $(id -u) -eq 0 ]] && ! runuser -u postgres -- test -x "$wanted"; then
    local alt="/var/tmp/crowdminder-pg-$(echo -n "$wanted" | sha256sum | cut -c1-12)"
    mkdir -p "$alt"
    echo "note: the postgres user cannot reach $wanted; using $alt" >&2
    wanted=$alt
  fi
  echo "$wanted"
}

cmd=${1:-}
case "$cmd" in
  start)
    data_arg=${2:?data dir}; port=${3:?port}; shift 3
    bin=$(find_bin) || { install_server; bin=$(find_bin); }
    data=$(resolve_data_dir "$data_arg")
    cluster="$data/cluster"
    if [[ $(id -u) -eq 0 ]]; then chown postgres: "$data"; fi
    if [[ ! -f "$cluster/PG_VERSION" ]]; then
      as_owner "$bin/initdb" -D "$cluster" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
    fi
    if as_owner "$bin/pg_ctl" -D "$cluster" status >/dev/null 2>&1; then
      # Already running (from an earlier start): its port is in postmaster.pid.
      port=$(sed -n 4p "$cluster/postmaster.pid")
    else
      # Another server (another checkout's, say) may hold the port: take the next free one.
      while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        port=$((port + 1))
      done
      as_owner "$bin/pg_ctl" -D "$cluster" -l "$data/postgres.log" -w -t 60 \
        -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_connections=300 $*" start >/dev/null \
        || { cat "$data/postgres.log" >&2; exit 1; }
    fi
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    # MODE: fast (the default), or immediate, which stops like a crash (recovery at start).
    data_arg=${2:?data dir}; mode=${3:-fast}
    bin=$(find_bin)
    data=$(resolve_data_dir "$data_arg")
    as_owner "$bin/pg_ctl" -D "$data/cluster" -m "$mode" stop >/dev/null 2>&1 || true
    ;;
  report)
    data_arg=${2:?data dir}
    bin=$(find_bin)
    data=$(resolve_data_dir "$data_arg" 2>/dev/null)
    as_owner "$bin/pg_ctl" -D "$data/cluster" status 2>&1 | head -n 1 || true
    if [[ -f "$data/postgres.log" ]]; then
      echo "-- $data/postgres.log: PANIC, FATAL other than the tests' own drops, and restarts"
      grep -E "PANIC|FATAL|terminated by signal|No space left|out of memory|database system (was|is)" "$data/postgres.log" \
        | grep -vE 'FATAL:  (database "cmtest_|terminating connection due to administrator)' | tail -n 20 || true
      echo "-- its last lines"
      tail -n 10 "$data/postgres.log"
    fi
    ;;
  *)
    echo "usage: $0 start DATA_DIR PORT [-c name=value ...] | stop DATA_DIR [fast|immediate] | report DATA_DIR" >&2
    exit 2
    ;;
esac
