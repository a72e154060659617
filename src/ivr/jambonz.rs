//! jambonz renderer: turns [`Verb`]s into the JSON array of verbs a jambonz webhook returns.
//!
//! This file owns the mapping to jambonz field names (`verb`, `actionHook`, `numDigits`,
//! `finishOnKey`, `synthesizer.language`, `target`, `callerId`, `answerOnBridge`, `length`,
//! `loop`, ...). Where jambonz differs from TwiML:
//! - `gather` nests at most one `say` or one `play`. Several prompts that are all `Say` in one
//!   language, played once, are joined into one `say`; otherwise the prompts before the last
//!   are emitted as verbs of their own ahead of the `gather`, and the last is nested (a pause
//!   is never nested). DTMF barge-in is always on, speech barge-in when speech is listened for;
//! - a loop count of 0 is written `"forever"`;
//! - `Record` becomes `listen` (jambonz keeps no recordings itself): the audio is streamed to
//!   `stream_url` (or `action_url`) as one channel of 16-bit PCM at [`LISTEN_SAMPLE_RATE`],
//!   with `wsAuth` from `stream_auth`, a nested `transcribe` (its `transcriptionHook`, and the
//!   language's `recognizer` when a vendor is known) when asked, and `actionHook` is called
//!   when it ends;
//! - `Reject` becomes `sip:decline` with 603 (rejected) or 486 (busy);
//! - jambonz requires a `vendor` in every `synthesizer` and `recognizer` object it is given.
//!   [`JambonzSpeech`] names the text-to-speech and speech-to-text vendors (and voices) per
//!   language; where none is configured for a prompt's language the object is left out, so the
//!   jambonz application's own default voice and recognizer apply (and the language of that
//!   prompt is then the application's).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::verbs::{DialTarget, RejectReason, Verb};

/// The sample rate asked of jambonz for a voicemail's audio (`listen` `sampleRate`).
pub const LISTEN_SAMPLE_RATE: u32 = 8_000;

/// Speech settings of the jambonz answers (`[voice.jambonz.speech]`): which text-to-speech and
/// speech-to-text vendors jambonz should use, by default and per language.
///
/// ```toml
/// [voice.jambonz.speech]
/// tts_vendor = "google"              # every `say` gets synthesizer.vendor = "google"
/// stt_vendor = "google"              # every speech `gather` gets recognizer.vendor = "google"
/// [voice.jambonz.speech.languages."fr-FR"]
/// tts_voice = "fr-FR-Neural2-A"      # the voice for French prompts
/// [voice.jambonz.speech.languages."en-GB"]
/// tts_vendor = "microsoft"
/// tts_voice = "en-GB-SoniaNeural"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JambonzSpeech {
    /// Text-to-speech vendor for every language without its own (for example `google`,
    /// `aws`, `microsoft`, `elevenlabs`, or a custom vendor's label). Unset: prompts carry no
    /// `synthesizer`, and the application's default voice speaks them.
    #[serde(default)]
    pub tts_vendor: Option<String>,
    /// Speech-to-text vendor for every language without its own. Unset: speech gathers carry
    /// no `recognizer`, and the application's default recognizer listens.
    #[serde(default)]
    pub stt_vendor: Option<String>,
    /// Settings of one language tag (`fr-FR`, `en-GB`...), overriding the defaults above.
    #[serde(default)]
    pub languages: BTreeMap<String, JambonzLanguage>,
}

/// The speech settings of one language under `[voice.jambonz.speech.languages."<tag>"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JambonzLanguage {
    /// Text-to-speech vendor for this language (default: `tts_vendor`).
    #[serde(default)]
    pub tts_vendor: Option<String>,
    /// The vendor's voice name for this language (default: the vendor's default voice).
    #[serde(default)]
    pub tts_voice: Option<String>,
    /// Speech-to-text vendor for this language (default: `stt_vendor`).
    #[serde(default)]
    pub stt_vendor: Option<String>,
}

impl JambonzSpeech {
    /// The `synthesizer` object of a prompt in `language`, if a vendor is known for it.
    fn synthesizer(&self, language: Option<&str>) -> Option<Value> {
        let own = language.and_then(|l| self.languages.get(l));
        let vendor = own
            .and_then(|o| o.tts_vendor.as_ref())
            .or(self.tts_vendor.as_ref())?;
        let mut object = Map::new();
        object.insert("vendor".into(), json!(vendor));
        if let Some(language) = language {
            object.insert("language".into(), json!(language));
        }
        if let Some(voice) = own.and_then(|o| o.tts_voice.as_ref()) {
            object.insert("voice".into(), json!(voice));
        }
        Some(Value::Object(object))
    }

    /// The `recognizer` object of a speech gather in `language`, if a vendor is known for it.
    fn recognizer(&self, language: Option<&str>) -> Option<Value> {
        let own = language.and_then(|l| self.languages.get(l));
        let vendor = own
            .and_then(|o| o.stt_vendor.as_ref())
            .or(self.stt_vendor.as_ref())?;
        let mut object = Map::new();
        object.insert("vendor".into(), json!(vendor));
        if let Some(language) = language {
            object.insert("language".into(), json!(language));
        }
        Some(Value::Object(object))
    }

