DROP TRIGGER IF EXISTS purchases_creator_id_default ON purchases;
DROP FUNCTION IF EXISTS purchases_creator_id_default();
ALTER TABLE purchases DROP COLUMN IF EXISTS creator_id;
