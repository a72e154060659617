//! Voicemail on the call's side: jambonz's audio stream of a voicemail being recorded (when its
//! listen may open, the stream's guard, the wait for its end), the audio and transcription
//! received, and filing the voicemail as an interaction once both are in.

use super::*;

impl Calls {
    /// The longest recording allowed to call `sid` of `gateway` if it is recording a
    /// voicemail now (its `listen` answer's `maxLength`), `None` otherwise.
    pub async fn listen_window(&self, gateway: Gateway, sid: &str) -> Option<u32> {
        let entry = self.call(&key(gateway, sid))?;
        let call = entry.lock().await;
        if !matches!(call.phase, Phase::Recording { .. }) {
            return None;
        }
        let asked = call.last.iter().find_map(|v| match v {
            Verb::Record {
                max_length_secs, ..
            } => Some(*max_length_secs),
            _ => None,
        });
        Some(asked.unwrap_or(crate::ivr::validate::MAX_RECORDING_SECS))
    }

    /// Marks call `sid`'s audio stream as started; `None` when one is already streaming.
    /// Dropping the guard marks it ended (after its voicemail was filed).
    pub fn stream_started(&self, gateway: Gateway, sid: &str) -> Option<StreamGuard> {
        let k = key(gateway, sid);
        match self.inner.streams.entry(k.clone()) {
            dashmap::Entry::Occupied(_) => None,
            dashmap::Entry::Vacant(slot) => {
                let (done, ended) = tokio::sync::watch::channel(false);
                slot.insert(ended);
                Some(StreamGuard {
                    calls: self.clone(),
                    key: k,
                    done,
                })
            }
        }
    }

    /// Waits up to `limit` for the audio stream of call key `k` to end; whether it is still
    /// streaming afterwards.
    pub(super) async fn wait_stream(&self, k: &str, limit: Duration) -> bool {
        let Some(mut ended) = self.inner.streams.get(k).map(|e| e.value().clone()) else {
            return false;
        };
        let finished = tokio::time::timeout(limit, ended.wait_for(|done| *done)).await;
        !matches!(finished, Ok(Ok(_)) | Ok(Err(_)))
    }

    /// Files the voicemail of call `sid` with the audio Guichet received; `Ok(false)` when the
    /// call is no longer recording one (unknown, or filed already). The call's turn does not
    /// change: the gateway's `actionHook` (which may come before or after) hears the thanks.
    pub async fn voicemail_audio(
        &self,
        gateway: Gateway,
        sid: &str,
        audio: RecordedAudio,
    ) -> Result<bool, CallError> {
        let Some(entry) = self.call(&key(gateway, sid)) else {
            return Ok(false);
        };
        let mut call = entry.lock().await;
        if !matches!(call.phase, Phase::Recording { .. }) {
            return Ok(false);
        }
        call.touched = Instant::now();
        let transcribing = gateway == Gateway::Jambonz
            && call.last.iter().any(|v| {
                matches!(
                    v,
                    Verb::Record {
                        transcription: Some(_),
                        ..
                    }
                )
            });
        if transcribing {
            // The final transcription comes after the audio: the actionHook files both, or
            // this timer files what is there.
            self.inner
                .pending_audio
                .insert(key(gateway, sid), Box::new(audio));
            let (this, sid) = (self.clone(), sid.to_owned());
            tokio::spawn(async move {
                tokio::time::sleep(TRANSCRIPT_WAIT).await;
                if let Err(e) = this.file_pending(gateway, &sid).await {
                    tracing::error!(call_sid = %sid, "voicemail not filed: {e}");
                }
            });
            return Ok(true);
        }
        let recording = Recording {
            audio: Some(Box::new(audio)),
            ..Recording::default()
        };
        self.step(&mut call, CallEvent::Recording(recording))
            .await?;
        self.save(&mut call);
        Ok(true)
    }

    /// Files the voicemail of call `sid` with the audio and transcription received so far, if
    /// it is still recording.
    pub(super) async fn file_pending(&self, gateway: Gateway, sid: &str) -> Result<(), CallError> {
        let Some(entry) = self.call(&key(gateway, sid)) else {
            self.inner.pending_audio.remove(&key(gateway, sid));
            return Ok(());
        };
        let mut call = entry.lock().await;
        if !matches!(call.phase, Phase::Recording { .. }) {
            return Ok(());
        }
        self.step(&mut call, CallEvent::Recording(Recording::default()))
            .await?;
        self.save(&mut call);
        Ok(())
    }

    /// Keeps a final transcription of call key `k`'s voicemail (bounded).
    pub(super) fn add_transcript(&self, k: &str, text: &str) {
        let text = text.trim();
        if text.is_empty() || !self.inner.calls.contains_key(k) {
            return;
        }
        let mut kept = self.inner.transcripts.entry(k.to_owned()).or_default();
        let room = MAX_TRANSCRIPT_CHARS.saturating_sub(kept.chars().count());
        if room == 0 {
            return;
        }
        if !kept.is_empty() {
            kept.push(' ');
        }
        kept.extend(text.chars().take(room));
    }
}
