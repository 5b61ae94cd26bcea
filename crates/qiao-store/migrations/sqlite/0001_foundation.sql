-- Foundation: the organisation, departments, people, sessions, the event stream, the audit log.
-- Ids are UUIDv7 (BLOB here, UUID on PostgreSQL); times are epoch milliseconds.

CREATE TABLE org (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    root_department_id BLOB NOT NULL,
    setup_complete BOOLEAN NOT NULL DEFAULT FALSE,
    created_at INTEGER NOT NULL
);

-- The global event position: every writer transaction locks this row first, so positions
-- are assigned in commit order and stay gap-free even with several nodes.
CREATE TABLE stream_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pos INTEGER NOT NULL
);
INSERT INTO stream_head (id, pos) VALUES (1, 0);

CREATE TABLE departments (
    id BLOB PRIMARY KEY,
    parent_id BLOB REFERENCES departments (id),
    name TEXT NOT NULL,
    -- Case-folded name: siblings may not share it.
    name_key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX departments_parent ON departments (parent_id);
CREATE UNIQUE INDEX departments_sibling_name ON departments (parent_id, name_key);

CREATE TABLE users (
    id BLOB PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    email TEXT UNIQUE,
    display_name TEXT NOT NULL,
    title TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'department_admin', 'member', 'guest')),
    status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    primary_department_id BLOB NOT NULL REFERENCES departments (id),
    password_hash TEXT NOT NULL,
    must_change_password BOOLEAN NOT NULL DEFAULT FALSE,
    -- Lower-cased username, name, e-mail and title for directory search.
    search_key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX users_primary_department ON users (primary_department_id);
CREATE INDEX users_display_name ON users (display_name, id);

-- Secondary department memberships (the primary one is on the users row).
CREATE TABLE user_departments (
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    department_id BLOB NOT NULL REFERENCES departments (id),
    PRIMARY KEY (user_id, department_id)
);
CREATE INDEX user_departments_department ON user_departments (department_id);

-- The subtrees a department admin manages.
CREATE TABLE department_admins (
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    department_id BLOB NOT NULL REFERENCES departments (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, department_id)
);
CREATE INDEX department_admins_department ON department_admins (department_id);

-- Signed-in devices. Only a SHA-256 of the token is stored.
CREATE TABLE sessions (
    id BLOB PRIMARY KEY,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    csrf_token TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('cookie', 'bearer')),
    device_name TEXT NOT NULL,
    ip TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- One-time links for creating the first owner.
CREATE TABLE setup_tokens (
    token_hash BLOB PRIMARY KEY,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- The committed-event log that realtime clients resume from. A bounded window: old rows
-- are pruned, and a client further behind refetches over HTTP.
CREATE TABLE events (
    pos INTEGER PRIMARY KEY,
    audience TEXT NOT NULL CHECK (audience IN ('conversation', 'user', 'staff', 'everyone')),
    conversation_id BLOB,
    user_id BLOB,
    seq INTEGER,
    kind TEXT NOT NULL,
    frame TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX events_conversation ON events (conversation_id, pos) WHERE conversation_id IS NOT NULL;
CREATE INDEX events_user ON events (user_id, pos) WHERE user_id IS NOT NULL;

-- Security-relevant actions, for administrators.
CREATE TABLE audit_log (
    id BLOB PRIMARY KEY,
    at INTEGER NOT NULL,
    actor_id BLOB,
    action TEXT NOT NULL,
    target_type TEXT,
    target_id TEXT,
    ip TEXT,
    details TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at, id);
