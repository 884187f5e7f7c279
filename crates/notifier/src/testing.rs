//! Receivers for tests, started on free ports of 127.0.0.1 by the tests themselves: a tiny
//! SMTP sink ([`SmtpSink`]) and an HTTP receiver with scripted answers ([`HttpReceiver`]).
//! Public (like `marquee_store::testing`) so the black-box tests use the same ones.
//!
//! The sink speaks just enough SMTP for lettre (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) and
//! keeps a message only once it has answered `250` to its data, as a real server commits it.
//! It can be told to hold its answer to the next message's data (to kill a sender mid-send): a
//! transaction whose connection closes before that answer is discarded.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// A message the sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SunkMail {
    /// `MAIL FROM`.
    pub from: String,
    /// `RCPT TO`, each.
    pub to: Vec<String>,
    /// The message as sent (headers and body, dot-unstuffed).
    pub data: String,
}

impl SunkMail {
    /// A header's value (the first of that name, unfolded), decoded from RFC 2047 UTF-8.
    pub fn header(&self, name: &str) -> Option<String> {
        let mut lines = self.data.split("\r\n").peekable();
        while let Some(line) = lines.next() {
            if line.is_empty() {
                return None;
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            if !key.eq_ignore_ascii_case(name) {
                continue;
            }
            let mut value = value.trim().to_owned();
            while let Some(next) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
                value.push(' ');
                value.push_str(next.trim());
                lines.next();
            }
            return Some(decode_words(&value));
        }
        None
    }

    /// The subject, decoded.
    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// The `Message-ID`.
    pub fn message_id(&self) -> String {
        self.header("Message-ID").unwrap_or_default()
    }

    /// The decoded text of the part of type `content_type` (`text/plain`, `text/html`).
    pub fn part(&self, content_type: &str) -> String {
        for part in self.data.split("\r\n--") {
            let Some((headers, body)) = part.split_once("\r\n\r\n") else {
                continue;
            };
            let headers = headers.to_ascii_lowercase();
            if !headers.contains(&format!("content-type: {content_type}")) {
                continue;
            }
            if headers.contains("quoted-printable") {
                return quoted_printable(body);
            }
            if headers.contains("base64") {
                let joined: String = body.split_whitespace().collect();
                return base64::engine::general_purpose::STANDARD
                    .decode(joined)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .unwrap_or_default();
            }
            return body.to_owned();
        }
        String::new()
    }

    /// The plain-text part.
    pub fn text(&self) -> String {
        self.part("text/plain")
    }
}

/// Decodes `=?utf-8?b?…?=` and `=?utf-8?q?…?=` words.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut previous_encoded = false;
    for word in value.split(' ') {
        let lower = word.to_ascii_lowercase();
        let decoded = if lower.starts_with("=?utf-8?b?") && word.ends_with("?=") {
            base64::engine::general_purpose::STANDARD
                .decode(&word[10..word.len() - 2])
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
        } else if lower.starts_with("=?utf-8?q?") && word.ends_with("?=") {
            Some(quoted_printable(
                &word[10..word.len() - 2].replace('_', " "),
            ))
        } else {
            None
        };
        // Space between two encoded words is folding, not text.
        if !(out.is_empty() || previous_encoded && decoded.is_some()) {
            out.push(' ');
        }
        previous_encoded = decoded.is_some();
        out.push_str(decoded.as_deref().unwrap_or(word));
    }
    out
}

/// Decodes quoted-printable text.
fn quoted_printable(text: &str) -> String {
    let text = text.replace("=\r\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len() + 1
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Default)]
struct SinkState {
    messages: Mutex<Vec<SunkMail>>,
    /// Hold the answer to the next message's data.
    hold_next: AtomicBool,
    /// Signalled when a message's data arrived and its answer is being held.
    holding: Notify,
    /// Signalled whenever a message is accepted.
    accepted: Notify,
}

/// A tiny SMTP server on a free port of 127.0.0.1.
#[derive(Clone)]
pub struct SmtpSink {
    /// Its port.
    pub port: u16,
    state: Arc<SinkState>,
}

impl SmtpSink {
    /// Starts the sink; it serves until the runtime stops.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(SinkState::default());
        let serving = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, serving.clone()));
            }
        });
        Ok(Self { port, state })
    }

    /// `smtp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message accepted so far.
    pub fn messages(&self) -> Vec<SunkMail> {
        self.state
            .messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Holds the answer to the next message's data until its connection closes (the message
    /// is then discarded, as no server committed it).
    pub fn hold_next(&self) {
        self.state.hold_next.store(true, Ordering::SeqCst);
    }

    /// Waits until a message's data arrived and its answer is being held.
    pub async fn holding(&self) {
        self.state.holding.notified().await;
    }

    /// Waits until `predicate` holds for the accepted messages.
    pub async fn wait_for(&self, predicate: impl Fn(&[SunkMail]) -> bool) -> Vec<SunkMail> {
        loop {
            let accepted = self.state.accepted.notified();
            let messages = self.messages();
            if predicate(&messages) {
                return messages;
            }
            let _ = tokio::time::timeout(std::time::Duration::from_millis(200), accepted).await;
        }
    }
}

