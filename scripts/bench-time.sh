#!/usr/bin/env bash
# The time-tracking benchmark (benches/time.rs): one tenant with 1,000,000 entries; the
# billable-hours report and a page of entries through the API against the same SQL sent
# directly.
#   scripts/bench-time.sh   # BENCH_ENTRIES=1000000 BENCH_RUNS=30 by default
set -euo pipefail
cd "$(dirname "$0")/.."
server=$(scripts/pg.sh start .data/postgres-bench 54331)
psql "$server" -qc "DROP DATABASE IF EXISTS crowdminder_bench_time WITH (FORCE)" -c "CREATE DATABASE crowdminder_bench_time"
cargo build --release --bin crowdminder
BENCH_DATABASE_URL="${server%/postgres}/crowdminder_bench_time" cargo bench --bench time
