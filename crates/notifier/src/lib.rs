//! Marquee's notifier: tells people what happened. Attendees get e-mail (their tickets, a hold
//! about to run out, a waitlist offer, a cancellation or refund, new times or a cancelled
//! event, reminders before the start); organizers' systems get every fact they asked for as a
//! signed webhook.
//!
//! **How it reads.** It follows the log from a checkpoint of its own (catch-up, then live) and
//! turns each batch of facts into notifications ([`planner`]): e-mails rendered from templates
//! in the recipient's locale ([`templates`]) and sealed under the recipient's key, webhook
//! deliveries to the endpoints that asked for the fact's type. They are written together with
//! the checkpoint in one transaction ([`store`]); a fact read again plans nothing new, because
//! every notification is keyed by (fact id, channel, recipient). A second loop sends what is
//! due ([`sender`], which explains what "exactly once in effect" leaves open at the boundary).
//! In distributed mode it follows the log the same way (the Postgres log's gapless tail); it
//! does not consume JetStream.
//!
//! On its first run against an existing log it starts at the log's head: history is not
//! mailed out again.
//!
//! **Personal data.** Facts are opened with the vault (no key cache), an erased person reads
//! `[erased]` and gets nothing; their pending e-mails are dropped when `UserErased` arrives
//! (and could not be opened anyway: they are sealed under the erased key). Webhook bodies are
//! built from the log at each attempt, so they carry `[erased]` in place of an erased
//! person's name, address and answers.
//!
//! What must not live here: business rules (what a fact means is the domain's), HTTP routes
//! (the command API manages endpoints through [`webhooks::Webhooks`]).

pub mod mail;
pub mod planner;
pub mod sender;
pub mod signing;
mod state;
pub mod store;
pub mod templates;
pub mod testing;
pub mod webhooks;

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use marquee_auth::{AuthStore, Vault};
use marquee_store::EventStore;
use tokio::sync::Notify;

pub use mail::{Email, Mailer};
pub use sender::Backoff;
pub use store::{Channel, NotifierStore};
pub use templates::Templates;
pub use webhooks::{NewEndpoint, Webhooks};

