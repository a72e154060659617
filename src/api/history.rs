//! The contact's recent history attached to each offer, read from the journal on a blocking
//! thread.

use std::sync::Arc;

use crate::core::{ContactId, InteractionId};
use crate::store::Store;

use super::convert::{channel_pb, ms};
use super::proto as pb;

/// How many past interactions an offer carries.
pub const HISTORY_LIMIT: usize = 10;

/// Reads contacts' histories from the store.
#[derive(Debug, Clone)]
pub struct History {
    store: Arc<Store>,
}

impl History {
    /// Histories from `store`'s journal.
    pub fn new(store: Arc<Store>) -> Self {
        History { store }
    }

    /// The contact's latest interactions but `except`, newest first. History is an aid, not the
    /// offer: if it cannot be read, the offer goes out without it and the error is logged.
    pub async fn of(
        &self,
        contact: Option<ContactId>,
        except: InteractionId,
    ) -> Vec<pb::HistoryEntry> {
        let Some(contact) = contact else {
            return Vec::new();
        };
        let store = Arc::clone(&self.store);
        let found = tokio::task::spawn_blocking(move || {
            store.contact_history(&contact, Some(except), HISTORY_LIMIT)
        })
        .await;
        match found {
            Ok(Ok(entries)) => entries
                .into_iter()
                .map(|e| pb::HistoryEntry {
                    interaction_id: e.interaction.to_string(),
                    channel: channel_pb(e.channel),
                    queue: e.queue.to_string(),
                    created_at_unix_ms: ms(e.created_at),
                    outcome: e.outcome.to_owned(),
                    agent: e.agent.map(|a| a.to_string()).unwrap_or_default(),
                    wrap_up_code: e.wrap_up_code.unwrap_or_default(),
                    notes: e.notes.unwrap_or_default(),
                    ended_at_unix_ms: e.ended_at.map_or(0, ms),
                })
                .collect(),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, interaction_id = %except, "contact history unavailable");
                Vec::new()
            }
            Err(e) => {
                tracing::warn!(error = %e, interaction_id = %except, "contact history task failed");
                Vec::new()
            }
        }
    }
}
