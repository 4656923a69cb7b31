//! An invoice's lines: time lines gathered from approved entries when a draft is made
//! (grouped by project, task, person or entry, one line per rate), and manual lines
//! (quantity x unit price, negative for a credit) added to a draft.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;

use super::invoices::{Invoice, InvoiceGroupBy, admins_only, lock_draft, recompute};
use crate::auth::Actor;
use crate::db::schema::{invoice_entries, invoice_lines, projects, tasks, time_entries, users};
use crate::db::unique_conflict;
use crate::error::{AppError, AppResult};
use crate::money;
use crate::time::entries::TimeEntry;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = invoice_lines)]
pub struct InvoiceLine {
    pub id: i64,
    pub invoice_id: i64,
    pub position: i64,
    pub kind: String,
    pub description: String,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub amount: Decimal,
    pub minutes: Option<i64>,
    pub project_id: Option<i64>,
    pub task_id: Option<i64>,
    pub user_id: Option<i64>,
}

/// An entry gathered for an invoice, with the names its line shows.
struct Billable {
    id: i64,
    user_id: i64,
    user_name: String,
    project_id: i64,
    project: String,
    task_id: Option<i64>,
    task: Option<String>,
    work_date: NaiveDate,
    minutes: i64,
    rate: Decimal,
    notes: String,
}

/// The row [`billable_entries`] reads.
#[derive(Queryable)]
struct BillableRow {
    id: i64,
    user_id: i64,
    user_name: String,
    project_id: i64,
    code: Option<String>,
    project: String,
    task_id: Option<i64>,
    task: Option<String>,
    work_date: NaiveDate,
    minutes: Option<i32>,
    rate: Option<Decimal>,
    notes: String,
}

/// A line being built, with the entries it bills.
struct Draft {
    description: String,
    minutes: i64,
    rate: Decimal,
    project_id: Option<i64>,
    task_id: Option<i64>,
    user_id: Option<i64>,
    entries: Vec<i64>,
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

fn group(entries: Vec<Billable>, by: InvoiceGroupBy) -> Vec<Draft> {
    // Keyed by what sorts the lines: names first, then the rate.
    let mut lines: BTreeMap<(String, String, i64, i64, Decimal), Draft> = BTreeMap::new();
    for e in entries {
        let task = e.task.clone().unwrap_or_else(|| "No task".to_owned());
        let (key, description, project_id, task_id, user_id) = match by {
            InvoiceGroupBy::Project => (
                (e.project.to_lowercase(), String::new(), e.project_id, 0, e.rate),
                e.project.clone(),
                Some(e.project_id),
                None,
                None,
            ),
            InvoiceGroupBy::Task => (
                (
                    e.project.to_lowercase(),
                    task.to_lowercase(),
                    e.project_id,
                    e.task_id.unwrap_or(0),
                    e.rate,
                ),
                format!("{} / {task}", e.project),
                Some(e.project_id),
                e.task_id,
                None,
            ),
            InvoiceGroupBy::User => (
                (e.user_name.to_lowercase(), String::new(), e.user_id, 0, e.rate),
                e.user_name.clone(),
                None,
                None,
                Some(e.user_id),
            ),
            InvoiceGroupBy::Entry => {
                let notes = if e.notes.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", e.notes.trim())
                };
                (
                    (e.work_date.to_string(), String::new(), e.id, 0, e.rate),
                    truncate(
                        &format!("{} {} / {task}, {}{notes}", e.work_date, e.project, e.user_name),
                        1000,
                    ),
                    Some(e.project_id),
                    e.task_id,
                    Some(e.user_id),
                )
            }
        };
        let line = lines.entry(key).or_insert_with(|| Draft {
            description,
            minutes: 0,
            rate: e.rate,
            project_id,
            task_id,
            user_id,
            entries: Vec::new(),
        });
        line.minutes += e.minutes;
        line.entries.push(e.id);
    }
    lines.into_values().collect()
}

