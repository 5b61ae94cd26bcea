use qiao_store::{Store, org};

use crate::{Sink, T0, seed_org};

pub async fn organisation_and_setup_tokens(store: Store, _: Sink) {
    let mut r = store.reader().await.unwrap();
    assert!(org::get(&mut r).await.unwrap().is_none());
    drop(r);

    let root = seed_org(&store).await;
    // A second organisation is refused.
    let again = root.clone();
    let err = store
        .write(move |tx| {
            let d = again.clone();
            Box::pin(async move { org::create(tx, "Other", &d).await })
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, qiao_domain::ErrorCode::Conflict);

    let mut r = store.reader().await.unwrap();
    let o = org::get(&mut r).await.unwrap().unwrap();
    assert_eq!((o.name.as_str(), o.root_department_id, o.setup_complete), ("Acme", root.id, false));
    drop(r);

    store
        .write(|tx| {
            Box::pin(async move {
                org::rename(tx, "Acme 中国").await?;
                org::add_setup_token(tx, b"live", T0, T0 + 1000).await?;
                org::add_setup_token(tx, b"stale", T0 - 2000, T0 - 1000).await?;
                org::add_setup_token(tx, b"other", T0, T0 + 1000).await
            })
        })
        .await
        .unwrap();
    let mut r = store.reader().await.unwrap();
    assert!(org::setup_token_valid(&mut r, b"live", T0).await.unwrap());
    assert!(!org::setup_token_valid(&mut r, b"stale", T0).await.unwrap());
    assert!(!org::setup_token_valid(&mut r, b"nope", T0).await.unwrap());
    assert!(!org::setup_token_valid(&mut r, b"live", T0 + 1000).await.unwrap(), "expired at its time");
    drop(r);
    let (live, stale, unknown, reused) = store
        .write(|tx| {
            Box::pin(async move {
                Ok((
                    org::consume_setup_token(tx, b"live", T0).await?,
                    org::consume_setup_token(tx, b"stale", T0).await?,
                    org::consume_setup_token(tx, b"nope", T0).await?,
                    org::consume_setup_token(tx, b"live", T0).await?,
                ))
            })
        })
        .await
        .unwrap();
    assert!(live);
    assert!(!stale, "expired tokens are refused");
    assert!(!unknown);
    assert!(!reused, "tokens are single use");

    store.write(|tx| Box::pin(org::clear_setup_tokens(tx))).await.unwrap();
    let other = store.write(|tx| Box::pin(org::consume_setup_token(tx, b"other", T0))).await.unwrap();
    assert!(!other, "cleared tokens are gone");

    store
        .write(|tx| {
            Box::pin(async move {
                org::add_setup_token(tx, b"x", T0, T0 + 1000).await?;
                org::mark_setup_complete(tx).await
            })
        })
        .await
        .unwrap();
    let mut r = store.reader().await.unwrap();
    let o = org::get(&mut r).await.unwrap().unwrap();
    assert_eq!(o.name, "Acme 中国");
    assert!(o.setup_complete);
    drop(r);
    let x = store.write(|tx| Box::pin(org::consume_setup_token(tx, b"x", T0))).await.unwrap();
    assert!(!x, "completing setup voids outstanding tokens");
}
