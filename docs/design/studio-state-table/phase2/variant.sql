-- Phase 2: a variant of the state table in database {db}, filled from the phase-1
-- candidate (studio2, same rows), with the annotation and trainable views of phase 1
-- (annotation view without the log look-up) and the two Studio views. No log view:
-- the log path is unchanged from phase 1 and is not what is measured here.
-- {partition}: '' or 'PARTITION BY toYYYYMM(timestamp)'; {tsettings}: the table's SETTINGS.
CREATE TABLE {db}.training_annotations AS studio2.training_annotations;
CREATE TABLE {db}.training_trainable_examples AS studio2.training_trainable_examples;
CREATE TABLE {db}.training_examples_current AS studio2.training_examples_current
ENGINE = ReplacingMergeTree(version)
{partition}
ORDER BY (timestamp, trace_id)
SETTINGS {tsettings};
INSERT INTO {db}.training_annotations SELECT * FROM studio2.training_annotations;
INSERT INTO {db}.training_trainable_examples SELECT * FROM studio2.training_trainable_examples;
INSERT INTO {db}.training_examples_current SELECT * FROM studio2.training_examples_current FINAL SETTINGS max_threads = 2;
OPTIMIZE TABLE {db}.training_examples_current FINAL;
OPTIMIZE TABLE {db}.training_annotations FINAL;
OPTIMIZE TABLE {db}.training_trainable_examples FINAL;
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
CREATE MATERIALIZED VIEW {db}.training_trainable_examples_by_current_mv TO {db}.training_trainable_examples AS
SELECT
    trace_id, timestamp, session_id, cascade_id, cell_name, species_hash, user_input, assistant_output,
    model, cost, tokens_in, tokens_out, duration_ms, caller_id, node_type, 'assistant' AS role,
    trainable, verified, confidence, notes, tags, version AS annotated_at, annotated_by
FROM {db}.training_examples_current
WHERE trainable
   OR trace_id IN (SELECT trace_id FROM {db}.training_trainable_examples
                   WHERE trace_id IN (SELECT trace_id FROM {db}.training_examples_current));
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
WHERE NOT s.trainable;
CREATE VIEW {db}.training_stats_by_cascade AS
SELECT cascade_id, cell_name, countIf(trainable) AS trainable_count, countIf(verified) AS verified_count,
       avg(confidence) AS avg_confidence, count() AS total_executions
FROM {db}.training_examples_current FINAL
GROUP BY cascade_id, cell_name;
