//! Secrets: random tokens, their hashes, and password hashing off the async runtime.

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use qiao_domain::{Error, Result};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// The longest a password check waits for a hashing slot.
const PERMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// `n` random bytes from the operating system, URL-safe base64 encoded.
pub fn random_token(n: usize) -> Result<String> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| Error::internal(format!("the system random source failed: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// A new session token: 256 random bits with a recognisable prefix (so leaked tokens can be
/// found by secret scanners).
pub fn new_session_token() -> Result<String> {
    Ok(format!("qiao_{}", random_token(32)?))
}

/// SHA-256 of a token: what the database stores instead of the token.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Constant-time comparison for secrets of equal length.
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A readable temporary password: 16 characters from an unambiguous alphabet (≈ 80 bits).
pub fn temporary_password() -> Result<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut buf = [0u8; 16];
    getrandom::fill(&mut buf).map_err(|e| Error::internal(format!("the system random source failed: {e}")))?;
    Ok(buf.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect())
}

/// Argon2id cost parameters (OWASP's recommendation by default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordParams {
    pub memory_kib: u32,
    pub iterations: u32,
    /// How many hashes may run at once (each takes a blocking thread and `memory_kib`).
    pub concurrency: usize,
}

impl Default for PasswordParams {
    fn default() -> Self {
        PasswordParams {
            memory_kib: 19 * 1024,
            iterations: 2,
            concurrency: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// Hashes and verifies passwords on blocking threads, a bounded number at a time, so that a
/// burst of sign-ins cannot starve the async runtime or exhaust memory.
#[derive(Clone)]
pub struct PasswordHasher {
    params: PasswordParams,
    permits: Arc<Semaphore>,
}

impl PasswordHasher {
    pub fn new(params: PasswordParams) -> PasswordHasher {
        let permits = Arc::new(Semaphore::new(params.concurrency.max(1)));
        PasswordHasher { params, permits }
    }

    fn argon2(params: &PasswordParams) -> Result<Argon2<'static>> {
        let p = Params::new(params.memory_kib, params.iterations, 1, None)
            .map_err(|e| Error::internal(format!("invalid Argon2 parameters: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
    }

    /// The PHC string for `password`.
    pub async fn hash(&self, password: &str) -> Result<String> {
        let _permit = self.permit().await?;
        let params = self.params.clone();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            let hash = Self::argon2(&params)?
                .hash_password(password.as_bytes())
                .map_err(|e| Error::internal(format!("hashing failed: {e}")))?;
            Ok(hash.to_string())
        })
        .await
        .map_err(Error::internal)?
    }

    /// A turn to hash, waited for at most PERMIT_WAIT: a flood of sign-ins (each a hash, for
    /// unknown names too) answers 503 instead of queueing while real ones time out.
    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        crate::ratelimit::turn(
            &self.permits,
            PERMIT_WAIT,
            "qiao_password_checks_refused_total",
            "The server is busy checking passwords; try again in a moment.",
        )
        .await
    }

    /// Whether `password` matches `phc`. A malformed stored hash counts as a mismatch.
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool> {
        let _permit = self.permit().await?;
        let params = self.params.clone();
        let (password, phc) = (password.to_owned(), phc.to_owned());
        tokio::task::spawn_blocking(move || {
            let Ok(parsed) = PasswordHash::new(&phc) else {
                return Ok(false);
            };
            Ok(Self::argon2(&params)?.verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
        .map_err(Error::internal)?
    }

    /// Whether a stored hash was made with other parameters and should be redone.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let current = format!("m={},t={},p=1", self.params.memory_kib, self.params.iterations);
        !(phc.starts_with("$argon2id$") && phc.contains(&current))
    }

    /// A valid hash of nothing anyone knows: verified against when the account does not
    /// exist, so that a missing account costs the same time as a wrong password.
    pub async fn dummy_hash(&self) -> &'static str {
        static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
        // Parameters differ between processes only by configuration; one hash per process.
        match DUMMY.get_or_try_init(|| async { self.hash("qiao-dummy-password-never-matches").await }).await {
            Ok(s) => s.as_str(),
            Err(_) => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> PasswordHasher {
        PasswordHasher::new(PasswordParams { memory_kib: 256, iterations: 1, concurrency: 2 })
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = fast();
        let phc = h.hash("correct horse 电池").await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(h.verify("correct horse 电池", &phc).await.unwrap());
        assert!(!h.verify("wrong", &phc).await.unwrap());
        assert!(!h.verify("x", "not a hash").await.unwrap());
        assert!(!h.needs_rehash(&phc));
        let stronger = PasswordHasher::new(PasswordParams { memory_kib: 512, iterations: 1, concurrency: 1 });
        assert!(stronger.needs_rehash(&phc));
        assert!(!h.dummy_hash().await.is_empty());
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = new_session_token().unwrap();
        let b = new_session_token().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("qiao_") && a.len() == 5 + 43);
        assert_eq!(token_hash(&a).len(), 32);
        assert_ne!(token_hash(&a), token_hash(&b));
        assert!(secrets_equal(b"abc", b"abc"));
        assert!(!secrets_equal(b"abc", b"abd"));
        assert!(!secrets_equal(b"abc", b"ab"));
        let p = temporary_password().unwrap();
        assert_eq!(p.chars().count(), 16);
    }
}
