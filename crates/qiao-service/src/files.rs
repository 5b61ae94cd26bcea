//! Files: uploads into a conversation (streamed, size-limited, counted against the uploader's
//! quota, typed from their bytes, images thumbnailed off the async runtime), reading them
//! with the conversation's permissions, the per-conversation library, and deletion that
//! removes bytes once no live file refers to them.

use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use qiao_domain::event::EventData;
use qiao_domain::file::{FileInfo, FileKind, clean_file_name};
use qiao_domain::{ConversationId, Error, ErrorCode, FileId, Result, perm};
use qiao_media::image::ImageError;
use qiao_media::{MediaError, Stored};
use qiao_store::files::{self, NewFile, Sort, StoredFile};
use qiao_store::messages;

use crate::membership::emit;
use crate::{Authenticated, Services, millis, now};

/// Storage settings for files.
#[derive(Clone, Debug)]
pub struct FileConfig {
    /// Largest file accepted.
    pub max_upload_bytes: u64,
    /// Bytes of live files one person may keep.
    pub quota_bytes: u64,
    /// Images larger than this are stored without thumbnails (decoding needs them in memory).
    pub max_thumbnail_source_bytes: u64,
    /// How long an upload may wait to be sent in a message before housekeeping deletes it.
    pub unsent_expiry: Duration,
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            max_upload_bytes: 100 << 20,
            quota_bytes: 10 << 30,
            max_thumbnail_source_bytes: 40 << 20,
            unsent_expiry: Duration::from_secs(24 * 3600),
        }
    }
}

/// What the uploader says about an upload (the name and, for recordings, the duration; the
/// type is never taken from the client).
#[derive(Clone, Debug, Default)]
pub struct Upload {
    pub name: String,
    /// The request's Content-Length, when sent: lets oversize uploads fail before any byte.
    pub declared_len: Option<u64>,
    /// Recorded in the browser as a voice message.
    pub voice: bool,
    pub duration_ms: Option<i64>,
}

/// The longest recording a voice message may declare.
/// Uploads one person may run at once: a message's worth of files in each of two places (a
/// conversation and a thread open beside it), as the web client starts them all at once.
pub const UPLOADS_AT_ONCE: u32 = 2 * qiao_domain::file::FILES_PER_MESSAGE_MAX as u32;

pub const DURATION_MAX_MS: i64 = 4 * 3600 * 1000;

/// The API's error for a failure of the blob store. Storage that cannot be reached is a 503
/// the client may retry, never a 404 (which says the file is gone) nor a bare 500.
pub fn media_error(e: MediaError) -> Error {
    match e {
        MediaError::TooLarge { limit } => Error::new(ErrorCode::PayloadTooLarge)
            .with_message(format!("Files may be at most {} MB.", limit / (1 << 20))),
        MediaError::Interrupted(why) => Error::invalid("body", format!("the upload did not complete: {why}")),
        MediaError::NotFound => Error::not_found(),
        MediaError::BadRange => Error::new(ErrorCode::RangeNotSatisfiable),
        // A refusal a retry cannot cure (wrong credentials, a denied path) is the server's
        // fault, not a passing outage.
        e @ MediaError::Storage(_) if !e.passing() => Error::internal(e),
        MediaError::Storage(e) => {
            Error::unavailable(e).with_message("File storage cannot be reached right now; try again in a moment.")
        }
    }
}

/// Kind and type of an upload: from the bytes, except that a browser recording (WebM or Ogg
/// holding only audio) declared as a voice message is audio.
fn classify(stored: &Stored, voice: bool) -> Result<(FileKind, String)> {
    let kind = stored.sniffed.kind;
    let mime = stored.sniffed.mime;
    if !voice {
        return Ok((kind, mime.to_owned()));
    }
    match (kind, mime) {
        (FileKind::Audio, _) => Ok((FileKind::Audio, mime.to_owned())),
        (FileKind::Video, "video/webm") => Ok((FileKind::Audio, "audio/webm".to_owned())),
        (FileKind::Video, "video/ogg") => Ok((FileKind::Audio, "audio/ogg".to_owned())),
        (FileKind::Video, "video/mp4") => Ok((FileKind::Audio, "audio/mp4".to_owned())),
        _ => Err(Error::invalid("voice", "a voice message must be an audio recording")),
    }
}

