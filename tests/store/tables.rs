//! Every table method of the store interface ([`Store`]) on both backends: SQLite always, and
//! PostgreSQL when `GUICHET_TEST_POSTGRES_URL` names a server (see `pg_common`; without it the
//! PostgreSQL run is skipped with one line saying why). One scenario, run on each: a journal
//! with an email interaction created, answered, written to and completed, then tokens, users and
//! sessions, IVR versions, the link secret, checkpoints, opt-outs, indicators folded from the
//! journal, the outbox, surveys, and the conversation and history reads.

use crate::pg_common;

use guichet::core::{
    AgentConfig, AgentId, Channel, Command, ContactId, Event, InteractionId, InteractionSpec,
    Message, MessageDirection, QueueConfig, Router, Timestamp,
};
use guichet::store::{
    Ack, DeliveryChannel, DeliveryState, IvrAuthor, Journal, Role, Store, StoreConfig, StoreError,
    SurveyQuestion, SurveyVia, ATTACHMENT_LINKS,
};

const T0: Timestamp = Timestamp::from_secs(1_700_000_000);
const DAY: &str = "2023-11-14";

fn id() -> InteractionId {
    InteractionId::from_u128(42)
}

/// Queue, agent, an email interaction answered, a message each way, completed.
/// A router whose events go to a journal (queue `benefits`, agent alice logged in), and the
/// acknowledgements to wait for.
struct Day<'a> {
    router: Router,
    acks: Vec<Ack<u64>>,
    journal: &'a Journal,
}

