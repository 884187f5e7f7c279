//! The `marquee` command: composes the services. Embedded by default (`marquee serve`: one
//! process, one SQLite file); each service can also run alone against a shared database.

mod bench;
mod reporting;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use marquee_command_api::CommandState;
use marquee_command_api::access::{Auth, RateLimits};
use marquee_command_api::engine::{CommandMode, EngineOptions};
use marquee_payments::TestGateway;
use marquee_projector::{JetStreamSource, LeaseConfig, Projector, ReadModels};
use marquee_query_api::QueryState;
use marquee_scheduler::{Scheduler, SchedulerConfig};
use marquee_store::EventStore;
use tokio::sync::watch;

/// Marquee: an event-sourced event management backend.
#[derive(Debug, Parser)]
#[command(name = "marquee", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Run everything in one process: command API, projector and query API (embedded default).
    Serve(Box<ServeArgs>),
    /// Run only the command API (writes), with its scheduler (timed commands and refunds).
    CommandApi(CommandApiArgs),
    /// Run only the projector (folds the log into read models; from JetStream when `NATS_URL`
    /// is set). Any number may run: a lease lets one apply at a time, the others stand by.
    Projector(ProjectorArgs),
    /// Run only the query API (reads).
    QueryApi(QueryApiArgs),
    /// Run only the relay: publishes the log to NATS JetStream (needs `NATS_URL`).
    Relay(RelayArgs),
    /// Run only the scheduler: expires holds and offers when due and carries out refunds (also
    /// inside `serve` and `command-api`). Any number may run: on Postgres one acts at a time
    /// (advisory lock), the others stand by.
    Scheduler(SchedulerArgs),
    /// Run only the notifier: e-mail to attendees and signed webhooks to organizers (also
    /// inside `serve`). Any number may run: each notification is sent once whoever sends it.
    Notifier(NotifierArgs),
    /// Manage projections (the read models).
    #[command(subcommand)]
    Projections(ProjectionsAction),
    /// Measure the store and the command side (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(bench::Bench),
    /// Write the log as NDJSON, one fact per line in position order (the format of `/v1/log`),
    /// to stdout or a file; streamed page by page.
    Export(reporting::ExportArgs),
    /// Build a standalone SQLite file with every read model, from the configured log or from an
    /// export (`--from`).
    Replay(reporting::ReplayArgs),
}

/// What `marquee projections` does.
#[derive(Debug, Subcommand)]
enum ProjectionsAction {
    /// Rebuild read models from the log into shadow tables while the query API keeps serving
    /// the old ones, then swap them in atomically. Safe while `marquee serve` or the
    /// distributed projectors run against the same database: they pause for the swap and resume
    /// from where the rebuild left off.
    Rebuild(RebuildArgs),
}

#[derive(Debug, Args)]
struct RebuildArgs {
    /// Projection to rebuild; default: every one (today only `read_models`).
    name: Option<String>,
    #[command(flatten)]
    storage: StorageArgs,
    /// Facts read per page and applied per transaction.
    #[arg(long, env = "MARQUEE_REBUILD_BATCH_SIZE", default_value_t = 5_000)]
    batch_size: usize,
}

/// Where the log and read models live.
#[derive(Debug, Clone, Args)]
struct StorageArgs {
    /// Directory for the embedded SQLite database (used when no database URL is given).
    #[arg(long, env = "MARQUEE_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// `sqlite://PATH`, `postgres://…` or `memory:`. Default: `sqlite://<data-dir>/marquee.db`.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// The command side snapshots an aggregate every this many facts (0: never). Snapshots are
    /// a cache: any value gives the same answers, only loading long streams gets cheaper.
    #[arg(long, env = "MARQUEE_SNAPSHOT_EVERY", default_value_t = marquee_store::DEFAULT_SNAPSHOT_EVERY)]
    snapshot_every: u64,
}

impl StorageArgs {
    fn url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("marquee.db").display()))
    }
}