/// Why the notifier could not work.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    /// A setting that can never work.
    #[error("notifier configuration: {0}")]
    Config(String),
    /// The notifier's tables failed.
    #[error("notifier database: {0}")]
    Database(#[from] sqlx::Error),
    /// Its migrations failed.
    #[error("notifier migrations: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The log failed.
    #[error("log: {0}")]
    Store(#[from] marquee_store::StoreError),
    /// The keys failed.
    #[error("keys: {0}")]
    Auth(#[from] marquee_auth::AuthError),
    /// A template could not be rendered.
    #[error("template: {0}")]
    Template(String),
    /// A stored row is not what it should be.
    #[error("corrupt notifier row: {0}")]
    Corrupt(String),
}

/// Tuning of a [`Notifier`].
#[derive(Debug, Clone, PartialEq)]
pub struct NotifierConfig {
    /// The checkpoint's name (one per independent notifier).
    pub name: String,
    /// `From:` of every e-mail.
    pub mail_from: String,
    /// How often due notifications are looked for when nothing woke the sender.
    pub poll_every: Duration,
    /// Most facts planned per transaction.
    pub batch: usize,
    /// Most notifications claimed per round.
    pub claim_batch: u32,
    /// How long a claim holds: a notification claimed by a process that died is sent again
    /// this long after the claim.
    pub claim_for: Duration,
    /// Retry spacing and the last attempt.
    pub backoff: Backoff,
    /// Timeout of one webhook request or SMTP exchange.
    pub timeout: Duration,
    /// Events kept folded in memory.
    pub cached_events: usize,
    /// Templates replacing the built-in ones, file by file.
    pub template_dir: Option<PathBuf>,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        Self {
            name: "notifier".to_owned(),
            mail_from: "Marquee <no-reply@marquee.local>".to_owned(),
            poll_every: Duration::from_millis(250),
            batch: 256,
            claim_batch: 16,
            claim_for: Duration::from_secs(120),
            backoff: Backoff::default(),
            timeout: Duration::from_secs(10),
            cached_events: 128,
            template_dir: None,
        }
    }
}

/// The notifier; see the [crate docs](crate).
pub struct Notifier {
    log: Arc<dyn EventStore>,
    store: NotifierStore,
    auth: AuthStore,
    vault: Vault,
    mailer: Option<Mailer>,
    config: NotifierConfig,
    clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

impl Notifier {
    /// A notifier reading `log`, keeping its state in the database at `url` (the log's), with
    /// the accounts and keys of `auth`, mailing through `mailer`.
    pub async fn connect(
        log: Arc<dyn EventStore>,
        url: &str,
        auth: AuthStore,
        mailer: Mailer,
        config: NotifierConfig,
    ) -> Result<Self, NotifierError> {
        let store = NotifierStore::connect(url).await?;
        // No key cache: an erasure elsewhere is seen at once.
        let vault = Vault::new(auth.clone())
            .await?
            .with_key_cache_ttl(Duration::ZERO);
        Ok(Self {
            log,
            store,
            auth,
            vault,
            mailer: Some(mailer),
            config,
            clock: Arc::new(Utc::now),
        })
    }

    /// The same notifier reading time from `clock` (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>) -> Self {
        self.clock = clock;
        self
    }

    /// Its tables.
    pub fn store(&self) -> &NotifierStore {
        &self.store
    }

    /// Plans and sends until `shutdown` resolves. Failures of either loop are logged and the
    /// loop starts again from the notifier's tables a second later.
    pub async fn run(
        mut self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), NotifierError> {
        let templates = Templates::load(self.config.template_dir.as_deref())?;
        let mailer = self
            .mailer
            .take()
            .ok_or_else(|| NotifierError::Config("the notifier runs once".to_owned()))?;
        let http = reqwest::Client::builder()
            .timeout(self.config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("marquee-notifier")
            .build()
            .map_err(|e| NotifierError::Config(format!("HTTP client: {e}")))?;
        let sender = sender::Sender {
            store: self.store.clone(),
            log: self.log.clone(),
            vault: self.vault.clone(),
            mailer,
            http,
            backoff: self.config.backoff,
            claimer: format!("notifier-{}", uuid::Uuid::now_v7()),
            claim_for: self.config.claim_for,
            clock: self.clock.clone(),
        };
        let mut planner = planner::Planner::new(
            state::World::new(
                self.log.clone(),
                self.vault.clone(),
                self.auth.clone(),
                self.config.cached_events,
            ),
            self.vault.clone(),
            self.store.clone(),
            templates,
        );
        let wake = Arc::new(Notify::new());
        let mut shutdown = pin!(shutdown);
        let planning = self.plan_forever(&mut planner, &wake);
        let sending = self.send_forever(&sender, &wake);
        tokio::select! {
            () = planning => {}
            () = sending => {}
            () = &mut shutdown => {}
        }
        Ok(())
    }

    /// Follows the log from the checkpoint and plans each batch; starts again after a failure.
    async fn plan_forever(&self, planner: &mut planner::Planner, wake: &Notify) {
        loop {
            if let Err(e) = self.plan_from_checkpoint(planner, wake).await {
                tracing::error!(error = %e, "notifier: planning failed; starting again from the checkpoint");
            }
            planner_pause().await;
        }
    }

    async fn plan_from_checkpoint(
        &self,
        planner: &mut planner::Planner,
        wake: &Notify,
    ) -> Result<(), NotifierError> {
        let name = &self.config.name;
        let after = match self.store.checkpoint(name).await? {
            Some(position) => position,
            None => {
                // First run: what is already in the log is history, not news.
                let head = self.log.head_position().await?;
                self.store.plan(name, &[], head, (self.clock)()).await?;
                head
            }
        };
        let mut feed = self
            .log
            .subscribe(after)
            .ready_chunks(self.config.batch.max(1));
        while let Some(chunk) = feed.next().await {
            let facts = chunk.into_iter().collect::<Result<Vec<_>, _>>()?;
            let Some(last) = facts.last().map(|fact| fact.position) else {
                continue;
            };
            let now = (self.clock)();
            let planned = planner.plan(&facts, now).await?;
            self.store.plan(name, &planned, last, now).await?;
            if !planned.is_empty() {
                wake.notify_one();
            }
        }
        Err(NotifierError::Store(marquee_store::StoreError::Closed))
    }

    /// Sends what is due, then waits for a wake-up or the next poll.
    async fn send_forever(&self, sender: &sender::Sender, wake: &Notify) {
        loop {
            match sender.round(self.config.claim_batch).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "notifier: sending failed; trying again"),
            }
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(self.config.poll_every) => {}
            }
        }
    }
}

async fn planner_pause() {
    tokio::time::sleep(Duration::from_secs(1)).await;
}
