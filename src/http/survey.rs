//! The satisfaction survey page: `GET /survey/{token}` shows the question (a 1-to-5 scale, a
//! comment box and a "do not ask me again" box) and `POST /survey/{token}` records the answer.
//! The token, sent in the question's SMS or email (or to the chat widget), is the only
//! credential: it names one question, is random (128 bits), and answers it once.
//!
//! The page is accessible and works without JavaScript: a plain form with a fieldset and a
//! legend, labels on every field, errors in a `role="alert"` block; French or English (`?lang=`,
//! else the question's language, else `Accept-Language`). A client that asks for
//! `application/json` (the chat widget) gets JSON instead. POST answers carry
//! `Access-Control-Allow-Origin: *` so that the widget, embedded on another site, can read
//! them: the request needs no cookie, and the token in the path is what authorises it.
//!
//! Status codes: 200 recorded (or the form); 400 a score missing or not 1 to 5 (the form again,
//! with the error); 404 an unknown token; 409 already answered; 410 expired; 503 the store
//! failing.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use serde::Deserialize;

use crate::core::ContactId;
use crate::obs::page::{escape, Lang};
use crate::store::SurveyQuestion;
use crate::survey::text::stored_language;
use crate::survey::{AnswerError, RatedRequest, Surveys};

/// The routes: `GET` and `POST /survey/{token}`.
pub fn routes(surveys: Surveys) -> Router {
    Router::new()
        .route("/survey/{token}", get(show).post(answer))
        .with_state(surveys)
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    lang: Option<String>,
}

/// The form's fields.
#[derive(Debug, Deserialize)]
struct AnswerForm {
    score: Option<String>,
    comment: Option<String>,
    opt_out: Option<String>,
    lang: Option<String>,
}

fn language(asked: Option<&str>, question: Option<&SurveyQuestion>, headers: &HeaderMap) -> Lang {
    if let Some(lang) = asked.and_then(|l| Lang::parse(l).ok()) {
        return lang;
    }
    if let Some(lang) = question.and_then(|q| stored_language(&q.language)) {
        return lang;
    }
    Lang::from_accept_language(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"))
}

/// What the page shows.
enum View<'a> {
    Form {
        token: &'a str,
        error: Option<String>,
        rated: Option<RatedRequest>,
    },
    Thanks {
        opted_out: bool,
    },
    /// No form: the title and the text.
    Closed(&'static str, String),
}

/// The title of a page that refuses an answer, in `lang`.
fn refusal_title(lang: Lang, e: &AnswerError) -> &'static str {
    match (lang, e) {
        (Lang::Fr, AnswerError::UnknownToken) => "Lien d'enquête non valide",
        (Lang::Fr, AnswerError::AlreadyAnswered) => "Enquête déjà répondue",
        (Lang::Fr, AnswerError::Expired { .. }) => "Enquête close",
        (Lang::Fr, AnswerError::InvalidScore) => "Erreur : note manquante",
        (Lang::Fr, AnswerError::Store(_)) => "Réponse non enregistrée",
        (Lang::En, AnswerError::UnknownToken) => "Survey link not valid",
        (Lang::En, AnswerError::AlreadyAnswered) => "Survey already answered",
        (Lang::En, AnswerError::Expired { .. }) => "Survey closed",
        (Lang::En, AnswerError::InvalidScore) => "Error: score missing",
        (Lang::En, AnswerError::Store(_)) => "Answer not recorded",
    }
}

fn closed(lang: Lang, e: &AnswerError) -> View<'static> {
    View::Closed(refusal_title(lang, e), message(lang, e))
}

async fn show(
    State(surveys): State<Surveys>,
    Path(token): Path<String>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let question = match surveys.question(&token).await {
        Ok(q) => q,
        Err(e) => return unavailable(&e.to_string(), &headers),
    };
    let lang = language(q.lang.as_deref(), question.as_ref(), &headers);
    let Some(question) = question else {
        return page(
            StatusCode::NOT_FOUND,
            lang,
            closed(lang, &AnswerError::UnknownToken),
        );
    };
    if question.answered_at.is_some() {
        return page(
            StatusCode::OK,
            lang,
            closed(lang, &AnswerError::AlreadyAnswered),
        );
    }
    let rated = surveys.rated_request(&question).await;
    page(
        StatusCode::OK,
        lang,
        View::Form {
            token: &token,
            error: None,
            rated: Some(rated),
        },
    )
}

