//! `/metrics`: Prometheus text.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::graphql::support::PageStats;

/// Prometheus text: the job queue (depth by status and kind, age of the oldest due job)
/// and this process's worker counters. Holds nothing of any tenant's data.
pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    use std::fmt::Write as _;
    use std::sync::atomic::Ordering;
    let depth = async {
        state
            .pool
            .transaction(async |conn| crate::jobs::depth(conn).await)
            .await
            .ok()
    };
    let Ok(Some(depth)) = tokio::time::timeout(Duration::from_secs(2), depth).await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response();
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP crowdminder_jobs Jobs in the queue, by status and kind."
    );
    let _ = writeln!(out, "# TYPE crowdminder_jobs gauge");
    for d in &depth {
        let _ = writeln!(
            out,
            "crowdminder_jobs{{status=\"{}\",kind=\"{}\"}} {}",
            d.status.to_lowercase(),
            d.kind,
            d.jobs
        );
    }
    let _ = writeln!(
        out,
        "# HELP crowdminder_jobs_oldest_due_seconds How long the oldest due pending job has waited."
    );
    let _ = writeln!(out, "# TYPE crowdminder_jobs_oldest_due_seconds gauge");
    let oldest = depth
        .iter()
        .filter(|d| d.status == "PENDING")
        .map(|d| d.oldest_due_seconds)
        .fold(0.0, f64::max);
    let _ = writeln!(out, "crowdminder_jobs_oldest_due_seconds {oldest:.3}");
    let stats = &state.worker_stats;
    for (name, help, value) in [
        (
            "crowdminder_jobs_succeeded_total",
            "Jobs this process ran to the end.",
            &stats.succeeded,
        ),
        (
            "crowdminder_jobs_failed_attempts_total",
            "Job attempts that failed in this process.",
            &stats.failed_attempts,
        ),
        (
            "crowdminder_jobs_released_total",
            "Jobs this process handed back unrun.",
            &stats.released,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
    }
    let pages = state.services.get::<PageStats>();
    for (name, help, direct, general) in [
        (
            "crowdminder_graphql_entry_pages_total",
            "Pages of timeEntries answered, by how: written directly, or field by field (a \
             selection the direct path does not cover).",
            &pages.entries_direct,
            &pages.entries_general,
        ),
        (
            "crowdminder_graphql_list_pages_total",
            "Pages of clients and users answered, by how.",
            &pages.lists_direct,
            &pages.lists_general,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (path, value) in [("direct", direct), ("general", general)] {
            let _ = writeln!(out, "{name}{{path=\"{path}\"}} {}", value.load(Ordering::Relaxed));
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
        .into_response()
}
