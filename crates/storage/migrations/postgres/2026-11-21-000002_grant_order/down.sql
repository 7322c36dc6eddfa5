ALTER TABLE role_grants DROP COLUMN position;
