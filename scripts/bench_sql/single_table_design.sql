-- A design measured by `scripts/bench --alternative` and NOT adopted (docs/PERFORMANCE.md,
-- "A design measured and not adopted"): every example in one table, with its latest
-- annotation, so that the joined view reads one table instead of two.
--
-- One row per (example, trainable) key. A marking writes the example with its new
-- annotation under its `trainable` value and a deletion marker (is_deleted = 1) under the
-- other value, both versioned by `annotated_at`; FINAL keeps, per key, the row with the
-- greatest version and drops it if it is a marker. An unannotated example is version 0.
-- Partitioned by `trainable`, so rvbbit's `trainable = true` reads only the small
-- partition of marked examples; `trainable` is in the sorting key too, so FINAL never
-- merges the two partitions' rows of one trace with each other.
--
-- Built from the tables of {ours} after `rvbbit training migrate`, in its own database.
-- Studio's stats view is 0001's, created by the benchmark over this joined view.
-- A real migration would fill it with materialized views from both sides, as 0002 does.

CREATE TABLE all_examples
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
    annotated_at     Nullable(DateTime64(6)),
    annotated_by     String,
    version          DateTime64(6),
    is_deleted       UInt8
)
ENGINE = ReplacingMergeTree(version, is_deleted)
PARTITION BY trainable
ORDER BY (cascade_id, cell_name, trainable, trace_id)
SETTINGS index_granularity = 64, min_bytes_for_wide_part = 10000000000;

-- Every example, unannotated (version 0).
INSERT INTO all_examples
SELECT trace_id, timestamp, session_id, cascade_id, cell_name, species_hash, model, user_input, assistant_output,
       false, false, NULL, '', [], NULL, '', toDateTime64(0, 6), 0
FROM {ours}.training_examples;

-- Every marking of an example (all versions, as the materialized views would have written them).
INSERT INTO all_examples
SELECT trace_id, timestamp, session_id, cascade_id, cell_name, species_hash, model, user_input, assistant_output,
       trainable, verified, confidence, notes, tags, annotated_at, annotated_by, annotated_at, 0
FROM {ours}.training_annotated_examples;

-- Its deletion marker under the other `trainable` value.
INSERT INTO all_examples (trace_id, cascade_id, cell_name, trainable, version, is_deleted)
SELECT trace_id, cascade_id, cell_name, NOT trainable, annotated_at, 1
FROM {ours}.training_annotated_examples;

CREATE VIEW training_examples_with_annotations AS
SELECT trace_id, timestamp, session_id, cascade_id, cell_name, species_hash, model, user_input, assistant_output,
       trainable, verified, confidence, notes, tags, annotated_at, annotated_by
FROM all_examples FINAL;
