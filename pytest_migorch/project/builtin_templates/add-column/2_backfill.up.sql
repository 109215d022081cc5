-- Only the rows still NULL, so a rerun after a partial backfill is cheap. For a very large table
-- backfill in batches outside the deploy first; this then updates nothing.
UPDATE {table} SET {column} = {value} WHERE {column} IS NULL;
