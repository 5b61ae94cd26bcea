-- Inserting a message advances its conversation's sequence number and last-message time,
-- so a send is one statement: INSERT … SELECT last_seq + 1 … (see messages::insert_next).
CREATE TRIGGER messages_advance_seq AFTER INSERT ON messages
BEGIN
    UPDATE conversations
    SET last_seq = max(last_seq, NEW.seq),
        last_message_at = max(COALESCE(last_message_at, NEW.created_at), NEW.created_at)
    WHERE id = NEW.conversation_id;
END;
