//! A terminal agent desktop: logs an agent in, shows offers as they come, and accepts, declines
//! or completes them from the keyboard. It uses only the generated gRPC client
//! (`guichet::api::proto::agent_desktop_client`), as any desktop would.
//!
//! ```sh
//! cargo run -- serve                                        # in one terminal (writes data/admin.token)
//! cargo run -- token create --role agent --agent amelie     # prints a token
//! GUICHET_TOKEN=gch_... cargo run --example agent_desktop   # in another terminal
//! ```
//!
//! Then type one command per line:
//!
//! | keys | does |
//! | --- | --- |
//! | `a` | accept the oldest pending offer (or `a ID`) |
//! | `d` | decline it (or `d ID`) |
//! | `w text...` | write to the contact of the interaction in hand (email, SMS, chat) |
//! | `c CODE notes...` | complete the interaction in hand (the latest accepted) with a wrap-up code |
//! | `p reason` | pause with a reason (`p lunch`) |
//! | `r` | ready: available again (also ends wrap-up early) |
//! | `s` | show the agent's status |
//! | `q` | log out and quit (`q!` quits without logging out) |

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Parser;
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::codegen::InterceptedService;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use guichet::api::proto::agent_desktop_client::AgentDesktopClient;
use guichet::api::proto::{self as pb, agent_state::Kind, offer_update::Update};

/// A terminal agent desktop for Guichet.
#[derive(Debug, Parser)]
struct Args {
    /// The server's gRPC address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// The API token (default: the GUICHET_TOKEN environment variable). An agent token acts as
    /// its own agent; a supervisor or admin token needs --agent.
    #[arg(long)]
    token: Option<String>,
    /// The agent to act as (default: the agent token's own).
    #[arg(long, default_value = "")]
    agent: String,
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
struct Bearer(MetadataValue<tonic::metadata::Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Client = AgentDesktopClient<InterceptedService<Channel, Bearer>>;

/// What the keyboard commands act on.
#[derive(Default)]
struct Desk {
    /// Offers not yet accepted or declined, oldest first.
    pending: VecDeque<String>,
    /// Interactions accepted and not yet completed, oldest first.
    in_hand: Vec<String>,
}

type Shared = Arc<Mutex<Desk>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let token = match args.token {
        Some(t) => t,
        None => std::env::var("GUICHET_TOKEN")
            .context("give a token with --token or the GUICHET_TOKEN environment variable")?,
    };
    let bearer = Bearer(
        format!("Bearer {}", token.trim())
            .parse()
            .context("the token is not valid header text")?,
    );
    let addr = if args.addr.contains("://") {
        args.addr.clone()
    } else {
        format!("http://{}", args.addr)
    };
    let channel = Endpoint::from_shared(addr.clone())?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    let mut client = AgentDesktopClient::with_interceptor(channel, bearer);
    let agent = args.agent;

    let status = client
        .login(pb::LoginRequest {
            agent_id: agent.clone(),
            device: String::new(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("login refused: {}", s.message()))?
        .into_inner();
    println!("logged in: {}", describe_status(&status));
    println!(
        "commands: a accept, d decline, w TEXT write, c CODE notes complete, p REASON pause, \
         r ready, s status, q quit"
    );

    let desk: Shared = Arc::default();
    tokio::spawn(show_offers(client.clone(), agent.clone(), desk.clone()));

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let line = line.trim();
        let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        match key {
            "" => {}
            "a" => accept(&mut client, &agent, &desk, rest).await,
            "d" => decline(&mut client, &agent, &desk, rest).await,
            "c" => complete(&mut client, &agent, &desk, rest).await,
            "w" => write(&mut client, &agent, &desk, rest).await,
            "p" if rest.is_empty() => println!("say why: p lunch"),
            "p" => set_state(&mut client, &agent, Kind::Paused, rest).await,
            "r" => set_state(&mut client, &agent, Kind::Available, "").await,
            "s" => match client
                .login(pb::LoginRequest {
                    agent_id: agent.clone(),
                    device: String::new(),
                })
                .await
            {
                // Logging in again is harmless and answers the status.
                Ok(s) => println!("{}", describe_status(s.get_ref())),
                Err(s) => println!("! {}", s.message()),
            },
            "q" => match client
                .logout(pb::LogoutRequest {
                    agent_id: agent.clone(),
                })
                .await
            {
                Ok(_) => {
                    println!("logged out");
                    return Ok(());
                }
                Err(s) => println!("! cannot log out: {} (q! quits anyway)", s.message()),
            },
            "q!" => return Ok(()),
            _ => println!("? unknown command {key:?}: a, d, c CODE notes, p REASON, r, s, q"),
        }
    }
    Ok(())
}

/// Prints offers as they come; reopens the stream when it drops (pending offers come again).
async fn show_offers(mut client: Client, agent: String, desk: Shared) {
    loop {
        let request = pb::OffersRequest {
            agent_id: agent.clone(),
        };
        match client.offers(request).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(update)) => show_update(update, &desk),
                        Ok(None) => {
                            println!("! the offer stream ended");
                            break;
                        }
                        Err(s) => {
                            println!("! the offer stream failed: {}", s.message());
                            break;
                        }
                    }
                }
            }
            Err(s) => println!("! cannot open the offer stream: {}", s.message()),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!("reconnecting the offer stream...");
    }
}

