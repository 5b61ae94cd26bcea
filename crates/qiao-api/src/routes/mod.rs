//! HTTP handlers, one module per resource. Each handler parses, calls one service
//! function and shapes the answer; its `utoipa::path` attribute is its OpenAPI entry.

pub mod auth;
pub mod conversations;
pub mod departments;
pub mod files;
pub mod me;
pub mod messages;
pub mod ops;
pub mod org;
pub mod search;
pub mod setup;
pub mod users;

use serde::{Deserialize, Deserializer};

/// For PATCH fields where `null` (clear) differs from absent (leave as is).
pub(crate) fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
