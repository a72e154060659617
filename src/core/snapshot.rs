//! Snapshots: the router's whole logical state as plain data, and the router rebuilt from one.
//!
//! The journal stores a snapshot now and then so that recovery replays only the events after it.
//! Two routers with equal snapshots take the same decisions from then on.

use serde::{Deserialize, Serialize};

use super::index::{AgentSlot, Consult, Phase, Slot, TimerKind};
use super::model::{
    AgentConfig, AgentId, AgentState, Channel, ContactId, PerChannel, QueueConfig, Timestamp,
};
use super::router::Router;
use super::view::{per_channel, Decline, InteractionPhase, InteractionView};
use super::{DeclineCause, Event, EventKind, RouteError};

/// The declines of a snapshotted interaction. A snapshot written before re-offers existed lists
/// only the agents: their declines count from when the interaction entered its queue (the
/// earliest they can have happened), so they lapse `reoffer_after_secs` after that.
fn declines_of(view: &InteractionView) -> Vec<Decline> {
    if !view.declines.is_empty() || view.declined_by.is_empty() {
        return view.declines.clone();
    }
    view.declined_by
        .iter()
        .map(|agent| Decline {
            agent: agent.clone(),
            at: view.queue_entered_at,
            cause: DeclineCause::Declined,
        })
        .collect()
}

/// An agent's configuration and live state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSnapshot {
    /// The configuration.
    pub config: AgentConfig,
    /// The state.
    pub state: AgentState,
    /// When it last became available or finished its work, on any channel.
    pub idle_since: Timestamp,
    /// Per channel, when it last became available or finished work on that channel (absent from
    /// snapshots written before idle time was kept per channel: `idle_since` on every channel).
    #[serde(default)]
    pub idle_since_by_channel: Option<PerChannel<Timestamp>>,
    /// The router's offer sequence number at its last offer (for `round_robin`).
    pub last_offer_seq: u64,
    /// Per channel, the offer sequence number at its last offer on that channel (absent from
    /// older snapshots: none).
    #[serde(default)]
    pub last_offer_by_channel: Option<PerChannel<u64>>,
    /// Offers missed in a row.
    pub misses: u32,
    /// Offers declined in a row.
    #[serde(default)]
    pub declines: u32,
    /// When the state last changed (absent from older snapshots: unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_since: Option<Timestamp>,
}

/// The router's logical state, in a deterministic order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Offers made so far (for `round_robin`).
    pub offer_seq: u64,
    /// Live queues, in id order.
    pub queues: Vec<QueueConfig>,
    /// Agents, in id order.
    pub agents: Vec<AgentSnapshot>,
    /// Open interactions, in id order.
    pub interactions: Vec<InteractionView>,
    /// Each contact's last agent, in contact order.
    pub last_agents: Vec<(ContactId, AgentId)>,
}

impl Router {
    /// The router's whole logical state.
    pub fn snapshot(&self) -> Snapshot {
        let queues = self.queues().into_iter().map(|q| q.config).collect();
        let mut agents: Vec<AgentSnapshot> = self
            .agents
            .iter()
            .flatten()
            .map(|a| AgentSnapshot {
                config: a.config.clone(),
                state: a.state.clone(),
                idle_since: a.idle_since.iter().copied().max().unwrap_or_default(),
                idle_since_by_channel: Some(per_channel(a.idle_since)),
                last_offer_seq: a.last_offer_seq,
                last_offer_by_channel: Some(per_channel(a.last_offer_on)),
                misses: a.misses,
                declines: a.declines,
                state_since: a.state_since,
            })
            .collect();
        agents.sort_by(|a, b| a.config.id.cmp(&b.config.id));
        let mut last_agents: Vec<(ContactId, AgentId)> = self
            .last_agent
            .iter()
            .map(|(c, a)| (c.clone(), a.clone()))
            .collect();
        last_agents.sort();
        Snapshot {
            offer_seq: self.offer_seq,
            queues,
            agents,
            interactions: self.interactions(),
            last_agents,
        }
    }

