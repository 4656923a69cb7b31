//! Files kept for tenants (leave attachments): the bytes in an object store (a local folder
//! by default, S3-compatible by configuration), a row in the tenant's `files` table.
//!
//! Every key begins with the tenant's registry id and ends with a fresh UUID
//! (`tenants/<id>/files/<uuid>`), so two tenants never share a key however their row ids
//! repeat, and a key never says anything a client chose (the file name stays in the row).
//! The type of a file is read from its first bytes, never taken from the client's word.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};

use crate::db::schema::files;
use crate::error::{AppError, AppResult};

pub use crate::config::MAX_FILES_PER_REQUEST;

/// Whether content is of a kind, from its first bytes.
type Sniff = fn(&[u8]) -> bool;

/// The content types accepted (with a file name extension), each recognised by its first
/// bytes.
const KINDS: &[(&str, &str, Sniff)] = &[
    ("application/pdf", "pdf", |b| b.starts_with(b"%PDF-")),
    ("image/png", "png", |b| b.starts_with(b"\x89PNG\r\n\x1a\n")),
    ("image/jpeg", "jpg", |b| b.starts_with(b"\xff\xd8\xff")),
    ("image/webp", "webp", |b| {
        b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP"
    }),
];

/// Where files are kept.
#[derive(Clone)]
pub struct FileStore {
    store: Arc<dyn ObjectStore>,
    /// Largest file accepted, in bytes.
    pub max_bytes: usize,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileStore({}, max {} bytes)", self.store, self.max_bytes)
    }
}

impl FileStore {
    /// `spec` is a folder (made when missing) or `s3://bucket[/prefix]`; an S3 store takes
    /// its credentials, region and endpoint from the standard `AWS_*` variables
    /// (`AWS_ENDPOINT` and `AWS_ALLOW_HTTP` for S3-compatible servers).
    pub fn open(spec: &str, max_bytes: usize) -> anyhow::Result<Self> {
        let store: Arc<dyn ObjectStore> = if let Some(rest) = spec.strip_prefix("s3://") {
            // reqwest is built without a default TLS provider; ring is the one in use.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                anyhow::bail!("FILE_STORE: no bucket in {spec}");
            }
            // A store that does not answer must not hold a request for minutes: two retries
            // within 10 s (the default is ten within three minutes).
            let retry = object_store::RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(10),
                ..Default::default()
            };
            let s3 = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(retry)
                .build()
                .map_err(|e| anyhow::anyhow!("FILE_STORE: {e}"))?;
            let prefix = prefix.trim_matches('/');
            if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
            }
        } else {
            std::fs::create_dir_all(spec)
                .map_err(|e| anyhow::anyhow!("FILE_STORE: cannot make the folder {spec}: {e}"))?;
            Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(spec)
                    .map_err(|e| anyhow::anyhow!("FILE_STORE: {e}"))?,
            )
        };
        Ok(Self { store, max_bytes })
    }

    /// A fresh key for a file of `tenant_id`.
    pub fn new_key(tenant_id: i64) -> String {
        format!("tenants/{tenant_id}/files/{}", uuid::Uuid::new_v4().simple())
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> AppResult<()> {
        self.store
            .put(&StorePath::from(key), bytes.into())
            .await
            .map_err(|e| store_error("storing a file", &e))?;
        Ok(())
    }

    /// The file's bytes as a stream.
    pub async fn stream(&self, key: &str) -> AppResult<BoxStream<'static, std::io::Result<Bytes>>> {
        let got = self
            .store
            .get(&StorePath::from(key))
            .await
            .map_err(|e| store_error("reading a stored file", &e))?;
        Ok(got.into_stream().map_err(std::io::Error::other).boxed())
    }

    /// Removes a file; a missing one is no error. Failures are logged (a file left behind
    /// is garbage, not lost data).
    pub async fn delete(&self, key: &str) {
        match self.store.delete(&StorePath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(key, error = %e, "could not delete a stored file"),
        }
    }

    /// Checks an upload (size, type by content) and returns it ready to store.
    pub fn accept(&self, field: &str, filename: &str, bytes: Bytes) -> AppResult<Incoming> {
        if bytes.is_empty() {
            return Err(AppError::bad_input(field, "the file is empty"));
        }
        if bytes.len() > self.max_bytes {
            return Err(too_large(field, self.max_bytes));
        }
        let Some((content_type, extension, _)) = KINDS.iter().find(|(_, _, is)| is(&bytes)) else {
            return Err(AppError::bad_input(
                field,
                "only PDF, PNG, JPEG and WebP files are accepted",
            ));
        };
        let sha256 = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Incoming {
            filename: clean_filename(filename, extension),
            content_type,
            sha256,
            bytes,
        })
    }
}

