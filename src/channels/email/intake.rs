//! The inbound pipeline shared by SMTP and the inbound-parse webhook: a received email becomes a
//! committed conversation message. It owns duplicate detection (a relay's retry of the same
//! Message-ID), threading (In-Reply-To / References / the `[#REFERENCE]` subject tag), the
//! policy for replies to closed interactions, and the acknowledgement of new interactions.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tracing::{info, warn, Instrument};

use crate::core::{
    Attachment, Channel, Command, ContactId, EventKind, InteractionId, InteractionPhase,
    InteractionSpec, Message, MessageDirection, QueueId, Reference, RouteError,
};
use crate::engine::{Engine, EngineError};
use crate::store::{Store, StoreError};
use crate::survey::{AnswerError, Surveys};

use super::config::{ClosedReplyPolicy, InboundConfig};
use super::mime::InboundEmail;
use super::notice;

/// Why a received email was refused; nothing of it was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No accepted recipient (SMTP `550 5.1.1`).
    #[error("{0}: no such recipient here")]
    UnknownRecipient(String),
    /// Over `max_message_bytes` (SMTP `552 5.3.4`).
    #[error("message size exceeds the limit of {limit} bytes")]
    TooBig {
        /// The limit.
        limit: usize,
    },
    /// Not a usable email (SMTP `554 5.6.0`).
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A temporary failure: the sender should retry later (SMTP `451`, HTTP 503).
    #[error("{0}")]
    Temporary(String),
}

/// What happened to an accepted email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new interaction was created for it (and acknowledged, unless sent by a machine).
    Created(InteractionId),
    /// It was added to this open interaction.
    Added(InteractionId),
    /// It was already stored (a retry) in this interaction; nothing changed.
    Duplicate(InteractionId),
    /// It answered the satisfaction survey about this interaction (recorded as the answer,
    /// not as a message).
    SurveyAnswer(InteractionId),
}

impl Outcome {
    /// The interaction the email is in.
    pub fn interaction(self) -> InteractionId {
        match self {
            Outcome::Created(i)
            | Outcome::Added(i)
            | Outcome::Duplicate(i)
            | Outcome::SurveyAnswer(i) => i,
        }
    }

    /// `created`, `added`, `duplicate` or `survey_answer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created(_) => "created",
            Outcome::Added(_) => "added",
            Outcome::Duplicate(_) => "duplicate",
            Outcome::SurveyAnswer(_) => "survey_answer",
        }
    }
}

/// The email intake: shared by the SMTP sessions and the webhook.
#[derive(Debug)]
pub struct Intake {
    engine: Engine,
    config: InboundConfig,
    domain: String,
    /// Message ids being delivered right now, so that a relay's retry arriving on another
    /// connection before the first delivery commits is told to wait instead of stored twice.
    in_flight: Mutex<HashSet<String>>,
    /// Replies to survey questions are answers, not messages.
    surveys: Option<Surveys>,
}

/// Removes a message id from the in-flight set when its delivery ends, however it ends.
struct Claim<'a> {
    set: &'a Mutex<HashSet<String>>,
    id: String,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// The short reference of an interaction, shown to the citizen and put in subjects as
/// `[#REFERENCE]`: the request's one reference on every channel ([`Reference::of`]).
pub fn reference(id: InteractionId) -> String {
    Reference::of(id).to_string()
}

/// The length of the references mail carried before the one reference of every channel: the
/// first 12 characters of the ULID (still recognised in replies to such mail).
const OLD_REFERENCE_LEN: usize = 12;

/// The sender's most recent requests a subject's reference is looked for among.
const MAX_REFERENCE_SCAN: usize = 200;

/// A reference read from a subject's `[#...]` tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectTag {
    /// The request's short reference.
    Reference(Reference),
    /// The first 12 characters of an interaction id (mail sent by earlier versions).
    IdPrefix(String),
}

