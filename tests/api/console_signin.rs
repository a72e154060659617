//! People signing in to the console, against the real binary over loopback: the demo's first
//! start writes their passwords, `Sessions.SignIn` opens a session that the same services accept
//! with the same roles (over gRPC and over gRPC-web on the HTTP listener), wrong passwords are
//! refused and throttled before hashing, sessions expire, end at sign-out, survive a restart,
//! and end when the person is disabled; `guichet user` manages people; a version-10 database
//! opens upgraded.

use crate::api_common;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use api_common::*;
use prost::Message;
use tonic::Code;

use guichet::api::proto as pb;
use pb::sessions_client::SessionsClient;

/// The passwords the first start wrote: login → password.
fn demo_passwords(ws: &Workspace) -> HashMap<String, String> {
    let text = std::fs::read_to_string(ws.data_dir().join("console-passwords.txt"))
        .expect("console-passwords.txt written by the first start");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_owned(), w.next()?.to_owned()))
        })
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

fn sessions(server: &Server, bearer: Bearer) -> SessionsClient<Authed> {
    SessionsClient::with_interceptor(server.channel(), bearer)
}

async fn sign_in(
    server: &Server,
    login: &str,
    password: &str,
) -> Result<pb::SignInResponse, tonic::Status> {
    sessions(server, Bearer::none())
        .sign_in(pb::SignInRequest {
            login: login.into(),
            password: password.into(),
        })
        .await
        .map(|r| r.into_inner())
}

fn user_cli(ws: &Workspace, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(GUICHET)
        .arg("user")
        .args(args)
        .arg("--config")
        .arg(api_common::backend_config(&ws.data_dir(), &demo_config()))
        .arg("--data-dir")
        .arg(ws.data_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run guichet user");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write the password");
    child.wait_with_output().expect("output")
}

#[tokio::test]
async fn a_session_acts_with_its_role_on_the_same_services_and_ends_at_sign_out() {
    let ws = Workspace::new();
    let server = ws.start();
    let passwords = demo_passwords(&ws);
    assert_eq!(
        passwords.len(),
        6,
        "five agents and a supervisor: {passwords:?}"
    );

    let signed = sign_in(&server, "Amelie", &passwords["amelie"])
        .await
        .expect("amelie signs in (logins are case-insensitive)");
    assert!(signed.session.starts_with("gcs_"), "{}", signed.session);
    let who = signed.who.clone().expect("who");
    assert_eq!(
        (who.login.as_str(), who.role.as_str(), who.agent_id.as_str()),
        ("amelie", "agent", "amelie")
    );
    assert_eq!(who.credential, "session");
    let now_ms = now_ms();
    let left = who.expires_unix_ms - now_ms;
    assert!(
        (8 * 3600 * 1000 - 60_000..=8 * 3600 * 1000).contains(&left),
        "{left}"
    );

    // The desktop with the session, as with an agent token: bound to its own agent.
    let mut desk = server.desktop(&signed.session);
    let status = desk
        .login(pb::LoginRequest::default())
        .await
        .expect("Login")
        .into_inner();
    assert_eq!(status.agent.expect("agent").id, "amelie");
    assert_status(
        desk.set_state(pb::SetStateRequest {
            agent_id: "bruno".into(),
            state: pb::agent_state::Kind::Available as i32,
            ..Default::default()
        })
        .await,
        Code::PermissionDenied,
        &["amelie", "bruno"],
    );
    // An agent's session is not a supervisor's.
    assert_status(
        server
            .supervisor(&signed.session)
            .list_agents(pb::ListAgentsRequest::default())
            .await,
        Code::PermissionDenied,
        &["supervisor"],
    );
    let boss = sign_in(&server, "supervisor", &passwords["supervisor"])
        .await
        .expect("the supervisor signs in");
    let agents = server
        .supervisor(&boss.session)
        .list_agents(pb::ListAgentsRequest::default())
        .await
        .expect("ListAgents with a supervisor session")
        .into_inner();
    assert_eq!(agents.agents.len(), 5);

    // WhoAmI with a session and with an API token.
    let me = sessions(&server, Bearer::token(&signed.session))
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("WhoAmI")
        .into_inner();
    assert_eq!((me.login.as_str(), me.name.as_str()), ("amelie", "amelie"));
    let admin = ws.admin_token();
    let me = sessions(&server, Bearer::token(&admin))
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("WhoAmI with a token")
        .into_inner();
    assert_eq!(
        (me.role.as_str(), me.credential.as_str(), me.expires_unix_ms),
        ("admin", "token", 0)
    );

    // Wrong password and unknown login: the same answer, nothing opened.
    let wrong = assert_status(
        sign_in(&server, "amelie", "not the password at all").await,
        Code::Unauthenticated,
        &["wrong login or password"],
    );
    let unknown = assert_status(
        sign_in(&server, "nobody", "not the password at all").await,
        Code::Unauthenticated,
        &["wrong login or password"],
    );
    assert_eq!(wrong.message(), unknown.message());
    assert_status(
        sign_in(&server, "", "x").await,
        Code::InvalidArgument,
        &["required"],
    );
    assert_status(
        sign_in(&server, &"a".repeat(100), "x").await,
        Code::InvalidArgument,
        &["at most 64"],
    );

    // Sign-out ends the session at once (the cache forgets it).
    let out = sessions(&server, Bearer::token(&signed.session))
        .sign_out(pb::SignOutRequest {})
        .await
        .expect("SignOut")
        .into_inner();
    assert!(out.ended);
    assert_status(
        desk.login(pb::LoginRequest::default()).await,
        Code::Unauthenticated,
        &["session", "sign in again"],
    );
    let again = sessions(&server, Bearer::token(&signed.session))
        .sign_out(pb::SignOutRequest {})
        .await
        .expect("SignOut again is harmless")
        .into_inner();
    assert!(!again.ended);
    assert_status(
        sessions(&server, Bearer::none())
            .who_am_i(pb::WhoAmIRequest {})
            .await,
        Code::Unauthenticated,
        &["authorization"],
    );
}

