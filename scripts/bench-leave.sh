#!/usr/bin/env bash
# The leave benchmark (benches/leave.rs): teamLeaveBalances for 20 and 200 users x 5 leave
# types: SQL statements per request and time through HTTP.
#   scripts/bench-leave.sh   # BENCH_RUNS=30 by default
set -euo pipefail
cd "$(dirname "$0")/.."
server=$(scripts/pg.sh start .data/postgres-bench 54331)
psql "$server" -qc "DROP DATABASE IF EXISTS crowdminder_bench_leave WITH (FORCE)" -c "CREATE DATABASE crowdminder_bench_leave"
BENCH_DATABASE_URL="${server%/postgres}/crowdminder_bench_leave" cargo bench --bench leave
