-- A role's grants keep the order they were written in: a decision names its grant by index.
ALTER TABLE role_grants ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
