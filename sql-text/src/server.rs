//! What a ClickHouse server says, read from its text: `version()` output and the
//! `Code: N` that starts every error message (old and new formats alike).

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Parses `version()` output such as `26.9.1.1` or `18.16.1`.
pub fn parse_version(text: &str) -> Option<Version> {
    let mut parts = text.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some(Version { major, minor })
}

/// The `Code: N` a ClickHouse error message starts with (any server version).
pub fn error_code(message: &str) -> Option<u32> {
    let rest = &message[message.find("Code: ")? + "Code: ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_compare() {
        assert_eq!(
            parse_version("26.9.1.1\n"),
            Some(Version {
                major: 26,
                minor: 9
            })
        );
        assert_eq!(
            parse_version("18.16.1"),
            Some(Version {
                major: 18,
                minor: 16
            })
        );
        assert_eq!(parse_version("<html>"), None);
        assert!(
            parse_version("18.16.1").unwrap()
                < Version {
                    major: 23,
                    minor: 8
                }
        );
        assert!(
            parse_version("23.8.1").unwrap()
                >= Version {
                    major: 23,
                    minor: 8
                }
        );
        assert!(
            parse_version("23.10.1").unwrap()
                > Version {
                    major: 23,
                    minor: 8
                },
            "minor compares as a number"
        );
    }

    #[test]
    fn error_codes_are_read_from_old_and_new_messages() {
        assert_eq!(
            error_code("Code: 516. DB::Exception: default: Authentication failed"),
            Some(516)
        );
        assert_eq!(
            error_code("Code: 193, e.displayText() = DB::Exception: Wrong password"),
            Some(193)
        );
        assert_eq!(error_code("bad response: 500 Internal Server Error"), None);
    }
}
