//! Files: records, attaching to messages, usage, the library, deletion and unreferenced blobs.

use qiao_domain::conversation::{ConversationKind, MemberRole};
use qiao_domain::file::{FileInfo, FileKind};
use qiao_domain::{ConversationId, FileId, UserId};
use qiao_store::files::{NewFile, Sort};
use qiao_store::{Store, files, messages};

use crate::messaging::{create, join, send};
use crate::users::{insert, new_user};
use crate::{Sink, T0, seed_org};

fn new_file(
    c: ConversationId,
    uploader: UserId,
    name: &str,
    kind: FileKind,
    size: i64,
    hash: &str,
    at: i64,
) -> NewFile {
    NewFile {
        id: FileId::new(),
        conversation_id: c,
        uploader_id: uploader,
        name: name.into(),
        mime: if kind == FileKind::Image { "image/png".into() } else { "application/octet-stream".into() },
        kind,
        size,
        blob_hash: hash.into(),
        width: (kind == FileKind::Image).then_some(640),
        height: (kind == FileKind::Image).then_some(480),
        duration_ms: None,
        voice: false,
        thumb_hash: (kind == FileKind::Image).then(|| format!("thumb-{hash}")),
        preview_hash: None,
        at,
    }
}

async fn put(store: &Store, f: NewFile) -> files::StoredFile {
    store
        .write(move |tx| {
            let f = f.clone();
            Box::pin(async move { files::insert(tx, &f).await })
        })
        .await
        .unwrap()
}

