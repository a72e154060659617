//! `guichet serve`: the server on the configured addresses and data directory, until SIGINT or
//! SIGTERM.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use guichet::config::Config;
use guichet::core::Timestamp;
use guichet::engine::{Clock, SystemClock};
use guichet::server::{serve, ServeOptions, Stopped};
use guichet::store::{Role, StoreHandle};

/// The demo configuration compiled into the binary, used when no `--config` is given and
/// `config/guichet.toml` is not there.
const EMBEDDED_CONFIG: &str = include_str!("../../config/guichet.toml");

/// How long the process waits, after the server stopped, for work still running on the
/// runtime's blocking pool before it exits anyway.
const EXIT_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// The arguments of `guichet serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The configuration file (default: config/guichet.toml, else the demo configuration built
    /// into the binary).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The data directory, instead of the configuration's [store] data_dir.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The gRPC address, instead of the configuration's [server] grpc_addr (port 0: any free
    /// port; the address is printed).
    #[arg(long, value_name = "IP:PORT")]
    pub grpc_addr: Option<String>,
    /// The HTTP address (webhooks, chat, metrics, indicators), instead of the configuration's
    /// [server] http_addr (port 0: any free port; the address is printed).
    #[arg(long, value_name = "IP:PORT")]
    pub http_addr: Option<String>,
    /// The SMTP address, instead of the configuration's [email.inbound] listen (port 0: any
    /// free port; the address is printed). Needs an [email.inbound] section.
    #[arg(long, value_name = "IP:PORT")]
    pub smtp_addr: Option<String>,
}

/// Loads `--config`, or config/guichet.toml, or the embedded demo configuration, with the
/// `GUICHET_<SECTION>__<KEY>` environment overrides applied.
pub(crate) fn load_config(path: Option<&Path>) -> anyhow::Result<(Config, String)> {
    let overrides = guichet::config::env::from_process();
    match path {
        Some(path) => Ok((
            Config::load_with(path, &overrides)?,
            path.display().to_string(),
        )),
        None => {
            let default = Path::new("config/guichet.toml");
            if default.exists() {
                Ok((
                    Config::load_with(default, &overrides)?,
                    default.display().to_string(),
                ))
            } else {
                let label = Path::new("(embedded config/guichet.toml)");
                let config = Config::from_toml_with(EMBEDDED_CONFIG, label, &overrides)?;
                config.validate(label)?;
                Ok((config, label.display().to_string()))
            }
        }
    }
}

