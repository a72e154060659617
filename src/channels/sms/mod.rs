//! The SMS channel in: the provider's webhook (`POST /sms/twilio`, Twilio-style form fields and
//! `X-Twilio-Signature`), turned into conversations, and the opt-out keywords.
//!
//! The module owns the webhook route, the signature check, the `[sms]` configuration and the
//! opt-out keywords. Replies go out through the notify outbox (see [`crate::notify`]).
//!
//! - **Signature**: base64 of HMAC-SHA1, keyed with `[sms] auth_token`, over the public URL of the
//!   request (`[server] public_url` or `http://` + the HTTP listener's address, path and query)
//!   followed by every POST parameter, sorted by name, name then value. A missing or wrong
//!   signature is answered 403 and nothing is stored.
//! - **Conversations**: one per (contact number, service number): a message starts an
//!   interaction in the service number's queue (`[sms] numbers`), or joins the open one whose
//!   external reference is `sms:{From}:{To}`. Its id is `sms:{MessageSid}`: a provider's retry
//!   of a message already stored is answered 200 and ignored.
//! - **Opt-out**: STOP (and STOPALL, ARRET, ARRÊT, UNSUBSCRIBE, CANCEL, END, QUIT) records the
//!   number as opted out; START (UNSTOP) undoes it. The outbox sends nothing more to an opted-out
//!   number. The keyword is confirmed once: when the conversation is open, the keyword joins it
//!   (the agent sees it) and the confirmation is an outbound message of it, delivered by the
//!   outbox; otherwise the confirmation is the webhook's TwiML answer, and no interaction is
//!   created.
//! - **Survey answers**: an SMS starting with a score (1 to 5) from a number that was asked a
//!   satisfaction question, with no conversation open, is the answer ([`crate::survey`]): it
//!   is recorded and thanked in the TwiML answer. STOP also opts the number out of surveys,
//!   START lets them ask again.
//! - Every answer is TwiML (`text/xml`): `<Response/>`, or the confirmation as `<Message>`.

mod config;

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use tracing::Instrument;

pub use config::{SmsConfig, SmsNumber};

use crate::channels::citizen::CitizenConfig;
use crate::core::{
    Attachment, Channel, Command, ContactId, InteractionId, InteractionSpec, Message,
    MessageDirection,
};
use crate::engine::StartContext;
use crate::engine::{Clock, Engine, EngineError, SystemClock};
use crate::notify::META_OPT_NOTICE;
use crate::survey::text::{sms_thanks, stored_language};
use crate::survey::{AnswerError, Surveys};

/// The webhook's path.
pub const WEBHOOK_PATH: &str = "/sms/twilio";

/// Keywords that opt a number out (compared trimmed, case-insensitively).
pub const OPT_OUT_KEYWORDS: &[&str] = &[
    "STOP",
    "STOPALL",
    "ARRET",
    "ARRÊT",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
];

/// Keywords that opt a number back in.
pub const OPT_IN_KEYWORDS: &[&str] = &["START", "UNSTOP"];

/// Whether `number` opted out of SMS (sent STOP and not START since), for whoever sends SMS on
/// its own (surveys, notifications).
pub async fn is_opted_out(engine: &Engine, number: &str) -> Result<bool, crate::store::StoreError> {
    let number = number.to_owned();
    engine.store().run(move |s| s.is_opted_out(&number)).await
}

/// The `X-Twilio-Signature` of a request (the same algorithm signs calls and messages).
pub use crate::channels::voice::sign::twilio_signature;

#[derive(Clone)]
struct SmsState {
    engine: Engine,
    config: Arc<SmsConfig>,
    public_base: Arc<str>,
    /// Serialises the duplicate check and the commit, so that two deliveries of one message
    /// racing each other store it once.
    intake: Arc<tokio::sync::Mutex<()>>,
    clock: Arc<dyn Clock>,
    surveys: Surveys,
    /// `[citizen]`: opening hours and the acknowledgement.
    citizen: Arc<CitizenConfig>,
}

/// The webhook route of the SMS channel (`[sms]`); signatures are computed over the context's
/// public URL (the HTTP listener as the provider sees it); `citizen` gives the opening hours and
/// the acknowledgement; survey answers go to `surveys`.
pub fn routes(
    cx: &StartContext,
    config: &SmsConfig,
    citizen: CitizenConfig,
    surveys: Surveys,
) -> Router {
    let state = SmsState {
        engine: cx.engine.clone(),
        config: Arc::new(config.clone()),
        surveys,
        public_base: cx.public_base.trim_end_matches('/').into(),
        intake: Arc::new(tokio::sync::Mutex::new(())),
        clock: Arc::new(SystemClock),
        citizen: Arc::new(citizen),
    };
    Router::new()
        .route(WEBHOOK_PATH, post(webhook))
        .with_state(state)
}

