//! Invoices: the record and its life. A draft is made for a client and period from the
//! time no live invoice holds yet, changed while a draft, then issued (numbering.rs), paid
//! (payments.rs) or voided, and sent.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;

use super::{emails, lines};
use crate::auth::Actor;
use crate::db::schema::{clients, invoice_entries, invoice_lines, invoices, time_entries};
use crate::db::{Keyset, keyset_page};
use crate::error::{AppError, AppResult};
use crate::jobs::registry::Letter;
use crate::settings::{TenantSettings, currency};
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

    pub(super) fn name(&self) -> String {
        self.number
            .clone()
            .unwrap_or_else(|| format!("draft {}", self.id))
    }
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

fn check_rate(field: &str, rate: Decimal) -> AppResult<Decimal> {
    if rate < Decimal::ZERO || rate > Decimal::ONE_HUNDRED || rate.scale() > 4 {
        return Err(AppError::bad_input(
            field,
            "a percentage between 0 and 100, at most 4 decimals",
        ));
    }
    Ok(rate.normalize())
}

pub(super) fn admins_only(actor: &Actor) -> AppResult<()> {
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
    lines::add_time_lines(
        conn,
        &invoice,
        input.group_by,
        input.client_id,
        (input.from, input.to),
    )
    .await?;
    recompute(conn, invoice.id).await
}

/// Sets an invoice's totals from its lines, and returns it.
pub(super) async fn recompute(conn: &mut AsyncPgConnection, id: i64) -> AppResult<Invoice> {
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

pub(super) async fn lock(conn: &mut AsyncPgConnection, id: i64) -> AppResult<Invoice> {
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
pub(super) async fn lock_draft(conn: &mut AsyncPgConnection, id: i64) -> AppResult<Invoice> {
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
    mut conn: &AsyncPgConnection,
    filter: &InvoiceFilter,
    keyset: Keyset,
) -> QueryResult<Vec<Invoice>> {
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
    query.load(&mut conn).await
}

pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> AppResult<Option<Invoice>> {
    Ok(invoices::table
        .find(id)
        .select(Invoice::as_select())
        .first(conn)
        .await
        .optional()?)
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
}
