//! An invoice as a PDF (A4): the tenant, the client, number and dates, the lines, discount,
//! tax, totals and payments, paged with a running header. Text is set in a TrueType font
//! embedded as a subset (DejaVu Sans by default, which covers Latin, Greek and Cyrillic),
//! so any name renders and the text can be extracted again.

use std::sync::{Arc, OnceLock};

use krilla::Document;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::text::{Font, TextDirection};
use rust_decimal::Decimal;
use skrifa::MetadataProvider;

use super::{Invoice, InvoiceLine, InvoiceStatus, Payment};

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 50.0;
const LINE: f32 = 15.0;
const SIZE: f32 = 9.5;

/// A font and what measuring it needs.
#[derive(Clone)]
struct Face {
    font: Font,
    data: Arc<Vec<u8>>,
}

impl Face {
    fn load(path: &str) -> Result<Self, String> {
        let data = Arc::new(std::fs::read(path).map_err(|e| format!("cannot read the font {path}: {e}"))?);
        let font = Font::new(data.clone().into(), 0).ok_or_else(|| format!("{path} is not a usable font"))?;
        skrifa::FontRef::new(&data).map_err(|e| format!("{path}: {e}"))?;
        Ok(Self { font, data })
    }

    fn width(&self, text: &str, size: f32) -> f32 {
        let Ok(font) = skrifa::FontRef::new(&self.data) else {
            return 0.0;
        };
        let charmap = font.charmap();
        let metrics = font.glyph_metrics(
            skrifa::instance::Size::new(size),
            skrifa::instance::LocationRef::default(),
        );
        text.chars()
            .filter_map(|c| charmap.map(c))
            .map(|g| metrics.advance_width(g).unwrap_or(0.0))
            .sum()
    }
}

/// The fonts invoices are set in, read on first use (a server without them still serves
/// everything else, and says what is missing when asked for a PDF).
pub struct PdfFonts {
    regular: String,
    bold: String,
    loaded: OnceLock<Result<(Face, Face), String>>,
}

impl PdfFonts {
    pub fn new(regular: &str, bold: &str) -> Self {
        Self {
            regular: regular.to_owned(),
            bold: bold.to_owned(),
            loaded: OnceLock::new(),
        }
    }

    fn faces(&self) -> Result<&(Face, Face), String> {
        self.loaded
            .get_or_init(|| Ok((Face::load(&self.regular)?, Face::load(&self.bold)?)))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// What the PDF shows besides the invoice itself.
pub struct PdfParts<'a> {
    pub tenant_name: &'a str,
    pub client_name: &'a str,
    pub client_email: Option<&'a str>,
    pub lines: &'a [InvoiceLine],
    pub payments: &'a [Payment],
}

/// An amount with thousands separators and exactly `minor` decimals: 12,345.60.
pub fn format_amount(amount: Decimal, minor: u32) -> String {
    let shown = crate::money::shown(amount, minor);
    let text = shown.abs().to_string();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if shown.is_sign_negative() && !shown.is_zero() {
        "-"
    } else {
        ""
    };
    if fraction.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{fraction}")
    }
}

