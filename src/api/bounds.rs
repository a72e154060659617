//! Every request's bounds in one place: for each request message of `guichet.v1`, the maximum of
//! each string and repeated field, checked by [`Bounded::check_bounds`] at the top of its
//! handler, before any use. The limits themselves are in `limits.rs`; the list of them, with
//! their values, is in `docs/operations.md`. Errors name the field and the limit and never echo
//! the value.

use tonic::Status;

use super::limits::{self, id, list, name, queues, MAX_LIST};
use super::proto as pb;

/// The longest free text an agent writes in one field (wrap-up notes).
pub const MAX_NOTES_BYTES: usize = 16 * 1024;
/// The longest transfer note.
pub const MAX_TRANSFER_NOTE_BYTES: usize = 2 * 1024;
/// The longest device (a phone number or a SIP address).
pub const MAX_DEVICE_BYTES: usize = 256;
/// The longest contact address (a phone number or an email address: RFC 5321 allows 254).
pub const MAX_CONTACT_BYTES: usize = 320;
/// The longest IVR tree, as JSON.
pub const MAX_TREE_JSON_BYTES: usize = 512 * 1024;
/// The most interactions named by one `WatchEvents` filter.
pub const MAX_WATCHED_INTERACTIONS: usize = 1_000;

/// A request whose fields have documented maxima.
pub trait Bounded {
    /// `INVALID_ARGUMENT` naming the first field over its maximum (or outside its character
    /// set), without its value.
    fn check_bounds(&self) -> Result<(), Status>;
}

/// Free text of at most `max` bytes (line breaks allowed, other control characters not).
pub fn text(field: &str, value: &str, max: usize) -> Result<(), Status> {
    if value.len() > max {
        let limit = if max >= 1024 && max % 1024 == 0 {
            format!("{} KiB", max / 1024)
        } else {
            format!("{max} bytes")
        };
        return Err(Status::invalid_argument(format!(
            "{field} is longer than {limit}"
        )));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(Status::invalid_argument(format!(
            "{field} must not hold control characters other than line breaks and tabs"
        )));
    }
    Ok(())
}

/// An interaction id field: at most 26 characters of an id's alphabet (the full check, with a
/// message saying what an id looks like, is `convert::interaction_id`).
fn interaction(field: &str, value: &str) -> Result<(), Status> {
    id(field, value)
}

impl Bounded for pb::LoginRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("agent_id", &self.agent_id)?;
        text("device", &self.device, MAX_DEVICE_BYTES)
    }
}

impl Bounded for pb::LogoutRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("agent_id", &self.agent_id)
    }
}

impl Bounded for pb::SetStateRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("agent_id", &self.agent_id)?;
        name("pause_reason", &self.pause_reason)
    }
}

impl Bounded for pb::OffersRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("agent_id", &self.agent_id)
    }
}

impl Bounded for pb::InteractionAction {
    fn check_bounds(&self) -> Result<(), Status> {
        id("agent_id", &self.agent_id)?;
        interaction("interaction_id", &self.interaction_id)
    }
}

impl Bounded for pb::CompleteRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("agent_id", &self.agent_id)?;
        interaction("interaction_id", &self.interaction_id)?;
        // The code's own check (against the queue's list, which it names) is `Complete`'s.
        text("wrap_up_code", &self.wrap_up_code, 64)?;
        text("notes", &self.notes, MAX_NOTES_BYTES)
    }
}

impl Bounded for pb::TransferRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("agent_id", &self.agent_id)?;
        interaction("interaction_id", &self.interaction_id)?;
        match &self.to {
            Some(pb::transfer_request::To::Queue(q)) => id("queue", q)?,
            Some(pb::transfer_request::To::Agent(a)) => id("agent", a)?,
            None => {}
        }
        text("note", &self.note, MAX_TRANSFER_NOTE_BYTES)
    }
}

impl Bounded for pb::StartConsultRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("agent_id", &self.agent_id)?;
        interaction("interaction_id", &self.interaction_id)?;
        match &self.to {
            Some(pb::start_consult_request::To::Queue(q)) => id("queue", q)?,
            Some(pb::start_consult_request::To::Agent(a)) => id("agent", a)?,
            None => {}
        }
        text("note", &self.note, MAX_TRANSFER_NOTE_BYTES)
    }
}

impl Bounded for pb::SetDeviceRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("agent_id", &self.agent_id)?;
        text("device", &self.device, MAX_DEVICE_BYTES)
    }
}

impl Bounded for pb::SendMessageRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("agent_id", &self.agent_id)?;
        interaction("interaction_id", &self.interaction_id)?;
        text("text", &self.text, super::conversation::MAX_REPLY_BYTES)?;
        text("subject", &self.subject, 1024)
    }
}

impl Bounded for pb::GetConversationRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("agent_id", &self.agent_id)?;
        interaction("interaction_id", &self.interaction_id)?;
        id("page_token", &self.page_token)
    }
}

impl Bounded for pb::SetTypingRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("agent_id", &self.agent_id)?;
        interaction("interaction_id", &self.interaction_id)
    }
}

impl Bounded for pb::ListColleaguesRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("agent_id", &self.agent_id)
    }
}

impl Bounded for pb::GetMyDayRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("agent_id", &self.agent_id)
    }
}

impl Bounded for pb::GetMySatisfactionRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("agent_id", &self.agent_id)
    }
}

