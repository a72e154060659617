//! Local stand-ins for what the outbox delivers to: an HTTP server speaking the SMS provider's
//! documented `Messages.json` API, and a minimal SMTP sink on tokio; plus the provider's webhook
//! signature, computed independently of Guichet's code.
//!
//! Both record what they receive. A stand-in can start on a port chosen earlier with
//! [`free_port`], so that a test can point the server at it while it is still down.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A loopback port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Waits until `f` returns `Some`, failing the test after `limit`.
pub async fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `X-Twilio-Signature` as the provider computes it: base64(HMAC-SHA1(token, URL + every
/// parameter sorted by name, name then value)).
pub fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes()).expect("key");
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// One request the SMS provider stand-in received.
#[derive(Debug, Clone)]
pub struct ProviderRequest {
    /// The request path.
    pub path: String,
    /// The basic-auth user and password.
    pub auth: Option<(String, String)>,
    /// The form fields.
    pub form: Vec<(String, String)>,
}

impl ProviderRequest {
    /// A form field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A Twilio-compatible `Messages.json` endpoint on loopback.
pub struct SmsProvider {
    /// Where it listens.
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<ProviderRequest>>>,
    task: JoinHandle<()>,
}

impl SmsProvider {
    /// Starts on `port` (0: any).
    pub async fn start(port: u16) -> SmsProvider {
        use axum::extract::{Form, Path, State};
        use axum::http::{HeaderMap, StatusCode};
        use axum::routing::post;

        let received: Arc<Mutex<Vec<ProviderRequest>>> = Arc::default();
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the SMS provider stand-in");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Messages.json",
                post(
                    |State(received): State<Arc<Mutex<Vec<ProviderRequest>>>>,
                     Path(account): Path<String>,
                     headers: HeaderMap,
                     Form(form): Form<Vec<(String, String)>>| async move {
                        let auth = headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.strip_prefix("Basic "))
                            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                            .and_then(|b| String::from_utf8(b).ok())
                            .and_then(|s| {
                                s.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned()))
                            });
                        let mut all = received.lock().expect("lock");
                        let n = all.len();
                        let to = form
                            .iter()
                            .find(|(k, _)| k == "To")
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default();
                        all.push(ProviderRequest {
                            path: format!("/2010-04-01/Accounts/{account}/Messages.json"),
                            auth,
                            form,
                        });
                        let sid = format!("SM{n:032}");
                        (
                            StatusCode::CREATED,
                            axum::Json(serde_json::json!({
                                "sid": sid,
                                "account_sid": account,
                                "to": to,
                                "status": "queued",
                            })),
                        )
                    },
                ),
            )
            .with_state(received.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        SmsProvider {
            addr,
            received,
            task,
        }
    }

    /// What it received so far.
    pub fn received(&self) -> Vec<ProviderRequest> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits until it has received `n` requests; returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<ProviderRequest> {
        wait_for(
            Duration::from_secs(60),
            &format!("{n} SMS at the provider"),
            || {
                let all = self.received();
                (all.len() >= n).then_some(all)
            },
        )
        .await
    }

    /// Stops listening.
    pub fn stop(self) {
        self.task.abort();
    }
}

/// One message the SMTP sink accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The envelope sender.
    pub mail_from: String,
    /// The envelope recipients.
    pub rcpt_to: Vec<String>,
    /// The message as sent (headers and body, dot-unstuffed, CRLF line ends).
    pub data: String,
}

impl Mail {
    /// The value of a header (first occurrence, unfolded), case-insensitive name.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(v) = value.as_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            if value.is_some() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case(name) {
                    value = Some(v.trim().to_owned());
                }
            }
        }
        value
    }
}

/// A minimal SMTP server that accepts every message (except to `nobody@…`, refused with 550)
/// and records it.
pub struct SmtpSink {
    /// Where it listens.
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Mail>>>,
    task: JoinHandle<()>,
}

impl SmtpSink {
    /// Starts on `port` (0: any).
    pub async fn start(port: u16) -> SmtpSink {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the SMTP sink");
        let addr = listener.local_addr().expect("addr");
        let received: Arc<Mutex<Vec<Mail>>> = Arc::default();
        let store = received.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = session(socket, store).await;
                });
            }
        });
        SmtpSink {
            addr,
            received,
            task,
        }
    }

    /// What it accepted so far.
    pub fn received(&self) -> Vec<Mail> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits until it has accepted `n` messages; returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Mail> {
        wait_for(
            Duration::from_secs(60),
            &format!("{n} mails at the sink"),
            || {
                let all = self.received();
                (all.len() >= n).then_some(all)
            },
        )
        .await
    }

    /// Stops listening.
    pub fn stop(self) {
        self.task.abort();
    }
}

/// One SMTP session (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT).
async fn session(
    socket: tokio::net::TcpStream,
    store: Arc<Mutex<Vec<Mail>>>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP ready\r\n").await?;
    let mut mail_from = String::new();
    let mut rcpt_to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("HELO") {
            b"250 sink.test\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail_from = command[10..].trim().to_owned();
            rcpt_to.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            let rcpt = command[8..].trim().to_owned();
            // A mailbox that does not exist: refused for good, as a real server does.
            if rcpt.contains("nobody@") {
                b"550 5.1.1 no such mailbox\r\n"
            } else {
                rcpt_to.push(rcpt);
                b"250 OK\r\n"
            }
        } else if upper == "DATA" {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                data.push_str(unstuffed);
            }
            store.lock().expect("lock").push(Mail {
                mail_from: mail_from.clone(),
                rcpt_to: rcpt_to.clone(),
                data,
            });
            b"250 OK queued\r\n"
        } else if upper == "RSET" || upper == "NOOP" {
            b"250 OK\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 command not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}
