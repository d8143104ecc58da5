//! Where and as whom to connect: the flags every command shares, the environment
//! variables behind them, and the validation done before anything is sent.

use crate::failure::classified;
use rvbbit_plugin_api::exit;
use url::Url;

/// Shown at the end of every command's `--help`.
pub const ENV_HELP: &str = "\
Environment (flags win over variables):
  RVBBIT_CLICKHOUSE_URL        HTTP(S) URL of ClickHouse [default: http://localhost:8123]
  RVBBIT_CLICKHOUSE_HOST       host, used when RVBBIT_CLICKHOUSE_URL is unset
  RVBBIT_CLICKHOUSE_HTTP_PORT  HTTP port with RVBBIT_CLICKHOUSE_HOST [default: 8123]
  RVBBIT_CLICKHOUSE_DATABASE   database [default: rvbbit]
  RVBBIT_CLICKHOUSE_USER       user [default: default]
  RVBBIT_CLICKHOUSE_PASSWORD   password [default: none]
A user and password written in the URL (http://user:pass@host:8123) win over the others.
RVBBIT_CLICKHOUSE_PORT (rvbbit's native-protocol port, 9000) is not used: this tool speaks HTTP.";

/// The text after a command's options in its help: examples (what each does, then
/// the command line, ready to paste), then the connection's environment variables.
pub fn after_help(examples: &[(&str, &str)]) -> String {
    let mut text = String::from("Examples:\n");
    for (what, command) in examples {
        text.push_str(&format!("  # {what}\n  {command}\n"));
    }
    text.push('\n');
    text.push_str(ENV_HELP);
    text
}

#[derive(clap::Args, Debug, Clone)]
pub struct ConnectionArgs {
    /// ClickHouse HTTP(S) URL, e.g. http://localhost:8123
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Database holding rvbbit's unified_logs
    #[arg(long, value_name = "NAME")]
    pub database: Option<String>,
    /// ClickHouse user
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// ClickHouse password (prefer RVBBIT_CLICKHOUSE_PASSWORD: command lines are visible to other users)
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Seconds to wait for the server before giving up on a request
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub timeout: u64,
}

/// A resolved, validated connection target. `Debug` never shows the password.
#[derive(Clone)]
pub struct Target {
    /// The URL without credentials.
    pub url: Url,
    pub database: String,
    pub user: String,
    pub password: String,
    pub timeout: std::time::Duration,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url.as_str())
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish()
    }
}

impl Target {
    /// The server's address as shown to users, e.g. `http://localhost:8123`.
    pub fn address(&self) -> String {
        self.url.as_str().trim_end_matches('/').to_string()
    }

    /// `text` with credential fields masked: the password of every URL written with
    /// one (`http://user:secret@host` becomes `http://user:****@host`). Nothing else is
    /// touched: the tool never writes the password into a message or a statement, and
    /// masking every place its text happens to appear garbles messages (a password
    /// `127` would turn `127.0.0.1` into `****.0.0.1`, and tell the reader what it is).
    pub fn redact(&self, text: &str) -> String {
        mask_url_passwords(text)
    }

    /// [`Target::redact`], and also every occurrence of the password (and its
    /// URL-encoded form) anywhere. For panic messages only: a panic can carry any value
    /// the program held, so there a garbled message is the lesser harm.
    pub fn redact_everywhere(&self, text: &str) -> String {
        let mut out = self.redact(text);
        if !self.password.is_empty() {
            out = out.replace(&self.password, "****");
            let encoded: String =
                url::form_urlencoded::byte_serialize(self.password.as_bytes()).collect();
            out = out.replace(&encoded, "****");
        }
        out
    }
}

/// Masks the password of every `scheme://user:password@` in `text`.
fn mask_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The authority ends at the first '/', '?', '#' or whitespace; its userinfo, if
        // any, ends at its last '@'.
        let end = after
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(userinfo_end) => {
                let userinfo = &authority[..userinfo_end];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..=colon]);
                        out.push_str("****");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[userinfo_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Reads the flags and the environment. Errors here are usage errors: nothing has
/// been sent to any server yet.
pub fn resolve(args: &ConnectionArgs) -> anyhow::Result<Target> {
    resolve_with(args, |name| {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    })
}

fn resolve_with(
    args: &ConnectionArgs,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Target> {
    let raw_url = match (&args.url, env("RVBBIT_CLICKHOUSE_URL")) {
        (Some(url), _) => url.clone(),
        (None, Some(url)) => url,
        (None, None) => {
            let host = env("RVBBIT_CLICKHOUSE_HOST").unwrap_or_else(|| "localhost".into());
            let port = env("RVBBIT_CLICKHOUSE_HTTP_PORT").unwrap_or_else(|| "8123".into());
            if port.parse::<u16>().is_err() {
                return Err(classified(
                    exit::USAGE,
                    format!("RVBBIT_CLICKHOUSE_HTTP_PORT={port:?} is not a port number"),
                ));
            }
            format!("http://{host}:{port}")
        }
    };
    let mut url = Url::parse(&raw_url).map_err(|e| {
        classified(
            exit::USAGE,
            format!("the ClickHouse URL is not valid ({e}); expected something like http://localhost:8123"),
        )
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(classified(
            exit::USAGE,
            format!(
                "the ClickHouse URL must start with http:// or https:// (ClickHouse's HTTP interface), not {}://",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(classified(exit::USAGE, "the ClickHouse URL has no host"));
    }
    let decode = |s: &str| percent_decode(s);
    let url_user = (!url.username().is_empty()).then(|| decode(url.username()));
    let url_password = url.password().map(decode);
    // Credentials never stay in the URL we keep (it is shown in messages).
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);

    let database = args
        .database
        .clone()
        .or_else(|| env("RVBBIT_CLICKHOUSE_DATABASE"))
        .unwrap_or_else(|| "rvbbit".into());
    validate_identifier(&database, "database name")?;
    let user = url_user
        .or_else(|| args.user.clone())
        .or_else(|| env("RVBBIT_CLICKHOUSE_USER"))
        .unwrap_or_else(|| "default".into());
    let password = url_password
        .or_else(|| args.password.clone())
        .or_else(|| env("RVBBIT_CLICKHOUSE_PASSWORD"))
        .unwrap_or_default();
    if args.timeout == 0 {
        return Err(classified(
            exit::USAGE,
            "--timeout must be at least 1 second",
        ));
    }
    Ok(Target {
        url,
        database,
        user,
        password,
        timeout: std::time::Duration::from_secs(args.timeout),
    })
}

fn percent_decode(s: &str) -> String {
    let bytes: Vec<u8> = url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Accepts plain identifiers only: a letter or `_`, then letters, digits or `_`,
/// at most 128 characters. Anything else is refused before any SQL is sent, so such a
/// name can be written into DDL (backquoted) without any escaping question.
pub fn validate_identifier(name: &str, what: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(classified(
            exit::USAGE,
            format!(
                "{what} {name:?} is not a plain identifier (a letter or '_', then letters, digits or '_', at most 128); nothing was sent to the server"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ConnectionArgs {
        ConnectionArgs {
            url: None,
            database: None,
            user: None,
            password: None,
            timeout: 30,
        }
    }

    #[test]
    fn defaults() {
        let t = resolve_with(&args(), |_| None).unwrap();
        assert_eq!(t.address(), "http://localhost:8123");
        assert_eq!(
            (t.database.as_str(), t.user.as_str(), t.password.as_str()),
            ("rvbbit", "default", "")
        );
    }

    #[test]
    fn host_and_http_port_build_the_url_when_no_url_is_given() {
        let env = |k: &str| match k {
            "RVBBIT_CLICKHOUSE_HOST" => Some("ch.internal".to_string()),
            "RVBBIT_CLICKHOUSE_HTTP_PORT" => Some("18123".to_string()),
            _ => None,
        };
        assert_eq!(
            resolve_with(&args(), env).unwrap().address(),
            "http://ch.internal:18123"
        );
    }

    #[test]
    fn a_bad_http_port_or_a_zero_timeout_is_a_usage_error() {
        let env = |k: &str| (k == "RVBBIT_CLICKHOUSE_HTTP_PORT").then(|| "81x23".to_string());
        let err = resolve_with(&args(), env).unwrap_err();
        let c = err.downcast_ref::<crate::failure::Classified>().unwrap();
        assert_eq!(c.exit_code, exit::USAGE);
        assert!(
            c.message
                .contains("RVBBIT_CLICKHOUSE_HTTP_PORT=\"81x23\" is not a port number"),
            "{}",
            c.message
        );
        let mut a = args();
        a.timeout = 0;
        let err = resolve_with(&a, |_| None).unwrap_err();
        assert!(
            err.to_string()
                .contains("--timeout must be at least 1 second"),
            "{err}"
        );
    }

    #[test]
    fn flags_win_over_environment() {
        let mut a = args();
        a.url = Some("https://flag:8443".into());
        a.database = Some("flagdb".into());
        let env = |k: &str| match k {
            "RVBBIT_CLICKHOUSE_URL" => Some("http://env:8123".to_string()),
            "RVBBIT_CLICKHOUSE_DATABASE" => Some("envdb".to_string()),
            _ => None,
        };
        let t = resolve_with(&a, env).unwrap();
        assert_eq!(
            (t.address().as_str(), t.database.as_str()),
            ("https://flag:8443", "flagdb")
        );
    }

    #[test]
    fn credentials_in_the_url_are_taken_out_of_it() {
        let mut a = args();
        a.url = Some("http://alice:s%40cret%2F1@db.example:8123/?x=1".into());
        let t = resolve_with(&a, |_| None).unwrap();
        assert_eq!(t.user, "alice");
        assert_eq!(t.password, "s@cret/1");
        assert_eq!(t.address(), "http://db.example:8123");
        assert!(!format!("{t:?}").contains("cret"));
        assert_eq!(
            t.redact("boom http://alice:s%40cret%2F1@db.example:8123/x and https://u:p@h"),
            "boom http://alice:****@db.example:8123/x and https://u:****@h"
        );
        assert_eq!(
            t.redact_everywhere("boom s@cret/1 and s%40cret%2F1"),
            "boom **** and ****"
        );
    }

    #[test]
    fn masking_touches_credential_fields_only() {
        let mut a = args();
        a.password = Some("127".into());
        a.user = Some("default".into());
        let t = resolve_with(&a, |_| None).unwrap();
        for text in [
            "cannot reach ClickHouse at http://127.0.0.1:18124",
            "the server refused user 'default': wrong password",
            "http://user@host:8123 and http:// and ://@ and x://a:b",
        ] {
            assert_eq!(t.redact(text), text);
        }
        assert_eq!(t.redact("x://a:b@h"), "x://a:****@h");
        assert_eq!(t.redact("x://a:b@c@h/p"), "x://a:****@h/p");
        assert_eq!(
            t.redact_everywhere("panic at 127.0.0.1"),
            "panic at ****.0.0.1"
        );
    }

    #[test]
    fn bad_urls_and_names_are_usage_errors() {
        for url in ["localhost:8123", "ftp://x", "http://", "not a url"] {
            let mut a = args();
            a.url = Some(url.into());
            let err = resolve_with(&a, |_| None).unwrap_err();
            let c = err.downcast_ref::<crate::failure::Classified>().unwrap();
            assert_eq!(c.exit_code, exit::USAGE, "{url}: {}", c.message);
        }
        for name in [
            "",
            "rv-bbit",
            "a;DROP TABLE x",
            "1abc",
            "db`",
            "über",
            &"x".repeat(129),
        ] {
            assert!(
                validate_identifier(name, "database name").is_err(),
                "{name:?}"
            );
        }
        for name in ["rvbbit", "_x1", "My_DB"] {
            assert!(
                validate_identifier(name, "database name").is_ok(),
                "{name:?}"
            );
        }
    }
}
