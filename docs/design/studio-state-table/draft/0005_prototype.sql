-- Migration 0005 as it would be installed, in the prototype's form: {db} is a new database
-- beside an rvbbit database {src} that holds unified_logs and 0004's objects (the bench's
-- kept data). The annotation table and the trainable copy are copied into {db}, so the
-- worker's inserts there fire only these views. Run with `tool.py PORT apply FILE DB SRC`.
-- What changed from phase 2 (README.md, PLAN-0005.md):
--   * the log path does not look up annotations (rvbbit writes the log row first; an
--     annotation that arrives before its example is caught up by migrate's catch-up);
--   * the annotation path looks the log up only for the scorer's rows (both of its names:
--     confidence_worker and confidence_worker_ondemand), as phase2/annotation_mv_log.sql;
--   * the upgrade's backfill reads training_examples month by month (one statement per
--     month here, as the runner's new step would send them).
CREATE TABLE {db}.training_annotations AS {src}.training_annotations;
CREATE TABLE {db}.training_trainable_examples AS {src}.training_trainable_examples;
INSERT INTO {db}.training_annotations SELECT * FROM {src}.training_annotations;
INSERT INTO {db}.training_trainable_examples SELECT * FROM {src}.training_trainable_examples;
CREATE TABLE {db}.training_examples_current
(
    timestamp        DateTime64(6),
    trace_id         String,
    session_id       String,
    cascade_id       String,
    cell_name        String,
    species_hash     String,
    user_input       String CODEC(ZSTD(3)),
    assistant_output String CODEC(LZ4),
    model            Nullable(String),
    cost             Nullable(Float64),
    tokens_in        Nullable(Int32),
    tokens_out       Nullable(Int32),
    duration_ms      Nullable(Float64),
    caller_id        String,
    node_type        String,
    trainable        Bool,
    verified         Bool,
    confidence       Nullable(Float32),
    notes            String,
    tags             Array(String),
    annotated_at     Nullable(DateTime64(6)),
    annotated_by     String,
    version          DateTime64(6),
    captured_at      DateTime64(6),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_session_id session_id TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (timestamp, trace_id)
SETTINGS index_granularity = 256, min_age_to_force_merge_seconds = 60, min_age_to_force_merge_on_partition_only = 1;
CREATE MATERIALIZED VIEW {db}.training_examples_current_by_log_mv TO {db}.training_examples_current AS
WITH
    arrayElement(arrayFilter(m -> JSONExtractString(m, 'role') = 'user',
                             JSONExtractArrayRaw(ifNull(full_request_json, ''), 'messages')), -1) AS last_user_message,
    ifNull(content_json, '') AS reply_json,
    multiIf(
        JSONType(last_user_message, 'content') = 'String', JSONExtractString(last_user_message, 'content'),
        JSONType(last_user_message, 'content') = 'Array',
            arrayStringConcat(arrayMap(part -> JSONExtractString(part, 'text'),
                arrayFilter(part -> JSONExtractString(part, 'type') = 'text', JSONExtractArrayRaw(last_user_message, 'content'))), '\n'),
        '') AS extracted_user_input,
    multiIf(NOT isValidJSON(reply_json), reply_json, JSONType(reply_json) = 'String', JSONExtractString(reply_json),
            JSONType(reply_json) = 'Null', '', reply_json) AS extracted_output
SELECT
    timestamp, trace_id, session_id,
    ifNull(cascade_id, '') AS cascade_id, ifNull(cell_name, '') AS cell_name, ifNull(species_hash, '') AS species_hash,
    extracted_user_input AS user_input, extracted_output AS assistant_output,
    model, cost, tokens_in, tokens_out, duration_ms, caller_id, CAST(node_type AS String) AS node_type,
    CAST(false AS Bool) AS trainable, CAST(false AS Bool) AS verified, CAST(NULL AS Nullable(Float32)) AS confidence,
    '' AS notes, CAST([] AS Array(String)) AS tags, CAST(NULL AS Nullable(DateTime64(6))) AS annotated_at, '' AS annotated_by,
    toDateTime64(0, 6) AS version, now64(6) AS captured_at
FROM {src}.unified_logs
WHERE role = 'assistant' AND ifNull(cascade_id, '') != '' AND extracted_output != '';
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
      AND trace_id IN (SELECT trace_id FROM {db}.training_annotations WHERE startsWith(annotated_by, 'confidence_worker'))
) AS l ON l.trace_id = a.trace_id;
CREATE MATERIALIZED VIEW {db}.training_trainable_examples_by_current_mv TO {db}.training_trainable_examples AS
SELECT
    trace_id, timestamp, session_id, cascade_id, cell_name, species_hash, user_input, assistant_output,
    model, cost, tokens_in, tokens_out, duration_ms, caller_id, node_type, 'assistant' AS role,
    trainable, verified, confidence, notes, tags, version AS annotated_at, annotated_by
FROM {db}.training_examples_current
WHERE trainable
   OR trace_id IN (SELECT trace_id FROM {db}.training_trainable_examples
                   WHERE trace_id IN (SELECT trace_id FROM {db}.training_examples_current));
