//! Password hashing (Argon2id, the crate's recommended parameters) off the async threads.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::config::Secret;
use crate::error::{AppError, AppResult};

pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Verified in place of a missing or unusable hash, so an unknown email costs the same
/// time as a wrong password.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_blocking("crowdminder-dummy-password").expect("hashing works"));

pub fn validate_new_password(field: &str, password: &Secret) -> AppResult<()> {
    let p = password.expose();
    if p.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AppError::bad_input(
            field,
            format!("a password has at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if p.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::bad_input(
            field,
            format!("a password has at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn hash_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let hash: PasswordHash = Argon2::default().hash_password(password.as_bytes())?;
    Ok(hash.to_string())
}

/// Hashes a new password (validate it first).
pub async fn hash(password: Secret) -> AppResult<String> {
    tokio::task::spawn_blocking(move || hash_blocking(password.expose()))
        .await
        .map_err(AppError::internal)?
        .map_err(|e| AppError::internal(anyhow::anyhow!("hashing a password: {e}")))
}

/// Whether `password` matches `stored`. With no stored hash the dummy is verified instead,
/// and the answer is always no.
pub async fn verify(stored: Option<String>, password: Secret) -> AppResult<bool> {
    tokio::task::spawn_blocking(move || {
        let candidate = stored.as_deref().and_then(|s| PasswordHash::new(s).ok());
        let matches = match &candidate {
            Some(hash) => Argon2::default()
                .verify_password(password.expose().as_bytes(), hash)
                .is_ok(),
            None => {
                let dummy = PasswordHash::new(&DUMMY_HASH).expect("dummy hash parses");
                let _ = Argon2::default().verify_password(password.expose().as_bytes(), &dummy);
                false
            }
        };
        matches && candidate.is_some()
    })
    .await
    .map_err(AppError::internal)
}