    /// A router rebuilt from a snapshot, with its indexes and timers.
    ///
    /// Fails with [`RouteError::Replay`] when the snapshot is inconsistent (an interaction in an
    /// unknown queue or held by an unknown agent).
    pub fn restore(snapshot: &Snapshot) -> Result<Router, RouteError> {
        let mut router = Router::new();
        router.offer_seq = snapshot.offer_seq;
        for config in &snapshot.queues {
            router.apply(&Event {
                at: Timestamp(0),
                kind: EventKind::QueueUpserted {
                    config: Box::new(config.clone()),
                },
            })?;
        }
        for agent in &snapshot.agents {
            let levels = router.intern_levels(&agent.config.skills);
            router.restore_agent(AgentSlot {
                config: agent.config.clone(),
                order: 0,
                levels,
                state: agent.state.clone(),
                state_since: agent.state_since,
                load: [0; 4],
                idle_since: match agent.idle_since_by_channel {
                    Some(by) => Channel::ALL.map(|c| by.get(c)),
                    None => [agent.idle_since; 4],
                },
                last_offer_seq: agent.last_offer_seq,
                last_offer_on: match agent.last_offer_by_channel {
                    Some(by) => Channel::ALL.map(|c| by.get(c)),
                    None => [0; 4],
                },
                misses: agent.misses,
                declines: agent.declines,
                memberships: Vec::new(),
                work: Vec::new(),
                consults: Vec::new(),
            });
        }
        for view in &snapshot.interactions {
            router.restore_interaction(view)?;
        }
        router.last_agent = snapshot.last_agents.iter().cloned().collect();
        let live: Vec<u32> = router.agent_ix.values().copied().collect();
        for a in live {
            router.resync_agent(a);
        }
        router.flush_resyncs();
        Ok(router)
    }

    fn restore_interaction(&mut self, view: &InteractionView) -> Result<(), RouteError> {
        let bad = |what: String| RouteError::Replay(format!("snapshot: {what}"));
        let id = view.spec.id;
        let q = *self
            .queue_ix
            .get(&view.queue)
            .ok_or_else(|| bad(format!("interaction {id} in unknown queue {}", view.queue)))?;
        let agent_of = |r: &Router, agent: &AgentId| {
            r.agent_ix
                .get(agent)
                .copied()
                .ok_or_else(|| bad(format!("interaction {id} held by unknown agent {agent}")))
        };
        let phase = match &view.phase {
            InteractionPhase::Waiting => Phase::Waiting,
            InteractionPhase::Offered { agent, deadline } => Phase::Offered {
                agent: agent_of(self, agent)?,
                deadline: *deadline,
            },
            InteractionPhase::Assigned { agent } => Phase::Assigned {
                agent: agent_of(self, agent)?,
            },
            InteractionPhase::WrapUp { agent, until } => Phase::WrapUp {
                agent: agent_of(self, agent)?,
                until: *until,
            },
        };
        if let Some(t) = &view.target {
            agent_of(self, t)?;
        }
        let profile = self.intern_profile(&view.spec);
        let mut slot = Slot {
            spec: view.spec.clone(),
            queue: q,
            priority: view.priority,
            sla_deadline: view.sla_deadline,
            created_at: view.created_at,
            enqueued_at: view.enqueued_at,
            queue_entered_at: view.queue_entered_at,
            step: view.step,
            profile,
            class: 0,
            phase,
            declined_by: declines_of(view).into(),
            overflowed: view.overflowed,
            decision: view.decision.clone().map(Box::new),
            timer: None,
            extra: None,
        };
        slot.set_target(view.target.clone());
        slot.set_wrap_up_code(view.wrap_up_code.as_deref());
        if let Some(transfer) = &view.transfer {
            slot.extra_mut().transfer = Some(transfer.clone());
        }
        if let Some(r) = &view.spec.external_ref {
            self.external.insert(r.clone(), id);
        }
        self.queues[q as usize].open += 1;
        self.interactions.insert(id, slot);
        match phase {
            Phase::Waiting => self.enter_waiting(id),
            Phase::Offered { agent, .. }
            | Phase::Assigned { agent }
            | Phase::WrapUp { agent, .. } => {
                let key = match self.interactions.get(&id) {
                    Some(slot) => self.class_key_of(slot),
                    None => return Ok(()),
                };
                let c = self.class_for(key);
                self.slot_mut(id).class = c;
                let channel = view.spec.channel;
                let a = self.agent_mut(agent);
                a.load[channel.index()] += 1;
                a.work.push(id);
                let timer = match phase {
                    Phase::Offered { deadline, .. } => Some((deadline, TimerKind::OfferTimeout)),
                    Phase::WrapUp { until, .. } => Some((until, TimerKind::WrapUpEnd)),
                    _ => None,
                };
                self.set_timer(id, timer);
            }
        }
        if let Some(c) = &view.consult {
            let Phase::Assigned { agent: holder } = phase else {
                return Err(bad(format!(
                    "interaction {id} in consultation but not assigned"
                )));
            };
            let consulted = agent_of(self, &c.agent)?;
            if consulted == holder {
                return Err(bad(format!("interaction {id} consults its own agent")));
            }
            let channel = view.spec.channel;
            let a = self.agent_mut(consulted);
            a.load[channel.index()] += 1;
            a.consults.push(id);
            self.slot_mut(id).extra_mut().consult = Some(Consult {
                agent: consulted,
                note: c.note.clone(),
                started_at: c.started_at,
                deadline: c.deadline,
            });
            if let Some(deadline) = c.deadline {
                self.set_timer(id, Some((deadline, TimerKind::ConsultTimeout)));
            }
        }
        Ok(())
    }
}
