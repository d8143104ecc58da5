//! Fuzzes the statement readers of `rvbbit_sql_text::ddl` (`creates`, `view_select`,
//! `column_definitions`, `sorting_key`) against a reference, not only "does not crash".
//!
//! The input is read as a statement of words from a small vocabulary (the keywords of
//! the forms, names plain, quoted and qualified, brackets, `,`, `=`), each byte one word
//! and one separator. Then:
//! - on the words joined by single spaces, each reader agrees with `reference`, a
//!   second implementation that works on the list of words (brackets counted as words),
//!   written from the readers' documentation and independent of the lexer;
//! - joining the same words with other separators (newlines, tabs, and comments that
//!   hold `ORDER BY`, `AS`, `NOT IN`, brackets and commas) changes nothing: the same
//!   `creates`, the same column definitions, a query and a sorting key found alike;
//! - any bytes at all, read lossily, never make a reader panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvbbit_sql_text::ddl::{column_definitions, creates, sorting_key, view_select, Creates};

const WORDS: &[&str] = &[
    "CREATE",
    "create",
    "TABLE",
    "VIEW",
    "MATERIALIZED",
    "IF",
    "NOT",
    "EXISTS",
    "OR",
    "REPLACE",
    "ALTER",
    "ADD",
    "INDEX",
    "MATERIALIZE",
    "DROP",
    "INSERT",
    "INTO",
    "IN",
    "AS",
    "as",
    "SELECT",
    "ORDER",
    "BY",
    "PARTITION",
    "SETTINGS",
    "TO",
    "ENGINE",
    "DEFAULT",
    "=",
    "(",
    ")",
    "(",
    ")",
    ",",
    ",",
    "t",
    "a",
    "b",
    "x1",
    "`t`",
    "`a b`",
    "\"c\"",
    "db.t",
    "UInt8",
    "Tuple",
    "'s'",
    "1",
];

const SEPARATORS: &[&str] = &[
    " ",
    "\n",
    "\t ",
    " /* ORDER BY ( AS , */ ",
    " -- ORDER BY x, AS )\n",
    "\n# NOT IN (\n",
];

fuzz_target!(|data: &[u8]| {
    // Any text: no panic.
    let text = String::from_utf8_lossy(data);
    let _ = creates(&text);
    let _ = view_select(&text);
    let _ = column_definitions(&text);
    let _ = sorting_key(&text);

    let words: Vec<&str> = data
        .iter()
        .map(|&b| WORDS[usize::from(b) % WORDS.len()])
        .collect();
    let plain = words.join(" ");
    let r = reference::Statement::new(&words);
    assert_eq!(creates(&plain), r.creates(), "creates({plain:?})");
    assert_eq!(
        view_select(&plain),
        r.view_select(),
        "view_select({plain:?})"
    );
    assert_eq!(
        column_definitions(&plain),
        r.column_definitions(),
        "column_definitions({plain:?})"
    );
    assert_eq!(
        sorting_key(&plain).map(|k| k.trim().to_string()),
        r.sorting_key(),
        "sorting_key({plain:?})"
    );

    let mut spaced = String::new();
    for (k, (w, &b)) in words.iter().zip(data).enumerate() {
        if k > 0 {
            spaced.push_str(SEPARATORS[usize::from(b) / WORDS.len() % SEPARATORS.len()]);
        }
        spaced.push_str(w);
    }
    assert_eq!(creates(&spaced), creates(&plain), "creates({spaced:?})");
    assert_eq!(
        view_select(&spaced).is_some(),
        view_select(&plain).is_some(),
        "view_select({spaced:?})"
    );
    assert_eq!(
        column_definitions(&spaced),
        column_definitions(&plain),
        "column_definitions({spaced:?})"
    );
    assert_eq!(
        sorting_key(&spaced).is_some(),
        sorting_key(&plain).is_some(),
        "sorting_key({spaced:?})"
    );
});

/// The readers again, on a list of words. A word is a keyword or name, a quoted name,
/// a qualified name `db.t`, a string, a bracket, `,` or `=`.
mod reference {
    use super::Creates;
    use rvbbit_sql_text::ddl::ObjectKind;

