-- Static upstream secrets set through the admin API. `sealed` is the value sealed by the
-- server's key ring (AAD = table, column, upstream); storage never sees the clear value.
CREATE TABLE upstream_secrets (
    upstream TEXT PRIMARY KEY NOT NULL,
    sealed BLOB NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
