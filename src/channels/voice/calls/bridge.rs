//! Bridging: following the engine's committed events, a call whose interaction an agent
//! accepted is connected to the agent's device (live call update, or the next hold poll), a
//! caller who asked for a callback is called back; the dial (or conference room) a connected
//! call is answered with, and the hang-up pushed from the desktop.

use super::*;

impl Calls {
    /// The caller's way into the warm transfer's room: the room closes when the caller
    /// leaves it, and its end is posted to `dial` (the call then ends).
    pub(super) fn room_verbs(&self, call: &Call, interaction: InteractionId) -> Vec<Verb> {
        vec![Verb::Conference {
            room: crate::channels::voice::conference::room(interaction),
            end_on_exit: true,
            action_url: Some(self.url(call, "dial")),
        }]
    }

    pub(super) fn dial_verbs(&self, call: &Call, device: &str) -> Vec<Verb> {
        vec![Verb::Dial {
            targets: vec![DialTarget::from_address(device)],
            caller_id: (!call.from.is_empty()).then(|| call.from.clone()),
            timeout_secs: 30,
            action_url: Some(self.url(call, "dial")),
            answer_on_bridge: true,
        }]
    }

    /// Hangs up the live call of `interaction` through its gateway's REST API, for an agent
    /// who completes it from the desktop: `Ok(true)` once the gateway took the request,
    /// `Ok(false)` when no call of it is connected to an agent (it has ended already), the
    /// gateway's refusal or [`OutboundError::NotConfigured`] otherwise. The gateway's status
    /// callback then ends the call as for any hang-up.
    pub async fn hang_up(&self, interaction: InteractionId) -> Result<bool, OutboundError> {
        let Some(k) = self
            .inner
            .by_interaction
            .get(&interaction)
            .map(|k| k.clone())
        else {
            return Ok(false);
        };
        let Some(entry) = self.call(&k) else {
            return Ok(false);
        };
        let (gateway, sid) = {
            let call = entry.lock().await;
            match call.phase {
                Phase::Connecting { .. } | Phase::Bridged { .. } | Phase::Conferenced { .. } => {
                    (call.gateway, call.sid.clone())
                }
                _ => return Ok(false),
            }
        };
        self.inner.outbound.hang_up(gateway, &sid).await?;
        tracing::info!(call_sid = %sid, interaction_id = %interaction, "call hung up from the desktop");
        Ok(true)
    }

    /// Reacts to committed events: an accepted voice offer bridges its call (the expected wait
    /// announced on hold is the engine's, [`Engine::expected_wait_ms`]). Runs until the engine
    /// stops.
    pub async fn follow_events(self) {
        let engine = self.inner.engine.clone();
        let inbox = self
            .inner
            .consult_inbox
            .lock()
            .ok()
            .and_then(|mut inbox| inbox.take());
        if let Some(inbox) = inbox {
            tokio::spawn(self.clone().run_consult_worker(inbox));
        }
        let after = engine.store().last_committed_seq().unwrap_or(0);
        run_view(&engine, Follower { calls: self }, after)
            .finished()
            .await;
    }

    /// What committed events mean for the calls.
    pub(super) fn on_events(&self, events: &[crate::core::Event]) {
        for event in events {
            if let Some(id) = event.kind.interaction() {
                if !matches!(event.kind, EventKind::MessageAdded { .. })
                    && self.inner.by_interaction.contains_key(&id)
                {
                    self.inner.changed.insert(id, ());
                }
            }
            if let EventKind::OfferAccepted { interaction, agent } = &event.kind {
                let Some(k) = self
                    .inner
                    .by_interaction
                    .get(interaction)
                    .map(|e| e.value().clone())
                else {
                    continue;
                };
                let this = self.clone();
                let (interaction, agent, at) = (*interaction, agent.clone(), event.at);
                tokio::spawn(async move { this.accepted(k, interaction, agent, at).await });
            }
            if let Some(step) = ConsultStep::from_event(&event.kind) {
                if self.inner.by_interaction.contains_key(&step.interaction())
                    && self.inner.consult_steps.try_send(step).is_err()
                {
                    tracing::error!(
                        "warm-transfer worker is {CONSULT_BACKLOG} events behind: a consultation's call was not updated"
                    );
                }
            }
        }
    }

