-- The design the benchmark compares against: rvbbit's own training DDL, unchanged
-- (rvbbit/migrations/create_universal_training_system.sql at commit 71225a80,
-- repository ryrobes/larsql; the same text as tests/fixtures/installs/v2_nullable.sql),
-- as rvbbit installs it and as its users applied it by hand. `training_examples_mv` is
-- a plain VIEW over unified_logs (the first 2000 characters of the raw request JSON as
-- user_input, the raw content_json as assistant_output), and the joined view LEFT JOINs
-- training_annotations without FINAL (rvbbit runs OPTIMIZE ... FINAL after markings):
-- every query re-reads the log.
--
-- scripts/bench creates it in a database of its own, next to the one `rvbbit training
-- migrate` upgrades, over the SAME log table: `{logs}` is replaced by that table's
-- qualified name (e.g. rvbbit.unified_logs). Statements end with a semicolon at the end
-- of a line.

CREATE TABLE IF NOT EXISTS training_annotations (
    trace_id String,
    trainable Bool DEFAULT false,
    verified Bool DEFAULT false,
    confidence Nullable(Float32),  -- NULL = not assessed, 0.0-1.0 = quality score
    notes String DEFAULT '',
    tags Array(String) DEFAULT [],
    annotated_at DateTime64(3) DEFAULT now64(3),
    annotated_by String DEFAULT 'human'
)
ENGINE = ReplacingMergeTree(annotated_at)
ORDER BY trace_id;

CREATE INDEX IF NOT EXISTS idx_trainable ON training_annotations(trainable) TYPE set(0);
CREATE INDEX IF NOT EXISTS idx_verified ON training_annotations(verified) TYPE set(0);

CREATE VIEW IF NOT EXISTS training_examples_mv AS
SELECT
    trace_id,
    session_id,
    timestamp,
    cascade_id,
    cell_name,

    if(
        full_request_json IS NOT NULL AND full_request_json != '',
        substring(full_request_json, 1, 2000),  -- Truncate to reasonable length
        ''
    ) as user_input,

    COALESCE(content_json, '') as assistant_output,

    model,
    cost,
    tokens_in,
    tokens_out,
    duration_ms,
    caller_id,
    node_type,
    role

FROM {logs}
WHERE role = 'assistant'
  AND cascade_id != ''
  AND content_json IS NOT NULL
  AND content_json != '';

CREATE VIEW IF NOT EXISTS training_examples_with_annotations AS
SELECT
    mv.*,
    COALESCE(ta.trainable, false) as trainable,
    COALESCE(ta.verified, false) as verified,
    ta.confidence as confidence,
    ta.notes,
    ta.tags,
    ta.annotated_at,
    ta.annotated_by
FROM training_examples_mv mv
LEFT JOIN training_annotations ta ON mv.trace_id = ta.trace_id;

CREATE VIEW IF NOT EXISTS training_stats_by_cascade AS
SELECT
    cascade_id,
    cell_name,
    countIf(trainable = true) as trainable_count,
    countIf(verified = true) as verified_count,
    avg(confidence) as avg_confidence,
    count() as total_executions
FROM training_examples_with_annotations
GROUP BY cascade_id, cell_name
ORDER BY trainable_count DESC;