/// The reference in a subject's `[#REFERENCE]` tag, if it has a well-formed one.
pub fn reference_in(subject: &str) -> Option<SubjectTag> {
    let mut rest = subject;
    while let Some(start) = rest.find("[#") {
        let after = &rest[start + 2..];
        if let Some(end) = after.find(']') {
            let tag = after[..end].trim().to_ascii_uppercase();
            if let Some(r) = Reference::parse(&tag) {
                return Some(SubjectTag::Reference(r));
            }
            if tag.len() == OLD_REFERENCE_LEN
                && tag
                    .chars()
                    .all(|c| c.is_ascii_digit() || (c.is_ascii_uppercase() && !"ILOU".contains(c)))
            {
                return Some(SubjectTag::IdPrefix(tag));
            }
        }
        rest = after;
    }
    None
}

fn temporary(e: impl std::fmt::Display) -> Refusal {
    Refusal::Temporary(format!(
        "cannot store the message now ({e}): try again later"
    ))
}

fn bare(id: &str) -> &str {
    id.trim_start_matches('<').trim_end_matches('>')
}

impl Intake {
    /// An intake committing to `engine`; `domain` is `[email] domain`, that of Guichet's own
    /// Message-IDs.
    pub fn new(engine: Engine, config: InboundConfig, domain: String) -> Intake {
        Intake {
            engine,
            config,
            domain,
            in_flight: Mutex::new(HashSet::new()),
            surveys: None,
        }
    }

