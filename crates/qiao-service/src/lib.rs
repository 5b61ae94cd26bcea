//! Qiao's use cases. Each public function is one user-visible action: it checks input and
//! permission (through the pure rules in `qiao_domain::perm`), writes in one transaction
//! through the store's writer (which also records the action's events), and returns only
//! after the commit is durable and its events are published.
//!
//! Handlers in `qiao-api` stay thin: they parse, call one function here, and shape the
//! answer.

pub mod access_cache;
pub mod auth;
pub mod cluster;
pub mod conversations;
pub mod crypto;
pub mod departments;
pub mod drafts;
pub mod files;
pub mod maintenance;
mod membership;
pub mod messages;
pub mod org;
pub mod ratelimit;
pub mod realtime;
pub mod search;
pub mod session_cache;
pub mod setup;
pub mod throttle;
pub mod users;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use qiao_domain::audit::AuditEntry;
use qiao_domain::event::{Audience, EventData};
use qiao_domain::user::User;
use qiao_domain::{AuditId, Millis, Result, UserId};
use qiao_store::{Store, Tx};

pub use auth::Authenticated;

/// Settings the use cases need (a slice of the binary's configuration).
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// A session not used for this long expires.
    pub session_idle_ttl: Duration,
    /// Most sessions one person may hold; signing in beyond this ends the least recently
    /// used one.
    pub max_sessions_per_user: usize,
    pub password: crypto::PasswordParams,
    pub throttle: throttle::ThrottleConfig,
    /// How long a first-owner setup link stays valid.
    pub setup_token_ttl: Duration,
    /// How long committed events stay in the resume log.
    pub event_retention: Duration,
    /// Messages and reactions one person may send.
    pub message_rate: ratelimit::RateConfig,
    /// Other repeatable writes one person may make ([`ratelimit::ACTIONS`] by default).
    pub action_rate: ratelimit::RateConfig,
    /// Searches one person may run ([`ratelimit::SEARCHES`] by default).
    pub search_rate: ratelimit::RateConfig,
    pub files: files::FileConfig,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            session_idle_ttl: Duration::from_secs(30 * 24 * 3600),
            max_sessions_per_user: 50,
            password: crypto::PasswordParams::default(),
            throttle: throttle::ThrottleConfig::default(),
            setup_token_ttl: Duration::from_secs(24 * 3600),
            event_retention: Duration::from_secs(7 * 24 * 3600),
            message_rate: ratelimit::RateConfig { per_second: 20.0, burst: 100.0 },
            action_rate: ratelimit::ACTIONS,
            search_rate: ratelimit::SEARCHES,
            files: files::FileConfig::default(),
        }
    }
}

/// Where a request came from, for sessions and the audit log.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub ip: String,
    pub user_agent: Option<String>,
}

impl Origin {
    pub fn cli() -> Origin {
        Origin { ip: "command-line".into(), user_agent: None }
    }
}

/// Everything the use cases share; cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub config: Arc<ServiceConfig>,
    pub passwords: crypto::PasswordHasher,
    pub throttle: Arc<throttle::LoginThrottle>,
    pub message_rate: Arc<ratelimit::RateLimiter>,
    pub draft_rate: Arc<ratelimit::RateLimiter>,
    /// Realtime connections opened, per person ([`realtime::CONNECT_RATE`]).
    pub connect_rate: Arc<ratelimit::RateLimiter>,
    /// Other repeatable writes, per person ([`ratelimit::ACTIONS`]).
    pub action_rate: Arc<ratelimit::RateLimiter>,
    /// Searches, per person ([`ratelimit::SEARCHES`]).
    pub search_rate: Arc<ratelimit::RateLimiter>,
    /// Password checks, per sign-in name as typed (whether or not an account has it, so that
    /// a refusal tells nothing about which exist) ([`ratelimit::PASSWORD_CHECKS`]).
    pub password_rate: Arc<ratelimit::RateLimiter<String>>,
    /// Sign-in attempts per network address (`ratelimit::address_key`), taken before the
    /// password hash: a flood of new names from one place is bounded too.
    pub sign_in_address_rate: Arc<ratelimit::RateLimiter<String>>,
    pub sessions: Arc<session_cache::SessionCache>,
    pub access: Arc<access_cache::AccessCache>,
    /// Where committed events go (the store's writer publishes into it).
    pub hub: qiao_bus::Hub,
    /// File bytes.
    blobs: qiao_media::BlobStore,
    /// Image decodes at a time (CPU- and memory-heavy).
    image_permits: Arc<tokio::sync::Semaphore>,
    /// Realtime resumes reading the event log at a time (each reads up to the resume window,
    /// thousands of events, holding a read connection meanwhile).
    catchup_permits: Arc<tokio::sync::Semaphore>,
    /// Each person's uploads running at once (`files::UPLOADS_AT_ONCE`).
    uploads_in_flight: Arc<ratelimit::InFlight<UserId>>,
    /// Searches running at once (half the cores, at least one).
    search_permits: Arc<tokio::sync::Semaphore>,
    /// The search index (kept up to date by `search::run_indexer`).
    pub search: Arc<qiao_search::SearchIndex>,
}

