-- One month of the upgrade's backfill ({month}: toYYYYMM), the statement the runner's new
-- step sends per month: 0001's examples with the log row's current values and the trace's
-- latest annotation. The month bound is on every side of both joins, so each statement
-- holds one month's log rows and annotations; a month already filled is skipped by the
-- runner (it resumes at the first month without rows, as 0001's backfill does).
INSERT INTO {db}.training_examples_current
SELECT
    e.timestamp, e.trace_id, e.session_id, e.cascade_id, e.cell_name, e.species_hash, e.user_input, e.assistant_output,
    if(r.trace_id = '', CAST(nullIf(e.model, '') AS Nullable(String)), r.model),
    r.cost, r.tokens_in, r.tokens_out, r.duration_ms, r.caller_id, r.node_type,
    ifNull(tupleElement(a.latest, 1), false), ifNull(tupleElement(a.latest, 2), false), tupleElement(a.latest, 3),
    ifNull(tupleElement(a.latest, 4), ''), ifNull(tupleElement(a.latest, 5), []),
    if(a.trace_id = '', NULL, CAST(a.last_annotated_at AS Nullable(DateTime64(6)))),
    ifNull(tupleElement(a.latest, 6), ''),
    if(a.trace_id = '', toDateTime64(0, 6), a.last_annotated_at),
    now64(6)
FROM (SELECT * FROM {src}.training_examples WHERE toYYYYMM(timestamp) = {month}) AS e
LEFT ANY JOIN
(
    SELECT trace_id, model, cost, tokens_in, tokens_out, duration_ms, caller_id, CAST(node_type AS String) AS node_type
    FROM {src}.unified_logs
    WHERE role = 'assistant' AND toYYYYMM(timestamp) = {month}
) AS r ON r.trace_id = e.trace_id
LEFT ANY JOIN
(
    SELECT trace_id,
           argMax(tuple(trainable, verified, confidence, notes, tags, annotated_by), annotated_at) AS latest,
           max(annotated_at) AS last_annotated_at
    FROM {db}.training_annotations
    WHERE trace_id IN (SELECT trace_id FROM {src}.training_examples WHERE toYYYYMM(timestamp) = {month})
    GROUP BY trace_id
) AS a ON a.trace_id = e.trace_id
SETTINGS max_threads = 2, max_block_size = 8192, min_insert_block_size_rows = 65536
