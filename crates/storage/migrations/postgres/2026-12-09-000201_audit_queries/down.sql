DROP INDEX audit_events_upstream_at;
DROP INDEX audit_events_user_at;
