//! The chat widget's page (`GET /chat/widget`), rendered by the server in the page's language
//! (`?lang=`, else `[chat] default_language`): every label, the topics with their configured
//! labels (none preselected), and whether the chat's queue can be reached now (opening hours,
//! agents signed in), so that the page reads right without JavaScript. Its form posts to
//! `POST /chat/message` (a message left while nobody can chat, or sent without JavaScript),
//! stored as an email request answered by email; the script turns it into a live chat when
//! someone can answer.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use serde::Deserialize;

use super::hub::{Availability, ChatHub, LeaveRefused, LeftMessage};
use super::Language;
use crate::core::AnnouncedDelay;
use crate::obs::page::{escape, Lang};

/// The page, with `{{key}}` placeholders and `/*GUICHET_CONFIG*/`.
const WIDGET_HTML: &str = include_str!("widget.html");

/// Every text of the widget: key, French, English.
const TEXTS: &[(&str, &str, &str)] = &[
    ("title", "Discuter avec un conseiller", "Chat with an advisor"),
    ("description", "Posez votre question à un conseiller par écrit, en direct, ou laissez un message auquel nous répondrons par e-mail.", "Ask an advisor your question in a live written chat, or leave a message we will answer by email."),
    ("name", "Votre nom", "Your name"),
    ("email", "Votre adresse e-mail", "Your email address"),
    ("email_hint", "Facultative pour discuter (pour recevoir la transcription), nécessaire pour laisser un message.", "Optional to chat (to receive the transcript), needed to leave a message."),
    ("topic", "Sujet", "Topic"),
    ("choose_topic", "Choisissez un sujet", "Choose a topic"),
    ("question", "Votre question", "Your question"),
    ("start", "Commencer la discussion", "Start the chat"),
    ("leave", "Envoyer mon message", "Send my message"),
    ("noscript", "Sans JavaScript, votre question est envoyée comme un message : indiquez votre adresse e-mail, nous vous répondrons par e-mail.", "Without JavaScript, your question is sent as a message: give your email address, we will answer you by email."),
    ("conversation", "Conversation", "Conversation"),
    ("your_message", "Votre message", "Your message"),
    ("enter_hint", "Entrée pour envoyer, Maj+Entrée pour aller à la ligne.", "Enter to send, Shift+Enter for a new line."),
    ("send", "Envoyer", "Send"),
    ("transcript_label", "Recevoir la transcription à l'adresse", "Email the transcript to"),
    ("transcript", "Envoyer la transcription", "Send me the transcript"),
    ("end", "Terminer la discussion", "End the chat"),
    ("again", "Nouvelle discussion", "New chat"),
    ("connecting", "Connexion…", "Connecting…"),
    ("waiting", "Un conseiller va vous répondre. Référence : ", "An advisor will answer you. Reference: "),
    ("position_first", "Vous êtes le prochain dans la file d'attente.", "You are next in the queue."),
    ("position_n", "Vous êtes {n}e dans la file d'attente.", "You are number {n} in the queue."),
    ("wait_seconds", "Attente estimée : environ {s} secondes.", "Expected wait: about {s} seconds."),
    ("wait_minutes", "Attente estimée : environ {m} min.", "Expected wait: about {m} min."),
    ("joined", " a rejoint la discussion.", " joined the chat."),
    ("typing", " écrit…", " is typing…"),
    ("you", "Vous", "You"),
    ("ended", "La discussion est terminée.", "The chat has ended."),
    ("ended_agent", "Le conseiller a terminé la discussion.", "The advisor ended the chat."),
    ("transcript_ok", "La transcription sera envoyée à ", "The transcript will be sent to "),
    ("reconnecting", "Connexion perdue, reconnexion…", "Connection lost, reconnecting…"),
    ("resumed", "Discussion reprise.", "Chat resumed."),
    ("need_name", "Indiquez votre nom.", "Please give your name."),
    ("need_topic", "Choisissez un sujet.", "Please choose a topic."),
    ("need_question", "Écrivez votre question.", "Please write your question."),
    ("need_email", "Indiquez votre adresse e-mail pour que nous puissions vous répondre.", "Please give your email address so that we can answer you."),
    ("error", "Erreur : ", "Error: "),
    ("log_label", "Messages de la discussion", "Chat messages"),
    ("survey_comment", "Un commentaire ? (facultatif)", "Any comment? (optional)"),
    ("survey_send", "Envoyer mon avis", "Send my opinion"),
    ("survey_need", "Choisissez une note de 1 à 5.", "Choose a score from 1 to 5."),
    ("survey_thanks", "Merci pour votre avis !", "Thank you for your opinion!"),
    ("closed", "Le service est fermé en ce moment.", "The service is closed now."),
    ("unstaffed", "Personne n'est disponible pour discuter en ce moment.", "Nobody is available to chat now."),
    ("hours_title", "Horaires d'ouverture", "Opening hours"),
    ("leave_hint", "Laissez votre message avec votre adresse e-mail : nous vous répondrons par e-mail.", "Leave your message with your email address: we will answer you by email."),
    ("come_back", "Revenez pendant les horaires d'ouverture.", "Please come back during opening hours."),
    ("accessibility", "Accessibilité", "Accessibility"),
];

