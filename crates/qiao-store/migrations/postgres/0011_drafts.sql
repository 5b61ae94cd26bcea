-- What each person has started writing and not sent, per conversation and per thread, so
-- that their other devices show it too. `thread_root_id` is the nil id for the
-- conversation's own composer (a key column cannot be NULL usefully).
CREATE TABLE drafts (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    thread_root_id UUID NOT NULL,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, conversation_id, thread_root_id)
);