    /// The same intake taking replies to survey questions as answers.
    pub fn with_surveys(mut self, surveys: Surveys) -> Intake {
        self.surveys = Some(surveys);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &InboundConfig {
        &self.config
    }

    /// The `[email] domain`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The queue for a recipient, or the refusal.
    pub fn queue_for(&self, recipient: &str) -> Result<QueueId, Refusal> {
        self.config
            .queue_for(recipient)
            .cloned()
            .ok_or_else(|| Refusal::UnknownRecipient(recipient.to_owned()))
    }

    /// Stores `email` (already parsed, addressed to an accepted recipient of `queue`): returns
    /// once it is committed, or the refusal with nothing stored.
    pub async fn deliver(
        &self,
        mut email: InboundEmail,
        queue: QueueId,
    ) -> Result<Outcome, Refusal> {
        let id = match &email.message_id {
            Some(mid) => format!("email:{}", bare(mid)),
            None => format!("email:sha256:{}", email.fingerprint),
        };
        let span = tracing::info_span!("email_in", message = %id, from = %email.from);
        async move {
            let _claim = self.claim(&id)?;
            let lookup = id.clone();
            if let Some(existing) = self
                .blocking(move |s| s.message_interaction(&lookup))
                .await?
            {
                info!(interaction_id = %existing, "email already received: ignored");
                return Ok(Outcome::Duplicate(existing));
            }
            if let Some(answered) = self.survey_answer(&id, &email).await? {
                return Ok(answered);
            }
            let message = self.message(&id, &mut email);
            let thread = self.thread(&email).await?;
            let mut queue = queue;
            let mut contact = ContactId::new(&email.from);
            let mut linked = None;
            if let Some((target, spec)) = thread {
                // The interaction itself while it is open; else the open one already opened
                // by an earlier reply to it (so that replies to a closed case do not each open
                // another).
                let contact_of = spec.contact.clone();
                let open = self
                    .engine
                    .read(move |r| {
                        let open = |i: &InteractionId| {
                            r.interaction(i)
                                .filter(|v| !matches!(v.phase, InteractionPhase::WrapUp { .. }))
                        };
                        if open(&target).is_some() {
                            return Some(target);
                        }
                        let linked_to = target.to_string();
                        contact_of.and_then(|c| {
                            r.open_of_contact(&c).into_iter().find(|i| {
                                open(i).is_some_and(|v| {
                                    v.spec.attributes.get("linked_to") == Some(linked_to.as_str())
                                })
                            })
                        })
                    })
                    .await
                    .map_err(temporary)?;
                if let Some(open) = open {
                    match self
                        .engine
                        .send(Command::AddMessage {
                            interaction: open,
                            message: message.clone(),
                        })
                        .await
                    {
                        Ok(_) => {
                            info!(interaction_id = %open, "email added to its open interaction");
                            return Ok(Outcome::Added(open));
                        }
                        // It ended in between: treated as closed below.
                        Err(EngineError::Route(RouteError::UnknownInteraction(_))) => {}
                        Err(e) => return Err(temporary(e)),
                    }
                }
                if self.config.closed_reply == ClosedReplyPolicy::ReopenAsNewLinked {
                    queue = spec.queue.clone();
                    if let Some(c) = &spec.contact {
                        contact = c.clone();
                    }
                    linked = Some(target);
                }
            }
            self.open_new(&id, message, queue, contact, linked, &email)
                .await
        }
        .instrument(span)
        .await
    }

    /// When `email` replies to a survey question with a score: the answer, recorded (or a
    /// relay's retry of one already recorded).
    async fn survey_answer(
        &self,
        id: &str,
        email: &InboundEmail,
    ) -> Result<Option<Outcome>, Refusal> {
        let Some(surveys) = &self.surveys else {
            return Ok(None);
        };
        if (email.in_reply_to.is_empty() && email.references.is_empty())
            || crate::survey::parse_answer(&email.text).is_none()
        {
            return Ok(None);
        }
        if surveys.answered_by(id).await.map_err(temporary)? {
            info!("survey answer already received: ignored");
            let question = surveys.question_answered_by(id).await.map_err(temporary)?;
            return Ok(question.map(|q| Outcome::Duplicate(q.interaction)));
        }
        let ids: Vec<String> = email
            .in_reply_to
            .iter()
            .chain(email.references.iter().rev())
            .map(|m| bare(m).to_owned())
            .collect();
        match surveys
            .answer_email(id, &ids, &self.domain, &email.text)
            .await
        {
            Ok(Some(q)) => {
                info!(interaction_id = %q.interaction, "email survey answer recorded");
                Ok(Some(Outcome::SurveyAnswer(q.interaction)))
            }
            Ok(None) => Ok(None),
            Err(AnswerError::Store(e)) => Err(temporary(e)),
            Err(e) => {
                info!(error = %e, "reply to a survey not recorded as an answer: kept as a message");
                Ok(None)
            }
        }
    }

    fn claim(&self, id: &str) -> Result<Claim<'_>, Refusal> {
        let mut set = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if !set.insert(id.to_owned()) {
            return Err(Refusal::Temporary(
                "the same message is being delivered on another connection: try again later".into(),
            ));
        }
        Ok(Claim {
            set: &self.in_flight,
            id: id.to_owned(),
        })
    }

    async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, Refusal> {
        self.engine.store().run(f).await.map_err(temporary)
    }

    /// The conversation message for `email` (its attachments moved out of it).
    fn message(&self, id: &str, email: &mut InboundEmail) -> Message {
        let (text, whole) = cut_for_agents(&email.text);
        let mut m = Message::new(id, MessageDirection::Inbound, text);
        m.from = email.from.clone();
        m.to = email.to.clone();
        m.subject = email
            .subject
            .as_deref()
            .map(|s| cut_at(s, MAX_SUBJECT_BYTES).to_owned());
        m.attachments = std::mem::take(&mut email.attachments);
        m.attachments.extend(whole);
        if let Some(mid) = &email.message_id {
            m.meta.insert("message_id".into(), mid.clone());
        }
        if !email.in_reply_to.is_empty() {
            m.meta
                .insert("in_reply_to".into(), email.in_reply_to.join(" "));
        }
        if !email.references.is_empty() {
            m.meta
                .insert("references".into(), email.references.join(" "));
        }
        if let Some(html) = &email.html {
            m.meta.insert("html".into(), html.clone());
        }
        if let Some(name) = &email.from_name {
            m.meta.insert("from_name".into(), name.clone());
        }
        if email.automatic {
            m.meta.insert("automatic".into(), "true".into());
        }
        m
    }

