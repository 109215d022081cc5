-- QA accounts that exist only in staging.
INSERT INTO users (email, full_name) VALUES
    ('qa-1@staging.test', 'QA One'),
    ('qa-2@staging.test', 'QA Two');
