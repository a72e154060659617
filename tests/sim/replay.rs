//! `guichet simulate --replay DATA_DIR --config NEW.toml`: a real journal, written through
//! `guichet::store` with the events of a real router, replayed through the library and through
//! the binary.
//!
//! The recorded day (times in seconds after T0; one voice queue `help`, SLA target 20 s, no
//! wrap-up; agents accept every offer at once):
//!
//! | # | created | handle | what happens                                                   |
//! |---|---------|--------|----------------------------------------------------------------|
//! | 1 | 0       | 100    | answered at once                                               |
//! | 2 | 10      | 100    | answered at once (the other agent)                             |
//! | 3 | 20      | 50     | both busy: waits, answered at 100 (wait 80)                    |
//! | 4 | 30      | -      | waits, abandons at 60 (patience 30)                            |
//! | 5 | 40      | 60     | waits, answered at 110 (wait 70)                               |
//! | 6 | 200     | 30     | answered at once                                               |
//!
//! Bob logs out at 180, after his work. Recorded: offered 6, answered 5, abandoned 1,
//! ASA (0 + 0 + 80 + 70 + 0) / 5 = 30 s, service level (answered within 20 s) 3/6 = 50 %,
//! abandonment 1/6.
//!
//! With carol added (not in the journal, so logged in throughout): #3 goes to carol at 20 (wait
//! 0, busy until 70); #4 still finds everyone busy and abandons at 60; #5 waits for carol, answered
//! at 70 (wait 30); #6 at once. Simulated: answered 5, abandoned 1, ASA 30 / 5 = 6 s, SL 4/6.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command as Process, Output};

use guichet::config::Config;
use guichet::core::{
    AgentConfig, Channel, Command, Event, EventKind, InteractionId, InteractionSpec, QueueConfig,
    Router, Timestamp,
};
use guichet::sim::{replay, Recording, ReplayOptions, ReplayReport};
use guichet::store::{Store, StoreConfig};

const T0: u64 = 1_700_000_000;

fn at(secs: u64) -> Timestamp {
    Timestamp::from_secs(T0 + secs)
}

fn id(n: u128) -> InteractionId {
    InteractionId::from_u128(n)
}

/// What the scripted world does at a time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Create(u128),
    Complete(u128),
    Abandon(u128),
    Logout(&'static str),
}

/// The recorded day: (created, handle, patience) per interaction.
const DAY: [(u64, u64, Option<u64>); 6] = [
    (0, 100, None),
    (10, 100, None),
    (20, 50, None),
    (30, 60, Some(30)),
    (40, 60, None),
    (200, 30, None),
];

fn queue() -> QueueConfig {
    let mut q = QueueConfig::new("help").requiring("help", 1);
    q.channels = vec![Channel::Voice];
    q.sla_target_secs.set(Channel::Voice, 20);
    q.wrap_up_secs = 0;
    q
}

/// Drives a real router through the day and returns every event it produced, in order.
fn record_day() -> Vec<Event> {
    let mut router = Router::new();
    let mut events = Vec::new();
    let run = |router: &mut Router, now: Timestamp, command: Command| -> Vec<Event> {
        let mut out = router.tick(now);
        out.extend(
            router
                .handle(now, command.clone())
                .unwrap_or_else(|e| panic!("{command:?}: {e}")),
        );
        out
    };
    events.extend(run(
        &mut router,
        at(0),
        Command::UpsertQueue { config: queue() },
    ));
    for name in ["alice", "bob"] {
        let config = AgentConfig::new(name).with_skill("help", 3);
        events.extend(run(&mut router, at(0), Command::UpsertAgent { config }));
        events.extend(run(
            &mut router,
            at(0),
            Command::Login { agent: name.into() },
        ));
    }
    let mut todo: BTreeMap<(u64, Action), ()> = BTreeMap::new();
    for (n, (created, _, patience)) in DAY.iter().enumerate() {
        let n = n as u128 + 1;
        todo.insert((*created, Action::Create(n)), ());
        if let Some(p) = patience {
            todo.insert((created + p, Action::Abandon(n)), ());
        }
    }
    todo.insert((180, Action::Logout("bob")), ());
    while let Some(((t, action), ())) = todo.pop_first() {
        let now = at(t);
        let out = match action {
            Action::Create(n) => {
                let spec = InteractionSpec::new(id(n), Channel::Voice, "help");
                run(&mut router, now, Command::CreateInteraction { spec })
            }
            Action::Complete(n) => {
                let agent = router
                    .interaction(&id(n))
                    .and_then(|v| v.phase.agent().cloned());
                run(
                    &mut router,
                    now,
                    Command::Complete {
                        interaction: id(n),
                        agent,
                        wrap_up_code: None,
                        notes: None,
                    },
                )
            }
            Action::Abandon(n) => run(&mut router, now, Command::Abandon { interaction: id(n) }),
            Action::Logout(agent) => run(
                &mut router,
                now,
                Command::Logout {
                    agent: agent.into(),
                },
            ),
        };
        // Every offer is accepted at once; the completion follows after the handle time.
        let mut pending = out;
        while !pending.is_empty() {
            let mut next = Vec::new();
            for e in &pending {
                if let EventKind::InteractionOffered {
                    interaction, agent, ..
                } = &e.kind
                {
                    let n = interaction.0 .0;
                    let handle = DAY[n as usize - 1].1;
                    todo.insert((t + handle, Action::Complete(n)), ());
                    next.extend(run(
                        &mut router,
                        now,
                        Command::Accept {
                            interaction: *interaction,
                            agent: agent.clone(),
                        },
                    ));
                }
            }
            events.append(&mut pending);
            pending = next;
        }
    }
    events
}

