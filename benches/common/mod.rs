//! What the benchmarks share: their settings from the environment, the figures they
//! print, and the set-up of a benchmark database (run them with `scripts/bench.sh NAME`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use crowdminder::app::{FirstAdmin, create_tenant};
use crowdminder::config::Secret;
use crowdminder::tenancy::registry::NewTenant;
use crowdminder::tenancy::{self, Tenant, migrations};
use diesel_async::AsyncPgConnection;

pub const JWT_SECRET: &str = "bench-secret-bench-secret-bench-secret-42";
/// Every benchmark tenant's admin signs in with this.
pub const PASSWORD: &str = "bench-admin-password";

/// A setting from the environment, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The (empty) database a benchmark fills, from `BENCH_DATABASE_URL`.
pub fn database_url() -> String {
    std::env::var("BENCH_DATABASE_URL").expect("BENCH_DATABASE_URL: an empty database to fill")
}

/// The runtime a benchmark runs in. reqwest is built without a default TLS provider in
/// this project: ring is installed here.
pub fn runtime() -> tokio::runtime::Runtime {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A connection to the benchmark database, `public` migrated.
pub async fn prepare(url: &str) -> AsyncPgConnection {
    let mut conn = tenancy::connect(url).await.unwrap();
    migrations::migrate_public(&mut conn).await.unwrap();
    conn
}

/// A tenant made as production makes one, its admin `admin_email` with [`PASSWORD`].
pub async fn tenant(
    conn: &mut AsyncPgConnection,
    schema: &str,
    name: &str,
    host: &str,
    admin_email: &str,
) -> Tenant {
    create_tenant(
        conn,
        &NewTenant::parse(schema, name, host).unwrap(),
        FirstAdmin {
            email: admin_email.into(),
            name: "Admin".into(),
            password: Secret::new(PASSWORD),
        },
    )
    .await
    .unwrap()
}

/// The release binary, which the benchmarks that time a server process run.
pub fn binary() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/crowdminder");
    assert!(
        path.exists(),
        "build the release binary first: cargo build --release"
    );
    path
}

/// The middle value (of an even count, the mean of the two in the middle).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The value at fraction `p` of `sorted`, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}
