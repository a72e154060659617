//! Contracts as code: the invariants the router keeps after every command and tick.
//!
//! Debug builds check them after each `handle` and `tick` (for routers of moderate size); the
//! property tests check them after every step of random command sequences.

use super::index::{agent_rank, AgentKey, Phase, WaitKey};
use super::model::Channel;
use super::router::Router;

impl Router {
    /// Checks every invariant of the router's state and indexes; returns the first broken one.
    ///
    /// - No agent is above capacity on any channel, and voice is exclusive where configured.
    /// - A consultation holds one unit of the consulted agent's capacity, on an interaction
    ///   assigned to another agent, with its offer's timer while not accepted.
    /// - Each open interaction is in exactly one phase; a waiting one sits in exactly its class's
    ///   waiting set; an offered, assigned or wrapping-up one is in exactly its agent's work.
    /// - An agent sits in a class's free-agent set exactly when it is eligible and can take the
    ///   class's channel, under the key its strategy gives.
    /// - No free eligible agent is left idle while an interaction it has not declined waits in one
    ///   of its classes (work conservation).
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut waiting_total = 0usize;
        for (c, class) in self.classes.iter().enumerate() {
            waiting_total += class.waiting.len();
            for key in &class.waiting {
                let slot = self
                    .interactions
                    .get(&key.id())
                    .ok_or_else(|| format!("class {c} holds ended interaction {}", key.id()))?;
                if slot.phase != Phase::Waiting || slot.class as usize != c {
                    return Err(format!(
                        "interaction {} in class {c} but not waiting there",
                        key.id()
                    ));
                }
                if WaitKey::of(slot) != *key {
                    return Err(format!("interaction {} sits under a stale key", key.id()));
                }
            }
            let mut eligible = 0;
            for (a, agent) in self.agents.iter().enumerate() {
                let Some(agent) = agent else { continue };
                let competence = Self::competence(class, agent);
                let m = agent.membership(c as u32);
                match (competence, m) {
                    (Some(comp), Some(m)) if m.competence == comp => eligible += 1,
                    (None, None) => {}
                    _ => {
                        return Err(format!(
                            "agent {} has a wrong membership for class {c}",
                            agent.config.id
                        ))
                    }
                }
                if let Some(m) = m {
                    let want = agent.can_take(class.key.channel).then(|| {
                        agent_rank(class.strategy, agent, m.competence, class.key.channel)
                    });
                    if m.key != want {
                        return Err(format!(
                            "agent {} has a stale key in class {c}",
                            agent.config.id
                        ));
                    }
                    let present = want
                        .is_some_and(|k| class.agents.contains(&AgentKey::of(a as u32, agent, k)));
                    if want.is_some() != present {
                        return Err(format!(
                            "agent {} missing from class {c}'s free set",
                            agent.config.id
                        ));
                    }
                    if want.is_some() {
                        let idle_work = class.waiting.iter().find(|k| {
                            self.interactions
                                .get(&k.id())
                                .is_some_and(|s| !s.declined(&agent.config.id))
                        });
                        if let Some(k) = idle_work {
                            return Err(format!(
                                "agent {} is free and eligible while {} waits in its class {c}",
                                agent.config.id,
                                k.id()
                            ));
                        }
                    }
                }
            }
            if eligible != class.eligible || class.agents.len() > eligible as usize {
                return Err(format!(
                    "class {c} counts {} eligible, found {eligible}",
                    class.eligible
                ));
            }
        }
        // Agents' orders follow their ids' order (the last tie-break of every free set).
        if self.agent_order.len() != self.agent_ix.len() {
            return Err("the agents' id order does not list every agent".into());
        }
        let mut previous: Option<u64> = None;
        for (id, &a) in &self.agent_order {
            let agent = self.agents.get(a as usize).and_then(|s| s.as_ref());
            let Some(agent) = agent.filter(|s| s.config.id == *id) else {
                return Err(format!("agent {id} is out of the agents' id order"));
            };
            if previous.is_some_and(|p| p >= agent.order) {
                return Err(format!("agent {id}'s order does not follow its id's"));
            }
            previous = Some(agent.order);
        }
        let mut held = 0usize;
        for (a, agent) in self.agents.iter().enumerate() {
            let Some(agent) = agent else { continue };
            let mut load = [0u16; 4];
            for id in &agent.work {
                let slot = self
                    .interactions
                    .get(id)
                    .ok_or_else(|| format!("agent {} holds ended {id}", agent.config.id))?;
                if slot.phase.agent() != Some(a as u32) {
                    return Err(format!(
                        "agent {} holds {id}, which is elsewhere",
                        agent.config.id
                    ));
                }
                load[slot.spec.channel.index()] += 1;
            }
            held += agent.work.len();
            for id in &agent.consults {
                let slot = self
                    .interactions
                    .get(id)
                    .ok_or_else(|| format!("agent {} consulted on ended {id}", agent.config.id))?;
                let ok = matches!(slot.phase, Phase::Assigned { agent: h } if h != a as u32)
                    && slot.consult().is_some_and(|c| c.agent == a as u32);
                if !ok {
                    return Err(format!(
                        "agent {} consulted on {id}, which is not in consultation with it",
                        agent.config.id
                    ));
                }
                load[slot.spec.channel.index()] += 1;
            }
            if load != agent.load {
                return Err(format!(
                    "agent {} load {:?} != work {load:?}",
                    agent.config.id, agent.load
                ));
            }
            for ch in Channel::ALL {
                if agent.load[ch.index()] > agent.capacity(ch) {
                    return Err(format!("agent {} over capacity on {ch}", agent.config.id));
                }
            }
            let voice = agent.load[Channel::Voice.index()];
            let total: u16 = agent.load.iter().sum();
            if agent.config.voice_exclusive && voice > 0 && total > voice {
                return Err(format!(
                    "agent {} mixes voice and other work",
                    agent.config.id
                ));
            }
        }
        for slot in self.interactions.values() {
            if let Some(c) = slot.consult() {
                let listed = self.agents[c.agent as usize]
                    .as_ref()
                    .is_some_and(|a| a.consults.contains(&slot.spec.id));
                if !listed || !matches!(slot.phase, Phase::Assigned { .. }) {
                    return Err(format!(
                        "interaction {} has a consultation its agents do not know",
                        slot.spec.id
                    ));
                }
                let timer = c
                    .deadline
                    .map(|d| (d, super::index::TimerKind::ConsultTimeout));
                if slot.timer != timer {
                    return Err(format!(
                        "interaction {} consultation timer {:?} != {timer:?}",
                        slot.spec.id, slot.timer
                    ));
                }
            }
        }
        if waiting_total + held != self.interactions.len() {
            return Err(format!(
                "{} open interactions but {waiting_total} waiting + {held} held",
                self.interactions.len()
            ));
        }
        let declined = self
            .interactions
            .values()
            .filter(|s| s.phase == Phase::Waiting && !s.declined_by.is_empty())
            .count();
        if declined != self.declined_waiting {
            return Err(format!(
                "declined-waiting count {} != {declined}",
                self.declined_waiting
            ));
        }
        for q in &self.queues {
            let open = self
                .interactions
                .values()
                .filter(|s| self.queues[s.queue as usize].config.id == q.config.id)
                .count();
            if open != q.open {
                return Err(format!(
                    "queue {} counts {} open, found {open}",
                    q.config.id, q.open
                ));
            }
        }
        Ok(())
    }
}

