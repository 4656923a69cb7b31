//! GraphQL for leave: types and holidays (admins change them), requests (members see their
//! own, managers and admins all), decisions and balances.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject, Upload};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::{
    self as leave, Accrual, Balance, Holiday, LeaveRequest, LeaveStatus, LeaveType, LeaveTypeInput,
    NewRequest, RequestFilter,
};
use crate::auth::Role;
use crate::auth::graphql::{RequestActor, UserNode, own_or_asked};
use crate::auth::users::User;
use crate::error::{AppError, AppResult};
use crate::files::{self, FileStore, Incoming, StoredFile};
use crate::graphql::support::{
    ById, ContextExt, FetchById, FetchGrouped, Grouped, NodeType, Page, PageArgs, expect_global_id, global_id,
};
use crate::settings::graphql::RequestSettings;

impl FetchById for LeaveType {
    fn id(&self) -> i64 {
        self.id
    }

    async fn fetch(conn: &mut diesel_async::AsyncPgConnection, ids: &[i64]) -> AppResult<Vec<Self>> {
        super::types_by_ids(conn, ids).await
    }
}

impl FetchGrouped for StoredFile {
    /// Fetched by their leave request, so always one's.
    fn group(&self) -> i64 {
        self.leave_request_id.unwrap_or_default()
    }

    async fn fetch(conn: &mut diesel_async::AsyncPgConnection, requests: &[i64]) -> AppResult<Vec<Self>> {
        files::of_leave_requests(conn, requests).await
    }
}

pub struct LeaveTypeNode(pub LeaveType);

#[Object(name = "LeaveType")]
impl LeaveTypeNode {
    pub async fn id(&self) -> ID {
        global_id(NodeType::LeaveType, self.0.id)
    }
    /// Unique ignoring case.
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn yearly_allowance_days(&self) -> Decimal {
        self.0.yearly_allowance_days.normalize()
    }
    async fn accrual(&self) -> Accrual {
        Accrual::from_db(&self.0.accrual)
    }
    /// Unused days carried into the next leave year, at most.
    async fn carry_over_cap_days(&self) -> Decimal {
        self.0.carry_over_cap_days.normalize()
    }
    async fn half_days_allowed(&self) -> bool {
        self.0.half_days_allowed
    }
    /// Requests longer than this many working days need an attachment (e.g. a sick note).
    async fn attachment_required_after_days(&self) -> Option<Decimal> {
        self.0.attachment_required_after_days.map(|d| d.normalize())
    }
    /// Whether a request may take the balance below zero.
    async fn allow_negative(&self) -> bool {
        self.0.allow_negative
    }
    async fn archived(&self) -> bool {
        self.0.archived
    }
}

impl LeaveTypeNode {
    pub async fn load(ctx: &Context<'_>, id: i64) -> AppResult<Option<Self>> {
        let req = ctx.request();
        req.actor().await?;
        let leave_type = req.load::<ById<LeaveType>>(id).await?;
        Ok(leave_type.map(Self))
    }
}

#[derive(SimpleObject)]
#[graphql(name = "Holiday")]
pub struct HolidayNode {
    id: ID,
    day: NaiveDate,
    name: String,
}

impl From<Holiday> for HolidayNode {
    fn from(h: Holiday) -> Self {
        Self {
            id: global_id(NodeType::Holiday, h.id),
            day: h.day,
            name: h.name,
        }
    }
}

pub struct LeaveRequestNode(pub LeaveRequest);