impl Services {
    /// Stores an upload in a conversation the caller may post in. It is visible only to the
    /// uploader until a message carries it.
    pub async fn upload_file<S, E>(
        &self,
        auth: &Authenticated,
        conversation: ConversationId,
        upload: Upload,
        body: S,
    ) -> Result<FileInfo>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let me = auth.actor.user_id;
        // (Both are query parameters: outside their stated limits, `invalid_parameter`.)
        let name = clean_file_name(&upload.name).map_err(|e| Error { code: ErrorCode::InvalidParameter, ..e })?;
        if let Some(d) = upload.duration_ms
            && !(0..=DURATION_MAX_MS).contains(&d)
        {
            return Err(Error::new(ErrorCode::InvalidParameter)
                .with_field("duration_ms")
                .with_message("The duration is between 0 and 4 hours (in milliseconds)."));
        }
        let a = self.access_cached(&auth.actor, conversation).await?;
        if !perm::can_post(&auth.actor, &a.facts) {
            return Err(a.deny(&auth.actor, "You may not share files in this conversation."));
        }
        self.action_rate.check(me)?;
        // Each upload holds a connection, a staging file and up to its size on disk until it
        // ends (a slow one may take an hour): a person runs a few at a time.
        let _slot = self.uploads_in_flight.try_start(me).ok_or_else(|| {
            Error::rate_limited(5)
                .with_message(format!("You are uploading {UPLOADS_AT_ONCE} files already; wait for one to finish."))
        })?;
        let cfg = &self.config.files;
        if upload.declared_len.is_some_and(|n| n > cfg.max_upload_bytes) {
            return Err(media_error(MediaError::TooLarge { limit: cfg.max_upload_bytes }));
        }
        let used = files::usage(&mut self.store.reader().await?, me).await?;
        let remaining = cfg.quota_bytes.saturating_sub(used.max(0) as u64);
        if upload.declared_len.is_some_and(|n| n > remaining) {
            return Err(quota_error(cfg.quota_bytes));
        }

