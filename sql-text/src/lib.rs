//! Pure text handling for ClickHouse, with no I/O, so it can be unit-tested and fuzzed:
//! [`lex`] is the one SQL lexer every reader of SQL here uses; [`split`] turns a SQL
//! script into statements; [`ddl`] reads what a migration statement creates, a view's
//! query, a table's columns and sorting key; [`server`] reads what a server says (its
//! version, the code of an error); [`cluster`] renders statements for a cluster
//! (`ON CLUSTER`, Replicated engines) and reads the per-host result of distributed DDL.

pub mod cluster;
pub mod ddl;
pub mod lex;
pub mod server;
pub mod split;

pub use split::{split, SplitError, Statement};

#[cfg(test)]
mod tests {
    use super::*;

    /// The splitter and the cluster renderer read a statement with the same lexer, so
    /// they agree on where it ends: a `;` inside a heredoc ends neither.
    #[test]
    fn split_and_render_cut_a_heredoc_the_same_way() {
        let script = "CREATE FUNCTION f AS $$ a; b $$";
        let statements = split(script).unwrap();
        assert_eq!(statements.len(), 1);
        assert_eq!(statements[0].text, script);
        // One statement for the renderer too: refused as a form it does not know, not
        // as a heredoc left open.
        assert_eq!(
            cluster::render(script, "c"),
            Err(cluster::ClusterError::Unrecognised {
                start: "CREATE FUNCTION f AS".into()
            })
        );
        let script = "CREATE VIEW v AS SELECT $$ a; b $$ AS x; DROP VIEW v";
        let statements = split(script).unwrap();
        assert_eq!(statements.len(), 2);
        assert_eq!(
            cluster::render(&statements[0].text, "c").unwrap(),
            "CREATE VIEW v ON CLUSTER 'c' AS SELECT $$ a; b $$ AS x"
        );
        // Left open, both say so.
        assert!(split("SELECT $t$ a;").is_err());
        assert_eq!(
            cluster::render("SELECT $t$ a;", "c"),
            Err(cluster::ClusterError::Unterminated {
                what: "a $$…$$ heredoc"
            })
        );
    }
}
