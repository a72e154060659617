//! The contact's recent history attached to each offer.
//!
//! Reading SQLite for every offer costs more than routing it, so recent histories are kept in
//! memory: a contact's history is read from the journal the first time one of its interactions
//! is offered, and from then on kept up to date from the engine's committed events (creation,
//! completion, end). Updates are keyed by interaction id, so an event seen both in the journal
//! read and in the event stream is applied once. The map is bounded ([`MAX_CONTACTS`]); when it
//! is full it starts over, and histories are read from the journal again as needed.
//!
//! A contact seen for the first time needs no read at all: at start the set of contacts with
//! interactions in the journal is read once (if there are at most [`MAX_JOURNAL_CONTACTS`]), and
//! kept up to date from creations; a creation for a contact outside it starts that contact's
//! history in memory, complete. After the event stream lagged, or beyond that many contacts,
//! every new contact's history is read from the journal again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::core::{ContactId, EndReason, EventKind, InteractionId, Timestamp};
use crate::engine::{run_view, Engine, View, ViewBatch, ViewFailed};
use crate::store::{HistoryEntry, StoreHandle};

use super::convert::{channel_pb, ms};
use super::proto as pb;

/// How many past interactions an offer carries.
pub const HISTORY_LIMIT: usize = 10;

/// Contacts whose history is kept in memory at most.
pub const MAX_CONTACTS: usize = 200_000;

/// Contacts known to have interactions in the journal, kept in memory at most; beyond, the
/// set is dropped and a new contact's history is read from the journal.
pub const MAX_JOURNAL_CONTACTS: usize = 1_000_000;

#[derive(Default)]
struct Recent {
    /// Contacts whose history was read from the journal, newest first (at most
    /// `HISTORY_LIMIT + 1`, so that one can be left out of an offer).
    contacts: HashMap<ContactId, Vec<HistoryEntry>>,
    /// The contact of each interaction created since start, until it ends.
    open: HashMap<InteractionId, ContactId>,
    /// Contacts whose history is being read from the journal, and whether an event concerned
    /// them meanwhile (then the read may predate it, and it is not kept).
    loading: HashMap<ContactId, bool>,
    /// Every contact that may have interactions in the journal: read at start, then added to
    /// at each creation. `None`: not known (not read yet, too many, or events were missed).
    in_journal: Option<HashSet<ContactId>>,
}

impl Recent {
    fn entry(&mut self, id: &InteractionId) -> Option<&mut HistoryEntry> {
        let contact = self.open.get(id)?;
        if let Some(stale) = self.loading.get_mut(contact) {
            *stale = true;
        }
        self.contacts
            .get_mut(contact)?
            .iter_mut()
            .find(|e| e.interaction == *id)
    }

    fn apply(&mut self, kind: &EventKind, at: Timestamp) {
        match kind {
            EventKind::InteractionCreated { spec, .. } => {
                let Some(contact) = &spec.contact else { return };
                self.open.insert(spec.id, contact.clone());
                if let Some(stale) = self.loading.get_mut(contact) {
                    *stale = true;
                }
                let entry = HistoryEntry {
                    interaction: spec.id,
                    channel: spec.channel,
                    queue: spec.queue.clone(),
                    created_at: at,
                    outcome: "open",
                    agent: None,
                    wrap_up_code: None,
                    notes: None,
                    ended_at: None,
                };
                if let Some(list) = self.contacts.get_mut(contact) {
                    if !list.iter().any(|e| e.interaction == spec.id) {
                        list.insert(0, entry);
                        list.truncate(HISTORY_LIMIT + 1);
                    }
                } else if let Some(known) = self.in_journal.as_mut() {
                    if !known.contains(contact) {
                        // Its first interaction: this is its whole history.
                        if self.contacts.len() >= MAX_CONTACTS {
                            self.contacts.clear();
                        }
                        self.contacts.insert(contact.clone(), vec![entry]);
                    }
                }
                if let Some(known) = self.in_journal.as_mut() {
                    known.insert(contact.clone());
                    if known.len() > MAX_JOURNAL_CONTACTS {
                        self.in_journal = None;
                    }
                }
            }
            EventKind::InteractionCompleted {
                interaction,
                agent,
                wrap_up_code,
                notes,
                wrap_up_until,
            } => {
                if let Some(e) = self.entry(interaction) {
                    e.outcome = "completed";
                    e.agent = Some(agent.clone());
                    e.wrap_up_code = wrap_up_code.clone();
                    e.notes = notes.clone();
                    e.ended_at = Some(at);
                }
                if wrap_up_until.is_none() {
                    self.open.remove(interaction);
                }
            }
            EventKind::InteractionEnded {
                interaction,
                reason,
            } => {
                if let Some(e) = self.entry(interaction) {
                    if e.outcome == "open" {
                        e.outcome = match reason {
                            EndReason::Abandoned => "abandoned",
                            _ => "cancelled",
                        };
                        e.ended_at = Some(at);
                    }
                }
                self.open.remove(interaction);
            }
            EventKind::WrapUpEnded {
                interaction,
                agent,
                wrap_up_code,
                notes,
            } => {
                if wrap_up_code.is_some() || notes.is_some() {
                    if let Some(e) = self.entry(interaction) {
                        e.agent = Some(agent.clone());
                        if wrap_up_code.is_some() {
                            e.wrap_up_code = wrap_up_code.clone();
                        }
                        if notes.is_some() {
                            e.notes = notes.clone();
                        }
                    }
                }
                self.open.remove(interaction);
            }
            _ => {}
        }
    }
}

