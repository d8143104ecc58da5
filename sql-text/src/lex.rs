//! The one SQL lexer of this crate, used by the statement splitter, the cluster
//! renderer and the statement parsers, so that they all cut text the same way.
//!
//! It follows ClickHouse's lexer (src/Parsers/Lexer.cpp) for what matters here:
//! whitespace (`\v` included) and comments (`-- …`, `# …`, `#! …` to the end of the
//! line, `/* … */` nested) are skipped; a '…' string, a `…` or "…" identifier (with `\`
//! and doubled-quote escapes) and a `$$ … $$` or `$tag$ … $tag$` heredoc are single
//! tokens; a run of letters, digits, `_`, `$` and non-ASCII bytes is one bare word
//! (keyword, identifier or number); any other byte is a punctuation token.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A bare word: keyword, identifier or number.
    Word,
    /// A `…` or "…" identifier.
    Quoted,
    /// A '…' string or a `$$…$$` heredoc.
    Str,
    /// Any other character (`;`, `(`, `,`, `.`, …).
    Punct(u8),
}

/// One token: its kind and its bytes `start..end` in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
    /// Brackets (`(` and `[`) open around the token; a bracket itself is outside.
    pub depth: usize,
}

/// A construct that is never closed: where it opens and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unterminated {
    /// Byte offset of its first character.
    pub offset: usize,
    pub what: &'static str,
}

/// Whitespace as ClickHouse's lexer has it: `is_ascii_whitespace` plus `\v` (0x0B).
pub fn is_space(b: u8) -> bool {
    b.is_ascii_whitespace() || b == 0x0B
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// The offset of the end of the line comment starting at `i` (the `\n` is not part
/// of it).
fn line_end(bytes: &[u8], i: usize) -> usize {
    bytes[i..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |p| i + p)
}

/// Cuts `text` into tokens, comments and whitespace left out.
pub fn tokens(text: &str) -> Result<Vec<Token>, Unterminated> {
    let bytes = text.as_bytes();
    let mut toks = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        let start = i;
        let open = |what| Unterminated {
            offset: start,
            what,
        };
        let kind = match b {
            _ if is_space(b) => {
                i += 1;
                continue;
            }
            b'-' if next == Some(b'-') => {
                i = line_end(bytes, i);
                continue;
            }
            b'#' if matches!(next, Some(b' ') | Some(b'!')) => {
                i = line_end(bytes, i);
                continue;
            }
            b'/' if next == Some(b'*') => {
                let mut level = 0usize;
                loop {
                    if i >= bytes.len() {
                        return Err(open("a /* comment"));
                    }
                    if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                        level += 1;
                        i += 2;
                    } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                        level -= 1;
                        i += 2;
                        if level == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            b'\'' | b'"' | b'`' => {
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => {
                            return Err(open(match b {
                                b'\'' => "a '…' string",
                                b'"' => "a \"…\" identifier",
                                _ => "a `…` identifier",
                            }))
                        }
                        Some(b'\\') => i += 2,
                        Some(&c) if c == b && bytes.get(i + 1) == Some(&b) => i += 2,
                        Some(&c) if c == b => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
                if b == b'\'' {
                    Kind::Str
                } else {
                    Kind::Quoted
                }
            }
            b'$' => {
                // A heredoc `$tag$…$tag$`, or else a lone character.
                let tag_end = bytes[i + 1..]
                    .iter()
                    .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_'))
                    .map(|p| i + 1 + p);
                match tag_end {
                    Some(e) if bytes[e] == b'$' => {
                        let tag = &text[i..=e];
                        match text[e + 1..].find(tag) {
                            Some(p) => {
                                i = e + 1 + p + tag.len();
                                Kind::Str
                            }
                            None => return Err(open("a $$…$$ heredoc")),
                        }
                    }
                    _ => {
                        i += 1;
                        Kind::Punct(b'$')
                    }
                }
            }
            _ if is_word_byte(b) => {
                while i < bytes.len() && is_word_byte(bytes[i]) {
                    i += 1;
                }
                Kind::Word
            }
            _ => {
                i += 1;
                Kind::Punct(b)
            }
        };
        if matches!(kind, Kind::Punct(b')') | Kind::Punct(b']')) {
            depth = depth.saturating_sub(1);
        }
        toks.push(Token {
            kind,
            start,
            end: i,
            depth,
        });
        if matches!(kind, Kind::Punct(b'(') | Kind::Punct(b'[')) {
            depth += 1;
        }
    }
    Ok(toks)
}

/// A statement cut into tokens, with the look-ups the parsers share.
pub struct Lexed<'a> {
    pub text: &'a str,
    pub toks: Vec<Token>,
}

