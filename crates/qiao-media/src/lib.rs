//! File bytes. Uploads stream through [`BlobStore::put_stream`] into an `object_store` (a
//! local directory by default), hashed as they pass and never held whole in memory; each
//! blob is stored once under the SHA-256 of its bytes, so the same file uploaded twice takes
//! the space once. What a file *is* comes from its bytes ([`sniff`]), never from the name or
//! type a client claims. Which files exist, who may read them and when bytes may be removed
//! is the store's and the service's business: this crate only keeps bytes.

pub mod image;

use std::ops::Range;
use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};

/// What kind of file the bytes are (the domain's vocabulary).
pub use qiao_domain::file::FileKind;

/// Bytes looked at to recognise a file's type.
pub const SNIFF_LEN: usize = 8192;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
    #[error("no such blob")]
    NotFound,
    #[error("the requested range is outside the file")]
    BadRange,
    #[error("file storage failed: {0}")]
    Storage(#[from] object_store::Error),
}

impl MediaError {
    /// A storage failure a retry may cure (storage unreachable, slow, failing), as opposed to
    /// a refusal that will repeat (wrong credentials, a denied path, an unsupported call).
    pub fn passing(&self) -> bool {
        use object_store::Error as E;
        match self {
            MediaError::Storage(e) => !matches!(
                e,
                E::PermissionDenied { .. }
                    | E::Unauthenticated { .. }
                    | E::NotSupported { .. }
                    | E::NotImplemented { .. }
                    | E::Precondition { .. }
                    | E::UnknownConfigurationKey { .. }
            ),
            _ => false,
        }
    }
}

pub type Result<T, E = MediaError> = std::result::Result<T, E>;

/// The type recognised from a file's first bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sniffed {
    pub mime: &'static str,
    pub kind: FileKind,
}

/// Recognises a file from its first bytes. Text is recognised as such only when the bytes are
/// valid UTF-8 without control characters, and then served as plain text whatever its name
/// says (an `.html` upload never becomes a page).
pub fn sniff(head: &[u8]) -> Sniffed {
    if let Some(t) = infer::get(head).filter(|t| t.matcher_type() != infer::MatcherType::Text) {
        let kind = match t.matcher_type() {
            infer::MatcherType::Image => FileKind::Image,
            infer::MatcherType::Audio => FileKind::Audio,
            infer::MatcherType::Video => FileKind::Video,
            infer::MatcherType::Doc | infer::MatcherType::Book => FileKind::Document,
            _ => FileKind::Other,
        };
        // PDFs are documents too, though infer files them under archives.
        let kind = if t.mime_type() == "application/pdf" { FileKind::Document } else { kind };
        // infer knows Office files only when their parts come in the order Word writes them.
        if t.mime_type() == "application/zip"
            && let Some(mime) = office_open_xml(head)
        {
            return Sniffed { mime, kind: FileKind::Document };
        }
        return Sniffed { mime: t.mime_type(), kind };
    }
    if looks_like_text(head) {
        return Sniffed { mime: "text/plain; charset=utf-8", kind: FileKind::Document };
    }
    Sniffed { mime: "application/octet-stream", kind: FileKind::Other }
}

/// The type of a Word, Excel or PowerPoint file (a ZIP archive of XML parts) from the names
/// of the parts in its first bytes: `[Content_Types].xml` and `word/…`, `xl/…` or `ppt/…`, in
/// whatever order.
fn office_open_xml(head: &[u8]) -> Option<&'static str> {
    const PART: &[u8] = b"PK\x03\x04";
    let (mut at, mut types, mut kind) = (0, false, None);
    while let Some(found) = head.get(at..).and_then(|rest| rest.windows(PART.len()).position(|w| w == PART)) {
        let header = at + found;
        at = header + PART.len();
        // A local file header: the name's length at 26, the name at 30.
        let Some(name) = head.get(header + 26..header + 28).and_then(|len| {
            let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
            head.get(header + 30..header + 30 + len)
        }) else {
            continue;
        };
        types |= name == b"[Content_Types].xml";
        kind = kind.or(if name.starts_with(b"word/") {
            Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document")
        } else if name.starts_with(b"xl/") {
            Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        } else if name.starts_with(b"ppt/") {
            Some("application/vnd.openxmlformats-officedocument.presentationml.presentation")
        } else {
            None
        });
        if types && kind.is_some() {
            return kind;
        }
    }
    None
}

