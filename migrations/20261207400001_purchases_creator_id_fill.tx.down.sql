DROP TRIGGER IF EXISTS purchases_creator_id_fixed ON purchases;
DROP FUNCTION IF EXISTS purchases_creator_id_fixed();
ALTER TABLE purchases ALTER COLUMN creator_id DROP NOT NULL;
