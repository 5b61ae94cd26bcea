-- Messaging: conversations and their members, messages, reactions, mentions, threads.
-- Keep in step with ../sqlite/0002_messaging.sql.

CREATE TABLE conversations (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('public', 'private', 'announcement', 'dm', 'group', 'department', 'project')),
    name TEXT NOT NULL,
    -- Case-folded name for browsing and search.
    name_key TEXT NOT NULL,
    topic TEXT NOT NULL,
    description TEXT NOT NULL,
    -- Department channels: their department (cleared if the department is deleted).
    department_id UUID UNIQUE REFERENCES departments (id) ON DELETE SET NULL,
    -- 1:1 DMs: the pair, so there is exactly one per pair.
    dm_key TEXT UNIQUE,
    created_by UUID,
    archived_at BIGINT,
    -- The last sequence number given to a change in this conversation.
    last_seq BIGINT NOT NULL DEFAULT 0,
    last_message_at BIGINT,
    member_count BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX conversations_browse ON conversations (kind, name_key, id);

-- Departments whose people are members (department and project channels).
CREATE TABLE conversation_departments (
    conversation_id UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    department_id UUID NOT NULL REFERENCES departments (id) ON DELETE CASCADE,
    include_subdepartments BOOLEAN NOT NULL,
    PRIMARY KEY (conversation_id, department_id)
);
CREATE INDEX conversation_departments_department ON conversation_departments (department_id);

CREATE TABLE members (
    conversation_id UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'poster', 'member')),
    -- Invited, joined or created it.
    direct BOOLEAN NOT NULL,
    -- Present through a linked department.
    via_department BOOLEAN NOT NULL,
    joined_at BIGINT NOT NULL,
    -- Read up to this conversation sequence number.
    read_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX members_user ON members (user_id);

CREATE TABLE messages (
    id UUID PRIMARY KEY,
    conversation_id UUID NOT NULL REFERENCES conversations (id),
    seq BIGINT NOT NULL,
    sender_id UUID NOT NULL REFERENCES users (id),
    thread_root_id UUID,
    body TEXT NOT NULL,
    -- JSON: {"user_ids": [...], "department_ids": [...], "channel": bool}
    mentions TEXT NOT NULL,
    mentions_channel BOOLEAN NOT NULL,
    client_key TEXT,
    created_at BIGINT NOT NULL,
    edited_at BIGINT,
    deleted_at BIGINT,
    pinned_at BIGINT,
    pinned_by UUID,
    reply_count BIGINT NOT NULL DEFAULT 0,
    last_reply_at BIGINT,
    -- JSON array of user ids, earliest first.
    reply_participants TEXT NOT NULL DEFAULT '[]'
);
CREATE UNIQUE INDEX messages_conversation_seq ON messages (conversation_id, seq);
CREATE UNIQUE INDEX messages_client_key ON messages (sender_id, client_key) WHERE client_key IS NOT NULL;
CREATE INDEX messages_thread ON messages (thread_root_id, seq) WHERE thread_root_id IS NOT NULL;
CREATE INDEX messages_pinned ON messages (conversation_id, pinned_at) WHERE pinned_at IS NOT NULL;

-- Earlier versions of edited messages, for the audit log (never shown to members).
CREATE TABLE message_edits (
    message_id UUID NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    edited_at BIGINT NOT NULL,
    editor_id UUID NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX message_edits_message ON message_edits (message_id, edited_at);

CREATE TABLE reactions (
    message_id UUID NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    emoji TEXT NOT NULL,
    user_id UUID NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
);

-- People (resolved from user and department mentions) a message mentions.
CREATE TABLE mentions (
    user_id UUID NOT NULL,
    message_id UUID NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    conversation_id UUID NOT NULL,
    seq BIGINT NOT NULL,
    thread_root_id UUID,
    PRIMARY KEY (user_id, message_id)
);
CREATE INDEX mentions_unread ON mentions (user_id, conversation_id, seq);

CREATE TABLE thread_follows (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    root_id UUID NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    conversation_id UUID NOT NULL,
    read_seq BIGINT NOT NULL,
    PRIMARY KEY (user_id, root_id)
);