async fn answer(
    State(surveys): State<Surveys>,
    Path(token): Path<String>,
    headers: HeaderMap,
    form: Result<Form<AnswerForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let json = wants_json(&headers);
    let form = match form {
        Ok(Form(f)) => f,
        Err(e) => {
            let text = format!(
                "the answer must be a form (application/x-www-form-urlencoded) with score 1 to 5, \
                 and optionally comment and opt_out: {e}"
            );
            return cors(if json {
                json_error(StatusCode::BAD_REQUEST, &text)
            } else {
                (StatusCode::BAD_REQUEST, text + "\n").into_response()
            });
        }
    };
    let question = match surveys.question(&token).await {
        Ok(q) => q,
        Err(e) => return cors(unavailable(&e.to_string(), &headers)),
    };
    let lang = language(form.lang.as_deref(), question.as_ref(), &headers);
    let score = form
        .score
        .as_deref()
        .map(str::trim)
        .and_then(|s| s.parse::<u8>().ok())
        .filter(|s| (1..=5).contains(s));
    let opt_out = form
        .opt_out
        .as_deref()
        .is_some_and(|v| matches!(v, "1" | "on" | "true" | "yes"));
    let result = match score {
        Some(score) => {
            let comment = form.comment.filter(|c| !c.trim().is_empty());
            surveys.answer(&token, score, comment).await
        }
        None => Err(AnswerError::InvalidScore),
    };
    let response = match result {
        Ok(question) => {
            let opted_out = opt_out && record_opt_out(&surveys, &question).await;
            if json {
                (
                    StatusCode::OK,
                    Json(serde_json::json!({
                        "status": "recorded",
                        "score": score,
                        "opted_out": opted_out,
                        "message": thanks(lang),
                    })),
                )
                    .into_response()
            } else {
                page(StatusCode::OK, lang, View::Thanks { opted_out })
            }
        }
        Err(e) => {
            let status = match &e {
                AnswerError::InvalidScore => StatusCode::BAD_REQUEST,
                AnswerError::UnknownToken => StatusCode::NOT_FOUND,
                AnswerError::AlreadyAnswered => StatusCode::CONFLICT,
                AnswerError::Expired { .. } => StatusCode::GONE,
                AnswerError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            if status == StatusCode::SERVICE_UNAVAILABLE {
                tracing::error!(error = %e, "survey answer not recorded");
            }
            if json {
                json_error(status, &message(lang, &e))
            } else if matches!(e, AnswerError::InvalidScore) {
                let rated = match &question {
                    Some(q) => Some(surveys.rated_request(q).await),
                    None => None,
                };
                page(
                    status,
                    lang,
                    View::Form {
                        token: &token,
                        error: Some(message(lang, &e)),
                        rated,
                    },
                )
            } else {
                page(status, lang, closed(lang, &e))
            }
        }
    };
    cors(response)
}

/// Records the opt-out of the contact asked; whether it could.
async fn record_opt_out(surveys: &Surveys, question: &SurveyQuestion) -> bool {
    let contact = question
        .contact
        .clone()
        .or_else(|| question.address.as_deref().map(ContactId::new));
    let Some(contact) = contact else {
        return false;
    };
    match surveys.opt_out(contact).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "survey opt-out not recorded");
            false
        }
    }
}

fn cors(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
    response
}

fn json_error(status: StatusCode, text: &str) -> Response {
    (status, Json(serde_json::json!({ "error": text }))).into_response()
}

fn unavailable(detail: &str, headers: &HeaderMap) -> Response {
    tracing::error!(error = detail, "survey page: store failure");
    let text = format!("the survey cannot be reached now ({detail}): try again later");
    if wants_json(headers) {
        json_error(StatusCode::SERVICE_UNAVAILABLE, &text)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, text + "\n").into_response()
    }
}

