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
/// `N` is written as ClickHouse writes it, without leading zeros: `Code: 0516` is no code.
/// Only a `Code: ` that starts a word counts (`StatusCode: 516` is not an error code).
pub fn error_code(message: &str) -> Option<u32> {
    let start = message.match_indices("Code: ").map(|(i, _)| i).find(|&i| {
        !message[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })?;
    let rest = &message[start + "Code: ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
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
        assert_eq!(error_code("Code: 0. DB::Exception: OK"), Some(0));
    }

    #[test]
    fn only_a_code_that_starts_a_word_counts() {
        assert_eq!(error_code("StatusCode: 516"), None);
        assert_eq!(
            error_code("HTTP StatusCode: 502; Code: 60. DB::Exception: x"),
            Some(60)
        );
        assert_eq!(error_code("(Code: 81) gone"), Some(81));
    }

    #[test]
    fn error_codes_with_leading_zeros_are_not_codes() {
        // Found by fuzzing: "Code: 0000020000" read as 20000, a code the text does not say.
        assert_eq!(error_code("Code: 0000020000. DB::w"), None);
        assert_eq!(error_code("Code: 0516. DB::Exception: x"), None);
    }
}
