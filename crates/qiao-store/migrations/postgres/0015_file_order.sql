-- Where a file stands among its message's files, as the sender attached them: files uploaded
-- together finish in any order, and a message shows them as they were chosen. Files attached
-- before this column existed are 0 and keep the order they had (by upload time).
ALTER TABLE files ADD COLUMN attach_order INTEGER NOT NULL DEFAULT 0;