/// The refusal, in the page's language.
fn message(lang: Lang, e: &AnswerError) -> String {
    match (lang, e) {
        (Lang::Fr, AnswerError::UnknownToken) => {
            "Ce lien d'enquête n'est pas valide : vérifiez que l'adresse a été copiée en entier."
                .into()
        }
        (Lang::Fr, AnswerError::AlreadyAnswered) => {
            "Vous avez déjà répondu à cette enquête : merci ! Seule la première réponse compte."
                .into()
        }
        (Lang::Fr, AnswerError::Expired { days }) => format!(
            "Cette enquête est close : les réponses sont reçues pendant {days} jours après la question."
        ),
        (Lang::Fr, AnswerError::InvalidScore) => {
            "Choisissez une note de 1 (pas du tout satisfait) à 5 (très satisfait).".into()
        }
        (Lang::Fr, AnswerError::Store(_)) => {
            "Votre réponse n'a pas pu être enregistrée : réessayez dans un moment.".into()
        }
        (Lang::En, AnswerError::InvalidScore) => {
            "Choose a score from 1 (not at all satisfied) to 5 (very satisfied).".into()
        }
        (Lang::En, e) => {
            let mut text = e.to_string();
            if let Some(first) = text.get(..1) {
                text = first.to_uppercase() + &text[1..];
            }
            text + "."
        }
    }
}

/// `7 décembre 2026` / `7 December 2026`.
fn long_date(date: chrono::NaiveDate, lang: Lang) -> String {
    use chrono::Datelike;
    const FR: [&str; 12] = [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ];
    const EN: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let month = date.month0() as usize;
    let name = match lang {
        Lang::Fr => FR[month],
        Lang::En => EN[month],
    };
    format!("{} {name} {}", date.day(), date.year())
}

