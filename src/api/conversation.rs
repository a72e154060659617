//! Conversations over gRPC: the protobuf form of messages, reading an interaction's messages
//! from the store, and composing an agent's reply so that it threads under the contact's last
//! message whatever the channel.

use std::sync::Arc;

use tonic::Status;

use crate::core::{
    AgentId, Channel, InteractionId, InteractionSpec, Message, MessageDirection, Timestamp,
};
use crate::engine::Engine;
use crate::http::attachments::AttachmentLinks;
use crate::store::ConversationEntry;

use super::convert::{self, ms};
use super::proto as pb;

/// The longest text an agent may send in one message.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;

/// The protobuf form of one message; with `links`, each attachment that can be downloaded
/// carries a fresh signed link.
pub fn message_pb(
    interaction: InteractionId,
    at: Timestamp,
    m: &Message,
    links: Option<&AttachmentLinks>,
) -> pb::ConversationMessage {
    let mut out = message_pb_bare(interaction, at, m);
    if let Some(links) = links {
        for (i, info) in out.attachments.iter_mut().enumerate() {
            if crate::http::attachments::source(m, i).is_some() {
                let link = links.link_now(interaction, &m.id, i);
                info.url = link.url;
                info.url_expires_unix_ms = (link.expires as i64).saturating_mul(1000);
            }
        }
    }
    out
}

fn message_pb_bare(
    interaction: InteractionId,
    at: Timestamp,
    m: &Message,
) -> pb::ConversationMessage {
    pb::ConversationMessage {
        id: m.id.clone(),
        interaction_id: interaction.to_string(),
        direction: m.direction.as_str().to_owned(),
        from: m.from.clone(),
        to: m.to.clone(),
        agent: m
            .agent
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        subject: m.subject.clone().unwrap_or_default(),
        text: m.text.clone(),
        attachments: m
            .attachments
            .iter()
            .map(|a| pb::AttachmentInfo {
                name: a.name.clone(),
                content_type: a.content_type.clone(),
                size: a.size,
                stored: !a.data_base64.is_empty(),
                ..Default::default()
            })
            .collect(),
        at_unix_ms: ms(at),
        meta: m
            .meta
            .iter()
            .filter(|(k, _)| k.as_str() != "html")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// The interaction's messages as committed, oldest first (read off the async threads).
pub async fn read(
    engine: &Engine,
    interaction: InteractionId,
) -> Result<Vec<ConversationEntry>, Status> {
    engine
        .store()
        .run(move |s| s.conversation(interaction))
        .await
        .map_err(Status::from)
}

/// The protobuf form of an interaction's conversation (for a call, its voicemail if it has one).
pub async fn load(
    engine: &Engine,
    interaction: InteractionId,
    links: Option<&AttachmentLinks>,
) -> Result<Vec<pb::ConversationMessage>, Status> {
    Ok(read(engine, interaction)
        .await?
        .iter()
        .map(|e| message_pb(interaction, e.at, &e.message, links))
        .collect())
}

/// [`load`] for an offer: calls have no conversation and are not read, except voicemails
/// (whose recording is their one message).
pub async fn load_for(
    engine: &Engine,
    spec: &InteractionSpec,
    links: Option<&AttachmentLinks>,
) -> Result<Vec<pb::ConversationMessage>, Status> {
    if spec.channel == Channel::Voice && spec.attributes.get("voicemail").is_none() {
        return Ok(Vec::new());
    }
    load(engine, spec.id, links).await
}

/// An agent's reply on `channel`, addressed to the contact's last message: sent to its sender
/// from the address it was sent to; for email, with the subject ("Re: " + the contact's, unless
/// given) and the `in_reply_to` / `references` that let the contact's mail client thread it.
pub fn compose_reply(
    channel: Channel,
    agent: &AgentId,
    conversation: &[ConversationEntry],
    text: &str,
    subject: &str,
) -> Result<Message, Status> {
    if channel == Channel::Voice {
        return Err(Status::failed_precondition(
            "calls have no conversation to write in: speak to the caller",
        ));
    }
    let text = text.trim_end();
    if text.trim().is_empty() {
        return Err(convert::invalid("text is empty: write the message to send"));
    }
    if text.len() > MAX_REPLY_BYTES {
        return Err(convert::invalid(format!(
            "text is longer than {} KiB: shorten it or split it",
            MAX_REPLY_BYTES / 1024
        )));
    }
    let last_inbound = conversation
        .iter()
        .rev()
        .find(|e| e.message.direction == MessageDirection::Inbound)
        .map(|e| Arc::clone(&e.message));
    let Some(last) = last_inbound else {
        return Err(Status::failed_precondition(
            "the contact has not written in this interaction: there is no address to answer",
        ));
    };
    let mut reply = Message::new(
        format!("{channel}:{}", ulid::Ulid::new()),
        MessageDirection::Outbound,
        text,
    );
    reply.from = last.to.clone();
    reply.to = last.from.clone();
    reply.agent = Some(agent.clone());
    if channel == Channel::Email {
        let subject = subject.trim();
        reply.subject = Some(if subject.is_empty() {
            match last.subject.as_deref() {
                Some(s) if s.to_ascii_lowercase().starts_with("re:") => s.to_owned(),
                Some(s) => format!("Re: {s}"),
                None => "Re:".to_owned(),
            }
        } else {
            subject.to_owned()
        });
        if let Some(mid) = last.meta.get("message_id") {
            let mut references = last.meta.get("references").cloned().unwrap_or_default();
            if !references.is_empty() {
                references.push(' ');
            }
            references.push_str(mid);
            reply.meta.insert("in_reply_to".into(), mid.clone());
            reply.meta.insert("references".into(), references);
        }
    }
    Ok(reply)
}
