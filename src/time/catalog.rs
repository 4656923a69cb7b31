//! Clients, projects, tasks and project members: rows, rules and statements.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;

use crate::db::functions::lower;
use crate::db::schema::{clients, project_members, projects, tasks};
use crate::db::{Keyset, keyset_page};
use crate::db::{constraint_of, contains_pattern, unique_conflict};
use crate::error::{AppError, AppResult};
use crate::text;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = clients)]
pub struct Client {
    pub id: i64,
    pub name: String,
    pub billing_email: Option<String>,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = projects)]
pub struct Project {
    pub id: i64,
    pub client_id: i64,
    pub code: Option<String>,
    pub name: String,
    pub billable: bool,
    pub hourly_rate: Option<Decimal>,
    pub budget_hours: Option<Decimal>,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tasks)]
pub struct Task {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    /// `None`: as the project.
    pub billable: Option<bool>,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
}

// The columns a page of entries reads of its entries' clients, projects and tasks, by the
// fields that read them (see `crate::db::columns`).
crate::db::columns::read_in_part!(Client, "c", "clients", blank: Client {
    id: 0,
    name: String::new(),
    billing_email: None,
    archived: false,
    created_at: DateTime::UNIX_EPOCH,
    updated_at: DateTime::UNIX_EPOCH,
}, {
    id: BigInt => key,
    name: Text => ["name"],
    billing_email: Nullable<Text> => ["billingEmail"],
    archived: Bool => ["archived"],
    created_at: Timestamptz => ["createdAt"],
    updated_at: Timestamptz => ["updatedAt"],
});

crate::db::columns::read_in_part!(Project, "p", "projects", blank: Project {
    id: 0,
    client_id: 0,
    code: None,
    name: String::new(),
    billable: false,
    hourly_rate: None,
    budget_hours: None,
    archived: false,
    created_at: DateTime::UNIX_EPOCH,
    updated_at: DateTime::UNIX_EPOCH,
}, {
    id: BigInt => key,
    client_id: BigInt => key,
    code: Nullable<Text> => ["code"],
    name: Text => ["name"],
    billable: Bool => ["billable"],
    hourly_rate: Nullable<Numeric> => ["hourlyRate"],
    budget_hours: Nullable<Numeric> => ["budgetHours"],
    archived: Bool => ["archived"],
    created_at: Timestamptz => ["createdAt"],
    updated_at: Timestamptz => ["updatedAt"],
});

crate::db::columns::read_in_part!(Task, "t", "tasks", blank: Task {
    id: 0,
    project_id: 0,
    name: String::new(),
    billable: None,
    archived: false,
    created_at: DateTime::UNIX_EPOCH,
}, {
    id: BigInt => key,
    project_id: BigInt => key,
    name: Text => ["name"],
    billable: Nullable<Bool> => ["billable"],
    archived: Bool => ["archived"],
    created_at: Timestamptz => ["createdAt"],
});

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = project_members)]
pub struct ProjectMember {
    pub project_id: i64,
    pub user_id: i64,
    pub hourly_rate: Option<Decimal>,
    pub created_at: DateTime<Utc>,
}

fn clean_code(field: &str, raw: &str) -> AppResult<Option<String>> {
    let code = raw.trim();
    if code.is_empty() {
        return Ok(None);
    }
    if code.chars().count() > 30 || code.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AppError::bad_input(
            field,
            "a code has at most 30 characters and no spaces",
        ));
    }
    Ok(Some(code.to_owned()))
}

/// An hourly rate: not negative, at most 4 decimals.
pub fn check_rate(field: &str, rate: Decimal) -> AppResult<Decimal> {
    if rate < Decimal::ZERO || rate.normalize().scale() > 4 || rate >= Decimal::from(10_000_000_000i64) {
        return Err(AppError::bad_input(
            field,
            "a rate is 0 or more, below 10^10, with at most 4 decimals",
        ));
    }
    Ok(rate.normalize())
}

fn check_budget(field: &str, hours: Decimal) -> AppResult<Decimal> {
    if hours <= Decimal::ZERO || hours.normalize().scale() > 2 || hours >= Decimal::from(100_000_000) {
        return Err(AppError::bad_input(
            field,
            "a budget is more than 0 hours, with at most 2 decimals",
        ));
    }
    Ok(hours.normalize())
}

/// Turns a broken uniqueness rule into the conflict the user can act on.
pub struct ClientChanges {
    pub name: Option<String>,
    pub billing_email: Option<Option<String>>,
    pub archived: Option<bool>,
}

pub async fn create_client(
    conn: &mut AsyncPgConnection,
    name: &str,
    billing_email: Option<&str>,
) -> AppResult<Client> {
    let name = text::name("input.name", name, 200)?;
    let billing_email = billing_email
        .map(|e| crate::auth::users::normalize_email("input.billingEmail", e))
        .transpose()?;
    diesel::insert_into(clients::table)
        .values((clients::name.eq(&name), clients::billing_email.eq(&billing_email)))
        .returning(Client::as_returning())
        .get_result(conn)
        .await
        .map_err(|e| {
            unique_conflict(e, None, Some("input.name"), || {
                format!("a client named {name} already exists")
            })
        })
}