fn text(key: &str, language: Language) -> &'static str {
    TEXTS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, fr, en)| match language {
            Language::Fr => *fr,
            Language::En => *en,
        })
        .unwrap_or("")
}

fn lang_of(language: Language) -> Lang {
    match language {
        Language::Fr => Lang::Fr,
        Language::En => Lang::En,
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct PageQuery {
    lang: Option<String>,
}

/// The page's language: `?lang=` when it is one the widget speaks, else the default.
fn page_language(hub: &ChatHub, asked: Option<&str>) -> Language {
    asked
        .and_then(Language::parse)
        .or_else(|| Language::parse(&hub.config().default_language))
        .unwrap_or(Language::Fr)
}

/// A topic's label in `language`: `[chat.topic_labels.<topic>]`, else the topic itself.
fn topic_label(hub: &ChatHub, topic: &str, language: Language) -> String {
    hub.config()
        .topic_labels
        .get(topic)
        .and_then(|l| l.get(language.as_str()))
        .cloned()
        .unwrap_or_else(|| topic.to_owned())
}

/// The notice of an unavailable queue, as HTML (the script renders the same).
fn availability_html(a: &Availability, leave: bool, language: Language) -> String {
    let mut h = format!(
        "<p>{}</p>",
        text(if a.open { "unstaffed" } else { "closed" }, language)
    );
    if !a.hours.is_empty() {
        h.push_str(&format!("<h2>{}</h2><ul>", text("hours_title", language)));
        for line in &a.hours {
            h.push_str(&format!("<li>{}</li>", escape(line)));
        }
        h.push_str("</ul>");
    }
    h.push_str(&format!(
        "<p>{}</p>",
        text(if leave { "leave_hint" } else { "come_back" }, language)
    ));
    h
}

/// `GET /chat/widget`: the self-contained chat page (embed it with an iframe).
pub(super) async fn widget(State(hub): State<ChatHub>, Query(q): Query<PageQuery>) -> Response {
    let language = page_language(&hub, q.lang.as_deref());
    let config = hub.config().clone();
    let leave = hub.takes_messages();
    // Whether each queue of the widget can be reached now ("" is the queue without a topic).
    let mut queues: BTreeMap<String, Availability> = BTreeMap::new();
    if let Some(queue) = hub.queue_of_topic(None) {
        queues.insert(String::new(), hub.availability(&queue, language).await);
    }
    for (topic, queue) in &config.topics {
        let queue = crate::core::QueueId::new(queue.clone());
        queues.insert(topic.clone(), hub.availability(&queue, language).await);
    }
    let topics_html = if config.topics.is_empty() {
        String::new()
    } else {
        let mut h = format!(
            "<label for=\"topic\">{}</label><select id=\"topic\" name=\"topic\" required>\
             <option value=\"\" selected>{}</option>",
            text("topic", language),
            text("choose_topic", language)
        );
        for topic in config.topics.keys() {
            h.push_str(&format!(
                "<option value=\"{}\">{}</option>",
                escape(topic),
                escape(&topic_label(&hub, topic, language))
            ));
        }
        h.push_str("</select>");
        h
    };
    // Without topics the page knows its queue: it says at once whether it can be reached.
    let first = if config.topics.is_empty() {
        queues.get("").filter(|a| !a.live())
    } else {
        None
    };
    let (availability, hidden) = match first {
        Some(a) => (availability_html(a, leave, language), ""),
        None => (String::new(), "hidden"),
    };
    let texts: serde_json::Map<String, serde_json::Value> = TEXTS
        .iter()
        .map(|(k, _, _)| ((*k).to_owned(), text(k, language).into()))
        .collect();
    let queues_json: serde_json::Map<String, serde_json::Value> = queues
        .iter()
        .map(|(k, a)| {
            (
                k.clone(),
                serde_json::json!({ "live": a.live(), "closed": !a.open, "hours": a.hours }),
            )
        })
        .collect();
    let settings = serde_json::json!({
        "language": language.as_str(),
        "texts": texts,
        "scale": crate::survey::text::scale_labels(lang_of(language)),
        "queues": queues_json,
        "leave_message": leave,
    });
    // `</` cannot end the script early: JSON strings may carry `<\/`.
    let settings = settings.to_string().replace("</", "<\\/");
    let mut page = WIDGET_HTML.replace("/*GUICHET_CONFIG*/", &settings);
    page = page.replace("{{lang}}", language.as_str());
    page = page.replace(
        "{{head}}",
        &crate::http::public::head(text("description", language)),
    );
    page = page.replace("{{topics}}", &topics_html);
    page = page.replace("{{availability}}", &availability);
    page = page.replace("{{availability_hidden}}", hidden);
    let message_mode = first.is_some() && leave;
    page = page.replace(
        "{{email_required}}",
        if message_mode { "required" } else { "" },
    );
    page = page.replace(
        "{{start_label}}",
        text(if message_mode { "leave" } else { "start" }, language),
    );
    for (key, _, _) in TEXTS {
        page = page.replace(&format!("{{{{{key}}}}}"), &escape(text(key, language)));
    }
    (
        [
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self' ws: wss:; img-src 'self' data:; form-action 'self'",
            ),
            (header::CONTENT_LANGUAGE, language.as_str()),
        ],
        Html(page),
    )
        .into_response()
}

/// The form of `POST /chat/message`.
#[derive(Debug, Deserialize)]
pub(super) struct MessageForm {
    name: Option<String>,
    email: Option<String>,
    topic: Option<String>,
    first: Option<String>,
    lang: Option<String>,
}

/// `POST /chat/message`: a message left in the widget, stored as an email request and answered
/// by email. 200 with the reference; 400 when the form is wrong (what to fix); 503 when no
/// message can be left (no `[email.outbound]`, or the service is not available).
pub(super) async fn leave_message(
    State(hub): State<ChatHub>,
    Query(q): Query<PageQuery>,
    form: Result<Form<MessageForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => f,
        Err(_) => {
            let language = page_language(&hub, q.lang.as_deref());
            return result_page(
                &hub,
                StatusCode::BAD_REQUEST,
                language,
                error_title(language),
                "The form must be sent as application/x-www-form-urlencoded with name, email, \
                 topic and first.",
            );
        }
    };
    let language = page_language(&hub, form.lang.as_deref().or(q.lang.as_deref()));
    let email = form.email.clone().unwrap_or_default();
    let left = LeftMessage {
        name: form.name.unwrap_or_default(),
        email: email.clone(),
        topic: form.topic,
        text: form.first.unwrap_or_default(),
        language,
    };
    match hub.leave_message(left).await {
        Ok((id, delay)) => {
            let reference = crate::channels::citizen::reference(id);
            let delay = delay_sentence(delay, language);
            let body = match language {
                Language::Fr => format!(
                    "Votre message est enregistré sous la référence {reference}. Nous vous \
                     répondrons par e-mail à l'adresse {email}{delay}."
                ),
                Language::En => format!(
                    "Your message is registered under the reference {reference}. We will answer \
                     you by email at {email}{delay}."
                ),
            };
            let title = match language {
                Language::Fr => "Message envoyé",
                Language::En => "Message sent",
            };
            result_page(&hub, StatusCode::OK, language, title, &body)
        }
        Err(LeaveRefused::Invalid(what)) => result_page(
            &hub,
            StatusCode::BAD_REQUEST,
            language,
            error_title(language),
            &what,
        ),
        Err(LeaveRefused::Unavailable) => result_page(
            &hub,
            StatusCode::SERVICE_UNAVAILABLE,
            language,
            match language {
                Language::Fr => "Message impossible pour le moment",
                Language::En => "No message can be left now",
            },
            text("come_back", language),
        ),
    }
}

