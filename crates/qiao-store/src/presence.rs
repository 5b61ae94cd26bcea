//! Presence settings a person chose, which must outlive a restart of every node: for now
//! do-not-disturb. Who is connected, online or away lives in the nodes' memory only.

use qiao_domain::{Millis, Result, UserId};
use uuid::Uuid;

use crate::conn::{Db, exec, q};

/// Records a do-not-disturb setting made at `at` (ms), unless a later one is stored already
/// (on wins a tie, as it does between nodes): settings written out of order end as the latest.
pub async fn set_do_not_disturb(db: &mut dyn Db, user: UserId, on: bool, at: Millis) -> Result<()> {
    exec!(
        db,
        sqlx::query(
            "INSERT INTO presence_settings (user_id, do_not_disturb, set_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET do_not_disturb = excluded.do_not_disturb, set_at = excluded.set_at \
             WHERE excluded.set_at > presence_settings.set_at \
             OR (excluded.set_at = presence_settings.set_at AND excluded.do_not_disturb AND NOT presence_settings.do_not_disturb)"
        )
        .bind(user.0)
        .bind(on)
        .bind(at)
    )?;
    Ok(())
}

/// Everyone who has do-not-disturb on, with when they turned it on.
pub async fn do_not_disturb_on(db: &mut dyn Db) -> Result<Vec<(UserId, Millis)>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid, i64)>("SELECT user_id, set_at FROM presence_settings WHERE do_not_disturb")
    )?;
    Ok(rows.into_iter().map(|(u, at)| (UserId(u), at)).collect())
}
