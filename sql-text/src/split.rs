//! Splits a SQL script into statements on `;`, ignoring semicolons inside
//! '…' and "…" strings (with `\` and doubled-quote escapes), `…` identifiers,
//! `$$…$$` heredocs, `-- …` and `# …` line comments and `/* … */` block comments
//! (nested, as ClickHouse allows): the tokens are [`crate::lex`]'s, as for every other
//! reader of SQL in this crate. Comments before a statement are dropped; a statement
//! keeps everything from its first token to its last, without the terminating `;`.

use crate::lex::{tokens, Kind, Unterminated};

/// One statement of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// 1-based line of the statement's first token in the script.
    pub line: usize,
    pub text: String,
}

/// Why a script cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("line {line}: {what} is never closed")]
    Unterminated { line: usize, what: &'static str },
}

pub fn split(script: &str) -> Result<Vec<Statement>, SplitError> {
    split_counting_lines(script, &mut Lines::new(script.as_bytes()))
}

/// [`split`], numbering lines with `lines` (whose `scanned` then tells how many bytes
/// were read to number them).
fn split_counting_lines(script: &str, lines: &mut Lines<'_>) -> Result<Vec<Statement>, SplitError> {
    let toks =
        tokens(script).map_err(|Unterminated { offset, what }| SplitError::Unterminated {
            line: lines.at(offset),
            what,
        })?;
    let mut statements = Vec::new();
    let mut start: Option<usize> = None; // byte offset of the current statement's first token
    let mut end = 0; // byte offset just after its last token
    let mut push = |start: usize, end: usize, lines: &mut Lines<'_>| {
        statements.push(Statement {
            line: lines.at(start),
            text: script[start..end].to_string(),
        })
    };
    for tok in toks {
        if tok.kind == Kind::Punct(b';') {
            if let Some(s) = start.take() {
                push(s, end, lines);
            }
        } else {
            start.get_or_insert(tok.start);
            end = tok.end;
        }
    }
    if let Some(s) = start {
        push(s, end, lines);
    }
    Ok(statements)
}

/// Line numbers of byte offsets, counted on from the last offset asked for, so that
/// numbering every statement of a script costs one pass over it, not one per statement.
struct Lines<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: usize,
    /// Bytes read so far to count lines.
    scanned: usize,
}

