-- Blobs whose bytes may have to go (a file referring to them was deleted or expired): written
-- in the deletion's transaction, cleared once the clean-up after it has run. The sweep
-- retries what is left past `due_at` (the node died in between, or storage failed), so no
-- bytes are left behind for good.
CREATE TABLE blob_removals (
    hash TEXT PRIMARY KEY,
    due_at BIGINT NOT NULL
);
CREATE INDEX blob_removals_due ON blob_removals (due_at);
