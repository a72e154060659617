//! What the survey says and how an answer written in free text is read: the question for each
//! way of sending it (SMS, email, chat widget), in French and English, the thanks, and
//! [`parse_answer`] for an SMS or email reply ("4", "5 merci !", "2 - trop d'attente").

use crate::obs::page::Lang;

/// The scale, as the question words it.
const SCALE_FR: &str = "de 1 (pas du tout satisfait) à 5 (très satisfait)";
const SCALE_EN: &str = "from 1 (not at all satisfied) to 5 (very satisfied)";

/// The five points of the scale, as the survey page and the chat widget label them (one list,
/// so that both say the same).
pub fn scale_labels(lang: Lang) -> [&'static str; 5] {
    match lang {
        Lang::Fr => [
            "1 – pas du tout satisfait",
            "2 – peu satisfait",
            "3 – moyennement satisfait",
            "4 – satisfait",
            "5 – très satisfait",
        ],
        Lang::En => [
            "1 – not at all satisfied",
            "2 – somewhat dissatisfied",
            "3 – neither satisfied nor dissatisfied",
            "4 – satisfied",
            "5 – very satisfied",
        ],
    }
}

/// A language the question is asked in: the interaction's own (`language` attribute of calls
/// and chats), else both French and English.
pub fn language_of(attribute: Option<&str>) -> Option<Lang> {
    match attribute.map(|l| l.trim().to_ascii_lowercase()) {
        Some(l) if l == "fr" || l.starts_with("fr-") => Some(Lang::Fr),
        Some(l) if l == "en" || l.starts_with("en-") => Some(Lang::En),
        _ => None,
    }
}

/// The stored language code of a question: `fr`, `en`, or `fr,en` when asked in both.
pub fn language_code(lang: Option<Lang>) -> &'static str {
    match lang {
        Some(Lang::Fr) => "fr",
        Some(Lang::En) => "en",
        None => "fr,en",
    }
}

/// The SMS question about the request `reference`: reply with the score, or open `url`; STOP
/// opts out.
pub fn sms_question(lang: Option<Lang>, reference: &str, url: &str) -> String {
    let fr = format!(
        "Demande {reference} : êtes-vous satisfait de notre réponse ? Répondez par une note {SCALE_FR}, suivie si vous \
         le souhaitez d'un commentaire, ou sur {url} . STOP pour ne plus être sollicité."
    );
    let en = format!(
        "Request {reference}: are you satisfied with our answer? Reply with a score {SCALE_EN}, followed by a comment \
         if you wish, or at {url} . STOP to opt out."
    );
    match lang {
        Some(Lang::Fr) => fr,
        Some(Lang::En) => en,
        None => format!("{fr}\n{en}"),
    }
}

/// The email question's subject and text, about the request `reference`.
pub fn email_question(lang: Option<Lang>, reference: &str, url: &str) -> (String, String) {
    let fr = format!(
        "Bonjour,\n\n\
         Votre demande {reference} a été traitée. Êtes-vous satisfait de la réponse apportée ?\n\n\
         Donnez une note {SCALE_FR} sur cette page :\n{url}\n\n\
         ou répondez simplement à ce message par la note, suivie si vous le souhaitez d'un \
         commentaire (par exemple « 4 merci »).\n\n\
         Une seule question, une seule fois : nous ne vous solliciterons pas à nouveau avant \
         longtemps, et la page permet de ne plus jamais l'être.\n"
    );
    let en = format!(
        "Hello,\n\n\
         Your request {reference} has been dealt with. Are you satisfied with our answer?\n\n\
         Give a score {SCALE_EN} on this page:\n{url}\n\n\
         or simply reply to this message with the score, followed by a comment if you wish \
         (for example \"4 thank you\").\n\n\
         One question, once: we will not ask again for a long time, and the page lets you opt \
         out for good.\n"
    );
    let (subject, text) = match lang {
        Some(Lang::Fr) => (format!("[#{reference}] Votre avis"), fr),
        Some(Lang::En) => (format!("[#{reference}] Your opinion"), en),
        None => (
            format!("[#{reference}] Votre avis / Your opinion"),
            format!("{fr}\n---\n\n{en}"),
        ),
    };
    (subject, text)
}

/// The question as a few lines at the end of another email (the agent's last reply with the
/// completion notice): the page's link only, since a reply to that email continues the request.
pub fn email_appendix(lang: Option<Lang>, url: &str) -> String {
    let fr = format!("Votre avis nous aide : donnez une note {SCALE_FR} sur cette page :\n{url}");
    let en = format!("Your opinion helps us: give a score {SCALE_EN} on this page:\n{url}");
    match lang {
        Some(Lang::Fr) => fr,
        Some(Lang::En) => en,
        None => format!("{fr}\n{en}"),
    }
}

/// The question shown in the chat widget (the widget draws the scale itself).
pub fn chat_question(lang: Option<Lang>) -> String {
    match lang {
        Some(Lang::En) => {
            format!("Are you satisfied with this conversation? Give a score {SCALE_EN}.")
        }
        Some(Lang::Fr) => {
            format!("Êtes-vous satisfait de cet échange ? Donnez une note {SCALE_FR}.")
        }
        None => format!(
            "Êtes-vous satisfait de cet échange ? Donnez une note {SCALE_FR}. / Are you \
             satisfied with this conversation? Give a score {SCALE_EN}."
        ),
    }
}

