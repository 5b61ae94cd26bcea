//! Qiao's vocabulary, shared by every other crate: typed ids, entities, validation rules,
//! the error codes and the permission rules. Everything here is pure: no IO, no clocks, no
//! randomness (callers pass `now` and fresh ids in), so it is unit-tested without a server.
//!
//! Types that derive `Serialize` here are part of the public API (HTTP and WebSocket); the
//! OpenAPI drift test fails when one of them changes shape.

pub mod audit;
pub mod conversation;
pub mod error;
pub mod event;
pub mod file;
pub mod fold;
pub mod ids;
pub mod message;
pub mod org;
pub mod perm;
pub mod pinyin;
pub mod session;
pub mod text;
pub mod user;

pub use error::{Error, ErrorCode, Result};
pub use ids::*;

/// Milliseconds since the Unix epoch, UTC. Every timestamp in storage and on the wire.
pub type Millis = i64;