fn show_update(update: pb::OfferUpdate, desk: &Shared) {
    match update.update {
        Some(Update::Offer(offer)) => {
            let Some(i) = offer.interaction else { return };
            println!();
            println!(
                "== OFFER {}  {} in {}  contact {}",
                i.id,
                channel_name(i.channel),
                i.queue,
                if i.contact.is_empty() {
                    "-"
                } else {
                    &i.contact
                }
            );
            println!("   accept before {}", when(offer.deadline_unix_ms));
            if let Some(d) = &offer.decision {
                println!("   why you: {}", d.text);
            }
            for a in &i.attributes {
                println!("   {} = {}", a.key, a.value);
            }
            if offer.history.is_empty() {
                println!("   history: first contact");
            } else {
                println!("   history (newest first):");
                for h in &offer.history {
                    println!(
                        "   - {} {} in {}: {}{}{}{}",
                        day_time(h.created_at_unix_ms),
                        channel_name(h.channel),
                        h.queue,
                        h.outcome,
                        if h.agent.is_empty() {
                            String::new()
                        } else {
                            format!(" by {}", h.agent)
                        },
                        if h.wrap_up_code.is_empty() {
                            String::new()
                        } else {
                            format!(" [{}]", h.wrap_up_code)
                        },
                        if h.notes.is_empty() {
                            String::new()
                        } else {
                            format!(" \"{}\"", h.notes)
                        },
                    );
                }
            }
            if let Some(t) = &offer.transfer {
                println!("   transferred by {}: {}", t.from_agent, t.note);
            }
            if !offer.wrap_up_codes.is_empty() {
                println!("   wrap-up codes: {}", offer.wrap_up_codes.join(", "));
            }
            for m in &offer.conversation {
                show_message(m);
            }
            println!("   a: accept  d: decline");
            desk.lock().unwrap().pending.push_back(i.id);
        }
        Some(Update::Held(held)) => {
            let Some(i) = held.interaction else { return };
            println!();
            println!(
                "== YOURS {}  {} in {}  contact {}",
                i.id,
                channel_name(i.channel),
                i.queue,
                if i.contact.is_empty() {
                    "-"
                } else {
                    &i.contact
                }
            );
            for m in &held.conversation {
                show_message(m);
            }
        }
        Some(Update::Message(m)) => {
            println!("== message in {}", m.interaction_id);
            show_message(&m);
        }
        Some(Update::Withdrawn(w)) => {
            println!("== offer {} withdrawn ({})", w.interaction_id, w.reason);
            desk.lock()
                .unwrap()
                .pending
                .retain(|id| *id != w.interaction_id);
        }
        Some(Update::Consult(c)) => {
            println!(
                "== your consultation on {}: {} ({})",
                c.interaction_id, c.kind, c.agent_id
            );
        }
        Some(Update::Typing(t)) if t.typing => {
            println!("   ({}: the contact is typing...)", t.interaction_id);
        }
        Some(Update::Typing(_)) | Some(Update::Heartbeat(_)) | None => {}
    }
}

/// The interaction named on the line, or the oldest pending offer.
fn pending_target(desk: &Shared, named: &str) -> Option<String> {
    if !named.is_empty() {
        return Some(named.to_owned());
    }
    desk.lock().unwrap().pending.front().cloned()
}

async fn accept(client: &mut Client, agent: &str, desk: &Shared, named: &str) {
    let Some(id) = pending_target(desk, named) else {
        println!("no offer pending");
        return;
    };
    let request = pb::InteractionAction {
        agent_id: agent.to_owned(),
        interaction_id: id.clone(),
    };
    match client.accept(request).await {
        Ok(_) => {
            println!("accepted {id}: handle it, then `c CODE notes`");
            desk.lock().unwrap().in_hand.push(id.clone());
        }
        Err(s) => println!("! cannot accept {id}: {}", s.message()),
    }
    desk.lock().unwrap().pending.retain(|p| *p != id);
}

