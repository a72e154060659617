//! `guichet apply FILE`: makes a running server match a configuration file's queues, agents
//! and IVR trees, through the server's own gRPC API (so the changes are journaled, routed and
//! recorded exactly like a supervisor's). A dry run by default: it prints the differences and
//! changes nothing; `--yes` applies them; `--prune` also removes the queues and agents the file
//! does not have (never without it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::Request;

use guichet::api::convert;
use guichet::api::proto as pb;
use guichet::config::Config;
use guichet::core::{AgentConfig, QueueConfig};
use guichet::ivr::{IvrTree, KnownQueues};
use guichet::reconcile::{Change, Plan};

use pb::supervisor_client::SupervisorClient;

/// The arguments of `guichet apply`.
#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// The configuration file to apply.
    file: PathBuf,
    /// Apply the differences (without it: a dry run that only prints them).
    #[arg(long, alias = "apply")]
    yes: bool,
    /// Also remove the queues and agents the file does not have.
    #[arg(long)]
    prune: bool,
    /// The running server's gRPC address (default: the file's [server] grpc_addr).
    #[arg(long, value_name = "IP:PORT")]
    grpc_addr: Option<String>,
    /// A file holding a supervisor or admin token (default: the GUICHET_TOKEN environment
    /// variable, else <data_dir>/admin.token written at the first start).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// The data directory whose admin.token to use (default: the file's [store] data_dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `guichet apply`.
pub(crate) fn run(args: ApplyArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.file)?;
    if config.server.tls.is_some() && args.grpc_addr.is_none() {
        bail!(
            "{} has [server.tls]: guichet apply speaks plain gRPC; give --grpc-addr of a plain \
             listener (for example through a local TLS-terminating proxy)",
            args.file.display()
        );
    }
    let addr = args
        .grpc_addr
        .clone()
        .unwrap_or_else(|| config.server.grpc_addr.clone());
    let token = token(&args, &config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(apply(args, config, addr, token))
}

fn token(args: &ApplyArgs, config: &Config) -> anyhow::Result<String> {
    let from_file = |path: &PathBuf| -> anyhow::Result<String> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the token file {}", path.display()))?;
        Ok(text.trim().to_owned())
    };
    if let Some(path) = &args.token_file {
        return from_file(path);
    }
    if let Ok(token) = std::env::var("GUICHET_TOKEN") {
        if !token.trim().is_empty() {
            return Ok(token.trim().to_owned());
        }
    }
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| config.store.data_dir.clone());
    from_file(&dir.join("admin.token")).context(
        "no token: give --token-file, set GUICHET_TOKEN, or --data-dir of the server (its \
         admin.token)",
    )
}

/// A call with the bearer token and a time limit.
fn call<T>(message: T, token: &str) -> anyhow::Result<Request<T>> {
    let mut request = Request::new(message);
    request.set_timeout(CALL_TIMEOUT);
    let value: MetadataValue<_> = format!("Bearer {token}")
        .parse()
        .context("the token is not valid text")?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

/// The largest page asked for (the server's maximum).
const MAX_PAGE: u32 = 500;

/// Every entry of a paged list: `fetch` gets a page token (empty first) and answers the page's
/// entries and the next token (empty after the last page).
async fn all_pages<T, F, Fut>(mut fetch: F) -> anyhow::Result<Vec<T>>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(Vec<T>, String)>>,
{
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let (entries, next) = fetch(token).await?;
        all.extend(entries);
        if next.is_empty() {
            return Ok(all);
        }
        token = next;
    }
}

