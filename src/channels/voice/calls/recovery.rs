//! Calls across restarts: the state of calls in a menu handed to the write-behind log
//! ([`SessionLog`]), and a request for a call the table does not know served from its open
//! interaction (queued calls), its saved IVR state (calls in a menu), or by starting its tree
//! again with an apology (state lost in a crash); admission of new calls into the table.

use super::*;

impl Calls {
    /// Hands the call's state to the write-behind log while it is in the IVR (or recording a
    /// voicemail), and removes it once the call left.
    pub(super) fn save(&self, call: &mut Call) {
        let phase = match &call.phase {
            Phase::Ivr(state) => SavedPhase::Ivr {
                state: state.clone(),
            },
            Phase::Recording { queue, context } => SavedPhase::Recording {
                queue: queue.clone(),
                context: context.clone(),
            },
            _ => {
                if call.saved {
                    self.inner.sessions.remove(&key(call.gateway, &call.sid));
                    call.saved = false;
                }
                return;
            }
        };
        let snapshot = Snapshot {
            gateway: call.gateway,
            from: call.from.clone(),
            to: call.to.clone(),
            turn: call.turn,
            last: Arc::clone(&call.last),
            phase,
        };
        self.inner
            .sessions
            .put(&key(call.gateway, &call.sid), snapshot);
        call.saved = true;
    }

    /// Picks up a call the table lost (a restart) from its saved IVR state, if it has one.
    pub(super) async fn restore(
        &self,
        gateway: Gateway,
        sid: &str,
    ) -> Result<Option<Arc<tokio::sync::Mutex<Call>>>, CallError> {
        let k = key(gateway, sid);
        let sessions = self.inner.sessions.clone();
        let lookup = k.clone();
        let saved = tokio::task::spawn_blocking(move || sessions.load(&lookup))
            .await
            .map_err(|e| CallError::Unavailable(format!("voice session lookup: {e}")))?
            .map_err(|e| CallError::Unavailable(format!("voice session lookup: {e}")))?;
        let Some(saved) = saved else {
            return Ok(None);
        };
        let phase = match saved.phase {
            SavedPhase::Ivr { state } => Phase::Ivr(state),
            SavedPhase::Recording { queue, context } => Phase::Recording { queue, context },
        };
        tracing::info!(
            call_sid = sid,
            turn = saved.turn,
            "call picked up from its saved IVR state"
        );
        let call = Call {
            gateway: saved.gateway,
            sid: sid.to_owned(),
            from: saved.from,
            to: saved.to,
            phase,
            turn: saved.turn,
            last: saved.last.into(),
            touched: Instant::now(),
            saved: true,
            checked: u64::MAX,
        };
        let entry = self
            .inner
            .calls
            .entry(k)
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(call)));
        Ok(Some(Arc::clone(entry.value())))
    }

    /// A menu answer or redirect for a call Guichet knows nothing of (its IVR state was lost
    /// in a crash): starts it again at the entry of the tree its number selects, after an
    /// apology in the tree's language. Without the dialled number, the call is unknown.
    pub(super) async fn restart(
        &self,
        gateway: Gateway,
        sid: &str,
        event: &CallEvent,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<(Answer, u32), CallError> {
        let to = match (event, to) {
            (CallEvent::Input(_) | CallEvent::Continue, Some(to)) if !to.is_empty() => to,
            _ => return Err(CallError::UnknownCall(sid.to_owned())),
        };
        let from = from.unwrap_or_default();
        let entry = self.admit(gateway, sid, from, to)?;
        let mut call = entry.lock().await;
        if call.turn > 0 {
            // A racing request of the same call restarted it first: the same answer.
            return Ok((call.last.clone(), call.turn));
        }
        tracing::warn!(
            call_sid = sid, gateway = gateway.name(), to = %to,
            "request for a call whose IVR state was lost (crash): restarting it at the tree's entry"
        );
        let incoming = CallEvent::Incoming {
            from: from.to_owned(),
            to: to.to_owned(),
        };
        let mut verbs = self.step(&mut call, incoming).await?;
        let language = match &call.phase {
            Phase::Ivr(state) => state.language.clone(),
            Phase::Waiting { language, .. } => language.clone(),
            Phase::Recording { context, .. } => context.language.clone(),
            _ => String::from("fr-FR"),
        };
        verbs.insert(0, Verb::say(lost_apology(&language), Some(&language)));
        Ok(self.next_turn(&mut call, verbs.into()))
    }

    /// Registers a new call (not yet answered).
    pub(super) fn admit(
        &self,
        gateway: Gateway,
        sid: &str,
        from: &str,
        to: &str,
    ) -> Result<Arc<tokio::sync::Mutex<Call>>, CallError> {
        if self.inner.calls.len() >= self.inner.config.max_calls {
            return Err(CallError::TooManyCalls);
        }
        let call = Call {
            gateway,
            sid: sid.to_owned(),
            from: crate::ivr::model::normalize_number(from),
            to: crate::ivr::model::normalize_number(to),
            phase: Phase::Ended,
            turn: 0,
            last: Arc::from([]),
            touched: Instant::now(),
            saved: false,
            checked: u64::MAX,
        };
        let entry = self
            .inner
            .calls
            .entry(key(gateway, sid))
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(call)));
        Ok(Arc::clone(entry.value()))
    }

    /// Picks up a call the table lost (a restart) from its open interaction, if it has one.
    pub(super) async fn recover(
        &self,
        gateway: Gateway,
        sid: &str,
    ) -> Result<Option<Arc<tokio::sync::Mutex<Call>>>, CallError> {
        let external = sid.to_owned();
        let found = self
            .inner
            .engine
            .read(move |r| {
                let id = r.find_by_external_ref(&external)?;
                let view = r.interaction(&id)?;
                let device = agent_device(r, &view.phase);
                Some((id, view, device))
            })
            .await
            .map_err(unavailable)?;
        let Some((id, view, device)) = found else {
            return Ok(None);
        };
        let from = view
            .spec
            .contact
            .as_ref()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default();
        let language = view
            .spec
            .attributes
            .get("language")
            .unwrap_or("fr-FR")
            .to_owned();
        let callback = view.spec.attributes.get("callback").is_some();
        let phase = match (&view.phase, device) {
            (InteractionPhase::Waiting | InteractionPhase::Offered { .. }, _) if callback => {
                Phase::CallbackRequested { interaction: id }
            }
            (InteractionPhase::Waiting | InteractionPhase::Offered { .. }, _) => Phase::Waiting {
                interaction: id,
                queue: view.queue.to_string(),
                language,
                announced_at: None,
            },
            (InteractionPhase::Assigned { .. }, Some(device)) => Phase::Connecting {
                interaction: id,
                device,
                accepted_at: now_ts(),
            },
            (_, device) => Phase::Bridged {
                interaction: id,
                device: device.unwrap_or_default(),
            },
        };
        tracing::info!(call_sid = sid, interaction_id = %id, "call picked up from its open interaction");
        let call = Call {
            gateway,
            sid: sid.to_owned(),
            from,
            to: String::new(),
            phase,
            turn: 0,
            last: Arc::from([]),
            touched: Instant::now(),
            saved: false,
            checked: u64::MAX,
        };
        self.inner.by_interaction.insert(id, key(gateway, sid));
        let entry = self
            .inner
            .calls
            .entry(key(gateway, sid))
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(call)));
        Ok(Some(Arc::clone(entry.value())))
    }
}