/// Runs `guichet serve`.
pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    let (mut config, source) = load_config(args.config.as_deref())?;
    crate::init_logging(config.log.format);
    if let Some(dir) = args.data_dir {
        config.store.data_dir = dir;
    }
    if let Some(addr) = args.grpc_addr {
        config.server.grpc_addr = addr;
    }
    if let Some(addr) = args.http_addr {
        config.server.http_addr = addr;
    }
    if let Some(addr) = args.smtp_addr {
        match config.email.inbound.as_mut() {
            Some(inbound) => inbound.listen = addr,
            None => {
                return Err(crate::Usage(format!(
                    "--smtp-addr needs an [email.inbound] section in {source}"
                ))
                .into())
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let stopped = runtime.block_on(async move {
        let data_dir = config.store.data_dir.clone();
        let agent_ids: Vec<String> = config.agents.iter().map(|a| a.id.to_string()).collect();
        serve(
            ServeOptions { config },
            async |started: &guichet::server::Started| {
                let report = &started.report;
                let smtp = started
                    .smtp_addr
                    .map(|a| format!(" and SMTP on {a}"))
                    .unwrap_or_default();
                println!(
                    "guichet {} serving gRPC on {} and HTTP on {}{smtp} (config {source}, data {})",
                    env!("CARGO_PKG_VERSION"),
                    started.grpc_addr,
                    started.http_addr,
                    data_dir.display()
                );
                println!(
                    "recovered {} open interaction(s) ({} event(s) replayed{}){}",
                    report.open_interactions,
                    report.replayed,
                    if report.from_snapshot {
                        " after a snapshot"
                    } else {
                        ""
                    },
                    if report.seeded {
                        "; database seeded from the configuration"
                    } else {
                        ""
                    }
                );
                match first_admin_token(started.engine.store(), &data_dir).await {
                    Ok(Some(file)) => println!(
                        "no API token existed: created an admin token in {} (create more with \
                         `guichet token create`)",
                        file.display()
                    ),
                    Ok(None) => {}
                    Err(e) => eprintln!("warning: {e:#}"),
                }
                if report.seeded {
                    match first_console_users(started.engine.store(), &data_dir, &agent_ids).await {
                        Ok(Some(file)) => println!(
                            "console: people can sign in at http://{}/console/ with the \
                             passwords in {} (add people with `guichet user add`)",
                            started.http_addr,
                            file.display()
                        ),
                        Ok(None) => {}
                        Err(e) => eprintln!("warning: {e:#}"),
                    }
                }
                if report.config_differences > 0 {
                    println!(
                        "warning: {} queue(s) or agent(s) of {source} differ from the database \
                         (see the log); the database wins: `guichet apply {source}` shows the \
                         differences, `--yes` applies them",
                        report.config_differences
                    );
                }
                // Tests and scripts wait for this line.
                println!("ready");
            },
            shutdown_signal(),
        )
        .await
    });
    // Everything durable was written before `stopped` was logged: the process ends without
    // waiting for what may still run on the blocking pool (a store call of a request the stop
    // cut short), which dropping the runtime would wait for.
    let exiting = std::time::Instant::now();
    runtime.shutdown_timeout(EXIT_WAIT);
    if exiting.elapsed() >= EXIT_WAIT {
        tracing::warn!(
            "blocking work still running {} ms after the stop: the process exits without it",
            EXIT_WAIT.as_millis()
        );
    }
    match stopped? {
        Stopped::Shutdown => Ok(()),
        // The binary's decision: exit, and let the service manager restart this node as a
        // standby (its router in memory may be ahead of the journal: never reused).
        Stopped::SteppedDown(why) => Err(crate::SteppedDown(why).into()),
    }
}

/// On a database without any token, creates an admin token and writes it to
/// `<data_dir>/admin.token` (readable by the owner only), so that a newcomer can call the API.
async fn first_admin_token(
    store: &StoreHandle,
    data_dir: &Path,
) -> anyhow::Result<Option<PathBuf>> {
    let created = store
        .run(|s| {
            if !s.list_tokens()?.is_empty() {
                return Ok(None);
            }
            let (token, _) = s.create_token(Role::Admin, None, "first admin token", now())?;
            Ok(Some(token))
        })
        .await?;
    let Some(token) = created else {
        return Ok(None);
    };
    let file = data_dir.join("admin.token");
    write_private(&file, &format!("{token}\n"))
        .with_context(|| format!("cannot write {}", file.display()))?;
    Ok(Some(file))
}

/// The file the first start writes the console's passwords to.
pub(crate) const CONSOLE_PASSWORDS_FILE: &str = "console-passwords.txt";

/// On a freshly seeded database without any user, adds a console user for each configured
/// agent (login = agent id) and a `supervisor`, with random passwords written to
/// `<data_dir>/console-passwords.txt` (readable by the owner only): the demo can be used at once.
async fn first_console_users(
    store: &StoreHandle,
    data_dir: &Path,
    agents: &[String],
) -> anyhow::Result<Option<PathBuf>> {
    if !store.run(|s| s.list_users()).await?.is_empty() {
        return Ok(None);
    }
    let mut lines =
        String::from("# login password role agent (change them: guichet user passwd LOGIN)\n");
    let mut people: Vec<(String, Role, Option<String>)> = agents
        .iter()
        .filter(|a| guichet::store::valid_login(a))
        .map(|a| (a.clone(), Role::Agent, Some(a.clone())))
        .collect();
    people.push(("supervisor".to_owned(), Role::Supervisor, None));
    for (login, role, agent) in people {
        let password = random_password();
        let hashed = password.clone();
        let hash =
            tokio::task::spawn_blocking(move || guichet::signin::password::hash_blocking(&hashed))
                .await??;
        let (user, agent_id) = (login.clone(), agent.clone());
        store
            .run(move |s| {
                s.add_user(
                    &user,
                    &user,
                    role,
                    agent_id.map(guichet::core::AgentId::new),
                    &hash,
                    now(),
                )
            })
            .await?;
        lines.push_str(&format!(
            "{login} {password} {role} {}\n",
            agent.as_deref().unwrap_or("-")
        ));
    }
    let file = data_dir.join(CONSOLE_PASSWORDS_FILE);
    write_private(&file, &lines).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(Some(file))
}

/// 16 characters from an alphabet without look-alikes (about 90 bits).
fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

pub(crate) fn now() -> Timestamp {
    SystemClock.now()
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
