-- Phase 2, question 4: the upgrade from 0003: every row of training_examples (0001's table)
-- with the log row's current values and the trace's latest annotation, into the state table.
-- Run as one INSERT ... SELECT; {db} holds the new table, {src} the 0003 objects.
INSERT INTO {db}.training_examples_current
SELECT
    e.timestamp, e.trace_id, e.session_id, e.cascade_id, e.cell_name, e.species_hash, e.user_input, e.assistant_output,
    if(r.trace_id = '', CAST(nullIf(e.model, '') AS Nullable(String)), r.model),
    r.cost, r.tokens_in, r.tokens_out, r.duration_ms, r.caller_id, r.node_type,
    tupleElement(a.latest, 1), tupleElement(a.latest, 2), tupleElement(a.latest, 3), tupleElement(a.latest, 4), tupleElement(a.latest, 5),
    if(a.trace_id = '', NULL, CAST(a.last_annotated_at AS Nullable(DateTime64(6)))),
    tupleElement(a.latest, 6),
    if(a.trace_id = '', toDateTime64(0, 6), a.last_annotated_at),
    now64(6)
FROM {src}.training_examples AS e
LEFT ANY JOIN
(
    SELECT trace_id, model, cost, tokens_in, tokens_out, duration_ms, caller_id, CAST(node_type AS String) AS node_type
    FROM {src}.unified_logs WHERE role = 'assistant' AND ifNull(cascade_id, '') != ''
) AS r ON r.trace_id = e.trace_id
LEFT ANY JOIN
(
    SELECT trace_id,
           argMax(tuple(trainable, verified, confidence, notes, tags, annotated_by), annotated_at) AS latest,
           max(annotated_at) AS last_annotated_at
    FROM {src}.training_annotations
    GROUP BY trace_id
) AS a ON a.trace_id = e.trace_id
SETTINGS max_threads = 2