#[Object(name = "LeaveRequest")]
impl LeaveRequestNode {
    pub async fn id(&self) -> ID {
        global_id(NodeType::LeaveRequest, self.0.id)
    }
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserNode>> {
        Ok(UserNode::visible(ctx, self.0.user_id).await?)
    }
    async fn leave_type(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<LeaveTypeNode>> {
        Ok(LeaveTypeNode::load(ctx, self.0.leave_type_id).await?)
    }
    async fn first_day(&self) -> NaiveDate {
        self.0.first_day
    }
    async fn last_day(&self) -> NaiveDate {
        self.0.last_day
    }
    async fn half_day_start(&self) -> bool {
        self.0.half_day_start
    }
    async fn half_day_end(&self) -> bool {
        self.0.half_day_end
    }
    /// In the tenant's work week, less holidays; half days count one half.
    async fn working_days(&self) -> Decimal {
        self.0.working_days.normalize()
    }
    /// Working days x BILLABLE_HOURS_IN_WORKING_DAY.
    async fn hours(&self, ctx: &Context<'_>) -> async_graphql::Result<Decimal> {
        let settings = ctx.request().settings().await?;
        Ok((self.0.working_days * settings.billable_hours_in_working_day).normalize())
    }
    async fn reason(&self) -> &str {
        &self.0.reason
    }
    async fn status(&self) -> LeaveStatus {
        self.0.status()
    }
    async fn decided_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserNode>> {
        match self.0.decided_by {
            Some(id) => Ok(UserNode::visible(ctx, id).await?),
            None => Ok(None),
        }
    }
    async fn decided_at(&self) -> Option<DateTime<Utc>> {
        self.0.decided_at
    }
    /// The reason given with a rejection (or a note with an approval).
    async fn decision_note(&self) -> Option<&str> {
        self.0.decision_note.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Files given with the request (e.g. a sick note), oldest first.
    async fn attachments(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<FileNode>> {
        let files = ctx.request().load::<Grouped<StoredFile>>(self.0.id).await?;
        Ok(files.unwrap_or_default().into_iter().map(FileNode).collect())
    }
}

impl LeaveRequestNode {
    pub async fn visible(ctx: &Context<'_>, id: i64) -> AppResult<Option<Self>> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let mut conn = req.db.conn().await?;
        Ok(leave::find(&mut conn, id)
            .await?
            .filter(|r| actor.may_see(r.user_id))
            .map(Self))
    }
}

/// A stored file, downloaded from its `url` with the same Bearer token (by the requester of
/// the leave it belongs to, managers and admins).
pub struct FileNode(pub StoredFile);

#[Object(name = "File")]
impl FileNode {
    pub async fn id(&self) -> ID {
        global_id(NodeType::File, self.0.id)
    }
    async fn filename(&self) -> &str {
        &self.0.filename
    }
    /// Read from the file's content when it was uploaded.
    async fn content_type(&self) -> &str {
        &self.0.content_type
    }
    /// In bytes.
    async fn size(&self) -> i64 {
        self.0.size_bytes
    }
    /// Hex SHA-256 of the content.
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }
    /// Where to download it, on the tenant's site.
    async fn url(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let req = ctx.request();
        let site = req.db.tenant().site(&req.services.config).site_url;
        Ok(format!("{site}/files/{}", global_id(NodeType::File, self.0.id).0))
    }
    async fn uploaded_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserNode>> {
        Ok(UserNode::visible(ctx, self.0.uploaded_by).await?)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

impl FileNode {
    pub async fn visible(ctx: &Context<'_>, id: i64) -> AppResult<Option<Self>> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let mut conn = req.db.conn().await?;
        Ok(leave::visible_file(&mut conn, actor, id).await?.map(Self))
    }
}

/// Reads and checks uploads, then stores them under fresh keys of the tenant. Nothing is
/// recorded yet: the caller writes the rows in its transaction and, if that fails, calls
/// [`discard`].
async fn receive(ctx: &Context<'_>, field: &str, uploads: &[Upload]) -> AppResult<Vec<(String, Incoming)>> {
    let req = ctx.request();
    let store = req.services.get::<FileStore>();
    if uploads.len() > files::MAX_FILES_PER_REQUEST {
        return Err(AppError::bad_input(
            field,
            format!("at most {} files at once", files::MAX_FILES_PER_REQUEST),
        ));
    }
    let mut checked = Vec::with_capacity(uploads.len());
    for (i, upload) in uploads.iter().enumerate() {
        let field = if uploads.len() == 1 && !field.ends_with('s') {
            field.to_owned()
        } else {
            format!("{field}.{i}")
        };
        let value = upload
            .value(ctx)
            .map_err(|_| AppError::bad_input(&field, "no file was sent for this upload"))?;
        checked.push(store.accept(&field, &value.filename, value.content)?);
    }
    let tenant_id = req.db.tenant().id;
    let mut stored: Vec<(String, Incoming)> = Vec::with_capacity(checked.len());
    for file in checked {
        let key = FileStore::new_key(tenant_id);
        if let Err(e) = store.put(&key, file.bytes.clone()).await {
            discard(store, &stored).await;
            return Err(e);
        }
        stored.push((key, file));
    }
    Ok(stored)
}

/// Deletes stored files whose rows were never written.
async fn discard(store: &FileStore, stored: &[(String, Incoming)]) {
    for (key, _) in stored {
        store.delete(key).await;
    }
}

/// One leave type's balance for a user and leave year, in working days.
#[derive(SimpleObject)]
pub struct LeaveBalance {
    leave_type: LeaveTypeNode,
    year: i32,
    first_day: NaiveDate,
    last_day: NaiveDate,
    /// The yearly allowance.
    entitled: Decimal,
    /// Granted so far this leave year (all of it for UPFRONT types).
    accrued: Decimal,
    /// Unused days brought from the previous leave year, up to the type's cap.
    carried_over: Decimal,
    /// Approved leave in this leave year.
    taken: Decimal,
    /// Leave waiting for a decision.
    pending: Decimal,
    /// accrued + carriedOver - taken - pending.
    remaining: Decimal,
}

impl From<Balance> for LeaveBalance {
    fn from(b: Balance) -> Self {
        Self {
            remaining: b.remaining().normalize(),
            leave_type: LeaveTypeNode(b.leave_type),
            year: b.year,
            first_day: b.first_day,
            last_day: b.last_day,
            entitled: b.entitled.normalize(),
            accrued: b.accrued.normalize(),
            carried_over: b.carried_over.normalize(),
            taken: b.taken.normalize(),
            pending: b.pending.normalize(),
        }
    }
}

/// One user's balances.
#[derive(SimpleObject)]
pub struct UserLeaveBalances {
    user: Option<UserNode>,
    balances: Vec<LeaveBalance>,
}

#[derive(InputObject)]
pub struct CreateLeaveTypeInput {
    name: String,
    yearly_allowance_days: Decimal,
    #[graphql(default_with = "Accrual::Upfront")]
    accrual: Accrual,
    #[graphql(default)]
    carry_over_cap_days: Decimal,
    #[graphql(default = true)]
    half_days_allowed: bool,
    attachment_required_after_days: Option<Decimal>,
    #[graphql(default)]
    allow_negative: bool,
}

#[derive(InputObject)]
pub struct UpdateLeaveTypeInput {
    name: Option<String>,
    yearly_allowance_days: Option<Decimal>,
    accrual: Option<Accrual>,
    carry_over_cap_days: Option<Decimal>,
    half_days_allowed: Option<bool>,
    attachment_required_after_days: MaybeUndefined<Decimal>,
    allow_negative: Option<bool>,
    archived: Option<bool>,
}

#[derive(InputObject)]
pub struct RequestLeaveInput {
    leave_type_id: ID,
    first_day: NaiveDate,
    last_day: NaiveDate,
    /// The first day is taken from its middle.
    #[graphql(default)]
    half_day_start: bool,
    /// The last day is taken until its middle.
    #[graphql(default)]
    half_day_end: bool,
    #[graphql(default)]
    reason: String,
    /// Files sent with the request (multipart upload): PDF, PNG, JPEG or WebP, at most
    /// five, each up to FILE_MAX_BYTES. Needed when the type asks for one past a length.
    attachments: Option<Vec<Upload>>,
}

#[derive(InputObject, Default)]
pub struct LeaveRequestFilterInput {
    /// Ignored for members, who see only their own.
    user_id: Option<ID>,
    statuses: Option<Vec<LeaveStatus>>,
    /// Requests ending on or after.
    from: Option<NaiveDate>,
    /// Requests starting on or before.
    to: Option<NaiveDate>,
}

const ADMIN_ONLY: &str = "only admins change leave types and holidays";

#[derive(Default)]
pub struct LeaveQuery;

#[Object]
impl LeaveQuery {
    /// Balances of many users at once (managers and admins): those in `userIds`, or every
    /// active user; in a fixed number of statements whatever their number.
    async fn team_leave_balances(
        &self,
        ctx: &Context<'_>,
        user_ids: Option<Vec<ID>>,
        year: Option<i32>,
        as_of: Option<NaiveDate>,
    ) -> async_graphql::Result<Vec<UserLeaveBalances>> {
        Ok(team_balances(ctx, user_ids, year, as_of).await?)
    }

    async fn leave_types(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] include_archived: bool,
    ) -> async_graphql::Result<Vec<LeaveTypeNode>> {
        let req = ctx.request();
        req.actor().await?;
        let mut conn = req.db.conn().await?;
        Ok(leave::types(&mut conn, include_archived)
            .await?
            .into_iter()
            .map(LeaveTypeNode)
            .collect())
    }

    /// The public holidays of a calendar year.
    async fn holidays(&self, ctx: &Context<'_>, year: i32) -> async_graphql::Result<Vec<HolidayNode>> {
        let req = ctx.request();
        req.actor().await?;
        let (Some(from), Some(to)) = (
            NaiveDate::from_ymd_opt(year, 1, 1),
            NaiveDate::from_ymd_opt(year, 12, 31),
        ) else {
            return Err(AppError::bad_input("year", "not a year").into());
        };
        let mut conn = req.db.conn().await?;
        Ok(leave::holidays_of(&mut conn, from, to)
            .await?
            .into_iter()
            .map(HolidayNode::from)
            .collect())
    }

    /// Leave requests by id. Members see only their own.
    #[graphql(complexity = "crate::graphql::support::cost::page(first, child_complexity)")]
    async fn leave_requests(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
        filter: Option<LeaveRequestFilterInput>,
    ) -> async_graphql::Result<Page<LeaveRequestNode>> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let page = PageArgs::parse(first, after)?;
        let f = filter.unwrap_or_default();
        let filter = RequestFilter {
            user_id: own_or_asked(actor, "filter.userId", f.user_id)?,
            statuses: f.statuses,
            from: f.from,
            to: f.to,
        };
        // Usually the request's first statement: it goes out together with the BEGIN.
        let (keyset, filter) = (page.keyset(), &filter);
        let rows = req
            .db
            .read(async |conn| leave::page(conn, filter, keyset).await)
            .await?;
        Ok(page.connection(rows, |r| r.id, LeaveRequestNode))
    }

    async fn leave_request(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<LeaveRequestNode>> {
        let id = expect_global_id("id", &id, NodeType::LeaveRequest)?;
        Ok(LeaveRequestNode::visible(ctx, id).await?)
    }

    /// A user's balance per leave type in a leave year (named by the calendar year it starts
    /// in), as of a day (today in the tenant's zone when left out). Members see their own.
    async fn leave_balances(
        &self,
        ctx: &Context<'_>,
        user_id: Option<ID>,
        year: Option<i32>,
        as_of: Option<NaiveDate>,
    ) -> async_graphql::Result<Vec<LeaveBalance>> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let user_id = match user_id {
            Some(id) => expect_global_id("userId", &id, NodeType::User)?,
            None => actor.user_id,
        };
        if !actor.may_see(user_id) {
            return Err(AppError::Forbidden("members see only their own balances").into());
        }
        let settings = req.settings().await?;
        let today = Utc::now().with_timezone(&settings.time_zone).date_naive();
        let as_of = as_of.unwrap_or(today);
        let year = year.unwrap_or_else(|| leave::leave_year_of(as_of, settings.leave_year_start_month));
        let mut conn = req.db.conn().await?;
        Ok(leave::balances(&mut conn, &settings, user_id, year, as_of, None)
            .await?
            .into_iter()
            .map(LeaveBalance::from)
            .collect())
    }
}

#[derive(Default)]
pub struct LeaveMutation;

/// Many users' balances (managers and admins), computed together in a fixed number of
/// statements however many users: the users asked for, or every active user.
async fn team_balances(
    ctx: &Context<'_>,
    user_ids: Option<Vec<ID>>,
    year: Option<i32>,
    as_of: Option<NaiveDate>,
) -> AppResult<Vec<UserLeaveBalances>> {
    let req = ctx.request();
    req.actor().await?.require(
        &[Role::Admin, Role::Manager],
        "only managers and admins see everyone's balances",
    )?;
    let settings = req.settings().await?;
    let today = Utc::now().with_timezone(&settings.time_zone).date_naive();
    let as_of = as_of.unwrap_or(today);
    let year = year.unwrap_or_else(|| leave::leave_year_of(as_of, settings.leave_year_start_month));
    let (ids, mut balances) = {
        let mut conn = req.db.conn().await?;
        let ids = match user_ids {
            Some(ids) => ids
                .iter()
                .map(|id| expect_global_id("userIds", id, NodeType::User))
                .collect::<AppResult<Vec<i64>>>()?,
            None => leave::active_users(&mut conn).await?,
        };
        let balances = leave::balances_of(&mut conn, &settings, &ids, year, as_of, None).await?;
        (ids, balances)
    };
    crate::graphql::support::prefetch(&req.loader::<ById<User>>(), ids.iter().copied()).await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(user_balances) = balances.remove(&id) else {
            continue;
        };
        out.push(UserLeaveBalances {
            user: UserNode::visible(ctx, id).await?,
            balances: user_balances.into_iter().map(LeaveBalance::from).collect(),
        });
    }
    Ok(out)
}

#[Object]
impl LeaveMutation {
    async fn create_leave_type(
        &self,
        ctx: &Context<'_>,
        input: CreateLeaveTypeInput,
    ) -> async_graphql::Result<LeaveTypeNode> {
        let req = ctx.request();
        req.actor().await?.require(&[Role::Admin], ADMIN_ONLY)?;
        let input = LeaveTypeInput {
            name: Some(input.name),
            yearly_allowance_days: Some(input.yearly_allowance_days),
            accrual: Some(input.accrual),
            carry_over_cap_days: Some(input.carry_over_cap_days),
            half_days_allowed: Some(input.half_days_allowed),
            attachment_required_after_days: Some(input.attachment_required_after_days),
            allow_negative: Some(input.allow_negative),
            archived: None,
        };
        let created = req
            .db
            .in_savepoint(async |conn| leave::create_type(conn, input).await)
            .await?;
        Ok(LeaveTypeNode(created))
    }

