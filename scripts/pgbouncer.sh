#!/usr/bin/env bash
# A private pgbouncer in transaction mode in front of a PostgreSQL URL, as operators run
# one: prepared statements do not survive a transaction, and each transaction may run on
# another server connection.
#
#   scripts/pgbouncer.sh start DIR PORT SERVER_URL [POOL_SIZE]   start (or find running)
#   scripts/pgbouncer.sh stop DIR
#   scripts/pgbouncer.sh report DIR   whether it runs, and its log's errors and last lines
#
# Every database of SERVER_URL's server is served under the same name; POOL_SIZE (default
# 4) server connections per database and user. Installs pgbouncer with apt-get when it is
# missing and this runs as root. Prints the pooler's URL of the `postgres` database.
set -euo pipefail

cmd=${1:-}
case "$cmd" in
  start)
    dir_arg=${2:?dir}; port=${3:?port}; server=${4:?server url}; pool_size=${5:-4}
    if ! command -v pgbouncer >/dev/null 2>&1 && [[ ! -x /usr/sbin/pgbouncer ]]; then
      if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "pgbouncer not found; installing it with apt-get" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >&2 \
          || { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >&2; }
      else
        echo "pgbouncer not found: install it (apt-get install pgbouncer)" >&2
        exit 1
      fi
    fi
    bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
    # postgres://user@host:port/db
    rest=${server#*://}
    user=${rest%%@*}
    hostport=${rest#*@}
    hostport=${hostport%%/*}
    host=${hostport%%:*}
    server_port=${hostport##*:}
    mkdir -p "$dir_arg"
    dir=$(cd "$dir_arg" && pwd)
    if [[ $(id -u) -eq 0 ]] && ! runuser -u postgres -- test -x "$dir"; then
      # The postgres user (pgbouncer refuses root) cannot reach it: a private one elsewhere.
      dir="/var/tmp/crowdminder-pgbouncer-$(echo -n "$dir" | sha256sum | cut -c1-12)"
      mkdir -p "$dir"
    fi
    if [[ -f "$dir/pgbouncer.pid" ]] && kill -0 "$(cat "$dir/pgbouncer.pid")" 2>/dev/null; then
      port=$(sed -n 's/^listen_port = //p' "$dir/pgbouncer.ini")
    else
      while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        port=$((port + 1))
      done
      echo "\"$user\" \"\"" > "$dir/users.txt"
      cat > "$dir/pgbouncer.ini" <<EOF
[databases]
* = host=$host port=$server_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
pool_mode = transaction
default_pool_size = $pool_size
max_client_conn = 2000
max_db_connections = 0
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
admin_users = $user
EOF
      # Room for max_client_conn (the usual soft limit of 1024 descriptors is not), within
      # the hard limit.
      run=(sh -c 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"' "$bin" -d "$dir/pgbouncer.ini")
      if [[ $(id -u) -eq 0 ]]; then
        # pgbouncer refuses to run as root.
        chown -R postgres: "$dir"
        runuser -u postgres -- "${run[@]}"
      else
        "${run[@]}"
      fi
      for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
      done
    fi
    echo "postgres://$user@127.0.0.1:$port/postgres"
    ;;
  stop)
    dir=$(cd "${2:?dir}" && pwd)
    alt="/var/tmp/crowdminder-pgbouncer-$(echo -n "$dir" | sha256sum | cut -c1-12)"
    [[ -f "$dir/pgbouncer.pid" ]] || dir=$alt
    if [[ -f "$dir/pgbouncer.pid" ]]; then
      kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
    fi
    ;;
  report)
    dir=$(cd "${2:?dir}" && pwd)
    alt="/var/tmp/crowdminder-pgbouncer-$(echo -n "$dir" | sha256sum | cut -c1-12)"
    [[ -f "$dir/pgbouncer.ini" ]] || dir=$alt
    if [[ -f "$dir/pgbouncer.pid" ]] && kill -0 "$(cat "$dir/pgbouncer.pid")" 2>/dev/null; then
      echo "pgbouncer is running (pid $(cat "$dir/pgbouncer.pid"))"
    else
      echo "pgbouncer is not running"
    fi
    if [[ -f "$dir/pgbouncer.log" ]]; then
      echo "-- $dir/pgbouncer.log: errors other than dropped test databases"
      grep -E "ERROR|FATAL|limit|Too many|accept" "$dir/pgbouncer.log" | tail -n 20 || true
      echo "-- its last lines"
      tail -n 10 "$dir/pgbouncer.log"
    fi
    ;;
  *)
    echo "usage: $0 start DIR PORT SERVER_URL [POOL_SIZE] | stop DIR | report DIR" >&2
    exit 2
    ;;
esac
