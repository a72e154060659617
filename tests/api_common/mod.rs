//! Helpers shared by the gRPC API tests: the real `guichet serve` binary on a temporary data
//! directory and a loopback port, tokens made with `guichet token create`, and clients that send
//! `authorization: Bearer <token>`.
//!
//! Child processes are killed when their [`Server`] is dropped, so a failing test leaves nothing
//! running. Every wait has a generous limit so that a bug fails a test instead of hanging it.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use guichet::api::proto as pb;

#[path = "../pg_common/mod.rs"]
pub mod pg_common;
use pb::agent_desktop_client::AgentDesktopClient;
use pb::interactions_client::InteractionsClient;
use pb::supervisor_client::SupervisorClient;

/// How long a server may take to print `ready` (a debug build recovering thousands of
/// interactions on a busy machine).
pub const START_LIMIT: Duration = Duration::from_secs(120);
/// How long to wait for one message of a stream.
pub const STREAM_LIMIT: Duration = Duration::from_secs(20);

/// The `guichet` binary built for these tests.
pub const GUICHET: &str = env!("CARGO_BIN_EXE_guichet");

/// The demo configuration (queues benefits, tax, general; agents amelie, bruno, chloe, david,
/// emma).
pub fn demo_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/guichet.toml")
}

/// Writes `<dir>/guichet.toml`: the demo configuration followed by `extra` (more TOML tables,
/// such as `[sms]` or `[email]`), and returns its path.
pub fn config_with(dir: &Path, extra: &str) -> PathBuf {
    let demo = fs::read_to_string(demo_config()).expect("read the demo configuration");
    let path = dir.join("guichet.toml");
    fs::write(&path, format!("{demo}\n{extra}\n")).expect("write the test configuration");
    copy_demo_tree(dir);
    path
}

/// Copies the demo's IVR tree to `dir/ivr/`, where a configuration file written in `dir` names
/// it (the file is relative to the configuration).
pub fn copy_demo_tree(dir: &Path) {
    let trees = dir.join("ivr");
    fs::create_dir_all(&trees).expect("create the ivr directory");
    let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ivr/demo_tree.json");
    fs::copy(tree, trees.join("demo_tree.json")).expect("copy the demo IVR tree");
}

/// The environment variable that runs the API suites on PostgreSQL: with
/// `GUICHET_TEST_BACKEND=postgres` (and `GUICHET_TEST_POSTGRES_URL`, as `.ci/run` sets), each
/// [`Workspace`] gets a database of its own and every server and CLI call it starts uses it.
pub const BACKEND_VAR: &str = "GUICHET_TEST_BACKEND";

/// Where a workspace on PostgreSQL keeps its database's URL (read by [`serve_command`]).
const PG_URL_FILE: &str = "postgres.url";

static ON_SQLITE: std::sync::Once = std::sync::Once::new();

/// Whether the suites run on PostgreSQL (`GUICHET_TEST_BACKEND=postgres`).
pub fn on_postgres() -> bool {
    std::env::var(BACKEND_VAR).is_ok_and(|v| v == "postgres")
}

/// For a test that checks something of SQLite's own (its file, its lock): true, after one line
/// saying so, when the suites run on PostgreSQL.
pub fn skip_on_postgres(what: &str) -> bool {
    if on_postgres() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "skipped on PostgreSQL: {what} is SQLite's"
        );
        return true;
    }
    false
}

/// One journaled event as the tests read it (the columns of SQLite's `journal` table, on
/// either backend): see [`Workspace::journal`].
pub struct JournalRow {
    /// Its sequence number.
    pub seq: u64,
    /// The event's name (`interaction_created`, `message_added`...).
    pub kind: &'static str,
    /// The interaction it is about.
    pub interaction: Option<String>,
    /// The message id of a `message_added`.
    pub message: Option<String>,
    /// The event as stored (JSON).
    pub payload: serde_json::Value,
}