impl<'a> Day<'a> {
    fn open(journal: &'a Journal) -> Day<'a> {
        let mut day = Day {
            router: Router::new(),
            acks: Vec::new(),
            journal,
        };
        day.run(
            T0,
            Command::UpsertQueue {
                config: QueueConfig::new("benefits"),
            },
        );
        day.run(
            T0,
            Command::UpsertAgent {
                config: AgentConfig::new("alice").with_skill("benefits", 3),
            },
        );
        day.run(
            T0,
            Command::Login {
                agent: AgentId::from("alice"),
            },
        );
        day
    }

    fn run(&mut self, now: Timestamp, command: Command) {
        let mut events = self.router.tick(now);
        events.extend(
            self.router
                .handle(now, command.clone())
                .unwrap_or_else(|e| panic!("{command:?}: {e}")),
        );
        self.acks.push(self.journal.append(events).expect("append"));
    }

    /// Waits for every commit; returns the router.
    fn wait(self) -> Router {
        for ack in self.acks {
            ack.blocking_recv()
                .expect("writer alive")
                .expect("committed");
        }
        self.router
    }
}

fn journal_day(journal: &Journal) {
    let mut day = Day::open(journal);
    let mut now = T0;
    let agent = AgentId::from("alice");
    let mut spec = InteractionSpec::new(id(), Channel::Email, "benefits");
    spec.contact = Some(ContactId::new("camille@example.org"));
    day.run(now, Command::CreateInteraction { spec });
    now = now.plus_secs(5);
    day.run(
        now,
        Command::Accept {
            interaction: id(),
            agent: agent.clone(),
        },
    );
    day.run(
        now,
        Command::AddMessage {
            interaction: id(),
            message: Message::new("m-in", MessageDirection::Inbound, "Bonjour"),
        },
    );
    let mut reply = Message::new("m-out", MessageDirection::Outbound, "Voici la réponse");
    reply.agent = Some(agent.clone());
    day.run(
        now,
        Command::AddMessage {
            interaction: id(),
            message: reply,
        },
    );
    now = now.plus_secs(60);
    day.run(
        now,
        Command::Complete {
            interaction: id(),
            agent: Some(agent),
            wrap_up_code: Some("resolved".into()),
            notes: None,
        },
    );
    day.wait();
}

fn tables(store: &Store) {
    let name = format!("{:?}", store.backend());
    let journal = store.start_journal().expect("journal");
    journal_day(&journal);
    let last = store.last_committed_seq().expect("last seq");
    assert!(last >= 8, "{name}: {last}");
    // Where a day's view starts: nothing before the first event, everything before the end of
    // time.
    assert_eq!(store.last_seq_before(Timestamp(0)).expect("before"), 0);
    assert_eq!(
        store
            .last_seq_before(Timestamp(u64::MAX / 2))
            .expect("before the end"),
        last,
        "{name}"
    );

    // Conversation and history reads.
    let conversation = store.conversation(id()).expect("conversation");
    let ids: Vec<&str> = conversation.iter().map(|e| e.message.id.as_str()).collect();
    assert_eq!(ids, ["m-in", "m-out"], "{name}");
    assert_eq!(
        store.message_interaction("m-out").expect("m-out"),
        Some(id())
    );
    assert_eq!(store.message_interaction("nope").expect("nope"), None);
    let prefix = &id().to_string()[..12];
    assert_eq!(
        store.interactions_with_id_prefix(prefix).expect("prefix"),
        vec![id()],
        "{name}"
    );
    let camille = ContactId::new("camille@example.org");
    assert_eq!(
        store
            .interactions_of_contact(&camille, 5)
            .expect("of contact"),
        vec![id()]
    );
    let (_, spec) = store.interaction_spec(id()).expect("spec").expect("known");
    assert_eq!(spec.channel, Channel::Email);
    assert_eq!(store.last_transfer(id()).expect("transfer"), None);
    let history = store.contact_history(&camille, 5).expect("history");
    assert_eq!(history.len(), 1, "{name}");
    assert_eq!(history[0].outcome, "completed", "{name}");
    assert_eq!(history[0].wrap_up_code.as_deref(), Some("resolved"));
    assert!(store
        .journal_contacts(10)
        .expect("contacts")
        .expect("few")
        .contains(&camille));

    // Indicators folded from the journal, once however often they are handed over.
    let mut events: Vec<(u64, Event)> = Vec::new();
    store
        .replay(0, |seq, e| {
            events.push((seq, e));
            Ok(())
        })
        .expect("replay");
    let day_of = |_: Timestamp| DAY.to_owned();
    assert_eq!(store.indicators_cursor().expect("cursor"), 0);
    for _ in 0..2 {
        let cursor = store.fold_indicator_events(&events, &day_of).expect("fold");
        assert_eq!(cursor, events.last().expect("events").0, "{name}");
    }
    let days = store.indicator_days(DAY, DAY).expect("days");
    assert_eq!(days.len(), 1, "{name}: {days:?}");
    assert_eq!((days[0].requests, days[0].answered), (1, 1), "{name}");
    let state = store.indicator_state(DAY).expect("state");
    assert_eq!(state.cursor, events.last().expect("events").0);
    assert!(state.pending.is_empty(), "{name}");

    // The outbox: the agent's email reply is to deliver, held 3 s for what may go with it.
    assert_eq!(
        store.outbox_ingest(100, 3000).expect("ingest"),
        (1, false),
        "{name}"
    );
    assert_eq!(store.outbox_ingest(100, 3000).expect("again"), (0, false));
    let pending = store
        .outbox_pending_of(id(), DeliveryChannel::Email, 8)
        .expect("pending of");
    assert_eq!(pending.len(), 1, "{name}");
    let due = store.outbox_due(T0.plus_secs(3600), 10).expect("due");
    assert_eq!(due.len(), 1, "{name}");
    assert_eq!(due[0].channel, DeliveryChannel::Email);
    assert_eq!(due[0].interaction, id());
    assert!(store.outbox_next_due().expect("next").is_some());
    // Its journal row must outlive retention until it is delivered.
    assert_eq!(
        store.outbox_oldest_pending().expect("oldest"),
        Some(due[0].seq),
        "{name}"
    );
    let message = store
        .outbox_message(due[0].seq)
        .expect("message")
        .expect("kept");
    assert_eq!(message.id, "m-out");
    store
        .outbox_record(
            "m-out",
            DeliveryState::Delivered,
            1,
            T0,
            None,
            Some((T0.plus_secs(70), Some("provider-1"))),
        )
        .expect("record");
    let delivered = store
        .outbox_delivery("m-out")
        .expect("delivery")
        .expect("row");
    assert_eq!(delivered.state, DeliveryState::Delivered, "{name}");
    assert_eq!(delivered.provider_ref.as_deref(), Some("provider-1"));
    assert_eq!(store.outbox_next_due().expect("next"), None);
    assert_eq!(store.outbox_oldest_pending().expect("oldest"), None);

    // Surveys: the completion found once, a question claimed once, answered once.
    let (found, next) = store.survey_completions(100).expect("completions");
    assert_eq!(found.len(), 1, "{name}");
    assert_eq!(found[0].interaction, id());
    store.set_survey_checkpoint(next).expect("checkpoint");
    store.set_survey_checkpoint(1).expect("never back");
    assert!(
        store.survey_completions(100).expect("after").0.is_empty(),
        "{name}"
    );
    assert!(store.may_survey(&camille, T0, 86_400_000).expect("may"));
    let question = SurveyQuestion {
        token: "tok-1".into(),
        interaction: id(),
        contact: Some(camille.clone()),
        agent: Some(AgentId::from("alice")),
        queue: "benefits".into(),
        channel: Channel::Email,
        via: SurveyVia::Email,
        address: Some("camille@example.org".into()),
        message: "q-1".into(),
        language: "fr".into(),
        asked_at: T0.plus_secs(100),
        answered_at: None,
    };
    assert!(store.claim_survey_question(&question).expect("claim"));
    assert!(
        !store.claim_survey_question(&question).expect("twice"),
        "{name}"
    );
    assert!(!store
        .may_survey(&camille, T0.plus_secs(200), 86_400_000)
        .expect("recent"));
    assert_eq!(
        store
            .pending_survey_to(SurveyVia::Email, "camille@example.org", T0)
            .expect("pending")
            .map(|q| q.token),
        Some("tok-1".into())
    );
    assert!(store
        .survey_question_by_message("q-1")
        .expect("by message")
        .is_some());
    let answered = store
        .answer_survey(
            "tok-1",
            4,
            Some("  merci  "),
            Some("a-1"),
            T0.plus_secs(300),
            T0,
            DAY,
        )
        .expect("answer")
        .expect("accepted");
    assert_eq!(answered.answered_at, Some(T0.plus_secs(300)));
    assert!(store
        .answer_survey("tok-1", 5, None, None, T0.plus_secs(301), T0, DAY)
        .expect("again")
        .is_err());
    assert!(store.survey_answered_by("a-1").expect("answered by"));
    assert_eq!(
        store.survey_question_of(id()).expect("of").map(|q| q.token),
        Some("tok-1".into())
    );
    let answer = store.survey_answer(&id()).expect("answer").expect("row");
    assert_eq!(
        (answer.score, answer.comment.as_deref()),
        (4, Some("merci")),
        "{name}"
    );
    let summary = store
        .survey_summary_by_agent(T0, T0.plus_secs(3600))
        .expect("summary");
    assert_eq!(summary.len(), 1);
    assert_eq!(
        (summary[0].1.answers, summary[0].1.score_total),
        (1, 4),
        "{name}"
    );
    let alice = AgentId::from("alice");
    assert_eq!(
        store
            .survey_comments(T0, T0.plus_secs(3600), Some(&alice), 10)
            .expect("comments")
            .len(),
        1
    );
    assert_eq!(
        store
            .survey_comments(T0, T0.plus_secs(3600), None, 10)
            .expect("all comments")
            .len(),
        1
    );
    let days = store.indicator_days(DAY, DAY).expect("days");
    assert_eq!(
        (days[0].survey_answers, days[0].survey_score_total),
        (1, 4),
        "{name}"
    );
    store.opt_out(&camille, T0).expect("opt out");
    assert!(store.has_opted_out(&camille).expect("opted out"));
    assert!(!store
        .may_survey(&camille, T0.plus_secs(10_000_000), 1)
        .expect("may"));
    assert!(store.opt_in(&camille).expect("opt in"));
    assert!(!store.has_opted_out(&camille).expect("back in"));

    // Tokens.
    let (token, info) = store
        .create_token(Role::Supervisor, None, "sup", T0)
        .expect("token");
    assert_eq!(
        store.verify_token(&token).expect("verify").map(|t| t.id),
        Some(info.id.clone())
    );
    assert!(matches!(
        store.create_token(Role::Agent, None, "x", T0),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.list_tokens().expect("list").len(), 1);
    assert!(store.revoke_token(&info.id).expect("revoke"));
    assert_eq!(store.verify_token(&token).expect("verify"), None, "{name}");

    // Users and sessions.
    let user = store
        .add_user("marie", "Marie", Role::Supervisor, None, "$argon2id$x", T0)
        .expect("user");
    assert!(matches!(
        store.add_user("marie", "Marie", Role::Supervisor, None, "h", T0),
        Err(StoreError::Invalid(_))
    ));
    let (session, _) = store
        .create_session(&user, T0, T0.plus_secs(3600))
        .expect("session");
    let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(session.as_bytes()).into();
    assert!(store
        .verify_session_digest(&digest, T0)
        .expect("verify")
        .is_some());
    assert_eq!(
        store.open_sessions(T0).expect("open"),
        vec![("marie".into(), 1)]
    );
    assert!(store.set_user_disabled("marie", true, T0).expect("disable"));
    assert!(
        store
            .verify_session_digest(&digest, T0)
            .expect("verify")
            .is_none(),
        "{name}"
    );
    assert!(store.set_user_disabled("marie", false, T0).expect("enable"));
    assert!(store
        .set_user_password("marie", "$argon2id$y", T0)
        .expect("password"));
    let creds = store
        .user_credentials("marie")
        .expect("creds")
        .expect("user");
    assert_eq!(creds.password_hash.as_deref(), Some("$argon2id$y"));
    assert_eq!(store.list_users().expect("users").len(), 1);
    let (other, _) = store
        .create_session(&user, T0, T0.plus_secs(10))
        .expect("s2");
    let other: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(other.as_bytes()).into();
    assert!(store.end_session_digest(&other).expect("end"));

    // IVR versions and numbers.
    let by = IvrAuthor {
        author: "ops".into(),
        comment: "first".into(),
    };
    store
        .put_ivr_version("accueil", 1, "{\"v\":1}", T0, &by)
        .expect("v1");
    store
        .put_ivr_version("accueil", 2, "{\"v\":2}", T0, &by)
        .expect("v2");
    assert!(matches!(
        store.put_ivr_version("accueil", 1, "{}", T0, &by),
        Err(StoreError::IvrVersionExists { .. })
    ));
    store.set_active_ivr("accueil", 2, &[1]).expect("activate");
    assert!(matches!(
        store.set_active_ivr("accueil", 9, &[]),
        Err(StoreError::UnknownIvrVersion { .. })
    ));
    assert_eq!(
        store.active_ivr("accueil").expect("active"),
        Some((2, "{\"v\":2}".into()))
    );
    assert_eq!(
        store
            .ivr_active("accueil")
            .expect("active")
            .map(|a| a.previous),
        Some(vec![1])
    );
    let versions = store.ivr_versions("accueil").expect("versions");
    assert_eq!(versions.iter().filter(|v| v.active).count(), 1, "{name}");
    assert_eq!(
        store.ivr_names().expect("names"),
        vec!["accueil".to_owned()]
    );
    assert_eq!(
        store.ivr_version("accueil", 1).expect("v1"),
        Some("{\"v\":1}".into())
    );
    store.bind_number("+33100000000", "accueil").expect("bind");
    store
        .bind_number("+33100000000", "accueil")
        .expect("bind again");
    assert_eq!(store.number_bindings().expect("bindings").len(), 1);
    assert!(store.unbind_number("+33100000000").expect("unbind"));

    // The link secret, view checkpoints, SMS opt-outs.
    assert_eq!(
        store
            .signing_secret(ATTACHMENT_LINKS)
            .expect("secret")
            .len(),
        32
    );
    assert_eq!(store.view_checkpoint("v").expect("none"), None);
    store.set_view_checkpoint("v", 7).expect("set");
    store.set_view_checkpoint("v", 3).expect("never back");
    assert_eq!(
        store.view_checkpoint("v").expect("seven"),
        Some(7),
        "{name}"
    );
    store
        .set_sms_opt_out("+336", true, T0, "SM1")
        .expect("stop");
    assert!(store.is_opted_out("+336").expect("stopped"));
    store
        .set_sms_opt_out("+336", false, T0, "SM2")
        .expect("start");
    assert_eq!(
        store.sms_opt_out("+336").expect("row"),
        Some((false, "SM2".into()))
    );

    // Calls inside a phone menu: a batch replaces and deletes, a sweep forgets the old ones.
    store
        .put_voice_sessions(
            &[
                ("twilio:CA1".into(), Some("{\"turn\":1}".into())),
                ("twilio:CA2".into(), Some("{\"turn\":1}".into())),
            ],
            T0,
        )
        .expect("put");
    store
        .put_voice_sessions(
            &[
                ("twilio:CA1".into(), Some("{\"turn\":2}".into())),
                ("twilio:CA2".into(), None),
            ],
            T0.plus_secs(10),
        )
        .expect("put again");
    assert_eq!(
        store.voice_session("twilio:CA1").expect("CA1"),
        Some("{\"turn\":2}".into()),
        "{name}"
    );
    assert_eq!(store.voice_session("twilio:CA2").expect("CA2"), None);
    assert_eq!(
        store.sweep_voice_sessions(T0.plus_secs(5)).expect("sweep"),
        0
    );
    assert_eq!(
        store.sweep_voice_sessions(T0.plus_secs(11)).expect("sweep"),
        1,
        "{name}"
    );

    journal.shutdown().expect("shutdown");
}

#[test]
fn every_table_on_sqlite() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open(&StoreConfig::new(dir.path())).expect("open SQLite");
    tables(&store);
}

#[test]
fn every_table_on_postgres() {
    let Some(db) = pg_common::PgDb::create() else {
        return;
    };
    let store = Store::open(&db.store_config()).expect("open PostgreSQL");
    tables(&store);
}

/// A contact's erasure (GDPR) on `store`: refused while the contact has an open interaction,
/// then its ended interaction scrubbed from the journal, the snapshot and the survey history,
/// in one transaction; another contact untouched.
fn erasure(store: &Store) {
    let name = format!("{:?}", store.backend());
    let journal = store.start_journal().expect("journal");
    let mut day = Day::open(&journal);
    let mut now = T0;
    let agent = AgentId::from("alice");
    let ended = InteractionId::from_u128(1);
    let waiting = InteractionId::from_u128(2);
    for (interaction, contact) in [(ended, "camille"), (waiting, "dora")] {
        let mut spec = InteractionSpec::new(interaction, Channel::Email, "benefits");
        spec.contact = Some(ContactId::new(contact));
        spec.attributes
            .insert("secret", format!("case-of-{contact}"));
        spec.external_ref = Some(format!("REF-{contact}").into());
        day.run(now, Command::CreateInteraction { spec });
    }
    now = now.plus_secs(5);
    day.run(
        now,
        Command::Accept {
            interaction: ended,
            agent: agent.clone(),
        },
    );
    day.run(
        now,
        Command::AddMessage {
            interaction: ended,
            message: Message::new(
                "m-camille",
                MessageDirection::Inbound,
                "camille's own words",
            ),
        },
    );
    now = now.plus_secs(60);
    day.run(
        now,
        Command::Complete {
            interaction: ended,
            agent: Some(agent),
            wrap_up_code: Some("resolved".into()),
            notes: Some("notes about camille".into()),
        },
    );
    let router = day.wait();
    journal
        .snapshot(router.snapshot())
        .expect("snapshot")
        .blocking_recv()
        .expect("writer alive")
        .expect("snapshot written");
    let camille = ContactId::new("camille");
    store
        .record_survey_sent(&camille, &ended, now)
        .expect("survey sent");
    assert!(!store.may_survey(&camille, now, 86_400_000).expect("asked"));
    // camille also calls and is in a phone menu; so is someone else.
    store
        .put_voice_sessions(
            &[
                (
                    "twilio:CAc".into(),
                    Some(r#"{"from":"camille","turn":1}"#.into()),
                ),
                (
                    "twilio:CAx".into(),
                    Some(r#"{"from":"+33699999999","turn":1}"#.into()),
                ),
            ],
            now,
        )
        .expect("calls in a menu");

    // dora waits: refused, nothing changed.
    let dora = ContactId::new("dora");
    match journal
        .erase_contact(dora.clone())
        .expect("queued")
        .blocking_recv()
        .expect("writer alive")
    {
        Err(StoreError::ContactHasOpenInteractions { open, .. }) => {
            assert_eq!(open, vec![waiting], "{name}")
        }
        other => panic!("{name}: {other:?}"),
    }
    assert_eq!(
        store.interactions_of_contact(&dora, 10).expect("dora"),
        vec![waiting]
    );

    // camille's interaction ended: erased.
    let erasure = journal
        .erase_contact(camille.clone())
        .expect("queued")
        .blocking_recv()
        .expect("writer alive")
        .expect("erased");
    assert_eq!(erasure.interactions, vec![ended], "{name}");
    // The creation, the message, the completion's notes, and the offer (the attributes for
    // the desktop).
    assert!(erasure.journal_rows >= 3, "{name}: {erasure:?}");
    assert_eq!(erasure.snapshots, 1, "{name}");
    assert!(store
        .interactions_of_contact(&camille, 10)
        .expect("camille")
        .is_empty());
    assert!(store
        .contact_history(&camille, 10)
        .expect("history")
        .is_empty());
    let conversation = store.conversation(ended).expect("conversation");
    assert_eq!(conversation.len(), 1, "{name}");
    assert!(conversation[0].message.text.is_empty(), "{name}");
    assert_eq!(store.message_interaction("m-camille").expect("m"), None);
    assert!(store
        .may_survey(&camille, now, 86_400_000)
        .expect("forgotten"));
    let mut replayed = String::new();
    store
        .replay(0, |_, event| {
            replayed.push_str(&format!("{event:?}"));
            Ok(())
        })
        .expect("replay");
    for gone in ["camille", "case-of-camille", "REF-camille", "notes about"] {
        assert!(!replayed.contains(gone), "{name}: {gone} left");
    }
    assert!(replayed.contains("resolved"), "{name}: the outcome stays");
    assert!(replayed.contains("case-of-dora"), "{name}: dora untouched");
    journal.shutdown().expect("shutdown");
    // The snapshot too: recovery finds dora's interaction and nothing of camille.
    let recovered = store.recover_router().expect("recover");
    let snapshot = format!("{:?}", recovered.router.snapshot());
    assert!(!snapshot.contains("camille"), "{name}");
    assert_eq!(recovered.router.open_count(), 1, "{name}");
}

#[test]
fn erasure_on_sqlite() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open(&StoreConfig::new(dir.path())).expect("open SQLite");
    erasure(&store);
}

#[test]
fn erasure_on_postgres() {
    let Some(db) = pg_common::PgDb::create() else {
        return;
    };
    let store = Store::open(&db.store_config()).expect("open PostgreSQL");
    erasure(&store);
}