/// Writes the day into a journal in `dir`, as the server would.
fn write_journal(dir: &Path) -> Vec<Event> {
    let events = record_day();
    let store = Store::open(&StoreConfig::new(dir)).expect("open store");
    let journal = store.start_journal().expect("journal");
    let acks: Vec<_> = events
        .chunks(3)
        .map(|batch| journal.append(batch.to_vec()).expect("append"))
        .collect();
    for ack in acks {
        ack.blocking_recv()
            .expect("writer alive")
            .expect("committed");
    }
    journal.shutdown().expect("shutdown");
    events
}

const SAME: &str = r#"
[[queues]]
id = "help"
channels = ["voice"]
requirements = [{ skill = "help", min_level = 1 }]
sla_target_secs = { voice = 20, email = 86400, sms = 3600, chat = 60 }

[[agents]]
id = "alice"
skills = { help = 3 }

[[agents]]
id = "bob"
skills = { help = 3 }
"#;

fn with_carol() -> String {
    format!("{SAME}\n[[agents]]\nid = \"carol\"\nskills = {{ help = 3 }}\n")
}

fn config(text: &str) -> Config {
    let config = Config::from_toml(text, Path::new("new.toml")).expect("config");
    config.validate(Path::new("new.toml")).expect("valid");
    config
}

fn replayed(dir: &Path, text: &str) -> ReplayReport {
    let store = Store::open(&StoreConfig::new(dir)).expect("open store");
    let recording = Recording::read(&store).expect("read journal");
    replay(&recording, &config(text), &ReplayOptions::default()).expect("replay")
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
fn the_journal_gives_the_recorded_figures_and_replays_them_under_the_same_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = write_journal(dir.path());
    let report = replayed(dir.path(), SAME);
    assert_eq!(report.events, events.len() as u64);
    assert_eq!(report.interactions, 6);
    assert_eq!(report.rows.len(), 1);
    assert!(report.total.is_none());
    let row = report.row("help", Channel::Voice).expect("row");
    assert_eq!(row.sl_target_secs, Some(20));
    let r = &row.recorded;
    assert_eq!((r.offered, r.answered, r.abandoned), (6, 5, 1));
    assert_eq!((r.cancelled, r.unserved), (0, 0));
    assert!(close(r.asa_secs, 30.0), "{r:?}");
    assert!(close(r.service_level, 0.5), "{r:?}");
    assert!(close(r.abandonment_rate, 1.0 / 6.0), "{r:?}");
    // Abandoned at 30 s, after the 20 s target: no credit either way.
    assert!(close(r.service_level_with_abandons, 0.5), "{r:?}");

    // The same configuration, the same people at the same times: the same day.
    assert_eq!(row.simulated, row.recorded);
    assert_eq!(report.agents.as_recorded.len(), 2);
    assert!(report.agents.added.is_empty() && report.agents.left_out.is_empty());
    assert!(
        report.notes.iter().any(|n| n.contains("never answered")),
        "{:?}",
        report.notes
    );
}

