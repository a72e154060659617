//! The public quality indicators page (`GET /indicators.html`): plain server-rendered HTML, one
//! section per indicator with a heading, an inline SVG bar chart (with a text title and
//! description) and the same figures as a table, in French or English. No JavaScript, no
//! external resource: it works in any browser, with a screen reader, and printed. Queues are
//! shown by their display names; which queues are shown is the route's choice (public ones).
//! A bad request gets [`render_error`], in the page's language.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::indicators::{IndicatorRow, Period, Report};

/// The page's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Français.
    Fr,
    /// English.
    En,
}

impl Lang {
    /// Parses `fr` or `en`.
    pub fn parse(text: &str) -> Result<Lang, String> {
        match text {
            "fr" => Ok(Lang::Fr),
            "en" => Ok(Lang::En),
            other => Err(format!(
                "unknown language {other:?}: use lang=fr or lang=en"
            )),
        }
    }

    /// The language preferred by an `Accept-Language` header among French and English (by
    /// quality, then order); French when neither is named.
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for item in header.unwrap_or("").split(',') {
            let mut parts = item.trim().split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|v| v.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            let lang = if tag == "fr" || tag.starts_with("fr-") {
                Lang::Fr
            } else if tag == "en" || tag.starts_with("en-") {
                Lang::En
            } else {
                continue;
            };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::Fr, |(_, l)| l)
    }

    /// The ISO code.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    fn t(self, fr: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Fr => fr,
            Lang::En => en,
        }
    }

    /// `n` and the singular or plural word: in French 0 and 1 take the singular, in English
    /// only 1 does.
    pub fn count(self, n: u64, fr: (&str, &str), en: (&str, &str)) -> String {
        let (one, many) = match self {
            Lang::Fr => fr,
            Lang::En => en,
        };
        let singular = match self {
            Lang::Fr => n <= 1,
            Lang::En => n == 1,
        };
        format!("{n} {}", if singular { one } else { many })
    }
}

/// The display names of the queues shown, by id (a queue missing here is shown by its id).
pub type QueueNames = HashMap<String, String>;

/// What a bad request to the page is told, in the page's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadRequest {
    /// `period` is not day, week or month.
    Period,
    /// `date` is not `YYYY-MM-DD`.
    Date,
    /// `lang` is not fr or en.
    Language,
    /// A parameter the page does not take.
    Parameter,
}

impl BadRequest {
    /// The message, saying what to write instead (never echoing the request).
    pub fn message(&self, lang: Lang) -> &'static str {
        match self {
            BadRequest::Period => lang.t(
                "La période demandée n'existe pas : choisissez period=day (jour), period=week \
                 (semaine) ou period=month (mois).",
                "Unknown period: use period=day, period=week or period=month.",
            ),
            BadRequest::Date => lang.t(
                "La date demandée n'est pas valide : écrivez-la AAAA-MM-JJ, par exemple \
                 date=2026-03-31.",
                "Invalid date: write it YYYY-MM-DD, for example date=2026-03-31.",
            ),
            BadRequest::Language => lang.t(
                "Langue inconnue : choisissez lang=fr ou lang=en.",
                "Unknown language: use lang=fr or lang=en.",
            ),
            BadRequest::Parameter => lang.t(
                "Paramètre inconnu : la page accepte period (day, week, month), date \
                 (AAAA-MM-JJ) et lang (fr, en).",
                "Unknown parameter: the page takes period (day, week, month), date \
                 (YYYY-MM-DD) and lang (fr, en).",
            ),
        }
    }
}

/// A short page for a bad request, in `lang`, with a link to today's figures.
pub fn render_error(problem: &BadRequest, lang: Lang, service: &str) -> String {
    let title = lang.t("Demande incorrecte", "Bad request");
    format!(
        "<!DOCTYPE html>\n<html lang=\"{code}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} — {service}</title>\n{head}\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n\
         <h1>{title}</h1>\n<p id=\"error\">{message}</p>\n\
         <p><a href=\"/indicators.html?lang={code}\">{back}</a></p>\n</main>\n</body>\n</html>\n",
        code = lang.code(),
        service = escape(service),
        head = crate::http::public::head(title),
        message = escape(problem.message(lang)),
        back = lang.t("Voir les indicateurs du jour", "See today's indicators"),
    )
}

/// Formats a count.
pub fn format_count(n: u64) -> String {
    n.to_string()
}

/// Formats a wait in whole seconds (`65 s`), `—` when absent.
pub fn format_wait(secs: Option<f64>) -> String {
    secs.map_or_else(|| "—".to_owned(), |s| format!("{} s", s.round() as u64))
}

