//! Invoice numbers: given when a draft is issued, from the tenant's format, gapless per
//! year (or for ever when the format shows no year). The counter row is raised in the
//! issuing transaction, so concurrent issues queue and one rolled back leaves no gap.

use chrono::{Datelike, Duration, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::invoices::{Invoice, InvoiceStatus, admins_only, lock_draft};
use crate::auth::Actor;
use crate::db::schema::{invoice_counters, invoice_entries, invoice_lines, invoices, time_entries};
use crate::db::unique_conflict;
use crate::error::{AppError, AppResult};
use crate::settings::TenantSettings;

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

#[cfg(test)]
mod tests {
    use super::*;

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
