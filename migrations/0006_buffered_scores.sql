-- Universal training system, version 6: the confidence worker's inserts are cheap again.
--
--   training_annotations ──training_annotations_to_apply_marks_mv (all but the worker's)──▶
--   training_annotations_to_apply (Null) ──training_examples_current_by_applied_annotation_mv──▶
--   training_examples_current
--   training_annotations ──training_annotations_to_apply_scores_mv (the worker's)──▶
--   training_scores_buffer (Buffer, passed on within 2 s) ──▶ training_annotations_to_apply
--
-- rvbbit's confidence worker inserts one row into `training_annotations` for every
-- assistant message it scores. In version 5 each such insert wrote the example's row of
-- the state table again, with the log's late values: two look-ups and a join for one
-- row. Measured on the benchmark's data (1M log rows, docs/PERFORMANCE.md), the worker's
-- one-row insert took 64 ms in the engine against 8 ms for `training_annotations` alone.
--
-- Version 6 gathers the worker's rows (`annotated_by = 'confidence_worker'`, the scores
-- it writes after each run) in a Buffer table, which passes them on in one block at
-- most 2 seconds later, so the join runs once per batch instead of once per row. Every
-- other annotation (Studio's markings and their removal, its on-demand assessment
-- `confidence_worker_ondemand`, anything written by hand) is applied at once, as
-- before: marked, it is retrieved at once; taken back, never again. The order of
-- arrival does not matter: the state table keeps the row of the latest `annotated_at`,
-- whichever is written last.
--
-- What the delay means: Studio shows a score, and the log's late cost it brings, up to
-- 2 seconds after the worker wrote it. A stopped server loses what its buffer still
-- held (the annotations themselves are in `training_annotations`, written at once):
-- `rvbbit training verify` reports the examples that lag, and `rvbbit training migrate`
-- catches them up (docs/MIGRATION_GUIDE.md, "Late log values").

-- 1. The annotations to apply to the state table, on their way to the join below. Same
--    columns as training_annotations; the Null engine keeps no rows.
CREATE TABLE IF NOT EXISTS training_annotations_to_apply
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

-- 2. Every annotation writes its example's row again: the texts, the log row's current
--    values (its own values if the log row is gone), this annotation, and the
--    annotation's time as the version. An annotation of a trace with no example matches
--    nothing. Created before anything feeds it (3, 4).
CREATE MATERIALIZED VIEW IF NOT EXISTS training_examples_current_by_applied_annotation_mv TO training_examples_current AS
SELECT
    e.timestamp AS timestamp,
    e.trace_id AS trace_id,
    e.session_id AS session_id,
    e.cascade_id AS cascade_id,
    e.cell_name AS cell_name,
    e.species_hash AS species_hash,
    e.user_input AS user_input,
    e.assistant_output AS assistant_output,
    if(l.trace_id = '', e.model, l.model) AS model,
    if(l.trace_id = '', e.cost, l.cost) AS cost,
    if(l.trace_id = '', e.tokens_in, l.tokens_in) AS tokens_in,
    if(l.trace_id = '', e.tokens_out, l.tokens_out) AS tokens_out,
    if(l.trace_id = '', e.duration_ms, l.duration_ms) AS duration_ms,
    e.caller_id AS caller_id,
    e.node_type AS node_type,
    a.trainable AS trainable,
    a.verified AS verified,
    a.confidence AS confidence,
    a.notes AS notes,
    a.tags AS tags,
    CAST(a.annotated_at AS Nullable(DateTime64(6))) AS annotated_at,
    a.annotated_by AS annotated_by,
    a.annotated_at AS version,
    if(l.trace_id = '', e.captured_at, now64(6)) AS captured_at
FROM training_annotations_to_apply AS a
INNER JOIN
(
    SELECT timestamp, trace_id, session_id, cascade_id, cell_name, species_hash, user_input, assistant_output,
           model, cost, tokens_in, tokens_out, duration_ms, caller_id, node_type, captured_at
    FROM training_examples_current
    WHERE trace_id IN (SELECT trace_id FROM training_annotations_to_apply)
    ORDER BY version DESC, captured_at DESC
    LIMIT 1 BY trace_id
) AS e ON e.trace_id = a.trace_id
LEFT ANY JOIN
(
    SELECT trace_id, model, cost, tokens_in, tokens_out, duration_ms
    FROM unified_logs
    WHERE role = 'assistant'
      AND trace_id IN (SELECT trace_id FROM training_annotations_to_apply)
) AS l ON l.trace_id = a.trace_id
SETTINGS join_use_nulls = 0;

-- 3. The scorer's rows wait here: 1 layer (rows keep their order), passed on once they
--    are 1 to 2 seconds old with 1,000 rows and 1 MiB gathered, or 2 seconds old, or
--    100,000 rows or 64 MiB, whichever comes first.
CREATE TABLE IF NOT EXISTS training_scores_buffer
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
ENGINE = Buffer(currentDatabase(), 'training_annotations_to_apply', 1, 1, 2, 1000, 100000, 1048576, 67108864);

-- 4. Who goes which way: the confidence worker's rows through the buffer, every other
--    annotation straight to the join.
CREATE MATERIALIZED VIEW IF NOT EXISTS training_annotations_to_apply_scores_mv TO training_scores_buffer AS
SELECT trace_id, trainable, verified, confidence, notes, tags,
       CAST(annotated_at AS DateTime64(6)) AS annotated_at, annotated_by
FROM training_annotations
WHERE annotated_by = 'confidence_worker';

CREATE MATERIALIZED VIEW IF NOT EXISTS training_annotations_to_apply_marks_mv TO training_annotations_to_apply AS
SELECT trace_id, trainable, verified, confidence, notes, tags,
       CAST(annotated_at AS DateTime64(6)) AS annotated_at, annotated_by
FROM training_annotations
WHERE annotated_by != 'confidence_worker';

-- 5. Version 5's view, which wrote the example's row for each annotation itself. The
--    views above exist by now, so nothing written meanwhile is missed (an annotation
--    that went both ways writes the same row twice, which the state table folds).
DROP VIEW IF EXISTS training_examples_current_by_annotation_mv SYNC;
