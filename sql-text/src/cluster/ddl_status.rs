//! Reads the per-host result of a distributed DDL query (`ON CLUSTER`), as the server
//! returns it in `TabSeparatedWithNames`.

use super::ClusterError;
use crate::lex::unescape_char;
use std::fmt;

/// One host's answer to a distributed DDL query (a row of its result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStatus {
    pub host: String,
    pub port: u16,
    /// 0 when the host executed the query, else the ClickHouse error code it got.
    /// `None` when the host had not finished when `distributed_ddl_task_timeout`
    /// ran out (the server sends NULL; the host goes on executing the query in the
    /// background).
    pub status: Option<i64>,
    /// The host's error message, TSV escapes undone; empty when `status` is 0 or None.
    pub error: String,
    pub hosts_remaining: u64,
    pub hosts_active: u64,
}

impl HostStatus {
    pub fn failed(&self) -> bool {
        self.status != Some(0)
    }
}

impl fmt::Display for HostStatus {
    /// `host:port: what happened` (IPv6 hosts in brackets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}: ", self.host, self.port)?;
        } else {
            write!(f, "{}:{}: ", self.host, self.port)?;
        }
        match self.status {
            Some(0) => f.write_str("done"),
            Some(code) if self.error.is_empty() => write!(f, "failed with code {code}"),
            Some(_) => f.write_str(&self.error),
            None => f.write_str(
                "not finished within distributed_ddl_task_timeout (it goes on in the background)",
            ),
        }
    }
}

/// The columns of a distributed DDL result, as ClickHouse names them.
const STATUS_COLUMNS: [&str; 6] = [
    "host",
    "port",
    "status",
    "error",
    "num_hosts_remaining",
    "num_hosts_active",
];

/// Reads the result of an `ON CLUSTER` query in `TabSeparatedWithNames`: a header
/// naming `host, port, status, error, num_hosts_remaining, num_hosts_active` (other
/// columns are ignored) and one row per host. `status` and `error` may be `\N`
/// (`distributed_ddl_output_mode` `null_status_on_timeout` or `never_throw`: the host
/// did not finish in time). Empty input (the `none` output modes) gives no hosts.
/// Anything else — such as an exception the server appended after the rows — is an
/// error quoting the offending line.
pub fn parse_ddl_status(tsv: &str) -> Result<Vec<HostStatus>, ClusterError> {
    let body = tsv.strip_suffix('\n').unwrap_or(tsv);
    if body.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut lines = body.split('\n');
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split('\t')
        .map(unescape_tsv)
        .collect();
    let mut index = [0usize; 6];
    for (slot, name) in index.iter_mut().zip(STATUS_COLUMNS) {
        *slot = header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| ClusterError::Status {
                line: 1,
                reason: format!(
                    "no column `{name}` in the header ({}); expected {}",
                    excerpt(&header.join(", ")),
                    STATUS_COLUMNS.join(", ")
                ),
            })?;
    }
    let mut hosts = Vec::new();
    for (n, line) in lines.enumerate() {
        let line_no = n + 2;
        let bad = |reason: String| ClusterError::Status {
            line: line_no,
            reason,
        };
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() != header.len() {
            return Err(bad(format!(
                "expected {} tab-separated fields, found {}: {}",
                header.len(),
                fields.len(),
                excerpt(line)
            )));
        }
        let field = |k: usize| fields[index[k]];
        let number = |k: usize| -> Result<u64, ClusterError> {
            field(k).parse().map_err(|_| {
                bad(format!(
                    "{} is not a number: {}",
                    STATUS_COLUMNS[k],
                    excerpt(field(k))
                ))
            })
        };
        let port = u16::try_from(number(1)?)
            .map_err(|_| bad(format!("port {} is out of range", field(1))))?;
        let status = match field(2) {
            "\\N" => None,
            text => Some(
                text.parse::<i64>()
                    .map_err(|_| bad(format!("status is not a number: {}", excerpt(text))))?,
            ),
        };
        let error = match field(3) {
            "\\N" => String::new(),
            text => unescape_tsv(text),
        };
        hosts.push(HostStatus {
            host: unescape_tsv(field(0)),
            port,
            status,
            error,
            hosts_remaining: number(4)?,
            hosts_active: number(5)?,
        });
    }
    Ok(hosts)
}

/// The hosts whose status is not 0: failed, or not finished in time.
pub fn failed_hosts(hosts: &[HostStatus]) -> Vec<&HostStatus> {
    hosts.iter().filter(|h| h.failed()).collect()
}

