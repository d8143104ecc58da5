//! The logic behind `rvbbit training annotate`: reads the traces' current annotations,
//! decides each new row (flags not given keep the current value) and writes them in one
//! INSERT; `commands/annotate.rs` only parses the flags into [`AnnotateOptions`].
//! `review` writes its rows through the same [`decide`], [`current_annotations`] and
//! [`write`].

use crate::db::Db;
use crate::failure::classified;
use crate::output;
use crate::output::Format;
use crate::say;
use crate::schema::{ANNOTATIONS, LOGS};
use anyhow::Context;
use rvbbit_plugin_api::exit;
use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;

/// What `annotate` was asked to do, the flags of its command line.
#[derive(Debug, Clone)]
pub struct AnnotateOptions {
    pub trainable: bool,
    pub not_trainable: bool,
    pub verified: bool,
    pub not_verified: bool,
    pub confidence: Option<f32>,
    pub clear_confidence: bool,
    pub notes: Option<String>,
    pub tags: Option<Vec<String>>,
    pub by: Option<String>,
    pub force: bool,
    pub format: Format,
}

/// Tags as a person means them: spaces around each trimmed, empty ones dropped,
/// each once, in the order given (`" a , ,b,a"` is `["a", "b"]`).
pub fn clean_tags(tags: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    tags.iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty() && seen.insert(t.clone()))
        .collect()
}

/// The ids from the command line, with `-` replaced by the lines of stdin; spaces
/// around an id trimmed, blank lines skipped, duplicates dropped, order kept.
pub fn read_ids(given: &[String]) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    for id in given {
        if id == "-" {
            for line in std::io::stdin().lock().lines() {
                let line = line.context("reading trace ids from standard input")?;
                if !line.trim().is_empty() {
                    ids.push(line.trim().to_string());
                }
            }
        } else {
            ids.push(id.trim().to_string());
        }
    }
    let mut seen = BTreeSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    if ids.is_empty() {
        return Err(classified(
            exit::USAGE,
            "no trace ids given (standard input was empty)",
        ));
    }
    if let Some(bad) = ids.iter().find(|id| id.is_empty() || id.contains('\0')) {
        return Err(classified(
            exit::USAGE,
            format!("trace id {bad:?} is empty or contains a NUL byte"),
        ));
    }
    Ok(ids)
}

/// A row of `training_annotations` as Studio writes it (`annotated_at` defaults to now).
#[derive(clickhouse::Row, serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Annotation {
    pub trace_id: String,
    pub trainable: bool,
    pub verified: bool,
    pub confidence: Option<f32>,
    pub notes: String,
    pub tags: Vec<String>,
    pub annotated_by: String,
}

/// What one marking changes; `None` keeps the trace's current value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    pub trainable: Option<bool>,
    pub verified: Option<bool>,
    /// `Some(None)` sets the confidence back to "not assessed".
    pub confidence: Option<Option<f32>>,
    pub notes: Option<String>,
    /// Already cleaned ([`clean_tags`]).
    pub tags: Option<Vec<String>>,
}

/// The row a marking writes for `trace_id`: each value the change gives, the others
/// kept from the trace's `current` annotation; a trace not yet annotated starts as
/// trainable, not verified, with no confidence, notes or tags.
pub fn decide(
    trace_id: &str,
    current: Option<&Annotation>,
    change: &Change,
    by: &str,
) -> Annotation {
    Annotation {
        trace_id: trace_id.to_string(),
        trainable: change
            .trainable
            .unwrap_or_else(|| current.is_none_or(|c| c.trainable)),
        verified: change
            .verified
            .unwrap_or_else(|| current.is_some_and(|c| c.verified)),
        confidence: change
            .confidence
            .unwrap_or_else(|| current.and_then(|c| c.confidence)),
        notes: change
            .notes
            .clone()
            .or_else(|| current.map(|c| c.notes.clone()))
            .unwrap_or_default(),
        tags: change
            .tags
            .clone()
            .or_else(|| current.map(|c| c.tags.clone()))
            .unwrap_or_default(),
        annotated_by: by.to_string(),
    }
}

