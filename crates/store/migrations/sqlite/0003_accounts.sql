-- Accounts the user manages: API tokens may expire, and a token made by
-- another token (with Authorization: Bearer) is that token's child: it
-- never outlives it, and revoking the parent revokes it too (the cascade).
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
ALTER TABLE api_tokens ADD COLUMN parent_id INTEGER REFERENCES api_tokens(id) ON DELETE CASCADE;
CREATE INDEX api_tokens_user ON api_tokens (user_id);
CREATE INDEX api_tokens_parent ON api_tokens (parent_id);
-- Where the user's reminders go; NULL until they set it.
ALTER TABLE users ADD COLUMN email TEXT;
