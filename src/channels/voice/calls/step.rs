//! Stepping a call through its phases: what one neutral request means for a call where it
//! stands (IVR input, hold poll, dial ended, recording, hang-up...), the interpreter's steps
//! acted on (queueing creates the voice interaction), and the end of a call (abandoned or
//! completed).

use super::*;

impl Calls {
    pub(super) fn url(&self, call: &Call, step: &str) -> String {
        // The answer being built is for turn `call.turn + 1`: requests it leads to carry that.
        call.gateway
            .url(&self.inner.base, step, call.turn.saturating_add(1))
    }

    pub(super) async fn step(
        &self,
        call: &mut Call,
        event: CallEvent,
    ) -> Result<Vec<Verb>, CallError> {
        let now = now_ts();
        let phase = std::mem::replace(&mut call.phase, Phase::Ended);
        // The first request of a call picked up after a restart: carry on from its phase.
        let event = match (&phase, event) {
            (Phase::Ended, e) => e,
            (_, CallEvent::Incoming { .. }) => CallEvent::Continue,
            (_, e) => e,
        };
        match (phase, event) {
            (Phase::Ended, CallEvent::Incoming { from, to }) if call.turn == 0 => {
                let tree = self
                    .inner
                    .trees
                    .read(|r| r.tree_for_number(&to))
                    .map_err(|_| {
                        self.forget(call);
                        CallError::UnknownNumber(crate::ivr::model::normalize_number(&to))
                    })?;
                let (session, step) = CallSession::start(tree, &from, &to, chrono_now(now));
                tracing::info!(
                    call_sid = %call.sid, from = %call.from, to = %call.to,
                    tree = %session.state().tree_name, version = session.state().tree_version,
                    "incoming call"
                );
                self.apply(call, session, step).await
            }
            (Phase::Ivr(state), CallEvent::Input(input)) => {
                let tree = self
                    .inner
                    .trees
                    .read(|r| r.get(&state.tree_name, state.tree_version));
                let session = tree
                    .ok()
                    .and_then(|tree| CallSession::resume(tree, state).ok());
                let Some(mut session) = session else {
                    tracing::error!(call_sid = %call.sid, "the call's IVR version cannot be resumed");
                    return Ok(apology());
                };
                let step = session.input(input, chrono_now(now));
                self.apply(call, session, step).await
            }
            (
                Phase::Waiting {
                    interaction,
                    queue,
                    language,
                    announced_at,
                },
                CallEvent::Input(Input::Digits(d)),
            ) if !d.trim().is_empty()
                && d.trim() == self.inner.config.hold_for(&queue).callback_key =>
            {
                let _ = announced_at;
                call.phase = Phase::CallbackRequested { interaction };
                tracing::info!(call_sid = %call.sid, interaction_id = %interaction, "callback requested while waiting");
                Ok(vec![
                    Verb::say(callback_confirmation(&language), Some(&language)),
                    Verb::Hangup,
                ])
            }
            (
                Phase::Waiting {
                    interaction,
                    queue,
                    language,
                    announced_at,
                },
                CallEvent::Input(_) | CallEvent::Continue,
            ) => {
                self.hold(call, interaction, queue, language, announced_at)
                    .await
            }
            (
                Phase::Connecting {
                    interaction,
                    device,
                    accepted_at,
                },
                CallEvent::Input(_) | CallEvent::Continue,
            ) => {
                log_bridge(call, interaction, accepted_at, "poll");
                let verbs = self.dial_verbs(call, &device);
                call.phase = Phase::Bridged {
                    interaction,
                    device,
                };
                Ok(verbs)
            }
            (Phase::Recording { queue, context }, CallEvent::Recording(recording))
                if recording.streaming =>
            {
                // The audio is still arriving: its end files the voicemail.
                let language = context.language.clone();
                call.phase = Phase::Recording { queue, context };
                Ok(vec![
                    Verb::say(voicemail_thanks(&language), Some(&language)),
                    Verb::Hangup,
                ])
            }
            (Phase::Recording { queue, context }, CallEvent::Recording(mut recording)) => {
                let k = key(call.gateway, &call.sid);
                if recording.audio.is_none() {
                    recording.audio = self.inner.pending_audio.remove(&k).map(|(_, a)| a);
                }
                if let Some((_, text)) = self.inner.transcripts.remove(&k) {
                    recording.transcription.get_or_insert(text);
                }
                let mut attributes = vec![("voicemail".to_owned(), "true".to_owned())];
                if let Some(url) = &recording.url {
                    attributes.push(("recording_url".to_owned(), url.clone()));
                }
                let language = context.language.clone();
                let message = recording.message(call.gateway, &call.sid, &context);
                if let Err(e) = self
                    .create_with(call, &queue, &context, attributes, Some(message))
                    .await
                {
                    call.phase = Phase::Recording { queue, context };
                    return Err(e);
                }
                call.phase = Phase::VoicemailLeft {
                    language: language.clone(),
                };
                Ok(vec![
                    Verb::say(voicemail_thanks(&language), Some(&language)),
                    Verb::Hangup,
                ])
            }
            (Phase::VoicemailLeft { language }, CallEvent::Recording(_) | CallEvent::Continue) => {
                Ok(vec![
                    Verb::say(voicemail_thanks(&language), Some(&language)),
                    Verb::Hangup,
                ])
            }
            (Phase::Bridged { interaction, .. }, CallEvent::DialEnded) => {
                self.complete(call, interaction).await;
                Ok(vec![Verb::Hangup])
            }
            (
                Phase::Conferenced {
                    interaction,
                    joined: true,
                    ..
                },
                CallEvent::DialEnded,
            ) => {
                // The room closed: the agent holding the call (or the caller) left it.
                self.complete(call, interaction).await;
                Ok(vec![Verb::Hangup])
            }
            (
                Phase::Conferenced {
                    interaction,
                    holder_leg,
                    consulted_leg,
                    ..
                },
                CallEvent::DialEnded
                | CallEvent::Continue
                | CallEvent::Input(_)
                | CallEvent::Incoming { .. },
            ) => {
                // The first agent's leg moved to the room (or a request raced with that): the
                // caller joins it.
                let verbs = self.room_verbs(call, interaction);
                call.phase = Phase::Conferenced {
                    interaction,
                    holder_leg,
                    consulted_leg,
                    joined: true,
                };
                Ok(verbs)
            }
            (phase, CallEvent::Hangup) => {
                self.hung_up(call, phase).await;
                Ok(vec![Verb::Hangup])
            }
            (phase @ Phase::CallbackRequested { .. }, _) => {
                call.phase = phase;
                Ok(vec![Verb::Hangup])
            }
            (
                Phase::Bridged {
                    interaction,
                    device,
                },
                _,
            ) => {
                // A request that raced with the bridge: the same dial again.
                let verbs = self.dial_verbs(call, &device);
                call.phase = Phase::Bridged {
                    interaction,
                    device,
                };
                Ok(verbs)
            }
            (Phase::Ended, _) => Ok(vec![Verb::Hangup]),
            (phase, _) => {
                // A request that does not fit (for example a stale input after the IVR ended):
                // carry on from where the call is.
                call.phase = phase;
                Ok(call.last.to_vec())
            }
        }
    }

