//! Load on the phone channel: many simultaneous simulated calls through the IVR and the queue,
//! as a Twilio-style gateway would send them, over loopback HTTP.
//!
//! ```sh
//! cargo run --release --example voice_load                        # 1,000 calls at once, 3 rounds
//! cargo run --release --example voice_load -- --calls 2000 --rounds 5 --server-threads 1
//! ```
//!
//! What it does:
//! 1. starts a server in this process (its own runtime, a temporary data directory) with the
//!    demo queues, a Twilio account and a two-level test tree bound to one number;
//! 2. each round, `--calls` calls run at once, each as a gateway would: the incoming request,
//!    two key presses (two menus), the redirect that queues the call (one voice interaction
//!    through the engine, committed to the journal), `--polls` hold-loop polls, and the final
//!    status callback (the caller hangs up: abandoned). Every request is signed with
//!    `X-Twilio-Signature` and its TwiML answer is checked to be the expected one;
//! 3. prints the webhook requests per second over the whole run and the latency percentiles
//!    (hdrhistogram), per request kind and overall, and the CPU time the server spent per
//!    request (µs), which other work on the machine does not inflate the way it inflates
//!    latency.
//!
//! The load generator shares the machine with the server, so the figures are for both on the
//! same cores: a lower bound of what the server alone sustains. Server CPU is the process's CPU
//! time (`/proc/self/stat`) minus that of the load generator's threads (named `load-client`)
//! and of the main thread (`/proc/self/task/*/stat`), in 10 ms ticks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine as _;
use clap::Parser;
use hdrhistogram::Histogram;
use hmac::{Hmac, Mac};
use tokio::sync::Mutex;

const ACCOUNT: &str = "ACload0000";
const TOKEN: &str = "load-auth-token";
const NUMBER: &str = "+33100000009";

#[derive(Debug, Parser)]
struct Args {
    /// Calls in progress at once.
    #[arg(long, default_value_t = 1000)]
    calls: usize,
    /// Rounds of `--calls` calls.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Hold-loop polls per call before it hangs up.
    #[arg(long, default_value_t = 3)]
    polls: usize,
    /// Server runtime worker threads.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
    /// Load generator runtime worker threads.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Milliseconds each call waits between its requests (a caller listening to a prompt);
    /// 0 sends the next request as soon as the answer arrives (closed loop: latency is then
    /// mostly queueing, by Little's law at least calls / throughput).
    #[arg(long, default_value_t = 0)]
    gap_ms: u64,
}

const TREE: &str = r#"{
  "name": "load", "languages": ["fr-FR"], "default_language": "fr-FR", "timezone": "Europe/Paris",
  "entry": "main",
  "nodes": {
    "main": {"type": "menu", "prompt": {"text": {"fr-FR": "Logement, tapez 1."}}, "options": {"1": "housing"}, "on_fail": "bye"},
    "housing": {"type": "menu", "prompt": {"text": {"fr-FR": "Conseiller, tapez 1."}}, "options": {"1": "req"}, "on_fail": "bye"},
    "req": {"type": "set_requirement", "skill": "lang:fr", "min_level": 1, "next": "q"},
    "q": {"type": "queue", "queue": "benefits"},
    "bye": {"type": "hangup"}
  }
}"#;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let config_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/guichet.toml");
    let mut config = guichet::config::Config::load(&config_path)?;
    std::fs::write(dir.path().join("tree.json"), TREE)?;
    config.server.grpc_addr = "127.0.0.1:0".into();
    config.server.http_addr = "127.0.0.1:0".into();
    config.store.data_dir = dir.path().join("data");
    config.voice.trees = vec![guichet::channels::voice::config::TreeSeed {
        file: dir.path().join("tree.json"),
    }];
    config.voice.numbers = vec![guichet::channels::voice::config::NumberBinding {
        number: NUMBER.into(),
        tree: "load".into(),
    }];
    config.voice.twilio = Some(guichet::channels::voice::config::TwilioConfig {
        account_sid: ACCOUNT.into(),
        auth_token: TOKEN.into(),
        api_base: "http://127.0.0.1:9".into(),
        verify_signature: true,
    });

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let threads = args.server_threads.max(1);
    let server = std::thread::spawn(move || -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("server")
            .enable_all()
            .build()?;
        runtime.block_on(guichet::server::serve(
            guichet::server::ServeOptions { config },
            async |started: &guichet::server::Started| {
                let _ = started_tx.send(started.http_addr);
            },
            async move {
                let _ = stopped.await;
            },
        ))?;
        Ok(())
    });
    let http_addr = started_rx
        .recv()
        .context("the server did not start (see its error above)")?;
    println!("server on {http_addr} ({threads} worker threads)");

    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .thread_name("load-client")
        .enable_all()
        .build()?;
    let result = client_runtime.block_on(drive(&args, format!("http://{http_addr}")));
    drop(client_runtime);
    let _ = stop.send(());
    match server.join() {
        Ok(r) => r?,
        Err(_) => bail!("the server thread panicked"),
    }
    result
}