    /// The interaction `email` answers, with its spec: the first of its In-Reply-To, then its
    /// References (newest first), that names a stored message; else its subject's
    /// `[#REFERENCE]`, when exactly one email interaction has it.
    async fn thread(
        &self,
        email: &InboundEmail,
    ) -> Result<Option<(InteractionId, Arc<crate::core::InteractionSpec>)>, Refusal> {
        let mut candidates = Vec::new();
        for mid in email
            .in_reply_to
            .iter()
            .chain(email.references.iter().rev())
        {
            let id = bare(mid);
            candidates.push(format!("email:{id}"));
            // Guichet's own messages: `email:<ULID>` sent as `<ULID@domain>`.
            if let Some((local, domain)) = id.rsplit_once('@') {
                if domain.eq_ignore_ascii_case(&self.domain) {
                    candidates.push(format!("email:{local}"));
                }
            }
        }
        let tag = email.subject.as_deref().and_then(reference_in);
        let sender = ContactId::new(&email.from);
        self.blocking(move |s| {
            for c in &candidates {
                if let Some(i) = s.message_interaction(c)? {
                    if let Some((_, spec)) = s.interaction_spec(i)? {
                        return Ok(Some((i, spec)));
                    }
                }
            }
            let Some(tag) = tag else {
                return Ok(None);
            };
            let ids = match tag {
                SubjectTag::IdPrefix(prefix) => s.interactions_with_id_prefix(&prefix)?,
                // The sender's own requests, newest first: a reference is only looked for
                // among them, so that quoting someone else's reference attaches nothing.
                SubjectTag::Reference(r) => s
                    .interactions_of_contact(&sender, MAX_REFERENCE_SCAN)?
                    .into_iter()
                    .filter(|i| i.reference() == r)
                    .collect(),
            };
            let mut found = None;
            for i in ids {
                if let Some((_, spec)) = s.interaction_spec(i)? {
                    if spec.channel == Channel::Email {
                        if found.is_some() {
                            // Two interactions share the reference: do not guess.
                            return Ok(None);
                        }
                        found = Some((i, spec));
                    }
                }
            }
            Ok(found)
        })
        .await
    }

    async fn open_new(
        &self,
        id: &str,
        message: Message,
        queue: QueueId,
        contact: ContactId,
        linked: Option<InteractionId>,
        email: &InboundEmail,
    ) -> Result<Outcome, Refusal> {
        let interaction = InteractionId(ulid::Ulid::new());
        let mut spec = InteractionSpec::new(interaction, Channel::Email, queue.clone());
        spec.contact = Some(contact);
        spec.external_ref = Some(Arc::from(id));
        if let Some(l) = linked {
            spec.attributes.insert("linked_to", l.to_string());
        }
        let events = self
            .engine
            .send(Command::OpenConversation { spec, message })
            .await
            .map_err(|e| match e {
                EngineError::Route(e) => {
                    warn!(%queue, "email refused by the router: {e}");
                    Refusal::Temporary(format!(
                        "queue {queue} cannot take this message ({e}): try again later"
                    ))
                }
                e => temporary(e),
            })?;
        let created = events.iter().any(
            |e| matches!(&e.kind, EventKind::InteractionCreated { spec, .. } if spec.id == interaction),
        );
        if !created {
            let joined = events.iter().find_map(|e| match &e.kind {
                EventKind::MessageAdded { interaction, .. } => Some(*interaction),
                _ => None,
            });
            return Ok(Outcome::Added(joined.unwrap_or(interaction)));
        }
        info!(interaction_id = %interaction, %queue, linked_to = ?linked, "email opened an interaction");
        if email.automatic {
            info!(interaction_id = %interaction, "sent by a machine: not acknowledged");
        } else {
            self.acknowledge(interaction, queue, email).await;
        }
        Ok(Outcome::Created(interaction))
    }

