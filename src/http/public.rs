//! What every public page shares, and the pages every deployment has: the favicon
//! (`/favicon.svg`, `/favicon.ico`), the `<head>` lines each public page carries ([`head`]: a
//! meta description and the icon) and the accessibility statement (`/accessibility`, RGAA
//! model, in French or English), configured by `[accessibility]`.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};

use crate::obs::page::{escape, Lang};

/// The icon: a counter window (guichet) in the service's blue.
const FAVICON_SVG: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\">\
<rect width=\"32\" height=\"32\" rx=\"6\" fill=\"#000091\"/>\
<path d=\"M7 9h18v6H7z M10 19h12v4H10z\" fill=\"#fff\"/></svg>";

/// The `<head>` lines every public page carries: its description (escaped here) and the icon.
pub fn head(description: &str) -> String {
    format!(
        "<meta name=\"description\" content=\"{}\">\
         <link rel=\"icon\" href=\"/favicon.svg\" type=\"image/svg+xml\">",
        escape(description)
    )
}

/// `[accessibility]`: the accessibility statement (`/accessibility`), after the RGAA model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessibilityConfig {
    /// The body making the statement (default: `[indicators] service_name`).
    #[serde(default)]
    pub entity: Option<String>,
    /// `non_compliant` (the default: no audit yet), `partially_compliant` or `compliant`.
    #[serde(default)]
    pub status: Compliance,
    /// The audit's result, when one was made (for example `"Audit by X on 2026-11-02: 87 % of
    /// the RGAA 4.1 criteria met"`).
    #[serde(default)]
    pub audit: Option<String>,
    /// The date the statement was made (`YYYY-MM-DD`).
    #[serde(default)]
    pub date: Option<chrono::NaiveDate>,
    /// Where to report a problem of access: an email address or a web address.
    #[serde(default)]
    pub contact: Option<String>,
    /// Contents known not to be accessible, one line each.
    #[serde(default)]
    pub non_accessible: Vec<String>,
}

impl Default for AccessibilityConfig {
    fn default() -> Self {
        AccessibilityConfig {
            entity: None,
            status: Compliance::NonCompliant,
            audit: None,
            date: None,
            contact: None,
            non_accessible: Vec::new(),
        }
    }
}

/// The compliance status with the RGAA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compliance {
    /// Not audited, or under half of the criteria met.
    #[default]
    NonCompliant,
    /// At least half of the criteria met.
    PartiallyCompliant,
    /// Every criterion met.
    Compliant,
}

impl AccessibilityConfig {
    /// Checks the settings; the message says what to fix.
    pub fn validate(&self) -> Result<(), String> {
        let long = |s: &Option<String>| s.as_ref().is_some_and(|s| s.len() > 2000);
        if long(&self.entity) || long(&self.audit) || long(&self.contact) {
            return Err("entity, audit and contact may have at most 2000 bytes".into());
        }
        if self.non_accessible.len() > 100 || self.non_accessible.iter().any(|l| l.len() > 2000) {
            return Err("non_accessible may list at most 100 lines of 2000 bytes".into());
        }
        Ok(())
    }
}

#[derive(Clone)]
struct Statement {
    config: AccessibilityConfig,
    service: String,
}

#[derive(Deserialize)]
struct PageQuery {
    lang: Option<String>,
}

/// The favicon and the accessibility statement.
pub fn routes(config: &crate::config::Config) -> Router {
    Router::new()
        .route("/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .route("/accessibility", get(statement))
        .with_state(Statement {
            config: config.accessibility.clone(),
            service: config.indicators.service_name.clone(),
        })
}

async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        FAVICON_SVG,
    )
        .into_response()
}

/// The page's language: `?lang=` (fr or en), else the browser's; an unknown `lang` is a 400.
pub fn page_lang(asked: Option<&str>, headers: &HeaderMap) -> Result<Lang, String> {
    match asked {
        Some(l) => Lang::parse(l),
        None => Ok(Lang::from_accept_language(
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|h| h.to_str().ok()),
        )),
    }
}

