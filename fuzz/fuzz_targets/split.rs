//! Fuzzes `rvbbit_sql_text::split` with properties, not only "does not crash".
//!
//! The input is any bytes; invalid UTF-8 is split lossily (U+FFFD), so every input
//! reaches the splitter. For a script that splits without error:
//! - each statement's text occurs in the script, in order, at a position whose
//!   1-based line number is the statement's `line`;
//! - no statement is empty, starts or ends with whitespace (ClickHouse's: space, \t,
//!   \n, \r, \f, \v), starts with a comment, or ends with `;`;
//! - joining the texts with ";\n" and splitting again gives the same texts, on the
//!   lines the join puts them (idempotence);
//! - a script with no quote, backtick, `$` or comment characters splits exactly like
//!   the naive `split(';')`, trimmed, without empty pieces.
//!
//! For a script that does not split, the error names a line of the script.
//!
//! And for every script, the splitter agrees (statements, lines, and where a
//! construct is left open) with `reference`, a second, deliberately plain tokenizer
//! written from ClickHouse's lexer rules for the same constructs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvbbit_sql_text::split::{split, SplitError, Statement};

/// Whitespace as ClickHouse's lexer has it (`isWhitespaceASCII`).
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0B' | '\x0C')
}

fn newlines(text: &str) -> usize {
    text.bytes().filter(|&b| b == b'\n').count()
}

fn lines_in(script: &str) -> usize {
    newlines(script) + 1
}

fn texts(statements: &[Statement]) -> Vec<&str> {
    statements.iter().map(|s| s.text.as_str()).collect()
}

fn check(script: &str) {
    let got = split(script);
    match (&got, reference::split(script)) {
        (Ok(statements), Ok(expected)) => {
            let statements: Vec<(usize, &str)> = statements
                .iter()
                .map(|s| (s.line, s.text.as_str()))
                .collect();
            let expected: Vec<(usize, &str)> = expected
                .iter()
                .map(|(line, t)| (*line, t.as_str()))
                .collect();
            assert_eq!(statements, expected, "differs from the reference tokenizer");
        }
        (Err(SplitError::Unterminated { line, .. }), Err(expected)) => {
            assert_eq!(
                *line, expected,
                "error line differs from the reference tokenizer"
            )
        }
        (got, expected) => panic!("split gave {got:?}, the reference tokenizer {expected:?}"),
    }

    let statements = match got {
        Ok(statements) => statements,
        Err(SplitError::Unterminated { line, what }) => {
            assert!(
                (1..=lines_in(script)).contains(&line),
                "error on line {line} ({what}) of a {}-line script",
                lines_in(script)
            );
            return;
        }
    };

    assert!(
        statements.len() <= script.matches(';').count() + 1,
        "more statements than `;`-separated pieces"
    );

    // Every statement is in the script, in order, on its line.
    let mut cursor = 0; // byte offset just after the previous statement
    let mut cursor_line = 1; // line of `cursor`
    for (k, s) in statements.iter().enumerate() {
        let t = s.text.as_str();
        assert!(!t.is_empty(), "statement {k} is empty");
        assert!(
            !t.starts_with(is_space),
            "statement {k} starts with whitespace: {t:?}"
        );
        assert!(
            !t.ends_with(is_space),
            "statement {k} ends with whitespace: {t:?}"
        );
        assert!(!t.ends_with(';'), "statement {k} ends with `;`: {t:?}");
        assert!(
            !(t.starts_with("--")
                || t.starts_with("/*")
                || t.starts_with("# ")
                || t.starts_with("#!")),
            "statement {k} starts with a comment: {t:?}"
        );
        // The first occurrence of the text after `cursor` on the statement's line
        // (occurrences may overlap, so step one character at a time).
        let (mut from, mut from_line) = (cursor, cursor_line);
        let at = loop {
            let Some(rel) = script[from..].find(t) else {
                panic!(
                    "statement {k} {t:?} is not in the script after byte {cursor} on line {}",
                    s.line
                )
            };
            let at = from + rel;
            let line = from_line + newlines(&script[from..at]);
            if line == s.line {
                break at;
            }
            assert!(
                line < s.line,
                "statement {k} {t:?} is not on its line {}",
                s.line
            );
            let step = script[at..].chars().next().map_or(1, char::len_utf8);
            (from, from_line) = (at + step, line + newlines(&script[at..at + step]));
        };
        cursor = at + t.len();
        cursor_line = s.line + newlines(t);
    }

    // Idempotence: the statements, joined again, split into themselves.
    let joined = texts(&statements).join(";\n");
    let again = split(&joined).unwrap_or_else(|e| {
        panic!("re-splitting the joined statements failed: {e}\njoined: {joined:?}")
    });
    assert_eq!(
        texts(&again),
        texts(&statements),
        "not idempotent; joined: {joined:?}"
    );
    let mut line = 1;
    for (k, s) in again.iter().enumerate() {
        assert_eq!(
            s.line, line,
            "statement {k} of the joined script is on the wrong line"
        );
        line += newlines(&s.text) + 1;
    }

    // With nothing to quote or comment out, `;` is the only thing that matters.
    let plain = !script.contains(['\'', '"', '`', '#', '$'])
        && !script.contains("--")
        && !script.contains("/*");
    if plain {
        let naive: Vec<&str> = script
            .split(';')
            .map(|piece| piece.trim_matches(is_space))
            .filter(|piece| !piece.is_empty())
            .collect();
        assert_eq!(texts(&statements), naive, "differs from the naive split");
    }
}