/// Who annotates: `--by NAME`, else `$USER`, else nobody named (empty).
pub fn annotator(by: Option<&str>) -> String {
    by.map(str::to_string)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_default()
}

/// The latest annotation of each of `ids` that has one, by trace id.
pub async fn current_annotations(
    db: &Db,
    ids: &[String],
) -> anyhow::Result<BTreeMap<String, Annotation>> {
    Ok(db
        .fetch_all::<Annotation>(
            db.query(&format!(
                "SELECT trace_id, tupleElement(l, 1) AS trainable, tupleElement(l, 2) AS verified, tupleElement(l, 3) AS confidence, \
                 tupleElement(l, 4) AS notes, tupleElement(l, 5) AS tags, tupleElement(l, 6) AS annotated_by \
                 FROM (SELECT trace_id, argMax(tuple(trainable, verified, confidence, notes, tags, annotated_by), annotated_at) AS l \
                 FROM {ANNOTATIONS} WHERE trace_id IN {{ids:Array(String)}} GROUP BY trace_id)"
            ))
            .param("ids", ids),
        )
        .await
        .with_context(|| format!("reading the current annotations from {ANNOTATIONS}"))?
        .into_iter()
        .map(|a| (a.trace_id.clone(), a))
        .collect())
}

/// Writes `rows` into `training_annotations` with one INSERT, as Studio does
/// (`annotated_at` is the server's now); nothing when there are none.
pub async fn write(db: &Db, rows: &[Annotation]) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    db.insert(ANNOTATIONS, rows)
        .await
        .with_context(|| format!("writing {} annotations to {ANNOTATIONS}", rows.len()))
}

/// What `annotate --format json` prints: the rows written, the ids skipped.
#[derive(serde::Serialize)]
struct Annotated<'a> {
    annotated: &'a [Annotation],
    not_found: &'a [String],
}

pub async fn annotate(db: &Db, args: &AnnotateOptions, ids: Vec<String>) -> anyhow::Result<i32> {
    crate::prerequisite::require_installed(db, &[crate::schema::ANNOTATIONS]).await?;
    let known: BTreeSet<String> = db
        .fetch_all::<String>(
            db.query(&format!(
                "SELECT DISTINCT trace_id FROM {LOGS} WHERE trace_id IN {{ids:Array(String)}}"
            ))
            .param("ids", &ids),
        )
        .await
        .with_context(|| format!("looking the trace ids up in {LOGS}"))?
        .into_iter()
        .collect();
    let (found, unknown): (Vec<String>, Vec<String>) = ids
        .into_iter()
        .partition(|id| args.force || known.contains(id));

    let current = current_annotations(db, &found).await?;
    let change = Change {
        trainable: (args.trainable || args.not_trainable).then_some(args.trainable),
        verified: (args.verified || args.not_verified).then_some(args.verified),
        confidence: if args.clear_confidence {
            Some(None)
        } else {
            args.confidence.map(Some)
        },
        notes: args.notes.clone(),
        tags: args.tags.as_ref().map(|tags| clean_tags(tags)),
    };
    let by = annotator(args.by.as_deref());
    let rows: Vec<Annotation> = found
        .iter()
        .map(|id| decide(id, current.get(id), &change, &by))
        .collect();
    write(db, &rows).await?;

    match args.format {
        Format::Json => output::print_json(&Annotated {
            annotated: &rows,
            not_found: &unknown,
        })?,
        Format::Table => {
            if !rows.is_empty() && !output::quiet() {
                // Trace ids are never broken (cut with `…` only when the notes, the
                // free text, have given way all they can); flags and numbers stay whole.
                use output::Fit::{Cut, Whole, Wrap};
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        vec![
                            r.trace_id.clone(),
                            r.trainable.to_string(),
                            r.verified.to_string(),
                            r.confidence
                                .map_or_else(|| "-".into(), |c| output::confidence(f64::from(c))),
                            r.tags.join(","),
                            r.notes.clone(),
                        ]
                    })
                    .collect();
                let table = output::fitted_table(
                    &[
                        "trace_id",
                        "trainable",
                        "verified",
                        "confidence",
                        "tags",
                        "notes",
                    ],
                    &[Cut, Whole, Whole, Whole, Cut, Wrap],
                    &cells,
                    output::width(),
                );
                println!("{table}");
            }
            say!("annotated {} trace(s)", rows.len());
        }
    }
    if unknown.is_empty() {
        Ok(exit::SUCCESS)
    } else {
        Err(classified(
            exit::MISSING_PREREQUISITE,
            format!(
                "not in {LOGS}, nothing written for: {}; check the ids, or pass --force to annotate them anyway",
                unknown.join(", ")
            ),
        ))
    }
}

