-- Seed accounts for local development only.
INSERT INTO users (email, full_name) VALUES
    ('alice@example.test', 'Alice Example'),
    ('bob@example.test', 'Bob Example');

INSERT INTO user_profiles (user_id, display_name)
SELECT id, split_part(email, '@', 1) FROM users WHERE email LIKE '%@example.test';
