//! Fuzzes `rvbbit_sql_text::cluster::render` with properties, not only "does not crash".
//!
//! The input's first byte picks the cluster name (plain ones and ones that must be
//! refused); the rest is the statement (invalid UTF-8 read lossily). Then:
//! - a cluster name that is not plain (`[A-Za-z0-9_.-]+`) is always refused;
//! - the renderer and the splitter read the text with the same lexer: the statement
//!   is left open (`Unterminated`, with the same construct) exactly when `split`
//!   finds something left open;
//! - `SELECT`, `WITH` and `INSERT` statements come back unchanged, and only they do;
//! - any other rendering is the statement with exactly these edits, checked token by
//!   token against it: one `ON CLUSTER '<cluster>'` inserted after a name (or a
//!   `UUID '…'`), and at most one MergeTree-family engine `E` made `ReplicatedE` with
//!   the Keeper path and `'{replica}'` put first in its arguments;
//! - rendering a rendered statement again is refused as already on a cluster.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvbbit_sql_text::cluster::{render, ClusterError};
use rvbbit_sql_text::lex::{tokens, unquote, Kind};
use rvbbit_sql_text::split::{split, SplitError};

const CLUSTERS: [(&str, bool); 8] = [
    ("c", true),
    ("rvbbit_cluster", true),
    ("prod-eu.1", true),
    ("", false),
    ("it's", false),
    ("a b", false),
    ("{cluster}", false),
    ("ON", true),
];

const MERGE_TREE_FAMILY: [&str; 8] = [
    "MergeTree",
    "ReplacingMergeTree",
    "SummingMergeTree",
    "AggregatingMergeTree",
    "CollapsingMergeTree",
    "VersionedCollapsingMergeTree",
    "GraphiteMergeTree",
    "CoalescingMergeTree",
];

/// The tokens of `text` as (kind, source).
fn toks(text: &str) -> Vec<(Kind, &str)> {
    tokens(text)
        .unwrap_or_else(|e| panic!("{text:?} does not lex: {e:?}"))
        .into_iter()
        .map(|t| (t.kind, &text[t.start..t.end]))
        .collect()
}

/// Checks that `out` is `input` with the edits the renderer may make, and nothing else.
fn check_edits(input: &str, out: &str, cluster: &str) {
    let a = toks(input);
    let b = toks(out);
    let on_cluster = format!("'{cluster}'");
    let is_triple = |t: &[(Kind, &str)]| {
        t.len() >= 3
            && t[0] == (Kind::Word, "ON")
            && t[1] == (Kind::Word, "CLUSTER")
            && t[2] == (Kind::Str, on_cluster.as_str())
    };
    let (mut i, mut j) = (0, 0);
    let (mut clause, mut engine) = (false, false);
    while j < b.len() {
        if !clause && is_triple(&b[j..]) && !is_triple(&a[i..]) {
            assert!(j > 0, "ON CLUSTER first in {out:?}");
            assert!(
                matches!(b[j - 1].0, Kind::Word | Kind::Quoted | Kind::Str),
                "ON CLUSTER after {:?}, not a name: {out:?}",
                b[j - 1]
            );
            clause = true;
            j += 3;
            continue;
        }
        if i < a.len() && a[i] == b[j] {
            i += 1;
            j += 1;
            continue;
        }
        // The engine's name may be written quoted (`MergeTree`).
        let name = a.get(i).and_then(|&(kind, src)| match kind {
            Kind::Word => Some(src.to_string()),
            Kind::Quoted => Some(unquote(src)),
            _ => None,
        });
        let replicated = name.is_some_and(|name| {
            MERGE_TREE_FAMILY.contains(&name.as_str())
                && b[j] == (Kind::Word, format!("Replicated{name}").as_str())
        });
        assert!(
            !engine && replicated,
            "{out:?} differs from {input:?} at token {j} ({:?}), input token {i} ({:?})",
            b[j],
            a.get(i)
        );
        engine = true;
        i += 1;
        j += 1;
        let path = |t: Option<&(Kind, &str)>| matches!(t, Some((Kind::Str, s)) if s.starts_with("'/clickhouse/tables/{shard}/{database}/"));
        let replica = |t: Option<&(Kind, &str)>| t == Some(&(Kind::Str, "'{replica}'"));
        let comma = |t: Option<&(Kind, &str)>| t == Some(&(Kind::Punct(b','), ","));
        if a.get(i).is_some_and(|t| t.0 == Kind::Punct(b'(')) {
            // Arguments given: the path and the replica go first.
            assert_eq!(b.get(j), a.get(i), "{out:?}");
            assert!(
                path(b.get(j + 1)) && comma(b.get(j + 2)) && replica(b.get(j + 3)),
                "{out:?}"
            );
            i += 1;
            j += 4;
            if a.get(i).is_some_and(|t| t.0 != Kind::Punct(b')')) {
                assert!(comma(b.get(j)), "no `,` after the replica: {out:?}");
                j += 1;
            }
        } else {
            assert!(
                b.get(j).is_some_and(|t| t.0 == Kind::Punct(b'('))
                    && path(b.get(j + 1))
                    && comma(b.get(j + 2))
                    && replica(b.get(j + 3))
                    && b.get(j + 4).is_some_and(|t| t.0 == Kind::Punct(b')')),
                "{out:?}"
            );
            j += 5;
        }
    }
    assert_eq!(i, a.len(), "input tokens left over: {input:?} -> {out:?}");
    assert!(clause, "no ON CLUSTER in {out:?}");
}

fn check(cluster: &str, plain: bool, statement: &str) {
    let got = render(statement, cluster);
    if !plain {
        assert_eq!(got, Err(ClusterError::BadClusterName(cluster.to_string())));
        return;
    }
    match (&got, split(statement)) {
        (
            Err(ClusterError::Unterminated { what }),
            Err(SplitError::Unterminated { what: w, .. }),
        ) => {
            assert_eq!(
                *what, w,
                "the renderer and the splitter disagree on what is open"
            );
            return;
        }
        (Err(ClusterError::Unterminated { .. }), Ok(_)) | (_, Err(_)) => {
            panic!("render gave {got:?}, split {:?}", split(statement))
        }
        _ => {}
    }
    let first = tokens(statement)
        .ok()
        .and_then(|t| t.first().copied())
        .filter(|t| t.kind == Kind::Word)
        .map(|t| statement[t.start..t.end].to_ascii_uppercase());
    let passes = matches!(first.as_deref(), Some("SELECT" | "WITH" | "INSERT"));
    let Ok(out) = got else {
        assert!(!passes, "{statement:?} should pass through: {got:?}");
        return;
    };
    if passes {
        assert_eq!(out, statement, "not passed through unchanged");
        return;
    }
    assert_ne!(out, statement, "not a pass-through form, yet unchanged");
    check_edits(statement, &out, cluster);
    assert!(
        matches!(
            render(&out, cluster),
            Err(ClusterError::AlreadyOnCluster { .. })
        ),
        "rendering {out:?} again: {:?}",
        render(&out, cluster)
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (cluster, plain) = CLUSTERS[usize::from(pick) % CLUSTERS.len()];
    check(cluster, plain, &String::from_utf8_lossy(rest));
});
