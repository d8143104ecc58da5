-- Universal training system, version 4: the confidence worker's inserts stay cheap.
--
-- rvbbit's confidence worker inserts one row into `training_annotations` for every
-- assistant message it scores (trainable = false). In version 3 every such insert ran
-- `training_trainable_examples_by_annotation_mv`, a three-table join, although the
-- worker's rows match nothing: the join's look-ups into `training_examples` and
-- `unified_logs` are planned and started for every block. Measured on the benchmark's
-- data (300,000 log rows), the worker's one-row insert took 47-58 ms in the engine
-- against 7-14 ms for `training_annotations` alone (docs/PERFORMANCE.md).
--
-- Version 4 splits that view in two, joined by a table of the Null engine (it stores
-- nothing; inserting into it only runs the views that read it):
--   training_annotations ──training_trainable_annotations_mv (a filter)──▶
--   training_trainable_annotations (Null) ──training_trainable_examples_by_mark_mv (the join)──▶
--   training_trainable_examples
-- The filter passes the annotations that change the trainable copy (marking a trace
-- trainable, or changing a trace already there) and nothing else. For the worker's rows
-- the filter is one look-up into the small copy, and the join never runs: a view runs on
-- the blocks it is given, and the filter gives it none. What reaches the copy, and so
-- everything rvbbit and Studio read, is the same as in version 3.

-- 1. The annotations that change the trainable copy, on their way to the join below.
--    Same columns as training_annotations; the Null engine keeps no rows.
CREATE TABLE IF NOT EXISTS training_trainable_annotations
(
    trace_id     String,
    trainable    Bool,
    verified     Bool,
    confidence   Nullable(Float32),
    notes        String,
    tags         Array(String),
    annotated_at DateTime64(6),
    annotated_by String
)
ENGINE = Null;

-- 2. The join of version 3's view, for these annotations only: the example's texts, its
--    log row's current values, the annotation. Created before the filter (3), so that
--    nothing the filter passes finds the join missing.
CREATE MATERIALIZED VIEW IF NOT EXISTS training_trainable_examples_by_mark_mv TO training_trainable_examples AS
SELECT
    e.trace_id AS trace_id,
    e.timestamp AS timestamp,
    e.session_id AS session_id,
    e.cascade_id AS cascade_id,
    e.cell_name AS cell_name,
    e.species_hash AS species_hash,
    e.user_input AS user_input,
    e.assistant_output AS assistant_output,
    l.model AS model,
    l.cost AS cost,
    l.tokens_in AS tokens_in,
    l.tokens_out AS tokens_out,
    l.duration_ms AS duration_ms,
    l.caller_id AS caller_id,
    l.node_type AS node_type,
    l.role AS role,
    a.trainable AS trainable,
    a.verified AS verified,
    a.confidence AS confidence,
    a.notes AS notes,
    a.tags AS tags,
    a.annotated_at AS annotated_at,
    a.annotated_by AS annotated_by
FROM training_trainable_annotations AS a
INNER JOIN
(
    SELECT trace_id, timestamp, session_id, cascade_id, cell_name, species_hash, user_input, assistant_output
    FROM training_examples
    WHERE trace_id IN (SELECT trace_id FROM training_trainable_annotations)
    LIMIT 1 BY trace_id
) AS e ON e.trace_id = a.trace_id
LEFT ANY JOIN
(
    SELECT trace_id, model, cost, tokens_in, tokens_out, duration_ms, caller_id,
           CAST(node_type AS String) AS node_type, CAST(role AS String) AS role
    FROM unified_logs
    WHERE role = 'assistant'
      AND trace_id IN (SELECT trace_id FROM training_trainable_annotations)
) AS l ON l.trace_id = a.trace_id;

-- 3. The filter: an annotation that marks a trace trainable, or whose trace is already in
--    the copy (taken back, re-scored, re-marked). In a materialized view every mention of
--    the source table is the block being inserted.
CREATE MATERIALIZED VIEW IF NOT EXISTS training_trainable_annotations_mv TO training_trainable_annotations AS
SELECT trace_id, trainable, verified, confidence, notes, tags, annotated_at, annotated_by
FROM training_annotations
WHERE trainable
   OR trace_id IN (SELECT trace_id FROM training_trainable_examples
                   WHERE trace_id IN (SELECT trace_id FROM training_annotations));

-- 4. Version 3's view, now done by 2 and 3. Until it is gone both write the same rows,
--    which the copy keeps once (same trace, same annotated_at).
DROP VIEW IF EXISTS training_trainable_examples_by_annotation_mv SYNC;

-- 5. Catch-up: every trace whose latest annotation the copy lacks goes through the join
--    again. On a database on version 3 this finds nothing; on a new install version 3's
--    view is never created (this version drops it), and this covers the annotations
--    written between version 3's copy and the filter's creation. Only traces ever marked
--    trainable can be in the copy or belong there. Running it again adds nothing: once a
--    trace is caught up, the copy has a row with its latest annotated_at.
INSERT INTO training_trainable_annotations (trace_id, trainable, verified, confidence, notes, tags, annotated_at, annotated_by)
SELECT
    trace_id,
    tupleElement(latest, 1),
    tupleElement(latest, 2),
    tupleElement(latest, 3),
    tupleElement(latest, 4),
    tupleElement(latest, 5),
    last_annotated_at,
    tupleElement(latest, 6)
FROM
(
    SELECT
        trace_id,
        argMax(tuple(trainable, verified, confidence, notes, tags, annotated_by), annotated_at) AS latest,
        max(annotated_at) AS last_annotated_at
    FROM training_annotations
    WHERE trace_id IN (SELECT trace_id FROM training_annotations WHERE trainable)
    GROUP BY trace_id
)
WHERE (tupleElement(latest, 1) OR trace_id IN (SELECT trace_id FROM training_trainable_examples))
  AND (trace_id, CAST(last_annotated_at AS DateTime64(6))) NOT IN (SELECT trace_id, annotated_at FROM training_trainable_examples);
