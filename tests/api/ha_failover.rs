//! High availability on PostgreSQL (issue 24) against the real binary: two `guichet serve` on
//! one database, short leases (3 s, renewed every 0.5 s). Failover: a steady gRPC load of
//! creations, SIGKILL the leader, the standby serves within the lease plus 5 s with every
//! acknowledged interaction exactly once and in order, and routes (an agent accepts). The standby
//! follows the journal under the load (its lag, sampled, stays small; it replays only the tail
//! at takeover), and an agent's desktop, reconnected to the new leader, gets the offer that was
//! pending at the failover again. Fencing:
//! SIGSTOP the leader beyond its lease, the standby takes over and accepts work, SIGCONT the old
//! leader: it commits nothing more, steps down with exit code 75 and says so in its log.
//! Skipped (one line) without `GUICHET_TEST_POSTGRES_URL`.

use crate::api_common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api_common::{copy_demo_tree, demo_config, pg_common, spec, waiting, Bearer, GUICHET};
use guichet::api::proto as pb;
use pb::interactions_client::InteractionsClient;
use pb::supervisor_client::SupervisorClient;
use tonic::transport::{Channel, Endpoint};

const LEASE_SECS: f64 = 3.0;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local address")
        .port()
}

/// A node: its ports, log and process.
struct Node {
    name: &'static str,
    grpc: SocketAddr,
    http: SocketAddr,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn start(dir: &Path, name: &'static str, config: &Path) -> Node {
        let grpc: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let smtp = format!("127.0.0.1:{}", free_port());
        let log = dir.join(format!("{name}.log"));
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(GUICHET)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(dir.join(format!("data-{name}")))
            .args(["--grpc-addr", &grpc.to_string()])
            .args(["--http-addr", &http.to_string()])
            .args(["--smtp-addr", &smtp])
            .env("GUICHET_HA__NODE_ID", name)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("spawn guichet serve");
        Node {
            name,
            grpc,
            http,
            log,
            child: Some(child),
        }
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    fn signal(&self, sig: i32) {
        // SAFETY: a plain kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0, "kill {sig}");
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.grpc))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(20))
            .connect_lazy()
    }

    /// Waits for `/readyz` to answer `code` (200 leader, 503 standby).
    fn wait_ready(&self, code: u16, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some((c, body)) = http_get(self.http, "/readyz") {
                if c == code {
                    return body;
                }
            }
            assert!(
                Instant::now() < deadline,
                "node {} did not answer /readyz {code} within {limit:?}; log:\n{}",
                self.name,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the process to exit; its exit code.
    fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status.code();
            }
            assert!(Instant::now() < deadline, "node {} did not exit", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: our own child; SIGCONT first in case it was stopped.
            unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A bare HTTP/1.0 GET: the status code and the body.
fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    Some((code, body))
}

/// The workspace: a database, the demo configuration on it with short leases.
struct Cluster {
    db: pg_common::PgDb,
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Cluster {
    fn new() -> Option<Cluster> {
        let db = pg_common::PgDb::create()?;
        let dir = tempfile::Builder::new()
            .prefix("guichet-ha-")
            .tempdir()
            .expect("temporary directory");
        copy_demo_tree(dir.path());
        let text = std::fs::read_to_string(demo_config()).expect("demo configuration");
        let text = text.replacen(
            "\n[store]\n",
            &format!("\n[store]\nbackend = \"postgres\"\nurl = \"{}\"\n", db.url),
            1,
        );
        let text = format!("{text}\n[ha]\nlease_secs = {LEASE_SECS}\nrenew_every_secs = 0.5\n");
        let config = dir.path().join("guichet.toml");
        std::fs::write(&config, text).expect("write the configuration");
        Some(Cluster { db, dir, config })
    }

    fn token(&self, role: &str, agent: Option<&str>) -> String {
        let mut cmd = Command::new(GUICHET);
        cmd.args(["token", "create", "--role", role, "--label", "ha test"])
            .arg("--config")
            .arg(&self.config);
        if let Some(agent) = agent {
            cmd.args(["--agent", agent]);
        }
        let out = cmd.output().expect("guichet token create");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .find(|w| w.starts_with(guichet::store::TOKEN_PREFIX))
            .expect("a token in the output")
            .to_owned()
    }

    fn start(&self, name: &'static str) -> Node {
        Node::start(self.dir.path(), name, &self.config)
    }

    /// Journal rows whose payload mentions `text`, the row count and the highest seq.
    fn journal(&self, text: &str) -> (i64, i64, i64) {
        let url = self.db.url.clone();
        let text = format!("%{text}%");
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
            let row = c
                .query_one(
                    "SELECT (SELECT COUNT(*) FROM journal WHERE payload LIKE $1), \
                     COUNT(*), COALESCE(MAX(seq), 0) FROM journal",
                    &[&text],
                )
                .expect("query");
            (row.get(0), row.get(1), row.get(2))
        })
        .join()
        .expect("journal query")
    }
}