        let staged = self.blobs.stage(body, cfg.max_upload_bytes.min(remaining.max(1))).await.map_err(|e| {
            match e {
                // Over what is left of the quota but within the size limit: a quota error.
                MediaError::TooLarge { limit } if limit < cfg.max_upload_bytes => quota_error(cfg.quota_bytes),
                other => media_error(other),
            }
        })?;
        // From here on the bytes are ours: what follows runs as a task of its own, so that a
        // request dropped now (its client gone, the shutdown's grace over) still records them
        // (an unsent upload, expired later) or removes them, rather than leaving them behind.
        let (services, auth) = (self.clone(), auth.clone());
        tokio::spawn(async move { services.keep_staged(&auth, conversation, name, upload, staged).await })
            .await
            .map_err(Error::internal)?
    }

    /// Names staged bytes and records the upload ([`Services::upload_file`]).
    async fn keep_staged(
        &self,
        auth: &Authenticated,
        conversation: ConversationId,
        name: String,
        upload: Upload,
        staged: qiao_media::Staged,
    ) -> Result<FileInfo> {
        // Claimed from before the blob's existence is checked until the record is committed,
        // so that no clean-up, on any node, removes bytes this upload is about to refer to.
        let claim = uuid::Uuid::now_v7();
        if let Err(e) = self.claim_blobs(claim, vec![staged.hash.clone()]).await {
            self.blobs.discard(staged).await;
            return Err(e);
        }
        let stored = match self.blobs.finish(staged).await {
            Ok(stored) => stored,
            Err(e) => {
                self.release_claim(claim).await;
                return Err(media_error(e));
            }
        };
        let mut claim = Claim { id: claim, blobs: vec![stored.hash.clone()] };
        let result = self.record_upload(auth, conversation, name, &upload, &stored, &mut claim).await;
        self.release_claim(claim.id).await;
        if result.is_err() {
            // Unless another upload refers to the same bytes by now, nothing does.
            self.collect_garbage(claim.blobs).await;
        }
        result
    }

    /// Claims blobs for an upload (waiting while a clean-up removes one of them).
    async fn claim_blobs(&self, claim: uuid::Uuid, hashes: Vec<String>) -> Result<()> {
        for _ in 0..100 {
            let (at, until) = (now(), now() + millis(CLAIM_TTL));
            let h = hashes.clone();
            let claimed = self
                .store
                .write(move |tx| {
                    let h = h.clone();
                    Box::pin(async move { files::claim_blobs(tx, claim, &h, at, until).await })
                })
                .await?;
            if claimed {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(Error::new(ErrorCode::Unavailable)
            .with_message("Storage is busy removing this file's old copy; try again."))
    }

    async fn release_claim(&self, claim: uuid::Uuid) {
        let released = self.store.write(move |tx| Box::pin(async move { files::release_claim(tx, claim).await })).await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "releasing a blob claim failed (it expires by itself)");
        }
    }

    /// Stores generated bytes (thumbnails) under the upload's claim.
    async fn put_claimed(&self, claim: &mut Claim, bytes: Bytes) -> Result<String> {
        let staged = self.blobs.stage_bytes(bytes).await.map_err(media_error)?;
        if let Err(e) = self.claim_blobs(claim.id, vec![staged.hash.clone()]).await {
            self.blobs.discard(staged).await;
            return Err(e);
        }
        let hash = self.blobs.finish(staged).await.map_err(media_error)?.hash;
        claim.blobs.push(hash.clone());
        Ok(hash)
    }

    async fn record_upload(
        &self,
        auth: &Authenticated,
        conversation: ConversationId,
        name: String,
        upload: &Upload,
        stored: &Stored,
        claim: &mut Claim,
    ) -> Result<FileInfo> {
        let (kind, mime) = classify(stored, upload.voice)?;
        let (mut width, mut height, mut thumb_hash, mut preview_hash) = (None, None, None, None);
        let previewable = matches!(mime.as_str(), "image/png" | "image/jpeg" | "image/gif" | "image/webp");
        if previewable && stored.size <= self.config.files.max_thumbnail_source_bytes {
            // An image too large to decode, or one the decoder cannot read, is still a file
            // people want to share: it is kept, shown as a file rather than a picture.
            match self.make_thumbnails(&stored.hash).await? {
                Ok(t) => {
                    width = Some(t.width as i32);
                    height = Some(t.height as i32);
                    thumb_hash = Some(self.put_claimed(claim, Bytes::from(t.thumb.bytes)).await?);
                    if let Some(p) = t.preview {
                        preview_hash = Some(self.put_claimed(claim, Bytes::from(p.bytes)).await?);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "stored an image without a thumbnail"),
            }
        }
        let new = NewFile {
            id: FileId::new(),
            conversation_id: conversation,
            uploader_id: auth.actor.user_id,
            name,
            mime,
            kind,
            size: stored.size as i64,
            blob_hash: stored.hash.clone(),
            width,
            height,
            duration_ms: upload.duration_ms,
            voice: upload.voice,
            thumb_hash,
            preview_hash,
            at: now(),
        };
        let quota = self.config.files.quota_bytes;
        let claim_id = claim.id;
        let file = self
            .store
            .write(move |tx| {
                let new = new.clone();
                Box::pin(async move {
                    // An upload that waited past its claim's lifetime (a long queue for the
                    // image decoder) may have lost its bytes to a clean-up meanwhile.
                    if !files::claim_live(tx, claim_id, now()).await? {
                        return Err(Error::new(ErrorCode::Unavailable)
                            .with_message("The upload took too long to process; send the file again."));
                    }
                    // Uploads run concurrently: the quota is settled here, one at a time.
                    let used = files::usage(tx, new.uploader_id).await?;
                    if used.max(0) as u64 + new.size as u64 > quota {
                        return Err(quota_error(quota));
                    }
                    // The removals the upload's claims queued in case it died are not due.
                    let referenced: Vec<String> =
                        [Some(&new.blob_hash), new.thumb_hash.as_ref(), new.preview_hash.as_ref()]
                            .into_iter()
                            .flatten()
                            .cloned()
                            .collect();
                    files::forget_removals(tx, &referenced).await?;
                    files::insert(tx, &new).await
                })
            })
            .await?;
        metrics::counter!("qiao_files_uploaded_total").increment(1);
        Ok(file.info)
    }

    /// The image's thumbnails, or why it has none (the outer error: the bytes could not be
    /// read back).
    async fn make_thumbnails(
        &self,
        hash: &str,
    ) -> Result<std::result::Result<qiao_media::image::Thumbnails, ImageError>> {
        // The permit first: queued uploads must not each hold a whole image in memory. It
        // travels with the decode, which goes on if this request is dropped.
        let permit = self.image_permits.clone().acquire_owned().await.map_err(Error::internal)?;
        let mut bytes = Vec::new();
        let stream = self.blobs.read(hash, None).await.map_err(media_error)?;
        let mut stream = std::pin::pin!(stream);
        while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
            bytes.extend_from_slice(&chunk.map_err(media_error)?);
        }
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            qiao_media::image::thumbnails(&bytes)
        })
        .await
        .map_err(Error::internal)
    }

    /// A file the caller may read (the same `not_found` for one they may not see and one that
    /// does not exist).
    pub async fn file(&self, auth: &Authenticated, id: FileId) -> Result<StoredFile> {
        let f = files::get(&mut self.store.reader().await?, id).await?.ok_or_else(Error::not_found)?;
        let a = self.access_cached(&auth.actor, f.info.conversation_id).await?;
        if !perm::can_read_file(&auth.actor, &a.facts, f.info.uploader_id, f.info.message_id.is_some()) {
            return Err(Error::not_found());
        }
        Ok(f)
    }

    /// The blob store, for streaming a file's bytes after [`Services::file`] allowed it.
    pub fn blobs(&self) -> &qiao_media::BlobStore {
        &self.blobs
    }

    /// A conversation's shared files: up to `limit` (at most 201, a page of 200 and one to
    /// tell whether there are more), after the file `after` (the previous page's last).
    pub async fn file_library(
        &self,
        auth: &Authenticated,
        conversation: ConversationId,
        kind: Option<FileKind>,
        sort: Sort,
        after: Option<FileId>,
        limit: i64,
    ) -> Result<Vec<FileInfo>> {
        let a = self.access_cached(&auth.actor, conversation).await?;
        if !perm::can_read(&auth.actor, &a.facts) {
            return Err(Error::not_found());
        }
        files::library(&mut self.store.reader().await?, conversation, kind, sort, after, limit.clamp(1, 201))
            .await?
            .ok_or_else(|| {
                Error::new(ErrorCode::InvalidParameter)
                    .with_field("cursor")
                    .with_message("invalid cursor: ask for the first page again")
            })
    }

    /// Deletes a file (its uploader, a channel admin or an organisation admin). A message
    /// carrying it is updated for everyone; the bytes go once nothing refers to them.
    pub async fn delete_file(&self, auth: &Authenticated, id: FileId) -> Result<()> {
        let f = self.file(auth, id).await?;
        let a = self.access_cached(&auth.actor, f.info.conversation_id).await?;
        // One's own upload not sent yet may always go (it is in no message; in an archived
        // conversation it could never be sent, and would count against one's quota until it
        // expired).
        let own_unsent = f.info.message_id.is_none() && f.info.uploader_id == auth.actor.user_id;
        if !own_unsent && !perm::can_delete_file(&auth.actor, &a.facts, f.info.uploader_id) {
            return Err(a.deny(&auth.actor, "Only the uploader or an administrator may delete this file."));
        }
        let (at, conversation, hashes) = (now(), f.info.conversation_id, f.hashes());
        let (queued, actor, uploader) = (hashes.clone(), auth.actor.clone(), f.info.uploader_id);
        self.store
            .write(move |tx| {
                let (queued, actor) = (queued.clone(), actor.clone());
                Box::pin(async move {
                    // As the conversation is now (archived, or the caller demoted, meanwhile).
                    let now = crate::messages::access_now(tx, &actor, conversation).await?;
                    if !own_unsent && !perm::can_delete_file(&actor, &now.facts, uploader) {
                        return Err(now.deny(&actor, "Only the uploader or an administrator may delete this file."));
                    }
                    // The message as the deletion finds it: a send may have attached the file
                    // since it was read above.
                    let Some(message) = files::mark_deleted(tx, id, at).await? else {
                        return Ok(());
                    };
                    queue_removals(tx, &queued, at).await?;
                    if let Some(m) = message
                        && let Some(message) = messages::get(tx, m).await?
                        && message.deleted_at.is_none()
                    {
                        if message.body.is_empty() && message.files.is_empty() {
                            // Its last file gone and no text: nothing is left of the message.
                            crate::messages::tombstone(tx, conversation, m, message.thread_root_id, at).await?;
                        } else {
                            emit(tx, conversation, &EventData::MessageUpdated { message }, at).await?;
                        }
                    }
                    Ok(())
                })
            })
            .await?;
        self.collect_garbage(hashes).await;
        Ok(())
    }

    /// Removes the bytes of blobs no live file refers to and no upload claims. Best effort:
    /// a failure leaves bytes behind, never removes referenced ones. Runs as a task of its own
    /// (awaited), so a request that times out or is dropped does not stop it half-way, with
    /// its removal mark held.
    pub(crate) async fn collect_garbage(&self, hashes: Vec<String>) {
        let services = self.clone();
        let _ = tokio::spawn(async move { services.remove_unreferenced(hashes).await }).await;
    }

    async fn remove_unreferenced(&self, hashes: Vec<String>) {
        let claim = uuid::Uuid::now_v7();
        let (at, until) = (now(), now() + millis(REMOVAL_TTL));
        let asked = hashes.clone();
        let doomed = self
            .store
            .write(move |tx| {
                let hashes = hashes.clone();
                Box::pin(async move { files::claim_for_removal(tx, claim, &hashes, at, until).await })
            })
            .await;
        match doomed {
            Ok(list) => {
                let deleting = async {
                    let mut all = true;
                    for h in list {
                        if let Err(e) = self.blobs.delete(&h).await {
                            tracing::warn!(error = %e, "removing an unreferenced blob failed (the sweep retries it)");
                            all = false;
                        }
                    }
                    all
                };
                // A delete still retrying when the mark lapses could remove bytes that a new
                // upload of the same content has just reused: give up well before it lapses,
                // and leave the mark to run out (covering a request already on its way).
                if let Ok(removed) = tokio::time::timeout(REMOVAL_TTL / 4, deleting).await {
                    self.release_claim(claim).await;
                    if removed {
                        // Done with these: referenced ones need no removal, the rest are gone.
                        let cleared = self
                            .store
                            .write(move |tx| {
                                let asked = asked.clone();
                                Box::pin(async move { files::clear_removals(tx, &asked, now()).await })
                            })
                            .await;
                        if let Err(e) = cleared {
                            tracing::warn!(error = %e, "forgetting finished blob removals failed (the sweep retries them)");
                        }
                    }
                } else {
                    tracing::warn!("removing unreferenced blobs took too long; their bytes may be left behind");
                }
            }
            Err(e) => tracing::warn!(error = %e, "finding unreferenced blobs failed"),
        }
    }
}

