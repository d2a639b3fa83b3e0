DROP TABLE IF EXISTS subscription_plans;
DROP FUNCTION IF EXISTS subscription_plans_scope_fixed();
