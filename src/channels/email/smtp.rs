//! The SMTP listener a mail relay delivers to (RFC 5321, relay-facing: no AUTH, no TLS): EHLO
//! or HELO, MAIL FROM (with SIZE and BODY), RCPT TO checked against the accepted recipients,
//! DATA with dot-unstuffing, RSET, NOOP, QUIT. A message gets `250` only once the intake has
//! committed it; every refusal is logged and leaves nothing stored.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::core::QueueId;

use super::intake::{Intake, Outcome, Refusal};
use super::mime;

/// How long a client may stay silent before the session is closed (RFC 5321 §4.5.3.2).
pub const IDLE_LIMIT: Duration = Duration::from_secs(300);
/// The longest command line accepted.
const MAX_COMMAND_LINE: usize = 2048;
/// Recipients per message at most.
const MAX_RECIPIENTS: usize = 100;
/// Refused commands (unknown, out of order, malformed, unknown recipients, over a limit)
/// tolerated per session before it is closed with `421`.
pub const MAX_ERRORS: usize = 20;

/// Accepts SMTP sessions on `listener` until `stop` turns true, then lets sessions in flight
/// finish their current message (at most `grace`).
pub async fn run(
    listener: TcpListener,
    intake: Arc<Intake>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let sessions = Arc::new(Semaphore::new(intake.config().max_sessions));
    let mut running = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        warn!("SMTP accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let permit = sessions.clone().try_acquire_owned();
                let intake = intake.clone();
                let stop = stop.clone();
                running.spawn(async move {
                    match permit {
                        Ok(_permit) => session(stream, peer, intake, stop).await,
                        Err(_) => {
                            warn!(%peer, "SMTP refused: too many sessions");
                            crate::channels::count_refusal("email", "too_many_sessions");
                            let mut stream = stream;
                            let _ = stream
                                .write_all(b"421 4.3.2 Too many connections, try again later\r\n")
                                .await;
                        }
                    }
                });
            }
            _ = stop.changed() => break,
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(grace, async {
        while running.join_next().await.is_some() {}
    })
    .await;
    running.abort_all();
    info!("SMTP listener stopped");
}

/// One line read from the client.
enum Line {
    /// A line (with its end).
    Text,
    /// Longer than allowed; discarded up to its end.
    TooLong,
    /// The client closed the connection.
    Closed,
}

/// Reads one line into `buf` (cleared first), at most `limit` bytes.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(Line::Closed);
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if buf.len() + take <= limit {
            buf.extend_from_slice(&available[..take]);
        } else {
            too_long = true;
        }
        reader.consume(take);
        if done {
            return Ok(if too_long { Line::TooLong } else { Line::Text });
        }
    }
}

/// The line without its CRLF (or bare LF).
fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A reply's text on one line (reasons may come from anywhere).
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// The address in `<...>` after `FROM:` or `TO:` (source routes dropped), and the parameters.
fn path_and_params(arg: &str) -> Option<(String, Vec<String>)> {
    let arg = arg.trim_start();
    let rest = arg.strip_prefix('<')?;
    let end = rest.find('>')?;
    let mut path = &rest[..end];
    if let Some((_, mailbox)) = path.split_once(':') {
        if path.starts_with('@') {
            path = mailbox;
        }
    }
    let params = rest[end + 1..]
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    Some((path.trim().to_owned(), params))
}

/// The state of one session.
struct Transaction {
    from: Option<String>,
    recipients: Vec<(String, QueueId)>,
}

impl Transaction {
    fn new() -> Self {
        Transaction {
            from: None,
            recipients: Vec::new(),
        }
    }
}

