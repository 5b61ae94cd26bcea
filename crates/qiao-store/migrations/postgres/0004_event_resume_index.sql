-- Resuming clients read organisation-wide events (staff and everyone) by position.
CREATE INDEX events_broadcast ON events (pos) WHERE audience IN ('staff', 'everyone');
