-- Stable plans for the claim and submit path.
--
-- A lease lives for one claim+submit cycle, so between two autovacuums `leases` is a
-- few live rows among tens of thousands of dead ones, and each autoanalyze (about once
-- a minute under load) samples a different handful: no rows, one annotator, project_id
-- with n_distinct -0.5. The cached generic plans of claim_items, claim_batch,
-- submit_label and submit_batch were rebuilt from those statistics every time and flipped
-- between key lookups and plans that read every lease of the project: a bitmap scan of
-- leases_project_annotator_idx on project_id alone for the earliest expiry (0.8 ms instead
-- of 0.01), a scan of all of leases_pkey for an annotator's held leases, the whole table
-- materialized under the anti join of the candidate walk. PostgreSQL's CPU per
-- claim+submit cycle doubled or halved at each autoanalyze, and with it the claim tail
-- (bench/RESULTS.md, 2026-12-08).
--
-- 1. No column statistics on leases. With the planner's defaults (an equality matches a
--    small share of the rows) the key lookups these statements are written for always
--    cost least. Changing each column to its own type drops the statistics gathered so
--    far (no table rewrite); ANALYZE gathers none from now on.
ALTER TABLE leases
  ALTER COLUMN item_id SET STATISTICS 0,
  ALTER COLUMN project_id SET STATISTICS 0,
  ALTER COLUMN annotator SET STATISTICS 0,
  ALTER COLUMN token SET STATISTICS 0,
  ALTER COLUMN claimed_at SET STATISTICS 0,
  ALTER COLUMN expires_at SET STATISTICS 0;
ALTER TABLE leases
  ALTER COLUMN item_id TYPE bigint,
  ALTER COLUMN project_id TYPE bigint,
  ALTER COLUMN annotator TYPE text,
  ALTER COLUMN token TYPE uuid,
  ALTER COLUMN claimed_at TYPE timestamptz,
  ALTER COLUMN expires_at TYPE timestamptz;

-- 2. An annotator's leases by (annotator, project) instead of (project, annotator). The
--    earliest expiry between two item ids (claim_items, claim_batch) could then use the
--    old index on project_id alone, and with default statistics it did: it read every
--    lease of the project, dead ones included, on every claim. Now only the primary key's
--    item_id range serves it; the lookups of an annotator's leases use both columns as
--    before.
CREATE INDEX leases_annotator_project_idx ON leases (annotator, project_id);
DROP INDEX leases_project_annotator_idx;

-- 3. No lookup of leases by a second index column. The planner believes leases holds a
--    few rows, so it costs a scan of a whole index with a condition on its second column
--    (leases_pkey on annotator, the new index on project_id) like a lookup by key, and
--    took it at random. claim_items and claim_batch as in 0004 and 0006, but for three
--    conditions written so that only the lookup by key can use an index: the earliest
--    expiry by the item id range (project_id + 0), an annotator's lease on an item by the
--    item (annotator || ''), and the expired leases of the locked items by their ids. The
--    test for an annotator's lease stays a subquery run per item (OFFSET 0 keeps the
--    planner from turning it into an anti join), so it is always the lookup of that item's
--    leases: as a join, a scan of all of leases_pkey cost the planner the same.
CREATE OR REPLACE FUNCTION claim_items(p_project bigint, p_annotator text, p_n integer,
                            p_lease_seconds integer, p_ranked bigint[], p_from bigint)
RETURNS TABLE (item_id bigint, token uuid, claimed_at timestamptz, expires_at timestamptz,
               already_held boolean, ranked boolean, frontier bigint)