/// A second tokenizer for the same constructs (`$$` heredocs included), written plainly
/// from ClickHouse's lexer (src/Parsers/Lexer.cpp) and kept independent of the
/// splitter's code (and of `rvbbit_sql_text::lex`, which the splitter uses): the script is
/// cut into pieces (a gap, a `;`, or a token), and a statement runs from the first
/// token after a `;` to the last token before the next one.
mod reference {
    enum Piece {
        Gap,
        Semicolon,
        Token,
    }

    /// `(line, text)` of each statement, or the line of the construct left open.
    pub fn split(script: &str) -> Result<Vec<(usize, String)>, usize> {
        let b = script.as_bytes();
        let newlines: Vec<usize> = (0..b.len()).filter(|&i| b[i] == b'\n').collect();
        let line_of = |offset: usize| 1 + newlines.partition_point(|&n| n < offset);
        let mut ranges = Vec::new();
        let mut first: Option<usize> = None;
        let mut last = 0;
        let mut i = 0;
        while i < b.len() {
            let (piece, next) = piece(b, i).ok_or_else(|| line_of(i))?;
            match piece {
                Piece::Gap => {}
                Piece::Semicolon => ranges.extend(first.take().map(|f| (f, last))),
                Piece::Token => {
                    first.get_or_insert(i);
                    last = next;
                }
            }
            i = next;
        }
        ranges.extend(first.map(|f| (f, last)));
        Ok(ranges
            .into_iter()
            .map(|(f, l)| (line_of(f), script[f..l].to_string()))
            .collect())
    }

    /// The piece starting at `i` and the offset after it; `None` if it is never closed.
    fn piece(b: &[u8], i: usize) -> Option<(Piece, usize)> {
        let rest = &b[i..];
        if rest.starts_with(b"--") || rest.starts_with(b"# ") || rest.starts_with(b"#!") {
            let len = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
            return Some((Piece::Gap, i + len));
        }
        if rest.starts_with(b"/*") {
            let (mut depth, mut j) = (1, i + 2);
            while depth > 0 {
                if j + 2 > b.len() {
                    return None;
                }
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            return Some((Piece::Gap, j));
        }
        match b[i] {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C => Some((Piece::Gap, i + 1)),
            b';' => Some((Piece::Semicolon, i + 1)),
            quote @ (b'\'' | b'"' | b'`') => {
                let mut j = i + 1;
                loop {
                    let c = *b.get(j)?;
                    if c == b'\\' {
                        b.get(j + 1)?;
                        j += 2;
                    } else if c == quote && b.get(j + 1) == Some(&quote) {
                        j += 2;
                    } else if c == quote {
                        return Some((Piece::Token, j + 1));
                    } else {
                        j += 1;
                    }
                }
            }
            b'$' => {
                // `$tag$ … $tag$` (the tag letters, digits and `_`, maybe empty), or
                // else the character alone.
                let tag = b[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count();
                if b.get(i + 1 + tag) != Some(&b'$') {
                    return Some((Piece::Token, i + 1));
                }
                let delimiter = &b[i..i + tag + 2];
                let body = i + tag + 2;
                let close = (body..b.len()).find(|&j| b[j..].starts_with(delimiter))?;
                Some((Piece::Token, close + delimiter.len()))
            }
            // A word: letters, digits, `_`, `$` and non-ASCII bytes (so a `$` inside a
            // word opens nothing).
            c if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 => {
                let len = b[i..]
                    .iter()
                    .take_while(|&&c| {
                        c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
                    })
                    .count();
                Some((Piece::Token, i + len))
            }
            _ => Some((Piece::Token, i + 1)),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(&String::from_utf8_lossy(data));
});
