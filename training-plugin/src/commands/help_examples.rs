//! Every example in a command's help is a command line that the command accepts.

use clap::{CommandFactory, Parser};

/// The words of a shell command line: single quotes group, `< file` is dropped.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                started = true;
            }
            ' ' if !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            _ => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    if let Some(at) = words.iter().position(|w| w == "<") {
        words.truncate(at);
    }
    words
}

/// The example command lines of `T`'s help that run `rvbbit training <name>`.
fn examples<T: CommandFactory>(name: &str) -> Vec<Vec<String>> {
    let help = T::command()
        .get_after_help()
        .map(|h| h.to_string())
        .unwrap_or_default();
    let prefix = format!("rvbbit training {name}");
    let found: Vec<Vec<String>> = help
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("rvbbit "))
        .map(|l| {
            assert!(
                l.starts_with(&prefix),
                "an example of {name} runs another command: {l}"
            );
            let mut argv = vec![format!("rvbbit training {name}")];
            argv.extend(words(&l[prefix.len()..]));
            argv
        })
        .collect();
    assert!(!found.is_empty(), "{name}'s help has no example");
    found
}

fn check<T: Parser + CommandFactory>(name: &str) {
    for argv in examples::<T>(name) {
        if let Err(e) = T::try_parse_from(&argv) {
            panic!("the example {argv:?} of {name} is refused: {e}");
        }
    }
}

#[test]
fn every_commands_examples_parse() {
    check::<super::annotate::Args>("annotate");
    check::<super::examples::Args>("examples");
    check::<super::migrate::Args>("migrate");
    check::<super::review::Args>("review");
    check::<super::stats::Args>("stats");
    check::<super::status::Args>("status");
    check::<super::test_annotation::Args>("test-annotation");
    check::<super::verify::Args>("verify");
}

#[test]
fn shell_words_are_split_as_a_shell_would() {
    assert_eq!(
        words(" a --notes 'wrong total' - < ids.txt"),
        vec!["a", "--notes", "wrong total", "-"]
    );
    assert_eq!(words("--tags ''"), vec!["--tags", ""]);
}
