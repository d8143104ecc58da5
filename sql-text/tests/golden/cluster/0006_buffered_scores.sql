CREATE TABLE IF NOT EXISTS training_annotations_to_apply ON CLUSTER 'rvbbit_cluster'
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

CREATE MATERIALIZED VIEW IF NOT EXISTS training_examples_current_by_applied_annotation_mv ON CLUSTER 'rvbbit_cluster' TO training_examples_current AS
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

CREATE TABLE IF NOT EXISTS training_scores_buffer ON CLUSTER 'rvbbit_cluster'
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

CREATE MATERIALIZED VIEW IF NOT EXISTS training_annotations_to_apply_scores_mv ON CLUSTER 'rvbbit_cluster' TO training_scores_buffer AS
SELECT trace_id, trainable, verified, confidence, notes, tags,
       CAST(annotated_at AS DateTime64(6)) AS annotated_at, annotated_by
FROM training_annotations
WHERE annotated_by = 'confidence_worker';

CREATE MATERIALIZED VIEW IF NOT EXISTS training_annotations_to_apply_marks_mv ON CLUSTER 'rvbbit_cluster' TO training_annotations_to_apply AS
SELECT trace_id, trainable, verified, confidence, notes, tags,
       CAST(annotated_at AS DateTime64(6)) AS annotated_at, annotated_by
FROM training_annotations
WHERE annotated_by != 'confidence_worker';

DROP VIEW IF EXISTS training_examples_current_by_annotation_mv ON CLUSTER 'rvbbit_cluster' SYNC;
