-- Who follows a thread: an @channel in a reply reaches the thread's followers.
CREATE INDEX thread_follows_root ON thread_follows (root_id);
