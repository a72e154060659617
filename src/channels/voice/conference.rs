//! Warm transfer of a call (Twilio `<Conference>`): this file owns how a bridged call moves into
//! a conference room when its agent consults a colleague, and what the consultation's events
//! do to the room's participants.
//!
//! 1. The agent holding the call starts a consultation ([`Calls::can_consult`] first, then
//!    [`Calls::start_room`] once the router offered it): Guichet finds the agent's leg of the
//!    caller's `<Dial>` (`GET Calls.json?ParentCallSid=..&Status=in-progress`) and moves it into
//!    the room `guichet-<interaction>` with a live call update (`<Dial><Conference
//!    endConferenceOnExit="true">`). The caller's `<Dial>` then ends, and its `action` request
//!    is answered with the same room (`endConferenceOnExit="true"`, `action` posted when the room
//!    closes). Caller and agent talk on, now in the room.
//! 2. The consulted agent accepts (`ConsultAccepted`): Guichet calls its device into the room
//!    (`POST Calls.json` with `Twiml`, `endConferenceOnExit="false"`, from the dialled number).
//!    The three talk together.
//! 3. The first agent completes the transfer (`ConsultCompleted`): the room's sid is looked up
//!    (`GET Conferences.json?FriendlyName=..&Status=in-progress`), the consulted agent's leg
//!    now closes the room when it leaves, the first agent's no longer does, and the first agent
//!    is removed (`DELETE .../Participants/{CallSid}.json`). Caller and second agent stay.
//! 4. The consultation ends otherwise (declined, timed out, cancelled: `ConsultEnded`): the
//!    consulted agent's leg, if it was dialled, is hung up; caller and first agent stay.
//!
//! The room closes when the caller or the agent holding the call leaves it: the caller's
//! `<Dial>` action then completes the interaction, as the end of an ordinary bridge does.
//! Only Twilio calls are moved: the other gateways answer [`ConsultError::Unsupported`].
//! Consultation events are handled one after the other, in journal order, by one task
//! ([`Calls::run_consult_worker`]), so that a completion never overtakes the accept that
//! dialled the consulted agent.

use crate::core::{AgentId, EventKind, InteractionId};
use crate::ivr::{DialTarget, Verb};

use super::calls::{Calls, Phase};
use super::gateway::{Gateway, OutboundError};

/// The conference room of `interaction`'s warm transfer.
pub fn room(interaction: InteractionId) -> String {
    format!("guichet-{interaction}")
}

