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
    /// Tokens whose signature and claims were found good, by their text: a client sends the
    /// same token with every request, and only its times need checking again. Tokens that
    /// failed are not kept, so a flood of forged ones does not fill it.
    verified: moka::sync::Cache<String, Verified>,
}

/// What a good token says, kept for checking it again.
#[derive(Debug, Clone, Copy)]
struct Verified {
    tenant_id: i64,
    subject: TokenSubject,
    nbf: i64,
    exp: i64,
}

/// How many verified tokens are kept, and for how long at most once unused.
const VERIFIED_TOKENS: u64 = 20_000;
const VERIFIED_IDLE: std::time::Duration = std::time::Duration::from_secs(600);

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
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_TOKENS)
                .time_to_idle(VERIFIED_IDLE)
                .build(),
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
        let verified = match self.verified.get(token) {
            Some(verified) => {
                // As the full check has it: expired once `exp` is more than the leeway
                // past, not valid yet while `nbf` is more than the leeway ahead.
                let now = Utc::now().timestamp();
                let leeway = i64::try_from(self.validation.leeway).unwrap_or(0);
                if verified.exp < now - leeway {
                    return Err(AppError::Unauthenticated("the token has expired"));
                }
                if verified.nbf > now + leeway {
                    return Err(AppError::Unauthenticated("the token is not valid yet"));
                }
                verified
            }
            None => {
                let verified = self.verify_fully(token)?;
                self.verified.insert(token.to_owned(), verified);
                verified
            }
        };
        if verified.tenant_id != tenant_id {
            return Err(AppError::Unauthenticated("the token belongs to another tenant"));
        }
        Ok(verified.subject)
    }

    /// The signature, issuer and times checked, and the claims read.
    fn verify_fully(&self, token: &str) -> AppResult<Verified> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            match e.kind() {
                ErrorKind::ExpiredSignature => AppError::Unauthenticated("the token has expired"),
                ErrorKind::ImmatureSignature => AppError::Unauthenticated("the token is not valid yet"),
                _ => AppError::Unauthenticated(super::FORGED_TOKEN),
            }
        })?;
        let user_id = data
            .claims
            .sub
            .parse()
            .map_err(|_| AppError::Unauthenticated(super::FORGED_TOKEN))?;
        Ok(Verified {
            tenant_id: data.claims.tid,
            subject: TokenSubject {
                user_id,
                version: data.claims.ver,
            },
            nbf: data.claims.nbf,
            exp: data.claims.exp,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(&ServiceConfig::with_secret(
            "a-secret-of-at-least-thirty-two-bytes!",
        ))
        .unwrap()
    }

    #[test]
    fn a_token_verified_once_is_checked_again_for_its_tenant_and_times_only() {
        let keys = keys();
        let subject = TokenSubject {
            user_id: 7,
            version: 2,
        };
        let (token, _) = keys.issue(3, subject).unwrap();
        assert_eq!(keys.verify(&token, 3).unwrap(), subject);
        assert_eq!(keys.verified.get(&token).map(|v| v.subject), Some(subject));
        assert_eq!(
            keys.verify(&token, 3).unwrap(),
            subject,
            "again, from what was kept"
        );
        assert!(matches!(
            keys.verify(&token, 4),
            Err(AppError::Unauthenticated("the token belongs to another tenant"))
        ));
        // A forged token is refused and not kept.
        let forged = format!("{}x", &token[..token.len() - 1]);
        assert!(keys.verify(&forged, 3).is_err());
        assert!(keys.verified.get(&forged).is_none());
        // Kept tokens still expire, and are not valid before their time, as the full check has it.
        let now = Utc::now().timestamp();
        let kept = |nbf, exp| Verified {
            tenant_id: 3,
            subject,
            nbf,
            exp,
        };
        keys.verified.insert("expired".into(), kept(now - 3600, now - 31));
        keys.verified.insert("in-leeway".into(), kept(now + 29, now - 29));
        keys.verified.insert("early".into(), kept(now + 31, now + 3600));
        assert!(matches!(
            keys.verify("expired", 3),
            Err(AppError::Unauthenticated("the token has expired"))
        ));
        assert_eq!(keys.verify("in-leeway", 3).unwrap(), subject);
        assert!(matches!(
            keys.verify("early", 3),
            Err(AppError::Unauthenticated("the token is not valid yet"))
        ));
    }
}