async fn session(
    stream: TcpStream,
    peer: SocketAddr,
    intake: Arc<Intake>,
    mut stop: watch::Receiver<bool>,
) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let host = intake.domain().to_owned();
    let max = intake.config().max_message_bytes;
    macro_rules! reply {
        ($($arg:tt)*) => {{
            let text = format!($($arg)*);
            if write.write_all(format!("{text}\r\n").as_bytes()).await.is_err() {
                return;
            }
        }};
    }
    reply!("220 {host} ESMTP Guichet ready");
    let mut greeted = false;
    let mut tx = Transaction::new();
    let mut errors = 0usize;
    // Refused recipients: the first is logged, the rest counted and logged once at the end.
    let mut refused_recipients = 0usize;
    let mut buf = Vec::new();
    let summary = |refused: usize| {
        if refused > 1 {
            warn!(%peer, count = refused, "SMTP session refused {refused} unknown recipients");
        }
    };
    loop {
        if errors >= MAX_ERRORS {
            summary(refused_recipients);
            warn!(%peer, "SMTP session closed after {errors} errors");
            reply!("421 4.7.0 Too many errors, closing the connection");
            // Commands still pipelined are read and dropped for a moment (at most 1 MB, one
            // second) so that the close does not reset the connection before the client reads
            // the 421.
            let _ = write.shutdown().await;
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                let mut sink = [0u8; 8192];
                let mut left = 1usize << 20;
                while left > 0 {
                    match reader.read(&mut sink).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => left = left.saturating_sub(n),
                    }
                }
            })
            .await;
            return;
        }
        let line = tokio::select! {
            r = tokio::time::timeout(IDLE_LIMIT, read_line(&mut reader, &mut buf, MAX_COMMAND_LINE)) => r,
            _ = stop.changed() => {
                reply!("421 4.3.2 Service shutting down, try again later");
                return;
            }
        };
        let line = match line {
            Err(_) => {
                reply!("421 4.4.2 Idle for too long, closing the connection");
                return;
            }
            Ok(Err(e)) => {
                debug!(%peer, "SMTP read failed: {e}");
                return;
            }
            Ok(Ok(Line::Closed)) => {
                summary(refused_recipients);
                return;
            }
            Ok(Ok(Line::TooLong)) => {
                errors += 1;
                reply!("500 5.5.6 Line too long");
                continue;
            }
            Ok(Ok(Line::Text)) => String::from_utf8_lossy(trim_eol(&buf)).into_owned(),
        };
        // NUL is not text (RFC 5321 §4.1.1): no command, address or parameter carries it.
        if line.contains('\0') {
            errors += 1;
            reply!("501 5.5.2 NUL characters are not allowed in commands");
            continue;
        }
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim().to_owned()),
            None => (line.trim().to_ascii_uppercase(), String::new()),
        };
        match verb.as_str() {
            "EHLO" | "HELO" if arg.is_empty() => {
                errors += 1;
                reply!("501 5.5.4 {verb} needs a domain or address");
            }
            "EHLO" => {
                greeted = true;
                tx = Transaction::new();
                reply!(
                    "250-{host} greets {arg}\r\n250-SIZE {max}\r\n250-8BITMIME\r\n\
                     250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250 HELP"
                );
            }
            "HELO" => {
                greeted = true;
                tx = Transaction::new();
                reply!("250 {host} greets {arg}");
            }
            "MAIL" => {
                let Some(arg) = strip_keyword(&arg, "FROM:") else {
                    errors += 1;
                    reply!("501 5.5.4 Syntax: MAIL FROM:<address>");
                    continue;
                };
                if !greeted {
                    errors += 1;
                    reply!("503 5.5.1 Send EHLO or HELO first");
                    continue;
                }
                if tx.from.is_some() {
                    errors += 1;
                    reply!("503 5.5.1 A transaction is already open: RSET first");
                    continue;
                }
                let Some((from, params)) = path_and_params(arg) else {
                    errors += 1;
                    reply!("501 5.1.7 Syntax: MAIL FROM:<address>");
                    continue;
                };
                match check_mail_params(&params, max) {
                    Ok(()) => {
                        tx.from = Some(from);
                        reply!("250 2.1.0 Sender OK");
                    }
                    Err(reply) => {
                        if reply.starts_with("552") {
                            warn!(%peer, %from, "SMTP refused: announced size over the limit");
                            crate::channels::count_refusal("email", "too_big");
                        }
                        errors += 1;
                        reply!("{reply}");
                    }
                }
            }
            "RCPT" => {
                let Some(arg) = strip_keyword(&arg, "TO:") else {
                    errors += 1;
                    reply!("501 5.5.4 Syntax: RCPT TO:<address>");
                    continue;
                };
                if tx.from.is_none() {
                    errors += 1;
                    reply!("503 5.5.1 Send MAIL FROM first");
                    continue;
                }
                let Some((to, _)) = path_and_params(arg) else {
                    errors += 1;
                    reply!("501 5.1.3 Syntax: RCPT TO:<address>");
                    continue;
                };
                if tx.recipients.len() >= MAX_RECIPIENTS {
                    errors += 1;
                    reply!("452 4.5.3 Too many recipients");
                    continue;
                }
                match intake.queue_for(&to) {
                    Ok(queue) => {
                        tx.recipients.push((to.to_ascii_lowercase(), queue));
                        reply!("250 2.1.5 Recipient OK");
                    }
                    Err(refusal) => {
                        errors += 1;
                        refused_recipients += 1;
                        if refused_recipients == 1 {
                            let to = one_line(&to);
                            warn!(%peer, recipient = %to, "SMTP refused: unknown recipient");
                        }
                        crate::channels::count_refusal("email", "unknown_recipient");
                        reply!("550 5.1.1 {}", one_line(&refusal.to_string()));
                    }
                }
            }
            "DATA" => {
                if tx.from.is_none() {
                    errors += 1;
                    reply!("503 5.5.1 Send MAIL FROM first");
                    continue;
                }
                if tx.recipients.is_empty() {
                    errors += 1;
                    reply!("554 5.5.1 No valid recipients");
                    continue;
                }
                reply!("354 End data with <CR><LF>.<CR><LF>");
                let data = match read_data(&mut reader, max).await {
                    Ok(Some(data)) => data,
                    Ok(None) | Err(_) => {
                        info!(%peer, "SMTP client left during DATA: nothing stored");
                        return;
                    }
                };
                let from = tx.from.take().unwrap_or_default();
                let recipients = std::mem::take(&mut tx.recipients);
                let answer = match data {
                    Data::TooBig => {
                        errors += 1;
                        warn!(%peer, %from, limit = max, "SMTP refused: message too big");
                        crate::channels::count_refusal("email", "too_big");
                        format!("552 5.3.4 Message size exceeds the limit of {max} bytes")
                    }
                    Data::Message(raw) => deliver(&intake, peer, &from, &recipients, &raw).await,
                };
                reply!("{answer}");
            }
            "RSET" => {
                tx = Transaction::new();
                reply!("250 2.0.0 Reset");
            }
            "NOOP" => reply!("250 2.0.0 OK"),
            "QUIT" => {
                summary(refused_recipients);
                reply!("221 2.0.0 Bye");
                return;
            }
            "VRFY" => reply!("252 2.5.0 Cannot verify the user; send the message"),
            "HELP" => reply!("214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT"),
            "STARTTLS" | "AUTH" | "BDAT" | "EXPN" | "TURN" | "ETRN" => {
                errors += 1;
                reply!("502 5.5.1 {verb} not implemented");
            }
            _ => {
                errors += 1;
                reply!("500 5.5.2 Command not recognised");
            }
        }
    }
}

