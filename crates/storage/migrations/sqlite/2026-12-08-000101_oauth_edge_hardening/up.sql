-- Consent names the upstream (the RFC 8707 resource) it was given for: approving a client for
-- one upstream says nothing about another. Approvals stored before named no upstream, so they
-- show consent for none; they are dropped and each person is asked once more.
DROP TABLE consents;
CREATE TABLE consents (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id, resource)
);

-- The sweep of registered clients that were never used looks for their codes and tokens.
CREATE INDEX token_families_client ON token_families (client_id);
CREATE INDEX authorization_codes_client ON authorization_codes (client_id);
