DROP TABLE IF EXISTS subscription_checkout_sessions;
