SET lock_timeout = '5s';
-- NOT VALID: only new and updated rows are checked, so neither table is scanned now.
ALTER TABLE {table} ADD CONSTRAINT {constraint}
    FOREIGN KEY ({column}) REFERENCES {references} ({references_column}) NOT VALID;