/// Where NATS JetStream is, for distributed mode.
#[derive(Debug, Clone, Args)]
struct NatsArgs {
    /// NATS server with JetStream. When set, `serve` also runs the relay.
    #[arg(long, env = "NATS_URL")]
    nats_url: Option<String>,
    /// JetStream stream the relay publishes facts to.
    #[arg(long, env = "MARQUEE_NATS_STREAM", default_value = "MARQUEE_FACTS")]
    nats_stream: String,
    /// Subjects are `<prefix>.<aggregate>.<id>`.
    #[arg(
        long,
        env = "MARQUEE_NATS_SUBJECT_PREFIX",
        default_value = "marquee.facts"
    )]
    nats_subject_prefix: String,
}

impl NatsArgs {
    fn relay_config(&self) -> Option<marquee_relay::RelayConfig> {
        let url = self.nats_url.as_ref()?;
        let mut config = marquee_relay::RelayConfig::new(url.clone());
        config.stream_name = self.nats_stream.clone();
        config.subject_prefix = self.nats_subject_prefix.clone();
        Some(config)
    }
}

#[derive(Debug, Args)]
struct ProjectorArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    nats: NatsArgs,
    /// Durable JetStream consumer name shared by all projector replicas.
    #[arg(
        long,
        env = "MARQUEE_PROJECTOR_DURABLE",
        default_value = "marquee-projector"
    )]
    durable: String,
    /// This replica's lease holder id (e.g. the pod name); default: unique per process.
    #[arg(long, env = "MARQUEE_PROJECTOR_ID")]
    projector_id: Option<String>,
}

/// How payments are taken.
#[derive(Debug, Clone, Args)]
struct PaymentArgs {
    /// The payment gateway. Only `test` is built in: deterministic outcomes by card number
    /// (see the README); its ledger lives in the process's memory.
    #[arg(long, env = "MARQUEE_PAYMENT_GATEWAY", default_value = "test")]
    payment_gateway: String,
    /// Shared secret of the provider's signed payment webhooks (HMAC-SHA256). With the `test`
    /// gateway and no secret, a random one is made per process (the test gateway's settle
    /// route signs with it); other gateways refuse webhooks without it.
    #[arg(long, env = "MARQUEE_PAYMENT_WEBHOOK_SECRET", hide_env_values = true)]
    payment_webhook_secret: Option<String>,
}

impl PaymentArgs {
    /// The gateway in use and the webhook secret.
    fn gateway(&self) -> anyhow::Result<(Arc<TestGateway>, Vec<u8>)> {
        if self.payment_gateway != "test" {
            anyhow::bail!(
                "unknown payment gateway `{}`; the only built-in gateway is `test`",
                self.payment_gateway
            );
        }
        let secret = match &self.payment_webhook_secret {
            Some(secret) if !secret.is_empty() => secret.as_bytes().to_vec(),
            _ => {
                tracing::info!(
                    "no MARQUEE_PAYMENT_WEBHOOK_SECRET: using a random secret for this process (test gateway)"
                );
                format!(
                    "{:032x}{:032x}",
                    rand::random::<u128>(),
                    rand::random::<u128>()
                )
                .into_bytes()
            }
        };
        Ok((Arc::new(TestGateway::new()), secret))
    }
}

