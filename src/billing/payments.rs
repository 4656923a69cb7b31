//! Payments of issued invoices: partial payments add up; the invoice is paid when they
//! reach its total.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;

use super::invoices::{Invoice, InvoiceStatus, admins_only, lock};
use crate::auth::Actor;
use crate::db::schema::{invoices, payments};
use crate::error::{AppError, AppResult};

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

/// The payments of the invoices `invoice_ids`, each invoice's by date.
pub async fn payments_of(conn: &mut AsyncPgConnection, invoice_ids: &[i64]) -> AppResult<Vec<Payment>> {
    Ok(payments::table
        .filter(payments::invoice_id.eq_any(invoice_ids))
        .order((payments::invoice_id, payments::paid_on, payments::id))
        .select(Payment::as_select())
        .load(conn)
        .await?)
}
