CREATE TABLE IF NOT EXISTS training_trainable_annotations ON CLUSTER 'rvbbit_cluster'
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

CREATE MATERIALIZED VIEW IF NOT EXISTS training_trainable_examples_by_mark_mv ON CLUSTER 'rvbbit_cluster' TO training_trainable_examples AS
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

CREATE MATERIALIZED VIEW IF NOT EXISTS training_trainable_annotations_mv ON CLUSTER 'rvbbit_cluster' TO training_trainable_annotations AS
SELECT trace_id, trainable, verified, confidence, notes, tags, annotated_at, annotated_by
FROM training_annotations
WHERE trainable
   OR trace_id IN (SELECT trace_id FROM training_trainable_examples
                   WHERE trace_id IN (SELECT trace_id FROM training_annotations));

DROP VIEW IF EXISTS training_trainable_examples_by_annotation_mv ON CLUSTER 'rvbbit_cluster' SYNC;

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