impl Bounded for pb::CreateRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        if let Some(spec) = &self.spec {
            limits::spec(spec)?;
        }
        Ok(())
    }
}

impl Bounded for pb::GetRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        // An id, or a short reference as a citizen typed it (spaces allowed): `Get` parses both.
        text("interaction_id", &self.interaction_id, 64)
    }
}

impl Bounded for pb::CancelRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        interaction("interaction_id", &self.interaction_id)
    }
}

impl Bounded for pb::WatchEventsRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        queues("queues", &self.queues)?;
        list(
            "interaction_ids",
            self.interaction_ids.len(),
            MAX_WATCHED_INTERACTIONS,
        )?;
        for i in &self.interaction_ids {
            interaction("interaction_ids", i)?;
        }
        Ok(())
    }
}

impl Bounded for pb::EraseContactRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        text("contact", &self.contact, MAX_CONTACT_BYTES)
    }
}

impl Bounded for pb::GetSatisfactionRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("agent_id", &self.agent_id)
    }
}

impl Bounded for pb::UpsertAgentRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        match &self.agent {
            Some(agent) => limits::agent(agent),
            None => Ok(()),
        }
    }
}

impl Bounded for pb::RemoveAgentRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("agent_id", &self.agent_id)
    }
}

impl Bounded for pb::ListAgentsRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("page_token", &self.page_token)
    }
}

impl Bounded for pb::SetAgentSkillsRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("agent_id", &self.agent_id)?;
        list("skills", self.skills.len(), MAX_LIST)?;
        for s in &self.skills {
            id("skills.skill", &s.skill)?;
        }
        Ok(())
    }
}

impl Bounded for pb::SetCapacityRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("agent_id", &self.agent_id)
    }
}

impl Bounded for pb::UpsertQueueRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        match &self.queue {
            Some(queue) => limits::queue(queue),
            None => Ok(()),
        }
    }
}

impl Bounded for pb::RemoveQueueRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("queue_id", &self.queue_id)
    }
}

impl Bounded for pb::ListQueuesRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("page_token", &self.page_token)
    }
}

impl Bounded for pb::ListWaitingRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        queues("queues", &self.queues)?;
        id("page_token", &self.page_token)?;
        text("reference", &self.reference, 32)
    }
}

impl Bounded for pb::WatchWaitingRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        queues("queues", &self.queues)
    }
}

impl Bounded for pb::ReprioritiseRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        interaction("interaction_id", &self.interaction_id)
    }
}

impl Bounded for pb::MoveRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        interaction("interaction_id", &self.interaction_id)?;
        id("queue", &self.queue)
    }
}

impl Bounded for pb::ForceAssignRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        interaction("interaction_id", &self.interaction_id)?;
        id("agent_id", &self.agent_id)
    }
}

impl Bounded for pb::ExplainRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        interaction("interaction_id", &self.interaction_id)
    }
}

impl Bounded for pb::WatchStatsRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        queues("queues", &self.queues)
    }
}

impl Bounded for pb::PutIvrVersionRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        text("tree_json", &self.tree_json, MAX_TREE_JSON_BYTES)?;
        text("comment", &self.comment, 4 * super::ivr::MAX_COMMENT_CHARS)
    }
}

impl Bounded for pb::GetIvrVersionRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("name", &self.name)
    }
}

impl Bounded for pb::ValidateIvrTreeRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        text("tree_json", &self.tree_json, MAX_TREE_JSON_BYTES)
    }
}

impl Bounded for pb::ActivateIvrVersionRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("name", &self.name)
    }
}

impl Bounded for pb::ListIvrVersionsRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("name", &self.name)?;
        id("page_token", &self.page_token)
    }
}

impl Bounded for pb::RollbackIvrRequest {
    fn check_bounds(&self) -> Result<(), Status> {
        id("name", &self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversize_fields_are_named_and_not_echoed() {
        let long = "x".repeat(100_000);
        let cases: Vec<(&str, Box<dyn Bounded>)> = vec![
            (
                "skills",
                Box::new(pb::SetAgentSkillsRequest {
                    agent_id: "a".into(),
                    skills: vec![pb::SkillLevel::default(); 65],
                }),
            ),
            (
                "contact",
                Box::new(pb::EraseContactRequest {
                    contact: long.clone(),
                }),
            ),
            (
                "note",
                Box::new(pb::TransferRequest {
                    note: long.clone(),
                    ..Default::default()
                }),
            ),
            (
                "name",
                Box::new(pb::RollbackIvrRequest { name: long.clone() }),
            ),
            (
                "tree_json",
                Box::new(pb::ValidateIvrTreeRequest {
                    tree_json: "y".repeat(MAX_TREE_JSON_BYTES + 1),
                }),
            ),
            (
                "interaction_ids",
                Box::new(pb::WatchEventsRequest {
                    interaction_ids: vec!["a b".into()],
                    ..Default::default()
                }),
            ),
        ];
        for (field, request) in cases {
            let status = request.check_bounds().expect_err(field);
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(status.message().starts_with(field), "{}", status.message());
            assert!(!status.message().contains("xxxx"), "{}", status.message());
        }
    }

    #[test]
    fn notes_keep_their_line_breaks() {
        assert!(text("notes", "called back\nsolved", MAX_NOTES_BYTES).is_ok());
        assert!(text("notes", "a\0b", MAX_NOTES_BYTES).is_err());
    }
}