    /// Acts on an interpreter step.
    pub(super) async fn apply(
        &self,
        call: &mut Call,
        session: CallSession,
        step: Step,
    ) -> Result<Vec<Verb>, CallError> {
        let outcome = match step {
            Step::Prompt { .. } => {
                let verbs = step.to_verbs(&self.url(call, "input"));
                call.phase = Phase::Ivr(session.into_state());
                return Ok(verbs);
            }
            Step::Outcome(outcome) => outcome,
        };
        match &outcome {
            Outcome::Queue {
                queue,
                context,
                prompts,
            } => {
                let id = self.create(call, queue, context, Vec::new()).await?;
                call.phase = Phase::Waiting {
                    interaction: id,
                    queue: queue.clone(),
                    language: context.language.clone(),
                    announced_at: None,
                };
                let mut verbs: Vec<Verb> = prompts.iter().map(Verb::from_utterance).collect();
                verbs.push(Verb::Redirect {
                    url: self.url(call, "continue"),
                });
                Ok(verbs)
            }
            Outcome::Callback { queue, context, .. } => {
                let attributes = vec![("callback".to_owned(), context.caller.clone())];
                let id = self.create(call, queue, context, attributes).await?;
                call.phase = Phase::CallbackRequested { interaction: id };
                Ok(outcome_verbs(&outcome, ""))
            }
            Outcome::Voicemail { queue, context, .. } => {
                let mut verbs = outcome_verbs(&outcome, &self.url(call, "recording"));
                if let (Gateway::Jambonz, Some(jambonz)) =
                    (call.gateway, self.inner.config.jambonz.as_ref())
                {
                    for verb in &mut verbs {
                        if let Verb::Record {
                            stream_url,
                            stream_auth,
                            ..
                        } = verb
                        {
                            *stream_url = Some(crate::channels::voice::listen::stream_url(
                                &self.inner.base,
                                &call.sid,
                            ));
                            *stream_auth = Some(crate::channels::voice::listen::credentials(
                                jambonz.listen_key(),
                                &call.sid,
                            ));
                        }
                        if let Verb::Record { transcription, .. } = verb {
                            if jambonz.transcribe_voicemail {
                                *transcription = Some(crate::ivr::Transcription {
                                    hook: self.url(call, "transcription"),
                                    language: context.language.clone(),
                                });
                            }
                        }
                    }
                }
                call.phase = Phase::Recording {
                    queue: queue.clone(),
                    context: context.clone(),
                };
                Ok(verbs)
            }
            Outcome::Transfer { number, .. } => {
                tracing::info!(call_sid = %call.sid, to = %number, "call transferred by the IVR");
                call.phase = Phase::Ended;
                Ok(outcome_verbs(&outcome, &self.url(call, "dial")))
            }
            Outcome::Hangup { fault, .. } => {
                call.phase = Phase::Ended;
                if let Some(fault) = fault {
                    tracing::error!(call_sid = %call.sid, "IVR fault: {fault}");
                    return Ok(apology());
                }
                Ok(outcome_verbs(&outcome, ""))
            }
        }
    }