fn error_title(language: Language) -> &'static str {
    match language {
        Language::Fr => "Erreur : message non envoyé",
        Language::En => "Error: message not sent",
    }
}

/// ` within 5 days` / ` sous 5 jours`, or nothing when no delay is announced.
fn delay_sentence(delay: Option<AnnouncedDelay>, language: Language) -> String {
    use crate::channels::email::notice::{delay_words, working_days_words};
    let words = match delay {
        Some(AnnouncedDelay::Secs(0)) | None => return String::new(),
        Some(AnnouncedDelay::Secs(s)) => delay_words(s),
        Some(AnnouncedDelay::WorkingDays(d)) => working_days_words(d),
    };
    match language {
        Language::Fr => format!(" sous {}", words.0),
        Language::En => format!(" within {}", words.1),
    }
}

/// The page after a left message (sent, or refused with what to fix).
fn result_page(
    hub: &ChatHub,
    status: StatusCode,
    language: Language,
    title: &str,
    body: &str,
) -> Response {
    let _ = hub;
    let lang = language.as_str();
    let back = match language {
        Language::Fr => "Retour",
        Language::En => "Back",
    };
    let page = format!(
        "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title>{head}<style>{style}</style></head><body><main>\
         <h1>{title}</h1><p id=\"result\">{body}</p>\
         <p><a href=\"/chat/widget?lang={lang}\">{back}</a></p></main>\
         <footer><p><a href=\"/accessibility?lang={lang}\">{a11y}</a></p></footer></body></html>",
        title = escape(title),
        head = crate::http::public::head(text("description", language)),
        style = crate::http::public::STYLE,
        body = escape(body),
        a11y = text("accessibility", language),
    );
    (status, [(header::CONTENT_LANGUAGE, lang)], Html(page)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_of_the_page_has_a_text_or_a_value() {
        let mut page = WIDGET_HTML.to_owned();
        for key in [
            "lang",
            "head",
            "topics",
            "availability",
            "availability_hidden",
            "email_required",
            "start_label",
        ] {
            page = page.replace(&format!("{{{{{key}}}}}"), "");
        }
        for (key, fr, en) in TEXTS {
            assert!(!fr.is_empty() && !en.is_empty(), "{key}");
            page = page.replace(&format!("{{{{{key}}}}}"), "");
        }
        assert!(!page.contains("{{"), "a placeholder has no text");
    }
}
