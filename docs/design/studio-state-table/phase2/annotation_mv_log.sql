-- Phase 2, question 2: the annotation view captures the log row's values when the annotation
-- arrives (the worker waits up to 10 s for the cost, so its score normally carries it), but
-- only for the worker's annotations; Studio's markings and take-backs keep the values
-- captured before (no log read). {db}: the database of the state table; {src}: the log's.
CREATE MATERIALIZED VIEW {db}.training_examples_current_by_annotation_mv TO {db}.training_examples_current AS
SELECT
    e.timestamp AS timestamp, e.trace_id AS trace_id, e.session_id AS session_id, e.cascade_id AS cascade_id,
    e.cell_name AS cell_name, e.species_hash AS species_hash, e.user_input AS user_input, e.assistant_output AS assistant_output,
    if(l.trace_id = '', e.model, l.model) AS model,
    if(l.trace_id = '', e.cost, l.cost) AS cost,
    if(l.trace_id = '', e.tokens_in, l.tokens_in) AS tokens_in,
    if(l.trace_id = '', e.tokens_out, l.tokens_out) AS tokens_out,
    if(l.trace_id = '', e.duration_ms, l.duration_ms) AS duration_ms,
    if(l.trace_id = '', e.caller_id, l.caller_id) AS caller_id,
    if(l.trace_id = '', e.node_type, l.node_type) AS node_type,
    a.trainable AS trainable, a.verified AS verified, a.confidence AS confidence, a.notes AS notes, a.tags AS tags,
    CAST(a.annotated_at AS Nullable(DateTime64(6))) AS annotated_at, a.annotated_by AS annotated_by,
    a.annotated_at AS version, if(l.trace_id = '', e.captured_at, now64(6)) AS captured_at
FROM {db}.training_annotations AS a
INNER JOIN
(
    SELECT timestamp, trace_id, session_id, cascade_id, cell_name, species_hash, user_input, assistant_output,
           model, cost, tokens_in, tokens_out, duration_ms, caller_id, node_type, captured_at
    FROM {db}.training_examples_current
    WHERE trace_id IN (SELECT trace_id FROM {db}.training_annotations)
    ORDER BY version DESC, captured_at DESC
    LIMIT 1 BY trace_id
) AS e ON e.trace_id = a.trace_id
LEFT ANY JOIN
(
    SELECT trace_id, model, cost, tokens_in, tokens_out, duration_ms, caller_id, CAST(node_type AS String) AS node_type
    FROM {src}.unified_logs
    WHERE role = 'assistant'
      AND trace_id IN (SELECT trace_id FROM {db}.training_annotations WHERE annotated_by = 'confidence_worker')
) AS l ON l.trace_id = a.trace_id;
