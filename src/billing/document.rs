//! An invoice as a document: what its PDF and its email show.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::invoices::{Invoice, find};
use super::lines::InvoiceLine;
use super::payments::Payment;
use super::pdf;
use crate::db::schema::{clients, invoice_lines, payments};
use crate::error::{AppError, AppResult};

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
