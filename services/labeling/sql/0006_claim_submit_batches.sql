-- Claims and submits in batches. Under load the service combines the concurrent
-- ClaimNext calls of one project (and the concurrent SubmitLabel calls) into one call of
-- these functions: one round trip, one transaction and one execution of each statement
-- for the whole batch, instead of one of each per call. Most of PostgreSQL's cost per
-- claim or submit was starting those statements (executor start-up, plan revalidation,
-- GUC save and restore), not the rows they touch.
--
-- Both take the same locks in the same order as claim_items and submit_label (0004), and
-- the service keeps using those for a call that arrives alone.

-- claim_batch(project, annotators, counts, lease seconds, ranked candidate ids or NULL,
--             frontier)
--
-- claim_items for several distinct annotators at once, for judgements_per_item = 1 (for
-- a project with k > 1 it returns a single row with slot 0 and claims nothing: the
-- caller then claims one annotator at a time). Rows: `slot` is the annotator's position
-- in p_annotators (1-based); first the leases each one already holds (a reload, up to
-- its count), then new leases; each annotator is given at most its count, never an item
-- it skipped, no item twice. The last row has slot NULL and carries the frontier and the
-- earliest expiry exactly as claim_items' last row does. The claim commits
-- asynchronously, as claim_items does.
CREATE FUNCTION claim_batch(p_project bigint, p_annotators text[], p_ns integer[],
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
    AND l.project_id = p_project AND l.expires_at > v_now;

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
      WHERE l.item_id IN (SELECT fin.id FROM fin) AND l.expires_at <= v_now
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

-- submit_batch(items, lease tokens, annotators or '', class offsets, class counts, classes,
--              seconds spent, class lock base)
--
-- submit_label for several distinct items at once. Call i submits p_classes[p_class_at[i]
-- .. p_class_at[i] + p_class_n[i] - 1]. Under the item row locks (taken in id order, so
-- two batches never deadlock) and each project's class lock (shared), on a fresh
-- snapshot, it writes the calls submit_label would answer 'ok' (project active, a live
-- lease row with this token on the item and of this annotator when one is given, classes
-- of the project, none twice, one for single-choice, no label on the item yet) exactly as
-- submit_label writes them, and returns one row per written call (`slot` = i). A call
-- without a row wrote nothing: the caller submits it on its own (submit_label then says
-- what is wrong, or the service computes a consensus). labeled_count is the project's
-- count as if the calls had committed one after another in slot order.
CREATE FUNCTION submit_batch(p_items bigint[], p_tokens uuid[], p_annotators text[],
                             p_class_at integer[], p_class_n integer[], p_classes text[],
                             p_seconds real[], p_lock_base bigint)
RETURNS TABLE (slot integer, project_id bigint, annotator text, classes text[],
               judgements integer, item_status text, labeled_count bigint)
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off  -- as for claim_items
AS $$
#variable_conflict use_column
BEGIN
  PERFORM 1 FROM labeling.items i
  WHERE i.id = ANY (p_items) AND pg_advisory_xact_lock_shared(p_lock_base + i.project_id) IS NOT NULL
  ORDER BY i.id
  FOR UPDATE OF i;
  -- A new statement: a fresh snapshot, taken with the locks held.
  RETURN QUERY
    WITH x AS (
      SELECT u.item_id, u.token, u.annotator, u.seconds, u.ord::integer AS slot,
             p_classes[u.at : u.at + u.n - 1] AS given
      FROM unnest(p_items, p_tokens, p_annotators, p_class_at, p_class_n, p_seconds)
           WITH ORDINALITY AS u(item_id, token, annotator, at, n, seconds, ord)),
    ok AS (
      SELECT x.item_id, x.token, x.seconds, x.slot, i.project_id AS pid, l.annotator AS holder,
             p.judgements_per_item <= 1 AS final,
             p.judgements_per_item <= 1 AND i.status <> 'labeled' AS counted, c.canon
      FROM x
      JOIN labeling.items i ON i.id = x.item_id
      JOIN labeling.projects p ON p.id = i.project_id
      JOIN labeling.leases l ON l.item_id = x.item_id AND l.token = x.token
      -- The given classes in the schema's order; a duplicate or an unknown class makes it
      -- shorter than what was given.
      CROSS JOIN LATERAL (
        SELECT ARRAY(SELECT s.c FROM unnest(p.classes) WITH ORDINALITY AS s(c, o)
                     WHERE s.c = ANY (x.given) ORDER BY s.o) AS canon) c
      WHERE p.status = 'active' AND (x.annotator = '' OR x.annotator = l.annotator)
        AND NOT EXISTS (SELECT 1 FROM labeling.labels lb WHERE lb.item_id = x.item_id)
        AND cardinality(x.given) >= 1 AND cardinality(c.canon) = cardinality(x.given)
        AND (p.label_kind <> 'single' OR cardinality(x.given) = 1)),
    numbered AS (
      SELECT ok.*, sum(CASE WHEN ok.counted THEN 1 ELSE 0 END)
                     OVER (PARTITION BY ok.pid ORDER BY ok.slot) AS nth
      FROM ok),
    del AS (
      DELETE FROM labeling.leases l USING ok
      WHERE l.item_id = ok.item_id AND l.token = ok.token
      RETURNING l.item_id, l.project_id, l.annotator, l.token, l.claimed_at, l.expires_at),
    hist AS (
      INSERT INTO labeling.lease_history (item_id, project_id, annotator, token, claimed_at,
                                          expires_at, ended_at, outcome)
      SELECT d.item_id, d.project_id, d.annotator, d.token, d.claimed_at, d.expires_at,
             clock_timestamp(), 'submitted'
      FROM del d),
    lab AS (
      INSERT INTO labeling.labels (item_id, project_id, annotator, classes, seconds_spent)
      SELECT ok.item_id, ok.pid, ok.holder, ok.canon, ok.seconds FROM ok),
    upd AS (
      UPDATE labeling.items i
      SET judgements = 1, status = CASE WHEN ok.final THEN 'labeled' ELSE 'unlabeled' END,
          consensus = CASE WHEN ok.final THEN ok.canon END, consensus_tie = false
      FROM ok WHERE i.id = ok.item_id),
    cnt AS (
      INSERT INTO labeling.label_counts AS lc (project_id, shard, labeled)
      SELECT ok.pid, pg_backend_pid() % 256, count(*) FROM ok WHERE ok.counted GROUP BY ok.pid
      ON CONFLICT (project_id, shard) DO UPDATE SET labeled = lc.labeled + EXCLUDED.labeled),
    base AS (
      SELECT c.project_id, sum(c.labeled) AS n FROM labeling.label_counts c
      WHERE c.project_id IN (SELECT ok.pid FROM ok) GROUP BY c.project_id)
    SELECT n.slot, n.pid, n.holder, n.canon, 1,
           CASE WHEN n.final THEN 'labeled' ELSE 'unlabeled' END,
           (coalesce(b.n, 0) + n.nth)::bigint
    FROM numbered n LEFT JOIN base b ON b.project_id = n.pid
    ORDER BY n.slot;
END;
$$;