    /// Creates the call's voice interaction (idempotent on the call id) and indexes it.
    pub(super) async fn create(
        &self,
        call: &Call,
        queue: &str,
        context: &CallContext,
        extra: Vec<(String, String)>,
    ) -> Result<InteractionId, CallError> {
        self.create_with(call, queue, context, extra, None).await
    }

    /// [`Calls::create`], with a first inbound message committed together with the creation
    /// (a voicemail).
    pub(super) async fn create_with(
        &self,
        call: &Call,
        queue: &str,
        context: &CallContext,
        extra: Vec<(String, String)>,
        message: Option<Message>,
    ) -> Result<InteractionId, CallError> {
        let mut spec = InteractionSpec::new(InteractionId::generate(), Channel::Voice, queue);
        if !context.caller.is_empty() {
            spec.contact = Some(ContactId::new(&context.caller));
        }
        spec.requirements = context.requirements.clone();
        spec.priority = context.priority;
        let mut attributes = context.attributes.clone();
        attributes.insert("language".into(), context.language.clone());
        attributes.insert("caller".into(), context.caller.clone());
        attributes.insert("called".into(), context.called.clone());
        attributes.insert("gateway".into(), call.gateway.name().into());
        attributes.extend(extra);
        spec.attributes = attributes.into_iter().collect();
        spec.external_ref = Some(Arc::from(call.sid.as_str()));
        let external = call.sid.clone();
        let command = match message {
            Some(message) => Command::OpenConversation { spec, message },
            None => Command::CreateInteraction { spec },
        };
        let (_, id) = self
            .inner
            .engine
            .send_then_read(command, move |r| r.find_by_external_ref(&external))
            .await
            .map_err(|e| match e {
                EngineError::Route(e) => CallError::Refused(e.to_string()),
                other => unavailable(other),
            })?;
        let id = id.ok_or_else(|| {
            CallError::Refused("the interaction ended as soon as it was created".into())
        })?;
        self.inner
            .by_interaction
            .insert(id, key(call.gateway, &call.sid));
        tracing::info!(call_sid = %call.sid, interaction_id = %id, queue, "call queued");
        Ok(id)
    }

    /// The caller hung up (or the call failed) while in `phase`.
    pub(super) async fn hung_up(&self, call: &mut Call, phase: Phase) {
        match phase {
            Phase::Waiting { interaction, .. } => {
                let result = self
                    .inner
                    .engine
                    .send(Command::Abandon { interaction })
                    .await;
                match result {
                    Ok(_) => {
                        tracing::info!(call_sid = %call.sid, interaction_id = %interaction, "caller hung up while waiting: abandoned");
                        self.inner.by_interaction.remove(&interaction);
                    }
                    // Accepted just now: the call was answered after all.
                    Err(EngineError::Route(_)) => self.complete(call, interaction).await,
                    Err(e) => {
                        tracing::error!(call_sid = %call.sid, interaction_id = %interaction, "abandon failed: {e}");
                    }
                }
            }
            Phase::Connecting { interaction, .. }
            | Phase::Bridged { interaction, .. }
            | Phase::Conferenced { interaction, .. } => {
                self.complete(call, interaction).await;
            }
            Phase::CallbackRequested { interaction } => {
                // The interaction waits for its callback.
                call.phase = Phase::CallbackRequested { interaction };
                return;
            }
            Phase::Recording { queue, context } => {
                // The recording's own request may still come after the hang-up.
                call.phase = Phase::Recording { queue, context };
                return;
            }
            Phase::Ivr(_) | Phase::VoicemailLeft { .. } | Phase::Ended => {}
        }
        call.phase = Phase::Ended;
    }

    /// Completes an answered call's interaction (the agent goes to wrap-up).
    pub(super) async fn complete(&self, call: &mut Call, interaction: InteractionId) {
        let result = self
            .inner
            .engine
            .send(Command::Complete {
                interaction,
                agent: None,
                wrap_up_code: None,
                notes: None,
            })
            .await;
        match result {
            Ok(_) => {
                tracing::info!(call_sid = %call.sid, interaction_id = %interaction, "call ended after the agent answered: completed")
            }
            // Already completed by the agent from the desktop, or ended otherwise.
            Err(EngineError::Route(e)) => {
                tracing::debug!(call_sid = %call.sid, interaction_id = %interaction, "complete: {e}")
            }
            Err(e) => {
                tracing::error!(call_sid = %call.sid, interaction_id = %interaction, "complete failed: {e}")
            }
        }
        self.inner.by_interaction.remove(&interaction);
        call.phase = Phase::Ended;
    }
}
