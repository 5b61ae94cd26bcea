//! The storage conformance suite: every public storage function, on SQLite always and on
//! PostgreSQL whenever `QIAO_TEST_POSTGRES_URL` is set (CI always sets it).
//!
//! Each test is an `async fn(Store, Sink)` listed in `conformance!` below, which generates
//! one `#[tokio::test]` per engine. `coverage.rs` fails if a public storage function is not
//! exercised here.

mod audit;
mod coverage;
mod departments;
mod events;
mod files;
mod messaging;
mod nodes;
mod org;
mod sessions;
mod users;
mod writer;

use std::sync::{Arc, Mutex};

use qiao_domain::event::Event;
use qiao_domain::org::Department;
use qiao_domain::{DepartmentId, Millis};
use qiao_store::testing::TestDb;
use qiao_store::{Store, StoreConfig};

/// Events the store published, in order.
#[derive(Clone, Default)]
pub struct Sink(Arc<Mutex<Vec<Event>>>);

impl Sink {
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

pub async fn open(db: &TestDb) -> (Store, Sink) {
    let sink = Sink::default();
    let s = sink.clone();
    // Commits paced as the server runs them, so the writer's loop is tested as it runs.
    let config = StoreConfig { commit_gap: std::time::Duration::from_millis(1), ..StoreConfig::new(&db.url) };
    let store =
        Store::open(&config, Arc::new(move |evs| s.0.lock().unwrap().extend(evs))).await.expect("open the store");
    (store, sink)
}

pub const T0: Millis = 1_763_700_000_000;

/// Creates the organisation; returns its root department.
pub async fn seed_org(store: &Store) -> Department {
    let root =
        Department {
            id: DepartmentId::new(), parent_id: None, name: "Acme 桥".into(), created_at: T0, updated_at: T0
        };
    let r = root.clone();
    store
        .write(move |tx| {
            let r = r.clone();
            Box::pin(async move { qiao_store::org::create(tx, "Acme", &r).await })
        })
        .await
        .unwrap();
    root
}

/// Adds a department under `parent`.
pub async fn add_department(store: &Store, parent: DepartmentId, name: &str) -> Department {
    let d = Department {
        id: DepartmentId::new(),
        parent_id: Some(parent),
        name: name.into(),
        created_at: T0,
        updated_at: T0,
    };
    let dd = d.clone();
    store
        .write(move |tx| {
            let dd = dd.clone();
            Box::pin(async move { qiao_store::departments::insert(tx, &dd).await })
        })
        .await
        .unwrap();
    d
}

macro_rules! conformance {
    ($($module:ident :: $test:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let db = qiao_store::testing::TestDb::sqlite();
                    let (store, sink) = crate::open(&db).await;
                    crate::$module::$test(store.clone(), sink).await;
                    store.close().await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let Some(db) = qiao_store::testing::TestDb::postgres().await else {
                        eprintln!("QIAO_TEST_POSTGRES_URL is not set; skipping the PostgreSQL run");
                        return;
                    };
                    let (store, sink) = crate::open(&db).await;
                    crate::$module::$test(store.clone(), sink).await;
                    store.close().await;
                }
            )*
        }
    };
}

conformance!(
    org::organisation_and_setup_tokens,
    departments::tree_operations,
    departments::occupancy_counts_children_and_people,
    users::insert_get_and_credentials,
    users::update_and_uniqueness,
    users::directory_listing,
    users::do_not_disturb_latest_setting_wins,
    users::a_reference_removed_meanwhile_is_a_conflict,
    sessions::lifecycle,
    sessions::expiry_and_pruning,
    events::log_reads_and_pruning,
    events::events_for_a_member,
    events::a_snapshot_does_not_move,
    audit::record_and_page,
    writer::positions_are_gap_free_under_concurrency,
    writer::a_vanished_writer_cannot_hold_the_stream_head,
    writer::failed_operation_is_isolated,
    writer::a_failed_commit_leaves_nothing_behind,
    writer::closed_store_refuses_writes,
    writer::grouped_sends_are_numbered_in_order,
    writer::sends_and_operations_share_batches,
    writer::settled_waits_for_queued_writes,
    writer::abandoned_writes_are_not_made,
    writer::queued_writes_finish_before_a_close,
    messaging::conversations_and_members,
    messaging::announcement_sends_need_a_poster,
    messaging::channels_to_hand_over,
    messaging::department_links_and_dm_keys,
    messaging::messages_history_and_threads,
    messaging::reactions_pins_mentions_and_unread,
    messaging::thread_following,
    messaging::drafts_per_conversation_and_thread,
    files::files_lifecycle,
    files::blob_claims_keep_uploads_and_clean_up_apart,
    files::blob_removals_are_recorded_until_cleared,
    nodes::nodes_register_refresh_and_leave,
);

/// Data survives closing and reopening (the writer's commits are durable).
#[tokio::test]
async fn sqlite_data_survives_reopen() {
    let db = TestDb::sqlite();
    let (store, _) = open(&db).await;
    let root = seed_org(&store).await;
    // A directory key as an older version wrote it (not folded) is rewritten at the next open.
    let chan = users::insert(&store, users::new_user("chanwai", "陳偉", root.id)).await;
    store
        .write(move |tx| {
            Box::pin(async move { qiao_store::users::set_search_key(tx, chan.id, "chanwai\n陳偉\n", None).await })
        })
        .await
        .unwrap();
    assert_eq!(qiao_store::users::stale_search_keys(&mut store.reader().await.unwrap()).await.unwrap().len(), 1);
    // And a channel's key as a version before channel keys left it (empty).
    let channel = messaging::create(&store, qiao_domain::conversation::ConversationKind::Public, "會議室").await;
    store
        .write(move |tx| {
            Box::pin(async move { qiao_store::conversations::set_search_key(tx, channel, "", None).await })
        })
        .await
        .unwrap();
    let stale = qiao_store::conversations::stale_search_keys(&mut store.reader().await.unwrap()).await.unwrap();
    assert_eq!(stale, [(channel, String::new(), "会议室\nhuiyishi\nhui yi shi\nhys\n".to_owned())]);
    // Replacing a key other than the one stored changes nothing (the reopen below does it).
    store
        .write(move |tx| {
            Box::pin(async move { qiao_store::conversations::set_search_key(tx, channel, "x\n", Some("other")).await })
        })
        .await
        .unwrap();
    let again = qiao_store::conversations::stale_search_keys(&mut store.reader().await.unwrap()).await.unwrap();
    assert_eq!(again, stale);
    store.close().await;
    let (store, _) = open(&db).await;
    let mut r = store.reader().await.unwrap();
    assert!(qiao_store::users::stale_search_keys(&mut r).await.unwrap().is_empty());
    assert!(qiao_store::conversations::stale_search_keys(&mut r).await.unwrap().is_empty());
    let org = qiao_store::org::get(&mut r).await.unwrap().unwrap();
    assert_eq!(org.root_department_id, root.id);
    drop(r);
    store.ping().await.unwrap();
    store.close().await;
}