/// `--confidence X` and the like: a number from 0 to 1.
pub fn parse_confidence(text: &str) -> Result<f32, String> {
    let value: f32 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{text} is outside 0..1"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn confidence_must_be_a_number_in_0_1() {
        assert_eq!(parse_confidence("0.8"), Ok(0.8));
        assert_eq!(parse_confidence("1"), Ok(1.0));
        assert_eq!(parse_confidence("0"), Ok(0.0));
        for bad in ["NaN", "-1", "2", "1.0001", "inf", "abc", ""] {
            assert!(parse_confidence(bad).is_err(), "{bad}");
        }
    }

    use super::*;

    #[test]
    fn tags_are_trimmed_deduplicated_and_kept_in_order() {
        let given: Vec<String> = [" a ", " ", "b", "a", "", "c d "]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(clean_tags(&given), vec!["a", "b", "c d"]);
        assert!(clean_tags(&[String::new()]).is_empty());
    }

    fn annotation(trainable: bool, verified: bool, confidence: Option<f32>) -> Annotation {
        Annotation {
            trace_id: "t-1".into(),
            trainable,
            verified,
            confidence,
            notes: "Auto-assessed".into(),
            tags: vec!["a".into()],
            annotated_by: "confidence_worker".into(),
        }
    }

    #[test]
    fn a_marking_keeps_every_value_it_does_not_change() {
        let current = annotation(false, true, Some(0.4));
        let row = decide(
            "t-1",
            Some(&current),
            &Change {
                trainable: Some(true),
                ..Change::default()
            },
            "ana",
        );
        assert_eq!(
            row,
            Annotation {
                trainable: true,
                annotated_by: "ana".into(),
                ..current.clone()
            }
        );
        let cleared = decide(
            "t-1",
            Some(&current),
            &Change {
                confidence: Some(None),
                notes: Some(String::new()),
                tags: Some(Vec::new()),
                ..Change::default()
            },
            "ana",
        );
        assert_eq!(cleared.confidence, None);
        assert_eq!((cleared.notes.as_str(), cleared.tags.len()), ("", 0));
        assert!(!cleared.trainable && cleared.verified);
    }

    #[test]
    fn a_trace_not_yet_annotated_starts_trainable_with_nothing_else() {
        let row = decide("t-2", None, &Change::default(), "ana");
        assert_eq!(
            row,
            Annotation {
                trace_id: "t-2".into(),
                trainable: true,
                verified: false,
                confidence: None,
                notes: String::new(),
                tags: Vec::new(),
                annotated_by: "ana".into(),
            }
        );
    }

    #[test]
    fn the_annotator_is_the_name_given_else_user() {
        assert_eq!(annotator(Some("ana")), "ana");
        assert_eq!(annotator(None), std::env::var("USER").unwrap_or_default());
    }

    #[test]
    fn ids_given_as_arguments_are_trimmed_and_deduplicated() {
        let ids = read_ids(&[" t-1 ".to_string(), "t-2".to_string(), "t-1".to_string()]);
        assert_eq!(ids.ok(), Some(vec!["t-1".to_string(), "t-2".to_string()]));
    }
}