/// Accounts: the first owner and the rate limits.
#[derive(Debug, Clone, Args)]
struct AuthArgs {
    /// E-mail address of the owner account made on first run (when no account exists yet).
    #[arg(
        long,
        env = "MARQUEE_ADMIN_EMAIL",
        default_value = "admin@marquee.local"
    )]
    admin_email: String,
    /// Its password; without one, a random password is written to `<data-dir>/admin-password`.
    #[arg(long, env = "MARQUEE_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// Sign-up and sign-in attempts allowed per client address per minute (0: no limit).
    #[arg(
        long,
        env = "MARQUEE_RATE_LIMIT_SIGN_IN_PER_MINUTE",
        default_value_t = 20
    )]
    rate_limit_sign_in_per_minute: u32,
    /// Commands allowed per second per account or API token (0: no limit).
    #[arg(
        long,
        env = "MARQUEE_RATE_LIMIT_COMMANDS_PER_SECOND",
        default_value_t = 50
    )]
    rate_limit_commands_per_second: u32,
    /// Commands allowed per second per client address (0: no limit).
    #[arg(
        long,
        env = "MARQUEE_RATE_LIMIT_COMMANDS_PER_SECOND_PER_ADDRESS",
        default_value_t = 500
    )]
    rate_limit_commands_per_second_per_address: u32,
}

impl AuthArgs {
    fn limits(&self) -> RateLimits {
        RateLimits {
            sign_in_per_minute: self.rate_limit_sign_in_per_minute,
            commands_per_second: self.rate_limit_commands_per_second,
            commands_per_second_per_address: self.rate_limit_commands_per_second_per_address,
        }
    }
}

#[derive(Debug, Args)]
struct SchedulerArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    payments: PaymentArgs,
}

/// E-mail and webhooks.
#[derive(Debug, Clone, Args)]
struct NotificationArgs {
    /// SMTP server for e-mail, `smtp://[user:password@]host:port` (plain SMTP). Without one,
    /// e-mail is written to `<data-dir>/outbox/<delivery id>.eml`.
    #[arg(long, env = "MARQUEE_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// `From:` of every e-mail.
    #[arg(
        long,
        env = "MARQUEE_MAIL_FROM",
        default_value = "Marquee <no-reply@marquee.local>"
    )]
    mail_from: String,
    /// Directory of templates replacing the built-in ones file by file
    /// (`<locale>/<kind>.txt`, `<locale>/<kind>.html`, `layout.html`).
    #[arg(long, env = "MARQUEE_TEMPLATE_DIR")]
    template_dir: Option<PathBuf>,
    /// Wait before the first retry of a failed delivery, in milliseconds; it doubles with each
    /// failure.
    #[arg(long, env = "MARQUEE_NOTIFY_BACKOFF_MS", default_value_t = 10_000)]
    notify_backoff_ms: u64,
    /// Longest wait between two attempts, in seconds.
    #[arg(long, env = "MARQUEE_NOTIFY_BACKOFF_MAX_SECS", default_value_t = 3_600)]
    notify_backoff_max_secs: u64,
    /// No attempt later than this after a notification was planned, in hours.
    #[arg(long, env = "MARQUEE_NOTIFY_GIVE_UP_HOURS", default_value_t = 72)]
    notify_give_up_hours: u64,
    /// How long a notifier's claim on a notification holds, in seconds: one claimed by a
    /// process that died is sent again after this (with the same delivery id).
    #[arg(long, env = "MARQUEE_NOTIFY_CLAIM_SECS", default_value_t = 120)]
    notify_claim_secs: u64,
    /// Timeout of one webhook request or SMTP exchange, in seconds.
    #[arg(long, env = "MARQUEE_NOTIFY_TIMEOUT_SECS", default_value_t = 10)]
    notify_timeout_secs: u64,
}

impl NotificationArgs {
    fn config(&self) -> marquee_notifier::NotifierConfig {
        marquee_notifier::NotifierConfig {
            mail_from: self.mail_from.clone(),
            claim_for: Duration::from_secs(self.notify_claim_secs),
            backoff: marquee_notifier::Backoff {
                base: Duration::from_millis(self.notify_backoff_ms.max(1)),
                max: Duration::from_secs(self.notify_backoff_max_secs.max(1)),
                give_up_after: Duration::from_secs(self.notify_give_up_hours.saturating_mul(3600)),
            },
            timeout: Duration::from_secs(self.notify_timeout_secs.max(1)),
            template_dir: self.template_dir.clone(),
            ..marquee_notifier::NotifierConfig::default()
        }
    }

