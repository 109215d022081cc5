-- Case-insensitive login lookups. CONCURRENTLY cannot run inside a transaction, so this
-- migration is marked "transactional": false in dependencies.json.
CREATE INDEX CONCURRENTLY users_email_lower_idx ON users (lower(email));
