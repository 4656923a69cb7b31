//! `jobs list | retry | cancel`: the queue, for operators.

use super::{Failure, JobsCommand, connect};
use crate::error::AppError;
use crate::jobs;

pub(super) async fn jobs_command(command: JobsCommand) -> Result<(), Failure> {
    let app_error = |e: AppError| Failure {
        code: if matches!(e, AppError::NotFound { .. } | AppError::Conflict { .. }) {
            2
        } else {
            1
        },
        message: e.message(),
    };
    match command {
        JobsCommand::List {
            db,
            failed,
            tenant,
            limit,
            json,
        } => {
            let mut conn = connect(&db).await?;
            let listed = jobs::list(&mut conn, failed, tenant.as_deref(), limit.clamp(1, 10_000))
                .await
                .map_err(app_error)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&listed).map_err(anyhow::Error::from)?
                );
                return Ok(());
            }
            println!(
                "{:>8}  {:<20} {:<16} {:<8} {:>8}  {:<20}  LAST ERROR",
                "ID", "TENANT", "KIND", "STATUS", "ATTEMPTS", "RUN AT"
            );
            for l in listed {
                let error: String = l.job.last_error.unwrap_or_default().chars().take(60).collect();
                println!(
                    "{:>8}  {:<20} {:<16} {:<8} {:>8}  {:<20}  {}",
                    l.job.id,
                    l.tenant,
                    l.job.kind,
                    l.job.status,
                    format!("{}/{}", l.job.attempts, l.job.max_attempts),
                    l.job.run_at.format("%Y-%m-%d %H:%M:%S"),
                    error.replace('\n', " ")
                );
            }
            Ok(())
        }
        JobsCommand::Retry { db, id } => {
            let mut conn = connect(&db).await?;
            jobs::retry(&mut conn, id).await.map_err(app_error)?;
            eprintln!("job {id} will run again");
            Ok(())
        }
        JobsCommand::Cancel { db, id } => {
            let mut conn = connect(&db).await?;
            jobs::cancel(&mut conn, id).await.map_err(app_error)?;
            eprintln!("job {id} cancelled");
            Ok(())
        }
    }
}