/// Latencies per request kind, in microseconds.
struct Latencies {
    kinds: Vec<(&'static str, Histogram<u64>)>,
}

impl Latencies {
    fn new() -> anyhow::Result<Latencies> {
        let kinds = ["incoming", "menu key", "queue", "hold poll", "hang-up"]
            .into_iter()
            .map(|k| Ok((k, Histogram::new_with_bounds(1, 60_000_000, 3)?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Latencies { kinds })
    }

    fn record(&mut self, kind: &'static str, took: Duration) {
        if let Some((_, h)) = self.kinds.iter_mut().find(|(k, _)| *k == kind) {
            let _ = h.record(took.as_micros().max(1) as u64);
        }
    }
}

async fn drive(args: &Args, base: String) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.calls)
        .timeout(Duration::from_secs(30))
        .build()?;
    let latencies = Arc::new(Mutex::new(Latencies::new()?));
    let cpu_before = Cpu::now();
    let started = Instant::now();
    let mut requests = 0usize;
    for round in 0..args.rounds {
        let round_start = Instant::now();
        let mut tasks = Vec::with_capacity(args.calls);
        for i in 0..args.calls {
            let client = client.clone();
            let base = base.clone();
            let latencies = Arc::clone(&latencies);
            let polls = args.polls;
            let gap = Duration::from_millis(args.gap_ms);
            // Spread the calls' starts over one gap, so that they do not fire in step.
            let offset = Duration::from_millis(args.gap_ms * i as u64 / args.calls.max(1) as u64);
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(offset).await;
                let sid = format!("CA{round:03}{i:06}");
                one_call(&client, &base, &sid, polls, gap, &latencies).await
            }));
        }
        for task in tasks {
            requests += task.await??;
        }
        println!(
            "round {}: {} calls in {:.2} s",
            round + 1,
            args.calls,
            round_start.elapsed().as_secs_f64()
        );
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = Cpu::now().since(&cpu_before);
    let latencies = latencies.lock().await;
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    println!(
        "\n{requests} webhook requests in {wall:.2} s: {:.0} requests/s ({} calls at once)\n",
        requests as f64 / wall,
        args.calls
    );
    println!(
        "{:<10} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "kind", "count", "p50 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    for (kind, h) in &latencies.kinds {
        all.add(h)?;
        print_row(kind, h);
    }
    print_row("all", &all);
    let per_request = |secs: f64| secs * 1e6 / requests.max(1) as f64;
    println!(
        "\nCPU: server {:.2} s = {:.0} µs/request ({:.2} of {wall:.2} s wall per core-second: {:.0}% of one core); \
         load generator {:.2} s = {:.0} µs/request",
        cpu.server,
        per_request(cpu.server),
        cpu.server / wall,
        100.0 * cpu.server / wall,
        cpu.client,
        per_request(cpu.client),
    );
    Ok(())
}

/// CPU seconds used so far: by the server (the whole process but the load generator's threads
/// and the main thread) and by the load generator.
struct Cpu {
    server: f64,
    client: f64,
}

impl Cpu {
    /// Ticks of `/proc` stat files (USER_HZ, 100 on Linux).
    const TICK: f64 = 0.01;

