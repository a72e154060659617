//! The hold loop: what a waiting caller hears at each poll (music or silence, its position and
//! expected wait announced every `announce_every_secs`, the callback key), reading the router
//! only when something happened to the interaction or an announcement is due.

use super::*;

impl Calls {
    /// One round of the hold loop: announcement when due, music or silence while listening
    /// for the callback key, then back here.
    pub(super) async fn hold(
        &self,
        call: &mut Call,
        interaction: InteractionId,
        queue: String,
        language: String,
        announced_at: Option<Instant>,
    ) -> Result<Vec<Verb>, CallError> {
        let hold = self.inner.config.hold_for(&queue);
        let due = hold.announce_every_secs > 0
            && announced_at.is_none_or(|t| {
                t.elapsed() >= Duration::from_secs(u64::from(hold.announce_every_secs))
            });
        // No trip to the router when nothing can have changed: no announcement due, no
        // committed event about the interaction since the last look (`follow_events` marks
        // them; an accept is pushed by `accepted`), and no event batch missed meanwhile.
        let epoch = self.inner.lag_epoch.load(Ordering::Acquire);
        let changed = self.inner.changed.remove(&interaction).is_some();
        if !due && !changed && call.checked == epoch {
            let verbs = self.hold_verbs(call, hold, None);
            call.phase = Phase::Waiting {
                interaction,
                queue,
                language,
                announced_at,
            };
            return Ok(verbs);
        }
        call.checked = epoch;
        let looked = self
            .inner
            .engine
            .read(move |r| {
                let view = r.interaction(&interaction)?;
                let device = agent_device(r, &view.phase);
                let position = if due && matches!(view.phase, InteractionPhase::Waiting) {
                    r.waiting_in_queue(&view.queue)
                        .iter()
                        .position(|i| *i == interaction)
                        .map(|p| p + 1)
                } else {
                    None
                };
                Some((view.phase, view.queue, device, position))
            })
            .await
            .map_err(unavailable)?;
        let Some((phase, current_queue, device, position)) = looked else {
            // Cancelled by a supervisor, or ended otherwise.
            call.phase = Phase::Ended;
            return Ok(vec![
                Verb::say(ended_message(&language), Some(&language)),
                Verb::Hangup,
            ]);
        };
        if let (InteractionPhase::Assigned { .. }, Some(device)) = (&phase, device.clone()) {
            log_bridge(call, interaction, now_ts(), "poll");
            let verbs = self.dial_verbs(call, &device);
            call.phase = Phase::Bridged {
                interaction,
                device,
            };
            return Ok(verbs);
        }
        let mut announced = announced_at;
        let said = position.map(|position| {
            let wait_ms = self.expected_wait_ms(current_queue.as_str(), position);
            announced = Some(Instant::now());
            Verb::say(
                announcement(&language, position, wait_ms, &hold.callback_key),
                Some(&language),
            )
        });
        let verbs = self.hold_verbs(call, hold, said);
        call.phase = Phase::Waiting {
            interaction,
            queue,
            language,
            announced_at: announced,
        };
        Ok(verbs)
    }

    /// The hold loop's answer: the announcement if any, music or silence while listening for
    /// the callback key, then back to `continue`.
    pub(super) fn hold_verbs(
        &self,
        call: &Call,
        hold: &HoldConfig,
        announcement: Option<Verb>,
    ) -> Vec<Verb> {
        let mut verbs = Vec::with_capacity(3);
        verbs.extend(announcement);
        let segment = match &hold.music_url {
            Some(url) => Verb::Play {
                url: url.clone(),
                loop_count: 1,
            },
            None => Verb::Pause {
                secs: hold.poll_secs,
            },
        };
        if hold.callback_key.is_empty() {
            verbs.push(segment);
        } else {
            verbs.push(Verb::Gather {
                action_url: self.url(call, "input"),
                num_digits: Some(1),
                finish_on_key: String::new(),
                timeout_secs: 1,
                speech: false,
                language: None,
                prompts: vec![segment],
            });
        }
        verbs.push(Verb::Redirect {
            url: self.url(call, "continue"),
        });
        verbs
    }

    /// The expected wait at `position` in `queue`, as every channel defines it
    /// ([`crate::core::Pace`]); `None` until two accepts were seen.
    pub(super) fn expected_wait_ms(&self, queue: &str, position: usize) -> Option<u64> {
        self.inner
            .engine
            .expected_wait_ms(&crate::core::QueueId::new(queue), position)
    }
}
