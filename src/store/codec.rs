//! How an [`Event`] becomes a journal row and back.
//!
//! A row is `(seq, at, kind, interaction, agent, contact, payload, message)`: `at` in
//! milliseconds, `kind` the event's [`EventKind::name`], `interaction`, `agent` and `contact`
//! copied out of the event for queries (the contact only on `interaction_created`), `payload` the
//! JSON of the [`EventKind`], and `message` the message id of a `message_added` event. JSON because several core enums are internally tagged and flattened, which
//! only self-describing formats support; it also keeps rows readable with the `sqlite3` shell.
//!
//! Decoding speed matters for recovery. `interaction_created`, the bulk of any journal, is first
//! read by a hand-written reader of the exact layout serde writes (`created.rs`), which falls
//! back to serde for anything else. For the other kinds: `serde` decodes an internally tagged
//! enum by first buffering the whole object into an intermediate tree, which doubles the cost.
//! Since the row's
//! `kind` column already names the variant, the hot kinds (the interaction life cycle and agent
//! states) are decoded straight into a private struct mirroring the variant's fields (the `type`
//! key is skipped as an unknown field); the rest go through `EventKind`'s own `Deserialize`. The
//! stored text is the same either way, and a unit test checks both decoders agree.

use std::sync::Arc;

use serde::Deserialize;

use crate::core::{
    AgentId, AgentState, Decision, DeclineCause, EndReason, Event, EventKind, InteractionId,
    InteractionSpec, OfferContext, Timestamp,
};

use super::created;
use super::error::StoreError;

/// A journal row ready to be inserted (everything but its `seq`).
#[derive(Debug)]
pub(crate) struct Row {
    pub at: i64,
    pub kind: &'static str,
    pub interaction: Option<String>,
    pub agent: Option<String>,
    pub contact: Option<String>,
    pub payload: String,
    /// The message id of a `message_added` event (indexed: channels look messages up by id).
    pub message: Option<String>,
}

/// Encodes one event.
pub(crate) fn encode(event: &Event) -> Result<Row, StoreError> {
    let payload = serde_json::to_string(&event.kind).map_err(|e| StoreError::Encode {
        what: "event",
        detail: e.to_string(),
    })?;
    let contact = match &event.kind {
        EventKind::InteractionCreated { spec, .. } => {
            spec.contact.as_ref().map(|c| c.as_str().to_owned())
        }
        _ => None,
    };
    let message = match &event.kind {
        EventKind::MessageAdded { message, .. } => Some(message.id.clone()),
        _ => None,
    };
    Ok(Row {
        message,
        at: millis_to_sql(event.at),
        kind: event.kind.name(),
        interaction: event.kind.interaction().map(|i| i.to_string()),
        agent: event.kind.agent().map(|a| a.as_str().to_owned()),
        contact,
        payload,
    })
}

/// Decodes one event from its `at`, `kind` and `payload` columns.
#[cfg(test)]
pub(crate) fn decode(at: i64, kind: &str, payload: &str) -> Result<Event, String> {
    Decoder::default().decode(at, kind, payload)
}

/// Decodes journal rows one after another, remembering the queue and skill names it has seen
/// so that the events it returns share them (see [`created::Names`]).
#[derive(Default)]
pub(crate) struct Decoder {
    names: created::Names,
}

impl Decoder {
    /// Decodes one event from its `at`, `kind` and `payload` columns.
    pub(crate) fn decode(&mut self, at: i64, kind: &str, payload: &str) -> Result<Event, String> {
        let fast = match kind {
            "interaction_created" => created::read(payload, &mut self.names),
            _ => None,
        };
        let kind = match fast {
            Some(kind) => kind,
            None => decode_kind(kind, payload).map_err(|e| e.to_string())?,
        };
        Ok(Event {
            at: millis_from_sql(at),
            kind,
        })
    }

    /// Decodes the journal row `seq` of the database at `path`; an error names the row.
    pub(crate) fn decode_row(
        &mut self,
        path: &std::path::Path,
        seq: i64,
        at: i64,
        kind: &str,
        payload: &str,
    ) -> Result<Event, super::StoreError> {
        self.decode(at, kind, payload)
            .map_err(|detail| super::StoreError::Decode {
                path: path.to_owned(),
                table: "journal",
                seq: seq as u64,
                detail,
            })
    }
}

