DROP TABLE IF EXISTS content_access;