/// `arg` after a case-insensitive `keyword` (`FROM:`), spaces after the colon allowed.
fn strip_keyword<'a>(arg: &'a str, keyword: &str) -> Option<&'a str> {
    let head = arg.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword)
        .then(|| &arg[keyword.len()..])
}

/// Checks MAIL FROM parameters: SIZE against the limit, BODY, SMTPUTF8.
fn check_mail_params(params: &[String], max: usize) -> Result<(), String> {
    for p in params {
        let (key, value) = p.split_once('=').unwrap_or((p, ""));
        match key.to_ascii_uppercase().as_str() {
            "SIZE" => match value.parse::<u64>() {
                Ok(size) if size > max as u64 => {
                    return Err(format!(
                        "552 5.3.4 Message size exceeds the limit of {max} bytes"
                    ))
                }
                Ok(_) => {}
                Err(_) => return Err(format!("501 5.5.4 Bad SIZE value {value:?}")),
            },
            "BODY"
                if value.eq_ignore_ascii_case("7BIT") || value.eq_ignore_ascii_case("8BITMIME") => {
            }
            "SMTPUTF8" => {}
            _ => return Err(format!("555 5.5.4 Unsupported parameter {p}")),
        }
    }
    Ok(())
}

/// What DATA read.
enum Data {
    /// The message, dot-unstuffed, lines ending in CRLF.
    Message(Vec<u8>),
    /// More than the limit (read to its end and dropped).
    TooBig,
}

/// Reads the message up to the lone dot; `None` when the client closed the connection first.
async fn read_data<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Option<Data>> {
    let mut data = Vec::new();
    let mut too_big = false;
    let mut buf = Vec::new();
    loop {
        let line = tokio::time::timeout(IDLE_LIMIT, read_line(reader, &mut buf, max + 2))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        match line {
            Line::Closed => return Ok(None),
            Line::TooLong => too_big = true,
            Line::Text => {
                let content = trim_eol(&buf);
                if content == b"." {
                    return Ok(Some(if too_big {
                        Data::TooBig
                    } else {
                        Data::Message(data)
                    }));
                }
                let content = content.strip_prefix(b".").unwrap_or(content);
                if too_big || data.len() + content.len() + 2 > max {
                    too_big = true;
                    data = Vec::new();
                } else {
                    data.extend_from_slice(content);
                    data.extend_from_slice(b"\r\n");
                }
            }
        }
    }
}

