use anyhow::Context;
use clap::{Parser, Subcommand};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use surge::clock::SystemClock;
use surge::config::{Config, Overrides};

#[derive(Parser)]
#[command(name = "surge", version, about = "Real-time order management server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (defaults: 127.0.0.1:8080, data in ./data).
    Serve {
        /// A TOML file overriding config/default.toml.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<String>,
        /// Directory of the write-ahead log.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Run a flash-sale load against a server and check it never oversold.
    Loadgen(surge::loadgen::Options),
    /// Print a live feed's messages, one JSON object per line.
    Watch(surge::feedclient::WatchOptions),
    /// API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a new key: prints it once, then the config lines to paste
    /// (which hold only its SHA-256).
    New {
        /// Who holds the key; shown in logs and refusals instead of it.
        #[arg(long)]
        name: String,
        /// admin, storefront, warehouse:<id>, feed, feed:<topic prefix> or
        /// read; repeat for several.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            listen,
            data_dir,
        } => {
            let env: HashMap<String, String> = std::env::vars().collect();
            let config = Config::load(config.as_deref(), &env, &Overrides { listen, data_dir })?;
            surge::telemetry::init(
                &config.log,
                config.log_format,
                config.log_client_errors_per_s,
            );
            serve(config)
        }
        Command::Loadgen(options) => loadgen(options),
        Command::Watch(options) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(surge::feedclient::watch(options, std::io::stdout().lock())),
        Command::Keys(KeysCommand::New { name, scopes }) => {
            let (key, config) = surge::auth::new_key(&name, &scopes).map_err(anyhow::Error::msg)?;
            print!("{}", new_key_text(&key, &config));
            Ok(())
        }
    }
}

/// The key on the first line, alone; then TOML to paste (comments and one
/// `[[keys]]` table).
fn new_key_text(key: &str, config: &surge::auth::KeyConfig) -> String {
    format!(
        "{key}\n\n\
         # The key above is shown only now: give it to `{name}`, who sends it as\n\
         # `Authorization: Bearer <key>`. The server keeps only its SHA-256.\n\
         # Paste these lines at the end of the server's config file (or of its\n\
         # keys_file), or set SURGE_KEYS='[{inline}]',\n\
         # then restart the server.\n\
         {toml}",
        name = config.name,
        inline = config.to_inline_toml(),
        toml = config.to_toml(),
    )
}

/// Exits 1 when the run was set up but the oversell check failed.
fn loadgen(options: surge::loadgen::Options) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads.max(1))
        .enable_all()
        .build()?;
    let json = options.json.clone();
    let report = runtime.block_on(surge::loadgen::run(options))?;
    print!("{}", report.table());
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if !report.check.ok {
        std::process::exit(1);
    }
    Ok(())
}

fn serve(config: Config) -> anyhow::Result<()> {
    // Refuses a non-loopback address without keys before binding it or
    // opening the data directory (`server::run` checks again).
    if let Ok(addr) = config.listen.parse() {
        surge::api::auth::Guard::new(&config, addr)?;
    }
    let listener = std::net::TcpListener::bind(&config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let store = surge::server::open_store(&config)
        .with_context(|| format!("cannot open data directory {}", config.data_dir.display()))?;
    tracing::info!(listen = %config.listen, data_dir = %config.data_dir.display(), "surge serving");
    let bound = std::time::Duration::from_millis(config.shutdown_timeout_ms) + BACKSTOP_MARGIN;
    let shutdown = async move {
        shutdown_signal().await;
        arm_backstop(bound);
    };
    actix_rt::System::new().block_on(surge::server::run(
        listener,
        config,
        Arc::new(SystemClock::default()),
        store,
        shutdown,
    ))?;
    Ok(())
}

/// How long after `shutdown_timeout_ms` the backstop waits for the
/// orderly (already bounded) shutdown before it ends the process itself.
const BACKSTOP_MARGIN: std::time::Duration = std::time::Duration::from_millis(1000);

/// Ends the process with status 2 if it is still running `after` from now,
/// whatever it is stuck on.
fn arm_backstop(after: std::time::Duration) {
    let armed = std::thread::Builder::new()
        .name("surge-backstop".into())
        .spawn(move || {
            std::thread::sleep(after);
            tracing::error!("shutdown overran its bound; exiting now");
            std::process::exit(2);
        });
    if let Err(e) = armed {
        tracing::warn!(error = %e, "cannot start the shutdown backstop");
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
