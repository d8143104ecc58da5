-- Candidate "current state" design, prototyped in database {db} next to rvbbit (database {src}).
-- {db}.training_annotations / {db}.training_trainable_examples are copies of the real ones
-- (so the worker's insert fires only this candidate's views); unified_logs is {src}.unified_logs.

CREATE TABLE {db}.training_annotations AS {src}.training_annotations;

-- 1. One row per example after merges: texts, the log row's values as last captured,
--    the latest annotation. Sorted by time (Studio's grid, search and session view
--    read the newest rows first); a trace's rows share the key (timestamp, trace_id),
--    so FINAL keeps the row with the highest version = its latest annotated_at (0 when
--    not annotated); equal versions: the last inserted (a re-capture of log values).
CREATE TABLE {db}.training_examples_current
(
    timestamp        DateTime64(6),
    trace_id         String,
    session_id       String,
    cascade_id       String,
    cell_name        String,
    species_hash     String,
    user_input       String,
    assistant_output String,
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
ORDER BY (timestamp, trace_id);

-- 2. The trainable copy for rvbbit's retrieval (0003's table, unchanged).
CREATE TABLE {db}.training_trainable_examples AS {src}.training_trainable_examples;

-- 3. Log path: an assistant row of a cascade becomes a row here as it is logged (the
--    extraction of training_examples_mv), with the log values it is inserted with and
--    its trace's latest annotation if one exists already (normally none).
CREATE MATERIALIZED VIEW {db}.training_examples_current_by_log_mv TO {db}.training_examples_current AS
WITH
    arrayElement(arrayFilter(m -> JSONExtractString(m, 'role') = 'user',
                             JSONExtractArrayRaw(ifNull(l.full_request_json, ''), 'messages')), -1) AS last_user_message,
    ifNull(l.content_json, '') AS reply_json,
    multiIf(
        JSONType(last_user_message, 'content') = 'String', JSONExtractString(last_user_message, 'content'),
        JSONType(last_user_message, 'content') = 'Array',
            arrayStringConcat(arrayMap(part -> JSONExtractString(part, 'text'),
                arrayFilter(part -> JSONExtractString(part, 'type') = 'text', JSONExtractArrayRaw(last_user_message, 'content'))), '\n'),
        '') AS extracted_user_input,
    multiIf(NOT isValidJSON(reply_json), reply_json, JSONType(reply_json) = 'String', JSONExtractString(reply_json),
            JSONType(reply_json) = 'Null', '', reply_json) AS extracted_output
SELECT
    l.timestamp AS timestamp, l.trace_id AS trace_id, l.session_id AS session_id,
    ifNull(l.cascade_id, '') AS cascade_id, ifNull(l.cell_name, '') AS cell_name, ifNull(l.species_hash, '') AS species_hash,
    extracted_user_input AS user_input, extracted_output AS assistant_output,
    l.model AS model, l.cost AS cost, l.tokens_in AS tokens_in, l.tokens_out AS tokens_out, l.duration_ms AS duration_ms,
    l.caller_id AS caller_id, CAST(l.node_type AS String) AS node_type,
    tupleElement(a.latest, 1) AS trainable, tupleElement(a.latest, 2) AS verified, tupleElement(a.latest, 3) AS confidence,
    tupleElement(a.latest, 4) AS notes, tupleElement(a.latest, 5) AS tags,
    if(a.trace_id = '', NULL, CAST(a.last_annotated_at AS Nullable(DateTime64(6)))) AS annotated_at,
    tupleElement(a.latest, 6) AS annotated_by,
    if(a.trace_id = '', toDateTime64(0, 6), a.last_annotated_at) AS version,
    now64(6) AS captured_at
FROM {src}.unified_logs AS l
LEFT ANY JOIN
(
    SELECT trace_id,
           argMax(tuple(trainable, verified, confidence, notes, tags, annotated_by), annotated_at) AS latest,
           max(annotated_at) AS last_annotated_at
    FROM {db}.training_annotations
    WHERE trace_id IN (SELECT trace_id FROM {src}.unified_logs)
    GROUP BY trace_id
) AS a ON a.trace_id = l.trace_id
WHERE l.role = 'assistant' AND ifNull(l.cascade_id, '') != '' AND extracted_output != '';

