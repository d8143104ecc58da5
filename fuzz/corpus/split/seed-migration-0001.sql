-- Universal training system, version 1.
--
-- Applied by `rvbbit training migrate`, one statement at a time, in the database
-- chosen with --database (statements use unqualified names). Every statement is
-- idempotent. After the statements, migrate backfills `training_examples` from the
-- rows already in `unified_logs`, using the materialized view's own query, so the
-- history and the live stream go through one definition.

-- 1. Annotations: one row per marking; the latest `annotated_at` wins.
--    `confidence` NULL means "not assessed".
CREATE TABLE IF NOT EXISTS training_annotations
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
ENGINE = ReplacingMergeTree(annotated_at)
ORDER BY trace_id;

-- 2, 3. Skipping indexes for Studio's filters.
ALTER TABLE training_annotations ADD INDEX IF NOT EXISTS idx_trainable trainable TYPE set(2) GRANULARITY 1;

ALTER TABLE training_annotations ADD INDEX IF NOT EXISTS idx_verified verified TYPE set(2) GRANULARITY 1;

-- 4. Where the materialized view stores examples. ReplacingMergeTree so that a row
--    written twice (a backfill racing the live stream) converges to one.
CREATE TABLE IF NOT EXISTS training_examples
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
ENGINE = ReplacingMergeTree
ORDER BY (cascade_id, cell_name, timestamp, trace_id);

-- 5. The materialized view: every assistant reply logged inside a cascade becomes an
--    example as it arrives.
--    user_input: the text of the last user message of the request (a string content,
--    or the text parts of a list content joined by newlines).
--    assistant_output: content_json decoded when it is a JSON string, else the JSON as
--    stored; a JSON null counts as no reply.
CREATE MATERIALIZED VIEW IF NOT EXISTS training_examples_mv TO training_examples AS
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

-- 6. Every example with its latest annotation: one row per trace. Unannotated examples
--    read trainable = false, verified = false, confidence NULL, annotated_at NULL
--    (join_use_nulls makes the unmatched side NULL; `ifNull` turns it into the defaults). `argMax` over a tuple keeps a
--    NULL confidence when the latest annotation has one (a plain argMax would skip
--    NULLs and return an older value).
CREATE VIEW IF NOT EXISTS training_examples_with_annotations AS
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

-- 7. Studio's KPI cards, per cascade and cell.
CREATE VIEW IF NOT EXISTS training_stats_by_cascade AS
SELECT
    cascade_id,
    cell_name,
    countIf(trainable) AS trainable_count,
    countIf(verified) AS verified_count,
    avg(confidence) AS avg_confidence,
    count() AS total_executions
FROM training_examples_with_annotations
GROUP BY cascade_id, cell_name;
