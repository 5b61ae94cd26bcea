-- Which conversations a person is in, answered from the index alone: search's permission
-- filter, resuming clients and sign-in read it on every request, and with only (user_id)
-- indexed each row cost a lookup in the table as well.
CREATE INDEX members_user_conversation ON members (user_id, conversation_id);
DROP INDEX members_user;
