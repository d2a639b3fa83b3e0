DROP TABLE IF EXISTS creator_organization_agreements;
DROP TABLE IF EXISTS organization_platform_agreements;
DROP TABLE IF EXISTS platform_fee_config;
DROP TABLE IF EXISTS content;
-- btree_gist stays: other schemas may use it, and dropping an extension is not
-- this migration's business.