/// A store that cannot be reached (refused, timed out, cut off) is `Unavailable`, as the
/// database is: the client may try again. Anything else (a missing bucket, denied access)
/// is the operator's to fix, and internal. The store's message (bucket and key, no
/// credentials) stays in the log.
fn store_error(doing: &str, e: &object_store::Error) -> AppError {
    use object_store::client::{HttpError, HttpErrorKind};
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cause) = source {
        if let Some(http) = cause.downcast_ref::<HttpError>()
            && matches!(
                http.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Request
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Interrupted
            )
        {
            tracing::warn!(error = %e, "{doing}: the file store is unreachable");
            return AppError::Unavailable;
        }
        source = cause.source();
    }
    AppError::internal(anyhow::anyhow!("{doing}: {e}"))
}

pub fn too_large(field: &str, max_bytes: usize) -> AppError {
    AppError::bad_input(
        field,
        format!(
            "a file has at most {} bytes ({} MiB)",
            max_bytes,
            max_bytes / (1024 * 1024)
        ),
    )
}

/// An upload that passed the checks.
pub struct Incoming {
    pub filename: String,
    pub content_type: &'static str,
    pub sha256: String,
    pub bytes: Bytes,
}

/// The last path segment, without control characters or quotes, at most 255 bytes; a name
/// left empty becomes `attachment.<ext>`.
pub fn clean_filename(raw: &str, extension: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut name: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '\''))
        .collect::<String>()
        .trim()
        .trim_start_matches('.')
        .to_owned();
    while name.len() > 255 {
        name.pop();
    }
    if name.is_empty() {
        format!("attachment.{extension}")
    } else {
        name
    }
}

/// A file's row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = files)]
pub struct StoredFile {
    pub id: i64,
    pub storage_key: String,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub uploaded_by: i64,
    pub leave_request_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// Records a stored file.
pub async fn insert(
    conn: &mut AsyncPgConnection,
    key: &str,
    file: &Incoming,
    uploaded_by: i64,
    leave_request_id: Option<i64>,
) -> AppResult<StoredFile> {
    Ok(diesel::insert_into(files::table)
        .values((
            files::storage_key.eq(key),
            files::filename.eq(&file.filename),
            files::content_type.eq(file.content_type),
            files::size_bytes.eq(file.bytes.len() as i64),
            files::sha256.eq(&file.sha256),
            files::uploaded_by.eq(uploaded_by),
            files::leave_request_id.eq(leave_request_id),
        ))
        .returning(StoredFile::as_returning())
        .get_result(conn)
        .await?)
}

pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> AppResult<Option<StoredFile>> {
    Ok(files::table
        .find(id)
        .select(StoredFile::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The files of a leave request, oldest first.
pub async fn of_leave_request(conn: &mut AsyncPgConnection, request_id: i64) -> AppResult<Vec<StoredFile>> {
    of_leave_requests(conn, &[request_id]).await
}

pub async fn delete_row(conn: &mut AsyncPgConnection, id: i64) -> AppResult<()> {
    diesel::delete(files::table.find(id)).execute(conn).await?;
    Ok(())
}

/// The files of the leave requests `request_ids`, each request's in order.
pub async fn of_leave_requests(
    conn: &mut AsyncPgConnection,
    request_ids: &[i64],
) -> AppResult<Vec<StoredFile>> {
    Ok(files::table
        .filter(files::leave_request_id.eq_any(request_ids))
        .order(files::id)
        .select(StoredFile::as_select())
        .load(conn)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_paths_and_control_characters() {
        assert_eq!(clean_filename("../../etc/passwd", "pdf"), "passwd");
        assert_eq!(
            clean_filename("C:\\Users\\a\\Arztzeugnis Müller.pdf", "pdf"),
            "Arztzeugnis Müller.pdf"
        );
        assert_eq!(clean_filename("a\"b\r\n.png", "png"), "ab.png");
        assert_eq!(clean_filename("   ", "jpg"), "attachment.jpg");
        assert_eq!(clean_filename(".hidden", "pdf"), "hidden");
        assert!(clean_filename(&"é".repeat(300), "pdf").len() <= 255);
    }

    #[test]
    fn types_are_read_from_the_content() {
        let store = FileStore::open(
            std::env::temp_dir()
                .join("crowdminder-files-unit")
                .to_str()
                .unwrap(),
            64,
        )
        .unwrap();
        let pdf = store
            .accept("f", "note.png", Bytes::from_static(b"%PDF-1.7 rest"))
            .unwrap();
        assert_eq!(pdf.content_type, "application/pdf");
        assert_eq!(pdf.filename, "note.png");
        assert_eq!(pdf.sha256.len(), 64);
        let html = store.accept("f", "x.pdf", Bytes::from_static(b"<html><script>"));
        assert!(matches!(html, Err(AppError::BadUserInput { .. })));
        let big = store.accept(
            "f",
            "x.pdf",
            Bytes::from([b"%PDF-".as_slice(), &[0; 64]].concat()),
        );
        assert!(matches!(big, Err(AppError::BadUserInput { .. })));
        assert!(store.accept("f", "x.pdf", Bytes::new()).is_err());
    }
}