    /// Commits the acknowledgement of a new interaction (delivered by the notify module). A
    /// failure is logged: the citizen's message is stored either way.
    async fn acknowledge(&self, interaction: InteractionId, queue: QueueId, email: &InboundEmail) {
        // The load's delay, said when it differs from the announced one (one definition of
        // the expected wait for every channel).
        let (target, expected) = crate::channels::citizen::acknowledged_delays(
            &self.engine,
            &queue,
            Channel::Email,
            interaction,
        )
        .await;
        let ack = notice::acknowledgement(interaction, email, target, expected);
        if let Err(e) = self
            .engine
            .send(Command::AddMessage {
                interaction,
                message: ack,
            })
            .await
        {
            warn!(interaction_id = %interaction, "acknowledgement not committed: {e}");
        }
    }
}

/// The longest email text shown to agents, in bytes (an offer must stay under what gRPC
/// clients accept, 4 MB): a longer text is cut with a note, the whole kept as an attachment.
pub const MAX_TEXT_TO_AGENTS: usize = 512 * 1024;
/// The longest subject kept, in bytes (RFC 5322's line limit).
pub const MAX_SUBJECT_BYTES: usize = 998;
/// The name of the attachment that keeps a cut text whole.
pub const WHOLE_TEXT_NAME: &str = "full-message.txt";

/// `text` cut to at most `max` bytes, at a character boundary.
pub fn cut_at(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The text agents see, and the attachment keeping the whole text when it had to be cut.
pub fn cut_for_agents(text: &str) -> (String, Option<Attachment>) {
    if text.len() <= MAX_TEXT_TO_AGENTS {
        return (text.to_owned(), None);
    }
    let shown = cut_at(text, MAX_TEXT_TO_AGENTS - 512);
    let rest = text.len() - shown.len();
    let note = format!(
        "{shown}\n\n[Message cut here: {rest} more bytes. The whole text is kept with this \
         message as the attachment {WHOLE_TEXT_NAME}.]"
    );
    use base64::Engine as _;
    let whole = Attachment {
        name: WHOLE_TEXT_NAME.into(),
        content_type: "text/plain; charset=utf-8".into(),
        size: text.len() as u64,
        data_base64: base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
    };
    (note, Some(whole))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_and_kept_whole() {
        let long = "é".repeat(MAX_TEXT_TO_AGENTS);
        let (shown, whole) = cut_for_agents(&long);
        assert!(shown.len() <= MAX_TEXT_TO_AGENTS);
        assert!(shown.contains(WHOLE_TEXT_NAME));
        let whole = whole.expect("kept");
        assert_eq!(whole.size, long.len() as u64);
        let (short, none) = cut_for_agents("bonjour");
        assert_eq!(short, "bonjour");
        assert!(none.is_none());
    }

    #[test]
    fn references_round_trip_through_subjects() {
        let id = InteractionId(ulid::Ulid::new());
        let r = reference(id);
        assert_eq!(r, id.reference().to_string());
        let tag = Some(SubjectTag::Reference(id.reference()));
        assert_eq!(reference_in(&format!("Re: [#{r}] Mon dossier")), tag);
        assert_eq!(reference_in(&format!("[#{}]", r.to_lowercase())), tag);
        // Mail sent by earlier versions carried the id's first 12 characters.
        let old = id.to_string()[..12].to_owned();
        assert_eq!(
            reference_in(&format!("Re: [#{old}] Mon dossier")),
            Some(SubjectTag::IdPrefix(old))
        );
        assert_eq!(reference_in("[#short] [#] hello"), None);
    }
}