    pub struct Statement<'a> {
        words: &'a [&'a str],
        upper: Vec<String>,
        /// Brackets open around each word (a bracket itself outside).
        depth: Vec<usize>,
    }

    /// A name's value: a bare word of letters, digits and `_`, or such words and
    /// quoted names joined by `.`, quotes removed.
    fn name(word: &str) -> Option<String> {
        let parts: Option<Vec<String>> = word.split('.').map(part).collect();
        Some(parts?.join("."))
    }

    fn part(p: &str) -> Option<String> {
        let quoted = |q: char| p.len() >= 2 && p.starts_with(q) && p.ends_with(q);
        if quoted('`') || quoted('"') {
            return Some(p[1..p.len() - 1].to_string());
        }
        let bare = !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        bare.then(|| p.to_string())
    }

    impl<'a> Statement<'a> {
        pub fn new(words: &'a [&'a str]) -> Self {
            let mut depth = Vec::new();
            let mut d = 0usize;
            for w in words {
                if *w == ")" {
                    d = d.saturating_sub(1);
                }
                depth.push(d);
                if *w == "(" {
                    d += 1;
                }
            }
            Statement {
                words,
                upper: words.iter().map(|w| w.to_ascii_uppercase()).collect(),
                depth,
            }
        }

        fn is(&self, from: usize, words: &[&str]) -> bool {
            words
                .iter()
                .enumerate()
                .all(|(k, w)| self.upper.get(from + k).map(String::as_str) == Some(*w))
        }

        fn name(&self, i: usize) -> Option<String> {
            name(self.words.get(i)?)
        }

        pub fn creates(&self) -> Option<Creates> {
            let object = |kind, at| {
                Some(Creates::Object {
                    kind,
                    name: self.name(at)?,
                })
            };
            if self.is(0, &["CREATE", "TABLE", "IF", "NOT", "EXISTS"]) {
                return object(ObjectKind::Table, 5);
            }
            if self.is(0, &["CREATE", "VIEW", "IF", "NOT", "EXISTS"]) {
                return object(ObjectKind::View, 5);
            }
            if self.is(
                0,
                &["CREATE", "MATERIALIZED", "VIEW", "IF", "NOT", "EXISTS"],
            ) {
                return object(ObjectKind::MaterializedView, 6);
            }
            if self.is(0, &["CREATE", "OR", "REPLACE", "VIEW"]) {
                return Some(Creates::Replace {
                    name: self.name(4)?,
                });
            }
            if self.is(0, &["ALTER", "TABLE"]) {
                let table = self.name(2)?;
                if self.is(3, &["ADD", "INDEX", "IF", "NOT", "EXISTS"]) {
                    return Some(Creates::Index {
                        table,
                        name: self.name(8)?,
                    });
                }
                if self.is(3, &["MATERIALIZE", "INDEX"]) {
                    return Some(Creates::Materialize {
                        table,
                        name: self.name(5)?,
                    });
                }
                return None;
            }
            if self.is(0, &["DROP", "TABLE", "IF", "EXISTS"])
                || self.is(0, &["DROP", "VIEW", "IF", "EXISTS"])
            {
                return Some(Creates::Drop {
                    name: self.name(4)?,
                });
            }
            if self.is(0, &["INSERT", "INTO"])
                && (0..self.words.len()).any(|k| self.is(k, &["NOT", "IN"]))
            {
                return Some(Creates::Fill {
                    table: self.name(2)?,
                });
            }
            None
        }

        pub fn view_select(&self) -> Option<String> {
            if !self.is(0, &["CREATE"]) {
                return None;
            }
            let mut i = if self.is(1, &["OR", "REPLACE"]) { 3 } else { 1 };
            if self.is(i, &["MATERIALIZED"]) {
                i += 1;
            }
            if !self.is(i, &["VIEW"]) {
                return None;
            }
            let at =
                (i + 1..self.words.len()).find(|&k| self.depth[k] == 0 && self.upper[k] == "AS")?;
            let rest = self.words[at + 1..].join(" ");
            (!rest.is_empty()).then_some(rest)
        }

        pub fn column_definitions(&self) -> Vec<(String, String)> {
            let Some(open) = self.words.iter().position(|w| *w == "(") else {
                return Vec::new();
            };
            let inner = self.depth[open] + 1;
            let mut out = Vec::new();
            let mut first = open + 1;
            for k in open + 1..self.words.len() {
                let w = self.words[k];
                let d = self.depth[k];
                let ends = (d == inner && w == ",") || (d < inner && w == ")");
                if !ends {
                    continue;
                }
                if first < k && self.upper[first] != "INDEX" {
                    // The column's name is the first word's first part.
                    let head = self.words[first].split('.').next().unwrap_or_default();
                    if let Some(column) = part(head) {
                        out.push((column, self.words[first..k].join(" ")));
                    }
                }
                if w == ")" {
                    break;
                }
                first = k + 1;
            }
            out
        }

        pub fn sorting_key(&self) -> Option<String> {
            const ENDS: &[&str] = &[
                "PARTITION",
                "PRIMARY",
                "SAMPLE",
                "TTL",
                "SETTINGS",
                "COMMENT",
                "AS",
                "POPULATE",
                "EMPTY",
                "DEFINER",
                "SQL",
                "ENGINE",
                "ORDER",
            ];
            let at = (0..self.words.len())
                .find(|&k| self.depth[k] == 0 && self.is(k, &["ORDER", "BY"]))?;
            let from = at + 2;
            if self.words.get(from) == Some(&"(") {
                let d = self.depth[from];
                let close = (from + 1..self.words.len())
                    .find(|&k| self.depth[k] == d && self.words[k] == ")")?;
                return Some(self.words[from + 1..close].join(" "));
            }
            let to = (from..self.words.len())
                .find(|&k| self.depth[k] == 0 && ENDS.contains(&self.upper[k].as_str()))
                .unwrap_or(self.words.len());
            (from < to).then(|| self.words[from..to].join(" "))
        }
    }
}
