SET lock_timeout = '5s';
-- Back to the state before: the constraint exists but is not validated.
ALTER TABLE {table} DROP CONSTRAINT {constraint};
ALTER TABLE {table} ADD CONSTRAINT {constraint}
    FOREIGN KEY ({column}) REFERENCES {references} ({references_column}) NOT VALID;