#[test]
fn an_added_agent_lowers_the_simulated_wait() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_journal(dir.path());
    let report = replayed(dir.path(), &with_carol());
    assert_eq!(report.agents.added, vec!["carol".into()]);
    let row = report.row("help", Channel::Voice).expect("row");
    assert!(close(row.recorded.asa_secs, 30.0));
    let s = &row.simulated;
    assert_eq!((s.offered, s.answered, s.abandoned), (6, 5, 1), "{s:?}");
    assert!(close(s.asa_secs, 6.0), "{s:?}");
    assert!(close(s.service_level, 4.0 / 6.0), "{s:?}");
    assert!(s.asa_secs < row.recorded.asa_secs);
    let text = report.to_text();
    println!("{text}");
    assert!(
        text.contains("recorded") && text.contains("simulated"),
        "{text}"
    );
    assert!(text.contains("1 added"), "{text}");
}

#[test]
fn fewer_agents_or_a_missing_queue() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_journal(dir.path());
    // Bob is not in the new configuration: alice alone, everyone waits longer, and nobody
    // takes bob's place.
    let alone = SAME.replace("[[agents]]\nid = \"bob\"\nskills = { help = 3 }\n", "");
    let report = replayed(dir.path(), &alone);
    assert_eq!(report.agents.left_out, vec!["bob".into()]);
    let row = report.row("help", Channel::Voice).expect("row");
    assert!(row.simulated.asa_secs > row.recorded.asa_secs, "{row:?}");
    assert!(row.simulated.abandoned >= row.recorded.abandoned, "{row:?}");

    // A configuration without the recorded queue is refused, naming it.
    let store = Store::open(&StoreConfig::new(dir.path())).expect("open");
    let recording = Recording::read(&store).expect("read");
    let other = config(&SAME.replace("id = \"help\"", "id = \"other\""));
    let err = replay(&recording, &other, &ReplayOptions::default()).expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("6 in queue help") && text.contains("no queue help"),
        "{text}"
    );
}

