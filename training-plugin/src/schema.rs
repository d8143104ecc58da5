//! What this version of the training system expects to find in the database: each
//! object's kind (engine) and the columns rvbbit and Studio read. `verify` checks the
//! live database against this; the end-to-end tests check that `migrate` produces it.

use crate::model::Kind;

pub struct Expected {
    pub name: &'static str,
    /// `system.tables.engine`.
    pub engine: &'static str,
    /// What users call it.
    pub kind: Kind,
    /// Column name and type, as `system.columns` reports them.
    pub columns: &'static [(&'static str, &'static str)],
}

const ANNOTATION_COLUMNS: &[(&str, &str)] = &[
    ("trace_id", "String"),
    ("trainable", "Bool"),
    ("verified", "Bool"),
    ("confidence", "Nullable(Float32)"),
    ("notes", "String"),
    ("tags", "Array(String)"),
    ("annotated_at", "DateTime64(6)"),
    ("annotated_by", "String"),
];

/// The state table's columns (migration 5): one row per example and annotation, the
/// latest (highest `version`) kept by merges and read with FINAL.
const EXAMPLE_COLUMNS: &[(&str, &str)] = &[
    ("timestamp", "DateTime64(6)"),
    ("trace_id", "String"),
    ("session_id", "String"),
    ("cascade_id", "String"),
    ("cell_name", "String"),
    ("species_hash", "String"),
    ("user_input", "String"),
    ("assistant_output", "String"),
    ("model", "Nullable(String)"),
    ("cost", "Nullable(Float64)"),
    ("tokens_in", "Nullable(Int32)"),
    ("tokens_out", "Nullable(Int32)"),
    ("duration_ms", "Nullable(Float64)"),
    ("caller_id", "String"),
    ("node_type", "String"),
    ("trainable", "Bool"),
    ("verified", "Bool"),
    ("confidence", "Nullable(Float32)"),
    ("notes", "String"),
    ("tags", "Array(String)"),
    ("annotated_at", "Nullable(DateTime64(6))"),
    ("annotated_by", "String"),
    ("version", "DateTime64(6)"),
    ("captured_at", "DateTime64(6)"),
];

const TRAINABLE_EXAMPLE_COLUMNS: &[(&str, &str)] = &[
    ("trace_id", "String"),
    ("timestamp", "DateTime64(6)"),
    ("session_id", "String"),
    ("cascade_id", "String"),
    ("cell_name", "String"),
    ("species_hash", "String"),
    ("user_input", "String"),
    ("assistant_output", "String"),
    ("model", "Nullable(String)"),
    ("cost", "Nullable(Float64)"),
    ("tokens_in", "Nullable(Int32)"),
    ("tokens_out", "Nullable(Int32)"),
    ("duration_ms", "Nullable(Float64)"),
    ("caller_id", "String"),
    ("node_type", "String"),
    ("role", "String"),
    ("trainable", "Bool"),
    ("verified", "Bool"),
    ("confidence", "Nullable(Float32)"),
    ("notes", "String"),
    ("tags", "Array(String)"),
    ("annotated_at", "DateTime64(6)"),
    ("annotated_by", "String"),
];

/// The columns of `training_examples_with_annotations`: every column of rvbbit's own
/// view (rvbbit's facts, "Who reads the training objects"), plus `species_hash`.
pub const JOINED_VIEW_COLUMNS: &[(&str, &str)] = &[
    ("trace_id", "String"),
    ("session_id", "String"),
    ("timestamp", "DateTime64(6)"),
    ("cascade_id", "String"),
    ("cell_name", "String"),
    ("species_hash", "String"),
    ("user_input", "String"),
    ("assistant_output", "String"),
    ("model", "Nullable(String)"),
    ("cost", "Nullable(Float64)"),
    ("tokens_in", "Nullable(Int32)"),
    ("tokens_out", "Nullable(Int32)"),
    ("duration_ms", "Nullable(Float64)"),
    ("caller_id", "String"),
    ("node_type", "String"),
    ("role", "String"),
    ("trainable", "Bool"),
    ("verified", "Bool"),
    ("confidence", "Nullable(Float32)"),
    ("notes", "String"),
    ("tags", "Array(String)"),
    ("annotated_at", "Nullable(DateTime64(6))"),
    ("annotated_by", "String"),
];

