//! What a call hears from Guichet itself (not from its IVR tree): the apology when a request
//! cannot be served, the hold loop's announcement of position and expected wait, and the
//! confirmations of a callback request, a voicemail and a closed request, in French or
//! English after the call's language.

use crate::ivr::Verb;

pub(super) fn french(language: &str) -> bool {
    language.to_ascii_lowercase().starts_with("fr")
}

/// `fr` when `language` is French, else `en`.
fn in_language(language: &str, fr: &'static str, en: &'static str) -> &'static str {
    if french(language) {
        fr
    } else {
        en
    }
}

pub(super) fn apology() -> Vec<Verb> {
    vec![
        Verb::say(
            "Nous ne pouvons pas traiter votre appel pour le moment. Veuillez rappeler plus tard. \
             We cannot take your call right now. Please call again later.",
            Some("fr-FR"),
        ),
        Verb::Hangup,
    ]
}

/// The spoken fallback for requests that cannot be served.
pub fn fallback_verbs() -> Vec<Verb> {
    apology()
}

pub(super) fn announcement(
    language: &str,
    position: usize,
    wait_ms: Option<u64>,
    callback_key: &str,
) -> String {
    let minutes = wait_ms.map(|ms| ms.div_ceil(60_000).max(1));
    let mut text = if french(language) {
        let rank = if position == 1 {
            "premier".to_owned()
        } else {
            format!("{position}e")
        };
        let mut t = format!("Vous êtes {rank} dans la file d'attente.");
        if let Some(m) = minutes {
            t.push_str(&format!(
                " Temps d'attente estimé : environ {m} minute{}.",
                if m > 1 { "s" } else { "" }
            ));
        }
        t
    } else {
        let mut t = format!("You are number {position} in line.");
        if let Some(m) = minutes {
            t.push_str(&format!(
                " The expected wait is about {m} minute{}.",
                if m > 1 { "s" } else { "" }
            ));
        }
        t
    };
    if !callback_key.is_empty() {
        if french(language) {
            text.push_str(&format!(
                " Pour être rappelé sans perdre votre place, tapez {}.",
                spoken_key(callback_key, true)
            ));
        } else {
            text.push_str(&format!(
                " To be called back without losing your place, press {}.",
                spoken_key(callback_key, false)
            ));
        }
    }
    text
}

pub(super) fn spoken_key(key: &str, fr: bool) -> &str {
    match (key, fr) {
        ("*", true) => "étoile",
        ("*", false) => "star",
        ("#", true) => "dièse",
        ("#", false) => "hash",
        (k, _) => k,
    }
}

pub(super) fn callback_confirmation(language: &str) -> &'static str {
    in_language(
        language,
        "C'est noté : un conseiller vous rappellera à ce numéro dès que ce sera votre tour. Au revoir.",
        "Noted: an adviser will call you back on this number when it is your turn. Goodbye.",
    )
}

pub(super) fn lost_apology(language: &str) -> &'static str {
    in_language(
        language,
        "Veuillez nous excuser : nous avons perdu le fil de votre appel. Reprenons depuis le début.",
        "We are sorry: we lost track of your call. Let us start again from the beginning.",
    )
}

pub(super) fn voicemail_thanks(language: &str) -> &'static str {
    in_language(
        language,
        "Votre message est enregistré. Au revoir.",
        "Your message has been recorded. Goodbye.",
    )
}

pub(super) fn ended_message(language: &str) -> &'static str {
    in_language(
        language,
        "Votre demande a été clôturée. Au revoir.",
        "Your request has been closed. Goodbye.",
    )
}