    /// Where e-mail goes: the SMTP server, or the outbox under `data_dir`.
    fn mailer(&self, data_dir: &std::path::Path) -> anyhow::Result<marquee_notifier::Mailer> {
        let timeout = Duration::from_secs(self.notify_timeout_secs.max(1));
        match &self.smtp_url {
            Some(url) if !url.is_empty() => {
                marquee_notifier::Mailer::smtp(url, &self.mail_from, timeout)
                    .context("MARQUEE_SMTP_URL")
            }
            _ => marquee_notifier::Mailer::outbox(data_dir.join("outbox"), &self.mail_from)
                .context("the outbox directory"),
        }
    }
}

#[derive(Debug, Args)]
struct NotifierArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    notifications: NotificationArgs,
}

#[derive(Debug, Args)]
struct RelayArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    nats: NatsArgs,
}

/// How the command API runs commands.
#[derive(Debug, Args)]
struct EngineArgs {
    /// `pipeline`: commands for one stream queue to one in-memory decider that appends many
    /// at once; `naive`: load → decide → append with retries (the benchmarks' baseline).
    #[arg(long, env = "MARQUEE_COMMAND_MODE", default_value = "pipeline")]
    command_mode: CommandMode,
    /// Megabytes of idle aggregates kept in memory, per aggregate kind (least recently used go
    /// first).
    #[arg(long, env = "MARQUEE_AGGREGATE_CACHE_MB", default_value_t = 32)]
    aggregate_cache_mb: usize,
}

impl EngineArgs {
    fn options(&self) -> EngineOptions {
        EngineOptions {
            mode: self.command_mode,
            cache_bytes: self.aggregate_cache_mb.saturating_mul(1024 * 1024),
            ..EngineOptions::default()
        }
    }
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    nats: NatsArgs,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    payments: PaymentArgs,
    #[command(flatten)]
    auth: AuthArgs,
    #[command(flatten)]
    notifications: NotificationArgs,
    /// Address of the command API.
    #[arg(long, env = "MARQUEE_COMMAND_ADDR", default_value = "127.0.0.1:8080")]
    command_addr: SocketAddr,
    /// Address of the query API.
    #[arg(long, env = "MARQUEE_QUERY_ADDR", default_value = "127.0.0.1:8081")]
    query_addr: SocketAddr,
    /// Longest a query waits for `Marquee-Min-Position`, in milliseconds.
    #[arg(long, env = "MARQUEE_MIN_POSITION_TIMEOUT_MS", default_value_t = 2000)]
    min_position_timeout_ms: u64,
}

#[derive(Debug, Args)]
struct CommandApiArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    payments: PaymentArgs,
    #[command(flatten)]
    auth: AuthArgs,
    /// Address of the command API.
    #[arg(long, env = "MARQUEE_COMMAND_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
}

