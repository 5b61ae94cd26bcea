-- Inserting a message advances its conversation's sequence number and last-message time,
-- so a send is one statement: INSERT … SELECT last_seq + 1 … (see messages::insert_next).
-- Keep in step with ../sqlite/0003_message_seq_trigger.sql.
CREATE FUNCTION messages_advance_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversations
    SET last_seq = GREATEST(last_seq, NEW.seq),
        last_message_at = GREATEST(COALESCE(last_message_at, NEW.created_at), NEW.created_at)
    WHERE id = NEW.conversation_id;
    RETURN NEW;
END
$$;

CREATE TRIGGER messages_advance_seq AFTER INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_advance_seq();