/// Breaks `text` into lines no wider than `width` (at word boundaries where it can).
fn wrap(face: &Face, text: &str, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let candidate = if current.is_empty() {
            word.to_owned()
        } else {
            format!("{current} {word}")
        };
        if face.width(&candidate, size) <= width {
            current = candidate;
            continue;
        }
        if !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        // A word wider than the column is cut.
        let mut piece = String::new();
        for c in word.chars() {
            piece.push(c);
            if face.width(&piece, size) > width {
                piece.pop();
                lines.push(std::mem::take(&mut piece));
                piece.push(c);
            }
        }
        current = piece;
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

/// One drawing operation, laid out before any page is made (so pages know their count).
enum Mark {
    Text {
        x: f32,
        y: f32,
        text: String,
        bold: bool,
        size: f32,
    },
    Right {
        x: f32,
        y: f32,
        text: String,
        bold: bool,
        size: f32,
    },
    Rule {
        y: f32,
    },
}

impl Mark {
    fn left(x: f32, y: f32, text: impl Into<String>, bold: bool, size: f32) -> Self {
        Self::Text {
            x,
            y,
            text: text.into(),
            bold,
            size,
        }
    }

    fn right(x: f32, y: f32, text: impl Into<String>, bold: bool, size: f32) -> Self {
        Self::Right {
            x,
            y,
            text: text.into(),
            bold,
            size,
        }
    }
}

/// Renders an invoice. Errors are about the fonts (missing or unusable) or the PDF writer.
pub fn render(fonts: &PdfFonts, invoice: &Invoice, parts: &PdfParts<'_>) -> Result<Vec<u8>, String> {
    let (regular, heavy) = fonts.faces()?;
    let minor = invoice.minor_units();
    let money = |d: Decimal| format_amount(d, minor);
    let title = match (invoice.status(), &invoice.number) {
        (InvoiceStatus::Draft, _) | (_, None) => "Invoice (draft)".to_owned(),
        (InvoiceStatus::Void, Some(n)) => format!("Invoice {n} (void)"),
        (_, Some(n)) => format!("Invoice {n}"),
    };

    // Columns: description, quantity, unit price, amount (right edges for the numbers).
    let desc_x = MARGIN;
    let qty_r = 380.0;
    let price_r = 465.0;
    let amount_r = PAGE_W - MARGIN;
    let desc_w = qty_r - 60.0 - desc_x;

    let mut pages: Vec<Vec<Mark>> = vec![Vec::new()];
    let mut y;
    let header = |marks: &mut Vec<Mark>, first: bool| -> f32 {
        let mut y = MARGIN + 10.0;
        if first {
            marks.push(Mark::left(MARGIN, y, parts.tenant_name.to_owned(), true, 16.0));
            marks.push(Mark::right(amount_r, y, title.clone(), true, 14.0));
            y += 28.0;
            marks.push(Mark::left(MARGIN, y, "Bill to".to_owned(), true, SIZE));
            let mut facts = vec![
                format!("Period: {} to {}", invoice.period_from, invoice.period_to),
                format!("Currency: {}", invoice.currency),
            ];
            if let Some(day) = invoice.issue_date {
                facts.insert(0, format!("Issued: {day}"));
            }
            if let Some(day) = invoice.due_date {
                facts.insert(1, format!("Due: {day}"));
            }
            let mut client = vec![parts.client_name.to_owned()];
            client.extend(parts.client_email.map(str::to_owned));
            for (i, row) in client.iter().enumerate() {
                marks.push(Mark::left(
                    MARGIN,
                    y + LINE * (i as f32 + 1.0),
                    row.clone(),
                    false,
                    SIZE,
                ));
            }
            for (i, row) in facts.iter().enumerate() {
                marks.push(Mark::right(
                    amount_r,
                    y + LINE * i as f32,
                    row.clone(),
                    false,
                    SIZE,
                ));
            }
            y += LINE * (client.len().max(facts.len()) as f32 + 1.5);
        } else {
            marks.push(Mark::left(
                MARGIN,
                y,
                format!("{} - {title}", parts.tenant_name),
                false,
                SIZE,
            ));
            y += 22.0;
        }
        marks.push(Mark::left(desc_x, y, "Description".to_owned(), true, SIZE));
        marks.push(Mark::right(qty_r, y, "Quantity".to_owned(), true, SIZE));
        marks.push(Mark::right(price_r, y, "Unit price".to_owned(), true, SIZE));
        marks.push(Mark::right(amount_r, y, "Amount".to_owned(), true, SIZE));
        marks.push(Mark::Rule { y: y + 5.0 });
        y + LINE + 4.0
    };
    y = header(&mut pages[0], true);
    let bottom = PAGE_H - MARGIN - 20.0;

    for line in parts.lines {
        let rows = wrap(regular, &line.description, SIZE, desc_w);
        let height = LINE * rows.len() as f32;
        if y + height > bottom {
            pages.push(Vec::new());
            let page = pages.last_mut().expect("a page was just added");
            y = header(page, false);
        }
        let page = pages.last_mut().expect("there is a page");
        for (i, row) in rows.into_iter().enumerate() {
            page.push(Mark::left(desc_x, y + LINE * i as f32, row, false, SIZE));
        }
        let quantity = if line.kind == "TIME" {
            format!("{} h", line.quantity.round_dp(2).normalize())
        } else {
            line.quantity.normalize().to_string()
        };
        page.push(Mark::right(qty_r, y, quantity, false, SIZE));
        page.push(Mark::right(price_r, y, money(line.unit_price), false, SIZE));
        page.push(Mark::right(amount_r, y, money(line.amount), false, SIZE));
        y += height;
    }

    let mut totals: Vec<(String, String, bool)> =
        vec![("Subtotal".to_owned(), money(invoice.subtotal), false)];
    if !invoice.discount.is_zero() {
        totals.push((
            format!("Discount {}%", invoice.discount_rate.normalize()),
            format!("-{}", money(invoice.discount)),
            false,
        ));
    }
    totals.push((
        format!("Tax {}%", invoice.tax_rate.normalize()),
        money(invoice.tax),
        false,
    ));
    totals.push((format!("Total {}", invoice.currency), money(invoice.total), true));
    for p in parts.payments {
        totals.push((
            format!("Paid {}", p.paid_on),
            format!("-{}", money(p.amount)),
            false,
        ));
    }
    if !parts.payments.is_empty() || invoice.status() == InvoiceStatus::Issued {
        totals.push((
            format!("Balance due {}", invoice.currency),
            money(invoice.balance_due()),
            true,
        ));
    }
    let mut notes: Vec<String> = Vec::new();
    if !invoice.notes.is_empty() {
        for paragraph in invoice.notes.lines() {
            notes.extend(wrap(regular, paragraph, SIZE, PAGE_W - 2.0 * MARGIN));
        }
    }
    if let Some(reason) = &invoice.void_reason {
        notes.push(format!("Void: {reason}"));
    }
    let needed = LINE * (totals.len() as f32 + 1.0)
        + if notes.is_empty() {
            0.0
        } else {
            LINE * (notes.len() as f32 + 1.0)
        };
    if y + needed > bottom {
        pages.push(Vec::new());
        let page = pages.last_mut().expect("a page was just added");
        y = header(page, false);
    }
    let page = pages.last_mut().expect("there is a page");
    page.push(Mark::Rule { y: y - LINE + 6.0 });
    y += 4.0;
    for (label, value, strong) in totals {
        page.push(Mark::right(price_r, y, label, strong, SIZE));
        page.push(Mark::right(amount_r, y, value, strong, SIZE));
        y += LINE;
    }
    if !notes.is_empty() {
        y += LINE;
        for row in notes {
            page.push(Mark::left(MARGIN, y, row, false, SIZE));
            y += LINE;
        }
    }

    let count = pages.len();
    let mut document = Document::new();
    let settings = PageSettings::from_wh(PAGE_W, PAGE_H).ok_or("bad page size")?;
    for (n, marks) in pages.into_iter().enumerate() {
        let mut page = document.start_page_with(settings.clone());
        let mut surface = page.surface();
        let mut draw = |x: f32, y: f32, text: &str, bold_face: bool, size: f32| {
            let face = if bold_face { heavy } else { regular };
            surface.draw_text(
                Point::from_xy(x, y),
                face.font.clone(),
                size,
                text,
                false,
                TextDirection::Auto,
            );
        };
        for mark in &marks {
            match mark {
                Mark::Text {
                    x,
                    y,
                    text,
                    bold,
                    size,
                } => draw(*x, *y, text, *bold, *size),
                Mark::Right {
                    x,
                    y,
                    text,
                    bold,
                    size,
                } => {
                    let face = if *bold { heavy } else { regular };
                    let w = face.width(text, *size);
                    draw(x - w, *y, text, *bold, *size);
                }
                Mark::Rule { .. } => {}
            }
        }
        let footer = format!("Page {} of {count}", n + 1);
        let w = regular.width(&footer, 8.0);
        draw(PAGE_W - MARGIN - w, PAGE_H - MARGIN + 10.0, &footer, false, 8.0);
        for mark in &marks {
            if let Mark::Rule { y } = mark {
                let mut path = PathBuilder::new();
                if let Some(rect) = Rect::from_ltrb(MARGIN, *y, PAGE_W - MARGIN, *y + 0.6) {
                    path.push_rect(rect);
                }
                if let Some(path) = path.finish() {
                    surface.set_stroke(None::<Stroke>);
                    surface.set_fill(Some(Fill::default()));
                    surface.draw_path(&path);
                }
            }
        }
        surface.finish();
        page.finish();
    }
    document.finish().map_err(|e| format!("writing the PDF: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_grouped_with_the_currency_decimals() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(format_amount(d("1234567.5"), 2), "1,234,567.50");
        assert_eq!(format_amount(d("999.995"), 2), "1,000.00");
        assert_eq!(format_amount(d("-12.345"), 2), "-12.35");
        assert_eq!(format_amount(d("1500"), 0), "1,500");
        assert_eq!(format_amount(d("0.0004"), 3), "0.000");
    }
}
