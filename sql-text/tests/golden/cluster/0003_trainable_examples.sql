CREATE TABLE IF NOT EXISTS training_trainable_examples ON CLUSTER 'rvbbit_cluster'
(
    trace_id         String,
    timestamp        DateTime64(6),
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
    role             String,
    trainable        Bool,
    verified         Bool,
    confidence       Nullable(Float32),
    notes            String,
    tags             Array(String),
    annotated_at     DateTime64(6),
    annotated_by     String,
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/training_trainable_examples', '{replica}', annotated_at)
ORDER BY (cascade_id, cell_name, trace_id)
-- Small granules and compact parts: a retrieval reads few rows of many columns.
-- Parts older than 5 minutes are merged into one: every part makes a FINAL read dearer.
SETTINGS index_granularity = 64, min_bytes_for_wide_part = 10000000000, min_age_to_force_merge_seconds = 300;

CREATE MATERIALIZED VIEW IF NOT EXISTS training_trainable_examples_by_annotation_mv ON CLUSTER 'rvbbit_cluster' TO training_trainable_examples AS
SELECT
    e.trace_id AS trace_id,
    e.timestamp AS timestamp,
    e.session_id AS session_id,
    e.cascade_id AS cascade_id,
    e.cell_name AS cell_name,
    e.species_hash AS species_hash,
    e.user_input AS user_input,
    e.assistant_output AS assistant_output,
    l.model AS model,
    l.cost AS cost,
    l.tokens_in AS tokens_in,
    l.tokens_out AS tokens_out,
    l.duration_ms AS duration_ms,
    l.caller_id AS caller_id,
    l.node_type AS node_type,
    l.role AS role,
    a.trainable AS trainable,
    a.verified AS verified,
    a.confidence AS confidence,
    a.notes AS notes,
    a.tags AS tags,
    a.annotated_at AS annotated_at,
    a.annotated_by AS annotated_by
FROM training_annotations AS a
INNER JOIN
(
    SELECT trace_id, timestamp, session_id, cascade_id, cell_name, species_hash, user_input, assistant_output
    FROM training_examples
    WHERE trace_id IN (
        SELECT trace_id FROM training_annotations
        WHERE trainable
           OR trace_id IN (SELECT trace_id FROM training_trainable_examples
                           WHERE trace_id IN (SELECT trace_id FROM training_annotations)))
    LIMIT 1 BY trace_id
) AS e ON e.trace_id = a.trace_id
LEFT ANY JOIN
(
    SELECT trace_id, model, cost, tokens_in, tokens_out, duration_ms, caller_id,
           CAST(node_type AS String) AS node_type, CAST(role AS String) AS role
    FROM unified_logs
    WHERE role = 'assistant'
      AND trace_id IN (
        SELECT trace_id FROM training_annotations
        WHERE trainable
           OR trace_id IN (SELECT trace_id FROM training_trainable_examples
                           WHERE trace_id IN (SELECT trace_id FROM training_annotations)))
) AS l ON l.trace_id = a.trace_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS training_trainable_examples_by_example_mv ON CLUSTER 'rvbbit_cluster' TO training_trainable_examples AS
SELECT
    e.trace_id AS trace_id,
    e.timestamp AS timestamp,
    e.session_id AS session_id,
    e.cascade_id AS cascade_id,
    e.cell_name AS cell_name,
    e.species_hash AS species_hash,
    e.user_input AS user_input,
    e.assistant_output AS assistant_output,
    l.model AS model,
    l.cost AS cost,
    l.tokens_in AS tokens_in,
    l.tokens_out AS tokens_out,
    l.duration_ms AS duration_ms,
    l.caller_id AS caller_id,
    l.node_type AS node_type,
    l.role AS role,
    tupleElement(a.latest, 1) AS trainable,
    tupleElement(a.latest, 2) AS verified,
    tupleElement(a.latest, 3) AS confidence,
    tupleElement(a.latest, 4) AS notes,
    tupleElement(a.latest, 5) AS tags,
    a.last_annotated_at AS annotated_at,
    tupleElement(a.latest, 6) AS annotated_by
FROM training_examples AS e
INNER JOIN
(
    SELECT
        trace_id,
        argMax(tuple(trainable, verified, confidence, notes, tags, annotated_by), annotated_at) AS latest,
        max(annotated_at) AS last_annotated_at
    FROM training_annotations
    WHERE trace_id IN (SELECT trace_id FROM training_examples)
    GROUP BY trace_id
    HAVING tupleElement(latest, 1)
) AS a ON e.trace_id = a.trace_id
LEFT ANY JOIN
(
    SELECT trace_id, model, cost, tokens_in, tokens_out, duration_ms, caller_id,
           CAST(node_type AS String) AS node_type, CAST(role AS String) AS role
    FROM unified_logs
    WHERE role = 'assistant'
      AND trace_id IN (SELECT trace_id FROM training_annotations
                       WHERE trainable AND trace_id IN (SELECT trace_id FROM training_examples))
) AS l ON l.trace_id = e.trace_id;

INSERT INTO training_trainable_examples
SELECT
    e.trace_id,
    e.timestamp,
    e.session_id,
    e.cascade_id,
    e.cell_name,
    e.species_hash,
    e.user_input,
    e.assistant_output,
    l.model,
    l.cost,
    l.tokens_in,
    l.tokens_out,
    l.duration_ms,
    l.caller_id,
    l.node_type,
    l.role,
    tupleElement(a.latest, 1),
    tupleElement(a.latest, 2),
    tupleElement(a.latest, 3),
    tupleElement(a.latest, 4),
    tupleElement(a.latest, 5),
    a.last_annotated_at,
    tupleElement(a.latest, 6)
FROM
(
    SELECT trace_id, timestamp, session_id, cascade_id, cell_name, species_hash, user_input, assistant_output
    FROM training_examples
    WHERE trace_id IN (SELECT trace_id FROM training_annotations WHERE trainable)
      AND trace_id NOT IN (SELECT trace_id FROM training_trainable_examples)
    LIMIT 1 BY trace_id
) AS e
INNER JOIN
(
    SELECT
        trace_id,
        argMax(tuple(trainable, verified, confidence, notes, tags, annotated_by), annotated_at) AS latest,
        max(annotated_at) AS last_annotated_at
    FROM training_annotations
    WHERE trace_id IN (SELECT trace_id FROM training_annotations WHERE trainable)
    GROUP BY trace_id
    HAVING tupleElement(latest, 1)
) AS a ON e.trace_id = a.trace_id
LEFT ANY JOIN
(
    SELECT trace_id, model, cost, tokens_in, tokens_out, duration_ms, caller_id,
           CAST(node_type AS String) AS node_type, CAST(role AS String) AS role
    FROM unified_logs
    WHERE role = 'assistant'
      AND trace_id IN (SELECT trace_id FROM training_annotations WHERE trainable)
) AS l ON l.trace_id = e.trace_id;

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
    e.trace_id AS trace_id,
    e.session_id AS session_id,
    e.timestamp AS timestamp,
    e.cascade_id AS cascade_id,
    e.cell_name AS cell_name,
    e.species_hash AS species_hash,
    e.user_input AS user_input,
    e.assistant_output AS assistant_output,
    if(r.trace_id = '', CAST(nullIf(e.model, '') AS Nullable(String)), r.model) AS model,
    r.cost AS cost,
    r.tokens_in AS tokens_in,
    r.tokens_out AS tokens_out,
    r.duration_ms AS duration_ms,
    r.caller_id AS caller_id,
    r.node_type AS node_type,
    'assistant' AS role,
    CAST(false AS Bool) AS trainable,
    tupleElement(r.latest, 2) AS verified,
    tupleElement(r.latest, 3) AS confidence,
    tupleElement(r.latest, 4) AS notes,
    tupleElement(r.latest, 5) AS tags,
    if(r.annotated, CAST(r.last_annotated_at AS Nullable(DateTime64(6))), NULL) AS annotated_at,
    tupleElement(r.latest, 6) AS annotated_by
FROM training_examples AS e
-- One join, whose right side holds the log row's current values and the latest
-- annotation: when rvbbit's `trainable = true` makes this part's filter a constant
-- false, the server reads nothing and builds no join (two joins in a row would build
-- the second one's right side whatever the left).
LEFT ANY JOIN
(
    SELECT
        l.trace_id AS trace_id, l.model AS model, l.cost AS cost, l.tokens_in AS tokens_in,
        l.tokens_out AS tokens_out, l.duration_ms AS duration_ms, l.caller_id AS caller_id,
        CAST(l.node_type AS String) AS node_type,
        a.latest AS latest, a.last_annotated_at AS last_annotated_at, a.trace_id != '' AS annotated
    FROM unified_logs AS l
    LEFT JOIN
    (
        SELECT
            trace_id,
            argMax(tuple(trainable, verified, confidence, notes, tags, annotated_by), annotated_at) AS latest,
            max(annotated_at) AS last_annotated_at
        FROM training_annotations
        GROUP BY trace_id
    ) AS a ON a.trace_id = l.trace_id
    WHERE l.role = 'assistant'
) AS r ON r.trace_id = e.trace_id
WHERE NOT tupleElement(r.latest, 1);

DROP VIEW IF EXISTS training_annotated_examples_by_annotation_mv ON CLUSTER 'rvbbit_cluster' SYNC;

DROP VIEW IF EXISTS training_annotated_examples_by_example_mv ON CLUSTER 'rvbbit_cluster' SYNC;

DROP TABLE IF EXISTS training_annotated_examples ON CLUSTER 'rvbbit_cluster' SYNC;
