//! Change notices across processes. A change to cached data (the registry, a tenant's
//! settings) publishes a notice in the transaction that makes it; PostgreSQL delivers it on
//! commit, to every server listening, and each drops what it cached of it. Rolled-back
//! changes publish nothing.

use std::sync::Arc;
use std::time::Duration;

use diesel::QueryResult;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::StreamExt;

use super::pool::{self, DbPool};
use crate::config::Secret;

pub const CHANNEL: &str = "crowdminder_changes";

/// How often each server sends a heartbeat notice.
const HEARTBEAT: Duration = Duration::from_secs(20);
/// How long a listening connection may stay silent before it is presumed dead.
const SILENCE_LIMIT: Duration = Duration::from_secs(60);

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Tenants or hosts (of the tenant with this id).
    Registry(i64),
    /// The settings of the tenant with this id.
    Settings(i64),
    /// Users or API tokens of the tenant with this id (a role, a deactivation, a revocation).
    Auth(i64),
    /// Notices may have been lost (the listening connection dropped): forget everything.
    Missed,
    /// A heartbeat: proves the listening connection still delivers.
    Ping,
    /// Jobs were enqueued: idle workers look for work.
    Jobs,
}

impl Notice {
    fn payload(self) -> String {
        match self {
            Self::Registry(id) => format!("registry:{id}"),
            Self::Settings(id) => format!("settings:{id}"),
            Self::Auth(id) => format!("auth:{id}"),
            Self::Missed => "missed".to_owned(),
            Self::Ping => "ping".to_owned(),
            Self::Jobs => "jobs".to_owned(),
        }
    }

    fn parse(payload: &str) -> Self {
        match payload {
            "ping" => return Self::Ping,
            "jobs" => return Self::Jobs,
            _ => {}
        }
        let (topic, id) = payload.split_once(':').unwrap_or((payload, ""));
        match (topic, id.parse()) {
            ("registry", Ok(id)) => Self::Registry(id),
            ("settings", Ok(id)) => Self::Settings(id),
            ("auth", Ok(id)) => Self::Auth(id),
            _ => Self::Missed,
        }
    }
}

/// Announces a change; it is delivered when (and only if) the current transaction commits.
pub async fn publish(conn: &mut AsyncPgConnection, notice: Notice) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<Text, _>(CHANNEL)
        .bind::<Text, _>(notice.payload())
        .execute(conn)
        .await
        .map(|_| ())
}

type Subscriber = Box<dyn Fn(Notice) + Send + Sync>;

/// Hands every notice to its subscribers, from one listening connection per process.
#[derive(Default)]
pub struct ChangeListener {
    subscribers: Vec<Subscriber>,
}

impl ChangeListener {
    pub fn subscribe(&mut self, subscriber: impl Fn(Notice) + Send + Sync + 'static) {
        self.subscribers.push(Box::new(subscriber));
    }

    /// Listens until the process ends, reconnecting with backoff. A heartbeat notice sent
    /// through `pool` every [`HEARTBEAT`] proves the connection alive: one that stays silent
    /// for [`SILENCE_LIMIT`] (a half-open TCP connection, say) is dropped and replaced.
    pub fn spawn(self, database_url: Secret, pool: DbPool) -> tokio::task::JoinHandle<()> {
        let listener = Arc::new(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(HEARTBEAT);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let sent = pool
                    .transaction(async |conn| Ok(publish(conn, Notice::Ping).await?))
                    .await;
                if let Err(e) = sent {
                    tracing::debug!(error = ?e, "change heartbeat not sent");
                }
            }
        });
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                match listener.listen(&database_url).await {
                    Ok(()) => backoff = Duration::from_millis(200),
                    Err(e) => tracing::warn!(error = %e, "change listener lost its connection"),
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        })
    }

    fn dispatch(&self, notice: Notice) {
        for subscriber in &self.subscribers {
            subscriber(notice);
        }
    }

    async fn listen(&self, database_url: &Secret) -> anyhow::Result<()> {
        let mut conn = pool::connect(database_url.expose()).await?;
        conn.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        // Whatever changed while no one was listening is unknown.
        self.dispatch(Notice::Missed);
        let mut notifications = std::pin::pin!(conn.notifications_stream());
        loop {
            let next = tokio::time::timeout(SILENCE_LIMIT, notifications.next())
                .await
                .map_err(|_| anyhow::anyhow!("no notice, not even a heartbeat, for {SILENCE_LIMIT:?}"))?;
            let Some(notification) = next else {
                return Ok(());
            };
            let notice = Notice::parse(&notification?.payload);
            if notice != Notice::Ping {
                tracing::debug!(?notice, "change notice");
                self.dispatch(notice);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Notice;

    #[test]
    fn notices_round_trip() {
        for n in [
            Notice::Registry(7),
            Notice::Settings(12),
            Notice::Auth(3),
            Notice::Missed,
            Notice::Ping,
            Notice::Jobs,
        ] {
            assert_eq!(Notice::parse(&n.payload()), n);
        }
        assert_eq!(Notice::parse("garbage"), Notice::Missed);
    }
}
