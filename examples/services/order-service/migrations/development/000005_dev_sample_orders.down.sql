DELETE FROM orders
WHERE user_id IN (SELECT id FROM user_service.users WHERE email LIKE '%@example.test');