pub async fn files_lifecycle(store: Store, _: Sink) {
    let root = seed_org(&store).await;
    let alice = insert(&store, new_user("alice", "Alice", root.id)).await;
    let bob = insert(&store, new_user("bob", "Bob", root.id)).await;
    let c = create(&store, ConversationKind::Private, "files").await;
    join(&store, c, alice.id, MemberRole::Member).await;
    join(&store, c, bob.id, MemberRole::Member).await;

    let doc = put(&store, new_file(c, alice.id, "报告.pdf", FileKind::Document, 1000, "h1", T0)).await;
    let img = put(&store, new_file(c, alice.id, "photo.png", FileKind::Image, 5000, "h2", T0 + 1)).await;
    let copy = put(&store, new_file(c, bob.id, "same.pdf", FileKind::Document, 1000, "h1", T0 + 2)).await;
    assert_eq!(doc.info.name, "报告.pdf");
    assert!(img.info.thumbnail && !doc.info.thumbnail);
    assert_eq!(img.hashes(), vec!["h2".to_owned(), "thumb-h2".to_owned()]);

    let mut r = store.reader().await.unwrap();
    assert_eq!(files::get(&mut r, img.info.id).await.unwrap().unwrap(), img);
    assert_eq!(files::usage(&mut r, alice.id).await.unwrap(), 6000);
    assert_eq!(files::usage(&mut r, bob.id).await.unwrap(), 1000);
    drop(r);

    // Attaching: only the sender's own, unsent uploads to that conversation.
    let m = send(&store, c, alice.id, "two files", None).await;
    let (d, i, cp) = (doc.info.id, img.info.id, copy.info.id);
    let attached = store
        // In the sender's order, not the order the uploads finished.
        .write(move |tx| Box::pin(async move { files::attach(tx, &[i, d], m.id, alice.id, c).await }))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attached.iter().map(|f| f.message_id).collect::<Vec<_>>(), vec![Some(m.id), Some(m.id)]);
    let refused = store
        .write(move |tx| Box::pin(async move { files::attach(tx, &[cp], m.id, alice.id, c).await }))
        .await
        .unwrap();
    assert!(refused.is_none(), "bob's upload cannot travel in alice's message");

    // Rebuilding derived data: live messages page by page, in id order, with their files.
    let mut r = store.reader().await.unwrap();
    assert_eq!(messages::count_live(&mut r).await.unwrap(), 1);
    let first = messages::live_after(&mut r, None, 10).await.unwrap();
    assert_eq!((first.len(), first[0].files.len()), (1, 2));
    assert!(messages::live_after(&mut r, Some(first[0].id), 10).await.unwrap().is_empty());
    drop(r);

    // Messages read from the store carry their files.
    let mut r = store.reader().await.unwrap();
    let read = messages::get(&mut r, m.id).await.unwrap().unwrap();
    assert_eq!(read.files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["photo.png", "报告.pdf"]);
    let mut list = vec![read.clone()];
    files::attach_to_messages(&mut r, &mut list).await.unwrap();
    assert_eq!(list[0].files.len(), 2);

    // The library lists sent files only, filtered and sorted.
    let names = |page: &[FileInfo]| page.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
    let all = files::library(&mut r, c, None, Sort::Date, None, 50).await.unwrap().unwrap();
    assert_eq!(names(&all), ["photo.png", "报告.pdf"]);
    let images = files::library(&mut r, c, Some(FileKind::Image), Sort::Name, None, 50).await.unwrap().unwrap();
    assert_eq!(images.len(), 1);
    let by_name = files::library(&mut r, c, None, Sort::Name, None, 50).await.unwrap().unwrap();
    assert_eq!(names(&by_name), ["photo.png", "报告.pdf"]);
    // Pages follow on from the previous page's last file, in every order.
    for sort in [Sort::Date, Sort::Name, Sort::Size] {
        let first = files::library(&mut r, c, None, sort, None, 1).await.unwrap().unwrap();
        let second = files::library(&mut r, c, None, sort, Some(first[0].id), 1).await.unwrap().unwrap();
        let rest = files::library(&mut r, c, None, sort, Some(second[0].id), 1).await.unwrap().unwrap();
        let whole = files::library(&mut r, c, None, sort, None, 50).await.unwrap().unwrap();
        assert_eq!([names(&first), names(&second)].concat(), names(&whole), "{sort:?}");
        assert!(rest.is_empty(), "{sort:?}");
    }
    let by_size = files::library(&mut r, c, None, Sort::Size, None, 1).await.unwrap().unwrap();
    let after_largest = files::library(&mut r, c, None, Sort::Size, Some(by_size[0].id), 1).await.unwrap().unwrap();
    assert_eq!(after_largest[0].name, "报告.pdf");
    assert!(
        files::library(&mut r, c, None, Sort::Date, Some(FileId::new()), 1).await.unwrap().is_none(),
        "no such file"
    );

    // Blobs stay referenced while any live file refers to them.
    let hashes = vec!["h1".to_owned(), "h2".to_owned(), "thumb-h2".to_owned(), "nobody".to_owned()];
    assert_eq!(files::unreferenced(&mut r, &hashes).await.unwrap(), vec!["nobody".to_owned()]);
    drop(r);

    let deleted = store
        .write(move |tx| {
            Box::pin(async move {
                let first = files::mark_deleted(tx, d, T0 + 10).await?;
                let again = files::mark_deleted(tx, d, T0 + 11).await?;
                Ok((first, again))
            })
        })
        .await
        .unwrap();
    assert_eq!(deleted, (Some(Some(m.id)), None), "the message it was attached to, then nothing");
    let mut r = store.reader().await.unwrap();
    assert!(files::get(&mut r, d).await.unwrap().is_none());
    assert_eq!(files::usage(&mut r, alice.id).await.unwrap(), 5000);
    assert!(files::unreferenced(&mut r, &hashes).await.unwrap().iter().all(|h| h != "h1"), "bob's copy still uses h1");
    drop(r);

    // Deleting the message takes its remaining files with it.
    let gone = store
        .write(move |tx| Box::pin(async move { files::delete_for_message(tx, m.id, T0 + 20).await }))
        .await
        .unwrap();
    assert_eq!(gone.iter().map(|f| f.info.id).collect::<Vec<_>>(), vec![i]);
    let mut r = store.reader().await.unwrap();
    let left = files::unreferenced(&mut r, &hashes).await.unwrap();
    assert_eq!(left, vec!["h2".to_owned(), "thumb-h2".to_owned(), "nobody".to_owned()]);
    assert!(files::library(&mut r, c, None, Sort::Date, None, 50).await.unwrap().unwrap().is_empty());
    let after_deleted = files::library(&mut r, c, None, Sort::Date, Some(d), 50).await.unwrap();
    assert!(after_deleted.is_some(), "a page may follow on from a file deleted since");
    drop(r);

    // Uploads never sent expire, oldest first and a bounded number at a time; sent or deleted
    // files are not touched, nor uploads made since.
    let later = put(&store, new_file(c, bob.id, "later.txt", FileKind::Document, 10, "h9", T0 + 50)).await;
    let newest = put(&store, new_file(c, bob.id, "newest.txt", FileKind::Document, 20, "h10", T0 + 60)).await;
    let expire = |before: i64, limit: i64| {
        store.write(move |tx| Box::pin(async move { files::expire_unsent(tx, before, T0 + 100, limit).await }))
    };
    let first = expire(T0 + 60, 1).await.unwrap();
    assert_eq!(first.iter().map(|f| f.info.id).collect::<Vec<_>>(), vec![cp]);
    let second = expire(T0 + 60, 10).await.unwrap();
    assert_eq!(
        second.iter().map(|f| (f.info.id, f.blob_hash.as_str())).collect::<Vec<_>>(),
        vec![(later.info.id, "h9")]
    );
    assert!(expire(T0 + 60, 10).await.unwrap().is_empty());
    let mut r = store.reader().await.unwrap();
    assert!(files::get(&mut r, cp).await.unwrap().is_none());
    assert!(files::get(&mut r, newest.info.id).await.unwrap().is_some());
    assert_eq!(files::usage(&mut r, bob.id).await.unwrap(), 20, "expired uploads leave the quota");
    assert_eq!(files::unreferenced(&mut r, &["h1".to_owned()]).await.unwrap(), vec!["h1".to_owned()]);
    drop(r);

    // Files alike in every sort key page by their ids, one at a time, none skipped or repeated.
    let ties = create(&store, ConversationKind::Private, "ties").await;
    join(&store, ties, bob.id, MemberRole::Member).await;
    let m2 = send(&store, ties, bob.id, "three of a kind", None).await;
    let mut same = Vec::new();
    for n in 0..3 {
        let f = put(&store, new_file(ties, bob.id, "同名.txt", FileKind::Document, 7, &format!("t{n}"), T0 + 70)).await;
        same.push(f.info.id);
    }
    let attach = same.clone();
    store
        .write(move |tx| {
            let attach = attach.clone();
            Box::pin(async move { files::attach(tx, &attach, m2.id, bob.id, ties).await })
        })
        .await
        .unwrap();
    same.sort();
    let mut r = store.reader().await.unwrap();
    for sort in [Sort::Date, Sort::Name, Sort::Size] {
        let (mut seen, mut after) = (Vec::new(), None);
        while let Some(f) = files::library(&mut r, ties, None, sort, after, 1).await.unwrap().unwrap().pop() {
            seen.push(f.id);
            after = Some(f.id);
        }
        assert_eq!(seen, same, "{sort:?}");
    }
}

