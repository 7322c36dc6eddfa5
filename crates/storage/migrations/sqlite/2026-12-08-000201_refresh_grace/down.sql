DROP INDEX refresh_tokens_successor_rotated;
ALTER TABLE refresh_tokens DROP COLUMN successor;