/// The longest `From` or `To` accepted (a phone number, an alphanumeric sender, `whatsapp:+33...`).
const MAX_ADDRESS_BYTES: usize = 64;

fn twiml(body: &str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body.to_owned(),
    )
        .into_response()
}

fn empty_twiml() -> Response {
    twiml("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>")
}

fn message_twiml(text: &str) -> Response {
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    twiml(&format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{escaped}</Message></Response>"
    ))
}

fn refuse(status: StatusCode, message: String) -> Response {
    tracing::warn!(%status, %message, "SMS webhook refused");
    (status, message + "\n").into_response()
}

fn engine_failure(e: EngineError) -> Response {
    if matches!(e, EngineError::Overloaded | EngineError::Stopped) {
        tracing::warn!(error = %e, "SMS webhook refused: the provider should retry");
    }
    crate::http::error::HttpError::from(e).into_response()
}

fn store_failure(e: crate::store::StoreError) -> Response {
    crate::http::error::HttpError::from(e).into_response()
}

/// A keyword message: opt out or back in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    OptOut,
    OptIn,
}

fn keyword(body: &str) -> Option<Keyword> {
    let word = body.trim().to_uppercase();
    if OPT_OUT_KEYWORDS.contains(&word.as_str()) {
        Some(Keyword::OptOut)
    } else if OPT_IN_KEYWORDS.contains(&word.as_str()) {
        Some(Keyword::OptIn)
    } else {
        None
    }
}

/// `POST /sms/twilio`.
async fn webhook(
    State(state): State<SmsState>,
    uri: Uri,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let params = match form {
        Ok(Form(params)) => params,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("the body must be application/x-www-form-urlencoded: {e}"),
            )
        }
    };
    let url = match uri.query() {
        Some(q) => format!("{}{}?{q}", state.public_base, uri.path()),
        None => format!("{}{}", state.public_base, uri.path()),
    };
    let Some(signature) = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return refuse(
            StatusCode::FORBIDDEN,
            "missing X-Twilio-Signature header".into(),
        );
    };
    if !crate::channels::voice::sign::twilio_valid(
        &state.config.auth_token,
        &url,
        &params,
        signature,
    ) {
        return refuse(
            StatusCode::FORBIDDEN,
            format!(
                "X-Twilio-Signature does not match the request to {url}: check [sms] auth_token \
                 and [server] public_url"
            ),
        );
    }
    let field = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let (Some(sid), Some(from), Some(to)) = (field("MessageSid"), field("From"), field("To"))
    else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "MessageSid, From and To are required".into(),
        );
    };
    if !crate::core::is_valid_id(&sid) {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!(
                "MessageSid must be 1 to {} letters, digits and . _ : @ + -",
                crate::core::MAX_ID_BYTES
            ),
        );
    }
    if from.len() > MAX_ADDRESS_BYTES || to.len() > MAX_ADDRESS_BYTES {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("From and To must be at most {MAX_ADDRESS_BYTES} bytes"),
        );
    }
    let body = params
        .iter()
        .find(|(k, _)| k == "Body")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let Some(queue) = state.config.queue_of(&to).map(str::to_owned) else {
        return refuse(
            StatusCode::NOT_FOUND,
            "the To number is not one of the service numbers: add it to [sms] numbers".into(),
        );
    };
    let mut message = Message::new(format!("sms:{sid}"), MessageDirection::Inbound, body);
    message.from = from.clone();
    message.to = to.clone();
    let media: usize = field("NumMedia")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
        .min(10);
    for n in 0..media {
        if let Some(url) = field(&format!("MediaUrl{n}")) {
            let content_type = field(&format!("MediaContentType{n}"))
                .unwrap_or_else(|| "application/octet-stream".into());
            message.attachments.push(Attachment {
                name: format!("media-{n}"),
                content_type,
                size: 0,
                data_base64: String::new(),
            });
            message.meta.insert(format!("media_url_{n}"), url);
        }
    }
    if let Some(n) = field("NumSegments") {
        message.meta.insert("num_segments".into(), n);
    }
    let span = tracing::info_span!("sms_in", message = %message.id);
    let inbound = Inbound {
        external_ref: format!("sms:{from}:{to}"),
        sid,
        from,
        to,
        queue,
        message,
    };
    store_message(state, inbound).instrument(span).await
}

/// A signed, well-formed inbound SMS.
struct Inbound {
    sid: String,
    from: String,
    to: String,
    queue: String,
    external_ref: String,
    message: Message,
}