impl Router {
    /// Checks, before an `InteractionOffered` event is applied, that the offer respects the line:
    /// no interaction of the same queue that is ahead of it (priority, deadline, enqueue time, id)
    /// waits in a routing class where the same agent is free and eligible and has not declined it.
    ///
    /// Used by property tests that replay a router's events into a shadow router.
    #[doc(hidden)]
    pub fn audit_offer(
        &self,
        interaction: &super::model::InteractionId,
        agent: &super::model::AgentId,
    ) -> Result<(), String> {
        let slot = self
            .interactions
            .get(interaction)
            .ok_or_else(|| format!("offer of unknown interaction {interaction}"))?;
        if slot.phase != Phase::Waiting {
            return Err(format!("offer of {interaction}, which is not waiting"));
        }
        let a = self
            .agent_ix
            .get(agent)
            .copied()
            .ok_or_else(|| format!("offer to unknown agent {agent}"))?;
        let own = WaitKey::of(slot);
        let queue = &self.queues[slot.queue as usize];
        for &c in &queue.classes {
            let class = &self.classes[c as usize];
            let Some(m) = self.agent_ref(a).membership(c) else {
                continue;
            };
            if m.key.is_none() {
                continue;
            }
            for key in class.waiting.range(..own) {
                let declined = self
                    .interactions
                    .get(&key.id())
                    .is_some_and(|other| other.declined(agent));
                if !declined {
                    return Err(format!(
                        "{interaction} offered to {agent} while {} (ahead in the same queue) waits \
                         in a class where {agent} is free",
                        key.id()
                    ));
                }
            }
        }
        Ok(())
    }
}
