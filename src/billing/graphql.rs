//! GraphQL for billing: invoices and their lines and payments (managers and admins see
//! them, admins change them). Amounts are decimal strings with the currency's minor unit,
//! beside the invoice's `currency`.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::{
    self as billing, Invoice, InvoiceChanges, InvoiceFilter, InvoiceGroupBy, InvoiceLine, InvoiceStatus,
    LineInput, NewInvoice, Payment,
};
use crate::auth::graphql::{RequestActor, UserNode};
use crate::error::{AppError, AppResult};
use crate::graphql::support::{
    ContextExt, FetchGrouped, Grouped, NodeType, Page, PageArgs, expect_global_id, global_id,
};
use crate::settings::graphql::RequestSettings;
use crate::tenancy::TenantDb;
use crate::time::entries::TimeEntry;
use crate::time::graphql::{ClientNode, ProjectNode, TaskNode, TimeEntryNode};

impl FetchGrouped for InvoiceLine {
    fn group(&self) -> i64 {
        self.invoice_id
    }

    async fn fetch(conn: &mut diesel_async::AsyncPgConnection, invoices: &[i64]) -> AppResult<Vec<Self>> {
        billing::lines_of(conn, invoices).await
    }
}

impl FetchGrouped for Payment {
    fn group(&self) -> i64 {
        self.invoice_id
    }

