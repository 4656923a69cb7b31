//! The real servers besides PostgreSQL that the tests talk to, started by
//! `scripts/dev.sh test` (through `scripts/peers.sh`): an S3-compatible object store and an
//! SMTP server that requires sign-in. Each test takes a bucket or a mailbox of its own.

use std::path::PathBuf;

use crowdminder::config::Secret;
use crowdminder::mail::MailConfig;

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with `scripts/dev.sh test`, which starts the S3 and SMTP servers")
    })
}

/// A bucket of this test's own on the S3-compatible server the service is configured for
/// (`AWS_ENDPOINT` and the other `AWS_*` settings, exported by the test command).
pub struct TestBucket {
    pub name: String,
}

impl TestBucket {
    pub async fn create() -> Self {
        let endpoint = required("AWS_ENDPOINT");
        let name = format!("cmtest-{}", uuid::Uuid::new_v4().simple());
        let created = client()
            .put(format!("{endpoint}/{name}"))
            .send()
            .await
            .expect("the S3 server answers");
        assert!(
            created.status().is_success(),
            "creating the bucket: {}",
            created.status()
        );
        Self { name }
    }

    /// The `FILE_STORE` of this bucket, under `prefix`.
    pub fn store(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.name)
    }

    /// The keys of every object in the bucket, as the S3 server lists them.
    pub async fn keys(&self) -> Vec<String> {
        use futures_util::TryStreamExt;
        use object_store::ObjectStore;
        let mut keys: Vec<String> = self
            .client()
            .list(None)
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .expect("listing the bucket");
        keys.sort();
        keys
    }

    /// An object's bytes, read straight from the S3 server.
    pub async fn object(&self, key: &str) -> Vec<u8> {
        use object_store::ObjectStoreExt;
        let got = self
            .client()
            .get(&object_store::path::Path::from(key))
            .await
            .unwrap_or_else(|e| panic!("reading {key}: {e}"));
        got.bytes().await.unwrap().to_vec()
    }

    /// The bucket through its own signed client, configured as the service is.
    fn client(&self) -> object_store::aws::AmazonS3 {
        let _ = rustls::crypto::ring::default_provider().install_default();
        object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&self.name)
            .build()
            .expect("an S3 client from the AWS_* settings")
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A mailbox of this test's own on the SMTP server: a login nobody else uses, whose
/// messages the server files apart.
pub struct TestMailbox {
    pub login: String,
    address: String,
    folder: PathBuf,
}

impl TestMailbox {
    pub fn new() -> Self {
        let login = format!("cmtest-{}", uuid::Uuid::new_v4().simple());
        Self {
            folder: PathBuf::from(required("TEST_SMTP_DIR")).join(&login),
            address: required("TEST_SMTP_ADDR"),
            login,
        }
    }

    /// The URL the service sends through, signed in as this mailbox.
    pub fn smtp_url(&self, password: &str) -> String {
        format!("smtp://{}:{password}@{}", self.login, self.address)
    }

    /// Mail settings that deliver into this mailbox.
    pub fn mail_config(&self) -> MailConfig {
        MailConfig {
            smtp_url: Some(Secret::new(self.smtp_url(&format!("pw-{}", self.login)))),
            email_dir: std::env::temp_dir().join("crowdminder-unused-outbox"),
            smtp_timeout_seconds: 10,
        }
    }

    /// The messages the server accepted, in the order it accepted them, as received.
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.folder) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

impl Default for TestMailbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestMailbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}