/// Parses and commits a received message: the SMTP reply.
async fn deliver(
    intake: &Intake,
    peer: SocketAddr,
    envelope_from: &str,
    recipients: &[(String, QueueId)],
    raw: &[u8],
) -> String {
    // One interaction per message, in the first accepted recipient's queue.
    let (to, queue) = &recipients[0];
    let limit = intake.config().max_attachment_bytes;
    let parsed = mime::parse(raw, to, Some(envelope_from), limit);
    let mut email = match parsed {
        Ok(email) => email,
        Err(reason) => {
            warn!(%peer, from = %envelope_from, "SMTP refused: malformed message: {reason}");
            crate::channels::count_refusal("email", "malformed");
            return format!("554 5.6.0 Malformed message: {}", one_line(&reason));
        }
    };
    if envelope_from.is_empty() {
        // A bounce (null sender): stored, never acknowledged.
        email.automatic = true;
    }
    match intake.deliver(email, queue.clone()).await {
        Ok(Outcome::Duplicate(i)) => format!("250 2.0.0 Already received (interaction {i})"),
        Ok(outcome) => format!(
            "250 2.0.0 OK: {} interaction {}",
            outcome.as_str(),
            outcome.interaction()
        ),
        Err(refusal) => {
            warn!(%peer, from = %envelope_from, "SMTP refused: {refusal}");
            crate::channels::count_refusal("email", "refused");
            let text = one_line(&refusal.to_string());
            match refusal {
                Refusal::UnknownRecipient(_) => format!("550 5.1.1 {text}"),
                Refusal::TooBig { .. } => format!("552 5.3.4 {text}"),
                Refusal::Malformed(_) => format!("554 5.6.0 {text}"),
                _ => format!("451 4.3.0 {text}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// The command parsers answer any line (shaped like a command or not) without panic.
        #[test]
        fn command_parsers_never_panic(
            line in "(MAIL FROM:|RCPT TO:|mail from:|EHLO |)[ -~\u{0}é]{0,120}",
            max in 0usize..100_000,
        ) {
            for keyword in ["FROM:", "TO:"] {
                if let Some(arg) = strip_keyword(&line, keyword) {
                    if let Some((_, params)) = path_and_params(arg) {
                        let _ = check_mail_params(&params, max);
                    }
                }
            }
            let _ = path_and_params(&line);
            let _ = one_line(&line);
        }
    }

    #[test]
    fn paths_and_parameters_are_read() {
        assert_eq!(
            path_and_params(" <a@b.c> SIZE=10 BODY=8BITMIME"),
            Some((
                "a@b.c".into(),
                vec!["SIZE=10".into(), "BODY=8BITMIME".into()]
            ))
        );
        assert_eq!(
            path_and_params("<@relay.example:x@y.z>"),
            Some(("x@y.z".into(), vec![]))
        );
        assert_eq!(path_and_params("<>"), Some((String::new(), vec![])));
        assert_eq!(path_and_params("a@b"), None);
        assert!(check_mail_params(&["SIZE=2000".into()], 1000)
            .unwrap_err()
            .starts_with("552 5.3.4"));
        assert!(check_mail_params(&["FOO=1".into()], 1000)
            .unwrap_err()
            .starts_with("555"));
    }

    #[tokio::test]
    async fn data_is_dot_unstuffed_and_bounded() {
        let input: &[u8] = b"Subject: x\r\n\r\n..leading dot\nbare lf\r\n.\r\nNEXT\r\n";
        let mut reader = BufReader::new(input);
        let Some(Data::Message(m)) = read_data(&mut reader, 1000).await.expect("read") else {
            panic!("expected a message");
        };
        assert_eq!(m, b"Subject: x\r\n\r\n.leading dot\r\nbare lf\r\n");
        let mut rest = Vec::new();
        let _ = read_line(&mut reader, &mut rest, 100).await.expect("line");
        assert_eq!(rest, b"NEXT\r\n");

        let big: &[u8] = b"0123456789\r\n0123456789\r\n.\r\n";
        let mut reader = BufReader::new(big);
        assert!(matches!(
            read_data(&mut reader, 15).await.expect("read"),
            Some(Data::TooBig)
        ));
    }
}
