//! Commands about agents: the roster, skills, capacity, device, and presence (login, logout,
//! pause, available).
//!
//! Each function validates its command fully before emitting anything: a refused command
//! changes nothing.

use super::super::command::RequestedState;
use super::super::error::RouteError;
use super::super::event::{Event, EventKind};
use super::super::model::{AgentConfig, AgentId, AgentState, Capacity, Skill, Timestamp};
use super::super::router::validate_levels;
use super::super::router::Router;
use std::collections::BTreeMap;

impl Router {
    /// Handles the `UpsertAgent` command.
    pub(in crate::core) fn handle_upsert_agent(
        &mut self,
        now: Timestamp,
        config: AgentConfig,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        validate_levels(&config.skills)?;
        if let Some(a) = self.agent_ix.get(&config.id).copied() {
            self.check_capacity(a, &config.capacity)?;
        }
        let a_id = config.id.clone();
        self.emit(
            out,
            now,
            EventKind::AgentUpserted {
                config: Box::new(config),
            },
        );
        self.match_agent_id(now, &a_id, out);
        Ok(())
    }

    /// Handles the `RemoveAgent` command.
    pub(in crate::core) fn handle_remove_agent(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        let a = self.agent_idx(&agent)?;
        let open = self.agent_open_count(a);
        if open > 0 {
            return Err(RouteError::AgentBusy { agent, open });
        }
        if self.agent_ref(a).state != AgentState::Offline {
            self.emit(
                out,
                now,
                EventKind::AgentStateChanged {
                    agent: agent.clone(),
                    state: AgentState::Offline,
                },
            );
        }
        self.emit(out, now, EventKind::AgentRemoved { agent });
        Ok(())
    }

    /// Handles the `SetAgentSkills` command.
    pub(in crate::core) fn handle_set_agent_skills(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        skills: BTreeMap<Skill, u8>,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        self.agent_idx(&agent)?;
        validate_levels(&skills)?;
        self.emit(
            out,
            now,
            EventKind::AgentSkillsChanged {
                agent: agent.clone(),
                skills,
            },
        );
        self.match_agent_id(now, &agent, out);
        Ok(())
    }

    /// Handles the `SetCapacity` command.
    pub(in crate::core) fn handle_set_capacity(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        capacity: Capacity,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        let a = self.agent_idx(&agent)?;
        self.check_capacity(a, &capacity)?;
        self.emit(
            out,
            now,
            EventKind::AgentCapacityChanged {
                agent: agent.clone(),
                capacity,
            },
        );
        self.match_agent_id(now, &agent, out);
        Ok(())
    }

    /// Handles the `SetDevice` command.
    pub(in crate::core) fn handle_set_device(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        device: Option<String>,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        self.agent_idx(&agent)?;
        self.emit(out, now, EventKind::AgentDeviceChanged { agent, device });
        Ok(())
    }

    /// Handles the `Login` command.
    pub(in crate::core) fn handle_login(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        let a = self.agent_idx(&agent)?;
        if self.agent_ref(a).state == AgentState::Offline {
            self.become_available(now, a, agent, out);
        }
        Ok(())
    }

    /// Makes agent `a` (`agent`) available and offers it what it can take.
    fn become_available(&mut self, now: Timestamp, a: u32, agent: AgentId, out: &mut Vec<Event>) {
        self.emit(
            out,
            now,
            EventKind::AgentStateChanged {
                agent,
                state: AgentState::Available,
            },
        );
        self.match_agent(now, a, out);
    }

    /// Handles the `Logout` command.
    pub(in crate::core) fn handle_logout(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        let a = self.agent_idx(&agent)?;
        if self.agent_ref(a).state != AgentState::Offline {
            self.logout(now, a, out);
        }
        Ok(())
    }

    /// Handles the `SetState` command.
    pub(in crate::core) fn handle_set_state(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        state: RequestedState,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        let a = self.agent_idx(&agent)?;
        let current = self.agent_ref(a).state.clone();
        if current == AgentState::Offline {
            return Err(RouteError::AgentOffline(agent));
        }
        match state {
            RequestedState::Available => {
                if matches!(current, AgentState::WrapUp { .. }) {
                    self.end_wrap_ups(now, a, out);
                }
                if current == AgentState::Available {
                    self.match_agent(now, a, out);
                } else {
                    self.become_available(now, a, agent, out);
                }
            }
            RequestedState::Paused { reason } => {
                let paused = AgentState::Paused { reason };
                if current != paused {
                    self.emit(
                        out,
                        now,
                        EventKind::AgentStateChanged {
                            agent,
                            state: paused,
                        },
                    );
                }
            }
        }
        Ok(())
    }
}
