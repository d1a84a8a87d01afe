-- Assignment: the claim of items under leases as one server-side function (one round
-- trip per ClaimNext), and a sharded counter of labeled items per project (the
-- labeled_count of labelloop.labels.submitted without counting 1M rows per submit).

-- labeled items per project = sum over shards; a submit bumps the shard of its backend
-- (pg_backend_pid() % 256), so concurrent submits, on different connections, rarely
-- wait on one another's row lock. Ingestion of already-labeled items adds its count
-- here too.
CREATE TABLE label_counts (
  project_id bigint NOT NULL,
  shard      integer NOT NULL,
  labeled    bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (project_id, shard)
);

-- claim_items(project, annotator, n, lease seconds, ranked candidate ids or NULL)
--
-- Returns up to n leases for the annotator: first the live leases it already holds
-- (same token: a page reload loses nothing), then new ones, ranked candidates first and
-- oldest-first (items.id) after them. Exclusivity: candidate item rows are locked with
-- FOR UPDATE SKIP LOCKED, and every writer of an item's leases holds that row lock, so
-- the re-check below (a new statement, hence a fresh snapshot taken after the locks are
-- held) sees every lease committed before. An item may be leased by up to
-- judgements_per_item - judgements distinct annotators at once, never twice to the same
-- annotator, never to an annotator who labeled it. Expired leases of the chosen items
-- are ended ('expired') here. Errors: SQLSTATE LL404 (no such project), LL412 (the
-- project is not active).
CREATE FUNCTION claim_items(p_project bigint, p_annotator text, p_n integer,
                            p_lease_seconds integer, p_ranked bigint[])
RETURNS TABLE (item_id bigint, token uuid, claimed_at timestamptz, expires_at timestamptz,
               already_held boolean, ranked boolean)
LANGUAGE plpgsql VOLATILE
-- Custom plans would be re-planned on every call (about 1 ms of the claim); the generic
-- plans of these statements are the intended index walks (the oldest-first scan has a
-- constant LIMIT 1 for that reason).
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
  v_k integer;
  v_status text;
  v_now timestamptz := clock_timestamp();
  v_held integer;
  v_need integer;
  v_seen bigint[] := '{}';
  v_locked bigint[];
  v_one bigint;
  v_final bigint[];
  v_got integer;