/// The style of the simple public pages (statement, errors).
pub const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;\
padding:0 1rem;line-height:1.5;color:#1e1e1e;background:#fff}h1{font-size:1.6rem}\
h2{font-size:1.2rem;margin-top:1.5rem}a{color:#000091}\
a:focus-visible{outline:3px solid #000091;outline-offset:2px}";

/// A short error page with its own title, in `lang`.
pub fn error_page(status: StatusCode, lang: Lang, title: &str, text: &str) -> Response {
    let code = lang.code();
    let body = format!(
        "<!DOCTYPE html><html lang=\"{code}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title>{head}<style>{STYLE}</style></head><body><main>\
         <h1>{title}</h1><p>{text}</p></main></body></html>",
        title = escape(title),
        head = head(title),
        text = escape(text),
    );
    (status, [(header::CONTENT_LANGUAGE, code)], Html(body)).into_response()
}

async fn statement(
    State(s): State<Statement>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = match page_lang(q.lang.as_deref(), &headers) {
        Ok(l) => l,
        Err(e) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                Lang::Fr,
                "Demande incorrecte / Bad request",
                &e,
            )
        }
    };
    (
        [(header::CONTENT_LANGUAGE, lang.code())],
        Html(render_statement(&s.config, &s.service, lang)),
    )
        .into_response()
}

