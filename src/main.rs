//! The kafkasnap binary: parse arguments, set up logging, run a command, and turn the
//! outcome into an exit code. Nothing else lives here.

mod cli;
mod commands;

use std::process::ExitCode;

use commands::{
    exit_code, Outcome, EXIT_FAILURE, EXIT_INVALID, EXIT_PROBLEMS_FOUND, EXIT_SHARD_RUN_WAITING,
};

fn main() -> ExitCode {
    limit_heap_fragmentation();
    let cli = match cli::Cli::parse_with_env() {
        Ok(cli) => cli,
        Err(err) => exit_on_usage_error(err),
    };
    init_logging(&cli.log_level);
    let json_output = cli.output == cli::OutputFormat::Json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let result = runtime.block_on(commands::run(cli));
    let code = match &result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::ProblemsFound) => ExitCode::from(EXIT_PROBLEMS_FOUND),
        Ok(Outcome::ShardRunWaiting) => ExitCode::from(EXIT_SHARD_RUN_WAITING),
        Err(err) if is_broken_pipe(err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            let code = exit_code(err);
            if json_output {
                println!("{}", commands::json_error(err, code));
            }
            ExitCode::from(code)
        }
    };
    match result {
        Ok(_) => drop(runtime),
        // A command that stopped early may leave a blocking call running (an rdkafka request
        // to a broker that never answers): dropping the runtime would wait for it.
        Err(_) => runtime.shutdown_background(),
    }
    code
}

/// Prints a command line clap rejected (or `--help`, `--version`) and exits: the text on
/// stderr (help on stdout), and with `--output json` an error also as a JSON object on
/// stdout, as any other failure.
fn exit_on_usage_error(err: clap::Error) -> ! {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if err.use_stderr() && cli::json_output_requested(&args, |name| std::env::var(name).ok()) {
        let message = anyhow::Error::msg(cli::usage_error_message(&err));
        println!("{}", commands::json_error(&message, EXIT_INVALID));
    }
    err.exit()
}

/// Segments are multi-MiB buffers allocated and freed on many threads. glibc's default
/// raises its mmap threshold after each such free, so they end up in per-thread heaps that
/// fragment and grow with the amount of data. A fixed threshold keeps them mmapped and
/// returned to the system on free, so memory stays bounded by segment size x parallelism.
fn limit_heap_fragmentation() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(kafkasnap::progress::log_writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// `kafkasnap cat ... | head` closing the pipe early is not a failure.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
