-- What browsing channels matches against: the folded name and its pinyin
-- (`qiao_domain::conversation::search_key`). Filled in when the store opens.
ALTER TABLE conversations ADD COLUMN search_key TEXT NOT NULL DEFAULT '';
