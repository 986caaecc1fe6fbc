//! The command line: `outboxd run`, `check`, `status`, `slot drop` and `import-debezium`. Every
//! flag can also come from an environment variable (shown in `--help`). `--config` takes outboxd's
//! TOML or a Debezium connector's JSON ([`crate::debezium`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio::sync::watch;

use crate::config::{Config, Overrides};
use crate::debezium::{self, Imported};
use crate::metrics::{Health, Metrics};
use crate::pipeline::{self, Plan};

/// outboxd: relays transactional-outbox rows from PostgreSQL logical replication to Kafka.
#[derive(Debug, Parser)]
#[command(name = "outboxd", version, about, long_about = None)]
pub struct Cli {
    /// Log format: human-readable text or JSON lines. Level from RUST_LOG (default info).
    #[arg(
        long,
        value_enum,
        env = "OUTBOXD_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Relay outbox events to Kafka until SIGTERM/SIGINT.
    Run(CommonArgs),
    /// Preflight: check Postgres, the slot, the publication and Kafka; exit 0 only if all pass.
    Check(CommonArgs),
    /// Show the slot (active PID, confirmed LSN, lag in bytes) and the publication's tables.
    Status(CommonArgs),
    /// Manage the replication slot.
    Slot {
        #[command(subcommand)]
        command: SlotCommand,
    },
    /// Print the outboxd TOML equivalent to a Debezium connector's JSON configuration. Secrets
    /// (the database password, Kafka passwords) are left out.
    ImportDebezium(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The connector's configuration: its JSON (the Kafka Connect REST form {"name": ...,
    /// "config": {...}} or the config object alone), a Strimzi KafkaConnector resource or a
    /// Debezium Server application.properties.
    pub connector: PathBuf,
    /// The Kafka Connect worker's properties file (converters, bootstrap.servers, producer.*).
    #[arg(long, env = "OUTBOXD_WORKER_CONFIG")]
    pub worker_config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SlotCommand {
    /// Drop the replication slot (Postgres then frees the WAL it holds). Events not yet relayed
    /// from it are lost for outboxd; asks for confirmation unless --yes.
    Drop {
        #[command(flatten)]
        common: CommonArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct CommonArgs {
    /// The configuration file: outboxd's TOML, or a Debezium connector's configuration: its JSON
    /// (the Kafka Connect REST form {"name": ..., "config": {...}} or the config object alone), a
    /// Strimzi KafkaConnector resource (YAML) or a Debezium Server application.properties; told
    /// apart by content.
    #[arg(long, short, env = "OUTBOXD_CONFIG")]
    pub config: PathBuf,
    /// The Kafka Connect worker's properties file, with a Debezium connector JSON: its converters
    /// apply where the connector sets none, its bootstrap.servers and producer.* to the producer.
    #[arg(long, env = "OUTBOXD_WORKER_CONFIG")]
    pub worker_config: Option<PathBuf>,
    /// Kafka bootstrap servers; overrides kafka."bootstrap.servers" of the file.
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS")]
    pub kafka_bootstrap_servers: Option<String>,
    /// HOST:PORT for /metrics, /healthz and /readyz; overrides http.addr of the file.
    #[arg(long, env = "OUTBOXD_HTTP_ADDR")]
    pub http_addr: Option<String>,
    /// Taking over from Debezium: read the connector's stored offset (Kafka Connect's offsets
    /// topic or file, from --worker-config or `[takeover]`) and do not publish again what it says
    /// Debezium published. Sets takeover.enabled.
    #[arg(long, env = "OUTBOXD_TAKE_OVER_OFFSETS")]
    pub take_over_offsets: bool,
}

impl CommonArgs {
    /// Loads the file, applies the overrides and resolves the plan; also returns `http.addr`.
    fn load(&self) -> anyhow::Result<(Plan, Option<String>)> {
        let (mut config, from_connector) =
            load_config(&self.config, self.worker_config.as_deref())?;
        config.apply_overrides(&Overrides {
            kafka_bootstrap_servers: self.kafka_bootstrap_servers.clone(),
            http_addr: self.http_addr.clone(),
        });
        if self.take_over_offsets {
            config.takeover.enabled = true;
        }
        if from_connector && !config.kafka.contains_key("bootstrap.servers") {
            anyhow::bail!(
                "no Kafka bootstrap servers for the connector configuration {}: pass --kafka-bootstrap-servers (or set KAFKA_BOOTSTRAP_SERVERS), or give the Kafka Connect worker's properties file with --worker-config",
                self.config.display()
            );
        }
        let plan = Plan::from_config(&config)
            .with_context(|| format!("invalid configuration in {}", self.config.display()))?;
        Ok((plan, config.http.addr))
    }
}

/// Reads a configuration file: outboxd's TOML, or a Debezium connector's configuration (its
/// JSON, a Strimzi `KafkaConnector` resource, or a Debezium Server `application.properties`: told
/// apart by content, `debezium::forms`) with the worker's properties file. Returns the
/// configuration and whether it came from a connector. The connector's ignored keys and
/// differences are logged at warn.
pub fn load_config(path: &Path, worker: Option<&Path>) -> anyhow::Result<(Config, bool)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    if debezium::forms::detect(&text).is_none() {
        if let Some(worker) = worker {
            anyhow::bail!(
                "--worker-config {} applies only to a Debezium connector configuration, and {} is TOML",
                worker.display(),
                path.display()
            );
        }
        return Ok((Config::load(path)?, false));
    }
    let imported = import_connector(path, &text, worker, false)?;
    log_import(&imported);
    Ok((imported.config(), true))
}

/// Maps a connector's configuration (and the worker file) to outboxd's configuration, after
/// resolving the Kafka Connect config provider references (`${file:PATH:KEY}`, `${env:NAME}`) in
/// both. With `for_printing`, the secrets the TOML leaves out are not resolved (nor read).
fn import_connector(
    path: &Path,
    text: &str,
    worker: Option<&Path>,
    for_printing: bool,
) -> anyhow::Result<Imported> {
    use debezium::forms::{self, Form};
    let context = || {
        format!(
            "cannot use the Debezium connector configuration {}",
            path.display()
        )
    };
    let form = forms::detect(text).unwrap_or(Form::ConnectorJson);
    let worker_file = match worker {
        Some(w) => {
            if form == Form::DebeziumServer {
                anyhow::bail!(
                    "--worker-config {} does not apply to a Debezium Server configuration ({}): its producer and offset store are in the file itself",
                    w.display(),
                    path.display()
                );
            }
            let text = std::fs::read_to_string(w)
                .with_context(|| format!("cannot read worker config file {}", w.display()))?;
            Some(
                debezium::parse_properties(&text)
                    .with_context(|| format!("in worker config file {}", w.display()))?,
            )
        }
        None => None,
    };
    let (mut connector, worker) = match form {
        Form::ConnectorJson => (
            debezium::parse_connector_json(text).with_context(context)?,
            worker_file,
        ),
        Form::Strimzi | Form::DebeziumServer => {
            let unwrapped = if form == Form::Strimzi {
                forms::parse_strimzi(text)
            } else {
                forms::parse_debezium_server(text)
            }
            .with_context(context)?;
            if !unwrapped.ignored.is_empty() {
                tracing::warn!(
                    "{} keys outboxd has no use for: {}",
                    if form == Form::Strimzi {
                        "KafkaConnector"
                    } else {
                        "Debezium Server"
                    },
                    unwrapped.ignored.join(", ")
                );
            }
            for w in &unwrapped.warnings {
                tracing::warn!("{w}");
            }
            let worker = match (form, worker_file) {
                (Form::DebeziumServer, _) => Some(unwrapped.worker),
                (_, w) => w,
            };
            (
                unwrapped.connector.expect("a form unwraps to a connector"),
                worker,
            )
        }
    };
    let providers = debezium::config_providers(worker.as_ref());
    let env = |name: &str| std::env::var(name).ok();
    let read_file = |p: &str| std::fs::read_to_string(p);
    // For printing, secrets the TOML leaves out are neither resolved nor needed: a placeholder
    // stands in for them.
    let resolve = |values: &mut BTreeMap<String, String>, origin: &str| {
        if for_printing {
            for (key, value) in values.iter_mut() {
                if debezium::is_unprinted_secret(key) {
                    *value = "not-printed".into();
                }
            }
        }
        debezium::resolve_config_providers(values, origin, &providers, &env, &read_file)
    };
    // Only the worker keys outboxd uses are resolved (and needed).
    let worker = match worker {
        Some(w) => {
            let mut used: BTreeMap<String, String> = w
                .into_iter()
                .filter(|(k, _)| {
                    k == "bootstrap.servers"
                        || k.starts_with("producer.")
                        || k.starts_with("key.converter")
                        || k.starts_with("value.converter")
                        || k.starts_with("header.converter")
                        // Where the connector's offset is, for --take-over-offsets.
                        || k == "offset.storage.topic"
                        || k == "offset.storage.file.filename"
                })
                .collect();
            resolve(&mut used, " (worker file)").with_context(context)?;
            Some(used)
        }
        None => None,
    };
    resolve(&mut connector.config, "").with_context(context)?;
    debezium::import(&connector, worker.as_ref()).with_context(context)
}

/// One warning for the ignored keys (names only, never values), one per difference.
fn log_import(imported: &Imported) {
    if !imported.ignored_keys.is_empty() {
        tracing::warn!(
            "Debezium connector keys outboxd ignores (no effect on the records it publishes): {}",
            imported.ignored_keys.join(", ")
        );
    }
    for warning in &imported.warnings {
        tracing::warn!("Debezium connector configuration: {warning}");
    }
}

/// Sets up logging from the flags.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Runs the parsed command; returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Run(args) => run_relay(&args).await,
        Command::Check(args) => run_check(&args).await,
        Command::Status(args) => run_status(&args).await,
        Command::Slot {
            command: SlotCommand::Drop { common, yes },
        } => run_slot_drop(&common, yes).await,
        Command::ImportDebezium(args) => run_import(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let message = error_chain(&e);
            tracing::error!("{message}");
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run_relay(args: &CommonArgs) -> anyhow::Result<ExitCode> {
    let (plan, http_addr) = args.load()?;
    let metrics = Metrics::new();
    let health = Arc::new(Health::default());
    health.beat();
    let _http = match http_addr {
        Some(addr) => Some(
            crate::http::serve(&addr, metrics.clone(), health.clone())
                .await
                .with_context(|| format!("cannot listen on {addr} (http.addr / --http-addr)"))?,
        ),
        None => None,
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received, shutting down");
        let _ = shutdown_tx.send(true);
    });
    pipeline::run(&plan, shutdown_rx, metrics, health).await?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn run_check(args: &CommonArgs) -> anyhow::Result<ExitCode> {
    let (plan, _) = args.load()?;
    let results = crate::check::run_checks(&plan).await;
    let mut failed = 0;
    for r in &results {
        println!(
            "{}  {}: {}",
            if r.passed { "PASS" } else { "FAIL" },
            r.name,
            r.detail
        );
        if let Some(fix) = &r.fix {
            println!("      fix: {fix}");
        }
        failed += usize::from(!r.passed);
    }
    if failed == 0 {
        println!("all {} checks passed", results.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{failed} of {} checks failed", results.len());
        Ok(ExitCode::FAILURE)
    }
}

fn run_import(args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.connector)
        .with_context(|| format!("cannot read {}", args.connector.display()))?;
    if !debezium::looks_like_json(&text) {
        anyhow::bail!(
            "{} is not a connector JSON (it does not start with {{)",
            args.connector.display()
        );
    }
    let imported = import_connector(&args.connector, &text, args.worker_config.as_deref(), true)?;
    log_import(&imported);
    print!("{}", imported.to_toml());
    Ok(ExitCode::SUCCESS)
}

async fn run_status(args: &CommonArgs) -> anyhow::Result<ExitCode> {
    let (plan, _) = args.load()?;
    let client = plan.params.connect_sql().await?;
    let status = crate::admin::status(&client, &plan.setup.slot, &plan.setup.publication).await?;
    print!("{status}");
    Ok(ExitCode::SUCCESS)
}

async fn run_slot_drop(args: &CommonArgs, yes: bool) -> anyhow::Result<ExitCode> {
    let (plan, _) = args.load()?;
    let slot = &plan.setup.slot;
    if !yes {
        use std::io::{BufRead, Write};
        print!(
            "Drop replication slot {slot} on {}? Events not yet relayed from it will not be published. Type the slot name to confirm: ",
            plan.params.redacted_url()
        );
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != slot {
            println!("not dropped");
            return Ok(ExitCode::FAILURE);
        }
    }
    let client = plan.params.connect_sql().await?;
    match crate::admin::drop_slot(&client, slot).await {
        Ok(()) => println!("dropped replication slot {slot}"),
        // Already gone (dropped by hand, or lost in a failover): starting over still means
        // forgetting the position recorded for it.
        Err(crate::admin::DropError::Missing(_)) => {
            println!("replication slot {slot} does not exist")
        }
        Err(e) => return Err(e.into()),
    }
    forget_position(&plan).await;
    Ok(ExitCode::SUCCESS)
}

/// After `slot drop`: deletes the slot's recorded position (a tombstone in the offsets topic), so
/// that the slot outboxd creates next is not taken for one moved by someone else. A failure only
/// warns: the next start then stops with the moved-slot error, which says how to accept it.
async fn forget_position(plan: &Plan) {
    let topic = match (&plan.offsets, &plan.exactly_once) {
        (_, Some(eos)) => eos.offsets_topic.clone(),
        (Some(offsets), None) => offsets.topic.clone(),
        (None, None) => return,
    };
    let forgotten = async {
        let mut conn =
            crate::source::connection::ReplicationConnection::connect(&plan.params).await?;
        let system = conn.identify_system().await?;
        let key =
            crate::position::offsets_key(system.system_id, &plan.params.dbname, &plan.setup.slot);
        let (producer, t, k) = (plan.producer.clone(), topic.clone(), key.clone());
        tokio::task::spawn_blocking(move || {
            crate::sink::offsets::forget_position(&producer, &t, &k, Duration::from_secs(10))
        })
        .await??;
        anyhow::Ok(key)
    };
    match forgotten.await {
        Ok(key) => println!("forgot its recorded position (tombstone for {key} in {topic})"),
        Err(e) => eprintln!(
            "warning: the slot's recorded position in {topic} was not deleted ({}); the next start stops saying the slot is ahead of it: accept the new slot's position then with offsets.accept_slot_position",
            error_chain(&e)
        ),
    }
}

/// The error and its causes, `: `-separated, leaving out a cause whose text an outer message
/// already includes (many of our errors embed their cause's text).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chain_leaves_out_repeated_causes() {
        let inner = std::io::Error::other("connection refused");
        let e = anyhow::Error::new(inner).context("Postgres: connection refused");
        let e = e.context("invalid configuration in x.toml");
        assert_eq!(
            error_chain(&e),
            "invalid configuration in x.toml: Postgres: connection refused"
        );
    }
}