/// The approved, billable, rated entries of a client's projects in a period that no live
/// invoice holds.
async fn billable_entries(
    conn: &mut AsyncPgConnection,
    client_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> AppResult<Vec<Billable>> {
    let on_live_invoices = invoice_entries::table
        .filter(invoice_entries::live.eq(true))
        .select(invoice_entries::time_entry_id);
    let rows: Vec<BillableRow> = time_entries::table
        .inner_join(projects::table)
        .inner_join(users::table.on(users::id.eq(time_entries::user_id)))
        .left_join(tasks::table)
        .filter(projects::client_id.eq(client_id))
        .filter(time_entries::status.eq("APPROVED"))
        .filter(time_entries::billable.eq(true))
        .filter(time_entries::minutes.is_not_null())
        .filter(time_entries::hourly_rate.is_not_null())
        .filter(time_entries::work_date.between(from, to))
        .filter(diesel::dsl::not(time_entries::id.eq_any(on_live_invoices)))
        .order((time_entries::work_date, time_entries::id))
        .select((
            time_entries::id,
            time_entries::user_id,
            users::name,
            time_entries::project_id,
            projects::code,
            projects::name,
            time_entries::task_id,
            tasks::name.nullable(),
            time_entries::work_date,
            time_entries::minutes,
            time_entries::hourly_rate,
            time_entries::notes,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| Billable {
            id: r.id,
            user_id: r.user_id,
            user_name: r.user_name,
            project_id: r.project_id,
            project: match r.code {
                Some(code) if !code.is_empty() => format!("{code} {}", r.project),
                _ => r.project,
            },
            task_id: r.task_id,
            task: r.task,
            work_date: r.work_date,
            minutes: i64::from(r.minutes.unwrap_or_default()),
            rate: r.rate.unwrap_or_default(),
            notes: r.notes,
        })
        .collect())
}

fn already_invoiced(e: DieselError) -> AppError {
    unique_conflict(e, Some("invoice_entries_live_key"), None, || {
        "some of these entries were put on another invoice meanwhile: try again".to_owned()
    })
}

/// Puts a new draft's time lines on it: the client's billable entries of `period`, grouped
/// by `by`, each line linked to the entries it bills.
pub(super) async fn add_time_lines(
    conn: &mut AsyncPgConnection,
    invoice: &Invoice,
    by: InvoiceGroupBy,
    client_id: i64,
    (from, to): (NaiveDate, NaiveDate),
) -> AppResult<()> {
    let minor = invoice.minor_units();
    let entries = billable_entries(conn, client_id, from, to).await?;
    let drafts = group(entries, by);
    let hours = |minutes: i64| (Decimal::from(minutes) / Decimal::from(60)).round_dp(4);
    let rows: Vec<_> = drafts
        .iter()
        .enumerate()
        .map(|(i, d)| {
            (
                invoice_lines::invoice_id.eq(invoice.id),
                invoice_lines::position.eq(i as i64 + 1),
                invoice_lines::kind.eq("TIME"),
                invoice_lines::description.eq(&d.description),
                invoice_lines::quantity.eq(hours(d.minutes)),
                invoice_lines::unit_price.eq(d.rate),
                invoice_lines::amount.eq(money::time_amount(d.minutes, d.rate, minor)),
                invoice_lines::minutes.eq(Some(d.minutes)),
                invoice_lines::project_id.eq(d.project_id),
                invoice_lines::task_id.eq(d.task_id),
                invoice_lines::user_id.eq(d.user_id),
            )
        })
        .collect();
    // PostgreSQL takes at most 65,535 parameters in a statement.
    let mut line_ids: Vec<(i64, i64)> = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(5_000) {
        line_ids.extend(
            diesel::insert_into(invoice_lines::table)
                .values(chunk)
                .returning((invoice_lines::position, invoice_lines::id))
                .get_results::<(i64, i64)>(conn)
                .await?,
        );
    }
    let line_of: HashMap<i64, i64> = line_ids.into_iter().collect();
    let links: Vec<_> = drafts
        .iter()
        .enumerate()
        .flat_map(|(i, d)| {
            let line = line_of[&(i as i64 + 1)];
            d.entries.iter().map(move |&entry| {
                (
                    invoice_entries::invoice_id.eq(invoice.id),
                    invoice_entries::line_id.eq(line),
                    invoice_entries::time_entry_id.eq(entry),
                )
            })
        })
        .collect();
    for chunk in links.chunks(10_000) {
        diesel::insert_into(invoice_entries::table)
            .values(chunk)
            .execute(conn)
            .await
            .map_err(already_invoiced)?;
    }
    Ok(())
}

pub struct LineInput {
    pub description: Option<String>,
    pub quantity: Option<Decimal>,
    pub unit_price: Option<Decimal>,
}

fn check_description(raw: &str) -> AppResult<String> {
    let text = raw.trim();
    if text.is_empty() || text.chars().count() > 1000 {
        return Err(AppError::bad_input(
            "input.description",
            "a description of 1 to 1000 characters",
        ));
    }
    Ok(text.to_owned())
}

fn check_quantity(q: Decimal) -> AppResult<Decimal> {
    if q.scale() > 4 || q.abs() > Decimal::from(1_000_000_000) {
        return Err(AppError::bad_input(
            "input.quantity",
            "at most 4 decimals and below a billion",
        ));
    }
    Ok(q.normalize())
}

fn check_price(p: Decimal) -> AppResult<Decimal> {
    if p.scale() > 4 || p.abs() > Decimal::from(1_000_000_000) {
        return Err(AppError::bad_input(
            "input.unitPrice",
            "at most 4 decimals and below a billion (negative for a credit)",
        ));
    }
    Ok(p.normalize())
}

/// Adds a manual line to a draft (admins): quantity x unit price, rounded.
/// Returns the line and its invoice's currency decimals.
pub async fn add_line(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    invoice_id: i64,
    input: LineInput,
) -> AppResult<(InvoiceLine, u32)> {
    admins_only(actor)?;
    let invoice = lock_draft(conn, invoice_id).await?;
    let description = check_description(input.description.as_deref().unwrap_or_default())?;
    let quantity = check_quantity(input.quantity.unwrap_or(Decimal::ONE))?;
    let unit_price = check_price(
        input
            .unit_price
            .ok_or_else(|| AppError::bad_input("input.unitPrice", "a unit price is needed"))?,
    )?;
    let position: Option<i64> = invoice_lines::table
        .filter(invoice_lines::invoice_id.eq(invoice_id))
        .select(diesel::dsl::max(invoice_lines::position))
        .first(conn)
        .await?;
    let line = diesel::insert_into(invoice_lines::table)
        .values((
            invoice_lines::invoice_id.eq(invoice_id),
            invoice_lines::position.eq(position.unwrap_or(0) + 1),
            invoice_lines::kind.eq("MANUAL"),
            invoice_lines::description.eq(description),
            invoice_lines::quantity.eq(quantity),
            invoice_lines::unit_price.eq(unit_price),
            invoice_lines::amount.eq(money::round(quantity * unit_price, invoice.minor_units())),
        ))
        .returning(InvoiceLine::as_returning())
        .get_result(conn)
        .await?;
    recompute(conn, invoice_id).await?;
    Ok((line, invoice.minor_units()))
}

async fn lock_line(conn: &mut AsyncPgConnection, line_id: i64) -> AppResult<(Invoice, InvoiceLine)> {
    let line: InvoiceLine = invoice_lines::table
        .find(line_id)
        .select(InvoiceLine::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound { what: "invoice line" })?;
    let invoice = lock_draft(conn, line.invoice_id).await?;
    Ok((invoice, line))
}

/// Changes a line of a draft (admins): any line's description; quantity and price of manual
/// lines only (a time line's come from its entries).
pub async fn update_line(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    line_id: i64,
    input: LineInput,
) -> AppResult<(InvoiceLine, u32)> {
    admins_only(actor)?;
    let (invoice, line) = lock_line(conn, line_id).await?;
    let description = input.description.as_deref().map(check_description).transpose()?;
    if line.kind == "TIME" && (input.quantity.is_some() || input.unit_price.is_some()) {
        return Err(AppError::bad_input(
            if input.quantity.is_some() {
                "input.quantity"
            } else {
                "input.unitPrice"
            },
            "a time line's hours and rate come from its entries: remove the line or add a manual one",
        ));
    }
    let quantity = check_quantity(input.quantity.unwrap_or(line.quantity))?;
    let unit_price = check_price(input.unit_price.unwrap_or(line.unit_price))?;
    let amount = if line.kind == "TIME" {
        line.amount
    } else {
        money::round(quantity * unit_price, invoice.minor_units())
    };
    let updated = diesel::update(invoice_lines::table.find(line_id))
        .set((
            description.map(|d| invoice_lines::description.eq(d)),
            invoice_lines::quantity.eq(quantity),
            invoice_lines::unit_price.eq(unit_price),
            invoice_lines::amount.eq(amount),
        ))
        .returning(InvoiceLine::as_returning())
        .get_result(conn)
        .await?;
    recompute(conn, invoice.id).await?;
    Ok((updated, invoice.minor_units()))
}

/// Removes a line from a draft (admins); a time line's entries may be billed again.
pub async fn remove_line(conn: &mut AsyncPgConnection, actor: &Actor, line_id: i64) -> AppResult<Invoice> {
    admins_only(actor)?;
    let (invoice, _) = lock_line(conn, line_id).await?;
    diesel::delete(invoice_lines::table.find(line_id))
        .execute(conn)
        .await?;
    recompute(conn, invoice.id).await
}

/// The lines of the invoices `invoice_ids`, each invoice's in order.
pub async fn lines_of(conn: &mut AsyncPgConnection, invoice_ids: &[i64]) -> AppResult<Vec<InvoiceLine>> {
    Ok(invoice_lines::table
        .filter(invoice_lines::invoice_id.eq_any(invoice_ids))
        .order((
            invoice_lines::invoice_id,
            invoice_lines::position,
            invoice_lines::id,
        ))
        .select(InvoiceLine::as_select())
        .load(conn)
        .await?)
}

/// The time entries the lines `line_ids` bill, as (line id, entry), each line's by date.
pub async fn entries_of_lines(
    conn: &mut AsyncPgConnection,
    line_ids: &[i64],
) -> AppResult<Vec<(i64, TimeEntry)>> {
    Ok(invoice_entries::table
        .inner_join(time_entries::table.on(time_entries::id.eq(invoice_entries::time_entry_id)))
        .filter(invoice_entries::line_id.eq_any(line_ids))
        .order((
            invoice_entries::line_id,
            time_entries::work_date,
            time_entries::id,
        ))
        .select((invoice_entries::line_id, TimeEntry::as_select()))
        .load(conn)
        .await?)
}