async fn apply(args: ApplyArgs, config: Config, addr: String, token: String) -> anyhow::Result<()> {
    let channel: Channel = Endpoint::from_shared(format!("http://{addr}"))
        .context("bad gRPC address")?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("cannot reach the server at {addr} (is it running?)"))?;
    let mut client = SupervisorClient::new(channel);

    // Every page of each list: a partial list would make apply add or prune the wrong things.
    let listed_queues = all_pages(|page_token| {
        let mut client = client.clone();
        let request = call(
            pb::ListQueuesRequest {
                page_size: MAX_PAGE,
                page_token,
            },
            &token,
        );
        async move {
            let page = client
                .list_queues(request?)
                .await
                .context("ListQueues failed")?;
            let page = page.into_inner();
            Ok((page.queues, page.next_page_token))
        }
    })
    .await?;
    let queues: Vec<QueueConfig> = listed_queues
        .iter()
        .map(convert::queue_config)
        .collect::<Result<_, _>>()
        .map_err(|s| {
            anyhow::anyhow!(
                "the server sent a queue this client cannot read: {}",
                s.message()
            )
        })?;
    let listed_agents = all_pages(|page_token| {
        let mut client = client.clone();
        let request = call(
            pb::ListAgentsRequest {
                page_size: MAX_PAGE,
                page_token,
            },
            &token,
        );
        async move {
            let page = client
                .list_agents(request?)
                .await
                .context("ListAgents failed")?;
            let page = page.into_inner();
            Ok((page.agents, page.next_page_token))
        }
    })
    .await?;
    let agents: Vec<AgentConfig> = listed_agents
        .iter()
        .filter_map(|a| a.agent.as_ref())
        .map(convert::agent_config)
        .collect::<Result<_, _>>()
        .map_err(|s| {
            anyhow::anyhow!(
                "the server sent an agent this client cannot read: {}",
                s.message()
            )
        })?;
    let mut trees: BTreeMap<String, IvrTree> = BTreeMap::new();
    let mut stored_names: Vec<String> = Vec::new();
    if !config.voice.trees.is_empty() {
        let list = all_pages(|page_token| {
            let mut client = client.clone();
            let request = call(
                pb::ListIvrVersionsRequest {
                    page_size: MAX_PAGE,
                    page_token,
                    ..Default::default()
                },
                &token,
            );
            async move {
                let page = client
                    .list_ivr_versions(request?)
                    .await
                    .context("ListIvrVersions failed")?;
                let page = page.into_inner();
                Ok((page.versions, page.next_page_token))
            }
        })
        .await?;
        for v in list.iter() {
            if !stored_names.contains(&v.name) {
                stored_names.push(v.name.clone());
            }
        }
        for v in list.iter().filter(|v| v.active) {
            let got = client
                .get_ivr_version(call(
                    pb::GetIvrVersionRequest {
                        name: v.name.clone(),
                        version: v.version,
                    },
                    &token,
                )?)
                .await
                .with_context(|| format!("GetIvrVersion {} failed", v.name))?
                .into_inner();
            let mut tree = IvrTree::from_json(&got.tree_json)
                .with_context(|| format!("the server's tree {} does not parse", v.name))?;
            tree.version = v.version;
            trees.insert(v.name.clone(), tree);
        }
    }

    // Compare like with like: the file's queues and agents as the server would store them.
    let mut file = config.clone();
    file.queues = file
        .queues
        .iter()
        .map(|q| convert::queue_config(&convert::queue_pb(q)))
        .collect::<Result<_, _>>()
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?;
    file.agents = file
        .agents
        .iter()
        .map(|a| convert::agent_config(&convert::agent_pb(a)))
        .collect::<Result<_, _>>()
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?;
    let file_trees = file
        .voice_trees()
        .into_iter()
        .filter_map(|(_, tree)| tree.ok())
        .collect();
    let mut plan = Plan::new(
        &file.seed(),
        &queues,
        &agents,
        Some((file_trees, &trees)),
        args.prune,
    );
    // A stored tree without an active version counts as changed, not new.
    for change in &mut plan.changes {
        if let Change::AddTree(tree) = change {
            if stored_names.contains(&tree.name) {
                *change = Change::ChangeTree {
                    tree: tree.clone(),
                    active: 0,
                };
            }
        }
    }

    let label = args.file.display();
    if plan.is_empty() {
        println!("{label}: the server at {addr} already matches the file: nothing to do");
        return Ok(());
    }
    println!(
        "{label} differs from the server at {addr} in {} place(s):",
        plan.changes.len()
    );
    println!("{}", plan.summary(usize::MAX));
    if !args.prune {
        println!("(nothing is removed without --prune)");
    }
    if !args.yes {
        println!("dry run: nothing changed; run again with --yes to apply these changes");
        return Ok(());
    }

    // Before changing anything: every tree must name queues that will exist.
    let mut after: Vec<(String, bool)> = queues
        .iter()
        .filter(|q| !plan.changes.contains(&Change::RemoveQueue(q.id.clone())))
        .map(|q| {
            (
                q.id.to_string(),
                q.channels.contains(&guichet::core::Channel::Voice),
            )
        })
        .collect();
    after.extend(file.queues.iter().map(|q| {
        (
            q.id.to_string(),
            q.channels.contains(&guichet::core::Channel::Voice),
        )
    }));
    let known = KnownQueues::new(after);
    for change in &plan.changes {
        if let Change::AddTree(tree) | Change::ChangeTree { tree, .. } = change {
            if let Err(errors) = tree.validate_with(&known) {
                bail!("nothing applied: {errors}");
            }
        }
    }

    let total = plan.changes.len();
    let mut done = 0;
    // New queues first without escalation and overflow, so that queues may name each other.
    for change in &plan.changes {
        if let Change::AddQueue(q) = change {
            let mut bare = q.clone();
            bare.escalation.clear();
            bare.overflow = None;
            upsert_queue(&mut client, &token, &bare)
                .await
                .map_err(|e| stopped(e, done, total))?;
        }
    }
    let comment = format!("guichet apply {label}");
    for change in &plan.changes {
        let result = match change {
            Change::AddQueue(q) | Change::ChangeQueue { config: q, .. } => {
                upsert_queue(&mut client, &token, q).await
            }
            Change::AddAgent(a) | Change::ChangeAgent { config: a, .. } => client
                .upsert_agent(call(
                    pb::UpsertAgentRequest {
                        agent: Some(convert::agent_pb(a)),
                    },
                    &token,
                )?)
                .await
                .map(|_| ())
                .map_err(|s| anyhow::anyhow!("agent {}: {}", a.id, s.message())),
            Change::AddTree(tree) | Change::ChangeTree { tree, .. } => {
                let json = serde_json::to_string(tree).context("tree to JSON")?;
                client
                    .put_ivr_version(call(
                        pb::PutIvrVersionRequest {
                            tree_json: json,
                            activate: true,
                            comment: comment.clone(),
                        },
                        &token,
                    )?)
                    .await
                    .map(|_| ())
                    .map_err(|s| anyhow::anyhow!("IVR tree {}: {}", tree.name, s.message()))
            }
            Change::RemoveAgent(a) => client
                .remove_agent(call(
                    pb::RemoveAgentRequest {
                        agent_id: a.to_string(),
                    },
                    &token,
                )?)
                .await
                .map(|_| ())
                .map_err(|s| anyhow::anyhow!("removing agent {a}: {}", s.message())),
            Change::RemoveQueue(q) => client
                .remove_queue(call(
                    pb::RemoveQueueRequest {
                        queue_id: q.to_string(),
                    },
                    &token,
                )?)
                .await
                .map(|_| ())
                .map_err(|s| anyhow::anyhow!("removing queue {q}: {}", s.message())),
            _ => Ok(()),
        };
        result.map_err(|e| stopped(e, done, total))?;
        done += 1;
        println!("applied: {change}");
    }
    println!("{label}: {done} change(s) applied to the server at {addr}");
    Ok(())
}

async fn upsert_queue(
    client: &mut SupervisorClient<Channel>,
    token: &str,
    q: &QueueConfig,
) -> anyhow::Result<()> {
    client
        .upsert_queue(call(
            pb::UpsertQueueRequest {
                queue: Some(convert::queue_pb(q)),
            },
            token,
        )?)
        .await
        .map(|_| ())
        .map_err(|s| anyhow::anyhow!("queue {}: {}", q.id, s.message()))
}

fn stopped(error: anyhow::Error, done: usize, total: usize) -> anyhow::Error {
    error.context(format!(
        "stopped after {done} of {total} change(s) (each applied change is live and journaled; \
         fix the problem and run guichet apply again for the rest)"
    ))
}