/// The statement page.
pub fn render_statement(c: &AccessibilityConfig, service: &str, lang: Lang) -> String {
    let fr = lang == Lang::Fr;
    let entity = escape(c.entity.as_deref().unwrap_or(service));
    let t = |f: &'static str, e: &'static str| if fr { f } else { e };
    let title = t("Déclaration d'accessibilité", "Accessibility statement");
    let status = match (c.status, fr) {
        (Compliance::NonCompliant, true) => "non conforme",
        (Compliance::PartiallyCompliant, true) => "partiellement conforme",
        (Compliance::Compliant, true) => "totalement conforme",
        (Compliance::NonCompliant, false) => "not compliant",
        (Compliance::PartiallyCompliant, false) => "partially compliant",
        (Compliance::Compliant, false) => "fully compliant",
    };
    let mut b = String::with_capacity(6000);
    let code = lang.code();
    let (other, other_name) = if fr {
        ("en", "English")
    } else {
        ("fr", "Français")
    };
    b.push_str(&format!(
        "<!DOCTYPE html><html lang=\"{code}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} — {entity}</title>{head}<style>{STYLE}</style></head><body><main>\
         <h1>{title}</h1>",
        head = head(t(
            "Déclaration d'accessibilité des pages publiques : état de conformité au RGAA, \
             contenus non accessibles, contact et voies de recours.",
            "Accessibility statement of the public pages: compliance with the RGAA, \
             contents not accessible, contact and remedies."
        )),
    ));
    b.push_str(&format!(
        "<p>{entity} {}</p><p>{}</p>",
        t(
            "s'engage à rendre ses services numériques accessibles, conformément à l'article 47 \
             de la loi n° 2005-102 du 11 février 2005.",
            "is committed to making its digital services accessible, in accordance with \
             article 47 of French law no. 2005-102 of 11 February 2005."
        ),
        t(
            "Cette déclaration s'applique aux pages publiques de Guichet : la fenêtre de \
             discussion, l'enquête de satisfaction et les indicateurs de qualité.",
            "This statement applies to Guichet's public pages: the chat window, the \
             satisfaction survey and the quality indicators."
        ),
    ));
    b.push_str(&format!(
        "<h2>{}</h2><p>{} <strong>{status}</strong> {}</p>",
        t("État de conformité", "Compliance status"),
        t("Ces pages sont", "These pages are"),
        t(
            "avec le référentiel général d'amélioration de l'accessibilité (RGAA), version 4.1.",
            "with the French accessibility framework (RGAA), version 4.1."
        ),
    ));
    b.push_str(&format!(
        "<h2>{}</h2>",
        t("Résultats des tests", "Test results")
    ));
    match &c.audit {
        Some(audit) => b.push_str(&format!("<p>{}</p>", escape(audit))),
        None => b.push_str(&format!(
            "<p>{}</p>",
            t(
                "Aucun audit de conformité n'a encore été réalisé. Chaque version est vérifiée \
                 par des tests automatiques (axe-core, Lighthouse) et au clavier seul, qui ne \
                 remplacent pas un audit.",
                "No compliance audit has been made yet. Each version is checked by automatic \
                 tests (axe-core, Lighthouse) and with the keyboard alone, which do not replace \
                 an audit."
            )
        )),
    }
    b.push_str(&format!(
        "<h2>{}</h2>",
        t("Contenus non accessibles", "Contents not accessible")
    ));
    if c.non_accessible.is_empty() {
        b.push_str(&format!(
            "<p>{}</p>",
            t(
                "Aucun contenu non accessible n'est connu.",
                "No inaccessible content is known."
            )
        ));
    } else {
        b.push_str("<ul>");
        for line in &c.non_accessible {
            b.push_str(&format!("<li>{}</li>", escape(line)));
        }
        b.push_str("</ul>");
    }
    b.push_str(&format!(
        "<h2>{}</h2><p>{}</p>",
        t("Technologies utilisées", "Technologies used"),
        t(
            "HTML, CSS ; JavaScript pour la discussion en direct (le formulaire s'affiche sans).",
            "HTML, CSS; JavaScript for the live chat (its form shows without it)."
        ),
    ));
    if let Some(date) = c.date {
        b.push_str(&format!(
            "<h2>{}</h2><p>{} {date}.</p>",
            t(
                "Établissement de cette déclaration",
                "Date of this statement"
            ),
            t(
                "Cette déclaration a été établie le",
                "This statement was made on"
            ),
        ));
    }
    b.push_str(&format!(
        "<h2>{}</h2><p>{}</p>",
        t("Retour d'information et contact", "Feedback and contact"),
        t(
            "Si vous n'arrivez pas à accéder à un contenu ou à un service, contactez-nous pour \
             être orienté vers une alternative accessible ou obtenir le contenu sous une autre \
             forme.",
            "If you cannot access a content or a service, contact us to be directed to an \
             accessible alternative or to get the content in another form."
        ),
    ));
    if let Some(contact) = &c.contact {
        let href = if contact.contains('@') && !contact.contains("://") {
            format!("mailto:{contact}")
        } else {
            contact.clone()
        };
        b.push_str(&format!(
            "<p><a href=\"{}\">{}</a></p>",
            escape(&href),
            escape(contact)
        ));
    }
    b.push_str(&format!(
        "<h2>{}</h2><p>{}</p><ul><li>{}</li><li>{}</li><li>{}</li></ul>",
        t("Voies de recours", "Remedies"),
        t(
            "Si vous nous avez signalé un défaut d'accessibilité qui vous empêche d'accéder à un \
             contenu ou à un service et que vous n'avez pas obtenu de réponse satisfaisante, vous \
             pouvez :",
            "If you reported an accessibility problem that keeps you from a content or a \
             service and did not get a satisfactory answer, you may:"
        ),
        t(
            "écrire un message au Défenseur des droits (formulaire en ligne sur defenseurdesdroits.fr) ;",
            "write to the Défenseur des droits (online form at defenseurdesdroits.fr);"
        ),
        t(
            "contacter le délégué du Défenseur des droits dans votre région ;",
            "contact the Défenseur des droits' delegate in your region;"
        ),
        t(
            "envoyer un courrier (gratuit, sans timbre) : Défenseur des droits, Libre réponse \
             71120, 75342 Paris CEDEX 07.",
            "send a letter (free, no stamp): Défenseur des droits, Libre réponse 71120, 75342 \
             Paris CEDEX 07, France."
        ),
    ));
    b.push_str(&format!(
        "<p><a href=\"?lang={other}\" hreflang=\"{other}\" lang=\"{other}\">{other_name}</a></p>\
         </main></body></html>"
    ));
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_says_its_status_and_escapes_what_it_is_given() {
        let mut c = AccessibilityConfig::default();
        let page = render_statement(&c, "Mairie <test>", Lang::Fr);
        assert!(page.contains("<strong>non conforme</strong>"));
        assert!(page.contains("Mairie &lt;test&gt;"));
        assert!(page.contains("meta name=\"description\""));
        c.status = Compliance::PartiallyCompliant;
        c.contact = Some("a11y@example.org".into());
        let page = render_statement(&c, "Town hall", Lang::En);
        assert!(page.contains("<html lang=\"en\">"));
        assert!(page.contains("partially compliant"));
        assert!(page.contains("mailto:a11y@example.org"));
    }
}
