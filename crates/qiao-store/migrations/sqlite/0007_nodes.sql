-- The nodes serving this database (cluster mode), each refreshing `seen_at` every few
-- seconds while it runs, so that a starting node can see the others and refuse a
-- combination that would not work (a node without the event bus, files kept per node).
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    data_dir TEXT NOT NULL,
    bus BOOLEAN NOT NULL,
    shared_files BOOLEAN NOT NULL,
    started_at BIGINT NOT NULL,
    seen_at BIGINT NOT NULL
);