fn thanks(lang: Lang) -> &'static str {
    match lang {
        Lang::Fr => "Merci pour votre réponse : elle nous aide à améliorer notre service.",
        Lang::En => "Thank you for your answer: it helps us improve our service.",
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;\
padding:0 1rem;line-height:1.5;color:#1e1e1e}h1{font-size:1.6rem}fieldset{border:1px solid #666;\
padding:1rem}legend{font-weight:bold;padding:0 .3rem}.choice{margin:.4rem 0}\
.choice input{width:1.2rem;height:1.2rem;vertical-align:middle}label{cursor:pointer}\
textarea{width:100%;box-sizing:border-box;font:inherit}button{font:inherit;padding:.5rem 1.5rem;\
background:#000091;color:#fff;border:0;border-radius:4px;cursor:pointer}\
button:focus,input:focus,textarea:focus,a:focus{outline:3px solid #0a76f6;outline-offset:2px}\
[role=alert]{border-left:4px solid #ce0500;padding:.5rem 1rem;background:#fee}\
.note{border-left:4px solid #000091;padding:.5rem 1rem;background:#eef}";

fn page(status: StatusCode, lang: Lang, view: View<'_>) -> Response {
    let (code, form_title, other, other_name) = match lang {
        Lang::Fr => ("fr", "Votre avis sur notre réponse", "en", "English"),
        Lang::En => ("en", "Your opinion of our answer", "fr", "Français"),
    };
    let (title, page_title) = match &view {
        View::Form { error: None, .. } => (form_title, form_title.to_owned()),
        View::Form { error: Some(_), .. } => (
            form_title,
            match lang {
                Lang::Fr => format!("Erreur : {form_title}"),
                Lang::En => format!("Error: {form_title}"),
            },
        ),
        View::Thanks { .. } => {
            let t = match lang {
                Lang::Fr => "Merci pour votre avis",
                Lang::En => "Thank you for your opinion",
            };
            (t, t.to_owned())
        }
        View::Closed(t, _) => (*t, (*t).to_owned()),
    };
    let description = match lang {
        Lang::Fr => "Enquête de satisfaction : notez de 1 à 5 la réponse apportée à votre demande.",
        Lang::En => "Satisfaction survey: rate from 1 to 5 the answer given to your request.",
    };
    let mut body = String::with_capacity(4096);
    body.push_str(&format!(
        "<!DOCTYPE html><html lang=\"{code}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{page_title}</title>{head}<style>{STYLE}</style></head><body><main>\
         <h1>{title}</h1>",
        head = crate::http::public::head(description),
    ));
    match view {
        View::Form {
            token,
            error,
            rated,
        } => {
            if let Some(error) = error {
                body.push_str(&format!(
                    "<div role=\"alert\" id=\"error\"><p>{}</p></div>",
                    escape(&error)
                ));
            }
            if let Some(r) = rated {
                let (about, service, date, reference) = match lang {
                    Lang::Fr => ("Demande évaluée", "Service", "Date", "Référence"),
                    Lang::En => ("Request rated", "Service", "Date", "Reference"),
                };
                body.push_str(&format!(
                    "<section aria-labelledby=\"rated\" id=\"rated-request\"><h2 id=\"rated\">{about}</h2>\
                     <dl><dt>{service}</dt><dd id=\"rated-service\">{}</dd>\
                     <dt>{date}</dt><dd id=\"rated-date\"><time datetime=\"{}\">{}</time></dd>\
                     <dt>{reference}</dt><dd id=\"rated-reference\">{}</dd></dl></section>",
                    escape(&r.service),
                    r.date.format("%Y-%m-%d"),
                    long_date(r.date, lang),
                    escape(&r.reference),
                ));
            }
            let (legend, labels, comment, opt_out, send) = match lang {
                Lang::Fr => (
                    "Êtes-vous satisfait de la réponse apportée à votre demande ?",
                    crate::survey::text::scale_labels(lang),
                    "Un commentaire ? (facultatif, 2 000 caractères au plus)",
                    "Ne plus me proposer d'enquête de satisfaction",
                    "Envoyer ma réponse",
                ),
                Lang::En => (
                    "Are you satisfied with the answer to your request?",
                    crate::survey::text::scale_labels(lang),
                    "Any comment? (optional, at most 2,000 characters)",
                    "Do not ask me to take a satisfaction survey again",
                    "Send my answer",
                ),
            };
            let token = escape(token);
            body.push_str(&format!(
                "<form method=\"post\" action=\"{token}\">\
                 <input type=\"hidden\" name=\"lang\" value=\"{code}\">\
                 <fieldset><legend>{legend}</legend>"
            ));
            for (i, label) in labels.iter().enumerate() {
                let n = i + 1;
                body.push_str(&format!(
                    "<div class=\"choice\"><input type=\"radio\" id=\"score-{n}\" name=\"score\" \
                     value=\"{n}\" required><label for=\"score-{n}\"> {label}</label></div>"
                ));
            }
            body.push_str(&format!(
                "</fieldset><p><label for=\"comment\">{comment}</label><br>\
                 <textarea id=\"comment\" name=\"comment\" rows=\"4\" maxlength=\"2000\"></textarea></p>\
                 <p><input type=\"checkbox\" id=\"opt_out\" name=\"opt_out\" value=\"1\"> \
                 <label for=\"opt_out\">{opt_out}</label></p>\
                 <p><button type=\"submit\">{send}</button></p></form>"
            ));
        }
        View::Thanks { opted_out } => {
            body.push_str(&format!(
                "<div class=\"note\" role=\"status\"><p>{}</p>",
                thanks(lang)
            ));
            if opted_out {
                body.push_str(match lang {
                    Lang::Fr => "<p>Nous ne vous proposerons plus d'enquête de satisfaction.</p>",
                    Lang::En => "<p>We will not ask you to take a satisfaction survey again.</p>",
                });
            }
            body.push_str("</div>");
        }
        View::Closed(_, text) => {
            body.push_str(&format!(
                "<div class=\"note\" role=\"status\"><p>{}</p></div>",
                escape(&text)
            ));
        }
    }
    let accessibility = match lang {
        Lang::Fr => "Accessibilité",
        Lang::En => "Accessibility",
    };
    body.push_str(&format!(
        "<p><a href=\"?lang={other}\" hreflang=\"{other}\" lang=\"{other}\">{other_name}</a></p>\
         </main><footer><p><a href=\"/accessibility?lang={code}\">{accessibility}</a></p></footer>\
         </body></html>"
    ));
    (status, [(header::CONTENT_LANGUAGE, code)], Html(body)).into_response()
}
