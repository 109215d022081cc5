DROP VIEW pending_notifications;
DROP TABLE notifications;