async fn session(stream: TcpStream, state: Arc<SinkState>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let reply = |text: &str| format!("{text}\r\n");
    if write
        .write_all(reply("220 sink ESMTP").as_bytes())
        .await
        .is_err()
    {
        return;
    }
    let (mut from, mut to) = (String::new(), Vec::new());
    while let Ok(Some(line)) = lines.next_line().await {
        let upper = line.to_ascii_uppercase();
        let answer = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            "250 sink".to_owned()
        } else if upper.starts_with("MAIL FROM:") {
            from = line[10..].trim().trim_matches(['<', '>']).to_owned();
            to.clear();
            "250 OK".to_owned()
        } else if upper.starts_with("RCPT TO:") {
            to.push(line[8..].trim().trim_matches(['<', '>']).to_owned());
            "250 OK".to_owned()
        } else if upper == "DATA" {
            if write
                .write_all(reply("354 go ahead").as_bytes())
                .await
                .is_err()
            {
                return;
            }
            let mut data = String::new();
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) if line == "." => break,
                    Ok(Some(line)) => {
                        data.push_str(line.strip_prefix('.').unwrap_or(&line));
                        data.push_str("\r\n");
                    }
                    _ => return,
                }
            }
            if state.hold_next.swap(false, Ordering::SeqCst) {
                state.holding.notify_waiters();
                // Never answer: the sender is killed meanwhile, the connection closes, and the
                // transaction is discarded.
                while let Ok(Some(_)) = lines.next_line().await {}
                return;
            }
            state
                .messages
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(SunkMail {
                    from: from.clone(),
                    to: to.clone(),
                    data,
                });
            state.accepted.notify_waiters();
            "250 OK queued".to_owned()
        } else if upper == "QUIT" {
            let _ = write.write_all(reply("221 bye").as_bytes()).await;
            return;
        } else if upper == "RSET" || upper == "NOOP" {
            "250 OK".to_owned()
        } else {
            "502 not implemented".to_owned()
        };
        if write.write_all(reply(&answer).as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A request the receiver got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Lower-case header names with their values.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: String,
    /// The status it was answered with.
    pub status: u16,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }
}

#[derive(Default)]
struct ReceiverState {
    script: Mutex<VecDeque<u16>>,
    received: Mutex<Vec<Received>>,
    arrived: Notify,
}

/// An HTTP server on a free port of 127.0.0.1 that records every request and answers each
/// with the next status of its script (200 once the script is used up).
#[derive(Clone)]
pub struct HttpReceiver {
    /// Its port.
    pub port: u16,
    state: Arc<ReceiverState>,
}

impl HttpReceiver {
    /// Starts a receiver answering with `script`, then 200.
    pub async fn start(script: &[u16]) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(ReceiverState {
            script: Mutex::new(script.iter().copied().collect()),
            ..ReceiverState::default()
        });
        let serving = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(http_session(stream, serving.clone()));
            }
        });
        Ok(Self { port, state })
    }

    /// `http://127.0.0.1:<port>/hooks`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.state
            .received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until `predicate` holds for the requests received.
    pub async fn wait_for(&self, predicate: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        loop {
            let arrived = self.state.arrived.notified();
            let received = self.received();
            if predicate(&received) {
                return received;
            }
            let _ = tokio::time::timeout(std::time::Duration::from_millis(200), arrived).await;
        }
    }
}

/// One HTTP/1.1 request per connection (the client may keep it alive; each request is read
/// in turn).
async fn http_session(stream: TcpStream, state: Arc<ReceiverState>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut request_line = String::new();
        match reader.read_line(&mut request_line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((key, value)) = line.split_once(':') {
                let key = key.trim().to_ascii_lowercase();
                let value = value.trim().to_owned();
                if key == "content-length" {
                    length = value.parse().unwrap_or(0);
                }
                headers.push((key, value));
            }
        }
        let mut body = vec![0u8; length];
        if tokio::io::AsyncReadExt::read_exact(&mut reader, &mut body)
            .await
            .is_err()
        {
            return;
        }
        let status = state
            .script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
            .unwrap_or(200);
        state
            .received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Received {
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
                status,
            });
        state.arrived.notify_waiters();
        let response = format!("HTTP/1.1 {status} Scripted\r\ncontent-length: 0\r\n\r\n");
        if write.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}
