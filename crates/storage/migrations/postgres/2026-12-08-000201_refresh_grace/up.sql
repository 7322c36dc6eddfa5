-- A spent refresh token keeps its successor pair, sealed by the server, for the reuse grace
-- period only: a client that retries a refresh gets the same pair instead of a revoked family.
ALTER TABLE refresh_tokens ADD COLUMN successor BYTEA;
CREATE INDEX refresh_tokens_successor_rotated ON refresh_tokens (rotated_at) WHERE successor IS NOT NULL;
