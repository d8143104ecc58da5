//! The logic behind `rvbbit training examples`: the few-shot examples rvbbit injects
//! into a cell's prompt, retrieved exactly as rvbbit does (from
//! `training_examples_with_annotations`, for one cascade and cell, trainable, with
//! non-empty input and output, optionally verified only, with confidence at least the
//! minimum, in the strategy's order), or with `all` every example of the cell with its
//! annotation; `commands/examples.rs` only parses the flags into [`ExamplesOptions`].

use crate::db::Db;
use crate::output::{self, Format};
use anyhow::Context;
use rvbbit_plugin_api::exit;

/// The view both listings read.
const VIEW: &str = "training_examples_with_annotations";

/// How rvbbit orders the candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Newest first
    Recent,
    /// Highest confidence first, then newest
    HighConfidence,
    /// Any order (a new draw each time)
    Random,
}

impl Strategy {
    fn order_by(self) -> &'static str {
        match self {
            Strategy::Recent => "timestamp DESC",
            Strategy::HighConfidence => "confidence DESC, timestamp DESC",
            Strategy::Random => "rand()",
        }
    }
}

/// The formats of the block rvbbit prepends to a cell's instructions (a cell's
/// `training_format`; rvbbit's `inject_training_examples_into_instructions`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Render {
    /// `<examples>` … `</examples>` (rvbbit's default)
    Xml,
    /// `## Training Examples` with numbered, bold-labelled items
    Markdown,
    /// "Here are verified examples…", numbered, ending with `---` (rvbbit's choice for
    /// any other value)
    FewShot,
}

/// The block rvbbit prepends to a cell's instructions for `examples`, byte for byte as
/// rvbbit builds it; the instructions follow it directly. rvbbit injects nothing when
/// there is no example (`None`).
pub fn render(format: Render, examples: &[Example]) -> Option<String> {
    if examples.is_empty() {
        return None;
    }
    let mut text = String::new();
    match format {
        Render::Xml => {
            text.push_str("<examples>\n");
            for ex in examples {
                text.push_str("<example>\n");
                text.push_str(&format!("  <input>{}</input>\n", ex.user_input));
                text.push_str(&format!("  <output>{}</output>\n", ex.assistant_output));
                text.push_str("</example>\n");
            }
            text.push_str("</examples>\n\n");
        }
        Render::Markdown => {
            text.push_str("## Training Examples\n\n");
            for (i, ex) in examples.iter().enumerate() {
                text.push_str(&format!("**Example {}:**\n", i + 1));
                text.push_str(&format!("- **Input:** {}\n", ex.user_input));
                text.push_str(&format!("- **Output:** {}\n\n", ex.assistant_output));
            }
        }
        Render::FewShot => {
            text.push_str("Here are verified examples to guide your response:\n\n");
            for (i, ex) in examples.iter().enumerate() {
                text.push_str(&format!("Example {}:\n", i + 1));
                text.push_str(&format!("Input: {}\n", ex.user_input));
                text.push_str(&format!("Output: {}\n\n", ex.assistant_output));
            }
            text.push_str("---\n\n");
        }
    }
    Some(text)
}

/// What `examples` was asked to show, the flags of its command line.
#[derive(Debug, Clone, PartialEq)]
pub struct ExamplesOptions {
    pub cascade: String,
    pub cell: String,
    pub strategy: Strategy,
    pub limit: u32,
    /// Examples without an assessed confidence never qualify, as in rvbbit.
    pub min_confidence: f32,
    pub verified_only: bool,
    /// Every example of the cell, newest first, with its annotation (strategy,
    /// minimum confidence and verified-only do not apply).
    pub all: bool,
    /// Print the block rvbbit would prepend to the cell's instructions instead.
    pub render: Option<Render>,
    pub format: Format,
}

#[derive(clickhouse::Row, serde::Deserialize, serde::Serialize, Debug)]
pub struct Example {
    pub trace_id: String,
    pub user_input: String,
    pub assistant_output: String,
    pub confidence: Option<f32>,
    /// `timestamp` as ClickHouse prints it (UTC, microseconds); RFC 3339 in JSON.
    #[serde(serialize_with = "crate::output::utc")]
    pub timestamp: String,
}

/// rvbbit's retrieval query. Values travel as parameters; only the ORDER BY, chosen
/// from a closed set, is part of the text.
pub fn retrieval_sql(strategy: Strategy) -> String {
    format!(
        "SELECT trace_id, user_input, assistant_output, confidence, toString(timestamp, 'UTC') AS timestamp \
         FROM training_examples_with_annotations \
         WHERE cascade_id = {{cascade:String}} AND cell_name = {{cell:String}} AND trainable = true \
         AND user_input != '' AND assistant_output != '' \
         AND (NOT {{verified_only:Bool}} OR verified = true) \
         AND confidence >= {{min_confidence:Float32}} \
         ORDER BY {} LIMIT {{limit:UInt32}}",
        strategy.order_by()
    )
}

