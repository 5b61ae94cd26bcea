-- Uploads never sent in a message, oldest first: housekeeping expires them (they count
-- toward their uploader's quota until then).
CREATE INDEX files_unsent ON files (created_at) WHERE message_id IS NULL AND deleted_at IS NULL;