impl Services {
    /// On SQLite (one process at a time), forgets the blob claims an earlier run left when it
    /// was killed: its removal marks would refuse uploads of those bytes for minutes, its
    /// upload claims hold bytes for an hour. Call once at start-up, before serving.
    pub async fn forget_claims_of_earlier_runs(&self) -> Result<u64> {
        if self.store.dialect() != qiao_store::Dialect::Sqlite {
            return Ok(0);
        }
        let start = now();
        let (marks, uploads) = (start + millis(REMOVAL_TTL), start + millis(CLAIM_TTL));
        self.store.write(move |tx| Box::pin(async move { files::forget_claims_before(tx, marks, uploads).await })).await
    }
}

/// Records, in a deletion's transaction at `at`, that the bytes of `hashes` may have to go:
/// the sweep retries their removal after [`REMOVAL_TTL`] unless the clean-up that follows the
/// commit ([`Services::collect_garbage`]) finishes first.
pub(crate) async fn queue_removals(tx: &mut qiao_store::Tx, hashes: &[String], at: qiao_domain::Millis) -> Result<()> {
    files::queue_removals(tx, hashes, at + millis(REMOVAL_TTL)).await
}

/// An upload's claim on blobs (see `blob_claims`), and the blobs stored under it.
struct Claim {
    id: uuid::Uuid,
    blobs: Vec<String>,
}

/// How long an upload's claim on blobs holds if its holder dies without releasing it.
const CLAIM_TTL: Duration = Duration::from_secs(3600);
/// How long a removal mark holds if its holder dies mid-way (uploads of those bytes are
/// refused meanwhile, "try again"); its holder stops deleting after a quarter of it.
const REMOVAL_TTL: Duration = Duration::from_secs(600);

fn quota_error(quota: u64) -> Error {
    Error::new(ErrorCode::QuotaExceeded)
        .with_message(format!("Your files may take at most {} MB; delete files you no longer need.", quota / (1 << 20)))
}