/// An example of a cell as `--all` lists it: with its latest annotation, if any.
#[derive(clickhouse::Row, serde::Deserialize, serde::Serialize, Debug)]
pub struct Annotatable {
    pub trace_id: String,
    pub user_input: String,
    pub assistant_output: String,
    pub trainable: bool,
    pub verified: bool,
    pub confidence: Option<f32>,
    /// Empty when the trace has no annotation.
    pub annotated_by: String,
    /// `timestamp` as ClickHouse prints it (UTC, microseconds); RFC 3339 in JSON.
    #[serde(serialize_with = "crate::output::utc")]
    pub timestamp: String,
}

/// Every example of a cell, newest first, with its latest annotation.
pub const ALL_SQL: &str =
    "SELECT trace_id, user_input, assistant_output, trainable, verified, confidence, \
     annotated_by, toString(timestamp, 'UTC') AS timestamp \
     FROM training_examples_with_annotations \
     WHERE cascade_id = {cascade:String} AND cell_name = {cell:String} \
     ORDER BY timestamp DESC, trace_id LIMIT {limit:UInt32}";

/// What `--all` shows of an example's annotation, in a few words.
pub fn annotation_summary(row: &Annotatable) -> String {
    if row.annotated_by.is_empty() {
        return "not annotated".into();
    }
    let mut words = vec![if row.trainable {
        "trainable"
    } else {
        "not trainable"
    }
    .to_string()];
    if row.verified {
        words.push("verified".into());
    }
    words.push(format!(
        "confidence {}",
        row.confidence
            .map_or_else(|| "-".into(), |c| output::confidence(f64::from(c)))
    ));
    words.push(format!("by {}", row.annotated_by));
    words.join(", ")
}

/// One line of `text` after `label`, clipped to `width` columns with `…`.
fn clip(label: &str, text: &str, width: usize) -> String {
    let one_line = text.replace(['\n', '\r', '\t'], " ");
    let room = width.saturating_sub(2 + label.chars().count()).max(10);
    format!("  {label}{}", output::truncate(&one_line, room))
}

/// A block's first line: the trace id (green), then `rest` beside it when both fit
/// `width`, else below it, indented; the id is cut with `…` only when it alone is
/// wider than the line.
fn head(trace_id: &str, rest: &str, width: usize) -> String {
    if trace_id.chars().count() + 2 + rest.chars().count() <= width {
        format!("{}  {rest}", output::green(trace_id))
    } else {
        let rest = if rest.chars().count() + 2 <= width {
            rest.to_string()
        } else {
            output::hanging(rest, 2, width)
        };
        format!(
            "{}\n  {rest}",
            output::green(&output::truncate(trace_id, width))
        )
    }
}

/// A timestamp as ClickHouse prints it, to the second.
fn to_the_second(timestamp: &str) -> &str {
    timestamp.get(..19).unwrap_or(timestamp)
}

/// The lines of an example's block in the table output, each within `width` columns.
pub fn example_lines(r: &Example, width: usize) -> [String; 3] {
    let confidence = r
        .confidence
        .map_or_else(|| "-".into(), |c| output::confidence(f64::from(c)));
    [
        head(
            &r.trace_id,
            &format!("confidence {confidence}  {}", to_the_second(&r.timestamp)),
            width,
        ),
        clip("user:      ", &r.user_input, width),
        clip("assistant: ", &r.assistant_output, width),
    ]
}

/// The lines of an example's block in `--all`'s table output, within `width` columns.
pub fn annotatable_lines(r: &Annotatable, width: usize) -> [String; 4] {
    [
        head(&r.trace_id, to_the_second(&r.timestamp), width),
        format!("  {}", output::hanging(&annotation_summary(r), 2, width)),
        clip("user:      ", &r.user_input, width),
        clip("assistant: ", &r.assistant_output, width),
    ]
}

/// The line printed when no example qualifies.
pub fn nothing_found(options: &ExamplesOptions) -> String {
    if options.all {
        format!(
            "no examples for cascade {} cell {}",
            options.cascade, options.cell
        )
    } else {
        format!(
            "no trainable examples for cascade {} cell {} at confidence >= {}",
            options.cascade, options.cell, options.min_confidence
        )
    }
}

/// Prints blocks of lines separated by a blank line.
fn print_blocks<const N: usize>(blocks: impl Iterator<Item = [String; N]>) {
    for (i, lines) in blocks.enumerate() {
        if i > 0 {
            println!();
        }
        for line in lines {
            println!("{line}");
        }
    }
}

