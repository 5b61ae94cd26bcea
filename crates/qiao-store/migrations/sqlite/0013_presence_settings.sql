-- What each person chose for their presence and must outlive a restart: do-not-disturb, and
-- when it was last set (ms; the latest setting wins, whichever node or device made it).
CREATE TABLE presence_settings (
    user_id BLOB PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    do_not_disturb BOOLEAN NOT NULL,
    set_at INTEGER NOT NULL
);
