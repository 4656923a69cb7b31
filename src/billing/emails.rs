//! The emails about invoices: an issued invoice, with its PDF, to the client's billing
//! address.

use serde::{Deserialize, Serialize};

use super::InvoiceDocument;
use super::InvoiceStatus;
use super::pdf::{PdfFonts, format_amount};
use crate::jobs::registry::{JobContext, Letter};
use crate::mail::{Email, EmailAttachment};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "template", rename_all = "snake_case")]
pub enum BillingEmail {
    /// An issued invoice with its PDF, to the client's billing address.
    InvoiceSent { invoice_id: i64 },
}

impl Letter for BillingEmail {
    const TEMPLATES: &'static [&'static str] = &["invoice_sent"];

    async fn render(self, ctx: &JobContext) -> anyhow::Result<Option<Email>> {
        let Self::InvoiceSent { invoice_id } = self;
        let tenant = ctx.db.tenant();
        let site = ctx.site();
        let document = {
            let mut conn = ctx.db.conn().await?;
            InvoiceDocument::load(&mut conn, invoice_id).await?
        };
        let Some(document) = document else {
            return Ok(None);
        };
        let invoice = &document.invoice;
        let (Some(number), Some(to)) = (invoice.number.clone(), document.client_email.clone()) else {
            return Ok(None);
        };
        if !matches!(invoice.status(), InvoiceStatus::Issued | InvoiceStatus::Paid) {
            return Ok(None);
        }
        let minor = invoice.minor_units();
        let due = invoice.due_date.map(|d| d.to_string()).unwrap_or_default();
        let body = format!(
            "please find attached invoice {number} from {} for the period {} to {}.\n\n\
             Total: {} {}\nBalance due: {} {}\nDue date: {due}\n",
            tenant.name,
            invoice.period_from,
            invoice.period_to,
            format_amount(invoice.total, minor),
            invoice.currency,
            format_amount(invoice.balance_due(), minor),
            invoice.currency,
        );
        let subject = format!("Invoice {number} from {}", tenant.name);
        let fonts = ctx.services.shared::<PdfFonts>();
        let tenant_name = tenant.name.clone();
        // Laying out and subsetting fonts is CPU work: off the async threads.
        let (filename, client_name, pdf) = tokio::task::spawn_blocking(move || {
            let bytes = document.render(&fonts, &tenant_name);
            (document.file_name(), document.client_name, bytes)
        })
        .await?;
        let pdf = pdf?;
        let mut email = Email::letter(
            site.default_from_email,
            tenant.name.clone(),
            (to, client_name),
            subject,
            &body,
        );
        email.attachments.push(EmailAttachment {
            filename,
            content_type: "application/pdf".to_owned(),
            bytes: pdf,
        });
        Ok(Some(email))
    }
}
