// Files in the conversation: how a message shows them (image previews with a full-size
// viewer, voice and audio players, file cards), uploads waiting in the composer, voice
// recording, and the conversation's file library.
import { useEffect, useRef, useState, useSyncExternalStore } from "react";
import { attachmentsAt, subscribeAttachments, updateAttachments, uploadRetryable } from "../state/attachments";
import { api, fileUrl, formatSize, thumbnailUrl, uploadFile, type UploadHandle } from "../api";
import { useT } from "../i18n";
import { useApp } from "../state/store";
import type { FileInfo, FileKind, Id } from "../types";
import { Dialog, ErrorNote, errorText } from "./common";

/** The server's preview size: smaller images have none, and are shown as sent. */
const PREVIEW_SIDE = 1280;
/** Largest GIF played in the timeline itself (larger ones play in the viewer). */
const ANIMATION_INLINE_MAX = 2 * 1024 * 1024;

function ImageFile({ f }: { f: FileInfo }) {
  const t = useT();
  const [open, setOpen] = useState(false);
  const ratio = f.width && f.height ? f.height / f.width : 0.75;
  const w = Math.min(320, f.width ?? 320);
  // A long screenshot shows its top in the timeline (the server's thumbnail is cropped so),
  // and whole, scrolling, in the viewer.
  const shown = Math.min(3, Math.max(1 / 3, ratio));
  const long = ratio > 3;
  // Thumbnails are still images: an animation (a GIF, a sticker) of modest size plays as sent.
  const animated = f.mime === "image/gif" && f.size <= ANIMATION_INLINE_MAX;
  // The viewer shows the original unless a preview is smaller and shows all of it: no preview
  // exists for an image within the preview's size, and a long or wide one's preview is cut.
  const original = !f.thumbnail || long || ratio < 1 / 3 || f.mime === "image/gif" || ((f.width ?? 0) <= PREVIEW_SIDE && (f.height ?? 0) <= PREVIEW_SIDE);
  return (
    <>
      <button className="image-file" onClick={() => setOpen(true)} aria-label={t("files.view", { name: f.name })} style={{ width: w }}>
        {f.thumbnail || animated ? (
          <img src={animated ? fileUrl(f.id) : thumbnailUrl(f.id)} alt={f.name} width={w} height={Math.round(w * shown)} loading="lazy" />
        ) : (
          <span className="file-icon">{f.name}</span>
        )}
      </button>
      {open && (
        <Dialog title={f.name} onClose={() => setOpen(false)} wide>
          <div className={long ? "viewer long" : "viewer"}>
            <img src={original ? fileUrl(f.id) : thumbnailUrl(f.id, "large")} alt={f.name} />
            <p>
              <a href={fileUrl(f.id)} target="_blank" rel="noopener">
                {t("files.original")}
              </a>{" "}
              · {f.width}×{f.height} · {formatSize(f.size)}
            </p>
          </div>
        </Dialog>
      )}
    </>
  );
}

