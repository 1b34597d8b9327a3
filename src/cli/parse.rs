//! Reading the command line: the definition with each global option offered (in `--help`,
//! completions and the man page) and accepted only by the commands it does something for,
//! the list flags from the environment, and what a usage error says (also as JSON with
//! `--output json`).

use std::ffi::OsString;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use super::Cli;

/// The global options, by clap id, with what each one is for.
const GLOBAL_FLAGS: [(&str, &str, &str); 4] = [
    ("output", "--output", "it prints no result to format"),
    (
        "no_progress",
        "--no-progress",
        "it shows no progress (backup, restore and drill do)",
    ),
    ("log_level", "--log-level", "it logs nothing"),
    (
        "store_retry_timeout",
        "--store-retry-timeout",
        "it reads no object store",
    ),
];

/// The global options (clap ids) that do nothing for the command at `path` (e.g.
/// `["datadir", "inspect"]`): it does not offer them and refuses them on the command line.
/// Their environment variables stay harmless everywhere, as one ConfigMap serves every command.
fn unused_global_options(path: &[&str]) -> &'static [&'static str] {
    match path {
        ["completions"] | ["man"] => &["output", "no_progress", "log_level", "store_retry_timeout"],
        ["backup"] | ["restore"] | ["drill"] => &[],
        ["datadir", "inspect"] => &["no_progress", "store_retry_timeout"],
        _ => &["no_progress"],
    }
}

/// The command-line definition: [`Cli`], with the global options each subcommand does not
/// use hidden from its help. Completions and the man page are generated from it too.
pub fn definition() -> clap::Command {
    let command = Cli::command();
    let globals: Vec<clap::Arg> = command
        .get_arguments()
        .filter(|arg| arg.is_global_set())
        .cloned()
        .collect();
    hide_unused(command, &globals, &mut Vec::new())
}

/// Gives each leaf subcommand below `command` a hidden, non-global copy of every global
/// option it does not use: clap then propagates the global one to it no more (and the copy
/// parses as the original did, for [`refuse_unused_global_options`] to refuse it).
fn hide_unused(
    mut command: clap::Command,
    globals: &[clap::Arg],
    path: &mut Vec<String>,
) -> clap::Command {
    let names: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_string())
        .collect();
    for name in names {
        path.push(name.clone());
        command = command.mut_subcommand(&name, |sub| hide_unused(sub, globals, path));
        path.pop();
    }
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    if path.is_empty() || command.has_subcommands() {
        return command;
    }
    for arg in globals {
        if unused_global_options(&path).contains(&arg.get_id().as_str()) {
            command = command.arg(arg.clone().global(false).hide(true));
        }
    }
    command
}

impl Cli {
    /// The command line, with the list flags that were not given filled from their
    /// environment variables. A usage error (exit code 2) is returned for the caller to
    /// print; `--help` and `--version` come back as "errors" too (exit code 0).
    pub fn parse_with_env() -> Result<Cli, clap::Error> {
        super::env_lists::unset_empty_kafkasnap_vars();
        Cli::parse_from_env(std::env::args_os(), |name| std::env::var(name).ok())
    }