#[derive(Debug, Args)]
struct QueryApiArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Address of the query API.
    #[arg(long, env = "MARQUEE_QUERY_ADDR", default_value = "127.0.0.1:8081")]
    addr: SocketAddr,
    /// Longest a query waits for `Marquee-Min-Position`, in milliseconds.
    #[arg(long, env = "MARQUEE_MIN_POSITION_TIMEOUT_MS", default_value_t = 2000)]
    min_position_timeout_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MARQUEE_LOG")
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
    });
    match cli.command {
        Action::Bench(bench) => bench::run(bench, stopped).await,
        Action::Projections(ProjectionsAction::Rebuild(args)) => rebuild(args).await,
        // Both stop at Ctrl-C or SIGTERM, leaving only a `.partial` file behind.
        Action::Export(args) => tokio::select! {
            done = reporting::export(args) => done,
            () = shutdown(stopped) => anyhow::bail!("export interrupted"),
        },
        Action::Replay(args) => tokio::select! {
            done = reporting::replay(args) => done,
            () = shutdown(stopped) => anyhow::bail!("replay interrupted"),
        },
        Action::Serve(args) => serve(*args, stopped).await,
        Action::CommandApi(args) => {
            let store = open_store(&args.storage).await?;
            let read = ReadModels::connect(&args.storage.url())
                .await
                .context("opening the read models")?;
            let state = command_state(
                store,
                &args.storage,
                &args.engine,
                &args.payments,
                &args.auth,
            )
            .await?;
            // Each replica runs a scheduler next to its command API (on Postgres one acts at a
            // time): its refunds then go through the same gateway the payments were taken with.
            let scheduler = tokio::spawn(run_scheduler(
                state.engine.clone(),
                read,
                state.payments.clone(),
                &args.storage.url(),
                stopped.clone(),
            ));
            run_command_api(state, args.addr, stopped).await?;
            scheduler.await.context("scheduler task")?
        }
        Action::Scheduler(args) => {
            let store = open_store(&args.storage).await?;
            let read = ReadModels::connect(&args.storage.url())
                .await
                .context("opening the read models")?;
            let (gateway, _) = args.payments.gateway()?;
            let vault = open_vault(&args.storage).await?;
            let engine = Arc::new(
                marquee_command_api::engine::Engine::new(store, Arc::new(chrono::Utc::now))
                    .with_vault(vault),
            );
            run_scheduler(engine, read, gateway, &args.storage.url(), stopped).await
        }
        Action::Notifier(args) => {
            let store = open_store(&args.storage).await?;
            run_notifier(store, &args.storage, &args.notifications, stopped).await
        }
        Action::Relay(args) => {
            let config = args
                .nats
                .relay_config()
                .context("the relay needs NATS_URL (or --nats-url)")?;
            let store = open_store(&args.storage).await?;
            run_relay(store, config, stopped).await
        }
        Action::Projector(args) => {
            let store = open_store(&args.storage).await?;
            let read = ReadModels::connect(&args.storage.url())
                .await
                .context("opening the read models")?
                .with_vault(open_vault(&args.storage).await?);
            let lease = match args.projector_id {
                Some(id) => LeaseConfig::named(id),
                None => LeaseConfig::unique(),
            };
            let source = args.nats.relay_config().map(|relay| {
                let mut source = JetStreamSource::new(relay.nats_url);
                source.stream_name = relay.stream_name;
                source.subject_prefix = relay.subject_prefix;
                source.durable_name = args.durable.clone();
                source
            });
            run_projector(store, read, source, Some(lease), stopped).await;
            Ok(())
        }
        Action::QueryApi(args) => {
            let store = open_store(&args.storage).await?;
            let read = ReadModels::connect(&args.storage.url())
                .await
                .context("opening the read models")?;
            let access = query_access(&args.storage, store.clone()).await?;
            let state = QueryState::new(read, store)
                .with_min_position_timeout(Duration::from_millis(args.min_position_timeout_ms))
                .with_access(access);
            run_query_api(state, args.addr, stopped).await
        }
    }
}

