//! Billing: invoices for a client and period, built from approved, billable time that no
//! live invoice holds yet, plus manual lines; numbered when issued (gapless per tenant and
//! year), then paid (in parts) or voided.
//!
//! Money is `Decimal` end to end. A time line's amount is its minutes x rate / 60 rounded
//! once, half away from zero, to the currency's minor unit; a manual line's is quantity x
//! unit price rounded the same way. The subtotal is the sum of the rounded lines; the
//! discount and the tax are each rounded once; total = subtotal - discount + tax.
//!
//! Guarantees held by the database, whatever runs at once: an entry is on at most one live
//! invoice (a partial unique index), numbers come from a per-year counter row raised in the
//! issuing transaction (so concurrent issues queue and a rolled-back one leaves no gap), and
//! numbers are unique.

pub mod emails;
pub mod graphql;
pub mod pdf;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;

use crate::auth::Actor;
use crate::db::schema::{
    clients, invoice_counters, invoice_entries, invoice_lines, invoices, payments, projects, tasks,
    time_entries, users,
};
use crate::db::unique_conflict;
use crate::db::{Keyset, keyset_page};
use crate::error::{AppError, AppResult};
use crate::jobs::registry::Letter;
use crate::settings::{TenantSettings, currency};
use crate::tenancy::TenantDb;
use crate::{money, text};

#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceStatus {
    /// Editable; holds its entries but has no number yet.
    Draft,
    /// Numbered and frozen; waiting for payment.
    Issued,
    /// Settled by its payments.
    Paid,
    /// Cancelled after issue: keeps its number, its entries may be billed again.
    Void,
}

crate::db::stored_as_text!(InvoiceStatus, default Draft, {
    Draft => "DRAFT",
    Issued => "ISSUED",
    Paid => "PAID",
    Void => "VOID",
});

/// How a new invoice gathers its time into lines.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceGroupBy {
    /// One line per project (and rate).
    Project,
    /// One line per project task (and rate).
    Task,
    /// One line per person (and rate).
    User,
    /// One line per time entry.
    Entry,
}

crate::db::stored_as_text!(InvoiceGroupBy, default Project, {
    Project => "PROJECT",
    Task => "TASK",
    User => "USER",
    Entry => "ENTRY",
});

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = invoices)]
pub struct Invoice {
    pub id: i64,
    pub client_id: i64,
    pub status: String,
    pub group_by: String,
    pub period_from: NaiveDate,
    pub period_to: NaiveDate,
    pub currency: String,
    pub tax_rate: Decimal,
    pub discount_rate: Decimal,
    pub subtotal: Decimal,
    pub discount: Decimal,
    pub tax: Decimal,
    pub total: Decimal,
    pub paid: Decimal,
    pub notes: String,
    pub number: Option<String>,
    pub number_year: Option<i64>,
    pub number_seq: Option<i64>,
    pub issue_date: Option<NaiveDate>,
    pub due_date: Option<NaiveDate>,
    pub void_reason: Option<String>,
    pub voided_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_by: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Invoice {
    pub fn status(&self) -> InvoiceStatus {
        InvoiceStatus::from_db(&self.status)
    }

    /// What is still owed: nothing on a draft or a void invoice.
    pub fn balance_due(&self) -> Decimal {
        match self.status() {
            InvoiceStatus::Issued => self.total - self.paid,
            _ => Decimal::ZERO,
        }
    }

    /// Issued, unpaid, and past its due date on `today` (the tenant's today).
    pub fn is_overdue(&self, today: NaiveDate) -> bool {
        self.status() == InvoiceStatus::Issued && self.due_date.is_some_and(|due| due < today)
    }

    pub fn minor_units(&self) -> u32 {
        currency::minor_units(&self.currency).unwrap_or(2)
    }

    fn name(&self) -> String {
        self.number
            .clone()
            .unwrap_or_else(|| format!("draft {}", self.id))
    }
}

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

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = payments)]
pub struct Payment {
    pub id: i64,
    pub invoice_id: i64,
    pub amount: Decimal,
    pub paid_on: NaiveDate,
    pub note: String,
    pub recorded_by: i64,
    pub created_at: DateTime<Utc>,
}

