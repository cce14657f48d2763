//! `postwerk`: the command line. `serve` runs the platform; the other commands
//! administer the store named in the configuration (they work while serve runs;
//! `restore` does not).
//!
//! This is the only place that turns errors into exit codes: 0 success, 1 failure,
//! 2 usage or configuration error.
//!
//! - `cli`: command-line definitions and the administrative commands.
//! - `serve`: `postwerk serve` (store, engine, HTTP API, SMTP listeners, graceful shutdown).
//! - `check`: `postwerk config check`.
//! - `keys`, `users`, `streams` (also `queue`), `gdpr`: those command groups, audited.
//! - `audience`: `contacts` (CSV import and export), `lists`, `imports`.
//! - `suppressions_csv`: `postwerk suppressions export|import` (CSV), audited.
//! - `backup`: `postwerk backup …` and `postwerk restore`.
//! - `listing`: the shared output of the `list` commands (table or `--json`).
//! - `progress`: progress bars on standard error.
//! - `panic`: the panic hook that keeps input out of panic messages.

mod audience;
mod backup;
mod check;
mod cli;
mod gdpr;
mod keys;
mod listing;
mod panic;
mod progress;
mod serve;
mod streams;
mod suppressions_csv;
mod users;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use postwerk_core::config::Config;

use cli::{Cli, Command};

fn main() -> ExitCode {
    panic::install();
    let cli = Cli::parse();
    if let Command::Bounce(b) = &cli.command {
        return cli::bounce(b);
    }
    init_logging();
    let config = match load_config(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("postwerk: {e:#}");
            return ExitCode::from(2);
        }
    };
    let unknown_env = postwerk_core::config::unknown_env_variables(std::env::vars());
    let checking = matches!(cli.command, Command::Config(cli::ConfigCommand::Check));
    if !checking {
        for (variable, closest) in &unknown_env {
            tracing::warn!(%variable, %closest, "unknown environment variable ignored");
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("postwerk: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if checking {
        return match runtime.block_on(check::run(&config, &unknown_env)) {
            true => ExitCode::SUCCESS,
            false => ExitCode::from(2),
        };
    }
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("postwerk: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve::serve(config).await,
        Command::Keys(k) => keys::run(k, config).await,
        Command::Users(u) => users::run(u, config).await,
        Command::Domains(d) => cli::domains(d, config).await,
        Command::Suppressions(c) => cli::suppressions(c, config).await,
        Command::Contacts(c) => audience::contacts(c, config).await,
        Command::Lists(l) => audience::lists(l, config).await,
        Command::Imports(i) => audience::imports(i, config).await,
        Command::Tenants(t) => cli::tenants(t, config).await,
        Command::Gdpr(g) => gdpr::run(g, config).await,
        Command::Streams(s) => streams::streams(s, config).await,
        Command::Queue(q) => streams::queue(q, config).await,
        Command::Backup(b) => backup::run(b, config).await,
        Command::Restore(r) => backup::restore(r, config).await,
        Command::Audit(cli::AuditCommand::Verify) => match cli::audit_verify(config).await {
            Ok(true) => Ok(()),
            Ok(false) => std::process::exit(1),
            Err(e) => Err(e),
        },
        Command::Config(_) | Command::Bounce(_) => Ok(()),
    }
}

/// Reads the configuration: `--config FILE` (or `POSTWERK_CONFIG`), else
/// `./postwerk.toml` if present, else defaults; then `POSTWERK_*` overrides.
fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    let default = PathBuf::from("postwerk.toml");
    let (text, origin) = match path {
        Some(p) => (
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
            Some(p),
        ),
        None if default.exists() => (
            std::fs::read_to_string(&default).context("cannot read postwerk.toml")?,
            Some(default.as_path()),
        ),
        None => (String::new(), None),
    };
    Config::from_toml(&text, std::env::vars()).with_context(|| match origin {
        Some(p) => format!("invalid configuration in {}", p.display()),
        None => "invalid configuration (environment)".to_string(),
    })
}

/// Logs to stderr: human-readable, or one JSON object per line with
/// `POSTWERK_LOG_FORMAT=json` (for log shippers). Either way log lines name messages and
/// recipients by id only, never an address or content.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("POSTWERK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if std::env::var("POSTWERK_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}