pub async fn update_client(conn: &mut AsyncPgConnection, id: i64, input: ClientChanges) -> AppResult<Client> {
    let name = input
        .name
        .as_deref()
        .map(|n| text::name("input.name", n, 200))
        .transpose()?;
    let billing_email = match input.billing_email {
        Some(Some(e)) => Some(Some(crate::auth::users::normalize_email(
            "input.billingEmail",
            &e,
        )?)),
        other => other,
    };
    let changes = (
        name.as_ref().map(|n| clients::name.eq(n)),
        billing_email.map(|e| clients::billing_email.eq(e)),
        input.archived.map(|a| clients::archived.eq(a)),
        clients::updated_at.eq(diesel::dsl::now),
    );
    diesel::update(clients::table.find(id))
        .set(changes)
        .returning(Client::as_returning())
        .get_result(conn)
        .await
        .optional()
        .map_err(|e| {
            unique_conflict(e, None, Some("input.name"), || {
                format!(
                    "a client named {} already exists",
                    name.clone().unwrap_or_default()
                )
            })
        })?
        .ok_or(AppError::NotFound { what: "client" })
}

pub struct NewProject {
    pub client_id: i64,
    pub code: Option<String>,
    pub name: String,
    pub billable: bool,
    pub hourly_rate: Option<Decimal>,
    pub budget_hours: Option<Decimal>,
}

pub async fn create_project(conn: &mut AsyncPgConnection, input: NewProject) -> AppResult<Project> {
    let name = text::name("input.name", &input.name, 200)?;
    let code = input
        .code
        .as_deref()
        .map(|c| clean_code("input.code", c))
        .transpose()?
        .flatten();
    let rate = input
        .hourly_rate
        .map(|r| check_rate("input.hourlyRate", r))
        .transpose()?;
    let budget = input
        .budget_hours
        .map(|b| check_budget("input.budgetHours", b))
        .transpose()?;
    let client_exists: bool = diesel::select(diesel::dsl::exists(clients::table.find(input.client_id)))
        .get_result(conn)
        .await?;
    if !client_exists {
        return Err(AppError::bad_input("input.clientId", "no such client"));
    }
    diesel::insert_into(projects::table)
        .values((
            projects::client_id.eq(input.client_id),
            projects::code.eq(&code),
            projects::name.eq(&name),
            projects::billable.eq(input.billable),
            projects::hourly_rate.eq(rate),
            projects::budget_hours.eq(budget),
        ))
        .returning(Project::as_returning())
        .get_result(conn)
        .await
        .map_err(|e| project_conflict(e, &name, code.as_deref()))
}

fn project_conflict(e: DieselError, name: &str, code: Option<&str>) -> AppError {
    if constraint_of(&e) == Some("projects_code_lower_key") {
        unique_conflict(e, None, Some("input.code"), || {
            format!("a project with code {} already exists", code.unwrap_or_default())
        })
    } else {
        unique_conflict(e, None, Some("input.name"), || {
            format!("this client already has a project named {name}")
        })
    }
}

pub struct ProjectChanges {
    pub code: Option<Option<String>>,
    pub name: Option<String>,
    pub billable: Option<bool>,
    pub hourly_rate: Option<Option<Decimal>>,
    pub budget_hours: Option<Option<Decimal>>,
    pub archived: Option<bool>,
}

pub async fn update_project(
    conn: &mut AsyncPgConnection,
    id: i64,
    input: ProjectChanges,
) -> AppResult<Project> {
    let name = input
        .name
        .as_deref()
        .map(|n| text::name("input.name", n, 200))
        .transpose()?;
    let code = match input.code {
        Some(Some(c)) => Some(clean_code("input.code", &c)?),
        other => other,
    };
    let rate = match input.hourly_rate {
        Some(Some(r)) => Some(Some(check_rate("input.hourlyRate", r)?)),
        other => other,
    };
    let budget = match input.budget_hours {
        Some(Some(b)) => Some(Some(check_budget("input.budgetHours", b)?)),
        other => other,
    };
    let changes = (
        code.clone().map(|c| projects::code.eq(c)),
        name.as_ref().map(|n| projects::name.eq(n)),
        input.billable.map(|b| projects::billable.eq(b)),
        rate.map(|r| projects::hourly_rate.eq(r)),
        budget.map(|b| projects::budget_hours.eq(b)),
        input.archived.map(|a| projects::archived.eq(a)),
        projects::updated_at.eq(diesel::dsl::now),
    );
    diesel::update(projects::table.find(id))
        .set(changes)
        .returning(Project::as_returning())
        .get_result(conn)
        .await
        .optional()
        .map_err(|e| project_conflict(e, name.as_deref().unwrap_or_default(), code.flatten().as_deref()))?
        .ok_or(AppError::NotFound { what: "project" })
}

/// Refuses input that names a project this tenant does not have.
async fn ensure_project(conn: &mut AsyncPgConnection, project_id: i64) -> AppResult<()> {
    let exists: bool = diesel::select(diesel::dsl::exists(projects::table.find(project_id)))
        .get_result(conn)
        .await?;
    if exists {
        Ok(())
    } else {
        Err(AppError::bad_input("input.projectId", "no such project"))
    }
}

