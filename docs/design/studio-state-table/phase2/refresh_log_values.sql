-- Phase 2, question 2: the refresh a command (or `migrate`) would run: every example whose
-- captured log values differ from the log's is written again with the log's values and the
-- same version (ReplacingMergeTree keeps the last inserted of equal versions). A concurrent
-- annotation has a higher version and wins; if it carried the old values, the next run
-- (or verify) sees the difference again.
INSERT INTO {db}.training_examples_current
SELECT
    s.timestamp, s.trace_id, s.session_id, s.cascade_id, s.cell_name, s.species_hash, s.user_input, s.assistant_output,
    l.model, l.cost, l.tokens_in, l.tokens_out, l.duration_ms, l.caller_id, l.node_type,
    s.trainable, s.verified, s.confidence, s.notes, s.tags, s.annotated_at, s.annotated_by, s.version, now64(6)
FROM {db}.training_examples_current AS s FINAL
INNER JOIN
(
    SELECT trace_id, model, cost, tokens_in, tokens_out, duration_ms, caller_id, CAST(node_type AS String) AS node_type
    FROM {src}.unified_logs
    WHERE role = 'assistant' AND ifNull(cascade_id, '') != ''
) AS l ON l.trace_id = s.trace_id
WHERE NOT (isNotDistinctFrom(s.model, l.model) AND isNotDistinctFrom(s.cost, l.cost)
           AND isNotDistinctFrom(s.tokens_in, l.tokens_in) AND isNotDistinctFrom(s.tokens_out, l.tokens_out)
           AND isNotDistinctFrom(s.duration_ms, l.duration_ms) AND s.caller_id = l.caller_id AND s.node_type = l.node_type)
