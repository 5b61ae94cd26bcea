use qiao_domain::audit::AuditEntry;
use qiao_domain::{AuditId, UserId};
use qiao_store::{Store, audit};

use crate::{Sink, T0};

pub async fn record_and_page(store: Store, _: Sink) {
    let actor = UserId::new();
    for i in 0..5 {
        let e = AuditEntry {
            id: AuditId::new(),
            at: T0 + i,
            actor_id: if i == 0 { None } else { Some(actor) },
            action: format!("test.action{i}"),
            target_type: Some("user".into()),
            target_id: Some(format!("u{i}")),
            ip: Some("127.0.0.1".into()),
            details: serde_json::json!({ "n": i, "名字": "值" }),
        };
        store
            .write(move |tx| {
                let e = e.clone();
                Box::pin(async move { audit::record(tx, &e).await })
            })
            .await
            .unwrap();
    }
    let mut r = store.reader().await.unwrap();
    let first = audit::list(&mut r, None, 3).await.unwrap();
    assert_eq!(first.iter().map(|e| e.at).collect::<Vec<_>>(), vec![T0 + 4, T0 + 3, T0 + 2]);
    assert_eq!(first[0].details["名字"], "值");
    let last = first.last().unwrap();
    let rest = audit::list(&mut r, Some((last.at, last.id)), 10).await.unwrap();
    assert_eq!(rest.iter().map(|e| e.at).collect::<Vec<_>>(), vec![T0 + 1, T0]);
    assert_eq!(rest[1].actor_id, None);
}
