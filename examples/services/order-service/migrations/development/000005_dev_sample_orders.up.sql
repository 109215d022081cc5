INSERT INTO orders (user_id, status, total_cents)
SELECT id, 'paid', 4200 FROM user_service.users WHERE email LIKE '%@example.test';