BEGIN
  SELECT p.judgements_per_item, p.status INTO v_k, v_status FROM labeling.projects p WHERE p.id = p_project;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'project_id: no project %', p_project USING ERRCODE = 'LL404';
  END IF;
  IF v_status <> 'active' THEN
    RAISE EXCEPTION 'project % is %: nothing can be claimed', p_project, v_status
      USING ERRCODE = 'LL412';
  END IF;

  RETURN QUERY
    SELECT l.item_id, l.token, l.claimed_at, l.expires_at, true, false
    FROM labeling.leases l
    WHERE l.project_id = p_project AND l.annotator = p_annotator AND l.expires_at > v_now
    ORDER BY l.claimed_at, l.item_id
    LIMIT p_n;
  GET DIAGNOSTICS v_held = ROW_COUNT;
  v_need := p_n - v_held;

  FOR attempt IN 1..8 LOOP
    EXIT WHEN v_need <= 0;
    v_locked := '{}';
    IF p_ranked IS NOT NULL AND cardinality(p_ranked) > 0 THEN
      SELECT coalesce(array_agg(s.id ORDER BY s.pos), '{}') INTO v_locked FROM (
        SELECT i.id, array_position(p_ranked, i.id) AS pos
        FROM labeling.items i
        WHERE i.id = ANY (p_ranked) AND i.id <> ALL (v_seen)
          AND i.project_id = p_project AND i.status = 'unlabeled'
          AND NOT EXISTS (SELECT 1 FROM labeling.leases l WHERE l.item_id = i.id
                            AND l.annotator = p_annotator AND l.expires_at > v_now)
          AND (SELECT count(*) FROM labeling.leases l
               WHERE l.item_id = i.id AND l.expires_at > v_now) < v_k - i.judgements
          AND (v_k = 1 OR NOT EXISTS (SELECT 1 FROM labeling.labels lb WHERE lb.item_id = i.id
                                        AND lb.annotator = p_annotator))
          AND NOT EXISTS (SELECT 1 FROM labeling.skips s WHERE s.item_id = i.id
                            AND s.annotator = p_annotator)
        ORDER BY array_position(p_ranked, i.id)
        LIMIT v_need
        FOR UPDATE OF i SKIP LOCKED) s;
    END IF;
    -- Oldest-first, one row per statement: with the constant LIMIT 1 the cached generic
    -- plan is the index walk, so the function is not re-planned on every call.
    WHILE cardinality(v_locked) < v_need LOOP
      v_one := NULL;
      SELECT i.id INTO v_one
      FROM labeling.items i
      WHERE i.project_id = p_project AND i.status = 'unlabeled'
        AND i.id <> ALL (v_seen) AND i.id <> ALL (v_locked)
        AND NOT EXISTS (SELECT 1 FROM labeling.leases l WHERE l.item_id = i.id
                          AND l.annotator = p_annotator AND l.expires_at > v_now)
        AND (SELECT count(*) FROM labeling.leases l
             WHERE l.item_id = i.id AND l.expires_at > v_now) < v_k - i.judgements
        AND (v_k = 1 OR NOT EXISTS (SELECT 1 FROM labeling.labels lb WHERE lb.item_id = i.id
                                      AND lb.annotator = p_annotator))
        AND NOT EXISTS (SELECT 1 FROM labeling.skips s WHERE s.item_id = i.id
                          AND s.annotator = p_annotator)
      ORDER BY i.id + 0
      LIMIT 1
      FOR UPDATE OF i SKIP LOCKED;
      EXIT WHEN v_one IS NULL;
      v_locked := v_locked || v_one;
    END LOOP;
    EXIT WHEN cardinality(v_locked) = 0;
    v_seen := v_seen || v_locked;

    -- The re-check, on a fresh snapshot now that the item rows are locked.
    SELECT coalesce(array_agg(x.id ORDER BY x.ord), '{}') INTO v_final
    FROM unnest(v_locked) WITH ORDINALITY AS x(id, ord)
    JOIN labeling.items i ON i.id = x.id
    WHERE i.status = 'unlabeled'
      AND NOT EXISTS (SELECT 1 FROM labeling.leases l WHERE l.item_id = x.id
                        AND l.annotator = p_annotator AND l.expires_at > v_now)
      AND (SELECT count(*) FROM labeling.leases l
           WHERE l.item_id = x.id AND l.expires_at > v_now) < v_k - i.judgements
      AND NOT EXISTS (SELECT 1 FROM labeling.labels lb WHERE lb.item_id = x.id
                        AND lb.annotator = p_annotator);

    IF cardinality(v_final) > 0 THEN
      -- Expired leases on the chosen items end now.
      WITH d AS (
        DELETE FROM labeling.leases l WHERE l.item_id = ANY (v_final) AND l.expires_at <= v_now
        RETURNING l.item_id, l.token)
      UPDATE labeling.lease_history h SET ended_at = v_now, outcome = 'expired'
      FROM d WHERE h.item_id = d.item_id AND h.token = d.token;

      RETURN QUERY
        WITH ins AS (
          INSERT INTO labeling.leases AS l (item_id, project_id, annotator, token, claimed_at, expires_at)
          SELECT x.id, p_project, p_annotator, gen_random_uuid(), v_now,
                 v_now + make_interval(secs => p_lease_seconds)
          FROM unnest(v_final) AS x(id)
          RETURNING l.item_id, l.token, l.claimed_at, l.expires_at),
        hist AS (
          INSERT INTO labeling.lease_history (item_id, project_id, annotator, token, claimed_at, expires_at)
          SELECT ins.item_id, p_project, p_annotator, ins.token, ins.claimed_at, ins.expires_at
          FROM ins)
        SELECT ins.item_id, ins.token, ins.claimed_at, ins.expires_at, false,
               coalesce(ins.item_id = ANY (p_ranked), false)
        FROM ins JOIN unnest(v_final) WITH ORDINALITY AS o(id, ord) ON o.id = ins.item_id
        ORDER BY o.ord;
      GET DIAGNOSTICS v_got = ROW_COUNT;
      v_need := v_need - v_got;
    END IF;
  END LOOP;
END;
$$;

-- Oldest-first hand-out. The order is on the expression id + 0 so that only this index
-- can serve it: with ORDER BY id the planner prefers the primary key (it cannot know
-- that the labeled rows cluster at the low ids) and then walks every labeled row at the
-- head of the id order on each claim, so claims slow down as a project gets labeled.
-- It replaces items_unlabeled_idx (same rows), so ingestion maintains no extra index.
CREATE INDEX items_claim_idx ON items (project_id, (id + 0)) WHERE status = 'unlabeled';
DROP INDEX items_unlabeled_idx;

-- An annotator who skipped an item is not offered it again (claim_items checks this).
CREATE INDEX skips_item_annotator_idx ON skips (item_id, annotator);