/// Why a call cannot be warm-transferred.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsultError {
    /// No call of the interaction is connected to an agent through a gateway.
    #[error("no call of interaction {0} is connected to an agent's phone through a gateway")]
    NotConnected(InteractionId),
    /// The call's gateway has no conferencing in Guichet.
    #[error("a warm transfer of a call is not supported on the {0} gateway (Twilio's is)")]
    Unsupported(&'static str),
    /// The router could not be read (overloaded or stopping).
    #[error("the router is not answering: {0}")]
    Unavailable(String),
    /// The gateway refused or did not answer.
    #[error(transparent)]
    Gateway(#[from] OutboundError),
}

/// A consultation event the worker acts on.
#[derive(Debug)]
pub(super) enum ConsultStep {
    /// The consulted agent accepted: dial it into the room.
    Accepted(InteractionId, AgentId),
    /// The transfer completed: the first agent leaves the room.
    Completed(InteractionId),
    /// The consultation ended without the transfer: the consulted agent leaves the room.
    Ended(InteractionId),
}

impl ConsultStep {
    /// The step a committed event calls for, if any.
    pub(super) fn from_event(kind: &EventKind) -> Option<ConsultStep> {
        match kind {
            EventKind::ConsultAccepted { interaction, agent } => {
                Some(ConsultStep::Accepted(*interaction, agent.clone()))
            }
            EventKind::ConsultCompleted { interaction, .. } => {
                Some(ConsultStep::Completed(*interaction))
            }
            EventKind::ConsultEnded { interaction, .. } => Some(ConsultStep::Ended(*interaction)),
            _ => None,
        }
    }

    /// The interaction it is about.
    pub(super) fn interaction(&self) -> InteractionId {
        match self {
            ConsultStep::Accepted(i, _) | ConsultStep::Completed(i) | ConsultStep::Ended(i) => *i,
        }
    }
}

impl Calls {
    /// Checks that the call of `interaction` can be warm-transferred: a Twilio call connected
    /// to its agent.
    pub async fn can_consult(&self, interaction: InteractionId) -> Result<(), ConsultError> {
        let entry = self
            .call_of(interaction)
            .ok_or(ConsultError::NotConnected(interaction))?;
        let call = entry.lock().await;
        if call.gateway != Gateway::Twilio {
            return Err(ConsultError::Unsupported(call.gateway.name()));
        }
        match call.phase {
            Phase::Bridged { .. } | Phase::Conferenced { .. } => Ok(()),
            _ => Err(ConsultError::NotConnected(interaction)),
        }
    }

    /// Moves the call of `interaction` into its room (step 1 of the module docs); a call
    /// already there (an earlier consultation) stays.
    pub async fn start_room(&self, interaction: InteractionId) -> Result<(), ConsultError> {
        let entry = self
            .call_of(interaction)
            .ok_or(ConsultError::NotConnected(interaction))?;
        let mut call = entry.lock().await;
        if call.gateway != Gateway::Twilio {
            return Err(ConsultError::Unsupported(call.gateway.name()));
        }
        match &call.phase {
            Phase::Conferenced { .. } => return Ok(()),
            Phase::Bridged { .. } => {}
            _ => return Err(ConsultError::NotConnected(interaction)),
        }
        let outbound = self.outbound();
        let leg = outbound
            .twilio_child_leg(&call.sid)
            .await?
            .ok_or(ConsultError::NotConnected(interaction))?;
        let verbs = [Verb::Conference {
            room: room(interaction),
            end_on_exit: true,
            action_url: None,
        }];
        // The phase changes first: the caller's dial action, which the move triggers, waits
        // for this lock and then finds the call in the room.
        let bridged = std::mem::replace(
            &mut call.phase,
            Phase::Conferenced {
                interaction,
                holder_leg: leg.clone(),
                consulted_leg: None,
                joined: false,
            },
        );
        if let Err(e) = outbound
            .update_call(Gateway::Twilio, &leg, &verbs, "")
            .await
        {
            call.phase = bridged;
            return Err(e.into());
        }
        tracing::info!(call_sid = %call.sid, agent_leg = %leg, interaction_id = %interaction, "call moved into its conference room for a warm transfer");
        Ok(())
    }

    /// Acts on consultation steps in order until the channel closes (the engine stopped).
    pub(super) async fn run_consult_worker(
        self,
        mut steps: tokio::sync::mpsc::Receiver<ConsultStep>,
    ) {
        while let Some(step) = steps.recv().await {
            let interaction = step.interaction();
            if let Err(e) = self.consult_step(step).await {
                tracing::error!(interaction_id = %interaction, "warm transfer of the call: {e}");
            }
        }
    }

    async fn consult_step(&self, step: ConsultStep) -> Result<(), ConsultError> {
        let interaction = step.interaction();
        let Some(entry) = self.call_of(interaction) else {
            return Ok(());
        };
        // The consulted agent's device is read before the call's lock is taken.
        let device = match &step {
            ConsultStep::Accepted(_, agent) => {
                let agent = agent.clone();
                let device = self
                    .engine()
                    .read(move |r| r.agent(&agent).and_then(|a| a.config.device))
                    .await
                    .map_err(|e| ConsultError::Unavailable(e.to_string()))?;
                Some(device)
            }
            _ => None,
        };
        let mut call = entry.lock().await;
        let Phase::Conferenced {
            holder_leg,
            consulted_leg,
            ..
        } = &mut call.phase
        else {
            return Ok(());
        };
        let (holder, consulted) = (holder_leg.clone(), consulted_leg.clone());
        let outbound = self.outbound();
        let name = room(interaction);
        match step {
            ConsultStep::Accepted(_, agent) => {
                let Some(device) = device.flatten() else {
                    tracing::error!(interaction_id = %interaction, agent_id = %agent, "the consulted agent has no device to dial into the call: set one with AgentDesktop.SetDevice");
                    return Ok(());
                };
                let to = match DialTarget::from_address(&device) {
                    DialTarget::Phone(n) => n,
                    DialTarget::Sip(u) => u,
                };
                let verbs = [Verb::Conference {
                    room: name,
                    end_on_exit: false,
                    action_url: None,
                }];
                let from = call.to.clone();
                let leg = outbound.twilio_call_out(&to, &from, &verbs).await?;
                tracing::info!(interaction_id = %interaction, agent_id = %agent, consulted_leg = %leg, "consulted agent dialled into the call's room");
                if let Phase::Conferenced { consulted_leg, .. } = &mut call.phase {
                    *consulted_leg = Some(leg);
                }
            }
            ConsultStep::Completed(_) => {
                let Some(consulted) = consulted else {
                    tracing::error!(interaction_id = %interaction, "transfer completed but the consulted agent was never dialled: the first agent stays on the call");
                    return Ok(());
                };
                let conference = outbound
                    .twilio_conference(&name)
                    .await?
                    .ok_or(ConsultError::NotConnected(interaction))?;
                outbound
                    .twilio_end_on_exit(&conference, &consulted, true)
                    .await?;
                outbound
                    .twilio_end_on_exit(&conference, &holder, false)
                    .await?;
                outbound.twilio_kick(&conference, &holder).await?;
                tracing::info!(interaction_id = %interaction, conference_sid = %conference, "warm transfer completed: the first agent left the room");
                if let Phase::Conferenced {
                    holder_leg,
                    consulted_leg,
                    ..
                } = &mut call.phase
                {
                    *holder_leg = consulted;
                    *consulted_leg = None;
                }
            }
            ConsultStep::Ended(_) => {
                let Some(consulted) = consulted else {
                    return Ok(());
                };
                if let Phase::Conferenced { consulted_leg, .. } = &mut call.phase {
                    *consulted_leg = None;
                }
                outbound
                    .update_call(Gateway::Twilio, &consulted, &[Verb::Hangup], "")
                    .await?;
                tracing::info!(interaction_id = %interaction, consulted_leg = %consulted, "consultation ended: the consulted agent's leg hung up");
            }
        }
        Ok(())
    }
}
