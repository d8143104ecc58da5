ALTER TABLE training_examples ON CLUSTER 'rvbbit_cluster' ADD INDEX IF NOT EXISTS idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1;

ALTER TABLE training_examples ON CLUSTER 'rvbbit_cluster' MATERIALIZE INDEX idx_trace_id;

CREATE TABLE IF NOT EXISTS training_annotated_examples ON CLUSTER 'rvbbit_cluster'
(
    trace_id         String,
    timestamp        DateTime64(6),
    session_id       String,
    cascade_id       String,
    cell_name        String,
    species_hash     String,
    model            String,
    user_input       String,
    assistant_output String,
    trainable        Bool,
    verified         Bool,
    confidence       Nullable(Float32),
    notes            String,
    tags             Array(String),
    annotated_at     DateTime64(6),
    annotated_by     String
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/training_annotated_examples', '{replica}', annotated_at)
ORDER BY (cascade_id, cell_name, trace_id)
-- Small granules: a cell holds few annotated examples, and a read of one cell
-- should not decompress the texts of its neighbours. Compact parts (all columns in
-- one file) at any size: a retrieval reads few rows of many columns, and opens one
-- file per part instead of two per column. Parts older than 5 minutes are merged
-- into one: every extra part makes each FINAL read dearer (about 1 ms per part on
-- the local engine), and the table is small enough to rewrite.
SETTINGS index_granularity = 64, min_bytes_for_wide_part = 10000000000, min_age_to_force_merge_seconds = 300;

CREATE MATERIALIZED VIEW IF NOT EXISTS training_annotated_examples_by_annotation_mv ON CLUSTER 'rvbbit_cluster' TO training_annotated_examples AS
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
    SELECT trace_id, timestamp, session_id, cascade_id, cell_name, species_hash, model, user_input, assistant_output
    FROM training_examples
    WHERE trace_id IN (SELECT trace_id FROM training_annotations)
    LIMIT 1 BY trace_id
) AS e ON e.trace_id = a.trace_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS training_annotated_examples_by_example_mv ON CLUSTER 'rvbbit_cluster' TO training_annotated_examples AS
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
) AS a ON e.trace_id = a.trace_id;

INSERT INTO training_annotated_examples
SELECT
    e.trace_id,
    e.timestamp,
    e.session_id,
    e.cascade_id,
    e.cell_name,
    e.species_hash,
    e.model,
    e.user_input,
    e.assistant_output,
    tupleElement(a.latest, 1),
    tupleElement(a.latest, 2),
    tupleElement(a.latest, 3),
    tupleElement(a.latest, 4),
    tupleElement(a.latest, 5),
    a.last_annotated_at,
    tupleElement(a.latest, 6)
FROM
(
    SELECT trace_id, timestamp, session_id, cascade_id, cell_name, species_hash, model, user_input, assistant_output
    FROM training_examples
    WHERE trace_id IN (SELECT trace_id FROM training_annotations)
      AND trace_id NOT IN (SELECT trace_id FROM training_annotated_examples)
    LIMIT 1 BY trace_id
) AS e
INNER JOIN
(
    SELECT
        trace_id,
        argMax(tuple(trainable, verified, confidence, notes, tags, annotated_by), annotated_at) AS latest,
        max(annotated_at) AS last_annotated_at
    FROM training_annotations
    GROUP BY trace_id
) AS a ON e.trace_id = a.trace_id;

CREATE OR REPLACE VIEW training_examples_with_annotations ON CLUSTER 'rvbbit_cluster' AS
SELECT
    trace_id,
    timestamp,
    session_id,
    cascade_id,
    cell_name,
    species_hash,
    model,
    user_input,
    assistant_output,
    trainable,
    verified,
    confidence,
    notes,
    tags,
    CAST(annotated_at AS Nullable(DateTime64(6))) AS annotated_at,
    annotated_by
FROM training_annotated_examples FINAL
UNION ALL
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
    CAST(false AS Bool) AS trainable,
    CAST(false AS Bool) AS verified,
    CAST(NULL AS Nullable(Float32)) AS confidence,
    '' AS notes,
    CAST([] AS Array(String)) AS tags,
    CAST(NULL AS Nullable(DateTime64(6))) AS annotated_at,
    '' AS annotated_by
FROM training_examples AS e
LEFT ANTI JOIN training_annotated_examples AS a ON e.trace_id = a.trace_id;