    /// What is wrong with these settings: empty vendor, voice or language names.
    pub fn validate(&self) -> Result<(), String> {
        let blank = |v: &Option<String>| v.as_deref().is_some_and(|v| v.trim().is_empty());
        if blank(&self.tts_vendor) || blank(&self.stt_vendor) {
            return Err("tts_vendor and stt_vendor must not be empty when set".into());
        }
        for (tag, language) in &self.languages {
            if tag.trim().is_empty() || tag.len() > 35 {
                return Err("a language tag is empty or longer than 35 characters".into());
            }
            if blank(&language.tts_vendor)
                || blank(&language.tts_voice)
                || blank(&language.stt_vendor)
            {
                return Err(format!(
                    "languages.{tag:?}: tts_vendor, tts_voice and stt_vendor must not be empty \
                     when set"
                ));
            }
        }
        Ok(())
    }
}

/// Renders `verbs` as a jambonz verb array, leaving the speech vendors to the application's
/// defaults (see [`render_jambonz_with`]).
pub fn render_jambonz(verbs: &[Verb]) -> Value {
    render_jambonz_with(verbs, &JambonzSpeech::default())
}

/// Renders `verbs` as a jambonz verb array with the speech vendors of `speech`.
pub fn render_jambonz_with(verbs: &[Verb], speech: &JambonzSpeech) -> Value {
    let mut out = Vec::with_capacity(verbs.len());
    for verb in verbs {
        render(verb, speech, &mut out);
    }
    Value::Array(out)
}

fn render(verb: &Verb, settings: &JambonzSpeech, out: &mut Vec<Value>) {
    match verb {
        Verb::Say { .. } | Verb::Play { .. } | Verb::Pause { .. } => {
            if let Some(object) = prompt_object(verb, settings, true) {
                out.push(Value::Object(object));
            }
        }
        Verb::Gather {
            action_url,
            num_digits,
            finish_on_key,
            timeout_secs,
            speech,
            language,
            prompts,
        } => {
            let mut gather = Map::new();
            gather.insert("verb".into(), json!("gather"));
            gather.insert("actionHook".into(), json!(action_url));
            let input = if *speech {
                json!(["digits", "speech"])
            } else {
                json!(["digits"])
            };
            gather.insert("input".into(), input);
            if let Some(n) = num_digits {
                gather.insert("numDigits".into(), json!(n));
            }
            if !finish_on_key.is_empty() {
                gather.insert("finishOnKey".into(), json!(finish_on_key));
            }
            gather.insert("timeout".into(), json!(timeout_secs));
            gather.insert("dtmfBargein".into(), json!(true));
            if *speech {
                gather.insert("bargein".into(), json!(true));
                if let Some(recognizer) = settings.recognizer(language.as_deref()) {
                    gather.insert("recognizer".into(), recognizer);
                }
            }
            let (before, nested) = split_prompts(prompts);
            for verb in before {
                if let Some(object) = prompt_object(&verb, settings, true) {
                    out.push(Value::Object(object));
                }
            }
            if let Some(nested) = nested {
                let key = if matches!(nested, Verb::Play { .. }) {
                    "play"
                } else {
                    "say"
                };
                if let Some(object) = prompt_object(&nested, settings, false) {
                    gather.insert(key.into(), Value::Object(object));
                }
            }
            out.push(Value::Object(gather));
        }
        Verb::Redirect { url } => out.push(json!({ "verb": "redirect", "actionHook": url })),
        Verb::Dial {
            targets,
            caller_id,
            timeout_secs,
            action_url,
            answer_on_bridge,
        } => {
            let mut dial = Map::new();
            dial.insert("verb".into(), json!("dial"));
            let targets: Vec<Value> = targets
                .iter()
                .map(|t| match t {
                    DialTarget::Phone(number) => json!({ "type": "phone", "number": number }),
                    DialTarget::Sip(uri) => json!({ "type": "sip", "sipUri": uri }),
                })
                .collect();
            dial.insert("target".into(), Value::Array(targets));
            if let Some(caller_id) = caller_id {
                dial.insert("callerId".into(), json!(caller_id));
            }
            dial.insert("timeout".into(), json!(timeout_secs));
            dial.insert("answerOnBridge".into(), json!(answer_on_bridge));
            if let Some(action) = action_url {
                dial.insert("actionHook".into(), json!(action));
            }
            out.push(Value::Object(dial));
        }
        Verb::Record {
            action_url,
            max_length_secs,
            play_beep,
            finish_on_key,
            stream_url,
            stream_auth,
            transcription,
        } => {
            let mut listen = Map::new();
            listen.insert("verb".into(), json!("listen"));
            listen.insert(
                "url".into(),
                json!(stream_url.as_deref().unwrap_or(action_url)),
            );
            listen.insert("actionHook".into(), json!(action_url));
            listen.insert("maxLength".into(), json!(max_length_secs));
            listen.insert("playBeep".into(), json!(play_beep));
            if !finish_on_key.is_empty() {
                listen.insert("finishOnKey".into(), json!(finish_on_key));
            }
            // One channel of 16-bit PCM at 8 kHz (telephone audio), nothing sent back.
            listen.insert("mixType".into(), json!("mono"));
            listen.insert("sampleRate".into(), json!(LISTEN_SAMPLE_RATE));
            listen.insert("disableBidirectionalAudio".into(), json!(true));
            if let Some(auth) = stream_auth {
                listen.insert(
                    "wsAuth".into(),
                    json!({ "username": auth.username, "password": auth.password }),
                );
            }
            if let Some(t) = transcription {
                let mut transcribe = Map::new();
                transcribe.insert("transcriptionHook".into(), json!(t.hook));
                if let Some(recognizer) = settings.recognizer(Some(&t.language)) {
                    transcribe.insert("recognizer".into(), recognizer);
                }
                listen.insert("transcribe".into(), Value::Object(transcribe));
            }
            out.push(Value::Object(listen));
        }
        Verb::Conference {
            room,
            end_on_exit,
            action_url,
        } => {
            let mut conference = Map::new();
            conference.insert("verb".into(), json!("conference"));
            conference.insert("name".into(), json!(room));
            conference.insert("beep".into(), json!(false));
            conference.insert("startConferenceOnEnter".into(), json!(true));
            conference.insert("endConferenceOnExit".into(), json!(end_on_exit));
            if let Some(action) = action_url {
                conference.insert("actionHook".into(), json!(action));
            }
            out.push(Value::Object(conference));
        }
        Verb::Hangup => out.push(json!({ "verb": "hangup" })),
        Verb::Reject { reason } => {
            let (status, text) = match reason {
                RejectReason::Rejected => (603, "Decline"),
                RejectReason::Busy => (486, "Busy Here"),
            };
            out.push(json!({ "verb": "sip:decline", "status": status, "reason": text }));
        }
    }
}