/// Formats a rate (0 to 1) as a percentage with one decimal (`87.5 %`, French `87,5 %`).
pub fn format_rate(rate: Option<f64>, lang: Lang) -> String {
    rate.map_or_else(
        || "—".to_owned(),
        |r| decimal(format!("{:.1} %", r * 100.0), lang),
    )
}

/// Formats a satisfaction average with one decimal (`4.3 / 5`).
pub fn format_score(score: Option<f64>, lang: Lang) -> String {
    score.map_or_else(|| "—".to_owned(), |s| decimal(format!("{s:.1} / 5"), lang))
}

fn decimal(text: String, lang: Lang) -> String {
    match lang {
        Lang::Fr => text.replace('.', ","),
        Lang::En => text,
    }
}

pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn channel_name(channel: &str, lang: Lang) -> &'static str {
    match channel {
        "voice" => lang.t("Téléphone", "Phone"),
        "email" => lang.t("Courriel", "Email"),
        "sms" => "SMS",
        "chat" => lang.t("Messagerie instantanée", "Web chat"),
        _ => lang.t("Autre", "Other"),
    }
}

fn delay_text(secs: Option<u64>, lang: Lang) -> String {
    let Some(s) = secs else {
        return lang.t("variable", "varies").to_owned();
    };
    if s % 86_400 == 0 && s > 0 {
        lang.count(s / 86_400, ("jour", "jours"), ("day", "days"))
    } else if s % 3600 == 0 && s > 0 {
        lang.count(s / 3600, ("heure", "heures"), ("hour", "hours"))
    } else if s % 60 == 0 && s > 0 {
        lang.count(s / 60, ("minute", "minutes"), ("minute", "minutes"))
    } else {
        lang.count(s, ("seconde", "secondes"), ("second", "seconds"))
    }
}

fn working_days_text(days: u32, lang: Lang) -> String {
    lang.count(
        u64::from(days),
        ("jour ouvré", "jours ouvrés"),
        ("working day", "working days"),
    )
}

/// One indicator: its id, heading, explanation, and how to read a row.
struct Indicator {
    id: &'static str,
    title: (&'static str, &'static str),
    help: (&'static str, &'static str),
    /// The value for the bar, and the text shown.
    value: fn(&IndicatorRow, Lang) -> (Option<f64>, String),
    /// A fixed scale (rates: 1, scores: 5), or the largest value.
    scale: Option<f64>,
}

const INDICATORS: &[Indicator] = &[
    Indicator {
        id: "requests",
        title: ("Nombre de demandes", "Number of requests"),
        help: (
            "Demandes reçues sur la période (appels, courriels, SMS, messages instantanés).",
            "Requests received in the period (calls, emails, SMS, chats).",
        ),
        value: |r, _| (Some(r.requests as f64), format_count(r.requests)),
        scale: None,
    },
    Indicator {
        id: "average_wait",
        title: (
            "Attente moyenne avant la prise en charge",
            "Average wait before an agent answered",
        ),
        help: (
            "Temps moyen entre l'arrivée de la demande et sa prise en charge par un agent, en secondes.",
            "Mean time from a request's arrival to an agent answering it, in seconds.",
        ),
        value: |r, _| (r.average_wait_secs, format_wait(r.average_wait_secs)),
        scale: None,
    },
    Indicator {
        id: "within_delay",
        title: (
            "Part des demandes traitées dans le délai annoncé",
            "Share answered within the announced delay",
        ),
        help: (
            "Demandes prises en charge dans le délai annoncé, sur les demandes prises en charge ou abandonnées.",
            "Requests answered within the announced delay, over requests answered or abandoned.",
        ),
        value: |r, l| (r.within_delay_rate, format_rate(r.within_delay_rate, l)),
        scale: Some(1.0),
    },
    Indicator {
        id: "abandonment",
        title: ("Taux d'abandon", "Abandonment rate"),
        help: (
            "Demandes abandonnées avant la prise en charge, sur les demandes prises en charge ou abandonnées.",
            "Requests abandoned before an answer, over requests answered or abandoned.",
        ),
        value: |r, l| (r.abandonment_rate, format_rate(r.abandonment_rate, l)),
        scale: Some(1.0),
    },
    Indicator {
        id: "satisfaction",
        title: ("Satisfaction des usagers", "User satisfaction"),
        help: (
            "Note moyenne donnée par les usagers après leur demande (de 1 à 5), et nombre de réponses.",
            "Average score given by users after their request (1 to 5), and number of answers.",
        ),
        value: |r, l| {
            (
                r.satisfaction_average,
                format!(
                    "{} ({})",
                    format_score(r.satisfaction_average, l),
                    l.count(
                        r.satisfaction_answers,
                        ("réponse", "réponses"),
                        ("answer", "answers")
                    )
                ),
            )
        },
        scale: Some(5.0),
    },
];

