DELETE FROM templates WHERE name = 'staging-smoke-test';