#[tokio::test]
async fn wrong_passwords_are_throttled_before_hashing_and_routing_goes_on() {
    let ws = Workspace::new();
    let server = ws.start();
    let passwords = demo_passwords(&ws);
    let admin = ws.admin_token();
    let (_desk, mut offers) = logged_in_agent(&ws, &server, "bruno").await;

    // 50 wrong passwords at once for one account, while an interaction is created.
    let flood: Vec<_> = (0..50)
        .map(|i| {
            let server_channel = server.channel();
            tokio::spawn(async move {
                SessionsClient::with_interceptor(server_channel, Bearer::none())
                    .sign_in(pb::SignInRequest {
                        login: "amelie".into(),
                        password: format!("wrong password {i}"),
                    })
                    .await
            })
        })
        .collect();
    let created = server
        .interactions(&admin)
        .create(spec("general", pb::Channel::Chat, "visitor-1", "flood-1"))
        .await
        .expect("Create during the flood")
        .into_inner();
    let mut codes = HashMap::new();
    let mut throttled_message = String::new();
    for f in flood {
        let status = f.await.expect("joined").expect_err("refused");
        if status.code() == Code::ResourceExhausted {
            assert!(
                status
                    .message()
                    .contains("too many failed sign-ins for this account"),
                "{status:?}"
            );
            throttled_message = status.message().to_owned();
        }
        *codes.entry(status.code()).or_insert(0) += 1;
    }
    assert_eq!(codes.values().sum::<i32>(), 50, "{codes:?}");
    assert!(
        codes.get(&Code::ResourceExhausted).copied().unwrap_or(0) >= 40,
        "most of the flood is refused before any hashing: {codes:?}"
    );
    // The offer was made meanwhile (bruno is among the general queue's agents).
    let offered = loop {
        match next(&mut offers).await.update {
            Some(pb::offer_update::Update::Offer(o)) => break o,
            _ => continue,
        }
    };
    assert_eq!(
        offered.interaction.expect("interaction").id,
        created.interaction.expect("created").id
    );

    // The refusals say how long to wait; after that, the right password works again.
    let wait: u64 = throttled_message
        .split("wait ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a wait in {throttled_message:?}"));
    assert!((1..=900).contains(&wait), "{wait}");
    tokio::time::sleep(Duration::from_secs(wait)).await;
    eventually(
        Duration::from_secs(20),
        "amelie signs in after the wait",
        || async { sign_in(&server, "amelie", &passwords["amelie"]).await.ok() },
    )
    .await;
    // Another account from the same address is not locked by amelie's failures.
    sign_in(&server, "chloe", &passwords["chloe"])
        .await
        .expect("chloe signs in");

    let metrics = reqwest::get(format!("http://{}/metrics", server.http_addr))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let refused: f64 = metrics
        .lines()
        .find(|l| l.starts_with("guichet_sign_ins_total{outcome=\"refused\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .expect("refused sign-ins counted");
    assert!(refused <= 10.0, "hashed at most a handful: {refused}");
}

#[tokio::test]
async fn sessions_expire_survive_a_restart_and_end_when_the_person_is_disabled() {
    let ws = Workspace::new();
    let mut server = ws.start();
    let passwords = demo_passwords(&ws);
    let signed = sign_in(&server, "david", &passwords["david"])
        .await
        .expect("david signs in");

    // A session about to expire, opened through the store beside the running server.
    let store = guichet::store::Store::open_shared(&ws.store_config())
        .expect("store opened beside the server");
    let emma = store
        .user_credentials("emma")
        .expect("read")
        .expect("emma exists")
        .user;
    let now = guichet::core::Timestamp::from_millis(now_ms() as u64);
    let (short, _) = store
        .create_session(
            &emma,
            now,
            guichet::core::Timestamp::from_millis(now.as_millis() + 1500),
        )
        .expect("session");
    drop(store);
    let mut desk = server.desktop(&short);
    desk.login(pb::LoginRequest::default())
        .await
        .expect("works before expiry");
    let mut stream = desk
        .offers(pb::OffersRequest::default())
        .await
        .expect("Offers")
        .into_inner();
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_status(
        desk.login(pb::LoginRequest::default()).await,
        Code::Unauthenticated,
        &["expired"],
    );
    // The open stream ends too.
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => break None,
                Err(status) => break Some(status),
            }
        }
    })
    .await
    .expect("the stream ends within 15 s");
    assert_eq!(ended.map(|s| s.code()), Some(Code::Unauthenticated));

    // A restart keeps david's session.
    server.terminate();
    let server = ws.start();
    let mut desk = server.desktop(&signed.session);
    desk.login(pb::LoginRequest::default())
        .await
        .expect("the session survives a restart");

    // Disabling david ends it (within the cache's 5 s), and refuses his password.
    let out = user_cli(&ws, &["disable", "david"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(Duration::from_secs(10), "the session refused", || {
        let mut desk = desk.clone();
        async move {
            match desk.login(pb::LoginRequest::default()).await {
                Err(s) if s.code() == Code::Unauthenticated => Some(()),
                _ => None,
            }
        }
    })
    .await;
    assert_status(
        sign_in(&server, "david", &passwords["david"]).await,
        Code::PermissionDenied,
        &["disabled"],
    );
    let out = user_cli(&ws, &["enable", "david"], "");
    assert!(out.status.success());
    sign_in(&server, "david", &passwords["david"])
        .await
        .expect("enabled again");

    // passwd: the new password works, the old one no longer.
    let out = user_cli(&ws, &["passwd", "david"], "a brand new password\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sign_in(&server, "david", "a brand new password")
        .await
        .expect("new password");
    assert_status(
        sign_in(&server, "david", &passwords["david"]).await,
        Code::Unauthenticated,
        &["wrong"],
    );
}

#[tokio::test]
async fn the_user_command_adds_lists_and_refuses_what_is_wrong() {
    let ws = Workspace::new();
    let server = ws.start();
    let add = |args: &[&str], password: &str| {
        let mut all = vec!["add"];
        all.extend_from_slice(args);
        user_cli(&ws, &all, password)
    };
    let out = add(
        &["marie", "--role", "supervisor", "--name", "Marie Dupont"],
        "long enough password\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = add(&["paul", "--role", "agent"], "long enough password\n");
    assert_eq!(out.status.code(), Some(2), "an agent user needs --agent");
    let out = add(
        &["paul", "--role", "agent", "--agent", "nobody"],
        "long enough password\n",
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    let out = add(&["paul", "--role", "supervisor"], "short\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 10 characters"));
    let out = add(
        &["Paul Smith", "--role", "supervisor"],
        "long enough password\n",
    );
    assert_eq!(out.status.code(), Some(2));
    let out = add(&["marie", "--role", "supervisor"], "long enough password\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("taken"));
    let out = add(&["robot", "--role", "integrator"], "long enough password\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("token"));

    let signed = sign_in(&server, "marie", "long enough password")
        .await
        .expect("marie signs in");
    assert_eq!(signed.who.expect("who").name, "Marie Dupont");
    let out = user_cli(&ws, &["list"], "");
    let listed = String::from_utf8_lossy(&out.stdout);
    let marie = listed
        .lines()
        .find(|l| l.starts_with("marie "))
        .unwrap_or_else(|| panic!("marie listed: {listed}"));
    assert!(
        marie.contains("supervisor") && marie.contains("enabled") && marie.contains("Marie Dupont"),
        "{marie}"
    );
    assert!(!listed.contains("long enough password"));
}

/// Frames a gRPC-web request body.
fn grpc_web_frame(message: &impl Message) -> Vec<u8> {
    let body = message.encode_to_vec();
    let mut out = vec![0u8];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Splits a gRPC-web response body into its messages and its trailers.
fn grpc_web_frames(body: &[u8]) -> (Vec<Vec<u8>>, String) {
    let mut messages = Vec::new();
    let mut trailers = String::new();
    let mut rest = body;
    while rest.len() >= 5 {
        let flag = rest[0];
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let data = &rest[5..5 + len];
        if flag & 0x80 != 0 {
            trailers.push_str(&String::from_utf8_lossy(data));
        } else {
            messages.push(data.to_vec());
        }
        rest = &rest[5 + len..];
    }
    (messages, trailers)
}

#[tokio::test]
async fn the_browser_calls_the_same_services_through_grpc_web_on_the_http_origin() {
    let ws = Workspace::new();
    let server = ws.start();
    let passwords = demo_passwords(&ws);
    let http = reqwest::Client::builder()
        .http1_only()
        .build()
        .expect("client");
    let base = format!("http://{}", server.http_addr);
    let call = |path: &str, body: Vec<u8>, session: Option<&str>| {
        let mut request = http
            .post(format!("{base}{path}"))
            .header("content-type", "application/grpc-web+proto")
            .header("x-grpc-web", "1")
            .body(body);
        if let Some(s) = session {
            request = request.header("authorization", format!("Bearer {s}"));
        }
        request.send()
    };
    let response = call(
        "/guichet.v1.Sessions/SignIn",
        grpc_web_frame(&pb::SignInRequest {
            login: "chloe".into(),
            password: passwords["chloe"].clone(),
        }),
        None,
    )
    .await
    .expect("SignIn over gRPC-web");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    let (messages, trailers) = grpc_web_frames(&response.bytes().await.expect("body"));
    assert!(trailers.contains("grpc-status:0"), "{trailers:?}");
    let signed = pb::SignInResponse::decode(messages[0].as_slice()).expect("decoded");

    // Wrong password: the status comes back to the browser with its message.
    let response = call(
        "/guichet.v1.Sessions/SignIn",
        grpc_web_frame(&pb::SignInRequest {
            login: "chloe".into(),
            password: "not her password".into(),
        }),
        None,
    )
    .await
    .expect("answered");
    let status = response
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let body = response.bytes().await.expect("body");
    let (_, trailers) = grpc_web_frames(&body);
    assert!(
        status.as_deref() == Some("16") || trailers.contains("grpc-status:16"),
        "{status:?} {trailers:?}"
    );

    // The desktop through gRPC-web with the session: Login, then the offer stream.
    let response = call(
        "/guichet.v1.AgentDesktop/Login",
        grpc_web_frame(&pb::LoginRequest::default()),
        Some(&signed.session),
    )
    .await
    .expect("Login");
    let (messages, _) = grpc_web_frames(&response.bytes().await.expect("body"));
    let status = pb::AgentStatus::decode(messages[0].as_slice()).expect("status");
    assert_eq!(status.agent.expect("agent").id, "chloe");

    let mut stream = call(
        "/guichet.v1.AgentDesktop/Offers",
        grpc_web_frame(&pb::OffersRequest::default()),
        Some(&signed.session),
    )
    .await
    .expect("Offers");
    let admin = ws.admin_token();
    let created = server
        .interactions(&admin)
        .create(spec("general", pb::Channel::Chat, "visitor-web", "web-1"))
        .await
        .expect("Create")
        .into_inner()
        .interaction
        .expect("interaction");
    let mut buffer = Vec::new();
    let offer = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let chunk = stream.chunk().await.expect("chunk").expect("stream open");
            buffer.extend_from_slice(&chunk);
            let (messages, _) = grpc_web_frames(&buffer);
            for m in messages {
                let update = pb::OfferUpdate::decode(m.as_slice()).expect("update");
                if let Some(pb::offer_update::Update::Offer(o)) = update.update {
                    return o;
                }
            }
        }
    })
    .await
    .expect("an offer over gRPC-web");
    assert_eq!(offer.interaction.expect("interaction").id, created.id);
    assert!(offer.deadline_unix_ms > 0);
    // Accepted (else the offer times out and comes back, which keeps the stream busy).
    let response = call(
        "/guichet.v1.AgentDesktop/Accept",
        grpc_web_frame(&pb::InteractionAction {
            interaction_id: created.id.clone(),
            ..Default::default()
        }),
        Some(&signed.session),
    )
    .await
    .expect("Accept");
    let (messages, trailers) = grpc_web_frames(&response.bytes().await.expect("body"));
    assert!(trailers.contains("grpc-status:0"), "{trailers:?}");
    let accepted = pb::Interaction::decode(messages[0].as_slice()).expect("interaction");
    assert_eq!(accepted.phase, pb::Phase::Assigned as i32);

    // An idle stream gets a heartbeat within 30 s.
    buffer.clear();
    let beat = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let chunk = stream.chunk().await.expect("chunk").expect("stream open");
            buffer.extend_from_slice(&chunk);
            let (messages, _) = grpc_web_frames(&buffer);
            for m in messages {
                let update = pb::OfferUpdate::decode(m.as_slice()).expect("update");
                if let Some(pb::offer_update::Update::Heartbeat(h)) = update.update {
                    return h;
                }
            }
        }
    })
    .await
    .expect("a heartbeat within 30 s");
    assert!(beat.at_unix_ms > 0);
}