impl<'a> Lexed<'a> {
    pub fn new(text: &'a str) -> Result<Self, Unterminated> {
        Ok(Lexed {
            text,
            toks: tokens(text)?,
        })
    }

    pub fn len(&self) -> usize {
        self.toks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.toks.is_empty()
    }

    /// The source text of token `i`.
    pub fn src(&self, i: usize) -> &'a str {
        &self.text[self.toks[i].start..self.toks[i].end]
    }

    /// Whether token `i` is the bare word `kw` (any case).
    pub fn kw(&self, i: usize, kw: &str) -> bool {
        i < self.toks.len()
            && self.toks[i].kind == Kind::Word
            && self.src(i).eq_ignore_ascii_case(kw)
    }

    /// Whether tokens from `i` on are the bare words `words` (any case).
    pub fn kws(&self, i: usize, words: &[&str]) -> bool {
        words.iter().enumerate().all(|(k, w)| self.kw(i + k, w))
    }

    /// Whether token `i` is the punctuation character `c`.
    pub fn punct(&self, i: usize, c: u8) -> bool {
        i < self.toks.len() && self.toks[i].kind == Kind::Punct(c)
    }

    /// The value of the identifier at `i` (unquoted), if it is one.
    pub fn ident(&self, i: usize) -> Option<String> {
        match self.toks.get(i)?.kind {
            Kind::Word => Some(self.src(i).to_string()),
            Kind::Quoted => Some(unquote(self.src(i))),
            _ => None,
        }
    }

    /// A `[db.]name` at `i`: the index after it and the name's parts, unquoted.
    pub fn name_parts(&self, i: usize) -> Option<(usize, Vec<String>)> {
        let mut parts = vec![self.ident(i)?];
        let mut next = i + 1;
        while self.punct(next, b'.') {
            parts.push(self.ident(next + 1)?);
            next += 2;
        }
        Some((next, parts))
    }

    /// A `[db.]name` at `i`: the index after it and the name's last part.
    pub fn name(&self, i: usize) -> Option<(usize, String)> {
        let (next, mut parts) = self.name_parts(i)?;
        parts.pop().map(|last| (next, last))
    }

    /// The index of the bracket closing the one at `open`, if it is closed.
    pub fn closing(&self, open: usize) -> Option<usize> {
        let depth = self.toks.get(open)?.depth;
        (open + 1..self.toks.len()).find(|&j| {
            self.toks[j].depth == depth && matches!(self.toks[j].kind, Kind::Punct(b')' | b']'))
        })
    }

    /// The text of tokens `from..to`, comments left out and every gap between two
    /// tokens (whitespace, comments) written as one space.
    pub fn joined(&self, from: usize, to: usize) -> String {
        let mut out = String::new();
        for j in from..to {
            if j > from && self.toks[j - 1].end < self.toks[j].start {
                out.push(' ');
            }
            out.push_str(self.src(j));
        }
        out
    }
}

/// The value of a `…` or "…" identifier: quotes removed, `\x` and doubled quotes
/// unescaped.
pub fn unquote(quoted: &str) -> String {
    let mut chars = quoted.chars();
    let quote = chars.next();
    let mut inner: Vec<char> = chars.collect();
    inner.pop();
    let mut out = String::new();
    let mut k = 0;
    while k < inner.len() {
        let c = inner[k];
        if c == '\\' && k + 1 < inner.len() {
            out.push(unescape_char(inner[k + 1]));
            k += 2;
        } else if Some(c) == quote && inner.get(k + 1) == Some(&c) {
            out.push(c);
            k += 2;
        } else {
            out.push(c);
            k += 1;
        }
    }
    out
}