/// A temporary directory holding a data directory (`data/`) and the servers' logs, and with
/// `GUICHET_TEST_BACKEND=postgres` a PostgreSQL database of its own.
pub struct Workspace {
    // Dropped after the servers (which the tests drop first): the database goes last.
    pg: Option<pg_common::PgDb>,
    tmp: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        let tmp = tempfile::Builder::new()
            .prefix("guichet-api-")
            .tempdir()
            .expect("temporary directory");
        // Configuration files the tests write here name the demo tree relative to themselves.
        copy_demo_tree(tmp.path());
        let pg = if on_postgres() {
            let db = pg_common::PgDb::create()
                .unwrap_or_else(|| panic!("{BACKEND_VAR}=postgres needs {}", pg_common::URL_VAR));
            fs::write(tmp.path().join(PG_URL_FILE), &db.url).expect("write the database URL");
            Some(db)
        } else {
            ON_SQLITE.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "PostgreSQL runs of the API suites skipped: {BACKEND_VAR} is not postgres \
                     (`.ci/run` runs them with {BACKEND_VAR}=postgres and {}; see \
                     docs/storage.md)",
                    pg_common::URL_VAR
                );
            });
            None
        };
        Workspace { pg, tmp }
    }

    /// The temporary directory itself (for configuration files, stand-ins' data).
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// The data directory given to `--data-dir`.
    pub fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    /// Where the servers' stderr goes (appended, across restarts).
    pub fn log(&self) -> PathBuf {
        self.tmp.path().join("server.log")
    }

    /// The servers' stderr so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// Starts `guichet serve` on this workspace's data directory, any free loopback port.
    pub fn start(&self) -> Server {
        self.server().start()
    }

    /// Like [`Workspace::start`] with another configuration file than the demo one.
    pub fn start_with_config(&self, config: &Path) -> Server {
        self.server().config(config).start()
    }

    /// A server to start on this workspace, with the tweaks a test needs ([`TestServer`]).
    pub fn server(&self) -> TestServer<'_> {
        TestServer {
            ws: self,
            config: None,
            env: Vec::new(),
            nofile: None,
        }
    }

    /// Runs `guichet serve` expecting it to fail at start: its output once it exits.
    pub fn serve_expecting_failure(&self) -> Output {
        let mut child = serve_command(&self.data_dir(), &demo_config())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn guichet serve");
        let started = Instant::now();
        loop {
            if child.try_wait().expect("try_wait").is_some() {
                return child.wait_with_output().expect("output");
            }
            if started.elapsed() > START_LIMIT {
                let _ = child.kill();
                let out = child.wait_with_output().expect("output");
                panic!(
                    "guichet serve did not exit within {START_LIMIT:?}; stdout:\n{}\nstderr:\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The store configuration the workspace's servers use: the data directory's SQLite
    /// database, or with `GUICHET_TEST_BACKEND=postgres` the workspace's PostgreSQL database.
    pub fn store_config(&self) -> guichet::store::StoreConfig {
        match &self.pg {
            Some(db) => guichet::store::StoreConfig {
                data_dir: self.data_dir(),
                ..db.store_config()
            },
            None => guichet::store::StoreConfig::new(self.data_dir()),
        }
    }

    /// Runs `f` with the server's store opened beside it (tables and reads only, as `guichet
    /// token` does), on a thread of its own: safe from an async test on either backend. This is
    /// how the tests read what the server stored, whatever the backend.
    pub fn with_store<T: Send>(&self, f: impl FnOnce(&guichet::store::Store) -> T + Send) -> T {
        let config = self.store_config();
        std::thread::scope(|s| {
            s.spawn(move || {
                let store = guichet::store::Store::open_shared(&config).expect("open the store");
                f(&store)
            })
            .join()
            .expect("the store reader")
        })
    }

    /// Every journaled event, in order, as the tests read it.
    pub fn journal(&self) -> Vec<JournalRow> {
        self.with_store(|store| {
            let mut rows = Vec::new();
            store
                .replay(0, |seq, event| {
                    rows.push(JournalRow {
                        seq,
                        kind: event.kind.name(),
                        interaction: event.kind.interaction().map(|i| i.to_string()),
                        message: match &event.kind {
                            guichet::core::EventKind::MessageAdded { message, .. } => {
                                Some(message.id.clone())
                            }
                            _ => None,
                        },
                        payload: serde_json::to_value(&event.kind).expect("event as JSON"),
                    });
                    Ok(())
                })
                .expect("replay the journal");
            rows
        })
    }

    /// The payloads of the journaled events of `kind` for `interaction`, in order.
    pub fn journal_payloads(&self, interaction: &str, kind: &str) -> Vec<serde_json::Value> {
        self.journal()
            .into_iter()
            .filter(|r| r.kind == kind && r.interaction.as_deref() == Some(interaction))
            .map(|r| r.payload)
            .collect()
    }

    /// `guichet token create --role ROLE [--agent AGENT]`: the secret and the token's id.
    pub fn token(&self, role: &str, agent: Option<&str>) -> (String, String) {
        let mut cmd = Command::new(GUICHET);
        cmd.args(["token", "create", "--role", role, "--label", "api test"]);
        if let Some(agent) = agent {
            cmd.args(["--agent", agent]);
        }
        let out = self.guichet(&mut cmd);
        assert!(
            out.status.success(),
            "token create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let secret = String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // "created token <id> (<role>)"
        let id = stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix("created token "))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no token id in {stderr:?}"))
            .to_owned();
        assert!(!secret.is_empty(), "empty token printed");
        (secret, id)
    }

    /// `guichet token revoke ID`.
    pub fn revoke(&self, id: &str) {
        let out = self.guichet(Command::new(GUICHET).args(["token", "revoke", id]));
        assert!(
            out.status.success(),
            "token revoke failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn guichet(&self, cmd: &mut Command) -> Output {
        cmd.arg("--config")
            .arg(backend_config(&self.data_dir(), &demo_config()))
            .arg("--data-dir")
            .arg(self.data_dir())
            .stdin(Stdio::null())
            .output()
            .expect("run guichet")
    }

    /// The admin token the first start wrote to `<data_dir>/admin.token`.
    pub fn admin_token(&self) -> String {
        fs::read_to_string(self.data_dir().join("admin.token"))
            .expect("admin.token written by the first start")
            .trim()
            .to_owned()
    }
}

impl Default for Workspace {
    fn default() -> Self {
        Workspace::new()
    }
}

/// A `guichet serve` to start on a [`Workspace`] (its data directory, its log, its backend from
/// `GUICHET_TEST_BACKEND`, ports chosen by the system), with the tweaks the tests share: the demo
/// configuration or another file, TOML tables appended to the demo's, environment variables, a
/// lower open-file limit. Made by [`Workspace::server`]:
/// `ws.server().with("[sms]\n...").env("RUST_LOG", "info").start()`.
#[must_use = "a TestServer does nothing until started"]
pub struct TestServer<'w> {
    ws: &'w Workspace,
    config: Option<PathBuf>,
    env: Vec<(String, String)>,
    nofile: Option<u64>,
}

impl TestServer<'_> {
    /// Serves this configuration file instead of the demo one.
    pub fn config(mut self, config: &Path) -> Self {
        self.config = Some(config.to_owned());
        self
    }

    /// Serves the demo configuration followed by `extra` (more TOML tables), written by
    /// [`config_with`] to the workspace's `guichet.toml`.
    pub fn with(mut self, extra: &str) -> Self {
        self.config = Some(config_with(self.ws.path(), extra));
        self
    }

    /// Sets an environment variable of the server (`RUST_LOG`, `GUICHET_<SECTION>__<KEY>`...).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Lowers the server's open-file limit (soft and hard) to `nofile`.
    pub fn nofile(mut self, nofile: u64) -> Self {
        self.nofile = Some(nofile);
        self
    }

    /// Starts the server and waits for its `ready` line.
    pub fn start(self) -> Server {
        let config = self.config.unwrap_or_else(demo_config);
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Server::start_limited(
            &self.ws.data_dir(),
            &self.ws.log(),
            &config,
            &env,
            self.nofile,
        )
    }
}

/// Changes queue `id` through the supervisor API (ListQueues, then UpsertQueue with `change`
/// applied) and returns the queue as upserted: how the tests tweak a demo queue at run time.
pub async fn change_queue(
    sup: &mut SupervisorClient<Authed>,
    id: &str,
    change: impl FnOnce(&mut pb::Queue),
) -> pb::Queue {
    let mut queue = sup
        .list_queues(pb::ListQueuesRequest::default())
        .await
        .expect("ListQueues")
        .into_inner()
        .queues
        .into_iter()
        .find(|q| q.id == id)
        .unwrap_or_else(|| panic!("queue {id} in the configuration"));
    change(&mut queue);
    sup.upsert_queue(pb::UpsertQueueRequest { queue: Some(queue) })
        .await
        .expect("UpsertQueue")
        .into_inner()
}

/// No after-contact work in queue `id` (`wrap_up_secs = 0`), so that an agent takes the next
/// offer as soon as it completes one.
pub async fn no_wrap_up(sup: &mut SupervisorClient<Authed>, id: &str) {
    change_queue(sup, id, |q| q.wrap_up_secs = 0).await;
}

/// `config` as is on SQLite; on PostgreSQL (a workspace holding [`PG_URL_FILE`] beside
/// `data_dir`), a copy beside it whose `[store]` names the workspace's database.
pub fn backend_config(data_dir: &Path, config: &Path) -> PathBuf {
    let Some(dir) = data_dir.parent() else {
        return config.to_owned();
    };
    let Ok(url) = fs::read_to_string(dir.join(PG_URL_FILE)) else {
        return config.to_owned();
    };
    let text = fs::read_to_string(config).expect("read the configuration");
    let store = format!(
        "[store]\nbackend = \"postgres\"\nurl = \"{}\"\n",
        url.trim()
    );
    let text = if text.lines().any(|l| l.trim() == "[store]") {
        text.replacen("\n[store]\n", &format!("\n{store}"), 1)
    } else {
        format!("{text}\n{store}")
    };
    // A restart after a SIGKILL waits for the killed server's lease: a short one.
    let text = if text.lines().any(|l| l.trim() == "[ha]") {
        text
    } else {
        format!("{text}\n[ha]\nlease_secs = 3\nrenew_every_secs = 0.5\n")
    };
    let name = config
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "guichet.toml".into());
    // Beside the original (its relative paths stay right), except for the repository's own
    // configuration: that copy goes into the workspace, which holds the demo tree too.
    let beside = config
        .parent()
        .filter(|p| !p.starts_with(env!("CARGO_MANIFEST_DIR")))
        .unwrap_or(dir);
    let path = beside.join(format!("postgres-{name}"));
    fs::write(&path, text).expect("write the PostgreSQL configuration");
    path
}

fn serve_command(data_dir: &Path, config: &Path) -> Command {
    let mut cmd = Command::new(GUICHET);
    cmd.arg("serve")
        .arg("--config")
        .arg(backend_config(data_dir, config))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--grpc-addr", "127.0.0.1:0"])
        .args(["--http-addr", "127.0.0.1:0"])
        .args(["--smtp-addr", "127.0.0.1:0"])
        .stdin(Stdio::null());
    cmd
}

/// A running `guichet serve`, killed (SIGKILL) when dropped.
pub struct Server {
    child: Option<Child>,
    /// The gRPC address it printed.
    pub addr: SocketAddr,
    /// The HTTP address it printed.
    pub http_addr: SocketAddr,
    /// The SMTP address it printed (the demo configuration has `[email.inbound]`).
    pub smtp_addr: Option<SocketAddr>,
    /// What it printed on stdout up to `ready`.
    pub banner: Vec<String>,
    channel: Channel,
}

impl Server {
    /// Starts the server and waits for its `ready` line.
    pub fn start(data_dir: &Path, log: &Path) -> Server {
        Server::start_with_config(data_dir, log, &demo_config())
    }

    /// Starts the server with another configuration file (for example [`config_with`]'s) and
    /// waits for its `ready` line.
    pub fn start_with_config(data_dir: &Path, log: &Path, config: &Path) -> Server {
        Server::start_with(data_dir, log, config, &[])
    }

    /// Starts the server with another configuration file and extra environment variables
    /// (`RUST_LOG`, ...), and waits for its `ready` line.
    pub fn start_with(data_dir: &Path, log: &Path, config: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_limited(data_dir, log, config, env, None)
    }

    /// Starts the server as [`Server::start_with`] does, with its open-file limit (soft and
    /// hard) lowered to `nofile` when given.
    pub fn start_limited(
        data_dir: &Path,
        log: &Path,
        config: &Path,
        env: &[(&str, &str)],
        nofile: Option<u64>,
    ) -> Server {
        let log_file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the server log");
        let mut command = serve_command(data_dir, config);
        command.envs(env.iter().copied());
        if let Some(n) = nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: n as libc::rlim_t,
                        rlim_max: n as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("spawn guichet serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            // Keeps draining stdout after `ready` so the server never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + START_LIMIT;
        let mut banner = Vec::new();
        let mut addr = None;
        let mut http_addr = None;
        let mut smtp_addr = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.split(" serving gRPC on ").nth(1) {
                        let a = rest.split_whitespace().next().unwrap_or_default();
                        addr = Some(
                            a.parse::<SocketAddr>()
                                .unwrap_or_else(|e| panic!("bad address {a:?} in {line:?}: {e}")),
                        );
                    }
                    if let Some(rest) = line.split(" and HTTP on ").nth(1) {
                        let a = rest.split_whitespace().next().unwrap_or_default();
                        http_addr = Some(
                            a.parse::<SocketAddr>()
                                .unwrap_or_else(|e| panic!("bad address {a:?} in {line:?}: {e}")),
                        );
                    }
                    if let Some(rest) = line.split(" and SMTP on ").nth(1) {
                        let a = rest.split_whitespace().next().unwrap_or_default();
                        smtp_addr = Some(
                            a.parse::<SocketAddr>()
                                .unwrap_or_else(|e| panic!("bad address {a:?} in {line:?}: {e}")),
                        );
                    }
                    let ready = line.trim() == "ready";
                    banner.push(line);
                    if ready {
                        break;
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    panic!(
                        "guichet serve did not print `ready` ({e:?}, exit {status:?}); stdout:\n{}\nstderr:\n{}",
                        banner.join("\n"),
                        fs::read_to_string(log).unwrap_or_default()
                    );
                }
            }
        }
        let addr = addr.unwrap_or_else(|| panic!("no `serving gRPC on` line in {banner:?}"));
        let http_addr = http_addr.unwrap_or_else(|| panic!("no `and HTTP on` line in {banner:?}"));
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(10))
            .connect_lazy();
        Server {
            child: Some(child),
            addr,
            http_addr,
            smtp_addr,
            banner,
            channel,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// A channel to the server (shared HTTP/2 connection).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A fresh channel (its own connection).
    pub fn new_channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.addr))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(10))
            .connect_lazy()
    }

    pub fn desktop(&self, token: &str) -> AgentDesktopClient<Authed> {
        AgentDesktopClient::with_interceptor(self.channel(), Bearer::token(token))
    }

    pub fn supervisor(&self, token: &str) -> SupervisorClient<Authed> {
        SupervisorClient::with_interceptor(self.channel(), Bearer::token(token))
    }

    pub fn interactions(&self, token: &str) -> InteractionsClient<Authed> {
        InteractionsClient::with_interceptor(self.channel(), Bearer::token(token))
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait for the exit (at most a minute; killed and failed beyond).
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("guichet serve did not stop within 60 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Adds `authorization: <value>` to every call (or nothing).
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    /// `authorization: Bearer <token>`.
    pub fn token(token: &str) -> Bearer {
        Bearer::raw(&format!("Bearer {token}"))
    }

    /// `authorization: <value>` as given.
    pub fn raw(value: &str) -> Bearer {
        Bearer(Some(value.parse().expect("ASCII metadata")))
    }

    /// No authorization metadata.
    pub fn none() -> Bearer {
        Bearer(None)
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            request.metadata_mut().insert("authorization", v.clone());
        }
        Ok(request)
    }
}

