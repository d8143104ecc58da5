-- The design the benchmark compares against: the SECOND version of the old training
-- SQL file as users applied it by hand (the variant with `confidence
-- Nullable(Float32)`). `training_examples_mv` is a plain VIEW over unified_logs that
-- takes the first 2000 characters of the raw request JSON as user_input and the raw
-- content_json as assistant_output, so every query re-reads the log.
--
-- scripts/bench creates it in a database of its own, next to the one `rvbbit training
-- migrate` builds, over the SAME log table: `{logs}` is replaced by that table's
-- qualified name (e.g. rvbbit.unified_logs). Statements end with a semicolon at the end
-- of a line.

CREATE TABLE IF NOT EXISTS training_annotations
(
    trace_id String,
    trainable Bool DEFAULT false,
    verified Bool DEFAULT false,
    confidence Nullable(Float32),
    notes String DEFAULT '',
    tags Array(String) DEFAULT [],
    annotated_at DateTime64(6) DEFAULT now64(6),
    annotated_by String DEFAULT ''
)
ENGINE = ReplacingMergeTree(annotated_at)
ORDER BY trace_id;

ALTER TABLE training_annotations ADD INDEX IF NOT EXISTS idx_trainable trainable TYPE set(2) GRANULARITY 1;

-- "Materialized view" in the old guide, a plain view in fact.
CREATE VIEW IF NOT EXISTS training_examples_mv AS
SELECT
    trace_id,
    timestamp,
    session_id,
    cascade_id,
    cell_name,
    species_hash,
    model,
    substring(full_request_json, 1, 2000) AS user_input,
    content_json AS assistant_output
FROM {logs}
WHERE role = 'assistant'
  AND cascade_id IS NOT NULL
  AND cascade_id != '';

CREATE VIEW IF NOT EXISTS training_examples_with_annotations AS
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
    a.last_annotated_at AS annotated_at,
    a.annotated_by AS annotated_by
FROM training_examples_mv AS e
LEFT JOIN
(
    SELECT
        trace_id,
        argMax(trainable, annotated_at) AS trainable,
        argMax(verified, annotated_at) AS verified,
        argMax(confidence, annotated_at) AS confidence,
        argMax(notes, annotated_at) AS notes,
        argMax(tags, annotated_at) AS tags,
        max(annotated_at) AS last_annotated_at,
        argMax(annotated_by, annotated_at) AS annotated_by
    FROM training_annotations
    GROUP BY trace_id
) AS a ON e.trace_id = a.trace_id;

CREATE VIEW IF NOT EXISTS training_stats_by_cascade AS
SELECT
    cascade_id,
    cell_name,
    countIf(trainable) AS trainable_count,
    countIf(verified) AS verified_count,
    avg(confidence) AS avg_confidence,
    count() AS total_executions
FROM training_examples_with_annotations
GROUP BY cascade_id, cell_name;