/// An invoice's totals from its (rounded) line amounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub subtotal: Decimal,
    pub discount: Decimal,
    pub tax: Decimal,
    pub total: Decimal,
}

pub fn totals(
    amounts: impl IntoIterator<Item = Decimal>,
    discount_rate: Decimal,
    tax_rate: Decimal,
    minor_units: u32,
) -> Totals {
    let hundred = Decimal::ONE_HUNDRED;
    let subtotal: Decimal = amounts.into_iter().sum();
    let discount = money::round(subtotal * discount_rate / hundred, minor_units);
    let tax = money::round((subtotal - discount) * tax_rate / hundred, minor_units);
    Totals {
        subtotal,
        discount,
        tax,
        total: subtotal - discount + tax,
    }
}

/// Whether numbers restart each year (the format shows the year).
pub fn numbers_per_year(format: &str) -> bool {
    format.contains("{YYYY}") || format.contains("{YY}")
}

/// The number of the `seq`-th invoice issued on `day`.
pub fn format_number(format: &str, day: NaiveDate, seq: i64) -> String {
    let mut out = String::with_capacity(format.len() + 8);
    let mut rest = format;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        match &after[..end] {
            "YYYY" => out.push_str(&format!("{:04}", day.year())),
            "YY" => out.push_str(&format!("{:02}", day.year() % 100)),
            "MM" => out.push_str(&format!("{:02}", day.month())),
            "SEQ" => out.push_str(&seq.to_string()),
            token => match token.strip_prefix("SEQ:").and_then(|w| w.parse::<usize>().ok()) {
                Some(width) => out.push_str(&format!("{seq:0width$}")),
                None => out.push_str(&rest[start..=start + end + 1]),
            },
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn check_rate(field: &str, rate: Decimal) -> AppResult<Decimal> {
    if rate < Decimal::ZERO || rate > Decimal::ONE_HUNDRED || rate.scale() > 4 {
        return Err(AppError::bad_input(
            field,
            "a percentage between 0 and 100, at most 4 decimals",
        ));
    }
    Ok(rate.normalize())
}

fn admins_only(actor: &Actor) -> AppResult<()> {
    actor.require(&[crate::auth::Role::Admin], "only admins change invoices")
}

/// Invoices are seen by managers and admins.
pub fn may_see_invoices(actor: &Actor) -> AppResult<()> {
    actor.require(
        &[crate::auth::Role::Admin, crate::auth::Role::Manager],
        "only managers and admins see invoices",
    )
}

pub struct NewInvoice {
    pub client_id: i64,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub group_by: InvoiceGroupBy,
    pub tax_rate: Option<Decimal>,
    pub discount_rate: Option<Decimal>,
    pub notes: String,
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

/// Creates a draft for a client and period from its uninvoiced approved billable time
/// (admins). Drafts of one client are made one at a time (a lock on the client), and the
/// unique index on live entries backs that up.
pub async fn create(
    conn: &mut AsyncPgConnection,
    settings: &TenantSettings,
    actor: &Actor,
    input: NewInvoice,
) -> AppResult<Invoice> {
    admins_only(actor)?;
    if input.to < input.from {
        return Err(AppError::bad_input(
            "input.to",
            "the period ends before it starts",
        ));
    }
    let tax_rate = check_rate(
        "input.taxRate",
        input.tax_rate.unwrap_or(settings.default_tax_rate),
    )?;
    let discount_rate = check_rate("input.discountRate", input.discount_rate.unwrap_or_default())?;
    let notes = text::notes("input.notes", &input.notes)?;
    let client: Option<i64> = clients::table
        .find(input.client_id)
        .select(clients::id)
        .for_update()
        .first(conn)
        .await
        .optional()?;
    if client.is_none() {
        return Err(AppError::bad_input("input.clientId", "no such client"));
    }
    let minor = currency::minor_units(&settings.currency).unwrap_or(2);
    let invoice: Invoice = diesel::insert_into(invoices::table)
        .values((
            invoices::client_id.eq(input.client_id),
            invoices::group_by.eq(input.group_by.as_str()),
            invoices::period_from.eq(input.from),
            invoices::period_to.eq(input.to),
            invoices::currency.eq(&settings.currency),
            invoices::tax_rate.eq(tax_rate),
            invoices::discount_rate.eq(discount_rate),
            invoices::notes.eq(&notes),
            invoices::created_by.eq(actor.user_id),
        ))
        .returning(Invoice::as_returning())
        .get_result(conn)
        .await?;
    let entries = billable_entries(conn, input.client_id, input.from, input.to).await?;
    let drafts = group(entries, input.group_by);
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
    recompute(conn, invoice.id).await
}

/// Sets an invoice's totals from its lines, and returns it.
async fn recompute(conn: &mut AsyncPgConnection, id: i64) -> AppResult<Invoice> {
    let invoice: Invoice = invoices::table
        .find(id)
        .select(Invoice::as_select())
        .first(conn)
        .await?;
    let amounts: Vec<Decimal> = invoice_lines::table
        .filter(invoice_lines::invoice_id.eq(id))
        .select(invoice_lines::amount)
        .load(conn)
        .await?;
    let t = totals(
        amounts,
        invoice.discount_rate,
        invoice.tax_rate,
        invoice.minor_units(),
    );
    Ok(diesel::update(invoices::table.find(id))
        .set((
            invoices::subtotal.eq(t.subtotal),
            invoices::discount.eq(t.discount),
            invoices::tax.eq(t.tax),
            invoices::total.eq(t.total),
            invoices::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Invoice::as_returning())
        .get_result(conn)
        .await?)
}

async fn lock(conn: &mut AsyncPgConnection, id: i64) -> AppResult<Invoice> {
    invoices::table
        .find(id)
        .select(Invoice::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound { what: "invoice" })
}

/// Locks a draft for a change: anything after issue is frozen.
async fn lock_draft(conn: &mut AsyncPgConnection, id: i64) -> AppResult<Invoice> {
    let invoice = lock(conn, id).await?;
    if invoice.status() != InvoiceStatus::Draft {
        return Err(AppError::conflict(
            None,
            format!(
                "invoice {} is {}: an issued invoice does not change (void it, or record a payment)",
                invoice.name(),
                invoice.status().as_str().to_lowercase()
            ),
        ));
    }
    Ok(invoice)
}

#[derive(Default)]
pub struct InvoiceChanges {
    pub tax_rate: Option<Decimal>,
    pub discount_rate: Option<Decimal>,
    pub notes: Option<String>,
}

/// Changes a draft's tax rate, discount or notes (admins).
pub async fn update(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: i64,
    changes: InvoiceChanges,
) -> AppResult<Invoice> {
    admins_only(actor)?;
    lock_draft(conn, id).await?;
    let tax_rate = changes
        .tax_rate
        .map(|r| check_rate("input.taxRate", r))
        .transpose()?;
    let discount_rate = changes
        .discount_rate
        .map(|r| check_rate("input.discountRate", r))
        .transpose()?;
    let notes = changes
        .notes
        .map(|n| text::notes("input.notes", &n))
        .transpose()?;
    diesel::update(invoices::table.find(id))
        .set((
            tax_rate.map(|r| invoices::tax_rate.eq(r)),
            discount_rate.map(|r| invoices::discount_rate.eq(r)),
            notes.map(|n| invoices::notes.eq(n)),
        ))
        .execute(conn)
        .await?;
    recompute(conn, id).await
}

/// Deletes a draft, releasing its entries (admins).
pub async fn delete_draft(conn: &mut AsyncPgConnection, actor: &Actor, id: i64) -> AppResult<()> {
    admins_only(actor)?;
    lock_draft(conn, id).await?;
    diesel::delete(invoices::table.find(id)).execute(conn).await?;
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

/// Issues a draft (admins): the next number of the tenant's format, issue date today in
/// the tenant's zone, due after INVOICE_DUE_DAYS; its entries become INVOICED.
pub async fn issue(
    conn: &mut AsyncPgConnection,
    settings: &TenantSettings,
    actor: &Actor,
    id: i64,
) -> AppResult<Invoice> {
    admins_only(actor)?;
    lock_draft(conn, id).await?;
    let lines: i64 = invoice_lines::table
        .filter(invoice_lines::invoice_id.eq(id))
        .count()
        .get_result(conn)
        .await?;
    if lines == 0 {
        return Err(AppError::conflict(
            Some("id"),
            "an invoice without lines is not issued",
        ));
    }
    let today = Utc::now().with_timezone(&settings.time_zone).date_naive();
    let format = &settings.invoice_number_format;
    let year = if numbers_per_year(format) {
        i64::from(today.year())
    } else {
        0
    };
    // Taken under the counter row's lock until this transaction ends.
    let seq: i64 = diesel::insert_into(invoice_counters::table)
        .values((invoice_counters::year.eq(year), invoice_counters::last_seq.eq(1)))
        .on_conflict(invoice_counters::year)
        .do_update()
        .set(invoice_counters::last_seq.eq(invoice_counters::last_seq + 1))
        .returning(invoice_counters::last_seq)
        .get_result(conn)
        .await?;
    let number = format_number(format, today, seq);
    let issued = diesel::update(invoices::table.find(id))
        .set((
            invoices::status.eq(InvoiceStatus::Issued.as_str()),
            invoices::number.eq(&number),
            invoices::number_year.eq(year),
            invoices::number_seq.eq(seq),
            invoices::issue_date.eq(today),
            invoices::due_date.eq(today + Duration::days(i64::from(settings.invoice_due_days))),
            invoices::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Invoice::as_returning())
        .get_result(conn)
        .await
        .map_err(|e| {
            unique_conflict(e, Some("invoices_number_key"), Some("id"), || {
                format!("the number {number} was given before: change INVOICE_NUMBER_FORMAT")
            })
        })?;
    let billed = invoice_entries::table
        .filter(invoice_entries::invoice_id.eq(id))
        .filter(invoice_entries::live.eq(true))
        .select(invoice_entries::time_entry_id);
    diesel::update(time_entries::table.filter(time_entries::id.eq_any(billed)))
        .set((
            time_entries::status.eq("INVOICED"),
            time_entries::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(issued)
}

/// Records a payment of an issued invoice (admins): partial payments add up, more than the
/// balance due is refused, and the invoice is PAID when settled.
pub async fn record_payment(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    invoice_id: i64,
    amount: Decimal,
    paid_on: NaiveDate,
    note: &str,
) -> AppResult<(Invoice, Payment)> {
    admins_only(actor)?;
    let invoice = lock(conn, invoice_id).await?;
    if invoice.status() != InvoiceStatus::Issued {
        return Err(AppError::conflict(
            Some("invoiceId"),
            format!(
                "invoice {} is {}: payments are recorded on issued invoices",
                invoice.name(),
                invoice.status().as_str().to_lowercase()
            ),
        ));
    }
    let minor = invoice.minor_units();
    if amount <= Decimal::ZERO || amount.normalize().scale() > minor {
        return Err(AppError::bad_input(
            "amount",
            format!(
                "a positive amount in {} with at most {minor} decimals",
                invoice.currency
            ),
        ));
    }
    let due = invoice.balance_due();
    if amount > due {
        return Err(AppError::conflict(
            Some("amount"),
            format!(
                "more than the balance due of {} {}",
                due.normalize(),
                invoice.currency
            ),
        ));
    }
    if invoice.issue_date.is_some_and(|issued| paid_on < issued) {
        return Err(AppError::bad_input(
            "date",
            "a payment is not dated before the invoice's issue",
        ));
    }
    let note = note.trim();
    if note.chars().count() > 1000 {
        return Err(AppError::bad_input("note", "at most 1000 characters"));
    }
    let payment = diesel::insert_into(payments::table)
        .values((
            payments::invoice_id.eq(invoice_id),
            payments::amount.eq(amount),
            payments::paid_on.eq(paid_on),
            payments::note.eq(note),
            payments::recorded_by.eq(actor.user_id),
        ))
        .returning(Payment::as_returning())
        .get_result(conn)
        .await?;
    let paid = invoice.paid + amount;
    let status = if paid == invoice.total {
        InvoiceStatus::Paid
    } else {
        InvoiceStatus::Issued
    };
    let updated = diesel::update(invoices::table.find(invoice_id))
        .set((
            invoices::paid.eq(paid),
            invoices::status.eq(status.as_str()),
            invoices::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Invoice::as_returning())
        .get_result(conn)
        .await?;
    Ok((updated, payment))
}

/// Voids an issued invoice without payments (admins): it keeps its number (no gap) and its
/// lines, and its entries are released to be invoiced again.
pub async fn void(conn: &mut AsyncPgConnection, actor: &Actor, id: i64, reason: &str) -> AppResult<Invoice> {
    admins_only(actor)?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 1000 {
        return Err(AppError::bad_input("reason", "a reason of 1 to 1000 characters"));
    }
    let invoice = lock(conn, id).await?;
    match invoice.status() {
        InvoiceStatus::Issued if invoice.paid == Decimal::ZERO => {}
        InvoiceStatus::Issued | InvoiceStatus::Paid => {
            return Err(AppError::conflict(
                Some("id"),
                format!("invoice {} has payments and is not voided", invoice.name()),
            ));
        }
        InvoiceStatus::Draft => {
            return Err(AppError::conflict(Some("id"), "a draft is deleted, not voided"));
        }
        InvoiceStatus::Void => {
            return Err(AppError::conflict(
                Some("id"),
                format!("invoice {} is already void", invoice.name()),
            ));
        }
    }
    let released: Vec<i64> = diesel::update(
        invoice_entries::table
            .filter(invoice_entries::invoice_id.eq(id))
            .filter(invoice_entries::live.eq(true)),
    )
    .set(invoice_entries::live.eq(false))
    .returning(invoice_entries::time_entry_id)
    .get_results(conn)
    .await?;
    for chunk in released.chunks(10_000) {
        diesel::update(time_entries::table.filter(time_entries::id.eq_any(chunk)))
            .set((
                time_entries::status.eq("APPROVED"),
                time_entries::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await?;
    }
    Ok(diesel::update(invoices::table.find(id))
        .set((
            invoices::status.eq(InvoiceStatus::Void.as_str()),
            invoices::void_reason.eq(reason),
            invoices::voided_at.eq(diesel::dsl::now),
            invoices::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Invoice::as_returning())
        .get_result(conn)
        .await?)
}

/// Hands an issued (or paid) invoice to the outbox for the client's billing address, with
/// its PDF (admins). The email is rendered and sent after the transaction commits.
pub async fn send(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    tenant_id: i64,
    id: i64,
) -> AppResult<Invoice> {
    admins_only(actor)?;
    let invoice = lock(conn, id).await?;
    if !matches!(invoice.status(), InvoiceStatus::Issued | InvoiceStatus::Paid) {
        return Err(AppError::conflict(
            Some("id"),
            format!(
                "invoice {} is {}: only issued invoices are sent",
                invoice.name(),
                invoice.status().as_str().to_lowercase()
            ),
        ));
    }
    let email: Option<String> = clients::table
        .find(invoice.client_id)
        .select(clients::billing_email)
        .first(conn)
        .await?;
    if email.as_deref().is_none_or(|e| e.trim().is_empty()) {
        return Err(AppError::conflict(
            Some("id"),
            "the client has no billing email: set one with updateClient",
        ));
    }
    crate::jobs::enqueue(
        conn,
        emails::BillingEmail::InvoiceSent { invoice_id: id }.job(tenant_id),
    )
    .await?;
    Ok(diesel::update(invoices::table.find(id))
        .set(invoices::sent_at.eq(diesel::dsl::now))
        .returning(Invoice::as_returning())
        .get_result(conn)
        .await?)
}

#[derive(Default)]
pub struct InvoiceFilter {
    pub statuses: Option<Vec<InvoiceStatus>>,
    pub client_id: Option<i64>,
    /// Issued on or after (drafts: period ending on or after).
    pub from: Option<NaiveDate>,
    /// Issued on or before (drafts: period ending on or before).
    pub to: Option<NaiveDate>,
    /// Overdue (`true`) or not (`false`) on `today`.
    pub overdue: Option<bool>,
    pub today: Option<NaiveDate>,
}

pub async fn page(
    conn: &mut AsyncPgConnection,
    filter: &InvoiceFilter,
    keyset: Keyset,
) -> AppResult<Vec<Invoice>> {
    let mut query = keyset_page!(invoices, Invoice, keyset);
    if let Some(statuses) = &filter.statuses {
        let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        query = query.filter(invoices::status.eq_any(statuses));
    }
    if let Some(client) = filter.client_id {
        query = query.filter(invoices::client_id.eq(client));
    }
    let day = invoices::issue_date.nullable().assume_not_null();
    if let Some(from) = filter.from {
        query = query.filter(
            day.ge(from)
                .or(invoices::issue_date.is_null().and(invoices::period_to.ge(from))),
        );
    }
    if let Some(to) = filter.to {
        query = query.filter(
            day.le(to)
                .or(invoices::issue_date.is_null().and(invoices::period_to.le(to))),
        );
    }
    if let (Some(overdue), Some(today)) = (filter.overdue, filter.today) {
        let is_overdue = invoices::status
            .eq("ISSUED")
            .and(invoices::due_date.assume_not_null().lt(today));
        query = if overdue {
            query.filter(is_overdue)
        } else {
            query.filter(diesel::dsl::not(
                invoices::status
                    .eq("ISSUED")
                    .and(invoices::due_date.assume_not_null().lt(today)),
            ))
        };
    }
    Ok(query.load(conn).await?)
}

pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> AppResult<Option<Invoice>> {
    Ok(invoices::table
        .find(id)
        .select(Invoice::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Everything an invoice's PDF shows.
pub struct InvoiceDocument {
    pub invoice: Invoice,
    pub client_name: String,
    pub client_email: Option<String>,
    pub lines: Vec<InvoiceLine>,
    pub payments: Vec<Payment>,
}

impl InvoiceDocument {
    /// Reads an invoice with its client, lines and payments (in the current tenant).
    pub async fn load(conn: &mut AsyncPgConnection, id: i64) -> AppResult<Option<Self>> {
        let Some(invoice) = find(conn, id).await? else {
            return Ok(None);
        };
        let (client_name, client_email): (String, Option<String>) = clients::table
            .find(invoice.client_id)
            .select((clients::name, clients::billing_email))
            .first(conn)
            .await?;
        let lines = invoice_lines::table
            .filter(invoice_lines::invoice_id.eq(id))
            .order((invoice_lines::position, invoice_lines::id))
            .select(InvoiceLine::as_select())
            .load(conn)
            .await?;
        let payments = payments::table
            .filter(payments::invoice_id.eq(id))
            .order((payments::paid_on, payments::id))
            .select(Payment::as_select())
            .load(conn)
            .await?;
        Ok(Some(Self {
            invoice,
            client_name,
            client_email,
            lines,
            payments,
        }))
    }

    /// The PDF, set in `fonts`, headed by `tenant_name`.
    pub fn render(&self, fonts: &pdf::PdfFonts, tenant_name: &str) -> AppResult<Vec<u8>> {
        pdf::render(
            fonts,
            &self.invoice,
            &pdf::PdfParts {
                tenant_name,
                client_name: &self.client_name,
                client_email: self.client_email.as_deref(),
                lines: &self.lines,
                payments: &self.payments,
            },
        )
        .map_err(|why| AppError::internal(anyhow::anyhow!("rendering an invoice PDF: {why}")))
    }

    /// `INV-2026-0001.pdf`, or `draft-12.pdf` before issue.
    pub fn file_name(&self) -> String {
        let stem = self
            .invoice
            .number
            .clone()
            .unwrap_or_else(|| format!("draft-{}", self.invoice.id));
        let safe: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{safe}.pdf")
    }
}

/// The time entries a line bills, by line id, for one request.
pub struct EntriesOfLine {
    db: Arc<TenantDb>,
}

impl From<Arc<TenantDb>> for EntriesOfLine {
    fn from(db: Arc<TenantDb>) -> Self {
        Self { db }
    }
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

/// The payments of the invoices `invoice_ids`, each invoice's by date.
pub async fn payments_of(conn: &mut AsyncPgConnection, invoice_ids: &[i64]) -> AppResult<Vec<Payment>> {
    Ok(payments::table
        .filter(payments::invoice_id.eq_any(invoice_ids))
        .order((payments::invoice_id, payments::paid_on, payments::id))
        .select(Payment::as_select())
        .load(conn)
        .await?)
}

impl async_graphql::dataloader::Loader<i64> for EntriesOfLine {
    type Value = Vec<crate::time::entries::TimeEntry>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[i64],
    ) -> Result<HashMap<i64, Vec<crate::time::entries::TimeEntry>>, Self::Error> {
        use crate::time::entries::TimeEntry;
        let mut conn = self.db.conn().await?;
        let rows: Vec<(i64, TimeEntry)> = invoice_entries::table
            .inner_join(time_entries::table.on(time_entries::id.eq(invoice_entries::time_entry_id)))
            .filter(invoice_entries::line_id.eq_any(keys))
            .order((
                invoice_entries::line_id,
                time_entries::work_date,
                time_entries::id,
            ))
            .select((invoice_entries::line_id, TimeEntry::as_select()))
            .load(&mut *conn)
            .await
            .map_err(AppError::from)?;
        let mut map: HashMap<i64, Vec<TimeEntry>> = HashMap::new();
        for (line, entry) in rows {
            map.entry(line).or_default().push(entry);
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn awkward_amounts_round_half_up_once() {
        // 7 minutes at 333.33 an hour: 38.8885 -> 38.89.
        assert_eq!(money::time_amount(7, d("333.33"), 2), d("38.89"));
        // 1 minute at 0.30: 0.005 -> 0.01 (half away from zero).
        assert_eq!(money::time_amount(1, d("0.30"), 2), d("0.01"));
        assert_eq!(money::time_amount(90, d("100"), 0), d("150"));
        let t = totals([d("38.89")], Decimal::ZERO, d("15"), 2);
        assert_eq!((t.subtotal, t.tax, t.total), (d("38.89"), d("5.83"), d("44.72")));
        // Discount first, then tax on what is left: 100 - 12.5 % = 87.50; 7.7 % = 6.7375 -> 6.74.
        let t = totals([d("60"), d("40")], d("12.5"), d("7.7"), 2);
        assert_eq!((t.discount, t.tax, t.total), (d("12.50"), d("6.74"), d("94.24")));
    }

    #[test]
    fn numbers_follow_the_format() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap();
        assert_eq!(format_number("INV-{YYYY}-{SEQ:4}", day, 7), "INV-2026-0007");
        assert_eq!(format_number("{YY}{MM}/{SEQ}", day, 12345), "2603/12345");
        assert_eq!(format_number("R{SEQ:3}", day, 1234), "R1234");
        assert!(numbers_per_year("INV-{YYYY}-{SEQ:4}"));
        assert!(!numbers_per_year("R{SEQ:3}"));
    }
}