/// Splits a gather's prompts into the verbs to emit before it and the one to nest in it.
fn split_prompts(prompts: &[Verb]) -> (Vec<Verb>, Option<Verb>) {
    let playable: Vec<&Verb> = prompts
        .iter()
        .filter(|v| matches!(v, Verb::Say { .. } | Verb::Play { .. } | Verb::Pause { .. }))
        .filter(|v| !matches!(v, Verb::Say { text, .. } if text.trim().is_empty()))
        .collect();
    if let Some(joined) = join_says(&playable) {
        return (Vec::new(), Some(joined));
    }
    match playable.split_last() {
        None => (Vec::new(), None),
        Some((last, rest)) => {
            let mut before: Vec<Verb> = rest.iter().map(|v| (*v).clone()).collect();
            if matches!(last, Verb::Pause { .. }) {
                before.push((*last).clone());
                (before, None)
            } else {
                (before, Some((*last).clone()))
            }
        }
    }
}

/// One `Say` holding all of `verbs`, if they are all `Say` in one language, played once.
fn join_says(verbs: &[&Verb]) -> Option<Verb> {
    let mut texts = Vec::with_capacity(verbs.len());
    let mut shared_language: Option<&Option<String>> = None;
    for verb in verbs {
        let Verb::Say {
            text,
            language,
            loop_count: 1,
        } = verb
        else {
            return None;
        };
        match shared_language {
            None => shared_language = Some(language),
            Some(l) if l == language => {}
            Some(_) => return None,
        }
        texts.push(text.trim());
    }
    let language = shared_language?;
    Some(Verb::Say {
        text: texts.join(" "),
        language: language.clone(),
        loop_count: 1,
    })
}

/// The JSON object of a `say`, `play` or `pause`, with its `verb` key when `with_verb`
/// (nested prompts go without). `None` for other verbs and for a `say` with empty text.
fn prompt_object(
    verb: &Verb,
    speech: &JambonzSpeech,
    with_verb: bool,
) -> Option<Map<String, Value>> {
    let mut object = Map::new();
    let name = match verb {
        Verb::Say {
            text,
            language,
            loop_count,
        } => {
            if text.trim().is_empty() {
                return None;
            }
            object.insert("text".into(), json!(text));
            if let Some(synthesizer) = speech.synthesizer(language.as_deref()) {
                object.insert("synthesizer".into(), synthesizer);
            }
            loop_field(&mut object, *loop_count);
            "say"
        }
        Verb::Play { url, loop_count } => {
            object.insert("url".into(), json!(url));
            loop_field(&mut object, *loop_count);
            "play"
        }
        Verb::Pause { secs } => {
            object.insert("length".into(), json!(secs));
            "pause"
        }
        _ => return None,
    };
    if with_verb {
        object.insert("verb".into(), json!(name));
    }
    Some(object)
}

fn loop_field(object: &mut Map<String, Value>, loop_count: u32) {
    match loop_count {
        1 => {}
        0 => {
            object.insert("loop".into(), json!("forever"));
        }
        n => {
            object.insert("loop".into(), json!(n));
        }
    }
}
