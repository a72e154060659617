//! The warm transfer (consultation) in the routing core: offers, answers, completion,
//! cancellation, and the ways a consultation ends when its agents or its contact leave.

use guichet::core::{
    AgentConfig, Capacity, Channel, Command, ConsultEndCause, Event, EventKind, InteractionPhase,
    InteractionSpec, QueueConfig, RouteError, TransferTarget,
};

use crate::core_common;

use core_common::{a, id, Center};

/// Queues `chat` (offer timeout 20 s) and `experts`; alice in `chat`, bob and carol in both,
/// one chat each; chat 1 offered to alice and accepted.
fn consulting() -> Center {
    let mut c = Center::new();
    let mut chat = QueueConfig::new("chat");
    chat.channels = vec![Channel::Chat];
    chat.offer_timeout_secs = 20;
    chat.requirements = vec![guichet::core::Requirement::new("chat", 1)];
    c.ok(Command::UpsertQueue { config: chat });
    let mut experts = QueueConfig::new("experts");
    experts.channels = vec![Channel::Chat];
    experts.requirements = vec![guichet::core::Requirement::new("tax", 3)];
    c.ok(Command::UpsertQueue { config: experts });
    for (name, tax) in [("alice", 1), ("bob", 4), ("carol", 5)] {
        let mut config = AgentConfig::new(name)
            .with_skill("chat", 3)
            .with_skill("tax", tax);
        config.capacity = Capacity {
            voice: 0,
            email: 0,
            sms: 0,
            chat: 1,
        };
        c.ok(Command::UpsertAgent { config });
        if name == "alice" {
            c.ok(Command::Login { agent: a(name) });
        }
    }
    c.ok(Command::CreateInteraction {
        spec: InteractionSpec::new(id(1), Channel::Chat, "chat"),
    });
    c.ok(Command::Accept {
        interaction: id(1),
        agent: a("alice"),
    });
    for name in ["bob", "carol"] {
        c.ok(Command::Login { agent: a(name) });
    }
    c
}

impl Center {
    fn consult(&mut self, to: TransferTarget) -> Vec<Event> {
        self.ok(Command::StartConsult {
            interaction: id(1),
            by: a("alice"),
            to,
            note: Some("asks about a tax refund".into()),
        })
    }

    fn chat_load(&self, agent: &str) -> u16 {
        self.router.agent(&a(agent)).expect("agent").load.chat
    }
}

