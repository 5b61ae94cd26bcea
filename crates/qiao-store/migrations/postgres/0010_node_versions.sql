-- The build each node runs (package version and schema), so that a node refuses to join
-- nodes of another version: they may not read each other's events. Rows written before
-- this column existed read as '' (an older build).
ALTER TABLE nodes ADD COLUMN version TEXT NOT NULL DEFAULT '';
