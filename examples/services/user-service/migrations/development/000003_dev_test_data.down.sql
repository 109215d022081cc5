DELETE FROM user_profiles
WHERE user_id IN (SELECT id FROM users WHERE email LIKE '%@example.test');
DELETE FROM users WHERE email LIKE '%@example.test';
