//! The list flags (`--include`, `--exclude`, `--topic-map`) from their environment
//! variables: read after parsing, only when the flag was not given, and split at commas
//! there (clap's `value_delimiter` would split the command line's values too).

use super::{parse_key_value, Cli, Command};

impl Cli {
    /// Fills `--include`, `--exclude` and `--topic-map` from `KAFKASNAP_INCLUDE`,
    /// `KAFKASNAP_EXCLUDE` and `KAFKASNAP_TOPIC_MAP` (looked up with `env`) when the command
    /// has the flag and it was not given.
    pub(super) fn lists_from_env(
        &mut self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(), String> {
        let (selection, topic_map) = match &mut self.command {
            Command::Backup(args) => (Some(args.selection.lists()), None),
            Command::Restore(args) => (Some(args.selection.lists()), Some(&mut args.topic_map)),
            // Verify selects topics only for --against.
            Command::Verify(args) => {
                let selection = args
                    .against
                    .is_some()
                    .then_some((&mut args.include, &mut args.exclude));
                (selection, Some(&mut args.topic_map))
            }
            Command::Drill(args) => (Some(args.selection.lists()), None),
            _ => (None, None),
        };
        let plain = |item: &str| Ok(item.to_string());
        if let Some((include, exclude)) = selection {
            fill_from_env(include, "KAFKASNAP_INCLUDE", &env, plain)?;
            fill_from_env(exclude, "KAFKASNAP_EXCLUDE", &env, plain)?;
        }
        if let Some(topic_map) = topic_map {
            fill_from_env(topic_map, "KAFKASNAP_TOPIC_MAP", &env, parse_key_value)?;
        }
        Ok(())
    }
}

impl super::SelectionArgs {
    /// `--include` and `--exclude`.
    fn lists(&mut self) -> (&mut Vec<String>, &mut Vec<String>) {
        (&mut self.include, &mut self.exclude)
    }
}

/// Sets `list`, when empty (the flag was not given), to the comma-separated items of
/// environment variable `name`, each parsed by `parse`. Blank items are left out.
fn fill_from_env<T>(
    list: &mut Vec<T>,
    name: &str,
    env: &impl Fn(&str) -> Option<String>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<(), String> {
    if !list.is_empty() {
        return Ok(());
    }
    let Some(value) = env(name) else {
        return Ok(());
    };
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        list.push(parse(item).map_err(|err| format!("invalid value {item:?} in {name}: {err}"))?);
    }
    Ok(())
}

/// An empty `KAFKASNAP_*` variable counts as unset (a ConfigMap's `KAFKASNAP_KEY_FILE: ""`
/// means no key), instead of clap's "a value is required". Called first thing in `main`,
/// before any thread exists, as `remove_var` requires.
pub(super) fn unset_empty_kafkasnap_vars() {
    let empty: Vec<std::ffi::OsString> = std::env::vars_os()
        .filter(|(name, value)| {
            name.to_str().is_some_and(|n| n.starts_with("KAFKASNAP_")) && value.is_empty()
        })
        .map(|(name, _)| name)
        .collect();
    for name in empty {
        std::env::remove_var(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str], env: &[(&str, &str)]) -> Result<Cli, String> {
        use clap::Parser;
        let mut cli = Cli::try_parse_from(args).map_err(|e| e.to_string())?;
        cli.lists_from_env(|name| {
            env.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })?;
        Ok(cli)
    }

    #[test]
    fn only_the_environment_is_split_at_commas() {
        let env = [
            ("KAFKASNAP_INCLUDE", "a.*, b,,"),
            ("KAFKASNAP_EXCLUDE", "x"),
            ("KAFKASNAP_TOPIC_MAP", "a=b,c=d"),
        ];
        let backup = ["kafkasnap", "backup", "-b", "k:9092", "--to", "/tmp/x"];
        let Command::Backup(args) = parsed(&backup, &env).unwrap().command else {
            unreachable!()
        };
        assert_eq!(args.selection.include, ["a.*", "b"]);
        assert_eq!(args.selection.exclude, ["x"]);

        let given = [
            &backup[..],
            &["--include", "o{1,2}rder.*", "--include", "c"],
        ]
        .concat();
        let Command::Backup(args) = parsed(&given, &env).unwrap().command else {
            unreachable!()
        };
        assert_eq!(args.selection.include, ["o{1,2}rder.*", "c"]);
        assert_eq!(args.selection.exclude, ["x"]);

        let restore = ["kafkasnap", "restore", "-b", "k", "--from", "/x"];
        let Command::Restore(args) = parsed(&restore, &env).unwrap().command else {
            unreachable!()
        };
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(args.topic_map, pairs(&[("a", "b"), ("c", "d")]));
        assert_eq!(args.selection.include, ["a.*", "b"]);

        let verify = ["kafkasnap", "verify", "/x", "--topic-map", "a=x,y"];
        let Command::Verify(args) = parsed(&verify, &env).unwrap().command else {
            unreachable!()
        };
        assert_eq!(args.topic_map, pairs(&[("a", "x,y")]));
        assert!(
            args.include.is_empty(),
            "verify selects topics only with --against"
        );
        let against = ["kafkasnap", "verify", "/x", "--against", "k:9092"];
        let Command::Verify(args) = parsed(&against, &env).unwrap().command else {
            unreachable!()
        };
        assert_eq!(
            (args.include, args.exclude),
            (vec!["a.*".into(), "b".into()], vec!["x".into()])
        );

        let err = parsed(&restore, &[("KAFKASNAP_TOPIC_MAP", "a=b,oops")])
            .err()
            .unwrap();
        assert_eq!(
            err,
            "invalid value \"oops\" in KAFKASNAP_TOPIC_MAP: expected KEY=VALUE"
        );
    }
}
