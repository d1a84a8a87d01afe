-- v_items gains `unlabeled` (status = 'unlabeled', the negation of `labeled`). A reader
-- that filters on it, and orders by item_id + 0, walks the project's own range of
-- items_claim_idx; filtering on NOT labeled could only walk items_pkey across every
-- project's items (the planner cannot tell NOT labeled means status = 'unlabeled'), so
-- exports took time in proportion to the whole table rather than to the project.
CREATE OR REPLACE VIEW v_items AS
  SELECT id AS item_id, project_id, external_id, sample_ts, features,
         status = 'labeled' AS labeled, consensus AS labels, created_at,
         status = 'unlabeled' AS unlabeled
  FROM items;