    fn now() -> Cpu {
        let process = stat_ticks("/proc/self/stat").map_or(0, |(_, t)| t);
        let pid = std::process::id().to_string();
        let mut client = 0;
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for task in tasks.flatten() {
                let path = task.path().join("stat");
                let Some((name, ticks)) = stat_ticks(&path.to_string_lossy()) else {
                    continue;
                };
                if name.starts_with("load-client") || task.file_name().to_string_lossy() == pid {
                    client += ticks;
                }
            }
        }
        Cpu {
            server: process.saturating_sub(client) as f64 * Self::TICK,
            client: client as f64 * Self::TICK,
        }
    }

    fn since(&self, before: &Cpu) -> Cpu {
        Cpu {
            server: self.server - before.server,
            client: self.client - before.client,
        }
    }
}

/// The command name and user + system ticks of a `/proc/.../stat` file.
fn stat_ticks(path: &str) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text[open + 1..close].to_owned();
    // After the name: state is field 3; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

fn print_row(kind: &str, h: &Histogram<u64>) {
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "{:<10} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
        kind,
        h.len(),
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max())
    );
}

/// One call from start to hang-up; returns the number of requests made.
async fn one_call(
    client: &reqwest::Client,
    base: &str,
    sid: &str,
    polls: usize,
    gap: Duration,
    latencies: &Mutex<Latencies>,
) -> anyhow::Result<usize> {
    let mut made = 0;
    let mut send = |url: String, params: Vec<(&'static str, String)>, kind: &'static str| {
        made += 1;
        let wait = if made > 1 { gap } else { Duration::ZERO };
        async move {
            tokio::time::sleep(wait).await;
            let xml = post(client, &url, &params, kind, latencies).await?;
            Ok::<String, anyhow::Error>(xml)
        }
    };
    let call = |extra: &[(&'static str, &str)]| {
        let mut p = vec![
            ("AccountSid", ACCOUNT.to_owned()),
            ("CallSid", sid.to_owned()),
        ];
        p.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        p
    };
    let xml = send(
        format!("{base}/voice/twilio/incoming"),
        call(&[
            ("From", "+33600000000"),
            ("To", NUMBER),
            ("CallStatus", "ringing"),
        ]),
        "incoming",
    )
    .await?;
    let xml = send(
        attr(&xml, "action=\"")?,
        call(&[("Digits", "1")]),
        "menu key",
    )
    .await?;
    let xml = send(attr(&xml, "action=\"")?, call(&[("Digits", "1")]), "queue").await?;
    let mut next = redirect(&xml)?;
    for _ in 0..polls {
        let xml = send(next.clone(), call(&[]), "hold poll").await?;
        next = redirect(&xml)?;
    }
    send(
        format!("{base}/voice/twilio/status"),
        call(&[("CallStatus", "completed")]),
        "hang-up",
    )
    .await?;
    Ok(made)
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    params: &[(&'static str, String)],
    kind: &'static str,
    latencies: &Mutex<Latencies>,
) -> anyhow::Result<String> {
    let url = url.replace("&amp;", "&");
    let mut sorted: Vec<&(&str, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(TOKEN.as_bytes())?;
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let start = Instant::now();
    let response = client
        .post(&url)
        .header("X-Twilio-Signature", signature)
        .form(params)
        .send()
        .await?;
    let status = response.status();
    let body = response.text().await?;
    latencies.lock().await.record(kind, start.elapsed());
    if !status.is_success() {
        bail!("{kind} {url}: HTTP {status}: {body}");
    }
    Ok(body)
}

/// The value of the first attribute starting with `prefix` (for example `action="`).
fn attr(xml: &str, prefix: &str) -> anyhow::Result<String> {
    let start = xml.find(prefix).context("no such attribute")? + prefix.len();
    let end = xml[start..].find('"').context("unterminated attribute")?;
    Ok(xml[start..start + end].to_owned())
}

/// The target of the last `<Redirect>`.
fn redirect(xml: &str) -> anyhow::Result<String> {
    let start = xml.rfind("<Redirect").context("no Redirect")?;
    let open = xml[start..].find('>').context("bad Redirect")? + start + 1;
    let close = xml[open..].find("</Redirect>").context("bad Redirect")? + open;
    Ok(xml[open..close].to_owned())
}
