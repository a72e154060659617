//! Hardening for the open internet, against the real binary over loopback: each attack found
//! when the server was probed from outside, reproduced, with its bounded outcome asserted.
//! Signature floods cost one HMAC at most; oversize bodies get 413 before being read; half-sent
//! requests and silent WebSockets are closed by their timeouts; a flood of idle WebSockets
//! under a low descriptor limit leaves gRPC and SMTP working; a revoked token's streams end;
//! sizes and identifiers are bounded with errors that do not echo; SMTP counts every refusal.

use crate::api_common;
use crate::voice_common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tonic::Code;

use api_common::{Server, Workspace};
use guichet::api::proto as pb;

/// The voice test configuration (every gateway) followed by `extra`.
fn voice_config(ws: &Workspace, extra: &str) -> PathBuf {
    let dir = ws.log().with_file_name("conf");
    let file = voice_common::write_config(&dir, "http://127.0.0.1:9");
    let text = std::fs::read_to_string(&file).expect("config");
    std::fs::write(&file, format!("{text}\n{extra}\n")).expect("config");
    file
}

/// The demo configuration followed by `extra`.
fn demo_with(ws: &Workspace, extra: &str) -> PathBuf {
    let dir = ws.log().with_file_name("demo-conf");
    std::fs::create_dir_all(&dir).expect("dir");
    api_common::config_with(&dir, extra)
}

/// The sum of a metric's samples whose line starts with `prefix` (name and labels).
async fn metric(client: &reqwest::Client, base: &str, prefix: &str) -> f64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

const HMACS: &str = "guichet_webhook_hmac_total{scheme=\"timestamped\"}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_floods_cost_one_hmac_at_most_and_oversize_bodies_get_413() {
    let ws = Workspace::new();
    let config = voice_config(&ws, "");
    let server = ws.start_with_config(&config);
    let base = format!("http://{}", server.http_addr);
    let client = reqwest::Client::new();
    let url = format!("{base}/voice/jambonz/incoming");
    let sip = format!("{base}/voice/sip/events");
    let body =
        serde_json::json!({"call_sid": "CA1", "from": "+33600000000", "to": voice_common::NUMBER})
            .to_string();
    let t = unix_now();

    // The attack: 10,000 `v1` entries. Refused by the header limits before any handler runs.
    let flood = format!("t={t}{}", ",v1=00".repeat(10_000));
    let before = metric(&client, &base, HMACS).await;
    let started = Instant::now();
    let answer = client
        .post(&url)
        .header("jambonz-signature", &flood)
        .body(body.clone())
        .send()
        .await;
    if let Ok(answer) = answer {
        assert!(
            answer.status().is_client_error(),
            "flood answered {}",
            answer.status()
        );
    }
    // Nine entries (under 1 KB): refused by the signature check, before hashing.
    for url in [&url, &sip] {
        let nine = format!("t={t}{}", ",v1=00".repeat(8));
        let header = if url.contains("jambonz") {
            "jambonz-signature"
        } else {
            "guichet-signature"
        };
        let answer = client
            .post(url.as_str())
            .header(header, &nine)
            .body(body.clone())
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 403);
        let text = answer.text().await.expect("text");
        assert!(text.contains("too long"), "{text}");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(metric(&client, &base, HMACS).await, before, "no HMAC yet");

    // Seven wrong `v1` and the right one (a rotation): accepted, with one HMAC.
    let good = voice_common::timestamped_sign(voice_common::JAMBONZ_SECRET, &body);
    let (t_part, v1) = good.split_once(",v1=").expect("signature");
    let rotated = format!("{t_part}{},v1={v1}", ",v1=00".repeat(6));
    let answer = client
        .post(&url)
        .header("content-type", "application/json")
        .header("jambonz-signature", &rotated)
        .body(body.clone())
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 200, "{:?}", answer.text().await);
    assert_eq!(metric(&client, &base, HMACS).await, before + 1.0);
    // Eight wrong ones: 403, one more HMAC.
    let wrong = format!("t={t}{}", format!(",v1={}", "0".repeat(64)).repeat(7));
    let answer = client
        .post(&url)
        .header("jambonz-signature", &wrong)
        .body(body.clone())
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 403);
    assert_eq!(metric(&client, &base, HMACS).await, before + 2.0);

    // A webhook body over the endpoint's limit: 413 before reading it (announced length),
    // and while reading (chunked), without any HMAC.
    let big = "x".repeat(200 * 1024);
    let answer = client
        .post(&url)
        .header("jambonz-signature", &good)
        .body(big.clone())
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 413);
    let mut raw = TcpStream::connect(server.http_addr).await.expect("connect");
    raw.write_all(
        b"POST /voice/sip/events HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n",
    )
    .await
    .expect("write");
    let chunk = format!("2000\r\n{}\r\n", "x".repeat(0x2000));
    for _ in 0..10 {
        if raw.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let mut head = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(5), raw.read_exact(&mut head))
        .await
        .expect("answered")
        .expect("read");
    assert_eq!(&head, b"HTTP/1.1 413");
    // Announced but never sent: 413 at once.
    let mut raw = TcpStream::connect(server.http_addr).await.expect("connect");
    raw.write_all(
        b"POST /voice/sip/events HTTP/1.1\r\nhost: x\r\ncontent-length: 900000000\r\n\r\n",
    )
    .await
    .expect("write");
    let mut head = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(5), raw.read_exact(&mut head))
        .await
        .expect("answered at once")
        .expect("read");
    assert_eq!(&head, b"HTTP/1.1 413");
    assert_eq!(metric(&client, &base, HMACS).await, before + 2.0);

    let health = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
}