/// Stores an inbound SMS (or honours its keyword), unless it was stored already.
async fn store_message(state: SmsState, inbound: Inbound) -> Response {
    let Inbound {
        sid,
        from,
        to,
        queue,
        external_ref,
        message,
    } = inbound;
    let _intake = state.intake.lock().await;
    let store = state.engine.store().clone();
    let (id, sid_for_check, from_for_check) = (message.id.clone(), sid.clone(), from.clone());
    // Only an SMS that reads as a survey answer may be the retry of a recorded one.
    let reads_as_answer = crate::survey::parse_answer(&message.text).is_some();
    let seen = store
        .run(move |store| -> Result<bool, crate::store::StoreError> {
            if store.message_interaction(&id)?.is_some()
                || (reads_as_answer && store.survey_answered_by(&id)?)
            {
                return Ok(true);
            }
            Ok(matches!(store.sms_opt_out(&from_for_check)?, Some((_, s)) if s == sid_for_check))
        })
        .await;
    match seen {
        Ok(true) => {
            tracing::info!("duplicate delivery of a stored SMS: ignored");
            return empty_twiml();
        }
        Ok(false) => {}
        Err(e) => return store_failure(e),
    }

    if let Some(kw) = keyword(&message.text) {
        return opt_keyword(&state, kw, &sid, &from, &to, &external_ref, message).await;
    }

    if let Some(reply) = survey_answer(&state, &message, &from, &external_ref).await {
        return reply;
    }

    let mut spec = InteractionSpec::new(
        InteractionId(ulid::Ulid::new()),
        Channel::Sms,
        queue.clone(),
    );
    spec.contact = Some(ContactId::new(&from));
    spec.external_ref = Some(external_ref.into());
    spec.attributes = [("sms_from", from.as_str()), ("sms_to", to.as_str())]
        .into_iter()
        .collect();
    match state
        .engine
        .send(Command::OpenConversation { spec, message })
        .await
    {
        Ok(events) => {
            let interaction = events.iter().find_map(|e| e.kind.interaction());
            tracing::info!(interaction_id = ?interaction.map(|i| i.to_string()), "SMS stored");
            let created = events.iter().find_map(|e| match &e.kind {
                crate::core::EventKind::InteractionCreated { spec, .. } => Some(spec.id),
                _ => None,
            });
            if let Some(id) = created {
                acknowledge(
                    &state,
                    id,
                    &crate::core::QueueId::new(queue.clone()),
                    &from,
                    &to,
                )
                .await;
            }
            empty_twiml()
        }
        Err(e) => engine_failure(e),
    }
}

/// The acknowledgement of a new SMS conversation, committed as an outbound SMS (delivered by
/// the notify outbox): when `[citizen] sms_acknowledgement` is on, or when the queue is closed
/// (its `[citizen.hours]`, which it then lists). It gives the reference and the delay: the
/// announced one, and the one the queue's load gives when they differ.
async fn acknowledge(
    state: &SmsState,
    interaction: InteractionId,
    queue: &crate::core::QueueId,
    from: &str,
    to: &str,
) {
    let hours = state.citizen.hours_of(queue.as_str());
    let closed = hours.is_some_and(|h| !h.is_open_at(state.clock.now()));
    if !state.citizen.sms_acknowledgement && !closed {
        return;
    }
    let (announced, expected) = crate::channels::citizen::acknowledged_delays(
        &state.engine,
        queue,
        Channel::Sms,
        interaction,
    )
    .await;
    let expected = expected.filter(|_| !closed);
    let text = sms_acknowledgement(
        &crate::channels::citizen::reference(interaction),
        announced,
        expected,
        closed.then(|| hours.map(|h| h.lines("fr")).unwrap_or_default()),
    );
    let mut message = Message::new(
        format!("sms:{}", ulid::Ulid::new()),
        MessageDirection::Outbound,
        text,
    );
    message.from = to.to_owned();
    message.to = from.to_owned();
    message
        .meta
        .insert("notice".into(), "acknowledgement".into());
    if let Err(e) = state
        .engine
        .send(Command::AddMessage {
            interaction,
            message,
        })
        .await
    {
        tracing::warn!(interaction_id = %interaction, "SMS acknowledgement not committed: {e}");
    }
}

