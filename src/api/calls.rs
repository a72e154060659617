//! The engine calls the gRPC handlers share: run a command, and read back the agent or the
//! interaction it changed, in the same trip to the router ([`Engine::send_then_read`]).

use tonic::Status;

use crate::core::{AgentId, Command, InteractionId};
use crate::engine::Engine;

use super::convert;
use super::proto as pb;

/// Runs a command; its events are committed when this returns.
pub async fn run(engine: &Engine, command: Command) -> Result<(), Status> {
    engine.send(command).await.map_err(Status::from)?;
    Ok(())
}

/// The agent's status now.
pub async fn agent_status(engine: &Engine, agent: AgentId) -> Result<pb::AgentStatus, Status> {
    let view = engine
        .read(move |r| r.agent(&agent))
        .await
        .map_err(Status::from)?;
    agent_or_gone(view)
}

/// Runs a command, then reads the agent's status right after it.
pub async fn run_then_agent(
    engine: &Engine,
    command: Command,
    agent: AgentId,
) -> Result<pb::AgentStatus, Status> {
    let (_, view) = engine
        .send_then_read(command, move |r| r.agent(&agent))
        .await
        .map_err(Status::from)?;
    agent_or_gone(view)
}

/// The interaction now (ended if no longer open).
pub async fn interaction(engine: &Engine, id: InteractionId) -> Result<pb::Interaction, Status> {
    let view = engine
        .read(move |r| r.interaction(&id))
        .await
        .map_err(Status::from)?;
    Ok(convert::interaction_or_ended(id, view.as_ref()))
}

/// Runs a command, then reads the interaction right after it (ended if no longer open).
pub async fn run_then_interaction(
    engine: &Engine,
    command: Command,
    id: InteractionId,
) -> Result<pb::Interaction, Status> {
    let (_, view) = engine
        .send_then_read(command, move |r| r.interaction(&id))
        .await
        .map_err(Status::from)?;
    Ok(convert::interaction_or_ended(id, view.as_ref()))
}

fn agent_or_gone(view: Option<crate::core::AgentView>) -> Result<pb::AgentStatus, Status> {
    view.map(|v| convert::agent_status_pb(&v))
        .ok_or_else(|| Status::not_found("the agent was removed"))
}
