-- Bulk ingestion COPYs rows straight into items (services/labeling/ingest/ingestor.cpp).
-- Every row then pays for the heap tuple, one entry per index and every row-level
-- trigger of items; profiled on 1M rows x 32 features (bench/RESULTS.md), the heap is
-- a fifth of that, the foreign key check on project_id about a third, the indexes the
-- rest. This migration keeps what a query or an invariant needs and drops the rest.

-- 1. The foreign key items.project_id -> projects: its per-row check (an SPI query with
--    FOR KEY SHARE of the project row) cost more than the heap insert itself. Every
--    writer of items checks the project in the same transaction (uploads lock its row
--    FOR UPDATE before committing), and projects are archived, never deleted; the
--    trigger below keeps it so for any project that has items.
ALTER TABLE items DROP CONSTRAINT items_project_id_fkey;

CREATE FUNCTION projects_keep_items() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM labeling.items WHERE project_id = OLD.id) THEN
    RAISE EXCEPTION 'project % has items: archive it instead of deleting it', OLD.id
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN OLD;
END;
$$;
CREATE TRIGGER projects_keep_items BEFORE DELETE ON projects
  FOR EACH ROW EXECUTE FUNCTION projects_keep_items();

-- 2. external_id compares bytewise (COLLATE "C"): the unique (project_id, external_id)
--    index is the most expensive one to insert into (external ids arrive in no order),
--    and under a libc locale each comparison copied both strings for strcoll(). Equality
--    (uniqueness, lookups) is the same under both; only the sort order of external ids
--    changes, and no query orders by them. The views that name the column are recreated
--    as they were (a column used by a view cannot change).
DROP VIEW v_labels;
DROP VIEW v_items;
ALTER TABLE items ALTER COLUMN external_id TYPE text COLLATE "C";
CREATE VIEW v_items AS
  SELECT id AS item_id, project_id, external_id, sample_ts, features,
         status = 'labeled' AS labeled, consensus AS labels, created_at
  FROM items;
CREATE VIEW v_labels AS
  SELECT l.item_id, l.project_id, i.external_id, i.sample_ts, l.annotator, l.classes,
         l.seconds_spent, l.created_at, l.updated_at
  FROM labels l JOIN items i ON i.id = l.item_id;

-- 3. items_project_status_idx (project_id, status, id) held an entry for every item;
--    its unlabeled half duplicates items_claim_idx (project_id, id + 0) WHERE unlabeled,
--    which the listing of unlabeled items now walks (storage/query_store.cpp). Only
--    labeled items keep an entry here, and items are ingested unlabeled.
DROP INDEX items_project_status_idx;
CREATE INDEX items_labeled_idx ON items (project_id, id) WHERE status = 'labeled';
