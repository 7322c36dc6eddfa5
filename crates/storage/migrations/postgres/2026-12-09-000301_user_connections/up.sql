-- Each user's own connection to an upstream: the sealed `user_oauth` grant (tokens, client,
-- endpoints as JSON) or the sealed `user_secret`. The server seals with its key ring
-- (AAD = table, column, user, upstream); storage never sees a clear value. `version` and the
-- lease columns make a refresh happen once across replicas, as for provider grants.
CREATE TABLE user_connections (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    upstream TEXT NOT NULL,
    kind TEXT NOT NULL,
    sealed BYTEA NOT NULL,
    version BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    connected_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, upstream)
);
CREATE INDEX user_connections_upstream ON user_connections (upstream);