    pub(super) async fn accepted(
        &self,
        k: String,
        interaction: InteractionId,
        agent: crate::core::AgentId,
        at: Timestamp,
    ) {
        let Some(entry) = self.call(&k) else {
            return;
        };
        let looked = {
            let agent = agent.clone();
            self.inner
                .engine
                .read(move |r| r.agent(&agent).and_then(|a| a.config.device))
                .await
        };
        let device = match looked {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(interaction_id = %interaction, "cannot read the agent's device: {e}");
                return;
            }
        };
        let Some(device) = device else {
            tracing::error!(interaction_id = %interaction, agent_id = %agent, "the agent has no device to bridge the call to: set one with AgentDesktop.SetDevice");
            return;
        };
        let mut call = entry.lock().await;
        match std::mem::replace(&mut call.phase, Phase::Ended) {
            Phase::Waiting { .. } => {
                call.phase = Phase::Connecting {
                    interaction,
                    device: device.clone(),
                    accepted_at: at,
                };
                // The push is for the next turn: a hold poll racing with it is then stale
                // only if the push wins, which `Connecting`/`Bridged` sorts out.
                let verbs = self.dial_verbs(&call, &device);
                let hook = self.url(&call, "continue");
                let (gateway, sid) = (call.gateway, call.sid.clone());
                let pushed = self
                    .inner
                    .outbound
                    .update_call(gateway, &sid, &verbs, &hook)
                    .await;
                match pushed {
                    Ok(()) if gateway != Gateway::Jambonz => {
                        call.phase = Phase::Bridged {
                            interaction,
                            device,
                        };
                        call.turn = call.turn.saturating_add(1);
                        call.last = verbs.into();
                        log_bridge(&call, interaction, at, "live update");
                    }
                    // jambonz fetches the hook: the dial is served (and timed) then.
                    Ok(()) => {}
                    Err(e) => tracing::warn!(
                        call_sid = %sid, interaction_id = %interaction,
                        "live call update failed, the next hold poll bridges instead: {e}"
                    ),
                }
            }
            Phase::CallbackRequested { .. } => {
                call.phase = Phase::Ended;
                let verbs = vec![Verb::Dial {
                    targets: vec![DialTarget::from_address(&device)],
                    caller_id: (!call.to.is_empty()).then(|| call.to.clone()),
                    timeout_secs: 30,
                    action_url: None,
                    answer_on_bridge: true,
                }];
                let hook = self.url(&call, "continue");
                let to = call.from.clone();
                let from = call.to.clone();
                match self
                    .inner
                    .outbound
                    .originate(call.gateway, &to, &from, &verbs, &hook)
                    .await
                {
                    Ok(()) => {
                        tracing::info!(interaction_id = %interaction, agent_id = %agent, to = %to, "calling the citizen back")
                    }
                    Err(e) => {
                        tracing::error!(interaction_id = %interaction, agent_id = %agent, "callback could not be placed: {e}")
                    }
                }
            }
            other => call.phase = other,
        }
    }
}

pub(super) fn log_bridge(
    call: &Call,
    interaction: InteractionId,
    accepted_at: Timestamp,
    via: &str,
) {
    let ms = now_ts().0.saturating_sub(accepted_at.0);
    tracing::info!(
        call_sid = %call.sid, interaction_id = %interaction, accept_to_bridge_ms = ms, via,
        "bridge instruction handed to the gateway"
    );
}

/// The calls, as a view of committed events.
struct Follower {
    calls: Calls,
}

impl View for Follower {
    fn name(&self) -> &'static str {
        "voice"
    }

    async fn apply(&mut self, batch: ViewBatch) -> Result<(), ViewFailed> {
        self.calls.on_events(&batch.events);
        Ok(())
    }

    async fn rebuild(&mut self, engine: &Engine, _seq: u64) -> Result<u64, ViewFailed> {
        // Events were purged before they were seen: every waiting call reads its interaction
        // again at its next poll.
        self.calls.inner.lag_epoch.fetch_add(1, Ordering::AcqRel);
        engine
            .store()
            .last_committed_seq()
            .map_err(ViewFailed::from)
    }
}
