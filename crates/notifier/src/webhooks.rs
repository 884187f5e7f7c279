//! Webhook endpoints as the command API manages them: made with a secret shown once, listed,
//! removed, pinged, and their delivery log.
//!
//! **The secret.** Signing needs the secret itself, so it cannot be kept as a hash like an API
//! token's. It is sealed with the vault (AES-256-GCM under a key of its own, person id
//! `webhook-<id>`) and the sealed text is stored in `webhook_endpoints`; it never enters a fact
//! or a log line. Removing the endpoint erases its key, which shreds the secret for good.

use chrono::{DateTime, Utc};
use marquee_auth::Vault;
use serde_json::json;
use uuid::Uuid;

use crate::NotifierError;
use crate::signing::new_secret;
use crate::store::{Channel, DeliveryRecord, Endpoint, NewNotification, NotifierStore};

/// The vault's id for an endpoint's secret.
fn secret_key(webhook_id: Uuid) -> String {
    format!("webhook-{}", webhook_id.simple())
}

/// A new endpoint, for [`Webhooks::create`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    /// Its id (the one in the `WebhookEndpointAdded` fact).
    pub webhook_id: Uuid,
    /// Its organization.
    pub organization_id: Uuid,
    /// Where deliveries go.
    pub url: String,
    /// The fact types it receives.
    pub fact_types: Vec<String>,
    /// The position of the fact that added it: later facts are delivered.
    pub after_position: u64,
    /// Who added it.
    pub created_by: Option<String>,
}

/// The endpoints' side of the notifier's tables, for the command API.
#[derive(Debug, Clone)]
pub struct Webhooks {
    store: NotifierStore,
    vault: Vault,
}

impl Webhooks {
    /// Over the notifier's tables at `url` (the log's database), sealing with `vault`.
    pub async fn connect(url: &str, vault: Vault) -> Result<Self, NotifierError> {
        Ok(Self {
            store: NotifierStore::connect(url).await?,
            vault,
        })
    }

    /// Stores a new endpoint; its signing secret, to be shown once.
    pub async fn create(
        &self,
        endpoint: NewEndpoint,
        now: DateTime<Utc>,
    ) -> Result<(Endpoint, String), NotifierError> {
        let secret = new_secret();
        let sealed = self
            .vault
            .seal(&secret_key(endpoint.webhook_id), &secret)
            .await?;
        let stored = Endpoint {
            webhook_id: endpoint.webhook_id,
            organization_id: endpoint.organization_id,
            url: endpoint.url,
            fact_types: endpoint.fact_types,
            sealed_secret: sealed,
            after_position: endpoint.after_position,
            status: "active".to_owned(),
            disabled_reason: None,
            created_by: endpoint.created_by,
            created_at: now,
        };
        self.store.create_endpoint(&stored).await?;
        Ok((stored, secret))
    }

    /// The organization's endpoints (not removed).
    pub async fn list(&self, organization_id: Uuid) -> Result<Vec<Endpoint>, NotifierError> {
        self.store.endpoints_of(organization_id).await
    }

    /// One endpoint of `organization_id`, if it exists and is not removed.
    pub async fn get(
        &self,
        organization_id: Uuid,
        webhook_id: Uuid,
    ) -> Result<Option<Endpoint>, NotifierError> {
        Ok(self
            .store
            .endpoint(webhook_id)
            .await?
            .filter(|e| e.organization_id == organization_id && e.status != "removed"))
    }

    /// Removes an endpoint: nothing more is delivered, and its secret is shredded.
    pub async fn remove(&self, webhook_id: Uuid, now: DateTime<Utc>) -> Result<(), NotifierError> {
        self.store.remove_endpoint(webhook_id, now).await?;
        self.vault.erase(&secret_key(webhook_id)).await?;
        Ok(())
    }

    /// Queues a signed `ping` delivery to the endpoint; its delivery id.
    pub async fn ping(
        &self,
        endpoint: &Endpoint,
        now: DateTime<Utc>,
    ) -> Result<Uuid, NotifierError> {
        let ping_id = Uuid::now_v7();
        let body = json!({
            "id": ping_id,
            "type": "ping",
            "organization_id": endpoint.organization_id,
            "webhook_id": endpoint.webhook_id,
            "created_at": now,
        });
        self.store
            .enqueue(
                ping_id,
                &NewNotification {
                    fact_id: ping_id,
                    channel: Channel::Webhook,
                    recipient: endpoint.webhook_id.to_string(),
                    kind: "ping".to_owned(),
                    organization_id: Some(endpoint.organization_id),
                    position: None,
                    payload: Some(body.to_string()),
                    requires: None,
                    not_before: now,
                },
                now,
            )
            .await
    }

    /// The endpoint's latest deliveries, newest first.
    pub async fn deliveries(
        &self,
        webhook_id: Uuid,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, NotifierError> {
        self.store.deliveries(webhook_id, limit).await
    }
}
