-- The audit view filters by user and by upstream, newest first.
CREATE INDEX audit_events_user_at ON audit_events (user_id, at);
CREATE INDEX audit_events_upstream_at ON audit_events (upstream, at);