async fn serve(args: ServeArgs, stopped: watch::Receiver<bool>) -> anyhow::Result<()> {
    let store = open_store(&args.storage).await?;
    let read = ReadModels::connect(&args.storage.url())
        .await
        .context("opening the read models")?;
    let relay = args
        .nats
        .relay_config()
        .map(|config| tokio::spawn(run_relay(store.clone(), config, stopped.clone())));
    let query_state = QueryState::new(read.clone(), store.clone())
        .with_min_position_timeout(Duration::from_millis(args.min_position_timeout_ms))
        .with_access(query_access(&args.storage, store.clone()).await?);
    let command_state = command_state(
        store,
        &args.storage,
        &args.engine,
        &args.payments,
        &args.auth,
    )
    .await?;
    // In one process the projector follows the log itself: that is the in-process bus. It opens
    // personal data with the command side's keys.
    let projector = tokio::spawn(run_projector(
        command_state.engine.store().clone(),
        read.clone().with_vault(command_state.auth.vault.clone()),
        None,
        None,
        stopped.clone(),
    ));
    // The scheduler shares the command API's engine, so its timed commands queue to the same
    // per-stream deciders as everyone else's.
    let scheduler = tokio::spawn(run_scheduler(
        command_state.engine.clone(),
        read,
        command_state.payments.clone(),
        &args.storage.url(),
        stopped.clone(),
    ));
    let notifier = tokio::spawn({
        let (store, storage, notifications, stopped) = (
            command_state.engine.store().clone(),
            args.storage.clone(),
            args.notifications.clone(),
            stopped.clone(),
        );
        async move { run_notifier(store, &storage, &notifications, stopped).await }
    });
    let commands = run_command_api(command_state, args.command_addr, stopped.clone());
    let queries = run_query_api(query_state, args.query_addr, stopped);
    let (commands, queries) = tokio::join!(commands, queries);
    projector.await.context("projector task")?;
    scheduler.await.context("scheduler task")??;
    notifier.await.context("notifier task")??;
    if let Some(relay) = relay {
        relay.await.context("relay task")??;
    }
    commands?;
    queries?;
    Ok(())
}

/// The command API's state: the log, the engine options, the payment gateway and the accounts
/// (opening the first owner's account on a fresh installation).
async fn command_state(
    store: Arc<dyn EventStore>,
    storage: &StorageArgs,
    engine: &EngineArgs,
    payments: &PaymentArgs,
    auth: &AuthArgs,
) -> anyhow::Result<CommandState> {
    let (gateway, secret) = payments.gateway()?;
    let accounts = Auth::connect(&storage.url(), store.clone(), auth.limits())
        .await
        .context("opening the accounts")?;
    let webhooks = marquee_notifier::Webhooks::connect(&storage.url(), accounts.vault.clone())
        .await
        .context("opening the webhook endpoints")?;
    let state = CommandState::with_options(store, Arc::new(accounts), engine.options())
        .with_test_gateway(gateway, Some(secret))
        .with_webhooks(webhooks);
    bootstrap(&state, storage, auth).await?;
    Ok(state)
}

/// On a fresh installation (no account at all), opens the owner account and its organization,
/// and says how to sign in. The password comes from `MARQUEE_ADMIN_PASSWORD` or is generated
/// into `<data-dir>/admin-password` (readable by this user only): never printed, never logged.
async fn bootstrap(
    state: &CommandState,
    storage: &StorageArgs,
    auth: &AuthArgs,
) -> anyhow::Result<()> {
    if state
        .auth
        .store()
        .has_accounts()
        .await
        .context("reading the accounts")?
    {
        return Ok(());
    }
    let (password, from) = match &auth.admin_password {
        Some(password) if !password.is_empty() => {
            (password.clone(), "MARQUEE_ADMIN_PASSWORD".to_owned())
        }
        _ => {
            let password: String = {
                use rand::Rng;
                const ALPHABET: &[u8] =
                    b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
                let mut rng = rand::rng();
                (0..24)
                    .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                    .collect()
            };
            std::fs::create_dir_all(&storage.data_dir)
                .with_context(|| format!("creating {}", storage.data_dir.display()))?;
            let path = storage.data_dir.join("admin-password");
            write_private(&path, &password)?;
            (password, path.display().to_string())
        }
    };
    let created = marquee_command_api::accounts::bootstrap_owner(
        state,
        &auth.admin_email,
        &marquee_auth::Password::new(password),
        "My organization",
    )
    .await
    .map_err(|e| anyhow::anyhow!("creating the first owner account: {e}"))?;
    if let Some((_, organization_id)) = created {
        println!(
            "marquee: first run: owner account {} created in organization {organization_id} (password: {from}); sign in with POST /v1/auth/login",
            auth.admin_email
        );
    }
    Ok(())
}

