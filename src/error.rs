//! The one application error, turned into a GraphQL error (with `extensions.code`) at the
//! edge. Internal causes are logged, never shown: no SQL reaches a client.

use async_graphql::ErrorExtensions;

/// The one application error.
///
/// It deliberately has no `Display`: async-graphql turns anything displayable into an error
/// without a code, so only the conversion below can make a GraphQL error of it.
#[derive(Debug)]
pub enum AppError {
    Unauthenticated(&'static str),
    Forbidden(&'static str),
    NotFound {
        what: &'static str,
    },
    BadUserInput {
        field: String,
        message: String,
    },
    Conflict {
        field: Option<String>,
        message: String,
    },
    /// The HTTP request is not a GraphQL request (malformed JSON, a broken multipart body).
    BadRequest(String),
    TenantNotFound,
    TenantSuspended,
    /// The database is unreachable, or no connection came free in time: try again soon.
    Unavailable,
    /// Too many failed credential checks for the account or from the address: try again
    /// after this many seconds.
    Throttled {
        retry_after_seconds: u64,
    },
    /// A statement ran past its timeout (`DB_STATEMENT_TIMEOUT_MS`) and was cancelled.
    Timeout,
    Internal(anyhow::Error),
}

impl AppError {
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadUserInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn conflict(field: Option<&str>, message: impl Into<String>) -> Self {
        Self::Conflict {
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }

    /// What the client is told. Internal causes stay in the log.
    pub fn message(&self) -> String {
        match self {
            Self::Unauthenticated(why) => format!("authentication required: {why}"),
            Self::Forbidden(why) => (*why).to_owned(),
            Self::NotFound { what } => format!("{what} not found"),
            Self::BadUserInput { message, .. } | Self::Conflict { message, .. } => message.clone(),
            Self::BadRequest(why) => why.clone(),
            Self::TenantNotFound => "no tenant is served at this host".to_owned(),
            Self::TenantSuspended => "this tenant is suspended".to_owned(),
            Self::Unavailable => "the service is busy, try again".to_owned(),
            Self::Throttled { retry_after_seconds } => {
                format!("too many failed attempts: try again in {retry_after_seconds} s")
            }
            Self::Timeout => {
                "the request took longer than the database allows and was stopped: ask for less at once"
                    .to_owned()
            }
            Self::Internal(_) => "internal error".to_owned(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound { .. } => "NOT_FOUND",
            Self::BadUserInput { .. } => "BAD_USER_INPUT",
            Self::Conflict { .. } => "CONFLICT",
            Self::BadRequest(_) => "BAD_REQUEST",
            Self::TenantNotFound => "TENANT_NOT_FOUND",
            Self::TenantSuspended => "TENANT_SUSPENDED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Throttled { .. } => "THROTTLED",
            Self::Timeout => "TIMEOUT",
            Self::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::BadUserInput { field, .. } => Some(field),
            Self::Conflict { field, .. } => field.as_deref(),
            _ => None,
        }
    }
}

impl From<diesel::result::Error> for AppError {
    /// A lost connection or a server that is stopping or starting is `Unavailable`, a
    /// cancelled statement `Timeout`; anything else is internal.
    fn from(e: diesel::result::Error) -> Self {
        match fault_of(&e) {
            Some(Fault::Away) => {
                tracing::warn!(error = %e, "database unreachable");
                Self::Unavailable
            }
            Some(Fault::Cancelled) => Self::Timeout,
            None => Self::Internal(e.into()),
        }
    }
}

enum Fault {
    Away,
    Cancelled,
}

/// What of `e` is the database's state rather than the statement's: these messages carry no
/// bound value, so they may be logged.
fn fault_of(e: &diesel::result::Error) -> Option<Fault> {
    use diesel::result::DatabaseErrorKind as Kind;
    use diesel::result::Error as E;
    match e {
        E::DatabaseError(Kind::UnableToSendCommand | Kind::ClosedConnection, _) => Some(Fault::Away),
        E::DatabaseError(Kind::Unknown, info) => {
            let message = info.message();
            if DATABASE_AWAY.iter().any(|m| message.starts_with(m)) {
                Some(Fault::Away)
            } else if message.starts_with("canceling statement due to statement timeout")
                || message.starts_with("canceling statement due to lock timeout")
            {
                Some(Fault::Cancelled)
            } else {
                None
            }
        }
        // The connection went while the transaction ended: whether the COMMIT took is not
        // known, which the client learns as `Unavailable` (a retry with the same external
        // reference is safe).
        E::RollbackErrorOnCommit {
            rollback_error,
            commit_error,
        } => fault_of(commit_error).or_else(|| fault_of(rollback_error)),
        _ => None,
    }
}

/// How PostgreSQL's messages begin when it is going away or not yet back (SQLSTATE classes
/// 57P and 08; the driver hands on the message, not the code).
const DATABASE_AWAY: &[&str] = &[
    "terminating connection",
    "the database system is",
    "server closed the connection",
    "connection to server",
    "no connection to the server",
];

/// For jobs and commands, whose errors go to a log, not to a client: the internal cause as
/// it is, any other as its code and message.
impl From<AppError> for anyhow::Error {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Internal(cause) => cause,
            other => anyhow::anyhow!("{}: {}", other.code(), other.message()),
        }
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(e: AppError) -> Self {
        if let AppError::Internal(cause) = &e {
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        let code = e.code();
        let field = e.field().map(str::to_owned);
        let retry_after = match e {
            AppError::Throttled { retry_after_seconds } => Some(retry_after_seconds),
            _ => None,
        };
        async_graphql::Error::new(e.message()).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(field) = field {
                ext.set("field", field);
            }
            if let Some(seconds) = retry_after {
                ext.set("retryAfter", seconds);
            }
        })
    }
}

pub type AppResult<T> = Result<T, AppError>;
