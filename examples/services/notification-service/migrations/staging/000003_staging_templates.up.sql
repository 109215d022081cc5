INSERT INTO templates (name, channel, body) VALUES
    ('staging-smoke-test', 'email', 'This is a staging smoke test.');
