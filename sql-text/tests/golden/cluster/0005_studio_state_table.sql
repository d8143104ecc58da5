CREATE TABLE IF NOT EXISTS training_examples_current ON CLUSTER 'rvbbit_cluster'
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
    INDEX idx_session_id session_id TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/training_examples_current', '{replica}', version)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (timestamp, trace_id)
SETTINGS index_granularity = 256, min_age_to_force_merge_seconds = 60, min_age_to_force_merge_on_partition_only = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS training_examples_current_by_annotation_mv ON CLUSTER 'rvbbit_cluster' TO training_examples_current AS
SELECT
    e.timestamp AS timestamp,
    e.trace_id AS trace_id,
    e.session_id AS session_id,
    e.cascade_id AS cascade_id,
    e.cell_name AS cell_name,
    e.species_hash AS species_hash,
    e.user_input AS user_input,
    e.assistant_output AS assistant_output,
    if(l.trace_id = '', e.model, l.model) AS model,
    if(l.trace_id = '', e.cost, l.cost) AS cost,
    if(l.trace_id = '', e.tokens_in, l.tokens_in) AS tokens_in,
    if(l.trace_id = '', e.tokens_out, l.tokens_out) AS tokens_out,
    if(l.trace_id = '', e.duration_ms, l.duration_ms) AS duration_ms,
    e.caller_id AS caller_id,
    e.node_type AS node_type,
    a.trainable AS trainable,
    a.verified AS verified,
    a.confidence AS confidence,
    a.notes AS notes,
    a.tags AS tags,
    CAST(a.annotated_at AS Nullable(DateTime64(6))) AS annotated_at,
    a.annotated_by AS annotated_by,
    CAST(a.annotated_at AS DateTime64(6)) AS version,
    if(l.trace_id = '', e.captured_at, now64(6)) AS captured_at
FROM training_annotations AS a
INNER JOIN
(
    SELECT timestamp, trace_id, session_id, cascade_id, cell_name, species_hash, user_input, assistant_output,
           model, cost, tokens_in, tokens_out, duration_ms, caller_id, node_type, captured_at
    FROM training_examples_current
    WHERE trace_id IN (SELECT trace_id FROM training_annotations)
    ORDER BY version DESC, captured_at DESC
    LIMIT 1 BY trace_id
) AS e ON e.trace_id = a.trace_id
LEFT ANY JOIN
(
    SELECT trace_id, model, cost, tokens_in, tokens_out, duration_ms
    FROM unified_logs
    WHERE role = 'assistant'
      AND trace_id IN (SELECT trace_id FROM training_annotations
                       WHERE annotated_by IN ('confidence_worker', 'confidence_worker_ondemand'))
) AS l ON l.trace_id = a.trace_id
SETTINGS join_use_nulls = 0;

CREATE MATERIALIZED VIEW IF NOT EXISTS training_trainable_examples_by_current_mv ON CLUSTER 'rvbbit_cluster' TO training_trainable_examples AS
SELECT
    trace_id,
    timestamp,
    session_id,
    cascade_id,
    cell_name,
    species_hash,
    user_input,
    assistant_output,
    model,
    cost,
    tokens_in,
    tokens_out,
    duration_ms,
    caller_id,
    node_type,
    'assistant' AS role,
    trainable,
    verified,
    confidence,
    notes,
    tags,
    version AS annotated_at,
    annotated_by
FROM training_examples_current
WHERE trainable
   OR trace_id IN (SELECT trace_id FROM training_trainable_examples
                   WHERE trace_id IN (SELECT trace_id FROM training_examples_current));

CREATE MATERIALIZED VIEW IF NOT EXISTS training_examples_current_by_log_mv ON CLUSTER 'rvbbit_cluster' TO training_examples_current AS
WITH
    arrayElement(
        arrayFilter(
            m -> JSONExtractString(m, 'role') = 'user',
            JSONExtractArrayRaw(ifNull(full_request_json, ''), 'messages')
        ),
        -1
    ) AS last_user_message,
    ifNull(content_json, '') AS reply_json,
    multiIf(
        NOT isValidJSON(reply_json), reply_json,
        JSONType(reply_json) = 'String', JSONExtractString(reply_json),
        JSONType(reply_json) = 'Null', '',
        reply_json
    ) AS extracted_output
SELECT
    timestamp,
    trace_id,
    session_id,
    ifNull(cascade_id, '') AS cascade_id,
    ifNull(cell_name, '') AS cell_name,
    ifNull(species_hash, '') AS species_hash,
    multiIf(
        JSONType(last_user_message, 'content') = 'String',
            JSONExtractString(last_user_message, 'content'),
        JSONType(last_user_message, 'content') = 'Array',
            arrayStringConcat(
                arrayMap(
                    part -> JSONExtractString(part, 'text'),
                    arrayFilter(
                        part -> JSONExtractString(part, 'type') = 'text',
                        JSONExtractArrayRaw(last_user_message, 'content')
                    )
                ),
                '\n'
            ),
        ''
    ) AS user_input,
    extracted_output AS assistant_output,
    model,
    cost,
    tokens_in,
    tokens_out,
    duration_ms,
    caller_id,
    CAST(node_type AS String) AS node_type,
    CAST(false AS Bool) AS trainable,
    CAST(false AS Bool) AS verified,
    CAST(NULL AS Nullable(Float32)) AS confidence,
    '' AS notes,
    CAST([] AS Array(String)) AS tags,
    CAST(NULL AS Nullable(DateTime64(6))) AS annotated_at,
    '' AS annotated_by,
    toDateTime64(0, 6) AS version,
    now64(6) AS captured_at
FROM unified_logs
WHERE role = 'assistant'
  AND ifNull(cascade_id, '') != ''
  AND extracted_output != '';