    async fn update_leave_type(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateLeaveTypeInput,
    ) -> async_graphql::Result<LeaveTypeNode> {
        let req = ctx.request();
        req.actor().await?.require(&[Role::Admin], ADMIN_ONLY)?;
        let id = expect_global_id("id", &id, NodeType::LeaveType)?;
        let input = LeaveTypeInput {
            name: input.name,
            yearly_allowance_days: input.yearly_allowance_days,
            accrual: input.accrual,
            carry_over_cap_days: input.carry_over_cap_days,
            half_days_allowed: input.half_days_allowed,
            attachment_required_after_days: match input.attachment_required_after_days {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(v) => Some(Some(v)),
            },
            allow_negative: input.allow_negative,
            archived: input.archived,
        };
        let updated = req
            .db
            .in_savepoint(async |conn| leave::update_type(conn, id, input).await)
            .await?;
        Ok(LeaveTypeNode(updated))
    }

    async fn create_holiday(
        &self,
        ctx: &Context<'_>,
        day: NaiveDate,
        name: String,
    ) -> async_graphql::Result<HolidayNode> {
        let req = ctx.request();
        req.actor().await?.require(&[Role::Admin], ADMIN_ONLY)?;
        let created = req
            .db
            .in_savepoint(async |conn| leave::create_holiday(conn, day, &name).await)
            .await?;
        Ok(created.into())
    }