impl<'a> Lines<'a> {
    fn new(bytes: &'a [u8]) -> Lines<'a> {
        Lines {
            bytes,
            offset: 0,
            line: 1,
            scanned: 0,
        }
    }

    /// The 1-based line of `offset`.
    fn at(&mut self, offset: usize) -> usize {
        if offset < self.offset {
            (self.offset, self.line) = (0, 1);
        }
        let counted = &self.bytes[self.offset..offset];
        self.scanned += counted.len();
        self.line += counted.iter().filter(|&&b| b == b'\n').count();
        self.offset = offset;
        self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(script: &str) -> Vec<String> {
        split(script).unwrap().into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn splits_on_semicolons_and_drops_empty_statements() {
        assert_eq!(
            texts("SELECT 1; ;SELECT 2;\n"),
            vec!["SELECT 1", "SELECT 2"]
        );
        assert_eq!(texts("SELECT 1"), vec!["SELECT 1"]);
        assert!(texts("  -- only a comment\n /* and another */ ").is_empty());
    }

    #[test]
    fn semicolons_inside_strings_identifiers_and_comments_do_not_split() {
        let script = "SELECT 'a;b', \"c;d\", `e;f` -- g;h\n FROM t /* i; /* nested; */ j; */ WHERE x = 'it''s;' AND y = 'back\\';slash';\nSELECT 2";
        let got = texts(script);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("SELECT 'a;b'"));
        assert!(got[0].ends_with("'back\\';slash'"));
        assert_eq!(got[1], "SELECT 2");
    }

    #[test]
    fn leading_comments_are_dropped_and_lines_counted() {
        let got =
            split("-- header\n\n/* block */\nCREATE TABLE t (x UInt8);\n# hash comment\nSELECT 1;")
                .unwrap();
        assert_eq!(
            got[0],
            Statement {
                line: 4,
                text: "CREATE TABLE t (x UInt8)".into()
            }
        );
        assert_eq!(
            got[1],
            Statement {
                line: 6,
                text: "SELECT 1".into()
            }
        );
    }

    #[test]
    fn trailing_comment_inside_statement_is_kept_out_of_its_end() {
        assert_eq!(texts("SELECT 1 -- trailing\n;"), vec!["SELECT 1"]);
    }

    #[test]
    fn unterminated_constructs_are_errors_with_their_line() {
        assert_eq!(
            split("SELECT 1;\nSELECT 'oops").unwrap_err(),
            SplitError::Unterminated {
                line: 2,
                what: "a '…' string"
            }
        );
        assert!(matches!(
            split("/* never closed").unwrap_err(),
            SplitError::Unterminated { line: 1, .. }
        ));
        assert!(split("SELECT `x").is_err());
    }

    #[test]
    fn vertical_tab_is_whitespace_as_in_clickhouse() {
        // Found by fuzzing: "\x0B" alone was a statement, and "\x0BSELECT 1" one that
        // started with whitespace.
        assert!(texts("\x0B").is_empty());
        assert_eq!(
            texts("SELECT 1;\x0B\x0C\x0BSELECT 2\x0B;"),
            vec!["SELECT 1", "SELECT 2"]
        );
    }

    #[test]
    fn many_statements_are_numbered_in_one_pass_with_their_lines() {
        // Each statement's line was counted from the start of the script: 100,000
        // statements (1 MB) took 16 s in release builds. Counting on from the previous
        // statement makes it one pass: the bytes read to number the lines are at most
        // the script's, where counting from the start reads each statement's whole
        // prefix (here 10,000 statements: some 500 MB).
        let script = "SELECT 1;\n".repeat(10_000) + "SELECT 'x\ny';\n\nSELECT 'open";
        let mut lines = Lines::new(script.as_bytes());
        assert_eq!(
            split_counting_lines(&script, &mut lines).unwrap_err(),
            SplitError::Unterminated {
                line: 10_004,
                what: "a '…' string"
            }
        );
        assert!(
            lines.scanned <= script.len(),
            "{} bytes read to number the lines of a {}-byte script",
            lines.scanned,
            script.len()
        );
        let complete = &script[..script.len() - "SELECT 'open".len()];
        let mut lines = Lines::new(complete.as_bytes());
        let statements = split_counting_lines(complete, &mut lines).unwrap();
        assert!(
            lines.scanned <= complete.len(),
            "{} bytes read to number the lines of a {}-byte script",
            lines.scanned,
            complete.len()
        );
        assert_eq!(statements.len(), 10_001);
        assert!(statements[..10_000]
            .iter()
            .enumerate()
            .all(|(k, s)| s.line == k + 1 && s.text == "SELECT 1"));
        assert_eq!(statements[10_000].line, 10_001);
        assert_eq!(split(complete).unwrap(), statements);
    }

    #[test]
    fn semicolons_inside_heredocs_do_not_split() {
        assert_eq!(
            texts("CREATE FUNCTION f AS $$ a; b $$; SELECT $t$ c; $$ d; $t$;\nSELECT 1"),
            vec![
                "CREATE FUNCTION f AS $$ a; b $$",
                "SELECT $t$ c; $$ d; $t$",
                "SELECT 1"
            ]
        );
        // A `$` that opens no heredoc is a character like any other.
        assert_eq!(
            texts("SELECT a$b; SELECT $ 1;"),
            vec!["SELECT a$b", "SELECT $ 1"]
        );
        assert_eq!(
            split("SELECT 1;\nSELECT $$ a; b").unwrap_err(),
            SplitError::Unterminated {
                line: 2,
                what: "a $$…$$ heredoc"
            }
        );
    }

    #[test]
    fn non_ascii_text_is_preserved() {
        assert_eq!(texts("SELECT 'héllo; 🐇'"), vec!["SELECT 'héllo; 🐇'"]);
    }
}
