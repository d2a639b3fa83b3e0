-- Fills purchases.creator_id of the rows from before the column, from their
-- content (purchases' content never changes, and every purchase has one:
-- purchases_content_fkey), then makes it NOT NULL.
--
-- A migration of its own, after the column and its trigger committed: the
-- UPDATE takes only row locks, so the processor keeps inserting meanwhile
-- (the trigger fills its rows). NOT NULL is proved by a CHECK validated
-- under SHARE UPDATE EXCLUSIVE (writes go on), which lets SET NOT NULL skip
-- its own scan under ACCESS EXCLUSIVE.
UPDATE purchases p SET creator_id = c.creator_id
FROM content c
WHERE c.id = p.content_id AND p.creator_id IS NULL;

ALTER TABLE purchases ADD CONSTRAINT purchases_creator_id_present CHECK (creator_id IS NOT NULL) NOT VALID;
ALTER TABLE purchases VALIDATE CONSTRAINT purchases_creator_id_present;
ALTER TABLE purchases ALTER COLUMN creator_id SET NOT NULL;
ALTER TABLE purchases DROP CONSTRAINT purchases_creator_id_present;

-- Once a purchase is paid its creator is fixed: the ledger's postings of the
-- sale, its refunds and its dispute all name that creator. (Before payment
-- the processor may still take it from the content when the payment
-- completes, as it takes the split.) The WHEN makes the check free for
-- every update that leaves creator_id alone.
CREATE FUNCTION purchases_creator_id_fixed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'purchase %: creator_id is fixed once the purchase is paid (% → %)', OLD.id, OLD.creator_id, NEW.creator_id
        USING ERRCODE = 'check_violation';
END;
$$;

CREATE TRIGGER purchases_creator_id_fixed BEFORE UPDATE OF creator_id ON purchases
    FOR EACH ROW WHEN (OLD.purchased_at IS NOT NULL AND OLD.creator_id IS DISTINCT FROM NEW.creator_id)
    EXECUTE FUNCTION purchases_creator_id_fixed();