/// The acknowledgement's text (French): the reference, the announced delay, the load's delay
/// when it differs, the opening hours when closed.
pub fn sms_acknowledgement(
    reference: &str,
    announced: Option<crate::core::AnnouncedDelay>,
    expected_secs: Option<u64>,
    closed_hours: Option<Vec<String>>,
) -> String {
    use crate::channels::email::notice::{delay_words, working_days_words};
    let mut text = format!("Message reçu, référence {reference}.");
    if let Some(hours) = closed_hours {
        text.push_str(" Le service est fermé : nous vous répondrons à sa réouverture.");
        if !hours.is_empty() {
            text.push_str(&format!(" Horaires : {}.", hours.join(" ; ")));
        }
        return text;
    }
    let words = match announced {
        Some(crate::core::AnnouncedDelay::Secs(s)) if s > 0 => Some(delay_words(s).0),
        Some(crate::core::AnnouncedDelay::WorkingDays(d)) if d > 0 => Some(working_days_words(d).0),
        _ => None,
    };
    if let Some(w) = words {
        text.push_str(&format!(" Délai annoncé : {w}."));
    }
    if let Some(secs) = expected_secs {
        text.push_str(&format!(
            " Avec les demandes en attente, comptez environ {}.",
            delay_words(secs).0
        ));
    }
    text
}

/// STOP or START: recorded first (so that nothing more is sent even if the rest fails), then
/// confirmed once.
/// When the SMS answers a survey question sent to this number (it starts with a score, and no
/// conversation is open with the number, where a digit would be meant for the agent): the
/// answer is recorded and the thanks is the webhook's answer. `None`: the SMS is a message.
async fn survey_answer(
    state: &SmsState,
    message: &Message,
    from: &str,
    external_ref: &str,
) -> Option<Response> {
    crate::survey::parse_answer(&message.text)?;
    // Open (in wrap-up, the agent is done with it: a digit is not for them).
    let r = external_ref.to_owned();
    let open = move |router: &crate::core::Router| {
        router
            .find_by_external_ref(&r)
            .and_then(|id| router.interaction(&id))
            .is_some_and(|v| !matches!(v.phase, crate::core::InteractionPhase::WrapUp { .. }))
    };
    match state.engine.read(open).await {
        Ok(true) => return None,
        Ok(false) => {}
        Err(e) => return Some(engine_failure(e)),
    }
    match state
        .surveys
        .answer_sms(&message.id, from, &message.text)
        .await
    {
        Ok(Some(question)) => {
            tracing::info!(interaction_id = %question.interaction, "SMS survey answer recorded");
            Some(message_twiml(sms_thanks(stored_language(
                &question.language,
            ))))
        }
        Ok(None) => None,
        Err(AnswerError::Store(e)) => Some(store_failure(e)),
        Err(e) => {
            tracing::info!(error = %e, "SMS reads like a survey answer but was not recorded: kept as a message");
            None
        }
    }
}

async fn opt_keyword(
    state: &SmsState,
    kw: Keyword,
    sid: &str,
    from: &str,
    to: &str,
    external_ref: &str,
    message: Message,
) -> Response {
    let opted_out = kw == Keyword::OptOut;
    let store = state.engine.store().clone();
    let now = state.clock.now();
    let (number, s) = (from.to_owned(), sid.to_owned());
    // STOP also opts the number out of satisfaction surveys; START lets them ask again.
    let recorded = store
        .run(move |store| {
            store.set_sms_opt_out(&number, opted_out, now, &s)?;
            let contact = ContactId::new(&number);
            if opted_out {
                store.opt_out(&contact, now)
            } else {
                store.opt_in(&contact).map(|_| ())
            }
        })
        .await;
    if let Err(e) = recorded {
        return store_failure(e);
    }
    tracing::info!(opted_out, "SMS opt-out recorded");
    let reply = if opted_out {
        state.config.opt_out_reply.clone()
    } else {
        state.config.opt_in_reply.clone()
    };
    let r = external_ref.to_owned();
    let open = state
        .engine
        .read(move |router| router.find_by_external_ref(&r))
        .await;
    let interaction = match open {
        Ok(Some(id)) => id,
        Ok(None) => return message_twiml(&reply),
        Err(e) => return engine_failure(e),
    };
    // The conversation is open: the keyword joins it and the confirmation is its reply.
    if let Err(e) = state
        .engine
        .send(Command::AddMessage {
            interaction,
            message,
        })
        .await
    {
        tracing::warn!(error = %e, "the keyword could not join its conversation; confirmed in the answer");
        return message_twiml(&reply);
    }
    let mut notice = Message::new(
        format!("sms:{}", ulid::Ulid::new()),
        MessageDirection::Outbound,
        reply.clone(),
    );
    notice.from = to.to_owned();
    notice.to = from.to_owned();
    notice.meta.insert(META_OPT_NOTICE.into(), "true".into());
    match state
        .engine
        .send(Command::AddMessage {
            interaction,
            message: notice,
        })
        .await
    {
        Ok(_) => empty_twiml(),
        Err(e) => {
            tracing::warn!(error = %e, "the confirmation could not join the conversation; confirmed in the answer");
            message_twiml(&reply)
        }
    }
}