    /// Removes a holiday; returns its id.
    async fn delete_holiday(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let req = ctx.request();
        req.actor().await?.require(&[Role::Admin], ADMIN_ONLY)?;
        let row = expect_global_id("id", &id, NodeType::Holiday)?;
        req.db
            .in_savepoint(async |conn| leave::delete_holiday(conn, row).await)
            .await?;
        Ok(id)
    }

    /// Asks for leave for the signed-in user; approvers are emailed.
    async fn request_leave(
        &self,
        ctx: &Context<'_>,
        input: RequestLeaveInput,
    ) -> async_graphql::Result<LeaveRequestNode> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let settings = req.settings().await?;
        let uploads = input.attachments.unwrap_or_default();
        let stored = receive(ctx, "input.attachments", &uploads).await?;
        let new = NewRequest {
            user_id: actor.user_id,
            leave_type_id: expect_global_id("input.leaveTypeId", &input.leave_type_id, NodeType::LeaveType)?,
            first_day: input.first_day,
            last_day: input.last_day,
            half_day_start: input.half_day_start,
            half_day_end: input.half_day_end,
            reason: input.reason,
            attachments: stored.len(),
        };
        let tenant_id = req.db.tenant().id;
        let created = req
            .db
            .in_savepoint(async |conn| {
                let created = leave::request(conn, &settings, tenant_id, new).await?;
                for (key, file) in &stored {
                    files::insert(conn, key, file, actor.user_id, Some(created.id)).await?;
                }
                Ok::<_, AppError>(created)
            })
            .await;
        match created {
            Ok(created) => Ok(LeaveRequestNode(created)),
            Err(e) => {
                discard(req.services.get::<FileStore>(), &stored).await;
                Err(e.into())
            }
        }
    }