    async fn fetch(conn: &mut diesel_async::AsyncPgConnection, invoices: &[i64]) -> AppResult<Vec<Self>> {
        billing::payments_of(conn, invoices).await
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

impl async_graphql::dataloader::Loader<i64> for EntriesOfLine {
    type Value = Vec<TimeEntry>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Vec<TimeEntry>>, Self::Error> {
        let mut conn = self.db.conn().await?;
        let mut map: HashMap<i64, Vec<TimeEntry>> = HashMap::new();
        for (line, entry) in billing::entries_of_lines(&mut conn, keys).await? {
            map.entry(line).or_default().push(entry);
        }
        Ok(map)
    }
}

pub struct InvoiceNode(pub Invoice);

#[Object(name = "Invoice")]
impl InvoiceNode {
    pub async fn id(&self) -> ID {
        global_id(NodeType::Invoice, self.0.id)
    }
    /// Given when issued, from INVOICE_NUMBER_FORMAT; null on a draft.
    async fn number(&self) -> Option<&str> {
        self.0.number.as_deref()
    }
    async fn status(&self) -> InvoiceStatus {
        self.0.status()
    }
    /// Issued, not fully paid, and past its due date (today in the tenant's zone).
    async fn overdue(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let settings = ctx.request().settings().await?;
        Ok(self
            .0
            .is_overdue(Utc::now().with_timezone(&settings.time_zone).date_naive()))
    }
    async fn client(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ClientNode>> {
        Ok(ClientNode::load(ctx, self.0.client_id).await?)
    }
    async fn group_by(&self) -> InvoiceGroupBy {
        InvoiceGroupBy::from_db(&self.0.group_by)
    }
    async fn period_from(&self) -> NaiveDate {
        self.0.period_from
    }
    async fn period_to(&self) -> NaiveDate {
        self.0.period_to
    }
    /// ISO 4217 code, fixed when the draft was made.
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    /// Percent.
    async fn tax_rate(&self) -> Decimal {
        self.0.tax_rate.normalize()
    }
    /// Percent, taken off the subtotal before tax.
    async fn discount_rate(&self) -> Decimal {
        self.0.discount_rate.normalize()
    }
    /// The sum of the (rounded) lines.
    async fn subtotal(&self) -> Decimal {
        crate::money::shown(self.0.subtotal, self.0.minor_units())
    }
    async fn discount(&self) -> Decimal {
        crate::money::shown(self.0.discount, self.0.minor_units())
    }
    async fn tax(&self) -> Decimal {
        crate::money::shown(self.0.tax, self.0.minor_units())
    }
    /// Subtotal - discount + tax.
    async fn total(&self) -> Decimal {
        crate::money::shown(self.0.total, self.0.minor_units())
    }
    /// The sum of its payments.
    async fn paid(&self) -> Decimal {
        crate::money::shown(self.0.paid, self.0.minor_units())
    }
    /// What is still owed (zero on drafts and void invoices).
    async fn balance_due(&self) -> Decimal {
        crate::money::shown(self.0.balance_due(), self.0.minor_units())
    }
    async fn issue_date(&self) -> Option<NaiveDate> {
        self.0.issue_date
    }
    async fn due_date(&self) -> Option<NaiveDate> {
        self.0.due_date
    }
    async fn notes(&self) -> &str {
        &self.0.notes
    }
    /// When it was last sent to the client.
    async fn sent_at(&self) -> Option<DateTime<Utc>> {
        self.0.sent_at
    }
    async fn void_reason(&self) -> Option<&str> {
        self.0.void_reason.as_deref()
    }
    async fn voided_at(&self) -> Option<DateTime<Utc>> {
        self.0.voided_at
    }
    async fn lines(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<InvoiceLineNode>> {
        let lines = ctx
            .request()
            .load::<Grouped<InvoiceLine>>(self.0.id)
            .await?
            .unwrap_or_default();
        let minor = self.0.minor_units();
        Ok(lines.into_iter().map(|l| InvoiceLineNode(l, minor)).collect())
    }
    async fn payments(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PaymentNode>> {
        let payments = ctx
            .request()
            .load::<Grouped<Payment>>(self.0.id)
            .await?
            .unwrap_or_default();
        let minor = self.0.minor_units();
        Ok(payments.into_iter().map(|p| PaymentNode(p, minor)).collect())
    }
    /// The PDF, on the tenant's site (same Bearer token; managers and admins).
    async fn pdf_url(&self, ctx: &Context<'_>) -> String {
        let req = ctx.request();
        let site = req.db.tenant().site(&req.services.config).site_url;
        format!(
            "{site}/invoices/{}.pdf",
            global_id(NodeType::Invoice, self.0.id).0
        )
    }
    async fn created_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserNode>> {
        Ok(UserNode::visible(ctx, self.0.created_by).await?)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

impl InvoiceNode {
    pub async fn visible(ctx: &Context<'_>, id: i64) -> AppResult<Option<Self>> {
        let req = ctx.request();
        billing::may_see_invoices(&req.actor().await?)?;
        let mut conn = req.db.conn().await?;
        Ok(billing::find(&mut conn, id).await?.map(Self))
    }
}

#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceLineKind {
    /// Billed time: hours and rate from its entries.
    Time,
    /// Typed in: any quantity and unit price.
    Manual,
}

/// A line of an invoice, with its currency's decimals.
pub struct InvoiceLineNode(pub InvoiceLine, pub u32);

#[Object(name = "InvoiceLine")]
impl InvoiceLineNode {
    pub async fn id(&self) -> ID {
        global_id(NodeType::InvoiceLine, self.0.id)
    }
    async fn position(&self) -> i64 {
        self.0.position
    }
    async fn kind(&self) -> InvoiceLineKind {
        if self.0.kind == "TIME" {
            InvoiceLineKind::Time
        } else {
            InvoiceLineKind::Manual
        }
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// Hours (to 4 decimals) for time lines.
    async fn quantity(&self) -> Decimal {
        self.0.quantity.normalize()
    }
    /// The hourly rate for time lines.
    async fn unit_price(&self) -> Decimal {
        self.0.unit_price.normalize()
    }
    /// Minutes x rate / 60 (time) or quantity x unit price (manual), rounded half-up once.
    async fn amount(&self) -> Decimal {
        crate::money::shown(self.0.amount, self.1)
    }
    /// The minutes a time line bills.
    async fn minutes(&self) -> Option<i64> {
        self.0.minutes
    }
    async fn project(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ProjectNode>> {
        match self.0.project_id {
            Some(id) => Ok(ProjectNode::load(ctx, id).await?),
            None => Ok(None),
        }
    }
    async fn task(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<TaskNode>> {
        match self.0.task_id {
            Some(id) => Ok(TaskNode::load(ctx, id).await?),
            None => Ok(None),
        }
    }
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserNode>> {
        match self.0.user_id {
            Some(id) => Ok(UserNode::visible(ctx, id).await?),
            None => Ok(None),
        }
    }
    /// The time entries a time line bills, by date.
    async fn entries(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TimeEntryNode>> {
        if self.0.kind != "TIME" {
            return Ok(Vec::new());
        }
        let entries = ctx
            .request()
            .load::<EntriesOfLine>(self.0.id)
            .await?
            .unwrap_or_default();
        Ok(entries.into_iter().map(TimeEntryNode).collect())
    }
}

pub struct PaymentNode(pub Payment, pub u32);

#[Object(name = "Payment")]
impl PaymentNode {
    pub async fn id(&self) -> ID {
        global_id(NodeType::Payment, self.0.id)
    }
    async fn amount(&self) -> Decimal {
        crate::money::shown(self.0.amount, self.1)
    }
    async fn date(&self) -> NaiveDate {
        self.0.paid_on
    }
    async fn note(&self) -> &str {
        &self.0.note
    }
    async fn invoice(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<InvoiceNode>> {
        Ok(InvoiceNode::visible(ctx, self.0.invoice_id).await?)
    }
    async fn recorded_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserNode>> {
        Ok(UserNode::visible(ctx, self.0.recorded_by).await?)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(InputObject)]
pub struct CreateInvoiceInput {
    client_id: ID,
    /// The period whose approved billable time is billed (dates of the entries).
    from: NaiveDate,
    to: NaiveDate,
    #[graphql(default_with = "InvoiceGroupBy::Project")]
    group_by: InvoiceGroupBy,
    /// Percent; DEFAULT_TAX_RATE when left out.
    tax_rate: Option<Decimal>,
    /// Percent off the subtotal.
    discount_rate: Option<Decimal>,
    #[graphql(default)]
    notes: String,
}

#[derive(InputObject)]
pub struct UpdateInvoiceInput {
    tax_rate: Option<Decimal>,
    discount_rate: Option<Decimal>,
    notes: Option<String>,
}

#[derive(InputObject)]
pub struct InvoiceLineInput {
    description: Option<String>,
    /// 1 when left out of a new line.
    quantity: Option<Decimal>,
    /// Negative for a credit.
    unit_price: Option<Decimal>,
}

impl From<InvoiceLineInput> for LineInput {
    fn from(i: InvoiceLineInput) -> Self {
        Self {
            description: i.description,
            quantity: i.quantity,
            unit_price: i.unit_price,
        }
    }
}

#[derive(InputObject, Default)]
pub struct InvoiceFilterInput {
    statuses: Option<Vec<InvoiceStatus>>,
    client_id: Option<ID>,
    /// Issued on or after (drafts: their period ends on or after).
    from: Option<NaiveDate>,
    /// Issued on or before (drafts: their period ends on or before).
    to: Option<NaiveDate>,
    /// Only overdue invoices (true) or only the others (false).
    overdue: Option<bool>,
}

#[derive(Default)]
pub struct BillingQuery;

#[Object]
impl BillingQuery {
    /// Invoices in id order (managers and admins).
    #[graphql(complexity = "crate::graphql::support::cost::page(first, child_complexity)")]
    async fn invoices(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
        filter: Option<InvoiceFilterInput>,
    ) -> async_graphql::Result<Page<InvoiceNode>> {
        let req = ctx.request();
        billing::may_see_invoices(&req.actor().await?)?;
        let page = PageArgs::parse(first, after)?;
        let f = filter.unwrap_or_default();
        let settings = req.settings().await?;
        let filter = InvoiceFilter {
            statuses: f.statuses,
            client_id: f
                .client_id
                .map(|id| expect_global_id("filter.clientId", &id, NodeType::Client))
                .transpose()?,
            from: f.from,
            to: f.to,
            overdue: f.overdue,
            today: Some(Utc::now().with_timezone(&settings.time_zone).date_naive()),
        };
        // Usually the request's first statement: it goes out together with the BEGIN.
        let (keyset, filter) = (page.keyset(), &filter);
        let rows = req
            .db
            .read(async |conn| billing::page(conn, filter, keyset).await)
            .await?;
        Ok(page.connection(rows, |i| i.id, InvoiceNode))
    }

    async fn invoice(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<InvoiceNode>> {
        let id = expect_global_id("id", &id, NodeType::Invoice)?;
        Ok(InvoiceNode::visible(ctx, id).await?)
    }
}

#[derive(Default)]
pub struct BillingMutation;

/// Runs a billing change in the request's savepoint.
macro_rules! in_savepoint {
    ($ctx:expr, |$conn:ident, $actor:ident, $settings:ident| $body:expr) => {{
        let req = $ctx.request();
        let $actor = &req.actor().await?;
        let $settings = req.settings().await?;
        req.db
            .in_savepoint(async |$conn| {
                let _ = &$settings;
                $body.await
            })
            .await?
    }};
}

#[Object]
impl BillingMutation {
    /// A draft for a client and period from its approved, billable, not yet invoiced time,
    /// one line per group (admins).
    async fn create_invoice(
        &self,
        ctx: &Context<'_>,
        input: CreateInvoiceInput,
    ) -> async_graphql::Result<InvoiceNode> {
        let new = NewInvoice {
            client_id: expect_global_id("input.clientId", &input.client_id, NodeType::Client)?,
            from: input.from,
            to: input.to,
            group_by: input.group_by,
            tax_rate: input.tax_rate,
            discount_rate: input.discount_rate,
            notes: input.notes,
        };
        let created = in_savepoint!(ctx, |conn, actor, settings| billing::create(
            conn, &settings, actor, new
        ));
        Ok(InvoiceNode(created))
    }

    /// Changes a draft's tax rate, discount or notes (admins).
    async fn update_invoice(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateInvoiceInput,
    ) -> async_graphql::Result<InvoiceNode> {
        let id = expect_global_id("id", &id, NodeType::Invoice)?;
        let changes = InvoiceChanges {
            tax_rate: input.tax_rate,
            discount_rate: input.discount_rate,
            notes: input.notes,
        };
        let updated = in_savepoint!(ctx, |conn, actor, settings| billing::update(
            conn, actor, id, changes
        ));
        Ok(InvoiceNode(updated))
    }

    /// Deletes a draft; its entries may be billed again (admins). Returns its id.
    async fn delete_invoice(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let row = expect_global_id("id", &id, NodeType::Invoice)?;
        in_savepoint!(ctx, |conn, actor, settings| billing::delete_draft(
            conn, actor, row
        ));
        Ok(id)
    }

    /// Adds a manual line to a draft (admins).
    async fn add_invoice_line(
        &self,
        ctx: &Context<'_>,
        invoice_id: ID,
        input: InvoiceLineInput,
    ) -> async_graphql::Result<InvoiceLineNode> {
        let invoice_id = expect_global_id("invoiceId", &invoice_id, NodeType::Invoice)?;
        let input = LineInput::from(input);
        let (line, minor) = in_savepoint!(ctx, |conn, actor, settings| billing::add_line(
            conn, actor, invoice_id, input
        ));
        Ok(InvoiceLineNode(line, minor))
    }

    /// Changes a line of a draft (admins): a time line's description only.
    async fn update_invoice_line(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: InvoiceLineInput,
    ) -> async_graphql::Result<InvoiceLineNode> {
        let id = expect_global_id("id", &id, NodeType::InvoiceLine)?;
        let input = LineInput::from(input);
        let (line, minor) = in_savepoint!(ctx, |conn, actor, settings| billing::update_line(
            conn, actor, id, input
        ));
        Ok(InvoiceLineNode(line, minor))
    }

    /// Removes a line from a draft; a time line's entries may be billed again (admins).
    /// Returns the invoice.
    async fn remove_invoice_line(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<InvoiceNode> {
        let id = expect_global_id("id", &id, NodeType::InvoiceLine)?;
        let invoice = in_savepoint!(ctx, |conn, actor, settings| billing::remove_line(conn, actor, id));
        Ok(InvoiceNode(invoice))
    }

    /// Issues a draft: its number, issue and due dates; its entries become INVOICED; it is
    /// frozen from now on (admins).
    async fn issue_invoice(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<InvoiceNode> {
        let id = expect_global_id("id", &id, NodeType::Invoice)?;
        let issued = in_savepoint!(ctx, |conn, actor, settings| billing::issue(
            conn, &settings, actor, id
        ));
        Ok(InvoiceNode(issued))
    }

    /// Records a payment of an issued invoice; partial payments add up, overpayment is
    /// refused, PAID when settled (admins).
    async fn record_payment(
        &self,
        ctx: &Context<'_>,
        invoice_id: ID,
        amount: Decimal,
        date: NaiveDate,
        #[graphql(default)] note: String,
    ) -> async_graphql::Result<PaymentNode> {
        let invoice_id = expect_global_id("invoiceId", &invoice_id, NodeType::Invoice)?;
        let (invoice, payment) = in_savepoint!(ctx, |conn, actor, settings| billing::record_payment(
            conn, actor, invoice_id, amount, date, &note
        ));
        Ok(PaymentNode(payment, invoice.minor_units()))
    }

    /// Emails an issued invoice with its PDF to the client's billing address, from the
    /// tenant's DEFAULT_FROM_EMAIL, through the outbox (admins).
    async fn send_invoice(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<InvoiceNode> {
        let id = expect_global_id("id", &id, NodeType::Invoice)?;
        let tenant_id = ctx.request().db.tenant().id;
        let sent = in_savepoint!(ctx, |conn, actor, settings| billing::send(
            conn, actor, tenant_id, id
        ));
        Ok(InvoiceNode(sent))
    }

    /// Voids an issued invoice without payments: it keeps its number, its entries may be
    /// billed again (admins).
    async fn void_invoice(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: String,
    ) -> async_graphql::Result<InvoiceNode> {
        let id = expect_global_id("id", &id, NodeType::Invoice)?;
        let voided = in_savepoint!(ctx, |conn, actor, settings| billing::void(
            conn, actor, id, &reason
        ));
        Ok(InvoiceNode(voided))
    }
}
