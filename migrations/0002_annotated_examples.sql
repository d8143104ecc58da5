-- Universal training system, version 2: retrieval whose cost grows with the answer.
--
-- rvbbit's few-shot query keeps only trainable examples (about 1% of them), but the
-- joined view of version 1 had to read every example of the cell, with its 1-2 KB
-- texts, to find them. Version 2 keeps the annotated examples, texts included, in a
-- small table of their own, kept current from both sides by two materialized views,
-- and the joined view reads annotated examples from there and the others from
-- `training_examples`. Names and columns that rvbbit and Studio read are unchanged.
-- docs/PERFORMANCE.md explains the choice and measures it.

-- 1. Finding one example by trace id without reading them all: a bloom filter on
--    `trace_id`, so an annotation's lookup reads only the granules that may hold it.
ALTER TABLE training_examples ADD INDEX IF NOT EXISTS idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1;

-- 2. Builds that index for the parts written before it existed (a background
--    mutation; parts written from now on get it as they are written).
ALTER TABLE training_examples MATERIALIZE INDEX idx_trace_id;

-- 3. Every annotated example with its latest annotation. ReplacingMergeTree by
--    `annotated_at`: a later annotation of a trace replaces the earlier one, as in
--    `training_annotations`; readers use FINAL. Sorted for retrieval by cascade and cell.
CREATE TABLE IF NOT EXISTS training_annotated_examples
(
    trace_id         String,
    timestamp        DateTime64(6),
    session_id       String,
    cascade_id       String,
    cell_name        String,
    species_hash     String,
    model            String,
    user_input       String,
    assistant_output String,
    trainable        Bool,
    verified         Bool,
    confidence       Nullable(Float32),
    notes            String,
    tags             Array(String),
    annotated_at     DateTime64(6),
    annotated_by     String
)
ENGINE = ReplacingMergeTree(annotated_at)
ORDER BY (cascade_id, cell_name, trace_id)
-- Small granules: a cell holds few annotated examples, and a read of one cell
-- should not decompress the texts of its neighbours. Compact parts (all columns in
-- one file) at any size: a retrieval reads few rows of many columns, and opens one
-- file per part instead of two per column. Parts older than 5 minutes are merged
-- into one: every extra part makes each FINAL read dearer (about 1 ms per part on
-- the local engine), and the table is small enough to rewrite.
SETTINGS index_granularity = 64, min_bytes_for_wide_part = 10000000000, min_age_to_force_merge_seconds = 300;

-- 4. A new annotation copies its example, found by trace id. In a materialized view
--    every mention of the source table is the block being inserted, so the subquery
--    looks up only the traces of this insert (through idx_trace_id).
CREATE MATERIALIZED VIEW IF NOT EXISTS training_annotated_examples_by_annotation_mv TO training_annotated_examples AS
SELECT
    e.trace_id AS trace_id,
    e.timestamp AS timestamp,
    e.session_id AS session_id,
    e.cascade_id AS cascade_id,
    e.cell_name AS cell_name,
    e.species_hash AS species_hash,
    e.model AS model,
    e.user_input AS user_input,
    e.assistant_output AS assistant_output,
    a.trainable AS trainable,
    a.verified AS verified,
    a.confidence AS confidence,
    a.notes AS notes,
    a.tags AS tags,
    a.annotated_at AS annotated_at,
    a.annotated_by AS annotated_by
FROM training_annotations AS a
INNER JOIN
(
    SELECT trace_id, timestamp, session_id, cascade_id, cell_name, species_hash, model, user_input, assistant_output
    FROM training_examples
    WHERE trace_id IN (SELECT trace_id FROM training_annotations)
    LIMIT 1 BY trace_id
) AS e ON e.trace_id = a.trace_id;