async fn claim(store: &Store, id: uuid::Uuid, hashes: &[&str], now: i64) -> bool {
    let h: Vec<String> = hashes.iter().map(|s| s.to_string()).collect();
    store
        .write(move |tx| {
            let h = h.clone();
            Box::pin(async move { files::claim_blobs(tx, id, &h, now, now + 1000).await })
        })
        .await
        .unwrap()
}

async fn remove(store: &Store, id: uuid::Uuid, hashes: &[&str], now: i64) -> Vec<String> {
    let h: Vec<String> = hashes.iter().map(|s| s.to_string()).collect();
    store
        .write(move |tx| {
            let h = h.clone();
            Box::pin(async move { files::claim_for_removal(tx, id, &h, now, now + 1000).await })
        })
        .await
        .unwrap()
}

async fn release(store: &Store, id: uuid::Uuid) {
    store.write(move |tx| Box::pin(async move { files::release_claim(tx, id).await })).await.unwrap();
}

pub async fn blob_claims_keep_uploads_and_clean_up_apart(store: Store, _: Sink) {
    let (upload, cleanup, late) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    // An upload's claim keeps its blob from removal, though no file refers to it yet.
    assert!(claim(&store, upload, &["h1", "h2"], T0).await);
    let live = |at: i64| {
        let store = store.clone();
        async move { files::claim_live(&mut store.reader().await.unwrap(), upload, at).await.unwrap() }
    };
    assert!(live(T0 + 999).await && !live(T0 + 1000).await, "until it expires");
    assert_eq!(remove(&store, cleanup, &["h1", "h3"], T0).await, vec!["h3".to_owned()]);
    // While h3 is being removed, an upload of the same bytes waits.
    assert!(!claim(&store, late, &["h3"], T0).await);
    release(&store, cleanup).await;
    assert!(claim(&store, late, &["h3"], T0).await);
    release(&store, upload).await;
    let other = uuid::Uuid::now_v7();
    assert_eq!(remove(&store, other, &["h1", "h2", "h3"], T0).await, vec!["h1".to_owned(), "h2".to_owned()]);
    // A claim whose holder died stops counting once it expires, and is swept.
    assert!(claim(&store, uuid::Uuid::now_v7(), &["h3"], T0 + 5000).await, "the removal claim expired");
    let swept = store.write(|tx| Box::pin(async move { files::sweep_claims(tx, T0 + 10_000).await })).await.unwrap();
    assert_eq!(swept, 4, "late, the two removal rows of other, and the last claim");
    // Each claim queued the removal of its blobs for when it expires (the upload may die
    // before recording its file), the earliest kept.
    let due = files::due_removals(&mut store.reader().await.unwrap(), T0 + 1000, 10).await.unwrap();
    assert_eq!(due, ["h1", "h2", "h3"]);

    // What a killed run left: its marks and claims are forgotten at the next start (SQLite),
    // not those made since.
    let (dead_mark, dead_upload, fresh) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let start = T0 + 20_000;
    assert_eq!(remove(&store, dead_mark, &["h4"], start - 10).await, ["h4"]);
    assert!(claim(&store, dead_upload, &["h5"], start - 10).await);
    assert!(claim(&store, fresh, &["h6"], start).await);
    let forgot = store
        .write(move |tx| Box::pin(async move { files::forget_claims_before(tx, start + 1000, start + 1000).await }))
        .await
        .unwrap();
    assert_eq!(forgot, 2);
    assert!(claim(&store, uuid::Uuid::now_v7(), &["h4"], start).await, "the dead mark holds no upload off");
    assert!(remove(&store, uuid::Uuid::now_v7(), &["h6"], start).await.is_empty(), "the fresh claim holds");
}