/// Reads until the peer closes; `true` if it closed within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_and_silent_websockets_are_closed_by_their_timeouts() {
    let ws = Workspace::new();
    let config = demo_with(
        &ws,
        "[limits]\nheader_read_timeout_secs = 2\nbody_read_timeout_secs = 2\n\
         idle_timeout_secs = 3\nws_start_timeout_secs = 2\n",
    );
    let server = ws.start_with_config(&config);
    let started = Instant::now();

    // Half a request head.
    let mut head = TcpStream::connect(server.http_addr).await.expect("connect");
    head.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .expect("write");
    // Nothing at all.
    let mut silent = TcpStream::connect(server.http_addr).await.expect("connect");
    // Half a body.
    let mut body = TcpStream::connect(server.http_addr).await.expect("connect");
    body.write_all(b"POST /email/inbound HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123")
        .await
        .expect("write");
    // A keep-alive connection that goes quiet after one request.
    let mut keep = TcpStream::connect(server.http_addr).await.expect("connect");
    keep.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");

    assert!(closed_within(&mut head, Duration::from_secs(8)).await);
    assert!(closed_within(&mut silent, Duration::from_secs(8)).await);
    let mut answer = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(8), body.read_to_string(&mut answer)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(closed_within(&mut keep, Duration::from_secs(8)).await);
    assert!(started.elapsed() < Duration::from_secs(12));

    // A chat WebSocket that never sends start.
    let url = format!("ws://{}/chat/ws", server.http_addr);
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket");
    use futures_util::StreamExt;
    let frame = tokio::time::timeout(Duration::from_secs(8), socket.next())
        .await
        .expect("closed in time");
    let text = format!("{frame:?}");
    assert!(text.contains("start_timeout"), "{text}");

    let client = reqwest::Client::new();
    let base = format!("http://{}", server.http_addr);
    let timeouts = metric(&client, &base, "guichet_connection_timeouts_total").await;
    assert!(timeouts >= 2.0, "{timeouts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_websockets_under_a_low_descriptor_limit_leave_grpc_and_smtp_working() {
    let ws = Workspace::new();
    let config = demo_with(&ws, "[limits]\nws_start_timeout_secs = 120\n");
    let server = ws.server().config(&config).nofile(320).start();
    let url = format!("ws://{}/chat/ws", server.http_addr);
    let mut sockets = Vec::new();
    let mut refused = 0;
    for _ in 0..400 {
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok((socket, _)) => sockets.push(socket),
            Err(_) => refused += 1,
        }
    }
    assert!(refused > 0, "the flood was not capped");
    assert!(!sockets.is_empty());

    // gRPC still answers.
    let admin = ws.admin_token();
    let mut supervisor = server.supervisor(&admin);
    let agents = tokio::time::timeout(
        Duration::from_secs(10),
        supervisor.list_agents(pb::ListAgentsRequest::default()),
    )
    .await
    .expect("gRPC in time")
    .expect("gRPC call");
    assert!(!agents.get_ref().agents.is_empty());

    // An SMTP session still works.
    let smtp = server.smtp_addr.expect("SMTP");
    let stream = TcpStream::connect(smtp).await.expect("SMTP connect");
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let greeting = lines.next_line().await.expect("read").expect("greeting");
    assert!(greeting.starts_with("220"), "{greeting}");
    write.write_all(b"HELO test\r\n").await.expect("write");
    let hello = lines.next_line().await.expect("read").expect("line");
    assert!(hello.starts_with("250"), "{hello}");
    write.write_all(b"QUIT\r\n").await.expect("write");

    // Refusals are counted.
    let client = reqwest::Client::new();
    let base = format!("http://{}", server.http_addr);
    let counted = metric(&client, &base, "guichet_connections_refused_total").await;
    assert!(counted >= 1.0, "{counted}");
    drop(sockets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_ends_its_open_streams_within_ten_seconds() {
    let ws = Workspace::new();
    let server = Server::start(&ws.data_dir(), &ws.log());
    let (token, id) = ws.token("supervisor", None);
    let mut supervisor = server.supervisor(&token);
    let mut stats = supervisor
        .watch_stats(pb::WatchStatsRequest {
            queues: vec![],
            interval_ms: 200,
        })
        .await
        .expect("stream")
        .into_inner();
    stats.message().await.expect("first update").expect("open");
    let (agent_token, agent_id) = ws.token("agent", Some("amelie"));
    let mut desktop = server.desktop(&agent_token);
    let mut offers = desktop
        .offers(pb::OffersRequest::default())
        .await
        .expect("offers")
        .into_inner();

    ws.revoke(&id);
    ws.revoke(&agent_id);
    let revoked = Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stats.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(status) => return Some(status),
            }
        }
    })
    .await
    .expect("the stream ended within 10 s");
    let status = end.expect("ended with a status");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("revoked"));
    let left = Duration::from_secs(10).saturating_sub(revoked.elapsed());
    let end = tokio::time::timeout(left.max(Duration::from_secs(1)), async {
        loop {
            match offers.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(status) => return Some(status),
            }
        }
    })
    .await
    .expect("the offer stream ended within 10 s");
    assert_eq!(end.expect("status").code(), Code::Unauthenticated);
    assert!(ws
        .log_text()
        .contains("stream ended: its token is no longer valid"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_and_identifiers_are_bounded_without_echo() {
    let ws = Workspace::new();
    let server = Server::start(&ws.data_dir(), &ws.log());
    let admin = ws.admin_token();

    // 10,000 preferred skills.
    let mut interactions = server.interactions(&admin);
    let spec = pb::InteractionSpec {
        channel: pb::Channel::Email as i32,
        queue: "benefits".into(),
        preferred: (0..10_000).map(|i| format!("s{i}")).collect(),
        ..Default::default()
    };
    let e = interactions
        .create(pb::CreateRequest {
            spec: Some(spec),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("spec.preferred"), "{}", e.message());
    assert!(e.message().len() < 200);

    // A 512 KB agent id, ids with a space, a slash, NUL or a non-ASCII letter: refused, not echoed.
    let mut desktop = server.desktop(&admin);
    for bad in [
        "x".repeat(512 * 1024),
        "a b".into(),
        "a/b".into(),
        "a\0b".into(),
        "é".into(),
    ] {
        let e = desktop
            .login(pb::LoginRequest {
                agent_id: bad.clone(),
                ..Default::default()
            })
            .await
            .expect_err("refused");
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().starts_with("agent_id"), "{}", e.message());
        assert!(e.message().len() < 200);
    }

    // Durations over their maximum.
    let mut supervisor = server.supervisor(&admin);
    for queue in [
        pb::Queue {
            id: "q1".into(),
            wrap_up_secs: u64::MAX,
            ..Default::default()
        },
        pb::Queue {
            id: "q1".into(),
            offer_timeout_secs: u64::MAX,
            ..Default::default()
        },
        pb::Queue {
            id: "q1".into(),
            name: "n".repeat(1 << 20),
            ..Default::default()
        },
    ] {
        let e = supervisor
            .upsert_queue(pb::UpsertQueueRequest { queue: Some(queue) })
            .await
            .expect_err("refused");
        assert!(
            matches!(
                e.code(),
                Code::InvalidArgument | Code::OutOfRange | Code::ResourceExhausted
            ),
            "{e:?}"
        );
        assert!(e.message().len() < 300, "{}", e.message());
    }
    let queues = supervisor
        .list_queues(pb::ListQueuesRequest::default())
        .await
        .expect("queues");
    assert!(queues.get_ref().queues.iter().all(|q| q.id != "q1"));

    // Every other request's strings and lists: named, bounded, not echoed.
    let huge = "z".repeat(1 << 19);
    let refusals = [
        (
            "skills",
            supervisor
                .set_agent_skills(pb::SetAgentSkillsRequest {
                    agent_id: "amelie".into(),
                    skills: (0..65)
                        .map(|i| pb::SkillLevel {
                            skill: format!("s{i}"),
                            level: 1,
                        })
                        .collect(),
                })
                .await
                .map(|_| ()),
        ),
        (
            "contact",
            supervisor
                .erase_contact(pb::EraseContactRequest {
                    contact: huge.clone(),
                })
                .await
                .map(|_| ()),
        ),
        (
            "note",
            desktop
                .transfer(pb::TransferRequest {
                    agent_id: "amelie".into(),
                    interaction_id: "01KBZZZZZZZZZZZZZZZZZZZZZZ".into(),
                    note: huge.clone(),
                    to: Some(pb::transfer_request::To::Queue("tax".into())),
                })
                .await
                .map(|_| ()),
        ),
        (
            "name",
            supervisor
                .rollback_ivr(pb::RollbackIvrRequest { name: huge.clone() })
                .await
                .map(|_| ()),
        ),
        (
            "interaction_ids",
            interactions
                .watch_events(pb::WatchEventsRequest {
                    interaction_ids: vec!["../etc".into()],
                    ..Default::default()
                })
                .await
                .map(|_| ()),
        ),
    ];
    for (field, result) in refusals {
        let e = result.expect_err(field);
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {e:?}");
        assert!(e.message().starts_with(field), "{}", e.message());
        assert!(!e.message().contains("zzzz"), "{field} echoed");
    }
}

/// Supervisors' lists are paged by key: every entry once, in id order, whatever the page size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_and_queue_lists_are_paged_by_key() {
    let ws = Workspace::new();
    let server = Server::start(&ws.data_dir(), &ws.log());
    let mut supervisor = server.supervisor(&ws.admin_token());
    let mut seen = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let page = supervisor
            .list_agents(pb::ListAgentsRequest {
                page_size: 2,
                page_token: page_token.clone(),
            })
            .await
            .expect("a page")
            .into_inner();
        assert!(page.agents.len() <= 2);
        seen.extend(
            page.agents
                .into_iter()
                .filter_map(|a| a.agent)
                .map(|a| a.id),
        );
        pages += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(pages, 3, "five demo agents in pages of two");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "in id order, each once");
    assert_eq!(seen.len(), 5);

    let all = supervisor
        .list_queues(pb::ListQueuesRequest::default())
        .await
        .expect("queues")
        .into_inner();
    assert_eq!(all.queues.len(), 3);
    assert!(all.next_page_token.is_empty());
    let first = supervisor
        .list_queues(pb::ListQueuesRequest {
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .expect("queues")
        .into_inner();
    assert_eq!(first.queues.len(), 1);
    assert_eq!(first.next_page_token, first.queues[0].id);
    let e = supervisor
        .list_queues(pb::ListQueuesRequest {
            page_size: 1,
            page_token: "not a token".into(),
        })
        .await
        .expect_err("a bad token");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("page_token"), "{}", e.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_protobuf_gets_invalid_argument() {
    let ws = Workspace::new();
    let server = Server::start(&ws.data_dir(), &ws.log());
    let admin = ws.admin_token();
    // A gRPC frame whose payload is not a protobuf message (a field tag of 0).
    let mut grpc = tonic::client::Grpc::new(server.channel());
    grpc.ready().await.expect("ready");
    let mut request = tonic::Request::new(vec![0u8, 0, 0, 0xff, 0xff]);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {admin}").parse().expect("metadata"),
    );
    let path = "/guichet.v1.Supervisor/ListAgents".parse().expect("path");
    let e = grpc
        .unary::<_, Vec<u8>, _>(request, path, RawCodec)
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
}

/// Sends and receives raw bytes as gRPC messages.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Self::Error> {
        use prost::bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, Self::Error> {
        use prost::bytes::Buf;
        let mut out = vec![0u8; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_counts_every_refusal_and_refuses_nul() {
    let ws = Workspace::new();
    let server = Server::start(&ws.data_dir(), &ws.log());
    let smtp = server.smtp_addr.expect("SMTP");
    let stream = TcpStream::connect(smtp).await.expect("connect");
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    lines.next_line().await.expect("read").expect("greeting");
    write.write_all(b"EHLO test\r\n").await.expect("write");
    loop {
        let l = lines.next_line().await.expect("read").expect("line");
        if l.starts_with("250 ") {
            break;
        }
    }
    write
        .write_all(b"MAIL FROM:<a\0b@example.org>\r\n")
        .await
        .expect("write");
    let nul = lines.next_line().await.expect("read").expect("line");
    assert!(nul.starts_with("501"), "{nul}");
    write
        .write_all(b"MAIL FROM:<a@example.org>\r\n")
        .await
        .expect("write");
    let ok = lines.next_line().await.expect("read").expect("line");
    assert!(ok.starts_with("250"), "{ok}");
    // 2,000 pipelined unknown recipients: the session is closed after the error limit.
    let mut burst = String::new();
    for i in 0..2000 {
        burst.push_str(&format!("RCPT TO:<nobody{i}@nowhere.example>\r\n"));
    }
    let _ = write.write_all(burst.as_bytes()).await;
    let mut replies = 0;
    let mut closing = None;
    while let Ok(Ok(Some(line))) =
        tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await
    {
        replies += 1;
        if line.starts_with("421") {
            closing = Some(line);
            break;
        }
    }
    assert!(closing.is_some(), "no 421 after {replies} replies");
    assert!(replies <= 25, "{replies} replies before 421");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = ws.log_text();
    let logged = log.matches("unknown recipient").count();
    assert!(logged <= 2, "{logged} log lines for refused recipients");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_lists_are_paginated_and_watch_waiting_sends_the_first_entries_and_totals() {
    let ws = Workspace::new();
    let server = Server::start(&ws.data_dir(), &ws.log());
    let admin = ws.admin_token();
    let mut interactions = server.interactions(&admin);
    for _ in 0..7 {
        interactions
            .create(pb::CreateRequest {
                spec: Some(pb::InteractionSpec {
                    channel: pb::Channel::Email as i32,
                    queue: "general".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("create");
    }
    let mut supervisor = server.supervisor(&admin);
    let mut token = String::new();
    let mut seen = Vec::new();
    for round in 0.. {
        assert!(round < 5, "pagination does not end");
        let page = supervisor
            .list_waiting(pb::ListWaitingRequest {
                queues: vec!["general".into()],
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        let line = &page.lines[0];
        assert_eq!(line.waiting_total, 7);
        assert!(line.waiting.len() <= 3);
        seen.extend(line.waiting.iter().map(|i| i.id.clone()));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 7, "{seen:?}");

    for (size, token) in [(10_000, ""), (3, "not a token")] {
        let e = supervisor
            .list_waiting(pb::ListWaitingRequest {
                queues: vec![],
                page_size: size,
                page_token: token.into(),
                ..Default::default()
            })
            .await
            .expect_err("refused");
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(!e.message().contains("not a token"));
    }

    let mut watch = supervisor
        .watch_waiting(pb::WatchWaitingRequest {
            queues: vec!["general".into()],
            max_per_queue: 2,
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("update").expect("open");
    assert_eq!(first.lines[0].waiting.len(), 2);
    assert_eq!(first.lines[0].waiting_total, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_six_megabyte_email_is_offered_to_a_client_with_default_limits() {
    use api_common::{logged_in_agent, next};
    let ws = Workspace::new();
    let server = Server::start(&ws.data_dir(), &ws.log());
    // The agent's client keeps tonic's default receive limit (4 MB).
    let (_desk, mut offers) = logged_in_agent(&ws, &server, "amelie").await;

    let smtp = server.smtp_addr.expect("SMTP");
    let stream = TcpStream::connect(smtp).await.expect("connect");
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut expect = async |code: &str| loop {
        let line = lines.next_line().await.expect("read").expect("line");
        if line.starts_with(&format!("{code} ")) {
            return line;
        }
        assert!(line.starts_with(&format!("{code}-")), "{line}");
    };
    expect("220").await;
    write.write_all(b"EHLO test\r\n").await.expect("write");
    expect("250").await;
    write
        .write_all(b"MAIL FROM:<citizen@example.org>\r\n")
        .await
        .expect("write");
    expect("250").await;
    write
        .write_all(b"RCPT TO:<logement@service-public.example>\r\n")
        .await
        .expect("write");
    expect("250").await;
    write.write_all(b"DATA\r\n").await.expect("write");
    expect("354").await;
    let mut message = String::from(
        "From: citizen@example.org\r\nTo: logement@service-public.example\r\n\
         Subject: long letter\r\nMessage-ID: <long-1@example.org>\r\n\r\n",
    );
    let line = format!("{}\r\n", "mot ".repeat(19));
    while message.len() < 6 << 20 {
        message.push_str(&line);
    }
    message.push_str(".\r\n");
    write.write_all(message.as_bytes()).await.expect("write");
    let stored = expect("250").await;
    assert!(
        stored.contains("2.0.0") || stored.starts_with("250"),
        "{stored}"
    );

    let offer = loop {
        match next(&mut offers).await.update {
            Some(pb::offer_update::Update::Offer(offer)) => break offer,
            _ => continue,
        }
    };
    let text = offer
        .conversation
        .first()
        .map(|m| m.text.clone())
        .unwrap_or_default();
    assert!(text.len() < 1 << 20, "{} bytes offered", text.len());
    assert!(text.contains("full-message.txt"), "the cut is not said");
    let whole = offer
        .conversation
        .first()
        .and_then(|m| m.attachments.iter().find(|a| a.name == "full-message.txt"))
        .expect("the whole text is kept");
    assert!(whole.stored);
    assert!(whole.size > 6_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_visitor_too_slow_to_read_is_disconnected_and_can_resume() {
    use api_common::{logged_in_agent, next};
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message as WsMessage;

    let ws = Workspace::new();
    let server = Server::start(&ws.data_dir(), &ws.log());
    let (mut desk, mut offers) = logged_in_agent(&ws, &server, "david").await;
    let url = format!("ws://{}/chat/ws", server.http_addr);
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("WebSocket");
    async fn until(
        socket: &mut (impl futures_util::Stream<
            Item = Result<WsMessage, tokio_tungstenite::tungstenite::Error>,
        > + Unpin),
        kind: &str,
    ) -> serde_json::Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(20), socket.next())
                .await
                .expect("frame in time")
                .expect("open")
                .expect("frame");
            if let WsMessage::Text(text) = msg {
                let value: serde_json::Value = serde_json::from_str(text.as_str()).expect("JSON");
                if value["type"] == kind {
                    return value;
                }
            }
        }
    }
    let start = serde_json::json!({"type": "start", "name": "Ana", "language": "en"});
    socket
        .send(WsMessage::Text(start.to_string().into()))
        .await
        .expect("send");
    let started = until(&mut socket, "started").await;
    let hello = serde_json::json!({"type": "message", "text": "Hello", "client_id": "c1"});
    socket
        .send(WsMessage::Text(hello.to_string().into()))
        .await
        .expect("send");
    until(&mut socket, "queued").await;
    let reference = loop {
        if let Some(pb::offer_update::Update::Offer(o)) = next(&mut offers).await.update {
            break o.interaction.expect("interaction").id;
        }
    };
    desk.accept(pb::InteractionAction {
        interaction_id: reference.clone(),
        ..Default::default()
    })
    .await
    .expect("accept");

    // The visitor stops reading while the agent writes about 10 MB.
    let text = "x".repeat(60 * 1024);
    for _ in 0..160 {
        desk.send_message(pb::SendMessageRequest {
            interaction_id: reference.clone(),
            text: text.clone(),
            ..Default::default()
        })
        .await
        .expect("SendMessage");
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    while !ws
        .log_text()
        .contains("chat visitor too slow to read: disconnected")
    {
        assert!(
            Instant::now() < deadline,
            "the slow visitor was not disconnected"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !ws.log_text().contains("frame dropped"),
        "frames were skipped"
    );
    drop(socket);

    // The chat is still there: the visitor resumes it.
    let (mut again, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("WebSocket");
    let resume = serde_json::json!({
        "type": "resume", "session": started["session"], "token": started["resume_token"]
    });
    again
        .send(WsMessage::Text(resume.to_string().into()))
        .await
        .expect("send");
    let resumed = until(&mut again, "resumed").await;
    assert!(resumed["history"].as_array().is_some_and(|h| h.len() > 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_that_misses_pongs_is_closed_but_a_silent_visitor_is_not() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message as WsMessage;

    let ws = Workspace::new();
    let config = demo_with(&ws, "[limits]\nws_ping_secs = 1\n");
    let server = ws.start_with_config(&config);
    let url = format!("ws://{}/chat/ws", server.http_addr);
    let start = serde_json::json!({"type": "start", "name": "Ana", "language": "en"});
    let (mut silent, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("WebSocket");
    silent
        .send(WsMessage::Text(start.to_string().into()))
        .await
        .expect("send");
    let (mut deaf, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("WebSocket");
    deaf.send(WsMessage::Text(start.to_string().into()))
        .await
        .expect("send");

    // The silent visitor's browser answers pings (the library does when reading); the deaf
    // client never reads, so never answers.
    let reading = tokio::spawn(async move {
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            match tokio::time::timeout(Duration::from_millis(500), silent.next()).await {
                Ok(Some(Ok(WsMessage::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return false,
                _ => {}
            }
        }
        true
    });
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        reading.await.expect("reader"),
        "a silent visitor was closed"
    );
    let client = reqwest::Client::new();
    let base = format!("http://{}", server.http_addr);
    let pongs = metric(
        &client,
        &base,
        "guichet_connection_timeouts_total{listener=\"http\",reason=\"pong\"}",
    )
    .await;
    assert!(pongs >= 1.0, "{pongs}");
    drop(deaf);
}

/// The answer read from `stream` within five seconds (what came before it closed).
async fn answer_of(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// A sign-in with a wrong password, as forwarded by a proxy for `client`.
async fn wrong_sign_in(server: &Server, login: &str, client: &str) -> tonic::Status {
    let mut request = tonic::Request::new(pb::SignInRequest {
        login: login.into(),
        password: "not the password".into(),
    });
    request
        .metadata_mut()
        .insert("x-forwarded-for", client.parse().expect("metadata"));
    pb::sessions_client::SessionsClient::new(server.channel())
        .sign_in(request)
        .await
        .expect_err("a wrong password is refused")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_at_most_its_share_and_clients_behind_a_trusted_proxy_are_told_apart() {
    // Direct clients: at most 3 connections per address, on each listener.
    let ws = Workspace::new();
    let config = demo_with(&ws, "[limits]\nmax_per_address = 3\n");
    let server = ws.start_with_config(&config);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(server.http_addr).await.expect("connect"));
    }
    let mut fourth = TcpStream::connect(server.http_addr).await.expect("connect");
    let answer = answer_of(&mut fourth).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(
        answer.contains("too many connections from your address"),
        "{answer}"
    );
    held.pop();
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    // The server sees the close at its next read: the place comes back within moments.
    let mut health = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(answer) = fresh
            .get(format!("http://{}/healthz", server.http_addr))
            .send()
            .await
        {
            health = Some(answer);
            break;
        }
    }
    let health = health.expect("a place was given back");
    assert_eq!(health.status(), 200);
    drop(held);
    // gRPC: three idle connections take this address's places; a fourth client cannot talk.
    let mut grpc_held = Vec::new();
    for _ in 0..3 {
        grpc_held.push(TcpStream::connect(server.addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = pb::sessions_client::SessionsClient::new(server.new_channel())
        .sign_in(pb::SignInRequest {
            login: "amelie".into(),
            password: "x".into(),
        })
        .await
        .expect_err("no place left");
    // The connection is closed before any HTTP/2 frame: the client's transport fails.
    assert!(
        matches!(
            refused.code(),
            Code::Unavailable | Code::Cancelled | Code::Unknown
        ),
        "{refused:?}"
    );
    drop(grpc_held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = pb::sessions_client::SessionsClient::new(server.new_channel())
        .sign_in(pb::SignInRequest {
            login: "amelie".into(),
            password: "x".into(),
        })
        .await
        .expect_err("a wrong password");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let client = reqwest::Client::new();
    let base = format!("http://{}", server.http_addr);
    let refusals = metric(
        &client,
        &base,
        "guichet_connections_refused_total{listener=\"http\",kind=\"per_address\"}",
    )
    .await
        + metric(
            &client,
            &base,
            "guichet_connections_refused_total{listener=\"grpc\",kind=\"per_address\"}",
        )
        .await;
    assert!(refusals >= 2.0, "{refusals}");
    drop(server);

    // Behind a trusted proxy (here 127.0.0.1): the proxy's connections are not capped, its
    // clients' requests in flight are, each client by the address the proxy forwards.
    let ws = Workspace::new();
    let config = demo_with(
        &ws,
        "[limits]\nmax_per_address = 2\ntrusted_proxies = [\"127.0.0.0/8\", \"::1\"]\n",
    );
    let server = ws.start_with_config(&config);
    let mut proxy_connections = Vec::new();
    for _ in 0..6 {
        proxy_connections.push(TcpStream::connect(server.http_addr).await.expect("connect"));
    }
    let slow = |client: &'static str| {
        let addr = server.http_addr;
        async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream
                .write_all(
                    format!(
                        "POST /email/inbound HTTP/1.1\r\nhost: x\r\nx-forwarded-for: 198.51.100.1, {client}\r\n\
                         content-length: 100\r\n\r\n0123"
                    )
                    .as_bytes(),
                )
                .await
                .expect("write");
            stream
        }
    };
    let _first = slow("203.0.113.9").await;
    let _second = slow("203.0.113.9").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let over = fresh
        .get(format!("http://{}/healthz", server.http_addr))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .expect("answered");
    assert_eq!(over.status(), 429);
    assert!(over.headers().contains_key("retry-after"));
    let text = over.text().await.expect("text");
    assert!(text.contains("from your address"), "{text}");
    for other in [Some("203.0.113.10"), None] {
        let mut request = fresh.get(format!("http://{}/healthz", server.http_addr));
        if let Some(other) = other {
            request = request.header("x-forwarded-for", other);
        }
        let answer = request.send().await.expect("answered");
        assert_eq!(answer.status(), 200, "{other:?}");
    }
    drop(proxy_connections);

    // The sign-in throttle counts the forwarded client's failures, not the proxy's.
    for i in 0..21 {
        let status = wrong_sign_in(&server, &format!("nobody{i}"), "203.0.113.20").await;
        assert_ne!(status.code(), Code::Unavailable, "{status:?}");
    }
    let throttled = wrong_sign_in(&server, "nobody-else", "203.0.113.20").await;
    assert_eq!(throttled.code(), Code::ResourceExhausted, "{throttled:?}");
    let elsewhere = wrong_sign_in(&server, "nobody-else", "203.0.113.21").await;
    assert_eq!(elsewhere.code(), Code::Unauthenticated, "{elsewhere:?}");
}