/// Writes a secret to a file only its owner can read.
fn write_private(path: &std::path::Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(content.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The query API's credentials and roles: the same auth tables as the command API, and the log.
async fn query_access(
    storage: &StorageArgs,
    store: Arc<dyn EventStore>,
) -> anyhow::Result<Arc<marquee_query_api::access::Access>> {
    let auth = marquee_auth::AuthStore::connect(&storage.url())
        .await
        .context("opening the accounts")?;
    Ok(Arc::new(marquee_query_api::access::Access {
        authenticator: marquee_auth::Authenticator::new(auth)
            .await
            .context("opening the accounts")?,
        directory: marquee_auth::Directory::new(store),
    }))
}

/// Runs the scheduler until shutdown. On Postgres read models it acts only while it holds the
/// scheduler lock, so replicas can run side by side.
fn run_scheduler(
    engine: Arc<marquee_command_api::engine::Engine>,
    read: ReadModels,
    gateway: Arc<dyn marquee_payments::PaymentGateway>,
    url: &str,
    stopped: watch::Receiver<bool>,
) -> impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static {
    let config = SchedulerConfig {
        leader_lock_url: (url.starts_with("postgres://") || url.starts_with("postgresql://"))
            .then(|| url.to_owned()),
        ..SchedulerConfig::default()
    };
    async move {
        println!("marquee: scheduler running");
        Scheduler::new(engine, Arc::new(read), gateway, config)
            .run(shutdown(stopped))
            .await
            .context("scheduler")
    }
}

/// Runs the notifier until shutdown.
async fn run_notifier(
    store: Arc<dyn EventStore>,
    storage: &StorageArgs,
    notifications: &NotificationArgs,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let url = storage.url();
    let mailer = notifications.mailer(&storage.data_dir)?;
    let auth = marquee_auth::AuthStore::connect(&url)
        .await
        .context("opening the accounts")?;
    let mail = match &notifications.smtp_url {
        Some(smtp) if !smtp.is_empty() => format!("SMTP {}", redact(smtp)),
        _ => format!("outbox {}", storage.data_dir.join("outbox").display()),
    };
    let notifier =
        marquee_notifier::Notifier::connect(store, &url, auth, mailer, notifications.config())
            .await
            .context("opening the notifier")?;
    println!("marquee: notifier running (e-mail to {mail})");
    notifier.run(shutdown(stopped)).await.context("notifier")
}

/// `marquee projections rebuild`: a progress bar on a terminal (stderr), one line on stdout.
async fn rebuild(args: RebuildArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal;

    let names: Vec<&str> = match &args.name {
        Some(name) if marquee_projector::PROJECTIONS.contains(&name.as_str()) => vec![name],
        Some(name) => anyhow::bail!(
            "unknown projection `{name}`; known projections: {}",
            marquee_projector::PROJECTIONS.join(", ")
        ),
        None => marquee_projector::PROJECTIONS.to_vec(),
    };
    let store = open_store(&args.storage).await?;
    // Personal data is opened with the keys as they are now: erased persons read as erased.
    let read = ReadModels::connect(&args.storage.url())
        .await
        .context("opening the read models")?
        .with_vault(open_vault(&args.storage).await?);
    let options = marquee_projector::RebuildOptions {
        batch_size: args.batch_size,
        ..Default::default()
    };
    for name in names {
        let bar = indicatif::ProgressBar::new(store.head_position().await?);
        if !std::io::stderr().is_terminal() {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:40}] {human_pos}/{human_len} ({per_sec}, ETA {eta})",
            )
            .context("progress bar template")?
            .progress_chars("=> "),
        );
        bar.set_message(format!("rebuilding {name}"));
        let report = read
            .rebuild(store.as_ref(), name, &options, &mut |progress| {
                bar.set_length(progress.head);
                bar.set_position(progress.position);
            })
            .await
            .with_context(|| format!("rebuilding {name}"))?;
        bar.finish_and_clear();
        let seconds = report.elapsed.as_secs_f64();
        println!(
            "rebuilt {} facts in {seconds:.1} s ({:.0} facts/s)",
            report.facts,
            report.facts as f64 / seconds.max(1e-9)
        );
    }
    Ok(())
}

