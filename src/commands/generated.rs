//! `kafkasnap completions SHELL` and `kafkasnap man`: the shell completion script and the man
//! page, generated from the command-line definition so they never drift from `--help`.

use super::Outcome;
use crate::cli::definition;

pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<Outcome> {
    let mut command = definition();
    clap_complete::generate(shell, &mut command, "kafkasnap", &mut std::io::stdout());
    Ok(Outcome::Success)
}

pub fn man_page() -> anyhow::Result<Outcome> {
    clap_mangen::Man::new(definition()).render(&mut std::io::stdout())?;
    Ok(Outcome::Success)
}