fn queue_name<'a>(queue: &'a str, names: &'a QueueNames) -> &'a str {
    names
        .get(queue)
        .map(String::as_str)
        .filter(|n| !n.trim().is_empty())
        .unwrap_or(queue)
}

fn row_label(row: &IndicatorRow, lang: Lang, names: &QueueNames) -> String {
    match (&row.queue, &row.channel) {
        (Some(q), Some(c)) => format!("{} — {}", queue_name(q, names), channel_name(c, lang)),
        (None, Some(c)) => format!(
            "{} — {}",
            lang.t("Toutes files", "All queues"),
            channel_name(c, lang)
        ),
        _ => lang.t("Total", "Total").to_owned(),
    }
}

/// Renders the page for a report. `service` names the service in the title; `names` gives
/// the queues' display names.
pub fn render(report: &Report, lang: Lang, service: &str, names: &QueueNames) -> String {
    let mut rows: Vec<&IndicatorRow> = report.rows.iter().collect();
    rows.push(&report.total);
    let period_text = match report.period {
        Period::Day => format!("{} {}", lang.t("Journée du", "Day of"), report.from),
        Period::Week => format!(
            "{} {} {} {}",
            lang.t("Semaine du", "Week from"),
            report.from,
            lang.t("au", "to"),
            report.to
        ),
        Period::Month => format!(
            "{} {} {} {}",
            lang.t("Mois du", "Month from"),
            report.from,
            lang.t("au", "to"),
            report.to
        ),
    };
    let title = format!(
        "{} — {}",
        lang.t(
            "Indicateurs de qualité de service",
            "Service quality indicators"
        ),
        service
    );
    let mut h = String::with_capacity(32 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"{code}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n{head}\n<style>{CSS}</style>\n</head>\n<body>\n\
         <a class=\"skip\" href=\"#main\">{skip}</a>\n<header>\n<h1>{title}</h1>\n\
         <p id=\"period\" data-from=\"{from}\" data-to=\"{to}\">{period} \
         ({tz_label} {tz})</p>\n<nav aria-label=\"{lang_label}\"><a href=\"?period={p}&amp;date={from}&amp;lang={other}\" \
         lang=\"{other}\" hreflang=\"{other}\">{other_name}</a></nav>\n</header>\n<main id=\"main\">\n",
        code = lang.code(),
        title = escape(&title),
        head = crate::http::public::head(lang.t(
            "Indicateurs publics de qualité de service : délai moyen d'attente, part des demandes \
             traitées dans le délai annoncé, abandons et satisfaction, par canal et par service.",
            "Public service quality indicators: average wait, share of requests answered within \
             the announced delay, abandonment and satisfaction, per channel and service."
        )),
        skip = lang.t("Aller au contenu", "Skip to content"),
        from = report.from,
        to = report.to,
        period = escape(&period_text),
        tz_label = lang.t("fuseau horaire", "time zone"),
        tz = escape(&report.time_zone),
        lang_label = lang.t("Langue", "Language"),
        p = report.period.as_str(),
        other = match lang {
            Lang::Fr => "en",
            Lang::En => "fr",
        },
        other_name = match lang {
            Lang::Fr => "English",
            Lang::En => "Français",
        },
    );
    // The period chooser: a plain GET form.
    let _ = write!(
        h,
        "<form method=\"get\" action=\"/indicators.html\">\n<fieldset><legend>{legend}</legend>\n\
         <label for=\"f-period\">{period_l}</label>\n<select id=\"f-period\" name=\"period\">",
        legend = lang.t("Choisir la période", "Choose the period"),
        period_l = lang.t("Période", "Period"),
    );
    for (p, fr, en) in [
        (Period::Day, "Jour", "Day"),
        (Period::Week, "Semaine", "Week"),
        (Period::Month, "Mois", "Month"),
    ] {
        let _ = write!(
            h,
            "<option value=\"{}\"{}>{}</option>",
            p.as_str(),
            if p == report.period { " selected" } else { "" },
            lang.t(fr, en)
        );
    }
    let _ = write!(
        h,
        "</select>\n<label for=\"f-date\">{date_l}</label>\n\
         <input id=\"f-date\" name=\"date\" type=\"date\" value=\"{from}\">\n\
         <input type=\"hidden\" name=\"lang\" value=\"{code}\">\n<button type=\"submit\">{show}</button>\n\
         </fieldset>\n</form>\n",
        date_l = lang.t("Date (AAAA-MM-JJ)", "Date (YYYY-MM-DD)"),
        from = report.from,
        code = lang.code(),
        show = lang.t("Afficher", "Show"),
    );
    if report.rows.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"empty\">{}</p>",
            lang.t(
                "Aucune demande sur cette période.",
                "No requests in this period."
            )
        );
    }
    // Announced delays.
    let _ = write!(
        h,
        "<section aria-labelledby=\"h-delays\">\n<h2 id=\"h-delays\">{}</h2>\n<ul>\n",
        lang.t("Délais annoncés", "Announced delays")
    );
    for row in &report.rows {
        let _ = writeln!(
            h,
            "<li>{}{}{}</li>",
            escape(&row_label(row, lang, names)),
            lang.t(" : ", ": "),
            escape(&match row.announced_delay_working_days {
                Some(days) => working_days_text(days, lang),
                None => delay_text(row.announced_delay_secs, lang),
            })
        );
    }
    h.push_str("</ul>\n</section>\n");
    for ind in INDICATORS {
        section(&mut h, ind, &rows, lang, names);
    }
    let _ = write!(
        h,
        "<section aria-labelledby=\"h-method\">\n<h2 id=\"h-method\">{}</h2>\n<p>{}</p>\n\
         <p><a href=\"/indicators?period={}&amp;date={}\">{}</a></p>\n</section>\n</main>\n\
         <footer><p><a href=\"/accessibility?lang={}\">{}</a></p></footer>\n</body>\n</html>\n",
        lang.t("Méthode", "Method"),
        lang.t(
            "Une demande est comptée le jour de son arrivée, dans sa file et son canal d'arrivée. \
             Les délais annoncés sont les objectifs de service de chaque file. Les chiffres sont \
             calculés à partir de données agrégées, sans donnée personnelle.",
            "A request counts on the day it arrived, in the queue and channel it arrived in. \
             Announced delays are each queue's service targets. Figures are computed from \
             aggregated data, without personal data."
        ),
        report.period.as_str(),
        report.from,
        lang.t("Les mêmes données au format JSON", "The same data as JSON"),
        lang.code(),
        lang.t("Accessibilité", "Accessibility"),
    );
    h
}

