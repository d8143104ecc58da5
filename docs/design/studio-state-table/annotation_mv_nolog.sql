-- Variant of step 4: the annotation path does NOT look up unified_logs; it keeps the
-- log values last captured in the state table (the refresh view brings late costs).
CREATE MATERIALIZED VIEW {db}.training_examples_current_by_annotation_mv TO {db}.training_examples_current AS
SELECT
    e.timestamp AS timestamp, e.trace_id AS trace_id, e.session_id AS session_id, e.cascade_id AS cascade_id,
    e.cell_name AS cell_name, e.species_hash AS species_hash, e.user_input AS user_input, e.assistant_output AS assistant_output,
    e.model AS model, e.cost AS cost, e.tokens_in AS tokens_in, e.tokens_out AS tokens_out, e.duration_ms AS duration_ms,
    e.caller_id AS caller_id, e.node_type AS node_type,
    a.trainable AS trainable, a.verified AS verified, a.confidence AS confidence, a.notes AS notes, a.tags AS tags,
    CAST(a.annotated_at AS Nullable(DateTime64(6))) AS annotated_at, a.annotated_by AS annotated_by,
    a.annotated_at AS version, e.captured_at AS captured_at
FROM {db}.training_annotations AS a
INNER JOIN
(
    SELECT timestamp, trace_id, session_id, cascade_id, cell_name, species_hash, user_input, assistant_output,
           model, cost, tokens_in, tokens_out, duration_ms, caller_id, node_type, captured_at
    FROM {db}.training_examples_current
    WHERE trace_id IN (SELECT trace_id FROM {db}.training_annotations)
    ORDER BY version DESC, captured_at DESC
    LIMIT 1 BY trace_id
) AS e ON e.trace_id = a.trace_id;
