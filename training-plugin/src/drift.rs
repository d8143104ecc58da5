//! Drift: how the live objects differ from the definitions this version expects, and
//! what putting each difference right would take. The expected definition of an object
//! is the last statement of the embedded migrations that creates it; the expected
//! columns are `schema::OBJECTS`. Views are compared by their query, both sides
//! formatted by the server itself (`formatQuerySingleLine`), so spacing, comments and
//! the database prefix the server adds do not count as differences.
//!
//! A difference is repairable when putting it right loses nothing: views are replaced,
//! a plain view standing where the materialized view belongs is replaced by it (and the
//! examples refilled), missing objects, columns and indexes are added, a column becomes
//! `Nullable` of its type. Anything else (another engine or sorting key for a table, a
//! column of another type) would rewrite or drop data, and is refused with the reason.

use crate::db::Db;
use crate::migrations::{creates, Creates, MIGRATIONS};
pub use crate::model::Kind;
use crate::model::{Fix, Problem};
use crate::schema::{LOGS, OBJECTS};
use anyhow::Context;
use rvbbit_sql_text::ddl::{column_definitions, sorting_key, view_select};
use rvbbit_sql_text::split;
use std::collections::{BTreeMap, BTreeSet};

/// What this version expects one object to be.
#[derive(Debug, Clone)]
pub struct Definition {
    pub name: String,
    pub kind: Kind,
    /// The creating statement, as written in the migration.
    pub statement: String,
    /// For tables: the `ALTER TABLE ... MODIFY SETTING` statements later migrations
    /// run on it, in order (a table created again gets them too).
    pub settings: Vec<String>,
    /// For views: the query after `AS`.
    pub select: Option<String>,
}

/// The expected definition of every object, in the order the migrations first create them.
pub fn definitions() -> Vec<Definition> {
    let mut order: Vec<String> = Vec::new();
    let mut by_name: BTreeMap<String, Definition> = BTreeMap::new();
    for migration in MIGRATIONS {
        let Ok(statements) = split(migration.sql) else {
            continue;
        };
        for statement in statements {
            let (kind, name) = match creates(&statement.text) {
                Some(Creates::Object { kind, name }) => (kind, name),
                Some(Creates::Replace { name }) => (Kind::View, name),
                Some(Creates::Drop { name }) => {
                    by_name.remove(&name);
                    order.retain(|n| n != &name);
                    continue;
                }
                Some(Creates::Settings { table }) => {
                    if let Some(def) = by_name.get_mut(&table) {
                        def.settings.push(statement.text.clone());
                    }
                    continue;
                }
                _ => continue,
            };
            let select = (kind != Kind::Table)
                .then(|| view_select(&statement.text))
                .flatten();
            if !by_name.contains_key(&name) {
                order.push(name.clone());
            }
            by_name.insert(
                name.clone(),
                Definition {
                    name,
                    kind,
                    statement: statement.text.clone(),
                    settings: Vec::new(),
                    select,
                },
            );
        }
    }
    order
        .into_iter()
        .filter_map(|name| by_name.remove(&name))
        .collect()
}

/// Skipping indexes the migrations add: (table, index, statement), on tables this
/// version still has.
pub fn index_statements() -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    for migration in MIGRATIONS {
        let Ok(statements) = split(migration.sql) else {
            continue;
        };
        for statement in statements {
            match creates(&statement.text) {
                Some(Creates::Index { table, name }) => {
                    out.push((table, name, statement.text.clone()));
                }
                Some(Creates::Drop { name }) => out.retain(|(table, _, _)| table != &name),
                _ => {}
            }
        }
    }
    out
}

/// The live state of the database, as far as drift is concerned.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub engines: BTreeMap<String, String>,
    sorting_keys: BTreeMap<String, String>,
    /// table -> column -> (type, default_kind, default_expression)
    pub columns: BTreeMap<String, BTreeMap<String, (String, String, String)>>,
    pub indexes: BTreeSet<(String, String)>,
    as_select: BTreeMap<String, String>,
}