pub const ANNOTATIONS: &str = "training_annotations";
pub const TRAINABLE_EXAMPLES: &str = "training_trainable_examples";
/// Version 4's relay of annotations into `training_trainable_examples` (engine Null),
/// which version 5 drops: an install left between the two may still have it.
pub const TRAINABLE_ANNOTATIONS: &str = "training_trainable_annotations";
pub const JOINED_VIEW: &str = "training_examples_with_annotations";
/// The examples: one row per example with its log values and latest annotation (the
/// state table of migration 5; migration 1's `training_examples` before it).
pub const EXAMPLES_TABLE: &str = "training_examples_current";
/// Where the backfill writes its months of examples before it moves them to
/// [`EXAMPLES_TABLE`] (`MOVE PARTITION ... TO TABLE`, when it ends): a table of the same
/// structure that no view reads, so the trainable copy's view does not run over rows that
/// cannot be trainable (they have no annotation yet). Created by the backfill, not by a
/// migration, and dropped when it ends; the next backfill moves the months one a stopped
/// backfill left, and uninstall drops it.
pub const BACKFILL_STAGING: &str = "training_examples_backfill";
/// The view that makes an example of each qualifying log row (its query is the
/// backfill's).
pub const EXAMPLES_MV: &str = "training_examples_current_by_log_mv";
/// The view that writes an example's row again for each annotation it is given
/// (migration 6; migration 5's `training_examples_current_by_annotation_mv` before it).
pub const EXAMPLES_BY_ANNOTATION_MV: &str = "training_examples_current_by_applied_annotation_mv";
/// The annotations on their way to [`EXAMPLES_BY_ANNOTATION_MV`] (engine Null).
pub const ANNOTATIONS_TO_APPLY: &str = "training_annotations_to_apply";
/// Where the confidence worker's annotations wait, up to 2 seconds, before they are
/// applied in one block (engine Buffer, passing them on to [`ANNOTATIONS_TO_APPLY`]).
pub const SCORES_BUFFER: &str = "training_scores_buffer";
/// The views that send annotations on to be applied: the worker's through the buffer,
/// every other at once.
pub const SCORES_MV: &str = "training_annotations_to_apply_scores_mv";
pub const MARKS_MV: &str = "training_annotations_to_apply_marks_mv";
pub const LOGS: &str = "unified_logs";

pub const OBJECTS: &[Expected] = &[
    Expected {
        name: ANNOTATIONS,
        engine: "ReplacingMergeTree",
        kind: Kind::Table,
        columns: ANNOTATION_COLUMNS,
    },
    Expected {
        name: EXAMPLES_TABLE,
        engine: "ReplacingMergeTree",
        kind: Kind::Table,
        columns: EXAMPLE_COLUMNS,
    },
    Expected {
        name: EXAMPLES_MV,
        engine: "MaterializedView",
        kind: Kind::MaterializedView,
        columns: EXAMPLE_COLUMNS,
    },
    Expected {
        name: TRAINABLE_EXAMPLES,
        engine: "ReplacingMergeTree",
        kind: Kind::Table,
        columns: TRAINABLE_EXAMPLE_COLUMNS,
    },
    Expected {
        name: ANNOTATIONS_TO_APPLY,
        engine: "Null",
        kind: Kind::Table,
        columns: ANNOTATION_COLUMNS,
    },
    Expected {
        name: EXAMPLES_BY_ANNOTATION_MV,
        engine: "MaterializedView",
        kind: Kind::MaterializedView,
        columns: EXAMPLE_COLUMNS,
    },
    Expected {
        name: SCORES_BUFFER,
        engine: "Buffer",
        kind: Kind::Table,
        columns: ANNOTATION_COLUMNS,
    },
    Expected {
        name: SCORES_MV,
        engine: "MaterializedView",
        kind: Kind::MaterializedView,
        columns: ANNOTATION_COLUMNS,
    },
    Expected {
        name: MARKS_MV,
        engine: "MaterializedView",
        kind: Kind::MaterializedView,
        columns: ANNOTATION_COLUMNS,
    },
    Expected {
        name: "training_trainable_examples_by_current_mv",
        engine: "MaterializedView",
        kind: Kind::MaterializedView,
        columns: TRAINABLE_EXAMPLE_COLUMNS,
    },
    Expected {
        name: JOINED_VIEW,
        engine: "View",
        kind: Kind::View,
        columns: JOINED_VIEW_COLUMNS,
    },
    Expected {
        name: "training_stats_by_cascade",
        engine: "View",
        kind: Kind::View,
        columns: &[
            ("cascade_id", "String"),
            ("cell_name", "String"),
            ("trainable_count", "UInt64"),
            ("verified_count", "UInt64"),
            ("avg_confidence", "Nullable(Float64)"),
            ("total_executions", "UInt64"),
        ],
    },
];

/// The columns of the examples' table, in order, for the backfill's INSERT.
pub fn example_columns() -> impl Iterator<Item = &'static str> {
    EXAMPLE_COLUMNS.iter().map(|(name, _)| *name)
}