async fn all(db: &Db, options: &ExamplesOptions) -> anyhow::Result<i32> {
    crate::prerequisite::require_installed(db, &[VIEW]).await?;
    let rows = db
        .fetch_all::<Annotatable>(
            db.query(ALL_SQL)
                .param("cascade", &options.cascade)
                .param("cell", &options.cell)
                .param("limit", options.limit),
        )
        .await
        .with_context(|| format!("reading {VIEW}"))?;
    match options.format {
        Format::Json => output::print_json(&rows)?,
        Format::Table if !output::quiet() => {
            if rows.is_empty() {
                println!("{}", nothing_found(options));
            }
            print_blocks(rows.iter().map(|r| annotatable_lines(r, output::width())));
        }
        Format::Table => {}
    }
    Ok(exit::SUCCESS)
}

/// Reads the examples and prints them as `options.format` asks; exit 0.
pub async fn examples(db: &Db, options: &ExamplesOptions) -> anyhow::Result<i32> {
    if options.all {
        return all(db, options).await;
    }
    crate::prerequisite::require_installed(db, &[VIEW]).await?;
    let rows = db
        .fetch_all::<Example>(
            db.query(&retrieval_sql(options.strategy))
                .param("cascade", &options.cascade)
                .param("cell", &options.cell)
                .param("verified_only", options.verified_only)
                .param("min_confidence", options.min_confidence)
                .param("limit", options.limit),
        )
        .await
        .with_context(|| format!("reading {VIEW}"))?;
    if let Some(format) = options.render {
        // The block alone on stdout, as rvbbit builds it; a note on stderr when empty.
        match render(format, &rows) {
            Some(block) => print!("{block}"),
            None if !output::quiet() => eprintln!(
                "{}: rvbbit injects nothing, the instructions go as they are",
                nothing_found(options)
            ),
            None => {}
        }
        return Ok(exit::SUCCESS);
    }
    match options.format {
        Format::Json => output::print_json(&rows)?,
        Format::Table if !output::quiet() => {
            if rows.is_empty() {
                println!("{}", nothing_found(options));
            } else {
                // One block per example, each line clipped to 80 columns.
                print_blocks(rows.iter().map(|r| example_lines(r, output::width())));
            }
        }
        Format::Table => {}
    }
    Ok(exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(input: &str, output: &str) -> Example {
        Example {
            trace_id: "t".into(),
            user_input: input.into(),
            assistant_output: output.into(),
            confidence: Some(0.9),
            timestamp: "2026-12-01 00:00:00.000000".into(),
        }
    }

    #[test]
    fn rendered_blocks_are_rvbbits_byte_for_byte() {
        let two = [example("2+2?", "4"), example("a <b>\nline", "x & y")];
        assert_eq!(
            render(Render::Xml, &two).unwrap(),
            "<examples>\n<example>\n  <input>2+2?</input>\n  <output>4</output>\n</example>\n\
             <example>\n  <input>a <b>\nline</input>\n  <output>x & y</output>\n</example>\n</examples>\n\n"
        );
        assert_eq!(
            render(Render::Markdown, &two).unwrap(),
            "## Training Examples\n\n**Example 1:**\n- **Input:** 2+2?\n- **Output:** 4\n\n\
             **Example 2:**\n- **Input:** a <b>\nline\n- **Output:** x & y\n\n"
        );
        assert_eq!(
            render(Render::FewShot, &two).unwrap(),
            "Here are verified examples to guide your response:\n\nExample 1:\nInput: 2+2?\nOutput: 4\n\n\
             Example 2:\nInput: a <b>\nline\nOutput: x & y\n\n---\n\n"
        );
        for format in [Render::Xml, Render::Markdown, Render::FewShot] {
            assert_eq!(
                render(format, &[]),
                None,
                "nothing injected without examples"
            );
        }
    }

    fn row(
        annotated_by: &str,
        trainable: bool,
        verified: bool,
        confidence: Option<f32>,
    ) -> Annotatable {
        Annotatable {
            trace_id: "t".into(),
            user_input: String::new(),
            assistant_output: String::new(),
            trainable,
            verified,
            confidence,
            annotated_by: annotated_by.into(),
            timestamp: String::new(),
        }
    }

    fn options(all: bool) -> ExamplesOptions {
        ExamplesOptions {
            cascade: "sql_analyst".into(),
            cell: "plan".into(),
            strategy: Strategy::Recent,
            limit: 5,
            min_confidence: 0.8,
            verified_only: false,
            all,
            render: None,
            format: Format::Table,
        }
    }

    #[test]
    fn an_example_without_annotation_says_so() {
        assert_eq!(
            annotation_summary(&row("", false, false, None)),
            "not annotated"
        );
    }

    #[test]
    fn an_annotation_is_summed_up_with_its_confidence_as_set() {
        assert_eq!(
            annotation_summary(&row("human", true, true, Some(0.875))),
            "trainable, verified, confidence 0.875, by human"
        );
        assert_eq!(
            annotation_summary(&row("confidence_worker", false, false, Some(0.9))),
            "not trainable, confidence 0.9, by confidence_worker"
        );
        assert_eq!(
            annotation_summary(&row("human", false, false, None)),
            "not trainable, confidence -, by human"
        );
    }

    #[test]
    fn confidences_show_as_set_without_float_noise() {
        assert_eq!(output::confidence(f64::from(0.875_f32)), "0.875");
        assert_eq!(output::confidence(f64::from(0.9_f32)), "0.9");
        assert_eq!(output::confidence(1.0), "1");
        assert_eq!(output::confidence(0.0), "0");
        assert_eq!(output::confidence(0.123456), "0.1235");
    }

    #[test]
    fn clipped_lines_fit_the_width() {
        for width in [40, 60, 80] {
            let line = clip("user:      ", &"x".repeat(200), width);
            assert_eq!(line.chars().count(), width);
            assert!(line.ends_with('…'));
        }
        assert_eq!(clip("user:      ", "a\nb", 80), "  user:      a b");
    }

    #[test]
    fn a_long_trace_id_keeps_its_line_and_the_rest_goes_below() {
        let id = "a-very-long-trace-identifier-1";
        let rest = "confidence 0.875  2026-12-01 23:55:13";
        assert_eq!(head(id, rest, 80), format!("{id}  {rest}"));
        assert_eq!(head(id, rest, 60), format!("{id}\n  {rest}"));
        let huge = "x".repeat(70);
        let cut = head(&huge, rest, 60);
        assert!(cut.lines().all(|l| l.chars().count() <= 60), "{cut}");
        assert!(cut.starts_with(&format!("{}…\n", "x".repeat(59))), "{cut}");
    }

    #[test]
    fn only_the_order_changes_with_the_strategy() {
        let recent = retrieval_sql(Strategy::Recent);
        assert!(recent.ends_with("ORDER BY timestamp DESC LIMIT {limit:UInt32}"));
        assert!(retrieval_sql(Strategy::HighConfidence)
            .ends_with("ORDER BY confidence DESC, timestamp DESC LIMIT {limit:UInt32}"));
        assert!(retrieval_sql(Strategy::Random).ends_with("ORDER BY rand() LIMIT {limit:UInt32}"));
        for strategy in [Strategy::HighConfidence, Strategy::Random] {
            let sql = retrieval_sql(strategy);
            let head = |s: &str| s.split(" ORDER BY ").next().unwrap_or_default().to_string();
            assert_eq!(head(&sql), head(&recent));
        }
        assert!(recent.contains(&format!("FROM {VIEW} ")));
        assert!(recent.contains("trainable = true"));
        assert!(ALL_SQL.contains(&format!("FROM {VIEW} ")));
        assert!(!ALL_SQL.contains("trainable = true"));
    }

    #[test]
    fn an_example_is_a_block_of_three_lines_to_the_second() {
        let example = Example {
            trace_id: "t-1".into(),
            user_input: "what\nnow".into(),
            assistant_output: "y".repeat(100),
            confidence: Some(0.9),
            timestamp: "2026-11-30 23:29:35.123456".into(),
        };
        let [head, user, assistant] = example_lines(&example, 80);
        assert!(head.contains("t-1"));
        assert!(head.ends_with("  confidence 0.9  2026-11-30 23:29:35"));
        assert_eq!(user, "  user:      what now");
        assert_eq!(assistant.chars().count(), 80);
        let unassessed = Example {
            confidence: None,
            timestamp: "short".into(),
            ..example
        };
        assert!(example_lines(&unassessed, 80)[0].ends_with("  confidence -  short"));
    }

    #[test]
    fn an_annotatable_block_carries_its_summary() {
        let mut r = row("human", true, false, Some(0.5));
        r.timestamp = "2026-11-30 23:29:35.000000".into();
        let [head, summary, user, assistant] = annotatable_lines(&r, 80);
        assert!(head.ends_with("  2026-11-30 23:29:35"));
        assert_eq!(summary, "  trainable, confidence 0.5, by human");
        assert_eq!(user, "  user:      ");
        assert_eq!(assistant, "  assistant: ");
    }

    #[test]
    fn nothing_found_says_what_was_asked() {
        assert_eq!(
            nothing_found(&options(false)),
            "no trainable examples for cascade sql_analyst cell plan at confidence >= 0.8"
        );
        assert_eq!(
            nothing_found(&options(true)),
            "no examples for cascade sql_analyst cell plan"
        );
    }
}
