DROP INDEX IF EXISTS purchases_customer_created_idx;
DROP TABLE IF EXISTS checkout_sessions;
