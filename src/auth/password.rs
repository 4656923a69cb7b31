//! Password hashing (Argon2id, the crate's recommended parameters) off the async threads,
//! on a pool of its own: a fixed number of threads (`PASSWORD_HASH_THREADS`, by default one
//! per core) and a short queue (`PASSWORD_HASH_QUEUE`). Each check holds 19 MiB while it
//! runs, kept by its thread from one check to the next, so however many logins arrive at
//! once, memory stays bounded by the threads; past the queue a request is refused at once
//! as `UNAVAILABLE` rather than left waiting.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use std::cell::RefCell;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

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

/// One password check or hash, run by a pool thread.
type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads and the queue in front of them.
struct HashPool {
    queue: SyncSender<Job>,
}

static POOL: OnceLock<HashPool> = OnceLock::new();

impl HashPool {
    fn start(threads: usize, queue: usize) -> Self {
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("password-{n}"))
                .spawn(move || work(&rx))
                .expect("a password thread starts");
        }
        Self { queue: tx }
    }
}

/// Runs jobs until every sender is gone.
fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let Ok(rx) = rx.lock() else { return };
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        // A job that panics loses its answer (its caller sees an internal error), not the
        // thread.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

/// Threads by default: one per core.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}

/// Sizes the pool: `threads` (0: one per core) and room for `queue` waiting checks (0: four
/// per thread). The first call wins; without one, the defaults are used.
pub fn configure(threads: usize, queue: usize) {
    let threads = if threads == 0 { default_threads() } else { threads };
    let queue = if queue == 0 {
        threads * DEFAULT_QUEUE_PER_THREAD
    } else {
        queue
    };
    let _ = POOL.get_or_init(|| HashPool::start(threads, queue));
}

fn pool() -> &'static HashPool {
    POOL.get_or_init(|| {
        let threads = default_threads();
        HashPool::start(threads, threads * DEFAULT_QUEUE_PER_THREAD)
    })
}

/// Waiting checks per thread when the queue is not set: about half a second of work.
pub const DEFAULT_QUEUE_PER_THREAD: usize = 16;

/// Runs `f` on the pool; `UNAVAILABLE` when its queue is full.
async fn on_pool<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    match pool().queue.try_send(job) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            tracing::warn!("password checks queue full: refused");
            return Err(AppError::Unavailable);
        }
        Err(TrySendError::Disconnected(_)) => {
            return Err(AppError::internal(anyhow::anyhow!("password threads stopped")));
        }
    }
    rx.await
        .map_err(|_| AppError::internal(anyhow::anyhow!("a password check was dropped")))
}

thread_local! {
    /// This thread's Argon2 working memory, kept from one check to the next. Allocating
    /// 19 MiB per check left memory behind in the allocator's arenas, many times over.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// A stored hash asking for more memory than this (blocks of 1 KiB, four times what new
/// hashes use) is not one of ours, and never matches.
const MAX_BLOCKS: usize = 4 * Params::DEFAULT_M_COST as usize;

/// Runs `argon2` over `password` and `salt` into `out`, in this thread's memory.
fn run(argon2: &Argon2, params: &Params, password: &[u8], salt: &[u8], out: &mut [u8]) -> argon2::Result<()> {
    let blocks = params.block_count();
    MEMORY.with_borrow_mut(|memory| {
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
    })
}

fn hash_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let params = Params::default();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = Salt::generate();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    run(&argon2, &params, password.as_bytes(), &salt, &mut out)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt),
        hash: Some(Output::new(&out)?),
    };
    Ok(hash.to_string())
}

/// Whether `password` gives `stored`'s hash under `stored`'s own algorithm and parameters
/// (compared in constant time).
fn matches(stored: &PasswordHash, password: &[u8]) -> bool {
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(stored.algorithm.as_str()) else {
        return false;
    };
    let version = match stored.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(stored) else {
        return false;
    };
    if params.block_count() > MAX_BLOCKS {
        return false;
    }
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    run(&argon2, &params, password, salt, &mut out).is_ok()
        && Output::new(&out).is_ok_and(|computed| computed == *expected)
}

/// Hashes a new password (validate it first).
pub async fn hash(password: Secret) -> AppResult<String> {
    on_pool(move || hash_blocking(password.expose()))
        .await?
        .map_err(|e| AppError::internal(anyhow::anyhow!("hashing a password: {e}")))
}

/// Whether `password` matches `stored`. With no stored hash the dummy is verified instead,
/// and the answer is always no.
pub async fn verify(stored: Option<String>, password: Secret) -> AppResult<bool> {
    on_pool(move || {
        let candidate = stored.as_deref().and_then(|s| PasswordHash::new(s).ok());
        match &candidate {
            Some(hash) => matches(hash, password.expose().as_bytes()),
            None => {
                let dummy = PasswordHash::new(&DUMMY_HASH).expect("dummy hash parses");
                let _ = matches(&dummy, password.expose().as_bytes());
                false
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only_and_reads_as_the_standard_phc_string() {
        let hash = hash_blocking("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(matches(&parsed, b"correct horse battery"));
        assert!(!matches(&parsed, b"correct horse batterY"));
        assert!(!matches(&parsed, b""));
    }

    #[test]
    fn hashes_made_by_the_crates_own_hasher_still_verify() {
        use argon2::password_hash::PasswordHasher;
        let theirs = Argon2::default().hash_password(b"an older password").unwrap();
        assert!(matches(&theirs, b"an older password"));
        assert!(!matches(&theirs, b"another password"));
        // Other parameters than ours, as a hash made before a change of defaults would have.
        let params = Params::new(8 * 1024, 3, 1, None).unwrap();
        let older = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"an older password")
            .unwrap();
        assert!(matches(&older, b"an older password"));
    }

    #[test]
    fn a_stored_hash_asking_for_gigabytes_never_matches() {
        let hash = hash_blocking("some password").unwrap();
        let greedy = hash.replace("m=19456", "m=4194304");
        assert!(!matches(&PasswordHash::new(&greedy).unwrap(), b"some password"));
    }
}