-- 5. A new example of a trace that is already annotated (a log written after its
--    annotation, or the backfill) comes with the trace's latest annotation.
CREATE MATERIALIZED VIEW IF NOT EXISTS training_annotated_examples_by_example_mv TO training_annotated_examples AS
SELECT
    e.trace_id AS trace_id,
    e.timestamp AS timestamp,
    e.session_id AS session_id,
    e.cascade_id AS cascade_id,
    e.cell_name AS cell_name,
    e.species_hash AS species_hash,
    e.model AS model,
    e.user_input AS user_input,
    e.assistant_output AS assistant_output,
    tupleElement(a.latest, 1) AS trainable,
    tupleElement(a.latest, 2) AS verified,
    tupleElement(a.latest, 3) AS confidence,
    tupleElement(a.latest, 4) AS notes,
    tupleElement(a.latest, 5) AS tags,
    a.last_annotated_at AS annotated_at,
    tupleElement(a.latest, 6) AS annotated_by
FROM training_examples AS e
INNER JOIN
(
    SELECT
        trace_id,
        argMax(tuple(trainable, verified, confidence, notes, tags, annotated_by), annotated_at) AS latest,
        max(annotated_at) AS last_annotated_at
    FROM training_annotations
    WHERE trace_id IN (SELECT trace_id FROM training_examples)
    GROUP BY trace_id
) AS a ON e.trace_id = a.trace_id;

-- 6. Annotations made before the views above existed. Skips traces already copied,
--    so running it again adds nothing.
INSERT INTO training_annotated_examples
SELECT
    e.trace_id,
    e.timestamp,
    e.session_id,
    e.cascade_id,
    e.cell_name,
    e.species_hash,
    e.model,
    e.user_input,
    e.assistant_output,
    tupleElement(a.latest, 1),
    tupleElement(a.latest, 2),
    tupleElement(a.latest, 3),
    tupleElement(a.latest, 4),
    tupleElement(a.latest, 5),
    a.last_annotated_at,
    tupleElement(a.latest, 6)
FROM
(
    SELECT trace_id, timestamp, session_id, cascade_id, cell_name, species_hash, model, user_input, assistant_output
    FROM training_examples
    WHERE trace_id IN (SELECT trace_id FROM training_annotations)
      AND trace_id NOT IN (SELECT trace_id FROM training_annotated_examples)
    LIMIT 1 BY trace_id
) AS e
INNER JOIN
(
    SELECT
        trace_id,
        argMax(tuple(trainable, verified, confidence, notes, tags, annotated_by), annotated_at) AS latest,
        max(annotated_at) AS last_annotated_at
    FROM training_annotations
    GROUP BY trace_id
) AS a ON e.trace_id = a.trace_id;

-- 7. Every example with its latest annotation, one row per trace, as before: annotated
--    examples from the small table, the others from `training_examples` with the
--    defaults (trainable = false, verified = false, confidence NULL, notes '', tags [],
--    annotated_at NULL, annotated_by ''). Only the first part can hold trainable rows:
--    for rvbbit's query (`trainable = true`) the server turns the second part's filter
--    into a constant false and reads nothing from it. The second part leaves out the
--    annotated traces with an anti join, not `NOT IN (subquery)`: a subquery's set is
--    built while the query is planned even when its part reads nothing (about 1.5 ms
--    of every retrieval), an anti join's right side is read only when its left side
--    has rows.
CREATE OR REPLACE VIEW training_examples_with_annotations AS
SELECT
    trace_id,
    timestamp,
    session_id,
    cascade_id,
    cell_name,
    species_hash,
    model,
    user_input,
    assistant_output,
    trainable,
    verified,
    confidence,
    notes,
    tags,
    CAST(annotated_at AS Nullable(DateTime64(6))) AS annotated_at,
    annotated_by
FROM training_annotated_examples FINAL
UNION ALL
SELECT
    e.trace_id AS trace_id,
    e.timestamp AS timestamp,
    e.session_id AS session_id,
    e.cascade_id AS cascade_id,
    e.cell_name AS cell_name,
    e.species_hash AS species_hash,
    e.model AS model,
    e.user_input AS user_input,
    e.assistant_output AS assistant_output,
    CAST(false AS Bool) AS trainable,
    CAST(false AS Bool) AS verified,
    CAST(NULL AS Nullable(Float32)) AS confidence,
    '' AS notes,
    CAST([] AS Array(String)) AS tags,
    CAST(NULL AS Nullable(DateTime64(6))) AS annotated_at,
    '' AS annotated_by
FROM training_examples AS e
LEFT ANTI JOIN training_annotated_examples AS a ON e.trace_id = a.trace_id;