async fn decline(client: &mut Client, agent: &str, desk: &Shared, named: &str) {
    let Some(id) = pending_target(desk, named) else {
        println!("no offer pending");
        return;
    };
    let request = pb::InteractionAction {
        agent_id: agent.to_owned(),
        interaction_id: id.clone(),
    };
    match client.decline(request).await {
        Ok(_) => println!("declined {id}"),
        Err(s) => println!("! cannot decline {id}: {}", s.message()),
    }
    desk.lock().unwrap().pending.retain(|p| *p != id);
}

async fn complete(client: &mut Client, agent: &str, desk: &Shared, rest: &str) {
    let (code, notes) = rest.split_once(' ').unwrap_or((rest, ""));
    if code.is_empty() {
        println!("give a wrap-up code: c answered called back about the form");
        return;
    }
    let Some(id) = desk.lock().unwrap().in_hand.last().cloned() else {
        println!("nothing in hand: accept an offer first");
        return;
    };
    let request = pb::CompleteRequest {
        agent_id: agent.to_owned(),
        interaction_id: id.clone(),
        wrap_up_code: code.to_owned(),
        notes: notes.trim().to_owned(),
    };
    match client.complete(request).await {
        Ok(_) => {
            println!("completed {id} ({code}); `r` to be ready before the wrap-up time ends");
            desk.lock().unwrap().in_hand.retain(|h| *h != id);
        }
        Err(s) => println!("! cannot complete {id}: {}", s.message()),
    }
}

fn show_message(m: &pb::ConversationMessage) {
    let who = if m.direction == "inbound" {
        m.from.clone()
    } else if m.agent.is_empty() {
        "guichet".to_owned()
    } else {
        m.agent.clone()
    };
    println!("   [{}] {who}: {}", day_time(m.at_unix_ms), m.text);
    for a in &m.attachments {
        println!(
            "     attached: {} ({}, {} bytes)",
            a.name, a.content_type, a.size
        );
    }
}

async fn write(client: &mut Client, agent: &str, desk: &Shared, text: &str) {
    if text.is_empty() {
        println!("say what to write: w Bonjour, votre dossier est complet.");
        return;
    }
    let Some(id) = desk.lock().unwrap().in_hand.last().cloned() else {
        println!("nothing in hand: accept an offer first");
        return;
    };
    let request = pb::SendMessageRequest {
        agent_id: agent.to_owned(),
        interaction_id: id.clone(),
        text: text.to_owned(),
        subject: String::new(),
    };
    if let Err(s) = client.send_message(request).await {
        println!("! cannot write in {id}: {}", s.message());
    }
}

async fn set_state(client: &mut Client, agent: &str, state: Kind, reason: &str) {
    let request = pb::SetStateRequest {
        agent_id: agent.to_owned(),
        state: state as i32,
        pause_reason: reason.to_owned(),
    };
    match client.set_state(request).await {
        Ok(s) => println!("{}", describe_status(s.get_ref())),
        Err(s) => println!("! {}", s.message()),
    }
}

fn describe_status(s: &pb::AgentStatus) -> String {
    let id = s.agent.as_ref().map_or("?", |a| a.id.as_str());
    let state = s.state.clone().unwrap_or_default();
    let mut text = format!("{id} is {}", state_name(state.kind()));
    if !state.pause_reason.is_empty() {
        text.push_str(&format!(" ({})", state.pause_reason));
    }
    if state.wrap_up_until_unix_ms > 0 {
        text.push_str(&format!(" until {}", when(state.wrap_up_until_unix_ms)));
    }
    if !s.work.is_empty() {
        text.push_str(&format!("; holds {}", s.work.join(", ")));
    }
    text
}

fn state_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Available => "available",
        Kind::Paused => "paused",
        Kind::WrapUp => "in wrap-up",
        Kind::Offline => "offline",
        Kind::Unspecified => "in an unknown state",
    }
}

fn channel_name(channel: i32) -> &'static str {
    match pb::Channel::try_from(channel) {
        Ok(pb::Channel::Voice) => "call",
        Ok(pb::Channel::Email) => "email",
        Ok(pb::Channel::Sms) => "SMS",
        Ok(pb::Channel::Chat) => "chat",
        _ => "contact",
    }
}

/// `2026-11-23 14:02:31 UTC (in 18 s)` for a time in Unix milliseconds.
fn when(unix_ms: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let secs = (unix_ms - now) / 1000;
    let relative = if secs >= 0 {
        format!("in {secs} s")
    } else {
        format!("{} s ago", -secs)
    };
    format!("{} ({relative})", day_time(unix_ms))
}

/// `2026-11-23 14:02:31 UTC` for a time in Unix milliseconds.
fn day_time(unix_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms).map_or_else(
        || "?".into(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}
