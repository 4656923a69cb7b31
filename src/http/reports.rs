//! Reports as CSV: `GET /reports/billable-hours.csv`, behind the same Bearer
//! authentication as `/graphql`.
//!
//! Query parameters: `from`, `to` (dates, both included), `groupBy` (comma-separated:
//! CLIENT, PROJECT, TASK, USER, DAY, WEEK, MONTH), optional `userIds`, `clientIds`,
//! `projectIds`, `taskIds` (comma-separated global ids), `billable` (true/false),
//! `statuses` (comma-separated), `totals=true` to end with a totals row.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::{AppState, Peer, error_response, read_unit, status_of};
use chrono::NaiveDate;

use crate::auth::Actor;
use crate::error::{AppError, AppResult};
use crate::graphql::support::{NodeType, expect_global_id};
use crate::settings::{self, SettingsCache};
use crate::time::csv::{self, CsvRequest};
use crate::time::entries::EntryStatus;
use crate::time::reports::{GroupBy, ReportFilter, ReportRequest};

/// The billable-hours report as CSV (the parameters are above). Errors
/// before the first byte are the GraphQL error shape with a fitting HTTP status.
pub(super) async fn billable_hours_csv(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let started = async {
        let (db, actor) = read_unit(&state, &headers, peer).await?;
        let request = parse(&params, &actor)?;
        let settings = settings::effective(&db, state.services.get::<SettingsCache>()).await?;
        Ok::<_, AppError>((db, settings, request))
    }
    .await;
    let (db, settings, request) = match started {
        Ok(started) => started,
        Err(e) => return error_response(status_of(&e), e),
    };
    let mut chunks = csv::stream(db, settings, request);
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| chunks.poll_recv(cx)));
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"billable-hours.csv\"",
            ),
        ],
        body,
    )
        .into_response()
}

fn date(params: &HashMap<String, String>, name: &str) -> AppResult<NaiveDate> {
    let raw = params
        .get(name)
        .ok_or_else(|| AppError::bad_input(name, format!("{name} is required (YYYY-MM-DD)")))?;
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| AppError::bad_input(name, format!("{name} is a date, YYYY-MM-DD")))
}

fn list<'a>(params: &'a HashMap<String, String>, name: &str) -> Option<impl Iterator<Item = &'a str>> {
    params
        .get(name)
        .map(|raw| raw.split(',').map(str::trim).filter(|s| !s.is_empty()))
}

fn id_list(params: &HashMap<String, String>, name: &str, node_type: NodeType) -> AppResult<Option<Vec<i64>>> {
    list(params, name)
        .map(|items| {
            items
                .map(|id| expect_global_id(name, &async_graphql::ID(id.to_owned()), node_type))
                .collect()
        })
        .transpose()
}

/// The report a request's parameters ask for, narrowed to what `actor` may see.
fn parse(params: &HashMap<String, String>, actor: &Actor) -> AppResult<CsvRequest> {
    let group_by = list(params, "groupBy")
        .map(|keys| {
            keys.map(|k| {
                GroupBy::parse(k).ok_or_else(|| {
                    AppError::bad_input(
                        "groupBy",
                        format!("{k} is not one of CLIENT, PROJECT, TASK, USER, DAY, WEEK, MONTH"),
                    )
                })
            })
            .collect::<AppResult<Vec<_>>>()
        })
        .transpose()?
        .unwrap_or_default();
    let billable = match params.get("billable").map(|s| s.trim()) {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(AppError::bad_input("billable", "billable is true or false")),
    };
    let statuses = list(params, "statuses")
        .map(|items| {
            items
                .map(|s| match s.to_ascii_uppercase().as_str() {
                    "DRAFT" => Ok(EntryStatus::Draft),
                    "SUBMITTED" => Ok(EntryStatus::Submitted),
                    "APPROVED" => Ok(EntryStatus::Approved),
                    "INVOICED" => Ok(EntryStatus::Invoiced),
                    _ => Err(AppError::bad_input("statuses", format!("{s} is not a status"))),
                })
                .collect::<AppResult<Vec<_>>>()
        })
        .transpose()?;
    let filter = ReportFilter {
        user_ids: actor.narrow(id_list(params, "userIds", NodeType::User)?),
        client_ids: id_list(params, "clientIds", NodeType::Client)?,
        project_ids: id_list(params, "projectIds", NodeType::Project)?,
        task_ids: id_list(params, "taskIds", NodeType::Task)?,
        billable,
        statuses,
    };
    let totals = params.get("totals").is_some_and(|t| t == "true" || t == "1");
    Ok(CsvRequest {
        report: ReportRequest::new(date(params, "from")?, date(params, "to")?, group_by, filter)?,
        totals,
    })
}
