CREATE TABLE IF NOT EXISTS training_annotations ON CLUSTER 'rvbbit_cluster'
(
    trace_id     String,
    trainable    Bool DEFAULT false,
    verified     Bool DEFAULT false,
    confidence   Nullable(Float32),
    notes        String DEFAULT '',
    tags         Array(String) DEFAULT [],
    annotated_at DateTime64(6) DEFAULT now64(6),
    annotated_by String DEFAULT ''
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/training_annotations', '{replica}', annotated_at)
ORDER BY trace_id;

ALTER TABLE training_annotations ON CLUSTER 'rvbbit_cluster' ADD INDEX IF NOT EXISTS idx_trainable trainable TYPE set(2) GRANULARITY 1;

ALTER TABLE training_annotations ON CLUSTER 'rvbbit_cluster' ADD INDEX IF NOT EXISTS idx_verified verified TYPE set(2) GRANULARITY 1;

CREATE TABLE IF NOT EXISTS training_examples ON CLUSTER 'rvbbit_cluster'
(
    trace_id         String,
    timestamp        DateTime64(6),
    session_id       String,
    cascade_id       String,
    cell_name        String,
    species_hash     String,
    model            String,
    user_input       String,
    assistant_output String
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/training_examples', '{replica}')
ORDER BY (cascade_id, cell_name, timestamp, trace_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS training_examples_mv ON CLUSTER 'rvbbit_cluster' TO training_examples AS
WITH
    arrayElement(
        arrayFilter(
            m -> JSONExtractString(m, 'role') = 'user',
            JSONExtractArrayRaw(ifNull(full_request_json, ''), 'messages')
        ),
        -1
    ) AS last_user_message,
    ifNull(content_json, '') AS reply_json
SELECT
    trace_id,
    timestamp,
    session_id,
    ifNull(cascade_id, '') AS cascade_id,
    ifNull(cell_name, '') AS cell_name,
    ifNull(species_hash, '') AS species_hash,
    ifNull(model, '') AS model,
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
    multiIf(
        NOT isValidJSON(reply_json), reply_json,
        JSONType(reply_json) = 'String', JSONExtractString(reply_json),
        JSONType(reply_json) = 'Null', '',
        reply_json
    ) AS assistant_output
FROM unified_logs
-- The aliases above never hide a NULL: `cascade_id` here is `ifNull(cascade_id, '')`
-- whether the server resolves it to the alias or to the column.
WHERE role = 'assistant'
  AND cascade_id != ''
  AND assistant_output != '';

CREATE VIEW IF NOT EXISTS training_examples_with_annotations ON CLUSTER 'rvbbit_cluster' AS
SELECT
    e.trace_id AS trace_id,
    e.timestamp AS timestamp,
    e.session_id AS session_id,
    e.cascade_id AS cascade_id,
    e.cell_name AS cell_name,
    e.species_hash AS species_hash,
    e.model AS model,
    e.user_input AS user_input,
    e.assistant_output AS assistant_output,
    ifNull(tupleElement(a.latest, 1), false) AS trainable,
    ifNull(tupleElement(a.latest, 2), false) AS verified,
    tupleElement(a.latest, 3) AS confidence,
    ifNull(tupleElement(a.latest, 4), '') AS notes,
    tupleElement(a.latest, 5) AS tags,
    a.last_annotated_at AS annotated_at,
    ifNull(tupleElement(a.latest, 6), '') AS annotated_by
FROM training_examples AS e
LEFT JOIN
(
    SELECT
        trace_id,
        argMax(tuple(trainable, verified, confidence, notes, tags, annotated_by), annotated_at) AS latest,
        max(annotated_at) AS last_annotated_at
    FROM training_annotations
    GROUP BY trace_id
) AS a ON e.trace_id = a.trace_id
SETTINGS join_use_nulls = 1;

CREATE VIEW IF NOT EXISTS training_stats_by_cascade ON CLUSTER 'rvbbit_cluster' AS
SELECT
    cascade_id,
    cell_name,
    countIf(trainable) AS trainable_count,
    countIf(verified) AS verified_count,
    avg(confidence) AS avg_confidence,
    count() AS total_executions
FROM training_examples_with_annotations
GROUP BY cascade_id, cell_name;