-- 4. Annotation path: every annotation (the worker's score, a marking, a take-back)
--    writes the trace's row again with this annotation and the log row's CURRENT values
--    (the late cost has landed by the time the worker scores). Texts and key come from
--    any row of the trace already here (they never change). Traces that are not
--    examples match nothing.
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
    a.annotated_at AS version, now64(6) AS captured_at
FROM {db}.training_annotations AS a
INNER JOIN
(
    SELECT timestamp, trace_id, session_id, cascade_id, cell_name, species_hash, user_input, assistant_output,
           model, cost, tokens_in, tokens_out, duration_ms, caller_id, node_type
    FROM {db}.training_examples_current
    WHERE trace_id IN (SELECT trace_id FROM {db}.training_annotations)
    ORDER BY version DESC, captured_at DESC
    LIMIT 1 BY trace_id
) AS e ON e.trace_id = a.trace_id
LEFT ANY JOIN
(
    SELECT trace_id, model, cost, tokens_in, tokens_out, duration_ms, caller_id, CAST(node_type AS String) AS node_type
    FROM {src}.unified_logs
    WHERE role = 'assistant' AND trace_id IN (SELECT trace_id FROM {db}.training_annotations)
) AS l ON l.trace_id = a.trace_id;

-- 5. The trainable copy follows the rows written here: a row that is trainable, or of
--    a trace already in the copy (taken back, re-scored), is copied. Replaces 0003's
--    two views on training_annotations / training_examples.
CREATE MATERIALIZED VIEW {db}.training_trainable_examples_by_current_mv TO {db}.training_trainable_examples AS
SELECT
    trace_id, timestamp, session_id, cascade_id, cell_name, species_hash, user_input, assistant_output,
    model, cost, tokens_in, tokens_out, duration_ms, caller_id, node_type, 'assistant' AS role,
    trainable, verified, confidence, notes, tags, version AS annotated_at, annotated_by
FROM {db}.training_examples_current
WHERE trainable
   OR trace_id IN (SELECT trace_id FROM {db}.training_trainable_examples
                   WHERE trace_id IN (SELECT trace_id FROM {db}.training_examples_current));

-- 6. Late log values (cost, tokens, model written 3-5 s after the row by ALTER UPDATE,
--    which fires no view): every minute, the rows of the last 30 minutes whose stored
--    values differ from the log's are written again with the same version (equal
--    versions: the last inserted wins).
CREATE MATERIALIZED VIEW {db}.training_examples_current_refresh_mv
REFRESH EVERY 1 MINUTE APPEND TO {db}.training_examples_current AS
SELECT
    s.timestamp AS timestamp, s.trace_id AS trace_id, s.session_id AS session_id, s.cascade_id AS cascade_id,
    s.cell_name AS cell_name, s.species_hash AS species_hash, s.user_input AS user_input, s.assistant_output AS assistant_output,
    l.model AS model, l.cost AS cost, l.tokens_in AS tokens_in, l.tokens_out AS tokens_out, l.duration_ms AS duration_ms,
    l.caller_id AS caller_id, l.node_type AS node_type,
    s.trainable AS trainable, s.verified AS verified, s.confidence AS confidence, s.notes AS notes, s.tags AS tags,
    s.annotated_at AS annotated_at, s.annotated_by AS annotated_by, s.version AS version, now64(6) AS captured_at
FROM
(
    SELECT * FROM {db}.training_examples_current FINAL
    WHERE timestamp >= now64(6) - INTERVAL 30 MINUTE
) AS s
INNER JOIN
(
    SELECT trace_id, model, cost, tokens_in, tokens_out, duration_ms, caller_id, CAST(node_type AS String) AS node_type
    FROM {src}.unified_logs
    WHERE role = 'assistant' AND timestamp >= now64(6) - INTERVAL 31 MINUTE
) AS l ON l.trace_id = s.trace_id
WHERE NOT (isNotDistinctFrom(s.model, l.model) AND isNotDistinctFrom(s.cost, l.cost)
           AND isNotDistinctFrom(s.tokens_in, l.tokens_in) AND isNotDistinctFrom(s.tokens_out, l.tokens_out)
           AND isNotDistinctFrom(s.duration_ms, l.duration_ms) AND s.caller_id = l.caller_id AND s.node_type = l.node_type);

-- 7. Backfill: history (training_examples, the log's current values, latest annotation).
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
    FROM {src}.unified_logs WHERE role = 'assistant'
) AS r ON r.trace_id = e.trace_id
LEFT ANY JOIN
(
    SELECT trace_id,
           argMax(tuple(trainable, verified, confidence, notes, tags, annotated_by), annotated_at) AS latest,
           max(annotated_at) AS last_annotated_at
    FROM {db}.training_annotations
    GROUP BY trace_id
) AS a ON a.trace_id = e.trace_id
SETTINGS max_threads = 2;

-- 8. The joined view: the trainable copy (rvbbit's retrieval reads only this part), and
--    every other example from the state table, read with FINAL. No join, no aggregation.
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

-- 9. Studio's KPIs, from the state table alone (every example, latest annotation).
CREATE VIEW {db}.training_stats_by_cascade AS
SELECT
    cascade_id, cell_name,
    countIf(trainable) AS trainable_count,
    countIf(verified) AS verified_count,
    avg(confidence) AS avg_confidence,
    count() AS total_executions
FROM {db}.training_examples_current FINAL
GROUP BY cascade_id, cell_name;
