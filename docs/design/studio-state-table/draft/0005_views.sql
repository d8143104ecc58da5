-- The two Studio views of 0005 ({settings}: the second SELECT's FINAL settings, which differ
-- by engine: on 26.9 `use_skip_indexes_if_final_exact_mode = 0,
-- enable_automatic_decision_for_merging_across_partitions_for_final = 0`; on 23.10
-- `do_not_merge_across_partitions_select_final = 1, use_skip_indexes_if_final = 1`).
CREATE VIEW {db}.training_examples_with_annotations AS
SELECT
    trace_id, session_id, timestamp, cascade_id, cell_name, species_hash, user_input, assistant_output,
    model, cost, tokens_in, tokens_out, duration_ms, caller_id, node_type, role,
    trainable, verified, confidence, notes, tags,
    CAST(annotated_at AS Nullable(DateTime64(6))) AS annotated_at, annotated_by
FROM {db}.training_trainable_examples FINAL
WHERE trainable
UNION ALL
SELECT
    s.trace_id AS trace_id, s.session_id AS session_id, s.timestamp AS timestamp, s.cascade_id AS cascade_id,
    s.cell_name AS cell_name, s.species_hash AS species_hash, s.user_input AS user_input, s.assistant_output AS assistant_output,
    s.model AS model, s.cost AS cost, s.tokens_in AS tokens_in, s.tokens_out AS tokens_out, s.duration_ms AS duration_ms,
    s.caller_id AS caller_id, s.node_type AS node_type, 'assistant' AS role,
    CAST(false AS Bool) AS trainable, s.verified AS verified, s.confidence AS confidence, s.notes AS notes, s.tags AS tags,
    s.annotated_at AS annotated_at, s.annotated_by AS annotated_by
FROM {db}.training_examples_current AS s FINAL
WHERE NOT s.trainable
SETTINGS {settings};
CREATE VIEW {db}.training_stats_by_cascade AS
SELECT
    cascade_id, cell_name,
    countIf(trainable) AS trainable_count,
    countIf(verified) AS verified_count,
    avg(confidence) AS avg_confidence,
    count() AS total_executions
FROM {db}.training_examples_current FINAL
GROUP BY cascade_id, cell_name
SETTINGS {stats_settings}
