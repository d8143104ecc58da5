-- Phase 2, question 2: the examples whose captured log values differ from the log's current
-- ones (cost/tokens/model landed after the capture). `verify` would print the count and the
-- first trace ids; a refresh command inserts the same rows again with the log's values and
-- the same version (equal versions: the last inserted wins), i.e. INSERT INTO ... this SELECT.
SELECT count() AS lagging, groupArray(10)(s.trace_id) AS first_ids
FROM (SELECT trace_id, timestamp, model, cost, tokens_in, tokens_out, duration_ms, caller_id, node_type
      FROM {db}.training_examples_current FINAL) AS s
INNER JOIN
(
    SELECT trace_id, model, cost, tokens_in, tokens_out, duration_ms, caller_id, CAST(node_type AS String) AS node_type
    FROM {src}.unified_logs
    WHERE role = 'assistant' AND ifNull(cascade_id, '') != ''
) AS l ON l.trace_id = s.trace_id
WHERE NOT (isNotDistinctFrom(s.model, l.model) AND isNotDistinctFrom(s.cost, l.cost)
           AND isNotDistinctFrom(s.tokens_in, l.tokens_in) AND isNotDistinctFrom(s.tokens_out, l.tokens_out)
           AND isNotDistinctFrom(s.duration_ms, l.duration_ms) AND s.caller_id = l.caller_id AND s.node_type = l.node_type)