    /// Adds a file (multipart upload) to a pending or approved request: the requester,
    /// managers and admins.
    async fn add_leave_attachment(
        &self,
        ctx: &Context<'_>,
        leave_request_id: ID,
        file: Upload,
    ) -> async_graphql::Result<FileNode> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let request_id = expect_global_id("leaveRequestId", &leave_request_id, NodeType::LeaveRequest)?;
        let stored = receive(ctx, "file", std::slice::from_ref(&file)).await?;
        let added = req
            .db
            .in_savepoint(async |conn| {
                leave::lock_for_files(conn, actor, request_id).await?;
                let (key, file) = &stored[0];
                files::insert(conn, key, file, actor.user_id, Some(request_id)).await
            })
            .await;
        match added {
            Ok(added) => Ok(FileNode(added)),
            Err(e) => {
                discard(req.services.get::<FileStore>(), &stored).await;
                Err(e.into())
            }
        }
    }

    /// Removes a file from a pending or approved request (the requester, managers and
    /// admins), unless the request's type needs one and it is the last. Returns its id.
    async fn remove_leave_attachment(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let file_id = expect_global_id("id", &id, NodeType::File)?;
        let key = req
            .db
            .in_savepoint(async |conn| leave::remove_file(conn, actor, file_id).await)
            .await?;
        // The bytes go once the removal is committed (never if it is undone).
        let store = req.services.get::<FileStore>().clone();
        req.db.after_commit(move || {
            tokio::spawn(async move { store.delete(&key).await });
        });
        Ok(id)
    }

    /// Approves a pending request (managers and admins, never their own); the requester is
    /// emailed.
    async fn approve_leave(
        &self,
        ctx: &Context<'_>,
        id: ID,
        note: Option<String>,
    ) -> async_graphql::Result<LeaveRequestNode> {
        decide(ctx, id, true, note).await
    }

    /// Rejects a pending request with a reason; the requester is emailed.
    async fn reject_leave(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: String,
    ) -> async_graphql::Result<LeaveRequestNode> {
        if reason.trim().is_empty() {
            return Err(AppError::bad_input("reason", "give a reason").into());
        }
        decide(ctx, id, false, Some(reason)).await
    }

    /// Cancels one's own pending or approved request; approvers are emailed.
    async fn cancel_leave(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<LeaveRequestNode> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let id = expect_global_id("id", &id, NodeType::LeaveRequest)?;
        let tenant_id = req.db.tenant().id;
        let cancelled = req
            .db
            .in_savepoint(async |conn| leave::cancel(conn, tenant_id, actor, id).await)
            .await?;
        Ok(LeaveRequestNode(cancelled))
    }
}

async fn decide(
    ctx: &Context<'_>,
    id: ID,
    approve: bool,
    note: Option<String>,
) -> async_graphql::Result<LeaveRequestNode> {
    let req = ctx.request();
    let actor = &req.actor().await?;
    let id = expect_global_id("id", &id, NodeType::LeaveRequest)?;
    let note = note.map(|n| n.trim().chars().take(2000).collect::<String>());
    let tenant_id = req.db.tenant().id;
    let decided = req
        .db
        .in_savepoint(async |conn| leave::decide(conn, tenant_id, actor, id, approve, note.as_deref()).await)
        .await?;
    Ok(LeaveRequestNode(decided))
}