fn create(n: usize) -> pb::CreateRequest {
    spec(
        "general",
        pb::Channel::Voice,
        &format!("+3361{n:07}"),
        &format!("ha-{n}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_after_sigkill_with_every_acknowledged_interaction() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let mut a = cluster.start("a");
    a.wait_ready(200, Duration::from_secs(120));
    let b = cluster.start("b");
    let body = b.wait_ready(503, Duration::from_secs(120));
    assert!(body.contains(&a.grpc.to_string()), "{body}");
    assert_eq!(http_get(b.http, "/healthz").map(|r| r.0), Some(200));
    let int_token = cluster.token("integrator", None);
    let sup_token = cluster.token("supervisor", None);

    // The standby: gRPC health NOT_SERVING, calls UNAVAILABLE naming the leader.
    let mut health = tonic_health::pb::health_client::HealthClient::new(b.channel());
    let served = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "guichet.v1.Interactions".into(),
        })
        .await
        .expect("health check")
        .into_inner();
    assert_eq!(
        served.status,
        tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
    );
    let refused = InteractionsClient::with_interceptor(b.channel(), Bearer::token(&int_token))
        .create(create(0))
        .await
        .expect_err("a standby refuses");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert_eq!(
        refused
            .metadata()
            .get("guichet-leader")
            .and_then(|v| v.to_str().ok()),
        Some(a.grpc.to_string().as_str())
    );

    // An agent on the leader, whose offer will be pending at the failover.
    let agent_token = cluster.token("agent", Some("chloe"));
    let mut desk_a = pb::agent_desktop_client::AgentDesktopClient::with_interceptor(
        a.channel(),
        Bearer::token(&agent_token),
    );
    desk_a
        .login(pb::LoginRequest::default())
        .await
        .expect("Login on the leader");
    let mut offers_a = desk_a
        .offers(pb::OffersRequest::default())
        .await
        .expect("Offers on the leader")
        .into_inner();

    // A steady load: one creation after another, on the leader, then on whichever answers.
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let times: Arc<Mutex<(Option<Instant>, Option<Instant>)>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (acked, times, stop) = (acked.clone(), times.clone(), stop.clone());
        let nodes = [a.channel(), b.channel()];
        let token = int_token.clone();
        tokio::spawn(async move {
            let mut on = 0usize;
            let mut n = 1usize;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let mut client =
                    InteractionsClient::with_interceptor(nodes[on].clone(), Bearer::token(&token));
                match client.create(create(n)).await {
                    Ok(resp) => {
                        let it = resp.into_inner().interaction.expect("interaction");
                        acked.lock().unwrap().push((it.id, it.external_ref));
                        let mut t = times.lock().unwrap();
                        if on == 0 {
                            t.0 = Some(Instant::now());
                        } else if t.1.is_none() {
                            t.1 = Some(Instant::now());
                        }
                        n += 1;
                    }
                    Err(_) => {
                        // In flight when the leader died, or a standby: retry the same
                        // creation (idempotent on its reference) on the other node.
                        on = 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    // The standby follows the journal under this load: its lag, sampled from its metrics.
    let mut lags: Vec<(f64, f64)> = Vec::new();
    let sampling = Instant::now() + Duration::from_secs(2);
    while Instant::now() < sampling {
        if let Some((200, text)) = http_get(b.http, "/metrics") {
            let value = |name: &str| {
                text.lines()
                    .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            };
            if let (Some(events), Some(secs)) = (
                value("guichet_ha_standby_lag_events"),
                value("guichet_ha_standby_lag_seconds"),
            ) {
                lags.push((events, secs));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = Command::new(GUICHET)
        .args(["status", "--config"])
        .arg(&cluster.config)
        .output()
        .expect("guichet status");
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    let before_kill = acked.lock().unwrap().len();
    let (_, rows_at_kill, _) = cluster.journal("ha-");
    assert!(!lags.is_empty(), "the standby exports its lag");
    let max_events = lags.iter().map(|l| l.0).fold(0.0, f64::max);
    let max_secs = lags.iter().map(|l| l.1).fold(0.0, f64::max);
    let mean_events = lags.iter().map(|l| l.0).sum::<f64>() / lags.len() as f64;
    println!(
        "standby lag under load ({before_kill} creations in 2 s, {} samples): mean {mean_events:.1} \
         events, max {max_events} events, max {max_secs:.3} s; guichet status:\n{status}",
        lags.len()
    );
    assert!(
        max_events < rows_at_kill as f64 / 2.0,
        "a warm standby stays close to the journal's end ({max_events} behind of {rows_at_kill})"
    );
    let b_row = status
        .lines()
        .find(|l| l.starts_with("b "))
        .unwrap_or_else(|| panic!("the standby in guichet status:\n{status}"));
    assert!(b_row.contains("standby"), "{status}");

    // The pending offer on the old leader.
    let pending = loop {
        let update = tokio::time::timeout(Duration::from_secs(20), offers_a.message())
            .await
            .expect("an offer in time")
            .expect("stream")
            .expect("a message");
        if let Some(pb::offer_update::Update::Offer(o)) = update.update {
            break o.interaction.expect("offered interaction");
        }
    };
    assert!(before_kill > 10, "only {before_kill} creations in 2 s");
    a.signal(libc::SIGKILL);
    let killed_at = Instant::now();
    let _ = a.wait_exit(Duration::from_secs(10));
    b.wait_ready(200, Duration::from_secs_f64(LEASE_SECS + 5.0));
    let served_in = killed_at.elapsed();
    // The desktop's stream on the dead leader ends.
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match offers_a.message().await {
                Ok(Some(_)) => continue,
                other => return other.map(|_| ()),
            }
        }
    })
    .await
    .expect("the old leader's stream ends");
    assert!(ended.is_err(), "the stream ends with an error");
    // The new leader started from the followed router: only the tail was replayed.
    let log_b = b.log_text();
    let tail: u64 = log_b
        .lines()
        .find(|l| l.contains("warm takeover"))
        .and_then(|l| l.split("needed ").nth(1)?.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("a warm takeover in the new leader's log:\n{log_b}"));
    println!("warm takeover: {tail} event(s) of the tail replayed (journal: {rows_at_kill} rows)");
    assert!(
        tail < rows_at_kill as u64 / 2,
        "the tail ({tail}) is short beside the journal ({rows_at_kill})"
    );
    // Some creations on the new leader, then stop the load.
    let deadline = Instant::now() + Duration::from_secs(30);
    while times.lock().unwrap().1.is_none() || acked.lock().unwrap().len() < before_kill + 20 {
        assert!(Instant::now() < deadline, "no creation on the new leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    load.await.expect("load task");
    let (last_a, first_b) = *times.lock().unwrap();
    let gap = first_b.expect("first on b") - last_a.expect("last on a");
    println!(
        "failover: /readyz 200 on the standby {:.2} s after SIGKILL; gap between the old \
         leader's last answer and the new one's first: {:.2} s (lease {LEASE_SECS} s)",
        served_in.as_secs_f64(),
        gap.as_secs_f64()
    );
    assert!(
        gap <= Duration::from_secs_f64(LEASE_SECS + 5.0),
        "gap {gap:?} beyond the lease plus 5 s"
    );

    // Every acknowledged interaction exactly once, in order.
    let mut sup = SupervisorClient::with_interceptor(b.channel(), Bearer::token(&sup_token));
    let page = sup
        .list_waiting(pb::ListWaitingRequest {
            queues: vec!["general".into()],
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect("ListWaiting")
        .into_inner();
    assert!(page.next_page_token.is_empty(), "more than one page");
    let line = waiting(&page);
    let acked = acked.lock().unwrap().clone();
    let ids: Vec<&str> = line.iter().map(|i| i.id.as_str()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "an interaction is listed twice");
    let refs: HashSet<&str> = line.iter().map(|i| i.external_ref.as_str()).collect();
    assert_eq!(refs.len(), line.len(), "an external reference is twice");
    for (id, r) in &acked {
        assert!(unique.contains(id.as_str()), "acknowledged {id} ({r}) lost");
    }
    assert_eq!(
        line.len(),
        acked.len(),
        "the line holds exactly what was acknowledged"
    );
    // Same priority: served by deadline, enqueue time, id; creation order is the same here.
    let position = |id: &str| ids.iter().position(|x| *x == id).expect("listed");
    for w in acked.windows(2) {
        assert!(
            position(&w[0].0) < position(&w[1].0),
            "{} before {} in creation order, not in the line",
            w[0].1,
            w[1].1
        );
    }

    // The new leader routes: the agent's desktop reconnects to it, logs in again, gets the
    // offer that was pending at the failover (the head of the line) and accepts it.
    let mut desk = pb::agent_desktop_client::AgentDesktopClient::with_interceptor(
        b.channel(),
        Bearer::token(&agent_token),
    );
    desk.login(pb::LoginRequest::default())
        .await
        .expect("Login on the new leader");
    let mut offers = desk
        .offers(pb::OffersRequest::default())
        .await
        .expect("Offers")
        .into_inner();
    let offered = loop {
        let update = tokio::time::timeout(Duration::from_secs(20), offers.message())
            .await
            .expect("an offer in time")
            .expect("stream")
            .expect("a message");
        if let Some(pb::offer_update::Update::Offer(o)) = update.update {
            break o.interaction.expect("offered interaction");
        }
    };
    assert_eq!(
        offered.id, acked[0].0,
        "the head of the line is offered first"
    );
    assert_eq!(
        offered.id, pending.id,
        "the offer pending at the failover is offered again"
    );
    let (timed_out, _, _) = cluster.journal("timed_out");
    assert_eq!(timed_out, 0, "the failover counted no missed offer");
    let accepted = desk
        .accept(pb::InteractionAction {
            agent_id: String::new(),
            interaction_id: offered.id.clone(),
        })
        .await
        .expect("Accept on the new leader")
        .into_inner();
    assert_eq!(accepted.phase, pb::Phase::Assigned as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_old_leader_commits_nothing_and_steps_down() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let mut a = cluster.start("a");
    a.wait_ready(200, Duration::from_secs(120));
    let b = cluster.start("b");
    b.wait_ready(503, Duration::from_secs(120));
    let int_token = cluster.token("integrator", None);
    let mut on_a = InteractionsClient::with_interceptor(a.channel(), Bearer::token(&int_token));
    on_a.create(create(1))
        .await
        .expect("a creation on the leader");

    // Paused beyond its lease; a creation sent to it meanwhile waits in its socket.
    a.signal(libc::SIGSTOP);
    let late = tokio::spawn(async move { on_a.create(create(2)).await });
    let stopped_at = Instant::now();
    b.wait_ready(200, Duration::from_secs_f64(LEASE_SECS + 5.0));
    println!(
        "fencing: the standby served {:.2} s after the leader was paused",
        stopped_at.elapsed().as_secs_f64()
    );
    let mut on_b = InteractionsClient::with_interceptor(b.channel(), Bearer::token(&int_token));
    on_b.create(create(3))
        .await
        .expect("the new leader accepts work");

    // Resumed: it must not commit the waiting creation, and must step down.
    a.signal(libc::SIGCONT);
    let code = a.wait_exit(Duration::from_secs(15));
    assert_eq!(
        code,
        Some(guichet::ha::EXIT_STEPPED_DOWN),
        "{}",
        a.log_text()
    );
    let log = a.log_text();
    assert!(
        log.contains("steps down") && log.contains("term 1"),
        "the old leader says it steps down:\n{log}"
    );
    let late = tokio::time::timeout(Duration::from_secs(20), late)
        .await
        .expect("the paused creation ends")
        .expect("task");
    assert!(
        late.is_err(),
        "the old leader acknowledged a creation: {late:?}"
    );
    let (mentions, rows, last) = cluster.journal("ha-2");
    assert_eq!(mentions, 0, "the old leader committed the paused creation");
    assert_eq!(rows, last, "the journal's sequence numbers are dense");

    // The new leader carries on.
    on_b.create(create(4))
        .await
        .expect("the new leader still serves");
    assert_eq!(cluster.journal("ha-3").0, 1);
}

#[test]
fn the_lease_is_taken_only_once_expired_and_renewed_only_by_its_term() {
    let Some(db) = pg_common::PgDb::create() else {
        return;
    };
    let store = db.store_config();
    std::thread::spawn(move || {
        use guichet::store::{HaConfig, LeaseClient};
        let ha = HaConfig {
            lease_secs: 1.0,
            renew_every_secs: 0.2,
            ..HaConfig::default()
        };
        let mut a = LeaseClient::connect(&store, &ha, "a".into(), "addr-a".into()).expect("a");
        let mut b = LeaseClient::connect(&store, &ha, "b".into(), "addr-b".into()).expect("b");
        assert_eq!(
            a.try_acquire().expect("acquire"),
            Some(1),
            "never held: taken"
        );
        assert_eq!(b.try_acquire().expect("acquire"), None, "live: refused");
        assert!(a.renew(1).expect("renew"), "the holder renews its term");
        assert!(!b.renew(1).expect("renew"), "another node cannot renew it");
        let lease = b.read().expect("read");
        assert_eq!(
            (lease.holder.as_str(), lease.address.as_str(), lease.term),
            ("a", "addr-a", 1)
        );
        assert!(lease.live());
        std::thread::sleep(Duration::from_millis(1200));
        assert_eq!(
            b.try_acquire().expect("acquire"),
            Some(2),
            "expired: taken, next term"
        );
        assert!(!a.renew(1).expect("renew"), "the old term is over");
        b.heartbeat("leader", 2, None).expect("heartbeat");
        a.heartbeat("standby", 2, Some(0)).expect("heartbeat");
        let status = a.status().expect("status");
        assert_eq!(status.lease.term, 2);
        assert_eq!(status.nodes.len(), 2);
    })
    .join()
    .expect("lease checks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stopped_gracefully_hands_the_lease_back() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let mut a = cluster.start("a");
    a.wait_ready(200, Duration::from_secs(120));
    let b = cluster.start("b");
    b.wait_ready(503, Duration::from_secs(120));
    a.signal(libc::SIGTERM);
    let stopped_at = Instant::now();
    // The lease is handed back once the engine has stopped, before the listeners close: the
    // standby serves while the old leader is still finishing its requests.
    b.wait_ready(200, Duration::from_secs_f64(LEASE_SECS + 5.0));
    let served = stopped_at.elapsed().as_secs_f64();
    assert_eq!(
        a.wait_exit(Duration::from_secs(60)),
        Some(0),
        "{}",
        a.log_text()
    );
    println!(
        "switchover: the standby served {served:.2} s after SIGTERM to the leader, \
         which exited after {:.2} s",
        stopped_at.elapsed().as_secs_f64()
    );
    let log = a.log_text();
    assert!(log.contains("lease handed back"), "{log}");
    // Idle connections close at once: nothing is left for the grace period to wait for.
    assert!(
        !log.contains("still running after the grace period"),
        "{log}"
    );
    let status = Command::new(GUICHET)
        .args(["status", "--config"])
        .arg(&cluster.config)
        .output()
        .expect("guichet status");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{status:?}");
    assert!(
        text.contains("leader: b at") && text.contains("term 2"),
        "{text}"
    );
}

/// Outbox deliveries and survey questions are claimed with the term, in a transaction fenced by
/// the lease: after a takeover the old leader claims nothing (it steps down), and the new one
/// does not send again what the old one claimed without recording the outcome (in doubt);
/// a delivery left pending for a retry is claimable by the next term.
#[test]
fn deliveries_and_survey_questions_are_claimed_with_the_term() {
    let Some(db) = pg_common::PgDb::create() else {
        return;
    };
    let config = db.store_config();
    let url = db.url.clone();
    std::thread::spawn(move || {
        use guichet::core::{Channel, InteractionId, Timestamp};
        use guichet::store::{
            DeliveryState, Fence, HaConfig, LeaseClient, OutboxClaim, Store, StoreError,
            SurveyQuestion, SurveyVia,
        };
        use std::sync::atomic::{AtomicUsize, Ordering};
        let ha = HaConfig {
            lease_secs: 1.0,
            renew_every_secs: 0.2,
            ..HaConfig::default()
        };
        let mut lease_a = LeaseClient::connect(&config, &ha, "a".into(), "a".into()).expect("a");
        let mut lease_b = LeaseClient::connect(&config, &ha, "b".into(), "b".into()).expect("b");
        let stepped_down = Arc::new(AtomicUsize::new(0));
        let open = |term: u64, node: &str| {
            let count = stepped_down.clone();
            let mut c = config.clone();
            c.fence = Some(Fence::new(
                term,
                node.into(),
                Instant::now() + Duration::from_secs(60),
                Arc::new(move |_: &str| {
                    count.fetch_add(1, Ordering::SeqCst);
                }),
            ));
            Store::open(&c).expect("store")
        };
        assert_eq!(lease_a.try_acquire().expect("acquire"), Some(1));
        let a = open(1, "a");
        let mut sql = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        for (m, seq) in [("m1", 1i64), ("m2", 2), ("m3", 3)] {
            sql.execute(
                "INSERT INTO outbox (message, seq, interaction, channel, state, attempts, \
                 created_at, next_attempt_at) VALUES ($1, $2, 'i', 'email', 'pending', 0, 0, 0)",
                &[&m, &seq],
            )
            .expect("a delivery");
        }
        let question = |n: u128| SurveyQuestion {
            token: format!("token-{n}"),
            interaction: InteractionId::from_u128(n),
            contact: None,
            agent: None,
            queue: "general".into(),
            channel: Channel::Sms,
            via: SurveyVia::Sms,
            address: Some("+33600000000".into()),
            message: format!("question-{n}"),
            language: "fr".into(),
            asked_at: Timestamp(0),
            answered_at: None,
        };
        assert_eq!(a.outbox_claim("m1").expect("claim"), OutboxClaim::Claimed);
        assert_eq!(
            a.outbox_claim("m1").expect("again"),
            OutboxClaim::Claimed,
            "its own term's claim"
        );
        assert!(a.claim_survey_question(&question(1)).expect("survey claim"));

        // The lease runs out; b takes over with term 2.
        std::thread::sleep(Duration::from_millis(1200));
        assert_eq!(lease_b.try_acquire().expect("acquire"), Some(2));
        let b = open(2, "b");
        assert!(matches!(
            a.outbox_claim("m2"),
            Err(StoreError::Fenced {
                term: 1,
                current: 2,
                ..
            })
        ));
        assert!(matches!(
            a.claim_survey_question(&question(2)),
            Err(StoreError::Fenced { .. })
        ));
        assert_eq!(stepped_down.load(Ordering::SeqCst), 2, "told each time");

        // m1 was claimed by term 1, which never recorded an outcome: not sent again.
        assert_eq!(
            b.outbox_claim("m1").expect("claim"),
            OutboxClaim::InDoubt { term: 1 }
        );
        assert_eq!(b.outbox_claim("m2").expect("claim"), OutboxClaim::Claimed);
        // A transient failure leaves m2 pending and unclaimed: a later term may send it.
        b.outbox_record(
            "m2",
            DeliveryState::Pending,
            1,
            Timestamp(0),
            Some("busy"),
            None,
        )
        .expect("record");
        let claimed: Option<i64> = sql
            .query_one("SELECT claimed_term FROM outbox WHERE message = 'm2'", &[])
            .expect("row")
            .get(0);
        assert_eq!(claimed, None);
        b.outbox_record("m3", DeliveryState::Delivered, 1, Timestamp(0), None, None)
            .expect("record");
        assert_eq!(b.outbox_claim("m3").expect("claim"), OutboxClaim::Gone);
        // The question term 1 claimed is asked by nobody else; a new one is b's.
        assert!(!b
            .claim_survey_question(&question(1))
            .expect("claimed before"));
        assert!(b.claim_survey_question(&question(2)).expect("b's claim"));
        drop(lease_a);
    })
    .join()
    .expect("claim checks");
}