    /// [`Cli::parse_with_env`] for `args`, with environment lookups through `env`.
    pub(super) fn parse_from_env(
        args: impl IntoIterator<Item = OsString>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Cli, clap::Error> {
        let mut command = definition();
        let matches = command.try_get_matches_from_mut(args)?;
        refuse_unused_global_options(&matches, &mut command)?;
        let mut cli = Cli::from_arg_matches(&matches).map_err(|err| err.format(&mut command))?;
        cli.lists_from_env(env)
            .map_err(|message| command.error(ErrorKind::ValueValidation, message))?;
        Ok(cli)
    }
}

/// A global option given on the command line to a command it does nothing for is refused
/// (exit code 2), naming why.
fn refuse_unused_global_options(
    matches: &ArgMatches,
    command: &mut clap::Command,
) -> Result<(), clap::Error> {
    let mut path = Vec::new();
    let mut leaf = matches;
    while let Some((name, sub)) = leaf.subcommand() {
        path.push(name);
        leaf = sub;
    }
    let unused = unused_global_options(&path);
    for (id, flag, reason) in GLOBAL_FLAGS {
        let given = leaf.try_contains_id(id).unwrap_or(false)
            && leaf.value_source(id) == Some(ValueSource::CommandLine);
        if given && unused.contains(&id) {
            return Err(command.error(
                ErrorKind::ArgumentConflict,
                format!(
                    "{flag} does nothing for `kafkasnap {}`: {reason}; leave it out",
                    path.join(" ")
                ),
            ));
        }
    }
    Ok(())
}

/// Whether the command line (or `KAFKASNAP_OUTPUT`) asks for JSON output; read from the raw
/// arguments, as it is wanted when they could not be parsed.
pub fn json_output_requested(args: &[OsString], env: impl Fn(&str) -> Option<String>) -> bool {
    let mut wanted = env("KAFKASNAP_OUTPUT").map(|value| value == "json");
    let mut args = args.iter().skip(1).map(|arg| arg.to_string_lossy());
    while let Some(arg) = args.next() {
        let value = match arg.as_ref() {
            "--" => break,
            "-o" | "--output" => args.next().map(|value| value.into_owned()),
            other => other
                .strip_prefix("--output=")
                .or_else(|| other.strip_prefix("-o"))
                .map(|value| value.strip_prefix('=').unwrap_or(value).to_string()),
        };
        if let Some(value) = value {
            wanted = Some(value == "json");
        }
    }
    wanted.unwrap_or(false)
}

/// A usage error as one line: clap's message, with its tip if it gave one.
pub fn usage_error_message(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let mut lines = rendered.lines().map(str::trim);
    let first = lines.next().unwrap_or_default();
    let message = first.strip_prefix("error: ").unwrap_or(first).to_string();
    match lines.find_map(|line| line.strip_prefix("tip: ")) {
        Some(tip) => format!("{message} ({tip})"),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &str) -> Result<Cli, clap::Error> {
        let args = std::iter::once("kafkasnap")
            .chain(args.split_whitespace())
            .map(OsString::from);
        Cli::parse_from_env(args, |_| None)
    }

    #[test]
    fn global_options_are_refused_where_they_do_nothing() {
        for ok in [
            "--no-progress backup -b k:9092 --to /x",
            "restore -b k:9092 --from /x --no-progress",
            "-o json ls /x",
            "ls /x --log-level debug --store-retry-timeout 10s",
            "datadir inspect /x -o json --log-level warn",
            "completions bash",
        ] {
            assert!(parse(ok).is_ok(), "{ok}: {}", parse(ok).err().unwrap());
        }
        for (refused, message) in [
            ("--no-progress ls /x", "--no-progress does nothing for `kafkasnap ls`: it shows no progress"),
            ("verify /x --no-progress", "--no-progress does nothing for `kafkasnap verify`"),
            ("completions bash -o json", "--output does nothing for `kafkasnap completions`"),
            ("--log-level debug man", "--log-level does nothing for `kafkasnap man`"),
            (
                "datadir inspect /x --store-retry-timeout 1m",
                "--store-retry-timeout does nothing for `kafkasnap datadir inspect`: it reads no object store",
            ),
        ] {
            let err = parse(refused).expect_err(refused);
            assert_eq!(err.exit_code(), 2, "{refused}");
            assert!(err.to_string().contains(message), "{refused}: {err}");
        }
    }

    #[test]
    fn help_lists_global_options_only_where_they_do_something() {
        definition().debug_assert();
        let help = |path: &[&str]| {
            let mut command = definition();
            command.build();
            let mut sub = &mut command;
            for name in path {
                sub = sub.find_subcommand_mut(name).unwrap();
            }
            sub.render_help().to_string()
        };
        let top = help(&[]);
        assert!(top.contains("Global options:"), "{top}");
        for flag in [
            "--output",
            "--no-progress",
            "--log-level",
            "--store-retry-timeout",
        ] {
            assert!(top.contains(flag), "{flag}: {top}");
        }
        let backup = help(&["backup"]);
        assert!(backup.contains("Global options:") && backup.contains("--no-progress"));
        let ls = help(&["ls"]);
        assert!(
            ls.contains("--output") && !ls.contains("--no-progress"),
            "{ls}"
        );
        let inspect = help(&["datadir", "inspect"]);
        assert!(!inspect.contains("--store-retry-timeout"), "{inspect}");
        let completions = help(&["completions"]);
        assert!(!completions.contains("Global options"), "{completions}");
    }

    #[test]
    fn json_output_is_found_in_arguments_that_do_not_parse() {
        let requested = |args: &str, env: Option<&str>| {
            let args: Vec<OsString> = args.split_whitespace().map(OsString::from).collect();
            json_output_requested(&args, |_| env.map(str::to_string))
        };
        assert!(requested("kafkasnap ls --bogus -o json", None));
        assert!(requested("kafkasnap --output=json ls", None));
        assert!(requested("kafkasnap -ojson ls", None));
        assert!(requested("kafkasnap -o=json ls", None));
        assert!(requested("kafkasnap ls --bogus", Some("json")));
        assert!(!requested("kafkasnap ls --bogus -o text", Some("json")));
        assert!(!requested("kafkasnap ls --bogus", None));
        assert!(!requested("kafkasnap cat /x -- -o json", None));
    }

    #[test]
    fn usage_errors_are_one_line_with_the_tip() {
        let err = parse("ls /x --bakup latest").err().unwrap();
        let message = usage_error_message(&err);
        assert!(
            message.starts_with("unexpected argument '--bakup' found"),
            "{message}"
        );
        assert!(!message.contains('\n'), "{message}");
    }
}