/// What `\c` stands for in ClickHouse's quoted strings and TSV.
pub fn unescape_char(c: char) -> char {
    match c {
        'b' => '\u{8}',
        'f' => '\u{c}',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        '0' => '\0',
        'a' => '\u{7}',
        'v' => '\u{b}',
        'e' => '\u{1b}',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srcs(text: &str) -> Vec<&str> {
        tokens(text)
            .unwrap()
            .iter()
            .map(|t| &text[t.start..t.end])
            .collect()
    }

    #[test]
    fn tokens_of_each_kind() {
        let text = "SELECT `a b`, \"c\", 'd''e\\'f', $$g; h$$, $t$i$$j$t$, 1.5 -- k\n# l\n#! m\n/* n /* o */ p */ x$y $ z;";
        assert_eq!(
            srcs(text),
            vec![
                "SELECT",
                "`a b`",
                ",",
                "\"c\"",
                ",",
                "'d''e\\'f'",
                ",",
                "$$g; h$$",
                ",",
                "$t$i$$j$t$",
                ",",
                "1",
                ".",
                "5",
                "x$y",
                "$",
                "z",
                ";"
            ]
        );
        let kinds: Vec<Kind> = tokens(text).unwrap().iter().map(|t| t.kind).collect();
        assert_eq!(kinds[1], Kind::Quoted);
        assert_eq!(kinds[3], Kind::Quoted);
        assert_eq!(kinds[5], Kind::Str);
        assert_eq!(kinds[7], Kind::Str);
        assert_eq!(kinds[9], Kind::Str);
        assert_eq!(kinds[17], Kind::Punct(b';'));
    }

    #[test]
    fn a_hash_without_space_or_bang_is_not_a_comment() {
        assert_eq!(srcs("a #b"), vec!["a", "#", "b"]);
    }

    #[test]
    fn brackets_set_the_depth_of_what_is_inside() {
        let toks = tokens("f(a[1], (b)) c").unwrap();
        let depths: Vec<usize> = toks.iter().map(|t| t.depth).collect();
        assert_eq!(depths, vec![0, 0, 1, 1, 2, 1, 1, 1, 2, 1, 0, 0]);
        let lexed = Lexed::new("f(a[1], (b)) c").unwrap();
        assert_eq!(lexed.closing(1), Some(10));
        assert_eq!(lexed.closing(3), Some(5));
        assert_eq!(Lexed::new("(a").unwrap().closing(0), None);
    }

    #[test]
    fn unclosed_constructs_say_where_they_open() {
        for (text, offset, what) in [
            ("x 'a", 2, "a '…' string"),
            ("x \"a", 2, "a \"…\" identifier"),
            ("x `a", 2, "a `…` identifier"),
            ("x /* a /* b */", 2, "a /* comment"),
            ("x $$ a", 2, "a $$…$$ heredoc"),
            ("x $t$ a $u$", 2, "a $$…$$ heredoc"),
            ("x 'a\\'", 2, "a '…' string"),
        ] {
            assert_eq!(tokens(text), Err(Unterminated { offset, what }), "{text}");
        }
    }

    #[test]
    fn names_and_gaps() {
        let lexed =
            Lexed::new("`my db`.`t``x` /* c */ (a   Array(String) -- d\n DEFAULT [])").unwrap();
        assert_eq!(
            lexed.name_parts(0),
            Some((3, vec!["my db".to_string(), "t`x".to_string()]))
        );
        assert_eq!(lexed.name(0), Some((3, "t`x".to_string())));
        assert_eq!(
            lexed.joined(4, lexed.len() - 1),
            "a Array(String) DEFAULT []"
        );
        assert_eq!(unquote("\"a\\tb\"\"c\""), "a\tb\"c");
    }
}
