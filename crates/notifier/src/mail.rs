//! Where e-mail goes: an SMTP server (`MARQUEE_SMTP_URL`, through lettre), or, with none
//! configured, the outbox directory (`<data-dir>/outbox/<delivery id>.eml`) so the embedded
//! mode works with nothing installed.
//!
//! Every message carries `Message-ID: <delivery id@marquee>`, the same on every attempt: a
//! message sent again after a crash in the narrow window between the server's acceptance and
//! the notifier's record of it is recognisably the same message. The outbox writes the file
//! under the delivery id (to a temporary name, then renamed), so there a second attempt
//! replaces the first and the window closes entirely.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::NotifierError;

/// One e-mail, written: what the notifier seals and keeps until it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    /// The recipient's name.
    pub to_name: String,
    /// The recipient's address.
    pub to_email: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
    /// The locale it is written in.
    pub locale: String,
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailError {
    /// The server refused it for good (5xx, or an address that cannot be written).
    pub permanent: bool,
    /// The SMTP reply code, when there was one.
    pub code: Option<u16>,
    /// What happened.
    pub message: String,
}

/// Sends e-mail.
pub enum Mailer {
    /// Through an SMTP server.
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    /// Into files in a directory.
    Outbox { dir: PathBuf, from: Mailbox },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Smtp { .. } => f.write_str("Mailer::Smtp"),
            Mailer::Outbox { dir, .. } => write!(f, "Mailer::Outbox({})", dir.display()),
        }
    }
}

impl Mailer {
    /// An SMTP mailer for `smtp://[user[:password]@]host[:port]` (port 25 by default),
    /// sending as `from`. Only plain SMTP is built in (no TLS): a relay on the same host or
    /// network (a local MTA, a sidecar) does the rest.
    pub fn smtp(url: &str, from: &str, timeout: Duration) -> Result<Self, NotifierError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| NotifierError::Config(format!("MARQUEE_SMTP_URL: {e}")))?;
        if parsed.scheme() != "smtp" {
            return Err(NotifierError::Config(format!(
                "MARQUEE_SMTP_URL: scheme `{}` is not supported; use smtp://host:port",
                parsed.scheme()
            )));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| NotifierError::Config("MARQUEE_SMTP_URL: no host".to_owned()))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(parsed.port().unwrap_or(25))
            .timeout(Some(timeout));
        if !parsed.username().is_empty() {
            builder = builder.credentials(Credentials::new(
                parsed.username().to_owned(),
                parsed.password().unwrap_or_default().to_owned(),
            ));
        }
        Ok(Mailer::Smtp {
            transport: builder.build(),
            from: mailbox(from)?,
        })
    }

    /// A mailer writing `<dir>/<delivery id>.eml` files, sending as `from`.
    pub fn outbox(dir: impl Into<PathBuf>, from: &str) -> Result<Self, NotifierError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|e| NotifierError::Config(format!("outbox {}: {e}", dir.display())))?;
        Ok(Mailer::Outbox {
            dir,
            from: mailbox(from)?,
        })
    }

    /// Sends `email` as delivery `delivery_id`.
    pub async fn send(&self, delivery_id: Uuid, email: &Email) -> Result<(), MailError> {
        let from = match self {
            Mailer::Smtp { from, .. } | Mailer::Outbox { from, .. } => from.clone(),
        };
        let message = build(delivery_id, from, email)?;
        match self {
            Mailer::Smtp { transport, .. } => {
                transport
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| MailError {
                        permanent: e.is_permanent(),
                        code: e.status().map(u16::from),
                        message: e.to_string(),
                    })
            }
            Mailer::Outbox { dir, .. } => {
                let failed = |e: std::io::Error| MailError {
                    permanent: false,
                    code: None,
                    message: format!("writing to the outbox: {e}"),
                };
                let part = dir.join(format!(".{delivery_id}.eml.partial"));
                let path = dir.join(format!("{delivery_id}.eml"));
                tokio::fs::write(&part, message.formatted())
                    .await
                    .map_err(failed)?;
                tokio::fs::rename(&part, &path).await.map_err(failed)
            }
        }
    }
}

fn mailbox(from: &str) -> Result<Mailbox, NotifierError> {
    from.parse()
        .map_err(|e| NotifierError::Config(format!("sender address {from:?}: {e}")))
}

/// The message: multipart plain text and HTML, with the delivery's Message-ID.
fn build(delivery_id: Uuid, from: Mailbox, email: &Email) -> Result<Message, MailError> {
    let unusable = |message: String| MailError {
        permanent: true,
        code: None,
        message,
    };
    let address = email
        .to_email
        .parse()
        .map_err(|e| unusable(format!("recipient address: {e}")))?;
    Message::builder()
        .from(from)
        .to(Mailbox::new(Some(email.to_name.clone()), address))
        .subject(email.subject.clone())
        .message_id(Some(format!("<{delivery_id}@marquee>")))
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))
        .map_err(|e| unusable(format!("building the message: {e}")))
}
