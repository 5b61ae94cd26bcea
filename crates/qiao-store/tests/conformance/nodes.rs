//! The registry of nodes serving one database.

use qiao_store::Store;
use qiao_store::nodes::{self, Node};

use crate::{Sink, T0};

fn node(id: &str, at: i64) -> Node {
    Node {
        id: id.into(),
        host: "host-1".into(),
        data_dir: "/var/lib/qiao".into(),
        bus: true,
        shared_files: false,
        version: "0.1.0+schema10".into(),
        started_at: at,
        seen_at: at,
    }
}

async fn write<F>(store: &Store, f: F)
where
    F: for<'t> Fn(&'t mut qiao_store::Tx) -> qiao_store::BoxFuture<'t, qiao_domain::Result<()>> + Send + Sync + 'static,
{
    store.write(f).await.unwrap();
}

pub async fn nodes_register_refresh_and_leave(store: Store, _: Sink) {
    write(&store, |tx| Box::pin(async move { nodes::register(tx, &node("a", T0)).await })).await;
    write(&store, |tx| Box::pin(async move { nodes::register(tx, &node("b", T0 + 1)).await })).await;
    let mut r = store.reader().await.unwrap();
    assert_eq!(nodes::live(&mut r, T0).await.unwrap(), vec![node("a", T0), node("b", T0 + 1)]);
    drop(r);
    // b keeps beating, a falls silent.
    let beat = store.write(|tx| Box::pin(async move { nodes::heartbeat(tx, "b", T0 + 30_000).await })).await.unwrap();
    assert!(beat);
    let unknown = store.write(|tx| Box::pin(async move { nodes::heartbeat(tx, "zz", T0).await })).await.unwrap();
    assert!(!unknown, "an unknown node must register again");
    let mut r = store.reader().await.unwrap();
    let live = nodes::live(&mut r, T0 + 10_000).await.unwrap();
    assert_eq!(live.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), vec!["b"]);
    assert_eq!(live[0].seen_at, T0 + 30_000);
    drop(r);
    // Re-registering keeps the original start; leaving removes it and sweeps the stale.
    write(&store, |tx| Box::pin(async move { nodes::register(tx, &node("b", T0 + 40_000)).await })).await;
    write(&store, |tx| Box::pin(async move { nodes::remove(tx, "b", T0 + 5_000).await })).await;
    let mut r = store.reader().await.unwrap();
    assert!(nodes::live(&mut r, 0).await.unwrap().is_empty(), "b left and a was stale");
}
