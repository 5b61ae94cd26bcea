//! Permission rules as pure functions. The service layer loads the facts (the actor, the
//! target's department path, the actor's membership of a conversation) and asks these
//! functions; nothing here touches storage.

mod conversation;
mod org;

pub use conversation::*;
pub use org::*;
