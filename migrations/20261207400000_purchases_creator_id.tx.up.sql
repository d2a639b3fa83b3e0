-- purchases.creator_id: the purchased content's creator at purchase time, a
-- snapshot like the split, so the creator's share of a sale (and of its
-- refunds and disputes) always belongs to the creator who sold it, even if
-- the content changes hands later. The processor writes it; a writer that
-- leaves it out (an older processor during a rolling deploy, a tool) gets
-- the content's creator at insert time from the trigger, so NOT NULL (next
-- migration) never refuses a purchase.
ALTER TABLE purchases ADD COLUMN creator_id text CONSTRAINT purchases_creator_id_not_empty CHECK (creator_id <> '');

CREATE FUNCTION purchases_creator_id_default() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT c.creator_id INTO NEW.creator_id FROM content c WHERE c.id = NEW.content_id;
    IF NOT FOUND THEN
        -- What purchases_content_fkey would say, rather than a NOT NULL
        -- violation that names the wrong problem.
        RAISE EXCEPTION 'purchase %: content % does not exist', NEW.id, NEW.content_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER purchases_creator_id_default BEFORE INSERT ON purchases
    FOR EACH ROW WHEN (NEW.creator_id IS NULL) EXECUTE FUNCTION purchases_creator_id_default();
