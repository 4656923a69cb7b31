#!/usr/bin/env bash
# The real servers the tests talk to besides PostgreSQL, on loopback:
#   an S3-compatible object store (moto's server) for FILE_STORE=s3://...
#   an SMTP server that requires sign-in (scripts/smtp-sink.py, on aiosmtpd) for SMTP_URL
#
#   scripts/peers.sh start DIR   start both (or find them running); prints the settings
#                                the tests read, as `export NAME=value` lines
#   scripts/peers.sh stop DIR
#
# Their Python packages (scripts/peers-requirements.txt, pinned) go into a virtual
# environment under DIR/venv, made on first use from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

free_port() {
  local port=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  echo "$port"
}

running() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() {
  local port=$1 log=$2
  for _ in $(seq 150); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.2
  done
  echo "a test peer did not start on port $port:" >&2
  tail -n 20 "$log" >&2
  exit 1
}

case "${1:-}" in
  start)
    mkdir -p "${2:?dir}"
    dir=$(cd "$2" && pwd)
    venv=$dir/venv
    wanted=$(sha256sum scripts/peers-requirements.txt | cut -c1-16)
    if [[ ! -x $venv/bin/python || $(cat "$venv/.requirements" 2>/dev/null) != "$wanted" ]]; then
      echo "installing the test peers (moto, aiosmtpd) into $venv" >&2
      rm -rf "$venv"
      python3 -m venv "$venv" >&2
      "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/peers-requirements.txt >&2
      echo "$wanted" > "$venv/.requirements"
    fi
    if running "$dir/s3.pid"; then
      s3_port=$(cat "$dir/s3.port")
    else
      s3_port=$(free_port 54350)
      "$venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port" > "$dir/s3.log" 2>&1 &
      echo $! > "$dir/s3.pid"
      echo "$s3_port" > "$dir/s3.port"
      wait_for "$s3_port" "$dir/s3.log"
    fi
    if running "$dir/smtp.pid"; then
      smtp_port=$(cat "$dir/smtp.port")
    else
      smtp_port=$(free_port 54360)
      "$venv/bin/python" scripts/smtp-sink.py 127.0.0.1 "$smtp_port" "$dir/mail" > "$dir/smtp.log" 2>&1 &
      echo $! > "$dir/smtp.pid"
      echo "$smtp_port" > "$dir/smtp.port"
      wait_for "$smtp_port" "$dir/smtp.log"
    fi
    # What the service reads for an S3 store (AWS_*), and where the tests find the mail.
    echo "export AWS_ENDPOINT=http://127.0.0.1:$s3_port"
    echo "export AWS_ALLOW_HTTP=true"
    echo "export AWS_REGION=us-east-1"
    echo "export AWS_ACCESS_KEY_ID=cmtest"
    echo "export AWS_SECRET_ACCESS_KEY=cmtest-secret"
    echo "export TEST_SMTP_ADDR=127.0.0.1:$smtp_port"
    echo "export TEST_SMTP_DIR=$dir/mail"
    ;;
  stop)
    dir=$(cd "${2:?dir}" && pwd)
    for name in s3 smtp; do
      if running "$dir/$name.pid"; then kill "$(cat "$dir/$name.pid")" 2>/dev/null || true; fi
      rm -f "$dir/$name.pid"
    done
    ;;
  *)
    echo "usage: $0 start DIR | stop DIR" >&2
    exit 2
    ;;
esac