impl Services {
    /// `hub` must be the hub the store publishes committed events into.
    pub fn new(
        store: Store,
        hub: qiao_bus::Hub,
        config: ServiceConfig,
        blobs: qiao_media::BlobStore,
        search: Arc<qiao_search::SearchIndex>,
    ) -> Services {
        // Resumes that read the log hold a read connection each: at most half the pool, so
        // requests (and a restarted node's session lookups) still get one.
        let catchups = (store.read_connections() as usize / 2).max(1);
        let sessions = Arc::new(session_cache::SessionCache::new(Duration::from_secs(60), 100_000));
        let access = Arc::new(access_cache::AccessCache::new(200_000));
        let (s, a) = (sessions.clone(), access.clone());
        hub.observe(Arc::new(move |events| {
            s.observe(events);
            a.observe(events);
        }));
        let throttle = Arc::new(throttle::LoginThrottle::new(config.throttle.clone()));
        let t = throttle.clone();
        // Other nodes' failed sign-ins count here too: a lockout holds across the cluster.
        hub.observe_signals(Arc::new(move |signal| match signal {
            qiao_bus::Signal::SignInFailed { account, address, at, .. } => t.failure(account, address, *at),
            qiao_bus::Signal::SignedIn { account, .. } => t.success(account),
            _ => {}
        }));
        Services {
            sessions,
            access,
            hub,
            passwords: crypto::PasswordHasher::new(config.password.clone()),
            throttle,
            message_rate: Arc::new(ratelimit::RateLimiter::new(config.message_rate)),
            draft_rate: Arc::new(ratelimit::RateLimiter::new(drafts::DRAFT_RATE)),
            connect_rate: Arc::new(ratelimit::RateLimiter::new(realtime::CONNECT_RATE)),
            action_rate: Arc::new(ratelimit::RateLimiter::saying(
                config.action_rate,
                "You are doing this too fast; wait a moment and try again.",
            )),
            search_rate: Arc::new(ratelimit::RateLimiter::saying(
                config.search_rate,
                "You are searching too fast; wait a moment and try again.",
            )),
            password_rate: Arc::new(ratelimit::RateLimiter::saying(
                ratelimit::PASSWORD_CHECKS,
                "Too many sign-ins with this name just now; wait a few seconds and try again.",
            )),
            sign_in_address_rate: Arc::new(ratelimit::RateLimiter::saying(
                ratelimit::SIGN_INS_PER_ADDRESS,
                "Too many sign-ins from this network just now; wait a few seconds and try again.",
            )),
            config: Arc::new(config),
            store,
            blobs,
            image_permits: Arc::new(tokio::sync::Semaphore::new(1)),
            catchup_permits: Arc::new(tokio::sync::Semaphore::new(catchups)),
            uploads_in_flight: Arc::new(ratelimit::InFlight::new(files::UPLOADS_AT_ONCE)),
            search_permits: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            )),
            search,
        }
    }
}

/// Wall-clock now in epoch milliseconds.
pub fn now() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A duration in milliseconds, saturating.
pub fn millis(d: Duration) -> Millis {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// An audit entry; written inside the transaction of the action it records.
pub(crate) fn audit_entry(
    at: Millis,
    actor: Option<UserId>,
    action: &str,
    target: Option<(&str, String)>,
    origin: &Origin,
    details: serde_json::Value,
) -> AuditEntry {
    AuditEntry {
        id: AuditId::new(),
        at,
        actor_id: actor,
        action: action.to_owned(),
        target_type: target.as_ref().map(|(t, _)| (*t).to_owned()),
        target_id: target.map(|(_, id)| id),
        ip: Some(origin.ip.clone()),
        details,
    }
}

/// Announces a changed person: to staff (the directory), and to the person themself when
/// they are a guest (who is not staff).
pub(crate) async fn emit_user(tx: &mut Tx, user: &User, created: bool, at: Millis) -> Result<()> {
    let data = if created {
        EventData::UserCreated { user: user.clone() }
    } else {
        EventData::UserUpdated { user: user.clone() }
    };
    tx.append_event(Audience::Staff, None, &data, at).await?;
    if user.role.is_guest() {
        tx.append_event(Audience::User(user.id), None, &data, at).await?;
    }
    Ok(())
}
