-- Uploads and blob clean-up coordinate here, also across nodes: an upload claims the blobs
-- it is about to refer to before it checks whether they exist; a clean-up marks the blobs it
-- is about to remove (`deleting`) only if no file refers to them and nobody claims them.
-- Both go through the writer, whose transactions are serialised by the stream head, so
-- neither can proceed over the other. Claims past `expires_at` (a node died) are ignored.
CREATE TABLE blob_claims (
    claim_id UUID NOT NULL,
    hash TEXT NOT NULL,
    deleting BOOLEAN NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (claim_id, hash)
);
CREATE INDEX blob_claims_hash ON blob_claims (hash, expires_at);