/// The keys of personal data (crypto-shredding), kept in the auth tables of the log's database,
/// for the processes that read facts without a command API of their own.
async fn open_vault(storage: &StorageArgs) -> anyhow::Result<marquee_auth::Vault> {
    let url = storage.url();
    let store = marquee_auth::AuthStore::connect(&url)
        .await
        .with_context(|| format!("opening the personal data keys at {}", redact(&url)))?;
    marquee_auth::Vault::new(store)
        .await
        .context("opening the personal data keys")
}

async fn open_store(storage: &StorageArgs) -> anyhow::Result<Arc<dyn EventStore>> {
    let url = storage.url();
    if url.starts_with("sqlite://") {
        std::fs::create_dir_all(&storage.data_dir)
            .with_context(|| format!("creating {}", storage.data_dir.display()))?;
    }
    let options = marquee_store::StoreOptions {
        snapshot_every: storage.snapshot_every,
        ..marquee_store::StoreOptions::default()
    };
    marquee_store::connect_with(&url, options)
        .await
        .with_context(|| format!("opening the log at {}", redact(&url)))
}

/// The URL without a password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

async fn run_command_api(
    state: CommandState,
    addr: SocketAddr,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let app = marquee_command_api::Application::build(addr, state)
        .await
        .with_context(|| format!("binding the command API to {addr}"))?;
    println!(
        "marquee: command API on http://{}:{}",
        addr.ip(),
        app.port()
    );
    app.run_until_stopped(shutdown(stopped)).await?;
    Ok(())
}

async fn run_query_api(
    state: QueryState,
    addr: SocketAddr,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let app = marquee_query_api::Application::build(addr, state)
        .await
        .with_context(|| format!("binding the query API to {addr}"))?;
    println!("marquee: query API on http://{}:{}", addr.ip(), app.port());
    app.run_until_stopped(shutdown(stopped)).await?;
    Ok(())
}

/// Runs the projector until shutdown, restarting it (from its checkpoint) after a failure.
/// `source`: JetStream in distributed mode, else the log. `lease`: this process's lease id,
/// kept across restarts so a restarted projector takes its own lease back at once.
async fn run_projector(
    store: Arc<dyn EventStore>,
    read: ReadModels,
    source: Option<JetStreamSource>,
    lease: Option<LeaseConfig>,
    stopped: watch::Receiver<bool>,
) {
    match &source {
        Some(source) => println!(
            "marquee: projector running (JetStream {} as {})",
            source.stream_name, source.durable_name
        ),
        None => println!("marquee: projector running (following the log)"),
    }
    loop {
        let projector = match &source {
            Some(source) => Projector::with_jetstream(store.clone(), read.clone(), source.clone()),
            None => Projector::new(store.clone(), read.clone()),
        };
        let projector = match &lease {
            Some(lease) => projector.with_lease(lease.clone()),
            None => projector,
        };
        match projector.run(shutdown(stopped.clone())).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, "projector failed; restarting from its checkpoint")
            }
        }
        let mut stopped = stopped.clone();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
    }
}

/// Runs the relay until shutdown. It waits out NATS outages itself; an error here is a
/// configuration it can never work with.
async fn run_relay(
    store: Arc<dyn EventStore>,
    config: marquee_relay::RelayConfig,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    println!(
        "marquee: relay publishing to {} on {}",
        config.stream_name,
        redact(&config.nats_url)
    );
    marquee_relay::Relay::new(store, config)
        .run(shutdown(stopped))
        .await
        .context("relay")
}

/// Resolves when the shutdown flag is raised.
async fn shutdown(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
