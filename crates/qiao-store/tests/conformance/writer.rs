//! The group-commit writer: order, isolation of failures, shutdown.

use std::collections::HashSet;

use qiao_domain::event::{Audience, EventData};
use qiao_domain::{DepartmentId, Error, ErrorCode};
use qiao_store::{Store, events};

use crate::{Sink, T0};

/// Many concurrent writers: every event gets a distinct position, positions are 1..=n with
/// no gaps, and the sink sees them in order.
pub async fn positions_are_gap_free_under_concurrency(store: Store, sink: Sink) {
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .write(move |tx| {
                    Box::pin(async move {
                        let data = EventData::DepartmentDeleted { department_id: DepartmentId::new() };
                        tx.append_event(Audience::Staff, None, &data, T0 + i).await
                    })
                })
                .await
                .unwrap()
        }));
    }
    let mut positions = HashSet::new();
    for t in tasks {
        assert!(positions.insert(t.await.unwrap()), "duplicate position");
    }
    assert_eq!(positions, (1..=200).collect::<HashSet<i64>>());
    let published: Vec<i64> = sink.take().into_iter().map(|e| e.pos).collect();
    assert_eq!(published, (1..=200).collect::<Vec<i64>>(), "published in order, exactly once");
    let mut r = store.reader().await.unwrap();
    assert_eq!(events::head(&mut r).await.unwrap(), 200);
}

/// A failing operation gets its own error; operations batched with it still commit, and its
/// events are never published.
pub async fn failed_operation_is_isolated(store: Store, sink: Sink) {
    let mut tasks = Vec::new();
    for i in 0..60i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .write(move |tx| {
                    Box::pin(async move {
                        let data = EventData::DepartmentDeleted { department_id: DepartmentId::new() };
                        let pos = tx.append_event(Audience::Staff, None, &data, T0 + i).await?;
                        if i % 3 == 0 {
                            // Fails after writing: its event must vanish with it.
                            return Err(Error::new(ErrorCode::Conflict));
                        }
                        Ok(pos)
                    })
                })
                .await
        }));
    }
    let mut ok = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(i % 3, 0);
                assert_eq!(e.code, ErrorCode::Conflict);
            }
        }
    }
    assert_eq!(ok, 40);
    let published: Vec<i64> = sink.take().into_iter().map(|e| e.pos).collect();
    assert_eq!(published, (1..=40).collect::<Vec<i64>>());
    let mut r = store.reader().await.unwrap();
    assert_eq!(events::head(&mut r).await.unwrap(), 40);
    assert_eq!(events::range(&mut r, 0, 100).await.unwrap().len(), 40);
}

pub async fn closed_store_refuses_writes(store: Store, _: Sink) {
    store.ping().await.unwrap();
    store.close().await;
    let err = store.write(|_tx| Box::pin(async { Ok(()) })).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Unavailable);
    assert!(store.ping().await.is_err());
}