const BAR_HEIGHT: u32 = 28;
const LABEL_WIDTH: u32 = 300;
const BAR_WIDTH: u32 = 360;

fn section(
    h: &mut String,
    ind: &Indicator,
    rows: &[&IndicatorRow],
    lang: Lang,
    names: &QueueNames,
) {
    let title = lang.t(ind.title.0, ind.title.1);
    let help = lang.t(ind.help.0, ind.help.1);
    let values: Vec<(Option<f64>, String)> = rows.iter().map(|r| (ind.value)(r, lang)).collect();
    let scale = ind.scale.unwrap_or_else(|| {
        values
            .iter()
            .filter_map(|(v, _)| *v)
            .fold(0.0_f64, f64::max)
            .max(1.0)
    });
    let id = ind.id;
    let _ = write!(
        h,
        "<section aria-labelledby=\"h-{id}\" id=\"s-{id}\">\n<h2 id=\"h-{id}\">{title}</h2>\n\
         <p id=\"d-{id}\">{help}</p>\n<figure>\n",
        title = escape(title),
        help = escape(help),
    );
    let height = BAR_HEIGHT * rows.len().max(1) as u32 + 10;
    let width = LABEL_WIDTH + BAR_WIDTH + 160;
    let _ = write!(
        h,
        "<svg role=\"img\" aria-labelledby=\"t-{id} d-{id}\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" xmlns=\"http://www.w3.org/2000/svg\">\n\
         <title id=\"t-{id}\">{title}</title>\n",
        title = escape(title),
    );
    for (i, (row, (value, text))) in rows.iter().zip(&values).enumerate() {
        let y = i as u32 * BAR_HEIGHT + 5;
        let w = value.map_or(0.0, |v| (v / scale).clamp(0.0, 1.0) * f64::from(BAR_WIDTH));
        let class = if row.queue.is_none() {
            "bar total"
        } else {
            "bar"
        };
        let _ = writeln!(
            h,
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{label}</text>\
             <rect class=\"{class}\" x=\"{bx}\" y=\"{y}\" width=\"{w:.1}\" height=\"{bh}\"></rect>\
             <text x=\"{vx:.1}\" y=\"{ty}\">{text}</text>",
            lx = LABEL_WIDTH - 8,
            ty = y + BAR_HEIGHT / 2 + 4,
            label = escape(&row_label(row, lang, names)),
            bx = LABEL_WIDTH,
            bh = BAR_HEIGHT - 8,
            vx = f64::from(LABEL_WIDTH) + w + 6.0,
            text = escape(text),
        );
    }
    let _ = write!(
        h,
        "</svg>\n<figcaption>{}</figcaption>\n</figure>\n<table id=\"table-{id}\">\n\
         <caption>{} — {}</caption>\n<thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
         <th scope=\"col\">{}</th></tr></thead>\n<tbody>\n",
        lang.t(
            "Le tableau ci-dessous donne les mêmes chiffres.",
            "The table below gives the same figures."
        ),
        escape(title),
        lang.t("tableau", "table"),
        lang.t("File", "Queue"),
        lang.t("Canal", "Channel"),
        lang.t("Valeur", "Value"),
    );
    for (row, (value, text)) in rows.iter().zip(&values) {
        let queue = row.queue.as_deref().map_or_else(
            || lang.t("Toutes", "All").to_owned(),
            |q| escape(queue_name(q, names)),
        );
        let channel = row.channel.as_deref().map_or_else(
            || lang.t("Tous", "All").to_owned(),
            |c| channel_name(c, lang).to_owned(),
        );
        let _ = writeln!(
            h,
            "<tr data-queue=\"{}\" data-channel=\"{}\"><th scope=\"row\">{queue}</th><td>{channel}</td>\
             <td class=\"value\" data-value=\"{}\">{}</td></tr>",
            escape(row.queue.as_deref().unwrap_or("")),
            escape(row.channel.as_deref().unwrap_or("")),
            value.map_or_else(String::new, |v| v.to_string()),
            escape(text),
        );
    }
    h.push_str("</tbody>\n</table>\n</section>\n");
}