function duration(ms?: number | null): string {
  if (!ms && ms !== 0) return "";
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** A browser's own recordings (WebM) say no length until played through, so the player shows
 * none and cannot seek: seeking past the end makes the browser find it, then back to the start. */
function findLength(a: HTMLAudioElement) {
  // Only while untouched: never under a playing or positioned player.
  if (Number.isFinite(a.duration) || !a.paused || a.currentTime !== 0) return;
  const found = () => {
    if (!Number.isFinite(a.duration)) return;
    a.removeEventListener("durationchange", found);
    a.currentTime = 0;
  };
  a.addEventListener("durationchange", found);
  a.currentTime = Number.MAX_SAFE_INTEGER;
}

/** Whether this browser can play `mime` at all (an error while loading may be the network). */
function playable(kind: "audio" | "video", mime: string): boolean {
  return document.createElement(kind).canPlayType(mime.split(";")[0]) !== "";
}

function AudioFile({ f }: { f: FileInfo }) {
  const t = useT();
  // A format this browser cannot play (AMR, APE, …) is offered as a download instead.
  if (!playable("audio", f.mime)) return <FileCard f={f} />;
  return (
    <div className={f.voice ? "audio-file voice" : "audio-file"}>
      <span className="muted">{f.voice ? t("files.voice", { duration: duration(f.duration_ms) }) : f.name}</span>
      <audio
        controls
        preload="metadata"
        src={fileUrl(f.id)}
        aria-label={f.voice ? t("files.voiceLabel") : f.name}
        onLoadedMetadata={(e) => findLength(e.currentTarget)}
      />
    </div>
  );
}

/** A video plays here when this browser can; its name, size and download link are below. */
function VideoFile({ f }: { f: FileInfo }) {
  return (
    <div className="video-block">
      {playable("video", f.mime) && <video controls preload="metadata" src={fileUrl(f.id)} className="video-file" aria-label={f.name} />}
      <FileCard f={f} />
    </div>
  );
}

const KIND_LABEL: Record<FileKind, string> = { image: "IMG", audio: "AUD", video: "VID", document: "DOC", other: "FILE" };

export function FileCard({ f, onDelete }: { f: FileInfo; onDelete?: () => void }) {
  const t = useT();
  const ext = f.name.includes(".") ? f.name.split(".").pop()!.slice(0, 4).toUpperCase() : KIND_LABEL[f.kind];
  return (
    <div className="file-card">
      <span className={`file-badge ${f.kind}`}>{ext}</span>
      <a href={fileUrl(f.id)} download={f.name} className="file-name">
        {f.name}
      </a>
      <span className="muted">{formatSize(f.size)}</span>
      {onDelete && (
        <button className="small" onClick={onDelete}>
          {t("msg.delete")}
        </button>
      )}
    </div>
  );
}

/** The files a message carries. */
export function MessageFiles({ files }: { files: FileInfo[] }) {
  return (
    <div className="message-files">
      {files.map((f) =>
        f.kind === "image" && f.thumbnail ? (
          <ImageFile key={f.id} f={f} />
        ) : f.kind === "audio" ? (
          <AudioFile key={f.id} f={f} />
        ) : f.kind === "video" ? (
          <VideoFile key={f.id} f={f} />
        ) : (
          <FileCard key={f.id} f={f} />
        ),
      )}
    </div>
  );
}

/** A file being uploaded from the composer. */
export interface Attachment {
  localId: string;
  name: string;
  size: number;
  progress: number;
  file?: FileInfo;
  error?: string;
  handle?: UploadHandle;
  /** The file, while its upload may be tried again (not after a failure that a retry cannot
   * cure: `uploadRetryable`). */
  source?: File;
}

/** Files one message may carry (the server refuses more). */
export const FILES_PER_MESSAGE_MAX = 10;

/** Uploads files for the composer at `place`: progress, cancel, and the uploaded files to send. */
export function useAttachments(conversationId: Id, place: string = conversationId) {
  const t = useT();
  const items = useSyncExternalStore(subscribeAttachments, () => attachmentsAt(place));
  const setItems = (f: (list: Attachment[]) => Attachment[]) => updateAttachments(place, f);
  const patch = (localId: string, p: Partial<Attachment>) => setItems((list) => list.map((a) => (a.localId === localId ? { ...a, ...p } : a)));

  function add(files: Iterable<File>) {
    let room = FILES_PER_MESSAGE_MAX - attachmentsAt(place).filter((a) => !a.error).length;
    for (const file of files) {
      const localId = crypto.randomUUID();
      if (room-- <= 0) {
        // Not uploaded: said on its chip, rather than the whole message failing at send.
        const error = t("files.tooMany", { max: FILES_PER_MESSAGE_MAX });
        setItems((list) => [...list, { localId, name: file.name || "pasted", size: file.size, progress: 0, error, source: file }]);
        continue;
      }
      setItems((list) => [...list, { localId, name: file.name || "pasted", size: file.size, progress: 0, source: file }]);
      upload(localId, file);
    }
  }

  function upload(localId: string, file: File) {
    const handle = uploadFile(conversationId, file, file.name || "pasted", (progress) => patch(localId, { progress }));
    patch(localId, { handle, error: undefined, progress: 0 });
    handle.promise.then(
      (f) => {
        // Removed in the instant it finished: the upload goes too.
        if (!attachmentsAt(place).some((a) => a.localId === localId)) api.deleteFile(f.id).catch(() => undefined);
        else patch(localId, { file: f, progress: 1, handle: undefined, source: undefined });
      },
      (e) => {
        if (e?.code === "cancelled") return remove(localId);
        // Only a failure that trying again may cure keeps the file to try with (and so the
        // chip's retry button): not a file too large, over the quota, or refused.
        patch(localId, { error: errorText(e), handle: undefined, source: uploadRetryable(e) ? file : undefined });
      },
    );
  }

  /** Tries a failed upload again (a network error, a restart: see `uploadRetryable`). */
  function retry(localId: string) {
    const a = attachmentsAt(place).find((x) => x.localId === localId);
    if (!a?.error || !a.source) return;
    if (attachmentsAt(place).filter((x) => !x.error).length >= FILES_PER_MESSAGE_MAX) {
      patch(localId, { error: t("files.tooMany", { max: FILES_PER_MESSAGE_MAX }) });
      return;
    }
    upload(localId, a.source);
  }

  function remove(localId: string) {
    const a = attachmentsAt(place).find((x) => x.localId === localId);
    a?.handle?.cancel();
    // An upload already finished is deleted too, rather than counting against the quota
    // until unsent uploads expire.
    if (a?.file) api.deleteFile(a.file.id).catch(() => undefined);
    setItems((list) => list.filter((x) => x.localId !== localId));
  }

  return {
    items,
    add,
    remove,
    retry,
    // After a send: what went with it goes; a failed upload stays, to try again or remove.
    clear: () => setItems((list) => list.filter((a) => a.error)),
    uploading: items.some((a) => !a.file && !a.error),
    ready: items.filter((a) => a.file).map((a) => a.file!),
  };
}

export function AttachmentList({ items, onRemove, onRetry }: { items: Attachment[]; onRemove: (id: string) => void; onRetry: (id: string) => void }) {
  const t = useT();
  if (!items.length) return null;
  return (
    <ul className="attachments" aria-label={t("files.attachments")}>
      {items.map((a) => (
        <li key={a.localId} className={a.error ? "failed" : a.file ? "done" : "uploading"}>
          <span className="file-name">{a.name}</span>
          <span className="muted">{formatSize(a.size)}</span>
          {!a.file && !a.error && (
            <progress value={a.progress} max={1} aria-label={t("files.uploading", { name: a.name })}>
              {Math.round(a.progress * 100)}%
            </progress>
          )}
          {a.error && <span className="error">{a.error}</span>}
          {a.error && a.source && (
            <button className="small" onClick={() => onRetry(a.localId)}>
              {t("files.retry")}
            </button>
          )}
          <button className="icon" onClick={() => onRemove(a.localId)} aria-label={a.file || a.error ? t("files.remove", { name: a.name }) : t("files.cancel", { name: a.name })}>
            ×
          </button>
        </li>
      ))}
    </ul>
  );
}

/** Records a voice message with the microphone and hands back the recording. */
export function VoiceRecorder({ onRecorded, disabled }: { onRecorded: (blob: Blob, durationMs: number) => void; disabled?: boolean }) {
  const t = useT();
  const [recording, setRecording] = useState<{ recorder: MediaRecorder; started: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [elapsed, setElapsed] = useState(0);
  // The microphone in use, so that leaving (another conversation, a closed thread) stops it
  // and drops the recording instead of leaving the microphone on.
  const live = useRef<{ recorder: MediaRecorder; stream: MediaStream; discard: boolean } | null>(null);
  const starting = useRef(false);
  const mounted = useRef(true);

  useEffect(
    () => () => {
      mounted.current = false;
      const l = live.current;
      if (!l) return;
      l.discard = true;
      if (l.recorder.state !== "inactive") l.recorder.stop();
      l.stream.getTracks().forEach((tr) => tr.stop());
    },
    [],
  );

  useEffect(() => {
    if (!recording) return;
    const h = setInterval(() => setElapsed(Date.now() - recording.started), 250);
    return () => clearInterval(h);
  }, [recording]);

  async function start() {
    // A second click while the browser asks for the microphone must not start a second one.
    if (starting.current || live.current) return;
    starting.current = true;
    setError(null);
    let stream: MediaStream | null = null;
    try {
      // Browsers offer the microphone only on secure pages (HTTPS or localhost).
      if (!navigator.mediaDevices?.getUserMedia) throw new DOMException("insecure", "SecurityError");
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      if (!mounted.current) {
        // Gone while the browser asked for the microphone: give it back at once.
        stream.getTracks().forEach((tr) => tr.stop());
        return;
      }
      const type = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mp4"].find((m) => MediaRecorder.isTypeSupported(m));
      const recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
      const chunks: Blob[] = [];
      const started = Date.now();
      recorder.ondataavailable = (e) => e.data.size && chunks.push(e.data);
      const entry = { recorder, stream: stream as MediaStream, discard: false };
      recorder.onstop = () => {
        entry.stream.getTracks().forEach((tr) => tr.stop());
        if (live.current === entry) live.current = null;
        const blob = new Blob(chunks, { type: recorder.mimeType });
        if (blob.size && !entry.discard) onRecorded(blob, Date.now() - started);
      };
      recorder.start(250);
      live.current = entry;
      setElapsed(0);
      setRecording({ recorder, started });
    } catch (e) {
      stream?.getTracks().forEach((tr) => tr.stop());
      const name = e instanceof DOMException ? e.name : "";
      const why =
        name === "NotAllowedError"
          ? t("files.micDenied")
          : name === "NotFoundError" || name === "OverconstrainedError"
            ? t("files.micMissing")
            : name === "SecurityError"
              ? t("files.micInsecure")
              : t("files.micError", { error: e instanceof Error ? e.message : String(e) });
      setError(why);
    } finally {
      starting.current = false;
    }
  }

  function stop() {
    recording?.recorder.stop();
    setRecording(null);
  }

  return (
    <>
      {recording ? (
        <button className="record recording" onClick={stop} aria-label={t("files.stopRecording")}>
          ■ {duration(elapsed)}
        </button>
      ) : (
        <button className="record" onClick={() => void start()} disabled={disabled} aria-label={t("files.record")} title={t("files.record")}>
          🎤
        </button>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </>
  );
}

/** The sender's local date and time as 2026-12-07-14-05-09 (a file name's part). */
function localStamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}-${p(d.getHours())}-${p(d.getMinutes())}-${p(d.getSeconds())}`;
}

interface VoiceUpload {
  id: number;
  blob: Blob;
  durationMs: number;
  /** How far the upload is (0–1), or `failed` (kept for `retry` or `discard`). */
  progress: number | "failed";
}

let voiceIds = 0;

/** Uploads voice recordings and sends each as a message. Each shows its progress; one whose
 * upload failed is kept for `retry` or `discard`. One finishing after its sender signed out
 * is dropped (it is not the next person's to send). */
export function useVoiceSender(conversationId: Id, send: (files: FileInfo[]) => void, onError: (e: unknown) => void) {
  const [uploads, setUploads] = useState<VoiceUpload[]>([]);
  const patch = (id: number, progress: VoiceUpload["progress"] | null) =>
    setUploads((all) => (progress === null ? all.filter((u) => u.id !== id) : all.map((u) => (u.id === id ? { ...u, progress } : u))));
  const upload = (blob: Blob, durationMs: number, id = ++voiceIds) => {
    const ext = blob.type.includes("ogg") ? "ogg" : blob.type.includes("mp4") ? "m4a" : "webm";
    const sender = useApp.getState().me?.id;
    setUploads((all) => [...all.filter((u) => u.id !== id), { id, blob, durationMs, progress: 0 }]);
    uploadFile(conversationId, blob, `voice-${localStamp(new Date())}.${ext}`, (p) => patch(id, p), {
      voice: true,
      durationMs,
    }).promise.then(
      (f) => {
        patch(id, null);
        if (useApp.getState().me?.id === sender) send([f]);
      },
      (e) => {
        patch(id, "failed");
        onError(e);
      },
    );
  };
  return {
    send: (blob: Blob, durationMs: number) => upload(blob, durationMs),
    uploads,
    retry: (u: VoiceUpload) => upload(u.blob, u.durationMs, u.id),
    discard: (u: VoiceUpload) => patch(u.id, null),
  };
}

/** The conversation's files, by kind, sorted. */
export function FileLibrary({ conversationId, onClose, canDelete }: { conversationId: Id; onClose: () => void; canDelete: (f: FileInfo) => boolean }) {
  const t = useT();
  const [kind, setKind] = useState("");
  const [sort, setSort] = useState("date");
  const [items, setItems] = useState<FileInfo[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const seq = useRef(0);
  const [loaded, setLoaded] = useState(false);

  /** The first page (again), or with `more` the next one after those shown. */
  async function load(more = false) {
    const mine = ++seq.current;
    try {
      const page = await api.library(conversationId, { kind: kind || undefined, sort, cursor: more ? next : undefined });
      if (mine !== seq.current) return;
      setItems((shown) => (more ? [...shown, ...page.items.filter((f) => !shown.some((s) => s.id === f.id))] : page.items));
      setNext(page.next_cursor ?? null);
      setError(null);
      setLoaded(true);
    } catch (e) {
      setError(e);
    }
  }

  useEffect(() => {
    // Another filter: nothing of the last one's list (or its next page) is shown meanwhile.
    setItems([]);
    setNext(null);
    setLoaded(false);
    void load();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [conversationId, kind, sort]);

  return (
    <aside className="side-panel" aria-label={t("files.library")}>
      <header>
        <h2>{t("files.library")}</h2>
        <button className="icon close" onClick={onClose} aria-label={t("common.close")}>
          ×
        </button>
      </header>
      <div className="row library-filters">
        <select value={kind} onChange={(e) => setKind(e.target.value)} aria-label={t("files.kind")}>
          <option value="">{t("files.all")}</option>
          {(["image", "document", "audio", "video", "other"] as const).map((k) => (
            <option key={k} value={k}>
              {t(`files.kind.${k}`)}
            </option>
          ))}
        </select>
        <select value={sort} onChange={(e) => setSort(e.target.value)} aria-label={t("files.sort")}>
          <option value="date">{t("files.sort.date")}</option>
          <option value="name">{t("files.sort.name")}</option>
          <option value="size">{t("files.sort.size")}</option>
        </select>
      </div>
      <ErrorNote error={error} />
      {items.length === 0 && !error && <p className="muted empty-note">{t(loaded ? "files.none" : "common.loading")}</p>}
      <ul className="library">
        {items.map((f) => (
          <li key={f.id}>
            {f.kind === "image" && f.thumbnail ? <img src={thumbnailUrl(f.id)} alt="" className="library-thumb" /> : null}
            <FileCard
              f={f}
              onDelete={
                canDelete(f)
                  ? () =>
                      confirm(t("files.confirmDelete", { name: f.name })) &&
                      void api
                        .deleteFile(f.id)
                        .then(() => setItems((shown) => shown.filter((x) => x.id !== f.id)))
                        .catch(setError)
                  : undefined
              }
            />
          </li>
        ))}
      </ul>
      {next && (
        <button className="small" onClick={() => void load(true)}>
          {t("files.more")}
        </button>
      )}
    </aside>
  );
}
