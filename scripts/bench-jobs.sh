#!/usr/bin/env bash
# The job queue benchmark (benches/jobs.rs): no-op jobs over 100 tenants drained by 2 and 8
# concurrent jobs; commit-to-start delay through LISTEN/NOTIFY.
#   scripts/bench-jobs.sh   # BENCH_TENANTS=100 BENCH_JOBS=5000 BENCH_LATENCY_JOBS=500 by default
set -euo pipefail
cd "$(dirname "$0")/.."
server=$(scripts/pg.sh start .data/postgres-bench 54331)
psql "$server" -qc "DROP DATABASE IF EXISTS crowdminder_bench_jobs WITH (FORCE)" -c "CREATE DATABASE crowdminder_bench_jobs"
BENCH_DATABASE_URL="${server%/postgres}/crowdminder_bench_jobs" cargo bench --bench jobs