/// A channel whose calls carry a [`Bearer`].
pub type Authed = InterceptedService<Channel, Bearer>;

/// Agent `id` logged in (with its own agent token) and its offer stream open.
pub async fn logged_in_agent(
    ws: &Workspace,
    server: &Server,
    id: &str,
) -> (
    AgentDesktopClient<Authed>,
    tonic::Streaming<pb::OfferUpdate>,
) {
    let (token, _) = ws.token("agent", Some(id));
    let mut desk = server.desktop(&token);
    desk.login(pb::LoginRequest::default())
        .await
        .expect("Login");
    let stream = desk
        .offers(pb::OffersRequest::default())
        .await
        .expect("Offers")
        .into_inner();
    (desk, stream)
}

/// The next message of a server stream, failing the test if it does not come in time, ends, or
/// is an error.
pub async fn next<T>(stream: &mut tonic::Streaming<T>) -> T {
    match tokio::time::timeout(STREAM_LIMIT, stream.message()).await {
        Ok(Ok(Some(m))) => m,
        Ok(Ok(None)) => panic!("the stream ended"),
        Ok(Err(status)) => panic!("the stream failed: {status:?}"),
        Err(_) => panic!("no stream message within {STREAM_LIMIT:?}"),
    }
}

/// Asserts that `result` failed with `code` and a message containing every one of `words`.
#[track_caller]
pub fn assert_status<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    words: &[&str],
) -> Status {
    let status = match result {
        Ok(v) => panic!("expected {code:?}, got Ok({v:?})"),
        Err(s) => s,
    };
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    for w in words {
        assert!(
            status.message().contains(w),
            "message {:?} should name {w:?}",
            status.message()
        );
    }
    status
}