fn ended(events: &[Event]) -> Vec<(String, ConsultEndCause)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ConsultEnded { agent, cause, .. } => Some((agent.to_string(), *cause)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_completed_consultation_hands_the_interaction_to_the_consulted_agent_without_a_new_wait() {
    let mut c = consulting();
    let events = c.consult(TransferTarget::Agent { agent: a("bob") });
    assert!(
        matches!(&events[..], [Event { kind: EventKind::ConsultOffered { agent, by, note, context, .. }, .. }]
        if agent.as_str() == "bob" && by.as_str() == "alice" && note.is_some() && context.is_some())
    );
    assert_eq!(
        c.chat_load("bob"),
        1,
        "the consultation holds bob's capacity"
    );
    let view = c.router.interaction(&id(1)).expect("open");
    assert_eq!(view.phase, InteractionPhase::Assigned { agent: a("alice") });
    assert!(c
        .router
        .explain(&id(1))
        .expect("explain")
        .summary
        .contains("in consultation with bob"));
    c.check_replay();

    c.ok(Command::Accept {
        interaction: id(1),
        agent: a("bob"),
    });
    assert_eq!(
        c.router
            .interaction(&id(1))
            .and_then(|v| v.consult)
            .and_then(|k| k.deadline),
        None
    );
    c.check_replay();

    let events = c.ok(Command::CompleteConsult {
        interaction: id(1),
        by: a("alice"),
    });
    assert!(
        matches!(&events[0].kind, EventKind::ConsultCompleted { from, to, .. }
        if from.as_str() == "alice" && to.as_str() == "bob")
    );
    let view = c.router.interaction(&id(1)).expect("open");
    assert_eq!(view.phase, InteractionPhase::Assigned { agent: a("bob") });
    assert!(view.consult.is_none());
    let note = view.transfer.expect("the transfer's note");
    assert_eq!(
        (note.by.as_str(), note.note.as_deref()),
        ("alice", Some("asks about a tax refund"))
    );
    assert_eq!((c.chat_load("alice"), c.chat_load("bob")), (0, 1));
    // Bob continues it: he completes it.
    c.ok(Command::Complete {
        interaction: id(1),
        agent: Some(a("bob")),
        wrap_up_code: None,
        notes: None,
    });
    c.check_replay();
}

#[test]
fn a_consultation_of_a_queue_goes_to_its_first_free_agent_and_is_refused_when_none_is_free() {
    let mut c = consulting();
    // Carol is the most competent of `experts`.
    let events = c.consult(TransferTarget::Queue {
        queue: "experts".into(),
    });
    assert!(
        matches!(&events[0].kind, EventKind::ConsultOffered { agent, .. } if agent.as_str() == "carol")
    );
    c.ok(Command::CancelConsult {
        interaction: id(1),
        by: a("alice"),
    });
    assert_eq!(
        c.chat_load("carol"),
        0,
        "cancelling frees the consulted agent"
    );
    for name in ["bob", "carol"] {
        c.ok(Command::Logout { agent: a(name) });
    }
    let e = c.err(Command::StartConsult {
        interaction: id(1),
        by: a("alice"),
        to: TransferTarget::Queue {
            queue: "experts".into(),
        },
        note: None,
    });
    assert!(matches!(e, RouteError::NoConsultant { .. }), "{e}");
    let e = c.err(Command::StartConsult {
        interaction: id(1),
        by: a("alice"),
        to: TransferTarget::Agent { agent: a("bob") },
        note: None,
    });
    assert!(matches!(e, RouteError::ConsultantUnavailable { .. }), "{e}");
    c.check_replay();
}

#[test]
fn consultation_commands_out_of_turn_are_refused_and_change_nothing() {
    let mut c = consulting();
    let complete = Command::CompleteConsult {
        interaction: id(1),
        by: a("alice"),
    };
    assert!(matches!(
        c.err(complete.clone()),
        RouteError::NoConsultation(_)
    ));
    assert!(matches!(
        c.err(Command::StartConsult {
            interaction: id(1),
            by: a("bob"),
            to: TransferTarget::Agent { agent: a("carol") },
            note: None,
        }),
        RouteError::NotAssignedTo { .. }
    ));
    assert!(matches!(
        c.err(Command::StartConsult {
            interaction: id(1),
            by: a("alice"),
            to: TransferTarget::Agent { agent: a("alice") },
            note: None,
        }),
        RouteError::InvalidPhase { .. }
    ));
    c.consult(TransferTarget::Agent { agent: a("bob") });
    assert!(matches!(
        c.err(complete),
        RouteError::ConsultNotAccepted { .. }
    ));
    assert!(matches!(
        c.err(Command::StartConsult {
            interaction: id(1),
            by: a("alice"),
            to: TransferTarget::Agent { agent: a("carol") },
            note: None,
        }),
        RouteError::ConsultInProgress { .. }
    ));
    assert!(matches!(
        c.err(Command::CancelConsult {
            interaction: id(1),
            by: a("bob"),
        }),
        RouteError::NotAssignedTo { .. }
    ));
}

#[test]
fn a_declined_or_missed_consultation_frees_the_consulted_agent_and_the_interaction_stays() {
    let mut c = consulting();
    c.consult(TransferTarget::Agent { agent: a("bob") });
    let events = c.ok(Command::Decline {
        interaction: id(1),
        agent: a("bob"),
    });
    assert_eq!(
        ended(&events),
        vec![("bob".to_owned(), ConsultEndCause::Declined)]
    );
    c.consult(TransferTarget::Agent { agent: a("bob") });
    let events = c.advance(20);
    assert_eq!(
        ended(&events),
        vec![("bob".to_owned(), ConsultEndCause::TimedOut)]
    );
    assert_eq!(c.chat_load("bob"), 0);
    assert_eq!(
        c.router.interaction(&id(1)).map(|v| v.phase),
        Some(InteractionPhase::Assigned { agent: a("alice") })
    );
    c.check_replay();
}

#[test]
fn the_holder_leaving_the_consulted_agent_leaving_or_the_contact_leaving_ends_the_consultation() {
    let mut c = consulting();
    c.consult(TransferTarget::Agent { agent: a("bob") });
    c.ok(Command::Accept {
        interaction: id(1),
        agent: a("bob"),
    });
    let events = c.ok(Command::Logout { agent: a("alice") });
    assert_eq!(
        ended(&events),
        vec![("bob".to_owned(), ConsultEndCause::HolderLeft)]
    );
    assert_eq!(c.chat_load("bob"), 0);
    c.ok(Command::Login { agent: a("alice") });

    c.consult(TransferTarget::Agent { agent: a("bob") });
    let events = c.ok(Command::Logout { agent: a("bob") });
    assert_eq!(
        ended(&events),
        vec![("bob".to_owned(), ConsultEndCause::ConsultedLeft)]
    );

    c.consult(TransferTarget::Agent { agent: a("carol") });
    // The contact hangs up: the channel completes the interaction.
    let events = c.ok(Command::Complete {
        interaction: id(1),
        agent: None,
        wrap_up_code: None,
        notes: None,
    });
    assert_eq!(
        ended(&events),
        vec![("carol".to_owned(), ConsultEndCause::InteractionClosed)]
    );
    assert_eq!(c.chat_load("carol"), 0);
    c.check_replay();
}
