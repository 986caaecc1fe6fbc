//! The `outboxd` binary: parse the command line, run, exit. See `outboxd::cli`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = outboxd::cli::Cli::parse();
    outboxd::cli::init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(outboxd::cli::run(cli))
}
