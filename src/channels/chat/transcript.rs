//! The chat transcript: the conversation as plain text, in the visitor's language, committed as
//! an outbound message with `meta.deliver_via = "email"` so that the notify module mails it.

use std::collections::HashMap;

use crate::core::{AgentId, InteractionId, Message, MessageDirection};
use crate::engine::{Engine, EngineError};
use crate::store::{ConversationEntry, StoreError};

use super::Language;

/// A transcript to commit: who asked for it.
#[derive(Debug, Clone)]
pub(super) struct TranscriptJob {
    /// The address it goes to.
    pub to: String,
    /// The visitor's name.
    pub visitor: String,
    /// The visitor's language.
    pub language: Language,
}

/// Whether a message is a copy sent by email (a transcript), not a chat line.
pub(super) fn is_email_copy(m: &Message) -> bool {
    m.meta.get("deliver_via").is_some_and(|v| v == "email")
}

/// The interaction's messages, oldest first.
pub(super) async fn read(
    engine: &Engine,
    interaction: InteractionId,
) -> Result<Vec<ConversationEntry>, StoreError> {
    engine
        .store()
        .run(move |s| s.conversation(interaction))
        .await
}

/// The display names of the agents who wrote in a conversation.
pub(super) async fn agent_names(
    engine: &Engine,
    entries: &[ConversationEntry],
) -> HashMap<AgentId, String> {
    let agents = super::hub::agents_of(entries);
    if agents.is_empty() {
        return HashMap::new();
    }
    engine
        .read(move |r| {
            agents
                .into_iter()
                .filter_map(|a| {
                    let name = r.agent(&a)?.config.name;
                    (!name.trim().is_empty()).then_some((a, name))
                })
                .collect()
        })
        .await
        .unwrap_or_default()
}

/// How an outbound line's writer is shown: the agent's name, its id, or "Guichet".
pub(super) fn agent_label(names: &HashMap<AgentId, String>, m: &Message) -> String {
    match &m.agent {
        Some(a) => names.get(a).cloned().unwrap_or_else(|| a.to_string()),
        None => "Guichet".into(),
    }
}

/// The subject and text of a transcript.
pub(super) fn render(
    job: &TranscriptJob,
    interaction: InteractionId,
    entries: &[ConversationEntry],
    names: &HashMap<AgentId, String>,
) -> (String, String) {
    // The short reference the visitor was shown in the chat, not the interaction id.
    let interaction = interaction.reference();
    let (subject, intro, empty) = match job.language {
        Language::Fr => (
            format!("Transcription de votre discussion (référence {interaction})"),
            format!(
                "Bonjour {},\n\nVoici la transcription de votre discussion avec nos services \
                 (référence {interaction}). Heures en UTC.\n",
                job.visitor
            ),
            "(aucun message)",
        ),
        Language::En => (
            format!("Transcript of your chat (reference {interaction})"),
            format!(
                "Hello {},\n\nHere is the transcript of your chat with our services \
                 (reference {interaction}). Times are UTC.\n",
                job.visitor
            ),
            "(no messages)",
        ),
    };
    let mut text = intro;
    let lines: Vec<&ConversationEntry> = entries
        .iter()
        .filter(|e| !is_email_copy(&e.message))
        .collect();
    if lines.is_empty() {
        text.push('\n');
        text.push_str(empty);
        text.push('\n');
    }
    for e in lines {
        let m = &e.message;
        let who = match m.direction {
            MessageDirection::Inbound => m.from.clone(),
            MessageDirection::Outbound => agent_label(names, m),
        };
        let when = chrono::DateTime::from_timestamp_millis(e.at.0 as i64)
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        text.push_str(&format!("\n[{when}] {who}:\n"));
        for line in m.text.lines() {
            text.push_str("  ");
            text.push_str(line);
            text.push('\n');
        }
    }
    (subject, text)
}

/// Commits the transcript of `interaction` for `job` (the interaction must still be open,
/// wrap-up included).
pub(super) async fn commit(
    engine: &Engine,
    interaction: InteractionId,
    job: TranscriptJob,
) -> Result<(), EngineError> {
    let entries = read(engine, interaction).await?;
    let names = agent_names(engine, &entries).await;
    let (subject, text) = render(&job, interaction, &entries, &names);
    let mut message = Message::new(
        format!("chat:{}", ulid::Ulid::new()),
        MessageDirection::Outbound,
        text,
    );
    message.to = job.to.clone();
    message.subject = Some(subject);
    message.meta.insert("deliver_via".into(), "email".into());
    message.meta.insert("kind".into(), "chat_transcript".into());
    message
        .meta
        .insert("language".into(), job.language.as_str().into());
    // A follow-up: accepted even once the interaction has closed.
    engine.follow_up(interaction, message).await?;
    tracing::info!(interaction_id = %interaction, "chat transcript stored for email delivery");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Timestamp;
    use std::sync::Arc;

    #[test]
    fn transcript_lists_lines_in_the_visitors_language() {
        let id = InteractionId::generate();
        let mut visitor = Message::new(
            "chat:1",
            MessageDirection::Inbound,
            "Bonjour\nj'ai une question",
        );
        visitor.from = "Ana".into();
        let mut agent = Message::new("chat:2", MessageDirection::Outbound, "Je vous écoute");
        agent.agent = Some(AgentId::new("amelie"));
        let entries = vec![
            ConversationEntry {
                seq: 1,
                at: Timestamp(0),
                message: Arc::new(visitor),
            },
            ConversationEntry {
                seq: 2,
                at: Timestamp(60_000),
                message: Arc::new(agent),
            },
        ];
        let names = HashMap::from([(AgentId::new("amelie"), "Amélie Martin".to_owned())]);
        let job = TranscriptJob {
            to: "ana@example.org".into(),
            visitor: "Ana".into(),
            language: Language::Fr,
        };
        let (subject, text) = render(&job, id, &entries, &names);
        assert!(subject.starts_with("Transcription"));
        assert!(text.contains("[1970-01-01 00:00] Ana:\n  Bonjour\n  j'ai une question\n"));
        assert!(text.contains("[1970-01-01 00:01] Amélie Martin:\n  Je vous écoute\n"));
    }
}
