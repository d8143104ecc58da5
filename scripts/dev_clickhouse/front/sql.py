"""Statement text: the leading keyword, where an INSERT's inline data starts
(split_insert), `INSERT ... FROM INFILE` for engines that read inline data from a file,
quoting of strings, identifiers and parameters, and reading TabSeparatedRaw rows.
"""

import re


PARAM_PREFIX = "param_"
_LEADING_NOISE = re.compile(rb"(?:\s+|--[^\n]*|#[^\n]*|/\*.*?\*/|\()*", re.S)


def leading_keyword(sql):
    """First keyword of a statement, skipping blanks, comments and '('."""
    rest = sql[_LEADING_NOISE.match(sql).end():]
    word = re.match(rb"[A-Za-z_]+", rest)
    return word.group(0).decode().upper() if word else ""


_TOKEN = re.compile(rb"""
    (?P<blank>\s+|--[^\n]*|\#[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<quoted>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"|`(?:[^`\\]|\\.|``)*`)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<other>.)
""", re.X | re.S)


# Words after which the next word names a table, not a clause.
_NAME_FOLLOWS = (b"INTO", b"TABLE", b"FUNCTION", b".")


def split_insert(sql):
    """(head, format, data) of an INSERT with inline data, else None.

    Follows ClickHouse's INSERT parser: inline data follows `FORMAT <name>`
    (after blanks and at most one line break) or starts at the first token
    after `VALUES`.  INSERT ... SELECT has no inline data.  `data` is always
    the tail of `sql`.
    """
    tokens = (m for m in _TOKEN.finditer(sql) if m.lastgroup != "blank")
    depth = 0
    previous = b""
    for token in tokens:
        text = token.group().upper()
        if text == b"(":
            depth += 1
        elif text == b")":
            depth -= 1
        # The table name directly follows INTO, TABLE, FUNCTION or a dot.
        elif depth == 0 and token.lastgroup == "word" and previous not in _NAME_FOLLOWS:
            if text == b"VALUES":
                data = next(tokens, None)
                return sql[:token.start()], "Values", sql[data.start():] if data else b""
            if text == b"FORMAT":
                name = next(tokens, None)
                if name is None or name.lastgroup not in ("word", "quoted"):
                    return None
                start = name.end()
                while sql[start:start + 1] in (b" ", b"\t", b"\f"):
                    start += 1
                start += sql[start:start + 1] == b"\r"
                start += sql[start:start + 1] == b"\n"
                fmt = name.group().decode()
                return sql[:token.start()], fmt.strip("`\""), sql[start:]
            if text in (b"SELECT", b"WITH", b"FROM"):
                return None
        previous = text
    return None


def _insert_head_parts(head):
    """(start of the SETTINGS clause or len(head), whether a column list follows the table)."""
    tokens = [m for m in _TOKEN.finditer(head) if m.lastgroup != "blank"]
    columns = False
    at = 0
    # INSERT INTO [TABLE] name[.name] | INSERT INTO FUNCTION name(...), then maybe (columns)
    while at < len(tokens) and tokens[at].group().upper() in (b"INSERT", b"INTO", b"TABLE"):
        at += 1
    if at < len(tokens) and tokens[at].group().upper() == b"FUNCTION":
        at += 2  # FUNCTION name
        depth = 0
        while at < len(tokens):
            depth += {b"(": 1, b")": -1}.get(tokens[at].group(), 0)
            at += 1
            if depth == 0:
                break
    else:
        at += 1
        while at + 1 < len(tokens) and tokens[at].group() == b".":
            at += 2
    columns = at < len(tokens) and tokens[at].group() == b"("
    depth = 0
    previous = b""
    for token in tokens:
        text = token.group().upper()
        if text == b"(":
            depth += 1
        elif text == b")":
            depth -= 1
        elif depth == 0 and text == b"SETTINGS" and previous not in _NAME_FOLLOWS:
            return token.start(), columns
        previous = text
    return len(head), columns


def insert_from_file(head, path, fmt, infile_takes_columns=True):
    """The INSERT `head` (up to its data) reading its data from file `path`.

    `INSERT ... FROM INFILE` parses the file as inline data.  Where it would
    ignore the statement's column list (23.x, 24.x: it reads all columns),
    `INSERT ... SELECT * FROM file()` reads it instead, the file's structure
    taken from the inserted columns.  FROM INFILE must come before the
    statement's SETTINGS clause.  Line breaks keep a line comment at the end
    of `head` from swallowing the rest.
    """
    cut, columns = _insert_head_parts(head)
    if columns and not infile_takes_columns:
        source = b"SELECT * FROM file(" + quote_string(path).encode() + b", " + quote_string(fmt).encode() + b")"
        return head[:cut] + b"\n" + head[cut:] + b"\n" + source
    return (head[:cut] + b"\nFROM INFILE " + quote_string(path).encode() + b"\n" + head[cut:]
            + b"\nFORMAT " + quote_identifier(fmt).encode())


def quote_string(value):
    return "'" + (value.replace("\\", "\\\\").replace("'", "\\'").replace("\0", "\\0")) + "'"


def quote_identifier(name):
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`").replace("\0", "\\0") + "`"


def quote_bytes(value):
    """A string literal holding `value` (any bytes; no NUL in the literal)."""
    return b"'" + value.replace(b"\\", b"\\\\").replace(b"'", b"\\'").replace(b"\0", b"\\0") + b"'"


def escape_parameter(value):
    """Query parameter values are read in TabSeparated (escaped) form."""
    return (value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r").replace("\0", "\\0"))


def tsv_rows(raw):
    return [line.split("\t") for line in raw.decode().splitlines()]
