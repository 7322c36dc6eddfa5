DROP TABLE upstream_secrets;