/// The thanks sent back for an SMS answer.
pub fn sms_thanks(lang: Option<Lang>) -> &'static str {
    match lang {
        Some(Lang::Fr) => "Merci pour votre réponse.",
        Some(Lang::En) => "Thank you for your answer.",
        None => "Merci pour votre réponse. / Thank you for your answer.",
    }
}

/// The language of a stored question (`fr`, `en`, `fr,en`), for the thanks and the page.
pub fn stored_language(code: &str) -> Option<Lang> {
    match code {
        "fr" => Some(Lang::Fr),
        "en" => Some(Lang::En),
        _ => None,
    }
}

/// An answer read from free text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAnswer {
    /// The score, 1 to 5.
    pub score: u8,
    /// The comment that followed it, if any.
    pub comment: Option<String>,
}

/// Reads a reply that starts with a score from 1 to 5 ("4", "5 merci", "2/5 trop long",
/// "3 - correct"); the rest of the reply, up to a quoted part (lines starting with `>`, or the
/// "On ... wrote:" / "Le ... a écrit :" line mail clients put before it), is the comment.
/// `None` when the reply does not start with a score (it is then a message, not an answer).
pub fn parse_answer(text: &str) -> Option<ParsedAnswer> {
    let text = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    let mut chars = text.chars();
    let first = chars.next()?;
    let score = first.to_digit(10).filter(|d| (1..=5).contains(d))? as u8;
    let rest = chars.as_str();
    if rest.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == ',')
        && !rest.starts_with(". ")
        && !rest.starts_with(", ")
        && rest.len() > 1
    {
        // "12", "4.5", "3,5": not a score from 1 to 5.
        return None;
    }
    let rest = rest.strip_prefix("/5").unwrap_or(rest);
    let mut kept = Vec::new();
    for line in rest.lines() {
        let t = line.trim();
        if t.starts_with('>') || is_quote_intro(t) {
            break;
        }
        kept.push(t);
    }
    let comment = kept
        .join("\n")
        .trim_matches(|c: char| c.is_whitespace() || matches!(c, '-' | ':' | ',' | '.' | ';' | '/'))
        .to_owned();
    Some(ParsedAnswer {
        score,
        comment: (!comment.is_empty()).then_some(comment),
    })
}

/// A mail client's line before a quoted message.
fn is_quote_intro(line: &str) -> bool {
    let lower = line.to_lowercase();
    (lower.starts_with("on ") && lower.ends_with("wrote:"))
        || (lower.starts_with("le ")
            && (lower.ends_with("a écrit :") || lower.ends_with("a écrit:")))
        || lower.starts_with("-----original message")
        || lower.starts_with("-----message d'origine")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(score: u8, comment: Option<&str>) -> Option<ParsedAnswer> {
        Some(ParsedAnswer {
            score,
            comment: comment.map(str::to_owned),
        })
    }

    #[test]
    fn scores_and_comments_are_read() {
        assert_eq!(parse_answer("4"), answer(4, None));
        assert_eq!(parse_answer("  5 merci !"), answer(5, Some("merci !")));
        assert_eq!(
            parse_answer("2/5 trop d'attente"),
            answer(2, Some("trop d'attente"))
        );
        assert_eq!(parse_answer("3 - correct"), answer(3, Some("correct")));
        assert_eq!(parse_answer("1. Nul"), answer(1, Some("Nul")));
        assert_eq!(
            parse_answer("4 très bien\nrapide\n\nLe 6 déc. 2026, Guichet a écrit :\n> Bonjour"),
            answer(4, Some("très bien\nrapide"))
        );
        assert_eq!(
            parse_answer("5\n\nOn Sun, Dec 6, 2026 at 10:00, Guichet wrote:\n> Hello"),
            answer(5, None)
        );
    }

    #[test]
    fn other_texts_are_not_answers() {
        assert_eq!(parse_answer(""), None);
        assert_eq!(parse_answer("Bonjour, j'ai une question"), None);
        assert_eq!(parse_answer("0"), None);
        assert_eq!(parse_answer("6"), None);
        assert_eq!(parse_answer("12 rue de la Paix"), None);
        assert_eq!(parse_answer("4.5"), None);
        assert_eq!(parse_answer("STOP"), None);
    }

    #[test]
    fn languages() {
        assert_eq!(language_of(Some("fr-FR")), Some(Lang::Fr));
        assert_eq!(language_of(Some("en")), Some(Lang::En));
        assert_eq!(language_of(Some("de")), None);
        assert_eq!(language_of(None), None);
        assert!(sms_question(None, "K7M2Q-X9D4A", "http://x/survey/t").contains("STOP"));
        let (subject, text) = email_question(None, "ABC123", "http://x/survey/t");
        assert!(subject.starts_with("[#ABC123]"));
        assert!(text.contains("http://x/survey/t"));
    }
}