LANGUAGE plpgsql VOLATILE
-- Generic plans, as in 0003; and never a sequential scan: every access here is a keyed
-- lookup, but `leases` holds a few live rows among thousands of dead ones between two
-- autovacuum runs (a lease lives for one claim+submit cycle), so the statistics make a
-- scan of it look cheapest, and each probe then reads every page of the table.
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
  v_k integer;
  v_status text;
  v_now timestamptz := clock_timestamp();
  v_held integer;
  v_need integer;
  v_from bigint;
  v_front bigint;
  v_expiry timestamptz;
  v_seen bigint[] := '{}';
  v_locked bigint[];
  v_one bigint;
  v_final bigint[];
  v_got integer;
BEGIN
  SELECT p.judgements_per_item, p.status INTO v_k, v_status
  FROM labeling.projects p WHERE p.id = p_project;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'project_id: no project %', p_project USING ERRCODE = 'LL404';
  END IF;
  IF v_status <> 'active' THEN
    RAISE EXCEPTION 'project % is %: nothing can be claimed', p_project, v_status
      USING ERRCODE = 'LL412';
  END IF;
  PERFORM set_config('synchronous_commit', 'off', true);

  -- The frontier: every item below it is settled (in this statement's snapshot). From
  -- the project's start when nothing is unsettled at or after p_from.
  v_from := p_from;
  LOOP
    SELECT i.id + 0 INTO v_front FROM labeling.items i
    WHERE i.project_id = p_project AND i.status = 'unlabeled' AND i.id + 0 >= v_from
      AND (v_k > 1 OR NOT EXISTS (SELECT 1 FROM labeling.leases l
                                  WHERE l.item_id = i.id AND l.expires_at > v_now))
    ORDER BY i.id + 0 LIMIT 1;
    EXIT WHEN v_front IS NOT NULL OR v_from = 0;
    v_from := 0;
  END LOOP;
  IF v_k = 1 THEN
    SELECT min(l.expires_at) INTO v_expiry FROM labeling.leases l
    WHERE l.item_id >= v_from AND l.item_id < coalesce(v_front, 9223372036854775807)
      AND l.project_id + 0 = p_project AND l.expires_at > v_now;
  END IF;

  RETURN QUERY
    SELECT l.item_id, l.token, l.claimed_at, l.expires_at, true, false, NULL::bigint
    FROM labeling.leases l
    WHERE l.project_id = p_project AND l.annotator = p_annotator AND l.expires_at > v_now
    ORDER BY l.claimed_at, l.item_id
    LIMIT p_n;
  GET DIAGNOSTICS v_held = ROW_COUNT;
  v_need := p_n - v_held;

  FOR attempt IN 1..8 LOOP
    EXIT WHEN v_need <= 0 OR v_front IS NULL;
    v_locked := '{}';
    IF p_ranked IS NOT NULL AND cardinality(p_ranked) > 0 THEN
      SELECT coalesce(array_agg(s.id ORDER BY s.pos), '{}') INTO v_locked FROM (
        SELECT i.id, array_position(p_ranked, i.id) AS pos
        FROM labeling.items i
        WHERE i.id = ANY (p_ranked) AND i.id <> ALL (v_seen)
          AND i.project_id = p_project AND i.status = 'unlabeled'
          AND (SELECT count(*) FROM labeling.leases l
               WHERE l.item_id = i.id AND l.expires_at > v_now) < v_k - i.judgements
          AND NOT EXISTS (SELECT 1 FROM labeling.leases l WHERE l.item_id = i.id
                            AND l.annotator || '' = p_annotator AND l.expires_at > v_now
                          OFFSET 0)
          AND (v_k = 1 OR NOT EXISTS (SELECT 1 FROM labeling.labels lb WHERE lb.item_id = i.id
                                        AND lb.annotator = p_annotator))
          AND NOT EXISTS (SELECT 1 FROM labeling.skips s WHERE s.item_id = i.id
                            AND s.annotator = p_annotator)
        ORDER BY array_position(p_ranked, i.id)
        LIMIT v_need
        FOR UPDATE OF i SKIP LOCKED) s;
    END IF;
    -- Oldest-first from the frontier, one row per statement (constant LIMIT 1: the cached
    -- generic plan is the walk of items_claim_idx).
    WHILE cardinality(v_locked) < v_need LOOP
      v_one := NULL;
      SELECT i.id INTO v_one
      FROM labeling.items i
      WHERE i.project_id = p_project AND i.status = 'unlabeled' AND i.id + 0 >= v_front
        AND i.id <> ALL (v_seen) AND i.id <> ALL (v_locked)
        AND (SELECT count(*) FROM labeling.leases l
             WHERE l.item_id = i.id AND l.expires_at > v_now) < v_k - i.judgements
        AND NOT EXISTS (SELECT 1 FROM labeling.leases l WHERE l.item_id = i.id
                          AND l.annotator || '' = p_annotator AND l.expires_at > v_now
                          OFFSET 0)
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

    -- The re-check, on a fresh snapshot now that the item rows are locked; expired
    -- leases of the items that pass end now (a history row each).
    WITH fin AS (
      SELECT x.id, x.ord
      FROM unnest(v_locked) WITH ORDINALITY AS x(id, ord)
      JOIN labeling.items i ON i.id = x.id
      WHERE i.status = 'unlabeled'
        AND NOT EXISTS (SELECT 1 FROM labeling.leases l WHERE l.item_id = x.id
                          AND l.annotator || '' = p_annotator AND l.expires_at > v_now
                          OFFSET 0)
        AND (SELECT count(*) FROM labeling.leases l
             WHERE l.item_id = x.id AND l.expires_at > v_now) < v_k - i.judgements
        AND NOT EXISTS (SELECT 1 FROM labeling.labels lb WHERE lb.item_id = x.id
                          AND lb.annotator = p_annotator)),
    d AS (
      DELETE FROM labeling.leases l
      WHERE l.item_id = ANY (v_locked) AND l.item_id IN (SELECT fin.id FROM fin)
        AND l.expires_at <= v_now
      RETURNING l.item_id, l.project_id, l.annotator, l.token, l.claimed_at, l.expires_at),
    h AS (
      INSERT INTO labeling.lease_history (item_id, project_id, annotator, token, claimed_at,
                                          expires_at, ended_at, outcome)
      SELECT d.item_id, d.project_id, d.annotator, d.token, d.claimed_at, d.expires_at, v_now,
             'expired'
      FROM d)
    SELECT coalesce(array_agg(fin.id ORDER BY fin.ord), '{}') INTO v_final FROM fin;

    IF cardinality(v_final) > 0 THEN
      RETURN QUERY
        WITH ins AS (
          INSERT INTO labeling.leases AS l (item_id, project_id, annotator, token, claimed_at, expires_at)
          SELECT x.id, p_project, p_annotator, gen_random_uuid(), v_now,
                 v_now + make_interval(secs => p_lease_seconds)
          FROM unnest(v_final) AS x(id)
          RETURNING l.item_id, l.token, l.claimed_at, l.expires_at)
        SELECT ins.item_id, ins.token, ins.claimed_at, ins.expires_at, false,
               coalesce(ins.item_id = ANY (p_ranked), false), NULL::bigint
        FROM ins JOIN unnest(v_final) WITH ORDINALITY AS o(id, ord) ON o.id = ins.item_id
        ORDER BY o.ord;
      GET DIAGNOSTICS v_got = ROW_COUNT;
      v_need := v_need - v_got;
    END IF;
  END LOOP;
  item_id := NULL;
  token := NULL;
  claimed_at := NULL;
  expires_at := v_expiry;
  already_held := false;
  ranked := false;
  frontier := v_front;
  RETURN NEXT;
END;
$$;

CREATE OR REPLACE FUNCTION claim_batch(p_project bigint, p_annotators text[], p_ns integer[],
                            p_lease_seconds integer, p_ranked bigint[], p_from bigint)
RETURNS TABLE (slot integer, item_id bigint, token uuid, claimed_at timestamptz,
               expires_at timestamptz, already_held boolean, ranked boolean, frontier bigint)
LANGUAGE plpgsql VOLATILE
-- As claim_items: generic plans, every access a keyed lookup.
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
  v_k integer;
  v_status text;
  v_now timestamptz := clock_timestamp();
  v_need integer[];
  v_total integer;
  v_held integer;
  v_from bigint;
  v_front bigint;
  v_expiry timestamptz;
  v_seen bigint[] := '{}';
  v_locked bigint[];
  v_more bigint[];
  v_final bigint[];
  v_skip_items bigint[];
  v_skip_slots integer[];
  v_items bigint[];
  v_slots integer[];
  v_left integer;
  v_skipped boolean;
BEGIN
  SELECT p.judgements_per_item, p.status INTO v_k, v_status
  FROM labeling.projects p WHERE p.id = p_project;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'project_id: no project %', p_project USING ERRCODE = 'LL404';
  END IF;
  IF v_status <> 'active' THEN
    RAISE EXCEPTION 'project % is %: nothing can be claimed', p_project, v_status
      USING ERRCODE = 'LL412';
  END IF;
  IF v_k > 1 THEN
    slot := 0;
    RETURN NEXT;
    RETURN;
  END IF;
  PERFORM set_config('synchronous_commit', 'off', true);

  -- The frontier, as in claim_items (k = 1: an item under a live lease is settled).
  v_from := p_from;
  LOOP
    SELECT i.id + 0 INTO v_front FROM labeling.items i
    WHERE i.project_id = p_project AND i.status = 'unlabeled' AND i.id + 0 >= v_from
      AND NOT EXISTS (SELECT 1 FROM labeling.leases l
                      WHERE l.item_id = i.id AND l.expires_at > v_now)
    ORDER BY i.id + 0 LIMIT 1;
    EXIT WHEN v_front IS NOT NULL OR v_from = 0;
    v_from := 0;
  END LOOP;
  SELECT min(l.expires_at) INTO v_expiry FROM labeling.leases l
  WHERE l.item_id >= v_from AND l.item_id < coalesce(v_front, 9223372036854775807)
    AND l.project_id + 0 = p_project AND l.expires_at > v_now;

  -- What each annotator still needs once the leases it holds are counted.
  SELECT array_agg(s.n - s.held ORDER BY s.ord), sum(s.n - s.held), sum(s.held)
    INTO v_need, v_total, v_held
  FROM (SELECT a.ord, a.n,
               least(a.n, (SELECT count(*) FROM labeling.leases l
                           WHERE l.project_id = p_project AND l.annotator = a.annotator
                             AND l.expires_at > v_now))::integer AS held
        FROM unnest(p_annotators, p_ns) WITH ORDINALITY AS a(annotator, n, ord)) s;
  IF v_held > 0 THEN
    RETURN QUERY
      SELECT h.slot, h.item_id, h.token, h.claimed_at, h.expires_at, true, false, NULL::bigint
      FROM (SELECT a.ord::integer AS slot, l.item_id, l.token, l.claimed_at, l.expires_at, a.n,
                   row_number() OVER (PARTITION BY a.ord ORDER BY l.claimed_at, l.item_id) AS rn
            FROM unnest(p_annotators, p_ns) WITH ORDINALITY AS a(annotator, n, ord)
            JOIN labeling.leases l ON l.project_id = p_project AND l.annotator = a.annotator
                                  AND l.expires_at > v_now) h
      WHERE h.rn <= h.n
      ORDER BY h.slot, h.rn;
  END IF;

  FOR attempt IN 1..8 LOOP
    EXIT WHEN v_total <= 0 OR v_front IS NULL;
    -- Candidates for all the annotators at once: ranked first, then oldest-first from the
    -- frontier; rows locked FOR UPDATE SKIP LOCKED as claim_items locks them.
    v_locked := '{}';
    IF p_ranked IS NOT NULL AND cardinality(p_ranked) > 0 THEN
      SELECT coalesce(array_agg(s.id ORDER BY s.pos), '{}') INTO v_locked FROM (
        SELECT i.id, array_position(p_ranked, i.id) AS pos
        FROM labeling.items i
        WHERE i.id = ANY (p_ranked) AND i.id <> ALL (v_seen)
          AND i.project_id = p_project AND i.status = 'unlabeled' AND i.judgements < 1
          AND NOT EXISTS (SELECT 1 FROM labeling.leases l
                          WHERE l.item_id = i.id AND l.expires_at > v_now)
        ORDER BY array_position(p_ranked, i.id)
        LIMIT v_total
        FOR UPDATE OF i SKIP LOCKED) s;
    END IF;
    IF cardinality(v_locked) < v_total THEN
      SELECT coalesce(array_agg(s.id ORDER BY s.id), '{}') INTO v_more FROM (
        SELECT i.id + 0 AS id
        FROM labeling.items i
        WHERE i.project_id = p_project AND i.status = 'unlabeled' AND i.id + 0 >= v_front
          AND i.id <> ALL (v_seen) AND i.id <> ALL (v_locked) AND i.judgements < 1
          AND NOT EXISTS (SELECT 1 FROM labeling.leases l
                          WHERE l.item_id = i.id AND l.expires_at > v_now)
        ORDER BY i.id + 0
        LIMIT v_total - cardinality(v_locked)
        FOR UPDATE OF i SKIP LOCKED) s;
      v_locked := v_locked || v_more;
    END IF;
    EXIT WHEN cardinality(v_locked) = 0;
    v_seen := v_seen || v_locked;

    -- The re-check on a fresh snapshot, as claim_items'; expired leases of the items that
    -- pass end now (a history row each).
    WITH fin AS (
      SELECT x.id, x.ord
      FROM unnest(v_locked) WITH ORDINALITY AS x(id, ord)
      JOIN labeling.items i ON i.id = x.id
      WHERE i.status = 'unlabeled' AND i.judgements < 1
        AND NOT EXISTS (SELECT 1 FROM labeling.leases l
                        WHERE l.item_id = x.id AND l.expires_at > v_now)),
    d AS (
      DELETE FROM labeling.leases l
      WHERE l.item_id = ANY (v_locked) AND l.item_id IN (SELECT fin.id FROM fin)
        AND l.expires_at <= v_now
      RETURNING l.item_id, l.project_id, l.annotator, l.token, l.claimed_at, l.expires_at),
    h AS (
      INSERT INTO labeling.lease_history (item_id, project_id, annotator, token, claimed_at,
                                          expires_at, ended_at, outcome)
      SELECT d.item_id, d.project_id, d.annotator, d.token, d.claimed_at, d.expires_at, v_now,
             'expired'
      FROM d)
    SELECT coalesce(array_agg(fin.id ORDER BY fin.ord), '{}') INTO v_final FROM fin;
    CONTINUE WHEN cardinality(v_final) = 0;

    -- Items to annotators, in order: the i-th item to the i-th open place, unless one of
    -- these annotators skipped one of these items (rare): then one by one.
    SELECT coalesce(array_agg(s.item_id), '{}'), coalesce(array_agg(a.ord::integer), '{}')
      INTO v_skip_items, v_skip_slots
    FROM labeling.skips s
    JOIN unnest(p_annotators) WITH ORDINALITY AS a(annotator, ord) ON a.annotator = s.annotator
    WHERE s.item_id = ANY (v_final);
    IF cardinality(v_skip_items) = 0 THEN
      SELECT coalesce(array_agg(f.id ORDER BY f.rn), '{}'),
             coalesce(array_agg(z.slot ORDER BY f.rn), '{}')
        INTO v_items, v_slots
      FROM (SELECT a.ord::integer AS slot, row_number() OVER (ORDER BY a.ord, g) AS rn
            FROM unnest(v_need) WITH ORDINALITY AS a(need, ord), generate_series(1, a.need) g) z
      JOIN unnest(v_final) WITH ORDINALITY AS f(id, rn) ON f.rn = z.rn;
    ELSE
      v_items := '{}';
      v_slots := '{}';
      FOR a IN 1..cardinality(v_need) LOOP
        v_left := v_need[a];
        FOR c IN 1..cardinality(v_final) LOOP
          EXIT WHEN v_left <= 0;
          CONTINUE WHEN v_final[c] = ANY (v_items);
          v_skipped := false;
          FOR j IN 1..cardinality(v_skip_items) LOOP
            v_skipped := v_skipped OR (v_skip_items[j] = v_final[c] AND v_skip_slots[j] = a);
          END LOOP;
          CONTINUE WHEN v_skipped;
          v_items := v_items || v_final[c];
          v_slots := v_slots || a;
          v_left := v_left - 1;
        END LOOP;
      END LOOP;
    END IF;
    CONTINUE WHEN cardinality(v_items) = 0;

    RETURN QUERY
      WITH ins AS (
        INSERT INTO labeling.leases AS l (item_id, project_id, annotator, token, claimed_at,
                                          expires_at)
        SELECT x.id, p_project, p_annotators[x.slot], gen_random_uuid(), v_now,
               v_now + make_interval(secs => p_lease_seconds)
        FROM unnest(v_items, v_slots) AS x(id, slot)
        RETURNING l.item_id, l.token, l.claimed_at, l.expires_at)
      SELECT x.slot, ins.item_id, ins.token, ins.claimed_at, ins.expires_at, false,
             coalesce(ins.item_id = ANY (p_ranked), false), NULL::bigint
      FROM ins JOIN unnest(v_items, v_slots) WITH ORDINALITY AS x(id, slot, ord)
        ON x.id = ins.item_id
      ORDER BY x.ord;
    v_total := v_total - cardinality(v_items);
    IF v_total > 0 THEN
      SELECT array_agg(a.need - (SELECT count(*) FROM unnest(v_slots) AS s(slot)
                                 WHERE s.slot = a.ord)::integer ORDER BY a.ord)
        INTO v_need
      FROM unnest(v_need) WITH ORDINALITY AS a(need, ord);
    END IF;
  END LOOP;
  slot := NULL;
  item_id := NULL;
  token := NULL;
  claimed_at := NULL;
  expires_at := v_expiry;
  already_held := false;
  ranked := false;
  frontier := v_front;
  RETURN NEXT;
END;
$$;

-- 4. Key lookups only, in the four functions. Every access there is a lookup of a few rows
--    by key, and the planner's other choices, costed from a table it believes holds a few
--    rows, read every lease: a bitmap scan of all the project's entries, a full index scan
--    sorted into a merge anti join, the whole table materialized under a nested loop. A
--    plain index scan also marks the index entries of dead leases, so that later lookups
--    step over them without reading the table (a bitmap scan never does).
ALTER FUNCTION claim_items(bigint, text, integer, integer, bigint[], bigint)
  SET enable_bitmapscan = off SET enable_mergejoin = off SET enable_material = off;
ALTER FUNCTION claim_batch(bigint, text[], integer[], integer, bigint[], bigint)
  SET enable_bitmapscan = off SET enable_mergejoin = off SET enable_material = off;
ALTER FUNCTION submit_label(bigint, uuid, text, text[], real, bigint)
  SET enable_bitmapscan = off SET enable_mergejoin = off SET enable_material = off;
ALTER FUNCTION submit_batch(bigint[], uuid[], text[], integer[], integer[], text[], real[], bigint)
  SET enable_bitmapscan = off SET enable_mergejoin = off SET enable_material = off;
