//! Commands that bring work in: new interactions, messages on open ones, conversations opened
//! or continued.
//!
//! Each function validates its command fully before emitting anything: a refused command
//! changes nothing.

use super::super::error::RouteError;
use super::super::event::{Event, EventKind};
use super::super::message::{Message, MessageDirection};
use super::super::model::{InteractionId, InteractionSpec, Timestamp};
use super::super::router::Router;
use std::sync::Arc;

impl Router {
    /// Handles the `AddMessage` command.
    pub(in crate::core) fn handle_add_message(
        &mut self,
        now: Timestamp,
        interaction: InteractionId,
        message: Message,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        self.open_slot(interaction)?;
        self.emit(
            out,
            now,
            EventKind::MessageAdded {
                interaction,
                message: Arc::new(message),
            },
        );
        Ok(())
    }

    /// Handles the `FollowUp` command.
    pub(in crate::core) fn handle_follow_up(
        &mut self,
        now: Timestamp,
        interaction: InteractionId,
        message: Message,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        if message.direction != MessageDirection::Outbound || message.agent.is_some() {
            return Err(RouteError::InvalidFollowUp(message.id));
        }
        self.emit(
            out,
            now,
            EventKind::MessageAdded {
                interaction,
                message: Arc::new(message),
            },
        );
        Ok(())
    }

    /// Handles the `OpenConversation` command.
    pub(in crate::core) fn handle_open_conversation(
        &mut self,
        now: Timestamp,
        spec: InteractionSpec,
        message: Message,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        let open = spec
            .external_ref
            .as_deref()
            .and_then(|r| self.external.get(r));
        let spec_id = spec.id;
        let (interaction, created) = match open {
            Some(id) => (id, false),
            // `create` returns `None` only for an open external reference, excluded above.
            None => match self.create(now, spec, out)? {
                Some(id) => (id, true),
                None => return Err(RouteError::DuplicateInteraction(spec_id)),
            },
        };
        self.emit(
            out,
            now,
            EventKind::MessageAdded {
                interaction,
                message: Arc::new(message),
            },
        );
        if created {
            self.match_interaction(now, interaction, out);
        }
        Ok(())
    }

    /// Handles the `CreateInteraction` command.
    pub(in crate::core) fn handle_create_interaction(
        &mut self,
        now: Timestamp,
        spec: InteractionSpec,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        if let Some(id) = self.create(now, spec, out)? {
            self.match_interaction(now, id, out);
        }
        Ok(())
    }
}