fn guichet(args: &[&str]) -> Output {
    Process::new(env!("CARGO_BIN_EXE_guichet"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run guichet")
}

fn utf8(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn the_binary_replays_prints_both_sides_and_writes_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    write_journal(&data);
    let new = dir.path().join("new.toml");
    std::fs::write(&new, with_carol()).expect("write config");
    let json = dir.path().join("out.json");
    let out = guichet(&[
        "simulate",
        "--replay",
        utf8(&data),
        "--config",
        utf8(&new),
        "--json",
        utf8(&json),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Replay: 6 interactions recorded"), "{text}");
    assert!(text.contains("2023-11-14 22:13:20 UTC"), "{text}");
    assert!(
        text.contains("recorded") && text.contains("simulated"),
        "{text}"
    );
    let value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("valid JSON");
    let row = &value["rows"][0];
    assert_eq!(row["queue"], "help");
    assert_eq!(row["recorded"]["offered"], 6);
    assert_eq!(row["recorded"]["answered"], 5);
    assert_eq!(row["recorded"]["abandoned"], 1);
    assert_eq!(row["recorded"]["asa_secs"], 30.0);
    assert_eq!(row["recorded"]["service_level"], 0.5);
    assert_eq!(row["simulated"]["asa_secs"], 6.0);

    // Byte-identical when run again: the replay draws no random numbers.
    let again = guichet(&["simulate", "--replay", utf8(&data), "--config", utf8(&new)]);
    assert_eq!(again.stdout, out.stdout);
}

#[test]
fn the_binary_explains_what_is_wrong() {
    let dir = tempfile::tempdir().expect("tempdir");
    let new = dir.path().join("new.toml");
    std::fs::write(&new, SAME).expect("write config");
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();

    // Usage errors: exit code 2.
    let out = guichet(&["simulate", "--replay", utf8(dir.path())]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--config"), "{}", stderr(&out));
    let out = guichet(&["simulate", "--config", utf8(&new)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = guichet(&[
        "simulate",
        "--replay",
        utf8(dir.path()),
        "--config",
        utf8(&new),
        "--scenario",
        "config/scenarios/monday_morning.toml",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // A missing directory, or one without a database: exit code 1, and nothing created.
    let missing = dir.path().join("missing");
    let out = guichet(&[
        "simulate",
        "--replay",
        utf8(&missing),
        "--config",
        utf8(&new),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no such directory"),
        "{}",
        stderr(&out)
    );
    assert!(!missing.exists());
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let out = guichet(&["simulate", "--replay", utf8(&empty), "--config", utf8(&new)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no guichet.db"), "{}", stderr(&out));
    assert!(std::fs::read_dir(&empty).expect("dir").next().is_none());

    // A data directory held by a running server (here: this test holding the store open) is
    // read beside it.
    let data = dir.path().join("data");
    write_journal(&data);
    let held = Store::open(&StoreConfig::new(&data)).expect("open");
    let out = guichet(&["simulate", "--replay", utf8(&data), "--config", utf8(&new)]);
    assert!(out.status.success(), "{}", stderr(&out));
    drop(held);
    let out = guichet(&["simulate", "--replay", utf8(&data), "--config", utf8(&new)]);
    assert!(out.status.success(), "{}", stderr(&out));

    // A bad configuration: exit code 1, naming the file.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[queues]]\nid = 3\n").expect("write");
    let out = guichet(&["simulate", "--replay", utf8(&data), "--config", utf8(&bad)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bad.toml"), "{}", stderr(&out));
}

#[test]
fn recorded_breaks_and_logins_are_replayed() {
    // Alice takes a break from 5 to 50 s; an interaction arriving at 10 s waits for bob, who
    // logs in at 30 s. Replayed under the same configuration, it is answered at 30 s as recorded.
    let mut router = Router::new();
    let mut events = Vec::new();
    let mut run = |now: u64, command: Command| {
        let mut out = router.tick(at(now));
        out.extend(router.handle(at(now), command).expect("command"));
        events.extend(out.clone());
        out
    };
    run(0, Command::UpsertQueue { config: queue() });
    for name in ["alice", "bob"] {
        let config = AgentConfig::new(name).with_skill("help", 3);
        run(0, Command::UpsertAgent { config });
    }
    run(
        0,
        Command::Login {
            agent: "alice".into(),
        },
    );
    run(
        5,
        Command::SetState {
            agent: "alice".into(),
            state: guichet::core::RequestedState::Paused {
                reason: "lunch".into(),
            },
        },
    );
    let spec = InteractionSpec::new(id(1), Channel::Voice, "help");
    run(10, Command::CreateInteraction { spec });
    let out = run(
        30,
        Command::Login {
            agent: "bob".into(),
        },
    );
    assert!(out
        .iter()
        .any(|e| matches!(&e.kind, EventKind::InteractionOffered { agent, .. } if agent.as_str() == "bob")));
    run(
        31,
        Command::Accept {
            interaction: id(1),
            agent: "bob".into(),
        },
    );
    run(
        50,
        Command::SetState {
            agent: "alice".into(),
            state: guichet::core::RequestedState::Available,
        },
    );
    run(
        90,
        Command::Complete {
            interaction: id(1),
            agent: Some("bob".into()),
            wrap_up_code: None,
            notes: None,
        },
    );
    let recording = Recording::from_events(&events);
    assert_eq!(recording.interactions(), 1);
    let report = replay(&recording, &config(SAME), &ReplayOptions::default()).expect("replay");
    let row = &report.rows[0];
    assert!(close(row.recorded.asa_secs, 21.0), "{row:?}");
    assert_eq!(row.simulated, row.recorded);
    // Without the break (alice stays available), the call is answered at once.
    let no_break: Vec<Event> = events
        .iter()
        .filter(|e| {
            !matches!(&e.kind, EventKind::AgentStateChanged { agent, .. }
                if agent.as_str() == "alice" && e.at != at(0))
        })
        .cloned()
        .collect();
    let report = replay(
        &Recording::from_events(&no_break),
        &config(SAME),
        &ReplayOptions::default(),
    )
    .expect("replay");
    assert!(
        close(report.rows[0].simulated.asa_secs, 1.0),
        "{:?}",
        report.rows[0]
    );
}

#[test]
fn agents_logged_in_before_the_journal_begins_work_from_its_start() {
    // As after retention: the journal starts with the first creation; the logins are gone.
    // Offers to alice and bob show they were there; bob's logout is still recorded.
    let events = record_day();
    let first = events
        .iter()
        .position(|e| matches!(e.kind, EventKind::InteractionCreated { .. }))
        .expect("a creation");
    assert!(first > 0);
    let recording = Recording::from_events(&events[first..]);
    let report = replay(&recording, &config(SAME), &ReplayOptions::default()).expect("replay");
    assert_eq!(report.agents.as_recorded.len(), 2, "{:?}", report.agents);
    let row = &report.rows[0];
    assert!(close(row.recorded.asa_secs, 30.0), "{row:?}");
    assert_eq!(row.simulated, row.recorded);
}