#[test]
fn a_version_10_database_opens_upgraded_with_its_tokens_and_no_user() {
    use guichet::store::{Role, Store, StoreConfig, DATABASE_FILE, SCHEMA_VERSION};
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/schema_v10_console.db");
    std::fs::copy(&fixture, dir.path().join(DATABASE_FILE)).expect("fixture copied");
    let store = Store::open(&StoreConfig::new(dir.path())).expect("opened");
    assert_eq!(store.found_schema_version(), 10);
    const { assert!(SCHEMA_VERSION >= 11) };
    let tokens = store.list_tokens().expect("tokens");
    assert_eq!(tokens.len(), 2, "the admin and agent tokens are kept");
    assert_eq!(store.last_committed_seq().expect("seq"), 11);
    assert!(store.list_users().expect("users").is_empty());
    let hash = guichet::signin::password::hash_blocking("a fine password").expect("hash");
    let now = guichet::core::Timestamp::from_millis(1_800_000_000_000);
    let user = store
        .add_user(
            "amelie",
            "Amélie",
            Role::Agent,
            Some(guichet::core::AgentId::new("amelie")),
            &hash,
            now,
        )
        .expect("a user added after the upgrade");
    let (token, _) = store
        .create_session(
            &user,
            now,
            guichet::core::Timestamp::from_millis(now.as_millis() + 1000),
        )
        .expect("session");
    let digest: [u8; 32] = sha2::Digest::finalize(sha2::Digest::chain_update(
        <sha2::Sha256 as sha2::Digest>::new(),
        token.as_bytes(),
    ))
    .into();
    let found = store
        .verify_session_digest(&digest, now)
        .expect("read")
        .expect("valid");
    assert_eq!(found.agent.as_ref().map(|a| a.as_str()), Some("amelie"));
    assert!(store
        .verify_session_digest(
            &digest,
            guichet::core::Timestamp::from_millis(now.as_millis() + 1000)
        )
        .expect("read")
        .is_none());
    drop(store);
    let again = Store::open(&StoreConfig::new(dir.path())).expect("reopened");
    assert_eq!(again.found_schema_version(), SCHEMA_VERSION);
}
