//! A plugin command's declared [`Signature`] as clap arguments of the host's command
//! tree, so `--help` listings and completion scripts know its flags, options and their
//! values. The plugin still parses its own arguments; these only describe them.

use clap::builder::PossibleValuesParser;
use clap::{Arg, ArgAction};
use rvbbit_plugin_api::signature::{Kind, Signature};
use std::collections::HashSet;

/// Adds the arguments of `signature` to `command`. An argument clap could not take
/// (a name, flag or letter already used, `--help`, a list of values before the last
/// positional) is left out rather than trusted: the signature comes from a plugin.
pub fn add_args(mut command: clap::Command, signature: &Signature) -> clap::Command {
    let mut ids: HashSet<&str> = HashSet::new();
    let mut longs: HashSet<&str> = HashSet::from(["help", "version"]);
    let mut shorts: HashSet<char> = HashSet::from(['h', 'V']);
    let last_positional = signature
        .args
        .iter()
        .rposition(|a| a.positional || (a.long.is_none() && a.short.is_none()));
    for (index, declared) in signature.args.iter().enumerate() {
        let positional =
            declared.positional || (declared.long.is_none() && declared.short.is_none());
        if !ids.insert(declared.id.as_str())
            || declared.long.as_deref().is_some_and(|l| !longs.insert(l))
            || declared.short.is_some_and(|s| !shorts.insert(s))
        {
            continue;
        }
        let mut arg = Arg::new(declared.id.clone()).hide(declared.hidden);
        if !positional {
            if let Some(long) = &declared.long {
                arg = arg.long(long.clone());
            }
            if let Some(short) = declared.short {
                arg = arg.short(short);
            }
        }
        if let Some(help) = &declared.help {
            arg = arg.help(help.clone());
        }
        arg = match declared.kind {
            Kind::Flag if !positional => arg.action(ArgAction::SetTrue),
            Kind::Count if !positional => arg.action(ArgAction::Count),
            kind => {
                let many = kind == Kind::Append && (!positional || Some(index) == last_positional);
                let mut arg = if many {
                    let arg = arg.action(ArgAction::Append);
                    if positional {
                        arg.num_args(1..)
                    } else {
                        arg
                    }
                } else {
                    arg.action(ArgAction::Set)
                };
                if let Some(name) = &declared.value_name {
                    arg = arg.value_name(name.clone());
                }
                if !declared.possible_values.is_empty() {
                    arg = arg.value_parser(PossibleValuesParser::new(
                        declared.possible_values.iter().cloned(),
                    ));
                }
                arg
            }
        };
        command = command.arg(arg);
    }
    command
}

#[cfg(test)]
mod tests {
    use super::add_args;
    use rvbbit_plugin_api::signature::{Argument, Kind, Signature, FORMAT};

    #[test]
    fn declared_arguments_become_clap_arguments_and_clashes_are_left_out() {
        let arg = |id: &str, long: Option<&str>, kind| Argument {
            id: id.into(),
            long: long.map(String::from),
            kind,
            positional: long.is_none(),
            ..Argument::default()
        };
        let signature = Signature {
            format: FORMAT,
            args: vec![
                arg("dry_run", Some("dry-run"), Kind::Flag),
                arg("again", Some("dry-run"), Kind::Flag),
                arg("help", Some("help"), Kind::Flag),
                arg("ids", None, Kind::Append),
                arg("last", None, Kind::Value),
            ],
        };
        let mut command = add_args(clap::Command::new("migrate"), &signature);
        command.build();
        let ids: Vec<&str> = command
            .get_arguments()
            .map(|a| a.get_id().as_str())
            .collect();
        assert!(ids.contains(&"dry_run") && ids.contains(&"ids") && ids.contains(&"last"));
        assert!(!ids.contains(&"again"), "{ids:?}");
        let matches = command
            .try_get_matches_from(["migrate", "--dry-run", "a", "b"])
            .expect("parses");
        assert!(matches.get_flag("dry_run"));
    }
}