/// Recorded removals: queued once per hash (the earliest due time kept), found when due,
/// oldest first and at most `limit`, and gone once cleared.
pub async fn blob_removals_are_recorded_until_cleared(store: Store, _: Sink) {
    let h = |s: &str| s.repeat(64 / s.len());
    let (a, b, c) = (h("a"), h("b"), h("c"));
    let (qa, qb) = (vec![a.clone(), b.clone()], vec![b.clone(), c.clone()]);
    for (hashes, due_at) in [(qa, T0 + 100), (qb, T0 + 200)] {
        store
            .write(move |tx| {
                let hashes = hashes.clone();
                Box::pin(async move { files::queue_removals(tx, &hashes, due_at).await })
            })
            .await
            .unwrap();
    }
    let due = |at: i64, limit: i64| {
        let store = store.clone();
        async move { files::due_removals(&mut store.reader().await.unwrap(), at, limit).await.unwrap() }
    };
    assert!(due(T0 + 99, 10).await.is_empty(), "nothing due yet");
    assert_eq!(due(T0 + 150, 10).await, [a.clone(), b.clone()], "b keeps its first due time");
    assert_eq!(due(T0 + 200, 10).await, [a.clone(), b.clone(), c.clone()]);
    assert_eq!(due(T0 + 200, 1).await, std::slice::from_ref(&a));
    // A hash an upload claims meanwhile keeps its removal (the clean-up skipped it).
    let claimed = c.clone();
    store
        .write(move |tx| {
            let claimed = vec![claimed.clone()];
            Box::pin(async move { files::claim_blobs(tx, uuid::Uuid::now_v7(), &claimed, T0, T0 + 500).await })
        })
        .await
        .unwrap();
    let done = vec![a.clone(), c.clone()];
    let clear = |at: i64| {
        let (store, done) = (store.clone(), done.clone());
        async move {
            store
                .write(move |tx| {
                    let done = done.clone();
                    Box::pin(async move { files::clear_removals(tx, &done, at).await })
                })
                .await
                .unwrap()
        }
    };
    clear(T0 + 300).await;
    assert_eq!(due(T0 + 1000, 10).await, [b.clone(), c.clone()]);
    clear(T0 + 500).await;
    assert_eq!(due(T0 + 1000, 10).await, std::slice::from_ref(&b), "cleared once the claim expired");
    // A file recorded for its blob forgets its removal, claimed or not.
    store
        .write(move |tx| {
            let b = vec![b.clone()];
            Box::pin(async move { files::forget_removals(tx, &b).await })
        })
        .await
        .unwrap();
    assert!(due(T0 + 1000, 10).await.is_empty());
}