/// Every waiting interaction of a `ListWaiting` answer, queue by queue.
pub fn waiting(resp: &pb::ListWaitingResponse) -> Vec<pb::Interaction> {
    resp.lines
        .iter()
        .flat_map(|l| l.waiting.iter().cloned())
        .collect()
}

/// Every open interaction (waiting or held) of a `ListWaiting` answer.
pub fn open(resp: &pb::ListWaitingResponse) -> Vec<pb::Interaction> {
    resp.lines
        .iter()
        .flat_map(|l| l.waiting.iter().chain(l.in_progress.iter()).cloned())
        .collect()
}

/// A creation request in `queue` on `channel` from `contact`, with an external reference.
pub fn spec(
    queue: &str,
    channel: pb::Channel,
    contact: &str,
    external_ref: &str,
) -> pb::CreateRequest {
    pb::CreateRequest {
        spec: Some(pb::InteractionSpec {
            channel: channel as i32,
            queue: queue.to_owned(),
            contact: contact.to_owned(),
            external_ref: external_ref.to_owned(),
            ..Default::default()
        }),
        message: None,
    }
}

/// Creates, as an integrator, a chat in `benefits` from `contact` whose visitor wrote `text`
/// first; the new interaction's id.
pub async fn create_chat(
    ws: &Workspace,
    server: &Server,
    contact: &str,
    external_ref: &str,
    text: &str,
) -> String {
    let mut create = spec("benefits", pb::Channel::Chat, contact, external_ref);
    create.message = Some(pb::InboundMessage {
        text: text.to_owned(),
        from: "visitor".into(),
        ..Default::default()
    });
    create_id(ws, server, create).await
}

