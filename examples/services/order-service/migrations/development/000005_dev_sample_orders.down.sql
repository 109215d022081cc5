DELETE FROM orders
WHERE created_at = '2000-01-01 00:00:00+00'
  AND user_id IN (SELECT id FROM user_service.users WHERE email LIKE '%@example.test');