pub async fn snapshot(db: &Db) -> anyhow::Result<Live> {
    let database = &db.target.database;
    let q = db
        .server_query("SELECT name, engine, sorting_key, as_select FROM system.tables WHERE database = {db:String}")
        .param("db", database);
    let mut engines = BTreeMap::new();
    let mut sorting_keys = BTreeMap::new();
    let mut as_select = BTreeMap::new();
    for (name, engine, key, select) in db
        .fetch_all::<(String, String, String, String)>(q)
        .await
        .context("reading the tables of the database")?
    {
        engines.insert(name.clone(), engine);
        sorting_keys.insert(name.clone(), key);
        as_select.insert(name, select);
    }
    let q = db
        .server_query("SELECT table, name, type, default_kind, default_expression FROM system.columns WHERE database = {db:String}")
        .param("db", database);
    let mut columns: BTreeMap<String, BTreeMap<String, (String, String, String)>> = BTreeMap::new();
    for (table, name, ty, kind, expr) in db
        .fetch_all::<(String, String, String, String, String)>(q)
        .await
        .context("reading the columns of the database")?
    {
        columns
            .entry(table)
            .or_default()
            .insert(name, (ty, kind, expr));
    }
    let q = db
        .server_query(
            "SELECT table, name FROM system.data_skipping_indices WHERE database = {db:String}",
        )
        .param("db", database);
    let indexes = db
        .fetch_all::<(String, String)>(q)
        .await
        .context("reading the skipping indexes of the database")?
        .into_iter()
        .collect();
    Ok(Live {
        engines,
        sorting_keys,
        columns,
        indexes,
        as_select,
    })
}

/// What putting a difference right takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// Statements that lose nothing, run in order.
    Run(Vec<String>),
    /// Drop a view or materialized view (none holds data) and create it as expected;
    /// `refill` says what to fill again afterwards.
    Recreate {
        drop: Option<String>,
        create: String,
        refill: Refill,
    },
    /// Not done: it would rewrite or drop data. The reason says why and what to do.
    Refuse(String),
}

