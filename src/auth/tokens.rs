//! Bearer credentials: login JWTs (bound to one tenant by its id) and API tokens (random
//! secrets stored as SHA-256 in the tenant's own schema).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::ServiceConfig;
use crate::error::{AppError, AppResult};

/// Prefix of every API token, so leaked ones are easy to scan for.
pub const API_TOKEN_PREFIX: &str = "cmt_";
const ISSUER: &str = "crowdminder";

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id within the tenant.
    pub sub: String,
    /// The tenant's registry id: a token works only on that tenant's hosts.
    pub tid: i64,
    pub iat: i64,
    /// Not valid before: the moment of issue. Tokens issued before it was written have
    /// none, and are checked as ever.
    #[serde(default)]
    pub nbf: i64,
    pub exp: i64,
    pub iss: String,
    /// The user's token version at issue; signing out, changing the password or being
    /// deactivated moves it on, ending every token issued before.
    #[serde(default)]
    pub ver: i64,
    /// A random id, so no two tokens are the same even when issued in the same second.
    #[serde(default)]
    pub jti: String,
}

/// Whom a valid login token names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenSubject {
    pub user_id: i64,
    pub version: i64,
}

/// Signs and checks login tokens.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: chrono::Duration,
}

impl JwtKeys {
    pub fn new(config: &ServiceConfig) -> anyhow::Result<Self> {
        let secret = config.jwt_secret.expose().as_bytes();
        anyhow::ensure!(secret.len() >= 32, "JWT_SECRET must have at least 32 bytes");
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl: chrono::Duration::from_std(config.jwt_ttl())?,
        })
    }

    pub fn issue(&self, tenant_id: i64, subject: TokenSubject) -> AppResult<(String, DateTime<Utc>)> {
        let now = Utc::now();
        let expires_at = now + self.ttl;
        let claims = Claims {
            sub: subject.user_id.to_string(),
            tid: tenant_id,
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: expires_at.timestamp(),
            iss: ISSUER.to_owned(),
            ver: subject.version,
            jti: {
                let mut bytes = [0u8; 12];
                rand::rng().fill_bytes(&mut bytes);
                URL_SAFE_NO_PAD.encode(bytes)
            },
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AppError::internal)?;
        Ok((token, expires_at))
    }

    /// Whom a valid token of `tenant_id` names. Whether its version is still the user's is
    /// for the caller to check against the database.
    pub fn verify(&self, token: &str, tenant_id: i64) -> AppResult<TokenSubject> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            match e.kind() {
                ErrorKind::ExpiredSignature => AppError::Unauthenticated("the token has expired"),
                ErrorKind::ImmatureSignature => AppError::Unauthenticated("the token is not valid yet"),
                _ => AppError::Unauthenticated(super::FORGED_TOKEN),
            }
        })?;
        if data.claims.tid != tenant_id {
            return Err(AppError::Unauthenticated("the token belongs to another tenant"));
        }
        let user_id = data
            .claims
            .sub
            .parse()
            .map_err(|_| AppError::Unauthenticated(super::FORGED_TOKEN))?;
        Ok(TokenSubject {
            user_id,
            version: data.claims.ver,
        })
    }
}

/// A fresh API token: the secret to show once, and what is stored.
pub struct NewApiToken {
    pub secret: String,
    pub hash: Vec<u8>,
    pub display_prefix: String,
}

pub fn new_api_token() -> NewApiToken {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{API_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    NewApiToken {
        hash: hash_api_token(&secret),
        display_prefix: secret[..API_TOKEN_PREFIX.len() + 6].to_owned(),
        secret,
    }
}

/// API tokens carry 256 random bits, so a plain SHA-256 is enough to store them safely.
pub fn hash_api_token(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}