pub async fn create_task(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    name: &str,
    billable: Option<bool>,
) -> AppResult<Task> {
    let name = text::name("input.name", name, 200)?;
    ensure_project(conn, project_id).await?;
    diesel::insert_into(tasks::table)
        .values((
            tasks::project_id.eq(project_id),
            tasks::name.eq(&name),
            tasks::billable.eq(billable),
        ))
        .returning(Task::as_returning())
        .get_result(conn)
        .await
        .map_err(|e| {
            unique_conflict(e, None, Some("input.name"), || {
                format!("this project already has a task named {name}")
            })
        })
}

/// Adds a member to a project, or changes the member's rate override.
pub async fn put_member(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    user_id: i64,
    hourly_rate: Option<Decimal>,
) -> AppResult<ProjectMember> {
    let rate = hourly_rate
        .map(|r| check_rate("input.hourlyRate", r))
        .transpose()?;
    ensure_project(conn, project_id).await?;
    let user_exists: bool =
        diesel::select(diesel::dsl::exists(crate::db::schema::users::table.find(user_id)))
            .get_result(conn)
            .await?;
    if !user_exists {
        return Err(AppError::bad_input("input.userId", "no such user"));
    }
    Ok(diesel::insert_into(project_members::table)
        .values((
            project_members::project_id.eq(project_id),
            project_members::user_id.eq(user_id),
            project_members::hourly_rate.eq(rate),
        ))
        .on_conflict((project_members::project_id, project_members::user_id))
        .do_update()
        .set(project_members::hourly_rate.eq(rate))
        .returning(ProjectMember::as_returning())
        .get_result(conn)
        .await?)
}

#[derive(Debug, Default, Clone)]
pub struct ClientFilter {
    pub search: Option<String>,
    pub include_archived: bool,
}

pub async fn client_page(
    mut conn: &AsyncPgConnection,
    filter: &ClientFilter,
    keyset: Keyset,
) -> QueryResult<Vec<Client>> {
    let mut query = keyset_page!(clients, Client, keyset);
    if !filter.include_archived {
        query = query.filter(clients::archived.eq(false));
    }
    if let Some(search) = filter.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        query = query.filter(clients::name.ilike(contains_pattern(search)));
    }
    query.load(&mut conn).await
}

#[derive(Debug, Default, Clone)]
pub struct ProjectFilter {
    pub client_id: Option<i64>,
    pub search: Option<String>,
    /// Exact name, ignoring case.
    pub name: Option<String>,
    pub include_archived: bool,
}

pub async fn project_page(
    mut conn: &AsyncPgConnection,
    filter: &ProjectFilter,
    keyset: Keyset,
) -> QueryResult<Vec<Project>> {
    let mut query = keyset_page!(projects, Project, keyset);
    if let Some(client_id) = filter.client_id {
        query = query.filter(projects::client_id.eq(client_id));
    }
    if !filter.include_archived {
        query = query.filter(projects::archived.eq(false));
    }
    if let Some(name) = filter.name.as_deref() {
        query = query.filter(lower(projects::name).eq(lower(name.trim().to_owned())));
    }
    if let Some(search) = filter.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let pattern = contains_pattern(search);
        query = query.filter(
            projects::name
                .ilike(pattern.clone())
                .or(projects::code.ilike(pattern)),
        );
    }
    query.load(&mut conn).await
}

macro_rules! rows_by_ids {
    ($(#[$doc:meta])* $name:ident, $row:ty, $table:ident) => {
        $(#[$doc])*
        pub async fn $name(conn: &mut AsyncPgConnection, ids: &[i64]) -> AppResult<Vec<$row>> {
            Ok($table::table
                .filter($table::id.eq_any(ids))
                .select(<$row>::as_select())
                .load(conn)
                .await?)
        }
    };
}

rows_by_ids!(
    /// The clients of `ids` that exist.
    clients_by_ids, Client, clients
);
rows_by_ids!(
    /// The projects of `ids` that exist.
    projects_by_ids, Project, projects
);
rows_by_ids!(
    /// The tasks of `ids` that exist.
    tasks_by_ids, Task, tasks
);

/// The tasks of the projects `project_ids`, by id.
pub async fn tasks_of_projects(conn: &mut AsyncPgConnection, project_ids: &[i64]) -> AppResult<Vec<Task>> {
    Ok(tasks::table
        .filter(tasks::project_id.eq_any(project_ids))
        .order(tasks::id)
        .select(Task::as_select())
        .load(conn)
        .await?)
}

/// The members of the projects `project_ids`, by project and user.
pub async fn members_of_projects(
    conn: &mut AsyncPgConnection,
    project_ids: &[i64],
) -> AppResult<Vec<ProjectMember>> {
    Ok(project_members::table
        .filter(project_members::project_id.eq_any(project_ids))
        .order((project_members::project_id, project_members::user_id))
        .select(ProjectMember::as_select())
        .load(conn)
        .await?)
}