/// Contacts' recent histories.
#[derive(Clone)]
pub struct History {
    store: StoreHandle,
    recent: Arc<Mutex<Recent>>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History").finish_non_exhaustive()
    }
}

impl History {
    /// Histories from `engine`'s journal, kept up to date from its committed events.
    pub fn start(engine: &Engine) -> Self {
        let history = History {
            store: engine.store().clone(),
            recent: Arc::new(Mutex::new(Recent::default())),
        };
        let task = history.clone();
        let engine = engine.clone();
        tokio::spawn(async move {
            let read = task
                .store
                .run(move |store| {
                    let after = store.last_committed_seq()?;
                    Ok::<_, crate::store::StoreError>((
                        after,
                        store.journal_contacts(MAX_JOURNAL_CONTACTS)?,
                    ))
                })
                .await;
            // Events after `after` are followed (a contact committed since is either in the
            // set or among them).
            let after = match read {
                Ok((after, known)) => {
                    task.lock().in_journal = known;
                    after
                }
                Err(e) => {
                    tracing::warn!(error = %e, "journal contacts unavailable");
                    engine.store().last_committed_seq().unwrap_or(0)
                }
            };
            run_view(&engine, Follower { history: task }, after)
                .finished()
                .await;
        });
        history
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets a contact (after its erasure).
    pub fn forget(&self, contact: &ContactId) {
        let mut recent = self.lock();
        recent.contacts.remove(contact);
        recent.loading.remove(contact);
        recent.open.retain(|_, c| c != contact);
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
        let cached = {
            let mut recent = self.lock();
            let cached = recent.contacts.get(&contact).cloned();
            if cached.is_none() {
                recent.loading.entry(contact.clone()).or_insert(false);
            }
            cached
        };
        let entries = match cached {
            Some(entries) => entries,
            None => {
                let who = contact.clone();
                let read = self
                    .store
                    .run(move |store| store.contact_history(&who, HISTORY_LIMIT + 1))
                    .await;
                match read {
                    Ok(entries) => {
                        let mut recent = self.lock();
                        if recent.loading.remove(&contact).unwrap_or(true) {
                            // An event about this contact came while reading: the read may
                            // miss it. Use it this time; read again next time.
                            entries
                        } else {
                            if recent.contacts.len() >= MAX_CONTACTS {
                                recent.contacts.clear();
                            }
                            // From now on the event task keeps it up to date.
                            recent.contacts.entry(contact).or_insert(entries).clone()
                        }
                    }
                    Err(e) => {
                        self.lock().loading.remove(&contact);
                        tracing::warn!(error = %e, interaction_id = %except, "contact history unavailable");
                        return Vec::new();
                    }
                }
            }
        };
        entries
            .into_iter()
            .filter(|e| e.interaction != except)
            .take(HISTORY_LIMIT)
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
            .collect()
    }
}

/// The histories, as a view of committed events.
struct Follower {
    history: History,
}

impl View for Follower {
    fn name(&self) -> &'static str {
        "history"
    }

    async fn apply(&mut self, batch: ViewBatch) -> Result<(), ViewFailed> {
        let mut recent = self.history.lock();
        for event in &batch.events {
            recent.apply(&event.kind, event.at);
        }
        Ok(())
    }

    async fn rebuild(&mut self, _engine: &Engine, seq: u64) -> Result<u64, ViewFailed> {
        // The journal lost events this view missed: the histories kept may lack them, so they
        // are forgotten (read again from the journal when next needed), the contacts the
        // journal knows are read again, as at start, and the events it still holds follow.
        let known = self
            .history
            .store
            .run(move |store| store.journal_contacts(MAX_JOURNAL_CONTACTS))
            .await?;
        let mut recent = self.history.lock();
        recent.contacts.clear();
        recent.open.clear();
        for stale in recent.loading.values_mut() {
            *stale = true;
        }
        recent.in_journal = known;
        Ok(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Channel, InteractionSpec};

    fn created(recent: &mut Recent, contact: &str, at: u64) -> InteractionId {
        let id = InteractionId::generate();
        let mut spec = InteractionSpec::new(id, Channel::Chat, "general");
        spec.contact = Some(ContactId::new(contact));
        recent.apply(
            &EventKind::InteractionCreated {
                spec: Arc::new(spec),
                priority: 0,
                sla_deadline: Timestamp(at + 60_000),
            },
            Timestamp(at),
        );
        id
    }

    /// A contact absent from the journal starts its history in memory at its first creation;
    /// one with journal rows, or any after events were missed, is left to a journal read.
    #[test]
    fn only_contacts_known_to_be_new_start_in_memory() {
        let mut recent = Recent {
            in_journal: Some(HashSet::from([ContactId::new("old")])),
            ..Recent::default()
        };
        let first = created(&mut recent, "new", 1_000);
        let second = created(&mut recent, "new", 2_000);
        let listed: Vec<InteractionId> = recent.contacts[&ContactId::new("new")]
            .iter()
            .map(|e| e.interaction)
            .collect();
        assert_eq!(listed, [second, first]);
        created(&mut recent, "old", 3_000);
        assert!(!recent.contacts.contains_key(&ContactId::new("old")));

        // Unknown set (not read, too many contacts, or a lag): nothing is assumed.
        recent.in_journal = None;
        created(&mut recent, "other", 4_000);
        assert!(!recent.contacts.contains_key(&ContactId::new("other")));
    }
}
