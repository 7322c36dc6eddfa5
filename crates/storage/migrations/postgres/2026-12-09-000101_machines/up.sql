-- Machines: service clients (client-credentials grant) and personal access tokens.

-- A confidential client for an agent or a CI job. Its principal is its own user row (no
-- password, no identity), so roles given to that user decide its calls exactly as a person's.
-- Secrets are stored as SHA-256 hashes; during a rotation the previous one stays valid until
-- it is retired or `previous_expires_at` passes.
CREATE TABLE service_clients (
    client_id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- JSON array of upstream names the client may get tokens for
    upstreams TEXT NOT NULL,
    scopes TEXT NOT NULL,
    secret_hash BYTEA NOT NULL,
    previous_secret_hash BYTEA,
    previous_expires_at BIGINT,
    disabled_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX service_clients_user ON service_clients (user_id);

-- A user's personal access token (stored as its hash): the user's own rights, narrowed to
-- some upstreams and scopes. `last_used_at` is written in batches, off the request path.
CREATE TABLE personal_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- JSON array of upstream names
    upstreams TEXT NOT NULL,
    scopes TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    last_used_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX personal_tokens_user ON personal_tokens (user_id);