fn looks_like_text(head: &[u8]) -> bool {
    if head.is_empty() {
        return false;
    }
    // The sniffed prefix may end inside a multi-byte character.
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default(),
        Err(_) => return false,
    };
    !valid.is_empty() && valid.chars().all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t' | '\u{c}'))
}

/// Bytes streamed to a temporary object and hashed, not yet named (see [`BlobStore::stage`]).
#[derive(Debug)]
pub struct Staged {
    tmp: Path,
    /// Lower-case hex SHA-256 of the bytes.
    pub hash: String,
    pub size: u64,
    head: Vec<u8>,
}

/// A blob written by [`BlobStore::put_stream`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Lower-case hex SHA-256 of the bytes: the blob's name.
    pub hash: String,
    pub size: u64,
    pub sniffed: Sniffed,
    /// False when an identical blob was stored already (the new copy was dropped).
    pub created: bool,
}

/// Content-addressed blob storage.
#[derive(Clone, Debug)]
pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
    /// The directory of a local store (its temporary files are swept from the disk).
    local: Option<std::path::PathBuf>,
}

fn blob_path(hash: &str) -> Path {
    Path::from(format!("blobs/{}/{hash}", &hash[..2.min(hash.len())]))
}

fn valid_hash(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl BlobStore {
    /// Blobs in a local directory (created if missing).
    pub fn local(dir: &FsPath) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| MediaError::Interrupted(format!("creating {}: {e}", dir.display())))?;
        // Synced before an upload is acknowledged: the file's row is committed durably next, and
        // a blob lost to a power cut would stay lost (later uploads of the bytes find the name).
        let inner = Arc::new(LocalFileSystem::new_with_prefix(dir)?.with_fsync(true));
        Ok(Self { inner, local: Some(dir.to_path_buf()) })
    }

    /// Blobs in any object store.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self { inner, local: None }
    }

    /// Removes temporary objects older than `age`: what uploads interrupted by a crash left
    /// (a live upload's are never older than its time limit). Returns how many went. On S3
    /// this covers uploads that completed but were never moved into place; parts of a
    /// multipart upload that never completed are not listed by S3 (a bucket lifecycle rule
    /// aborting incomplete multipart uploads removes them).
    pub async fn sweep_tmp(&self, age: std::time::Duration) -> Result<usize> {
        let cutoff = std::time::SystemTime::now().checked_sub(age).unwrap_or(std::time::UNIX_EPOCH);
        if let Some(dir) = &self.local {
            // From the disk: listing hides the local store's own staging files (`name#n`).
            let tmp = dir.join("tmp");
            return tokio::task::spawn_blocking(move || {
                let Ok(entries) = std::fs::read_dir(&tmp) else { return 0 };
                entries
                    .flatten()
                    .filter(|e| e.metadata().is_ok_and(|m| m.is_file() && m.modified().is_ok_and(|t| t < cutoff)))
                    .filter(|e| std::fs::remove_file(e.path()).is_ok())
                    .count()
            })
            .await
            .map_err(|e| MediaError::Interrupted(e.to_string()));
        }
        let cutoff_ms = cutoff.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let tmp = Path::from("tmp");
        let stale: Vec<Path> = self
            .inner
            .list(Some(&tmp))
            .filter_map(|m| async move { m.ok().filter(|m| m.last_modified.timestamp_millis() < cutoff_ms) })
            .map(|m| m.location)
            .collect()
            .await;
        let mut removed = 0;
        for path in stale {
            if self.inner.delete(&path).await.is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Blobs in S3-compatible storage: `s3://bucket` or `s3://bucket/prefix`. Credentials
    /// and region come from the usual `AWS_*` environment variables; `endpoint` points at a
    /// non-AWS service (MinIO, Ceph, …; plain `http://` is allowed for it).
    pub fn s3(url: &str, endpoint: Option<&str>) -> Result<Self> {
        let rest =
            url.strip_prefix("s3://").ok_or_else(|| MediaError::Interrupted(format!("not an s3:// URL: {url}")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(MediaError::Interrupted(format!("no bucket in {url}")));
        }
        let mut builder = s3_builder(std::env::vars()).with_bucket_name(bucket);
        if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none() {
            builder = builder.with_region("us-east-1");
        }
        if let Some(e) = endpoint.filter(|e| !e.is_empty()) {
            builder = builder.with_endpoint(e).with_allow_http(e.starts_with("http://"));
        }
        let store: Arc<dyn ObjectStore> = Arc::new(builder.build()?);
        let prefix = prefix.trim_matches('/');
        Ok(Self::new(if prefix.is_empty() {
            store
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(store, prefix.to_owned()))
        }))
    }

    /// Streams an upload into storage, at most `limit` bytes: [`BlobStore::stage`] then
    /// [`BlobStore::finish`]. On any failure (too large, client gone) nothing is left behind.
    pub async fn put_stream<S, E>(&self, body: S, limit: u64) -> Result<Stored>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let staged = self.stage(body, limit).await?;
        self.finish(staged).await
    }

    /// Streams bytes, at most `limit`, to a temporary object while hashing them. The caller
    /// learns the hash (to claim the blob, see the files service) before the bytes take
    /// their name with [`BlobStore::finish`], or are dropped with [`BlobStore::discard`].
    pub async fn stage<S, E>(&self, body: S, limit: u64) -> Result<Staged>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let tmp = Path::from(format!("tmp/{}", uuid::Uuid::now_v7()));
        let mut writer = WriteMultipart::new(self.inner.put_multipart(&tmp).await?);
        let mut hasher = Sha256::new();
        let mut head = Vec::with_capacity(SNIFF_LEN);
        let mut size = 0u64;
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(MediaError::Interrupted(e.to_string()));
                }
            };
            size += chunk.len() as u64;
            if size > limit {
                let _ = writer.abort().await;
                return Err(MediaError::TooLarge { limit });
            }
            if head.len() < SNIFF_LEN {
                let take = (SNIFF_LEN - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            hasher.update(&chunk);
            writer.put(chunk);
            if let Err(e) = writer.wait_for_capacity(4).await {
                let _ = writer.abort().await;
                return Err(e.into());
            }
        }
        writer.finish().await?;
        let hash: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(Staged { tmp, hash, size, head })
    }

    /// Drops staged bytes.
    pub async fn discard(&self, staged: Staged) {
        let _ = self.inner.delete(&staged.tmp).await;
    }

    /// Names staged bytes by their hash, or drops them if that blob exists.
    pub async fn finish(&self, staged: Staged) -> Result<Stored> {
        let Staged { tmp, hash, size, head } = staged;
        let dest = blob_path(&hash);
        let created = match self.inner.rename_if_not_exists(&tmp, &dest).await {
            Ok(()) => true,
            Err(object_store::Error::AlreadyExists { .. }) => {
                self.keep_existing(&tmp, &dest, size).await?;
                false
            }
            // S3 without conditional copies: the name is the content's hash, so copying over
            // an existing blob would write the same bytes; look first only to save the copy.
            Err(object_store::Error::NotSupported { .. }) => match self.inner.head(&dest).await {
                Ok(_) => {
                    self.keep_existing(&tmp, &dest, size).await?;
                    false
                }
                Err(object_store::Error::NotFound { .. }) => {
                    let copied = self.inner.rename(&tmp, &dest).await;
                    if copied.is_err() {
                        let _ = self.inner.delete(&tmp).await;
                    }
                    copied?;
                    true
                }
                Err(e) => {
                    let _ = self.inner.delete(&tmp).await;
                    return Err(e.into());
                }
            },
            Err(e) => {
                let _ = self.inner.delete(&tmp).await;
                return Err(e.into());
            }
        };
        Ok(Stored { hash, size, sniffed: sniff(&head), created })
    }

    /// Drops the staged copy of bytes already stored under `dest`, unless what is stored there
    /// has another length (a blob cut short by a crash of the machine): then the staged copy
    /// replaces it.
    async fn keep_existing(&self, tmp: &Path, dest: &Path, size: u64) -> Result<()> {
        match self.inner.head(dest).await {
            Ok(meta) if meta.size != size => {
                tracing::warn!(blob = %dest, stored = meta.size, expected = size, "a stored blob was damaged; replacing it");
                let replaced = self.inner.rename(tmp, dest).await;
                if replaced.is_err() {
                    let _ = self.inner.delete(tmp).await;
                }
                Ok(replaced?)
            }
            _ => Ok(self.inner.delete(tmp).await?),
        }
    }

    /// Stores bytes already in memory (thumbnails) under their hash.
    pub async fn put_bytes(&self, bytes: Bytes) -> Result<Stored> {
        let staged = self.stage_bytes(bytes).await?;
        self.finish(staged).await
    }

    /// [`BlobStore::stage`] for bytes already in memory.
    pub async fn stage_bytes(&self, bytes: Bytes) -> Result<Staged> {
        let limit = bytes.len() as u64;
        self.stage(futures_util::stream::once(async { Ok::<_, std::convert::Infallible>(bytes) }), limit).await
    }

    /// The blob's size, or `NotFound`.
    pub async fn size(&self, hash: &str) -> Result<u64> {
        if !valid_hash(hash) {
            return Err(MediaError::NotFound);
        }
        match first_byte(self.inner.head(&blob_path(hash))).await {
            Ok(meta) => Ok(meta.size),
            Err(object_store::Error::NotFound { .. }) => Err(MediaError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// The blob's bytes (or a range of them) as a stream.
    pub async fn read(
        &self,
        hash: &str,
        range: Option<Range<u64>>,
    ) -> Result<impl Stream<Item = Result<Bytes>> + Send + 'static> {
        if !valid_hash(hash) {
            return Err(MediaError::NotFound);
        }
        if let Some(r) = &range
            && r.start >= r.end
        {
            return Err(MediaError::BadRange);
        }
        let options = GetOptions { range: range.map(GetRange::Bounded), ..Default::default() };
        let result = match first_byte(self.inner.get_opts(&blob_path(hash), options)).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Err(MediaError::NotFound),
            Err(e) => return Err(e.into()),
        };
        Ok(result.into_stream().map(|c| c.map_err(MediaError::from)))
    }

    /// Removes a blob (the caller has checked nothing refers to it). Missing is fine.
    pub async fn delete(&self, hash: &str) -> Result<()> {
        if !valid_hash(hash) {
            return Ok(());
        }
        match self.inner.delete(&blob_path(hash)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Retries of a failed S3 request: a few, quickly. A person waits on most of them (a download, a
/// thumbnail), so storage that is down is reported (503, "try again") within seconds rather
/// than after object_store's default of up to ten retries over three minutes.
fn s3_retries() -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(15),
    }
}

/// The S3 client: our retries and timeouts, then the `AWS_*` environment as object_store's
/// `from_env` reads it, so an operator's settings (a proxy, certificates, other timeouts)
/// win. A download streams from S3 as fast as the browser reads, so the whole request may
/// last long (object_store's default of 30 s cut off any download slower than that): it is
/// bounded at an hour, a stalled connection by the read timeout.
fn s3_builder(env: impl Iterator<Item = (String, String)>) -> object_store::aws::AmazonS3Builder {
    use object_store::ClientConfigKey as C;
    use object_store::aws::AmazonS3ConfigKey as K;
    let mut builder = object_store::aws::AmazonS3Builder::new()
        .with_retry(s3_retries())
        .with_config(K::Client(C::ConnectTimeout), "5s")
        .with_config(K::Client(C::ReadTimeout), "120s")
        .with_config(K::Client(C::Timeout), "1h");
    for (key, value) in env {
        if key.starts_with("AWS_")
            && let Ok(k) = key.to_ascii_lowercase().parse::<K>()
        {
            builder = builder.with_config(k, value);
        }
    }
    builder
}

/// How long S3 may take to start answering a read (its size, or a download's first bytes)
/// before the reader is told storage is unavailable: an endpoint that accepts connections
/// and never answers would otherwise hold the request for the read timeout.
const FIRST_BYTE: Duration = Duration::from_secs(10);

/// `fut` within [`FIRST_BYTE`], as a storage error past it.
async fn first_byte<T>(fut: impl Future<Output = Result<T, object_store::Error>>) -> Result<T, object_store::Error> {
    tokio::time::timeout(FIRST_BYTE, fut).await.unwrap_or_else(|_| {
        let why = format!("no answer within {} s", FIRST_BYTE.as_secs());
        Err(object_store::Error::Generic { store: "blobs", source: why.into() })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(data: &[u8], size: usize) -> impl Stream<Item = std::result::Result<Bytes, String>> + Send + use<> {
        let parts: Vec<_> = data.chunks(size).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        futures_util::stream::iter(parts)
    }

    async fn collect(s: impl Stream<Item = Result<Bytes>>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut s = std::pin::pin!(s);
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c.unwrap());
        }
        out
    }

    fn tmp_files(dir: &FsPath) -> usize {
        std::fs::read_dir(dir.join("tmp")).map(|d| d.count()).unwrap_or(0)
    }

    #[test]
    fn only_storage_failures_a_retry_may_cure_are_passing() {
        let generic = object_store::Error::Generic { store: "S3", source: "connection refused".into() };
        assert!(MediaError::Storage(generic).passing());
        let denied = object_store::Error::PermissionDenied { path: "blobs/ab".into(), source: "403".into() };
        assert!(!MediaError::Storage(denied).passing());
        assert!(!MediaError::NotFound.passing());
    }

    #[test]
    fn s3_defaults_yield_to_the_operators_environment() {
        use object_store::ClientConfigKey as C;
        use object_store::aws::AmazonS3ConfigKey as K;
        let env = |pairs: &[(&str, &str)]| {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>().into_iter()
        };
        let ours = s3_builder(env(&[]));
        assert_eq!(ours.get_config_value(&K::Client(C::Timeout)).as_deref(), Some("1h"));
        assert_eq!(ours.get_config_value(&K::Client(C::ConnectTimeout)).as_deref(), Some("5s"));
        let theirs = s3_builder(env(&[
            ("AWS_TIMEOUT", "2h"),
            ("AWS_PROXY_URL", "http://proxy.internal:3128"),
            ("AWS_ALLOW_HTTP", "true"),
            ("HOME", "/root"),
        ]));
        assert_eq!(theirs.get_config_value(&K::Client(C::Timeout)).as_deref(), Some("2h"));
        assert_eq!(theirs.get_config_value(&K::Client(C::ProxyUrl)).as_deref(), Some("http://proxy.internal:3128"));
        assert_eq!(theirs.get_config_value(&K::Client(C::AllowHttp)).as_deref(), Some("true"));
        assert_eq!(theirs.get_config_value(&K::Client(C::ReadTimeout)).as_deref(), Some("120s"), "the rest stay ours");
    }

    #[tokio::test]
    async fn identical_uploads_are_stored_once_and_read_back_in_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let a = store.put_stream(chunks(&data, 7_000), 1 << 20).await.unwrap();
        let b = store.put_stream(chunks(&data, 64_000), 1 << 20).await.unwrap();
        assert_eq!(a.hash, b.hash);
        assert!(a.created && !b.created, "the second copy is dropped");
        assert_eq!(a.size, data.len() as u64);
        assert_eq!(store.size(&a.hash).await.unwrap(), data.len() as u64);
        assert_eq!(collect(store.read(&a.hash, None).await.unwrap()).await, data);
        assert_eq!(collect(store.read(&a.hash, Some(1000..1010)).await.unwrap()).await, &data[1000..1010]);
        assert_eq!(tmp_files(dir.path()), 0, "no temporary objects remain");
        store.delete(&a.hash).await.unwrap();
        assert!(matches!(store.size(&a.hash).await, Err(MediaError::NotFound)));
        // An upload staged but never moved into place (its server crashed) is swept once old.
        let _left = store.stage_bytes(Bytes::from_static(b"orphan")).await.unwrap();
        assert_eq!(store.sweep_tmp(std::time::Duration::from_secs(3600)).await.unwrap(), 0, "too recent");
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // S3 times have whole seconds
        assert_eq!(store.sweep_tmp(std::time::Duration::ZERO).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_blob_cut_short_is_replaced_by_the_next_upload_of_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 239) as u8).collect();
        let first = store.put_stream(chunks(&data, 4_096), 1 << 20).await.unwrap();
        // What a power cut before the bytes reached the disk may leave: the name, no bytes.
        let path = dir.path().join("blobs").join(&first.hash[..2]).join(&first.hash);
        std::fs::write(&path, b"").unwrap();
        let again = store.put_stream(chunks(&data, 4_096), 1 << 20).await.unwrap();
        assert!(!again.created);
        assert_eq!(collect(store.read(&first.hash, None).await.unwrap()).await, data);
        assert_eq!(tmp_files(dir.path()), 0);
    }

    #[tokio::test]
    async fn temporary_files_left_by_a_crash_are_swept_when_old() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        let live = store.stage_bytes(Bytes::from_static(b"an upload in progress")).await.unwrap();
        let tmp = dir.path().join("tmp");
        let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
        for name in ["0190-crashed", "0190-crashed-mid-write#1"] {
            let f = std::fs::File::create(tmp.join(name)).unwrap();
            f.set_modified(two_days_ago).unwrap();
        }
        assert_eq!(tmp_files(dir.path()), 3);
        assert_eq!(store.sweep_tmp(std::time::Duration::from_secs(86_400)).await.unwrap(), 2);
        assert_eq!(tmp_files(dir.path()), 1, "the live upload stays");
        let stored = store.finish(live).await.unwrap();
        assert_eq!(store.size(&stored.hash).await.unwrap(), 21);
        assert_eq!(store.sweep_tmp(std::time::Duration::from_secs(86_400)).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn oversize_and_interrupted_uploads_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        let err = store.put_stream(chunks(&[7u8; 10_000], 1_000), 5_000).await.unwrap_err();
        assert!(matches!(err, MediaError::TooLarge { limit: 5_000 }));
        let broken =
            futures_util::stream::iter(vec![Ok(Bytes::from_static(b"abc")), Err("connection reset".to_owned())]);
        assert!(matches!(store.put_stream(broken, 1_000).await, Err(MediaError::Interrupted(_))));
        assert_eq!(tmp_files(dir.path()), 0);
        assert!(matches!(store.read("../../etc/passwd", None).await, Err(MediaError::NotFound)));
    }

    /// Against a real S3-compatible server when `QIAO_TEST_S3_ENDPOINT` is set (`scripts/test`
    /// starts one on loopback); required when `QIAO_REQUIRE_S3` is set.
    #[tokio::test]
    async fn s3_storage_behaves_like_local() {
        let Ok(endpoint) = std::env::var("QIAO_TEST_S3_ENDPOINT") else {
            assert!(
                std::env::var_os("QIAO_REQUIRE_S3").is_none(),
                "QIAO_REQUIRE_S3 is set but QIAO_TEST_S3_ENDPOINT is not"
            );
            eprintln!("QIAO_TEST_S3_ENDPOINT is not set; skipping the S3 run");
            return;
        };
        let bucket = format!("qiao-test-{}", uuid::Uuid::now_v7().simple());
        create_bucket(&endpoint, &bucket).await;
        let store = BlobStore::s3(&format!("s3://{bucket}/some/prefix"), Some(&endpoint)).unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let a = store.put_stream(chunks(&data, 30_000), 1 << 20).await.unwrap();
        let b = store.put_stream(chunks(&data, 50_000), 1 << 20).await.unwrap();
        assert_eq!(a.hash, b.hash);
        assert!(a.created && !b.created, "stored once");
        assert_eq!(store.size(&a.hash).await.unwrap(), data.len() as u64);
        assert_eq!(collect(store.read(&a.hash, Some(10..20)).await.unwrap()).await, &data[10..20]);
        assert!(matches!(store.put_stream(chunks(&[1u8; 5000], 100), 1000).await, Err(MediaError::TooLarge { .. })));
        store.delete(&a.hash).await.unwrap();
        assert!(matches!(store.size(&a.hash).await, Err(MediaError::NotFound)));
        // An upload staged but never moved into place (its server crashed) is swept once old.
        let _left = store.stage_bytes(Bytes::from_static(b"orphan")).await.unwrap();
        assert_eq!(store.sweep_tmp(std::time::Duration::from_secs(3600)).await.unwrap(), 0, "too recent");
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // S3 times have whole seconds
        assert_eq!(store.sweep_tmp(std::time::Duration::ZERO).await.unwrap(), 1);
        // Nothing but the deleted blob was ever written: no temporary objects remain.
        let left: Vec<_> = futures_util::StreamExt::collect::<Vec<_>>(store.inner.list(None)).await;
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    async fn create_bucket(endpoint: &str, bucket: &str) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
        let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
        let req = format!("PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "creating the bucket: {out}");
    }

    #[test]
    fn types_come_from_the_bytes() {
        let png = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R'];
        assert_eq!(sniff(&png), Sniffed { mime: "image/png", kind: FileKind::Image });
        assert_eq!(sniff(b"%PDF-1.7\n").kind, FileKind::Document);
        assert_eq!(sniff("会议纪要\n第一项".as_bytes()).mime, "text/plain; charset=utf-8");
        // An HTML page or script is text, served as such; binary junk is a download.
        assert_eq!(sniff(b"<html><script>alert(1)</script>").mime, "text/plain; charset=utf-8");
        assert_eq!(sniff(&[0u8, 1, 2, 3, 0xff]).mime, "application/octet-stream");
        // A prefix cut inside a multi-byte character is still text.
        let cut = &"中文".as_bytes()[..4];
        assert_eq!(sniff(cut).kind, FileKind::Document);
    }

    /// A ZIP archive of stored (uncompressed) entries.
    fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, data) in entries {
            out.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00");
            out.extend_from_slice(&[0; 4]); // crc (not checked here)
            let len = u32::try_from(data.len()).unwrap().to_le_bytes();
            out.extend_from_slice(&len);
            out.extend_from_slice(&len);
            out.extend_from_slice(&u16::try_from(name.len()).unwrap().to_le_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);
        }
        out
    }

    #[test]
    fn office_files_are_documents_whatever_the_order_of_their_parts() {
        let types: &[u8] = b"<?xml version=\"1.0\"?><Types/>";
        for (part, mime) in [
            ("word/document.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            ("xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            ("ppt/presentation.xml", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
        ] {
            for entries in [
                vec![("[Content_Types].xml", types), ("_rels/.rels", b"<Relationships/>".as_slice()), (part, b"<x/>")],
                vec![(part, b"<x/>".as_slice()), ("[Content_Types].xml", types)],
                vec![
                    ("docProps/app.xml", b"<P/>".as_slice()),
                    ("docProps/core.xml", b"<C/>"),
                    ("[Content_Types].xml", types),
                    (part, b"<x/>"),
                ],
            ] {
                assert_eq!(sniff(&zip(&entries)), Sniffed { mime, kind: FileKind::Document }, "{entries:?}");
            }
        }
        // Any other archive stays one (a part under word/ alone, after others, is not enough).
        assert_eq!(sniff(&zip(&[("photos/a.jpg", b"..."), ("notes.txt", b"hi")])).mime, "application/zip");
        assert_eq!(sniff(&zip(&[("a.txt", b"hi"), ("word/notes.txt", b"...")])).mime, "application/zip");
    }
}