/// Creates `create` as an integrator; the new interaction's id.
pub async fn create_id(ws: &Workspace, server: &Server, create: pb::CreateRequest) -> String {
    let (integrator, _) = ws.token("integrator", None);
    server
        .interactions(&integrator)
        .create(create)
        .await
        .expect("Create")
        .into_inner()
        .interaction
        .expect("interaction")
        .id
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("{what}: not within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The next offer on an agent's stream, skipping the other updates (withdrawals, typing...).
pub async fn next_offer(offers: &mut tonic::Streaming<pb::OfferUpdate>) -> pb::Offer {
    loop {
        if let Some(pb::offer_update::Update::Offer(o)) = next(offers).await.update {
            return o;
        }
    }
}

/// The next withdrawal on an agent's stream, skipping the other updates.
pub async fn next_withdrawn(offers: &mut tonic::Streaming<pb::OfferUpdate>) -> pb::OfferWithdrawn {
    loop {
        if let Some(pb::offer_update::Update::Withdrawn(w)) = next(offers).await.update {
            return w;
        }
    }
}

/// An action on interaction `id` by the agent the token names.
pub fn action(id: &str) -> pb::InteractionAction {
    pb::InteractionAction {
        agent_id: String::new(),
        interaction_id: id.to_owned(),
    }
}

/// Makes the agent available (after login, or to end a wrap-up at once).
pub async fn set_available(desk: &mut AgentDesktopClient<Authed>) {
    desk.set_state(pb::SetStateRequest {
        state: pb::agent_state::Kind::Available as i32,
        ..Default::default()
    })
    .await
    .expect("SetState available");
}

/// Completes interaction `id` with `wrap_up_code` (may be empty).
pub async fn complete(
    desk: &mut AgentDesktopClient<Authed>,
    id: &str,
    wrap_up_code: &str,
) -> pb::Interaction {
    desk.complete(pb::CompleteRequest {
        interaction_id: id.to_owned(),
        wrap_up_code: wrap_up_code.to_owned(),
        ..Default::default()
    })
    .await
    .expect("Complete")
    .into_inner()
}

/// Erases `contact` with an admin token, retrying until the server accepts (it refuses while
/// one of the contact's interactions is still open: a wrap-up runs out, a close commits).
pub async fn erase_contact_once_closed(ws: &Workspace, server: &Server, contact: &str) {
    let sup = server.supervisor(&ws.admin_token());
    eventually(
        Duration::from_secs(30),
        "the contact is erased once its interaction is closed",
        || {
            let mut sup = sup.clone();
            let contact = contact.to_owned();
            async move {
                sup.erase_contact(pb::EraseContactRequest { contact })
                    .await
                    .ok()
            }
        },
    )
    .await;
}
