-- Sample orders for the development seed accounts. They carry a created_at no real order has,
-- so that the down removes these and only these: a developer's own orders of alice or bob
-- that existed before this migration survive a rollback.
INSERT INTO orders (user_id, status, total_cents, created_at)
SELECT id, 'paid', 4200, '2000-01-01 00:00:00+00'
FROM user_service.users WHERE email LIKE '%@example.test';