impl Repair {
    /// The statements that put the difference right, in order, and what to fill again
    /// afterwards; `None` when it is refused.
    pub fn statements(&self) -> Option<(Vec<String>, Refill)> {
        match self {
            Repair::Run(sql) => Some((sql.clone(), Refill::None)),
            Repair::Recreate {
                drop,
                create,
                refill,
            } => Some((
                drop.iter()
                    .cloned()
                    .chain(std::iter::once(create.clone()))
                    .collect(),
                *refill,
            )),
            Repair::Refuse(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refill {
    None,
    /// Backfill the examples from `unified_logs`.
    Examples,
    /// Write the examples again with the annotations written while the view was missing.
    Annotations,
    /// Copy the trainable examples marked while the view was missing.
    Trainable,
}

/// One difference between the live database and this version's definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub object: String,
    pub problem: Problem,
    pub repair: Repair,
}

impl Finding {
    /// The object or index does not exist at all (creating it loses nothing).
    pub fn is_missing(&self) -> bool {
        self.problem.is_missing()
    }

    /// When migrate puts it right.
    pub fn fix(&self) -> Fix {
        let table = || {
            OBJECTS
                .iter()
                .any(|o| o.name == self.object && o.kind == Kind::Table)
        };
        match &self.repair {
            Repair::Refuse(_) => Fix::Refused,
            _ if self.is_missing() => Fix::Create,
            Repair::Run(_) if table() => Fix::RepairFirst,
            Repair::Recreate { drop: Some(_), .. } => Fix::RepairFirst,
            _ => Fix::RepairAfter,
        }
    }
}

fn refill_for(name: &str) -> Refill {
    match name {
        crate::schema::EXAMPLES_MV => Refill::Examples,
        crate::schema::EXAMPLES_BY_ANNOTATION_MV
        | crate::schema::SCORES_MV
        | crate::schema::MARKS_MV => Refill::Annotations,
        n if n.starts_with("training_trainable_examples_by_") => Refill::Trainable,
        _ => Refill::None,
    }
}

/// As `CREATE OR REPLACE VIEW` (plain views) or the creating statement (others).
fn replace_statement(def: &Definition) -> String {
    match (&def.kind, &def.select) {
        (Kind::View, Some(select)) => format!("CREATE OR REPLACE VIEW {} AS\n{select}", def.name),
        _ => def.statement.clone(),
    }
}

/// The server's verdict on each live view whose query is compared: view name ->
/// whether its query is this version's.
pub type SameQueries = BTreeMap<String, bool>;

/// Asks the server, view by view, whether the live query of each view of the expected
/// kind is this version's (the one fact of [`compare_with`] that needs the server).
pub async fn same_queries(db: &Db, live: &Live) -> anyhow::Result<SameQueries> {
    let defs = definitions();
    let known: Vec<String> = defs
        .iter()
        .map(|d| d.name.clone())
        .chain(std::iter::once(LOGS.to_string()))
        .collect();
    let mut out = SameQueries::new();
    for def in defs.iter().filter(|d| d.kind != Kind::Table) {
        let name = def.name.as_str();
        if live.engines.get(name).map(String::as_str) != Some(def.kind.view_engine()) {
            continue;
        }
        if let (Some(select), Some(live_select)) = (&def.select, live.as_select.get(name)) {
            out.insert(
                name.to_string(),
                same_query(db, select, live_select, &known).await?,
            );
        }
    }
    Ok(out)
}

/// Every difference between `live` and this version's definitions. Objects that do not
/// exist at all are reported only when `include_missing`.
pub async fn compare(db: &Db, live: &Live, include_missing: bool) -> anyhow::Result<Vec<Finding>> {
    let same = same_queries(db, live).await?;
    Ok(compare_with(live, &same, include_missing))
}

/// [`compare`] without the server: `same` holds its verdicts on the views' queries.
pub fn compare_with(live: &Live, same: &SameQueries, include_missing: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    let defs = definitions();
    for def in &defs {
        let name = def.name.as_str();
        let Some(engine) = live.engines.get(name) else {
            if include_missing {
                out.push(Finding {
                    object: name.to_string(),
                    problem: Problem::Missing,
                    repair: match def.kind {
                        Kind::Table => Repair::Run(
                            std::iter::once(def.statement.clone())
                                .chain(def.settings.iter().cloned())
                                .collect(),
                        ),
                        _ => Repair::Recreate {
                            drop: None,
                            create: def.statement.clone(),
                            refill: refill_for(name),
                        },
                    },
                });
            }
            continue;
        };
        let expected_columns = OBJECTS
            .iter()
            .find(|o| o.name == name)
            .map_or(&[][..], |o| o.columns);
        let live_columns = live.columns.get(name).cloned().unwrap_or_default();
        match def.kind {
            Kind::Table => {
                let expected_engine = OBJECTS
                    .iter()
                    .find(|o| o.name == name)
                    .map_or("", |o| o.engine);
                if !expected_engine.is_empty() && engine != expected_engine {
                    out.push(Finding {
                        object: name.into(),
                        problem: Problem::Engine {
                            live: engine.clone(),
                            expected: expected_engine.to_string(),
                        },
                        repair: Repair::Refuse(format!("changing the engine of {name} means copying its rows into a new table; create it beside, copy, check and EXCHANGE TABLES by hand")),
                    });
                    continue;
                }
                let expected_key = sorting_key(&def.statement);
                let live_key = live.sorting_keys.get(name).cloned().unwrap_or_default();
                if let Some(key) = expected_key {
                    if normalize_key(&key) != normalize_key(&live_key) {
                        out.push(Finding {
                            object: name.into(),
                            problem: Problem::SortingKey {
                                live: live_key.clone(),
                                expected: key.clone(),
                            },
                            repair: Repair::Refuse(format!("changing the sorting key of {name} rewrites all its rows; not done automatically")),
                        });
                    }
                }
                let definitions: BTreeMap<String, String> =
                    column_definitions(&def.statement).into_iter().collect();
                for (column, ty) in expected_columns {
                    match live_columns.get(*column) {
                        None => {
                            let definition = definitions
                                .get(*column)
                                .cloned()
                                .unwrap_or_else(|| format!("{column} {ty}"));
                            out.push(Finding {
                                object: name.into(),
                                problem: Problem::ColumnMissing {
                                    column: column.to_string(),
                                },
                                repair: Repair::Run(vec![format!(
                                    "ALTER TABLE {name} ADD COLUMN IF NOT EXISTS {definition}"
                                )]),
                            });
                        }
                        Some((live_ty, kind, expr)) => {
                            if live_ty != ty && !accepted_as_is(column, live_ty) {
                                let widening = *ty == format!("Nullable({live_ty})");
                                out.push(Finding {
                                    object: name.into(),
                                    problem: Problem::ColumnType {
                                        column: column.to_string(),
                                        live: live_ty.clone(),
                                        expected: ty.to_string(),
                                    },
                                    repair: if widening {
                                        Repair::Run(vec![format!(
                                            "ALTER TABLE {name} MODIFY COLUMN {column} {ty}"
                                        )])
                                    } else {
                                        Repair::Refuse(format!("converting {name}.{column} from {live_ty} to {ty} could change or lose values"))
                                    },
                                });
                            }
                            let expected_default = definitions
                                .get(*column)
                                .map(|d| d.to_ascii_uppercase().contains(" DEFAULT "))
                                .unwrap_or(false);
                            if !expected_default && !kind.is_empty() && !expr.is_empty() {
                                out.push(Finding {
                                    object: name.into(),
                                    problem: Problem::ColumnDefault {
                                        column: column.to_string(),
                                        kind: kind.clone(),
                                        expression: expr.clone(),
                                    },
                                    repair: Repair::Run(vec![format!(
                                        "ALTER TABLE {name} MODIFY COLUMN {column} REMOVE {kind}"
                                    )]),
                                });
                            }
                        }
                    }
                }
            }
            Kind::View | Kind::MaterializedView => {
                let expected_engine = def.kind.view_engine();
                if engine != expected_engine {
                    let is_view = engine == "View" || engine == "MaterializedView";
                    out.push(Finding {
                        object: name.into(),
                        problem: Problem::Engine {
                            live: engine.clone(),
                            expected: expected_engine.to_string(),
                        },
                        repair: if is_view {
                            Repair::Recreate {
                                drop: Some(format!("DROP VIEW IF EXISTS {name}")),
                                create: def.statement.clone(),
                                refill: refill_for(name),
                            }
                        } else {
                            Repair::Refuse(format!("{name} is a table holding data where this version needs a view; rename or drop it by hand"))
                        },
                    });
                    continue;
                }
                let mut problems: Vec<Problem> = expected_columns
                    .iter()
                    .filter_map(|(col, ty)| match live_columns.get(*col) {
                        None => Some(Problem::ColumnMissing {
                            column: col.to_string(),
                        }),
                        Some((t, _, _)) if t != ty && !accepted_as_is(col, t) => {
                            Some(Problem::ColumnType {
                                column: col.to_string(),
                                live: t.clone(),
                                expected: ty.to_string(),
                            })
                        }
                        Some(_) => None,
                    })
                    .collect();
                if same.get(name) == Some(&false) {
                    problems.push(Problem::QueryDiffers);
                }
                if !problems.is_empty() {
                    out.push(Finding {
                        object: name.into(),
                        problem: Problem::Several(problems),
                        repair: match def.kind {
                            Kind::View => Repair::Run(vec![replace_statement(def)]),
                            _ => Repair::Recreate {
                                drop: Some(format!("DROP VIEW IF EXISTS {name}")),
                                create: def.statement.clone(),
                                refill: refill_for(name),
                            },
                        },
                    });
                }
            }
        }
    }
    for (table, index, statement) in index_statements() {
        if live.engines.contains_key(&table)
            && !live.indexes.contains(&(table.clone(), index.clone()))
        {
            out.push(Finding {
                object: table.clone(),
                problem: Problem::IndexMissing { index },
                repair: Repair::Run(vec![statement]),
            });
        }
    }
    out
}

/// The live state of a database exactly as this version defines it (with rvbbit's
/// log table), for tests without a server.
#[cfg(test)]
pub fn as_this_version() -> Live {
    let mut live = Live::default();
    live.engines
        .insert(LOGS.to_string(), "MergeTree".to_string());
    for def in definitions() {
        let expected = OBJECTS.iter().find(|o| o.name == def.name);
        let engine = match def.kind {
            Kind::Table => expected.map_or("MergeTree", |o| o.engine),
            kind => kind.view_engine(),
        };
        live.engines.insert(def.name.clone(), engine.to_string());
        if let Some(key) = sorting_key(&def.statement) {
            live.sorting_keys.insert(def.name.clone(), key);
        }
        if let Some(select) = &def.select {
            live.as_select.insert(def.name.clone(), select.clone());
        }
        let columns = expected.map_or(&[][..], |o| o.columns);
        live.columns.insert(
            def.name.clone(),
            columns
                .iter()
                .map(|(c, t)| (c.to_string(), (t.to_string(), String::new(), String::new())))
                .collect(),
        );
    }
    for (table, index, _) in index_statements() {
        live.indexes.insert((table, index));
    }
    live
}

/// A live column type that differs from this version's but is kept as it is, because
/// every reader and writer handles it exactly: rvbbit's own installs (every shape in
/// its history) create `training_annotations.annotated_at` as `DateTime64(3)`, and
/// rvbbit writes it as a string with milliseconds. Widening it would be exact but
/// would rewrite the column for nothing; the materialized views that copy it take
/// its type.
pub fn accepted_as_is(column: &str, live_type: &str) -> bool {
    column == "annotated_at" && live_type == "DateTime64(3)"
}

fn normalize_key(key: &str) -> String {
    key.chars()
        .filter(|c| !c.is_whitespace() && *c != '`')
        .collect()
}

/// Whether two queries are the same once the server has formatted both and the
/// database prefix it adds to our objects' names is taken off the live one.
async fn same_query(db: &Db, expected: &str, live: &str, known: &[String]) -> anyhow::Result<bool> {
    let q = db
        .server_query("SELECT formatQuerySingleLine({a:String}), formatQuerySingleLine({b:String})")
        .param("a", expected)
        .param("b", live);
    let (a, b) = db
        .fetch_one::<(String, String)>(q)
        .await
        .context("comparing view queries")?;
    let database = &db.target.database;
    let mut b = b;
    for name in known {
        b = b.replace(&format!("{database}.{name}"), name);
        b = b.replace(&format!("`{database}`.`{name}`"), name);
        b = b.replace(&format!("{database}.`{name}`"), name);
    }
    Ok(a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_object_has_one_definition() {
        let defs = definitions();
        for expected in OBJECTS {
            assert!(
                defs.iter().any(|d| d.name == expected.name),
                "{} has no creating statement",
                expected.name
            );
        }
        for def in defs.iter().filter(|d| d.kind != Kind::Table) {
            assert!(def.select.is_some(), "{}: no query found", def.name);
        }
    }

    #[test]
    fn the_joined_view_is_defined_by_its_last_statement() {
        let defs = definitions();
        let view = defs
            .iter()
            .find(|d| d.name == "training_examples_with_annotations")
            .unwrap();
        assert!(view.statement.starts_with("CREATE OR REPLACE VIEW"));
    }

    #[test]
    fn a_database_as_this_version_defines_it_does_not_differ() {
        let live = as_this_version();
        assert_eq!(compare_with(&live, &SameQueries::new(), true), vec![]);
        let every_view_same: SameQueries = definitions()
            .into_iter()
            .filter(|d| d.kind != Kind::Table)
            .map(|d| (d.name, true))
            .collect();
        assert_eq!(compare_with(&live, &every_view_same, true), vec![]);
    }

    #[test]
    fn a_differing_query_is_found_only_by_the_servers_verdict() {
        let live = as_this_version();
        let verdict: SameQueries = [(JOINED.to_string(), false)].into_iter().collect();
        let findings = compare_with(&live, &verdict, false);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].object, JOINED);
        assert_eq!(
            findings[0].problem.to_string(),
            "its query differs from this version's"
        );
        assert!(matches!(findings[0].repair, Repair::Run(_)));
    }

    #[test]
    fn a_missing_table_is_created_again_with_the_settings_later_migrations_gave_it() {
        let mut live = as_this_version();
        let copy = crate::schema::TRAINABLE_EXAMPLES;
        live.engines.remove(copy);
        let findings = compare_with(&live, &SameQueries::new(), true);
        let finding = findings.iter().find(|f| f.object == copy).unwrap();
        let Repair::Run(sql) = &finding.repair else {
            panic!("{:?}", finding.repair);
        };
        assert_eq!(sql.len(), 2, "{sql:#?}");
        assert!(sql[0].starts_with("CREATE TABLE IF NOT EXISTS training_trainable_examples"));
        assert_eq!(
            sql[1],
            "ALTER TABLE training_trainable_examples MODIFY SETTING min_bytes_for_wide_part = 10485760"
        );
        // A table no later migration alters is created by its statement alone.
        live.engines.remove(crate::schema::ANNOTATIONS);
        let findings = compare_with(&live, &SameQueries::new(), true);
        let finding = findings
            .iter()
            .find(|f| f.object == crate::schema::ANNOTATIONS)
            .unwrap();
        assert!(matches!(&finding.repair, Repair::Run(sql) if sql.len() == 1));
    }

    const JOINED: &str = crate::schema::JOINED_VIEW;

    #[test]
    fn when_each_difference_is_put_right_is_decided_once() {
        let finding = |object: &str, problem: Problem, repair: Repair| Finding {
            object: object.into(),
            problem,
            repair,
        };
        let run = || Repair::Run(vec!["ALTER TABLE t ...".into()]);
        let table = crate::schema::ANNOTATIONS;
        assert_eq!(finding(table, Problem::Missing, run()).fix(), Fix::Create);
        assert_eq!(
            finding(table, Problem::IndexMissing { index: "i".into() }, run()).fix(),
            Fix::Create
        );
        assert_eq!(
            finding(table, Problem::ColumnMissing { column: "c".into() }, run()).fix(),
            Fix::RepairFirst
        );
        assert_eq!(
            finding(JOINED, Problem::QueryDiffers, run()).fix(),
            Fix::RepairAfter
        );
        let recreate = |drop: Option<String>| Repair::Recreate {
            drop,
            create: "CREATE ...".into(),
            refill: Refill::Examples,
        };
        assert_eq!(
            finding(
                crate::schema::EXAMPLES_MV,
                Problem::QueryDiffers,
                recreate(Some("DROP VIEW IF EXISTS x".into()))
            )
            .fix(),
            Fix::RepairFirst
        );
        assert_eq!(
            finding(crate::schema::EXAMPLES_MV, Problem::Missing, recreate(None)).fix(),
            Fix::Create
        );
        assert_eq!(
            finding(table, Problem::QueryDiffers, Repair::Refuse("no".into())).fix(),
            Fix::Refused
        );
    }

    #[test]
    fn sorting_keys_are_compared_without_spaces_and_backquotes() {
        // The keys themselves are read by sql-text (ddl.rs, `sorting_key`).
        assert_eq!(normalize_key("`a`, b"), normalize_key("a,b"));
        assert_ne!(normalize_key("a, b"), normalize_key("b, a"));
        assert_eq!(normalize_key("a, b"), normalize_key("a,b"));
    }
}
