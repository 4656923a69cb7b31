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

pub mod document;
pub mod emails;
pub mod graphql;
pub mod invoices;
pub mod lines;
pub mod numbering;
pub mod payments;
pub mod pdf;

pub use document::InvoiceDocument;
pub use invoices::{
    Invoice, InvoiceChanges, InvoiceFilter, InvoiceGroupBy, InvoiceStatus, NewInvoice, Totals, create,
    delete_draft, find, may_see_invoices, page, send, totals, update, void,
};
pub use lines::{InvoiceLine, LineInput, add_line, entries_of_lines, lines_of, remove_line, update_line};
pub use numbering::{format_number, issue, numbers_per_year};
pub use payments::{Payment, payments_of, record_payment};
