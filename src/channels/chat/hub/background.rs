//! The hub's own background work: telling waiting visitors their place in line and expected
//! wait, and ending the chats a previous run left open.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::core::{Channel, InteractionId, InteractionPhase, QueueId};

use super::super::protocol::ServerFrame;
use super::{end_interaction, ChatHub};

/// How often, at most, waiting visitors are told their place in line.
const POSITION_EVERY: Duration = Duration::from_secs(2);

impl ChatHub {
    /// Tells waiting visitors their place in line and expected wait when either changed,
    /// at most every [`POSITION_EVERY`]. Runs until the engine stops.
    pub(super) async fn tell_positions(&self) {
        let mut ticks = tokio::time::interval(POSITION_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if self.inner.engine.is_stopped() {
                return;
            }
            if !self.inner.positions_dirty.swap(false, Ordering::Relaxed) {
                continue;
            }
            let waiting: Vec<(String, InteractionId)> = {
                let state = self.lock();
                state
                    .sessions
                    .iter()
                    .filter(|(_, s)| s.socket.is_some() && s.agent_name.is_none())
                    .filter_map(|(k, s)| s.interaction.map(|i| (k.clone(), i)))
                    .collect()
            };
            if waiting.is_empty() {
                continue;
            }
            let ids: Vec<InteractionId> = waiting.iter().map(|(_, i)| *i).collect();
            let places = self
                .inner
                .engine
                .read(move |r| {
                    let mut lines: HashMap<QueueId, Vec<InteractionId>> = HashMap::new();
                    ids.iter()
                        .map(|id| {
                            let v = r.interaction(id)?;
                            if !matches!(v.phase, InteractionPhase::Waiting) {
                                return None;
                            }
                            let line = lines
                                .entry(v.queue.clone())
                                .or_insert_with(|| r.waiting_in_queue(&v.queue));
                            let position = line.iter().position(|i| i == id)? + 1;
                            Some((v.queue, position))
                        })
                        .collect::<Vec<_>>()
                })
                .await;
            let Ok(places) = places else {
                continue;
            };
            let mut state = self.lock();
            for ((session, _), place) in waiting.into_iter().zip(places) {
                let Some((queue, position)) = place else {
                    continue;
                };
                let wait = self
                    .inner
                    .engine
                    .expected_wait_ms(&queue, position)
                    .map(|ms| ms.div_ceil(1000));
                if let Some(s) = state.sessions.get_mut(&session) {
                    if s.last_position != Some((position, wait)) {
                        s.last_position = Some((position, wait));
                        s.send(ServerFrame::Position {
                            position,
                            expected_wait_secs: wait,
                        });
                    }
                }
            }
        }
    }

    /// Open chat interactions without a session (left by a previous run): ended after the
    /// grace period, as if their visitors had just disconnected.
    pub(super) async fn end_orphans(&self) {
        let orphans = self
            .inner
            .engine
            .read(|r| {
                r.interactions()
                    .into_iter()
                    .filter(|v| v.spec.channel == Channel::Chat)
                    .filter(|v| {
                        v.spec
                            .external_ref
                            .as_deref()
                            .is_some_and(|r| r.starts_with("chat:"))
                    })
                    .filter(|v| !matches!(v.phase, InteractionPhase::WrapUp { .. }))
                    .map(|v| v.spec.id)
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
        if orphans.is_empty() {
            return;
        }
        tracing::info!(
            count = orphans.len(),
            "open chats from before the restart end after the grace period"
        );
        let engine = self.inner.engine.clone();
        let grace = Duration::from_secs(self.inner.config.grace_secs);
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            for id in orphans {
                end_interaction(&engine, id).await;
            }
        });
    }
}
