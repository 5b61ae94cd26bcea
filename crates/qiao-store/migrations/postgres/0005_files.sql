-- Files shared in conversations. The bytes live in blob storage under the SHA-256 of their
-- content (blob_hash, and the hashes of the generated thumbnails); a blob is removed when no
-- live file refers to it any more.
CREATE TABLE files (
    id UUID PRIMARY KEY,
    conversation_id UUID NOT NULL REFERENCES conversations (id),
    uploader_id UUID NOT NULL REFERENCES users (id),
    -- Set when a message carries the file.
    message_id UUID REFERENCES messages (id),
    name TEXT NOT NULL,
    mime TEXT NOT NULL,
    kind TEXT NOT NULL,
    size BIGINT NOT NULL,
    blob_hash TEXT NOT NULL,
    width BIGINT,
    height BIGINT,
    duration_ms BIGINT,
    voice BOOLEAN NOT NULL,
    thumb_hash TEXT,
    preview_hash TEXT,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX files_conversation ON files (conversation_id, created_at);
CREATE INDEX files_message ON files (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX files_uploader ON files (uploader_id) WHERE deleted_at IS NULL;
CREATE INDEX files_blob ON files (blob_hash) WHERE deleted_at IS NULL;
CREATE INDEX files_thumb ON files (thumb_hash) WHERE deleted_at IS NULL AND thumb_hash IS NOT NULL;
CREATE INDEX files_preview ON files (preview_hash) WHERE deleted_at IS NULL AND preview_hash IS NOT NULL;