/// Decodes the variant named `kind` from its payload straight into a struct of the variant's
/// fields. The construction of each `EventKind` below names every field, so a field added to
/// the core's events is a compile error here, not a silent loss.
macro_rules! direct {
    ($payload:expr, $variant:ident { $($field:ident : $ty:ty),* $(,)? }) => {{
        #[derive(Deserialize)]
        struct Body {
            $($field: $ty),*
        }
        let body: Body = serde_json::from_str($payload)?;
        EventKind::$variant { $($field: body.$field),* }
    }};
}

fn decode_kind(kind: &str, payload: &str) -> Result<EventKind, serde_json::Error> {
    Ok(match kind {
        "interaction_created" => {
            // The spec is read into place and then moved into its `Arc`: serde's own `Arc<T>`
            // reads a `Box<T>` and copies it into a second allocation.
            #[derive(Deserialize)]
            struct Body {
                spec: InteractionSpec,
                priority: u32,
                sla_deadline: Timestamp,
            }
            let body: Body = serde_json::from_str(payload)?;
            let mut spec = body.spec;
            // As the router does when it creates the interaction: it keeps the spec while it
            // waits.
            spec.shrink_to_fit();
            EventKind::InteractionCreated {
                spec: Arc::new(spec),
                priority: body.priority,
                sla_deadline: body.sla_deadline,
            }
        }
        "interaction_offered" => direct!(
            payload,
            InteractionOffered {
                interaction: InteractionId,
                agent: AgentId,
                deadline: Timestamp,
                decision: Decision,
                context: Option<Arc<OfferContext>>,
            }
        ),
        "offer_accepted" => direct!(
            payload,
            OfferAccepted {
                interaction: InteractionId,
                agent: AgentId,
            }
        ),
        "offer_declined" => direct!(
            payload,
            OfferDeclined {
                interaction: InteractionId,
                agent: AgentId,
                cause: DeclineCause,
            }
        ),
        "interaction_completed" => direct!(payload, InteractionCompleted {
            interaction: InteractionId,
            agent: AgentId,
            wrap_up_code: Option<String>,
            notes: Option<String>,
            wrap_up_until: Option<Timestamp>,
        }),
        "wrap_up_ended" => direct!(
            payload,
            WrapUpEnded {
                interaction: InteractionId,
                agent: AgentId,
                wrap_up_code: Option<String>,
                notes: Option<String>,
            }
        ),
        "interaction_ended" => direct!(
            payload,
            InteractionEnded {
                interaction: InteractionId,
                reason: EndReason,
            }
        ),
        "agent_state_changed" => direct!(
            payload,
            AgentStateChanged {
                agent: AgentId,
                state: AgentState,
            }
        ),
        "priority_changed" => direct!(
            payload,
            PriorityChanged {
                interaction: InteractionId,
                priority: u32,
            }
        ),
        "interaction_escalated" => direct!(
            payload,
            InteractionEscalated {
                interaction: InteractionId,
                step: u8,
            }
        ),
        _ => serde_json::from_str(payload)?,
    })
}

/// The generic decoder, for the unit test that checks the direct ones against it.
#[cfg(test)]
fn decode_generic(payload: &str) -> Result<EventKind, serde_json::Error> {
    serde_json::from_str(payload)
}

/// A timestamp as stored (SQL integers are signed 64-bit; times past year 292 million saturate).
pub(crate) fn millis_to_sql(at: Timestamp) -> i64 {
    i64::try_from(at.as_millis()).unwrap_or(i64::MAX)
}