const CSS: &str =
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:0 auto;padding:1rem;\
color:#161616;background:#fff;line-height:1.5}h1{font-size:1.6rem}h2{font-size:1.25rem;\
margin-top:2rem;border-bottom:2px solid #000091}.skip{position:absolute;left:-999px}\
.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem}svg{max-width:100%;height:auto}\
svg text{font-size:13px;fill:#161616}.bar{fill:#000091}.bar.total{fill:#6a6af4}\
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #929292;padding:.25rem .5rem;\
text-align:left}td.value{text-align:right}caption{text-align:left;font-weight:bold}\
fieldset{border:1px solid #929292}label{margin:0 .25rem 0 .75rem}a{color:#000091}\
a:focus,button:focus,select:focus,input:focus{outline:3px solid #0a76f6}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_of_french_and_english() {
        assert_eq!(Lang::from_accept_language(None), Lang::Fr);
        assert_eq!(Lang::from_accept_language(Some("de-DE")), Lang::Fr);
        assert_eq!(Lang::from_accept_language(Some("en-GB,en;q=0.9")), Lang::En);
        assert_eq!(
            Lang::from_accept_language(Some("de;q=1, fr;q=0.5, en;q=0.8")),
            Lang::En
        );
        assert_eq!(
            Lang::from_accept_language(Some("fr-FR, en;q=0.9")),
            Lang::Fr
        );
        assert_eq!(
            Lang::from_accept_language(Some("en;q=0, fr;q=0.1")),
            Lang::Fr
        );
    }

    #[test]
    fn figures_are_formatted_per_language_and_text_is_escaped() {
        assert_eq!(format_rate(Some(0.875), Lang::En), "87.5 %");
        assert_eq!(format_rate(Some(0.875), Lang::Fr), "87,5 %");
        assert_eq!(format_rate(None, Lang::Fr), "—");
        assert_eq!(format_wait(Some(64.6)), "65 s");
        assert_eq!(format_score(Some(4.25), Lang::Fr), "4,2 / 5");
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(delay_text(Some(432_000), Lang::En), "5 days");
        assert_eq!(delay_text(Some(180), Lang::Fr), "3 minutes");
        assert_eq!(delay_text(Some(3600), Lang::Fr), "1 heure");
        assert_eq!(delay_text(Some(86_400), Lang::En), "1 day");
        assert_eq!(working_days_text(1, Lang::Fr), "1 jour ouvré");
        assert_eq!(working_days_text(5, Lang::Fr), "5 jours ouvrés");
        assert_eq!(
            Lang::Fr.count(0, ("réponse", "réponses"), ("a", "b")),
            "0 réponse"
        );
        assert_eq!(
            Lang::En.count(0, ("a", "b"), ("answer", "answers")),
            "0 answers"
        );
        assert_eq!(
            Lang::Fr.count(2, ("réponse", "réponses"), ("a", "b")),
            "2 réponses"
        );
    }
}