/// A TSV field's value: `\t`, `\n`, `\\`, `\'` and the other escapes ClickHouse writes
/// undone (`\xHH` too).
fn unescape_tsv(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 >= bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let c = bytes[i + 1];
        if c == b'x' {
            let hex = field
                .get(i + 2..i + 4)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(byte) = hex {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        if c.is_ascii() {
            out.push(unescape_char(char::from(c)) as u8);
            i += 2;
        } else {
            // A backslash before a multi-byte character stands for the character.
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `text` shortened for a message.
fn excerpt(text: &str) -> String {
    const MAX: usize = 200;
    if text.chars().count() > MAX {
        text.chars().take(MAX).collect::<String>() + "…"
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "host\tport\tstatus\terror\tnum_hosts_remaining\tnum_hosts_active\n";

    #[test]
    fn ddl_status_rows_are_read() {
        let tsv = format!(
            "{HEADER}ch-1\t9000\t0\t\t1\t2\nch-2\t9000\t57\tCode: 57. DB::Exception: Table rvbbit.t already exists. (TABLE_ALREADY_EXISTS) (version 24.8.1.1)\t0\t2\n"
        );
        let hosts = parse_ddl_status(&tsv).unwrap();
        assert_eq!(
            hosts,
            vec![
                HostStatus {
                    host: "ch-1".into(),
                    port: 9000,
                    status: Some(0),
                    error: String::new(),
                    hosts_remaining: 1,
                    hosts_active: 2,
                },
                HostStatus {
                    host: "ch-2".into(),
                    port: 9000,
                    status: Some(57),
                    error: "Code: 57. DB::Exception: Table rvbbit.t already exists. (TABLE_ALREADY_EXISTS) (version 24.8.1.1)".into(),
                    hosts_remaining: 0,
                    hosts_active: 2,
                },
            ]
        );
        let failed = failed_hosts(&hosts);
        assert_eq!(failed.len(), 1);
        assert_eq!(
            failed[0].to_string(),
            "ch-2:9000: Code: 57. DB::Exception: Table rvbbit.t already exists. (TABLE_ALREADY_EXISTS) (version 24.8.1.1)"
        );
        assert_eq!(hosts[0].to_string(), "ch-1:9000: done");
    }

    #[test]
    fn escaped_tabs_newlines_and_quotes_in_errors_are_undone() {
        // As ClickHouse writes `a<TAB>b<LF>c\d'e<NUL>f<BS><FF><CR>g` in TSV.
        let tsv = format!("{HEADER}h\t9000\t1\ta\\tb\\nc\\\\d\\'e\\0f\\b\\f\\rg\\x41\t0\t1\n");
        let hosts = parse_ddl_status(&tsv).unwrap();
        assert_eq!(hosts[0].error, "a\tb\nc\\d'e\0f\u{8}\u{c}\rgA");
        // The host may be escaped too, and an IPv6 host is shown in brackets.
        let tsv = format!("{HEADER}::1\t9440\t2\tx\\\\y\t0\t1\n");
        let hosts = parse_ddl_status(&tsv).unwrap();
        assert_eq!(hosts[0].to_string(), "[::1]:9440: x\\y");
    }

    #[test]
    fn hosts_that_did_not_finish_have_no_status_and_count_as_failed() {
        // distributed_ddl_output_mode = never_throw / null_status_on_timeout.
        let tsv = format!("{HEADER}a\t9000\t0\t\\N\t1\t2\nb\t9000\t\\N\t\\N\t1\t1\n");
        let hosts = parse_ddl_status(&tsv).unwrap();
        assert_eq!(hosts[0].status, Some(0));
        assert_eq!(hosts[0].error, "");
        assert_eq!(hosts[1].status, None);
        let failed = failed_hosts(&hosts);
        assert_eq!(failed.len(), 1);
        assert_eq!(
            failed[0].to_string(),
            "b:9000: not finished within distributed_ddl_task_timeout (it goes on in the background)"
        );
        // A code without a message still says which.
        let tsv = format!("{HEADER}c\t9000\t999\t\t0\t1\n");
        assert_eq!(
            parse_ddl_status(&tsv).unwrap()[0].to_string(),
            "c:9000: failed with code 999"
        );
    }

    #[test]
    fn empty_results() {
        assert_eq!(parse_ddl_status(""), Ok(vec![]));
        assert_eq!(parse_ddl_status("\n"), Ok(vec![]));
        assert_eq!(parse_ddl_status(HEADER), Ok(vec![]));
        assert!(failed_hosts(&[]).is_empty());
    }

    #[test]
    fn columns_are_found_by_name() {
        let tsv = "num_hosts_active\textra\terror\tstatus\tport\thost\tnum_hosts_remaining\n3\tq\t\t0\t9000\th\t0";
        let hosts = parse_ddl_status(tsv).unwrap();
        assert_eq!(hosts[0].host, "h");
        assert_eq!(hosts[0].hosts_active, 3);
        assert_eq!(hosts[0].status, Some(0));
    }

    #[test]
    fn malformed_results_are_errors_with_their_line() {
        // A Replicated database's result has other columns.
        let err = parse_ddl_status(
            "shard\treplica\tstatus\tnum_hosts_remaining\tnum_hosts_active\n01\tr1\tOK\t0\t1\n",
        )
        .unwrap_err();
        assert!(
            matches!(&err, ClusterError::Status { line: 1, reason } if reason.contains("no column `host`")),
            "{err}"
        );
        // An exception the server appended after the rows.
        let tsv = format!("{HEADER}a\t9000\t0\t\t1\t2\nCode: 159. DB::Exception: Watching task is executing longer than distributed_ddl_task_timeout (=180) seconds. (TIMEOUT_EXCEEDED)\n");
        let err = parse_ddl_status(&tsv).unwrap_err();
        assert!(
            matches!(&err, ClusterError::Status { line: 3, reason } if reason.contains("TIMEOUT_EXCEEDED")),
            "{err}"
        );
        for (row, what) in [
            ("a\tx\t0\t\t0\t1", "port is not a number"),
            ("a\t70000\t0\t\t0\t1", "port 70000 is out of range"),
            ("a\t9000\tok\t\t0\t1", "status is not a number"),
            ("a\t9000\t0\t\t-1\t1", "num_hosts_remaining is not a number"),
            (
                "a\t9000\t0\t\t0",
                "expected 6 tab-separated fields, found 5",
            ),
            ("", "expected 6 tab-separated fields, found 1"),
        ] {
            let err = parse_ddl_status(&format!("{HEADER}{row}\n")).unwrap_err();
            assert!(
                matches!(&err, ClusterError::Status { line: 2, reason } if reason.contains(what)),
                "{row:?}: {err}"
            );
        }
    }
}