/// A stored timestamp (negative values, which the store never writes, read as the epoch).
pub(crate) fn millis_from_sql(ms: i64) -> Timestamp {
    Timestamp::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A sequence number as stored.
pub(crate) fn seq_to_sql(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// A stored sequence number.
pub(crate) fn seq_from_sql(seq: i64) -> u64 {
    u64::try_from(seq).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{
        AgentConfig, Channel, Command, ContactId, InteractionSpec, QueueConfig, RequestedState,
        Router,
    };

    /// Runs a small center through every life cycle so that each event kind appears.
    fn events() -> Vec<Event> {
        let mut router = Router::new();
        let mut out = Vec::new();
        let mut t = Timestamp::from_secs(1_700_000_000);
        let run = |router: &mut Router, t: Timestamp, c: Command| {
            let mut events = router.tick(t);
            events.extend(router.handle(t, c).unwrap_or_default());
            events
        };
        let mut queue = QueueConfig::new("q").requiring("s", 1);
        queue.wrap_up_secs = 30;
        out.extend(run(&mut router, t, Command::UpsertQueue { config: queue }));
        for name in ["a", "b"] {
            let config = AgentConfig::new(name).with_skill("s", 3);
            out.extend(run(&mut router, t, Command::UpsertAgent { config }));
            out.extend(run(&mut router, t, Command::Login { agent: name.into() }));
        }
        for n in 0..6u128 {
            let mut spec =
                InteractionSpec::new(InteractionId::from_u128(n + 1), Channel::Voice, "q");
            spec.contact = Some(ContactId::new(format!("c{n}")));
            spec.attributes.insert("k", "v");
            spec.external_ref = Some(format!("ref{n}").into());
            out.extend(run(&mut router, t, Command::CreateInteraction { spec }));
        }
        let id = |n: u128| InteractionId::from_u128(n);
        out.extend(run(
            &mut router,
            t,
            Command::Decline {
                interaction: id(1),
                agent: "a".into(),
            },
        ));
        out.extend(run(
            &mut router,
            t,
            Command::ChangePriority {
                interaction: id(6),
                priority: 9,
            },
        ));
        out.extend(run(&mut router, t, Command::Abandon { interaction: id(5) }));
        for view in router.interactions() {
            if let Some(agent) = view.phase.agent().cloned() {
                out.extend(run(
                    &mut router,
                    t,
                    Command::Accept {
                        interaction: view.spec.id,
                        agent: agent.clone(),
                    },
                ));
                out.extend(run(
                    &mut router,
                    t,
                    Command::Complete {
                        interaction: view.spec.id,
                        agent: Some(agent),
                        wrap_up_code: Some("done".into()),
                        notes: None,
                    },
                ));
            }
        }
        t = t.plus_secs(60);
        out.extend(run(
            &mut router,
            t,
            Command::SetState {
                agent: "b".into(),
                state: RequestedState::Paused {
                    reason: "lunch".into(),
                },
            },
        ));
        out.extend(run(
            &mut router,
            t,
            Command::SetDevice {
                agent: "a".into(),
                device: Some("+331".into()),
            },
        ));
        out
    }

    /// The kinds without a direct decoder go through the generic one (`decline_lapsed`, added
    /// with re-offers, for one).
    #[test]
    fn a_lapsed_decline_round_trips() {
        let event = Event {
            at: Timestamp::from_secs(1_700_000_000),
            kind: EventKind::DeclineLapsed {
                interaction: InteractionId::from_u128(7),
                agent: "amelie".into(),
            },
        };
        let row = encode(&event).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(row.kind, "decline_lapsed");
        assert_eq!(row.agent.as_deref(), Some("amelie"));
        let back = decode(row.at, row.kind, &row.payload).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, event);
    }

    #[test]
    fn direct_decoders_agree_with_the_generic_one() {
        let events = events();
        let mut kinds = std::collections::BTreeSet::new();
        for event in &events {
            let row = encode(event).unwrap_or_else(|e| panic!("{e}"));
            let direct = decode(row.at, row.kind, &row.payload).unwrap_or_else(|e| panic!("{e}"));
            let generic = decode_generic(&row.payload).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(direct.kind, generic, "{}", row.payload);
            assert_eq!(&direct, event);
            kinds.insert(row.kind);
        }
        for kind in [
            "interaction_created",
            "interaction_offered",
            "offer_accepted",
            "offer_declined",
            "interaction_completed",
            "wrap_up_ended",
            "interaction_ended",
            "agent_state_changed",
            "priority_changed",
        ] {
            assert!(kinds.contains(kind), "{kind} not exercised: {kinds:?}");
        }
    }
}