INSERT INTO training_examples_current
SELECT
    e.timestamp,
    e.trace_id,
    e.session_id,
    e.cascade_id,
    e.cell_name,
    e.species_hash,
    e.user_input,
    e.assistant_output,
    if(r.trace_id = '', CAST(nullIf(e.model, '') AS Nullable(String)), r.model),
    r.cost,
    r.tokens_in,
    r.tokens_out,
    r.duration_ms,
    r.caller_id,
    r.node_type,
    ifNull(tupleElement(a.latest, 1), false),
    ifNull(tupleElement(a.latest, 2), false),
    tupleElement(a.latest, 3),
    ifNull(tupleElement(a.latest, 4), ''),
    ifNull(tupleElement(a.latest, 5), []),
    if(a.trace_id = '', NULL, CAST(a.last_annotated_at AS Nullable(DateTime64(6)))),
    ifNull(tupleElement(a.latest, 6), ''),
    if(a.trace_id = '', toDateTime64(0, 6), a.last_annotated_at),
    now64(6)
FROM
(
    SELECT * FROM training_examples
    WHERE trace_id NOT IN (SELECT trace_id FROM training_examples_current)
    LIMIT 1 BY trace_id
) AS e
LEFT ANY JOIN
(
    SELECT trace_id, model, cost, tokens_in, tokens_out, duration_ms, caller_id, CAST(node_type AS String) AS node_type
    FROM unified_logs
    WHERE role = 'assistant'
      AND trace_id IN (SELECT trace_id FROM training_examples)
) AS r ON r.trace_id = e.trace_id
LEFT ANY JOIN
(
    SELECT
        trace_id,
        argMax(tuple(trainable, verified, confidence, notes, tags, annotated_by), annotated_at) AS latest,
        max(annotated_at) AS last_annotated_at
    FROM training_annotations
    WHERE trace_id IN (SELECT trace_id FROM training_examples)
    GROUP BY trace_id
) AS a ON a.trace_id = e.trace_id
SETTINGS join_use_nulls = 0, max_threads = 2, max_block_size = 8192, min_insert_block_size_rows = 65536;

ALTER TABLE training_trainable_examples ON CLUSTER 'rvbbit_cluster' ADD INDEX IF NOT EXISTS idx_session_id session_id TYPE bloom_filter(0.001) GRANULARITY 1;

ALTER TABLE training_trainable_examples ON CLUSTER 'rvbbit_cluster' MATERIALIZE INDEX idx_session_id;

CREATE OR REPLACE VIEW training_examples_with_annotations ON CLUSTER 'rvbbit_cluster' AS
SELECT
    trace_id, session_id, timestamp, cascade_id, cell_name, species_hash, user_input, assistant_output,
    model, cost, tokens_in, tokens_out, duration_ms, caller_id, node_type, role,
    trainable, verified, confidence, notes, tags,
    CAST(annotated_at AS Nullable(DateTime64(6))) AS annotated_at, annotated_by
FROM training_trainable_examples FINAL
WHERE trainable
UNION ALL
SELECT
    s.trace_id AS trace_id,
    s.session_id AS session_id,
    s.timestamp AS timestamp,
    s.cascade_id AS cascade_id,
    s.cell_name AS cell_name,
    s.species_hash AS species_hash,
    s.user_input AS user_input,
    s.assistant_output AS assistant_output,
    s.model AS model,
    s.cost AS cost,
    s.tokens_in AS tokens_in,
    s.tokens_out AS tokens_out,
    s.duration_ms AS duration_ms,
    s.caller_id AS caller_id,
    s.node_type AS node_type,
    'assistant' AS role,
    CAST(false AS Bool) AS trainable,
    s.verified AS verified,
    s.confidence AS confidence,
    s.notes AS notes,
    s.tags AS tags,
    s.annotated_at AS annotated_at,
    s.annotated_by AS annotated_by
FROM training_examples_current AS s FINAL
WHERE NOT s.trainable
SETTINGS do_not_merge_across_partitions_select_final = 1, use_skip_indexes_if_final = 1;

CREATE OR REPLACE VIEW training_stats_by_cascade ON CLUSTER 'rvbbit_cluster' AS
SELECT
    cascade_id,
    cell_name,
    countIf(trainable) AS trainable_count,
    countIf(verified) AS verified_count,
    avg(confidence) AS avg_confidence,
    count() AS total_executions
FROM training_examples_current FINAL
GROUP BY cascade_id, cell_name
SETTINGS do_not_merge_across_partitions_select_final = 1;

DROP VIEW IF EXISTS training_examples_mv ON CLUSTER 'rvbbit_cluster' SYNC;

DROP VIEW IF EXISTS training_trainable_examples_by_example_mv ON CLUSTER 'rvbbit_cluster' SYNC;

DROP VIEW IF EXISTS training_trainable_annotations_mv ON CLUSTER 'rvbbit_cluster' SYNC;

DROP VIEW IF EXISTS training_trainable_examples_by_mark_mv ON CLUSTER 'rvbbit_cluster' SYNC;

DROP TABLE IF EXISTS training_trainable_annotations ON CLUSTER 'rvbbit_cluster' SYNC;

DROP TABLE IF EXISTS training_examples ON CLUSTER 'rvbbit_cluster' SYNC;

INSERT INTO training_trainable_examples
SELECT
    trace_id, timestamp, session_id, cascade_id, cell_name, species_hash, user_input, assistant_output,
    model, cost, tokens_in, tokens_out, duration_ms, caller_id, node_type, 'assistant',
    trainable, verified, confidence, notes, tags, version, annotated_by
FROM training_examples_current FINAL
WHERE trainable
  AND trace_id NOT IN (SELECT trace_id FROM training_trainable_examples);
