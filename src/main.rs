//! The `outboxd` binary: parse the command line, run, exit. See `outboxd::cli`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = outboxd::cli::Cli::parse();
    outboxd::cli::init_logging(cli.log_format);
    // One thread runs the relay and polls its sockets: an event read from the walsender is
    // decoded, routed and enqueued on the thread that saw it arrive, without waking another
    // (librdkafka has its own threads; blocking work goes to tokio's blocking pool).
    let runtime = match tokio::runtime::Builder::new_current_thread()
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
