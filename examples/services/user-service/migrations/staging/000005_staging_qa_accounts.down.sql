DELETE FROM users WHERE email LIKE 'qa-%@staging.test';
