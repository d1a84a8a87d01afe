-- A cheaper claim+submit cycle (the labeling benchmark of bench/labeling).
--
-- 1. lease_history gets one row per lease, written when the lease ends (submitted,
--    released, skipped, expired), with claimed_at and ended_at: a claim no longer inserts
--    a history row that the submit then updates. Live leases are the rows of `leases`.
-- 2. claim_items takes a frontier: an item id below which every item of the project was
--    seen settled: labeled (final) or, with judgements_per_item = 1, under a live lease.
--    The oldest-first walk starts there instead of at the project's first item, so it no
--    longer steps over the index entries of every item labeled so far (they stay in
--    items_claim_idx until VACUUM) nor over every item under lease. The caller keeps the
--    frontier (the function returns it with the earliest expiry of the leases it stepped
--    over), lowers it when it releases a lease, and starts again from 0 when such a lease
--    expires and now and then, for items committed late with ids below it (two concurrent
--    uploads into one project) and for leases another replica released.
-- 3. submit_label does the common submit (no other annotator's label on the item yet) in
--    one call: lock, lease check, class check, label, lease end, item state, counter.

-- Live leases have no history row any more; they get one when they end.
DELETE FROM lease_history h USING leases l WHERE h.token = l.token AND h.ended_at IS NULL;

DROP FUNCTION claim_items(bigint, text, integer, integer, bigint[]);

-- claim_items(project, annotator, n, lease seconds, ranked candidate ids or NULL, frontier)
--
-- As in 0003 (held leases first, then ranked candidates, then oldest-first; candidate rows
-- locked FOR UPDATE SKIP LOCKED and re-checked on a fresh snapshot), with these changes:
-- the oldest-first walk starts at the project's first unsettled item at or after p_from
-- (from the start when there is none): unlabeled and, when judgements_per_item = 1, not
-- under a live lease. The last row returned has item_id NULL and carries that item's id
-- in `frontier` (the next call's p_from; NULL when every item is settled) and, in
-- `expires_at`, the earliest expiry of the live leases on items between the start of the
-- walk and the frontier (when one of them expires, its item is unsettled again: walk
-- from 0). The claim commits asynchronously (synchronous_commit off): a crash may forget
-- leases granted in its last fraction of a second, and their holders' submits are then
-- refused; nothing stored durably ever shows an item leased twice. Submits stay
-- synchronous, and a submit's commit makes the claims before it durable too.
CREATE FUNCTION claim_items(p_project bigint, p_annotator text, p_n integer,
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
      AND l.project_id = p_project AND l.expires_at > v_now;
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
                            AND l.annotator = p_annotator AND l.expires_at > v_now)
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
                          AND l.annotator = p_annotator AND l.expires_at > v_now)
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
                          AND l.annotator = p_annotator AND l.expires_at > v_now)
        AND (SELECT count(*) FROM labeling.leases l
             WHERE l.item_id = x.id AND l.expires_at > v_now) < v_k - i.judgements
        AND NOT EXISTS (SELECT 1 FROM labeling.labels lb WHERE lb.item_id = x.id
                          AND lb.annotator = p_annotator)),
    d AS (
      DELETE FROM labeling.leases l
      WHERE l.item_id IN (SELECT fin.id FROM fin) AND l.expires_at <= v_now
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

-- submit_label(item, lease token, annotator or '' , classes, seconds spent, class lock base)
--
-- The submit of a lease when no other annotator has labeled the item yet (always so for
-- judgements_per_item = 1): the label is then the consensus. Under the item's row lock and
-- the project's class lock (shared, as in 0003's submit) it checks, on fresh snapshots,
-- the project (active), the lease (token on this item, of p_annotator when given) and the
-- classes (each a class of the project, none twice, one for single-choice projects; the
-- label service's CheckLabel is the reference, this only accepts what it accepts), then
-- writes label, lease end (history 'submitted'), item state and the labeled counter.
-- One row: outcome 'ok' with the result; 'no_lease' (no live lease row with this token on
-- the item); 'invalid' (classes refused: the caller explains with the schema returned);
-- 'others' (the item has other labels or one of this annotator: the caller computes the
-- consensus and writes itself). Nothing is written unless the outcome is 'ok'. Errors:
-- LL404 (no such item), LL412 (project not active, lease of another annotator).
CREATE FUNCTION submit_label(p_item bigint, p_token uuid, p_annotator text, p_classes text[],
                             p_seconds real, p_lock_base bigint)
RETURNS TABLE (outcome text, project_id bigint, annotator text, classes text[], judgements integer,
               item_status text, labeled_count bigint, label_kind text, schema_classes text[])
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off  -- as for claim_items
AS $$
#variable_conflict use_column
DECLARE
  v_project bigint;
  v_old_status text;
  v_k integer;
  v_kind text;
  v_pclasses text[];
  v_pstatus text;
  v_annotator text;
  v_others bigint;
  v_mine boolean;
  v_classes text[];
  v_labeled boolean;
  v_count bigint;
BEGIN
  SELECT i.project_id, i.status, p.judgements_per_item, p.label_kind
    INTO v_project, v_old_status, v_k, v_kind
  FROM labeling.items i JOIN labeling.projects p ON p.id = i.project_id
  WHERE i.id = p_item AND pg_advisory_xact_lock_shared(p_lock_base + i.project_id) IS NOT NULL
  FOR UPDATE OF i;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'item_id: no item %', p_item USING ERRCODE = 'LL404';
  END IF;
  -- A new statement: a fresh snapshot, taken with both locks held, for the project's
  -- classes and status, the lease and the item's labels.
  SELECT p.classes, p.status, l.annotator, lb.others, lb.mine,
         ARRAY(SELECT s.c FROM unnest(p.classes) WITH ORDINALITY AS s(c, ord)
               WHERE s.c = ANY (p_classes) ORDER BY s.ord)
    INTO v_pclasses, v_pstatus, v_annotator, v_others, v_mine, v_classes
  FROM labeling.projects p
  LEFT JOIN labeling.leases l ON l.item_id = p_item AND l.token = p_token
  LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE x.annotator <> l.annotator) AS others,
           coalesce(bool_or(x.annotator = l.annotator), false) AS mine
    FROM labeling.labels x WHERE x.item_id = p_item) lb ON true
  WHERE p.id = v_project;
  IF v_pstatus <> 'active' THEN
    RAISE EXCEPTION 'project % is %: labels are not accepted', v_project, v_pstatus
      USING ERRCODE = 'LL412';
  END IF;
  IF v_annotator IS NULL THEN
    outcome := 'no_lease';
    project_id := v_project;
    RETURN NEXT;
    RETURN;
  END IF;
  IF p_annotator <> '' AND p_annotator <> v_annotator THEN
    RAISE EXCEPTION 'annotator: the lease belongs to another annotator' USING ERRCODE = 'LL412';
  END IF;
  -- v_classes: the given classes in the schema's order; a duplicate or an unknown class
  -- makes it shorter.
  IF cardinality(v_classes) <> cardinality(p_classes)
     OR (v_kind = 'single' AND cardinality(p_classes) <> 1) THEN
    outcome := 'invalid';
    project_id := v_project;
    label_kind := v_kind;
    schema_classes := v_pclasses;
    RETURN NEXT;
    RETURN;
  END IF;
  IF v_others > 0 OR v_mine THEN
    outcome := 'others';
    project_id := v_project;
    RETURN NEXT;
    RETURN;
  END IF;

  -- Everything the submit writes, in one statement; the counter's sum is read on the
  -- statement's snapshot, so this submit's increment is added to it.
  v_labeled := v_k <= 1;
  WITH del AS (
    DELETE FROM labeling.leases l WHERE l.item_id = p_item AND l.token = p_token
    RETURNING l.item_id, l.project_id, l.annotator, l.token, l.claimed_at, l.expires_at),
  hist AS (
    INSERT INTO labeling.lease_history (item_id, project_id, annotator, token, claimed_at,
                                        expires_at, ended_at, outcome)
    SELECT d.item_id, d.project_id, d.annotator, d.token, d.claimed_at, d.expires_at,
           clock_timestamp(), 'submitted'
    FROM del d),
  lab AS (
    INSERT INTO labeling.labels (item_id, project_id, annotator, classes, seconds_spent)
    VALUES (p_item, v_project, v_annotator, v_classes, p_seconds)),
  upd AS (
    UPDATE labeling.items i
    SET judgements = 1, status = CASE WHEN v_labeled THEN 'labeled' ELSE 'unlabeled' END,
        consensus = CASE WHEN v_labeled THEN v_classes END, consensus_tie = false
    WHERE i.id = p_item),
  cnt AS (
    INSERT INTO labeling.label_counts AS lc (project_id, shard, labeled)
    SELECT v_project, pg_backend_pid() % 256, 1 WHERE v_labeled AND v_old_status <> 'labeled'
    ON CONFLICT (project_id, shard) DO UPDATE SET labeled = lc.labeled + 1)
  SELECT coalesce(sum(c.labeled), 0)
         + CASE WHEN v_labeled AND v_old_status <> 'labeled' THEN 1 ELSE 0 END
    INTO v_count
  FROM labeling.label_counts c WHERE c.project_id = v_project;

  outcome := 'ok';
  project_id := v_project;
  annotator := v_annotator;
  classes := v_classes;
  judgements := 1;
  item_status := CASE WHEN v_labeled THEN 'labeled' ELSE 'unlabeled' END;
  labeled_count := v_count;
  label_kind := v_kind;
  RETURN NEXT;
END;
$$;
