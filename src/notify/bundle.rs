//! One email from several: the outbound emails of one interaction to one address, committed
//! within `[notify] email_bundle_ms` of each other (an agent's last reply, the completion
//! notice, the survey question), composed into the one email the citizen receives.
//!
//! The first message (in commit order) leads: its id (so its Message-ID), subject, sender and
//! threading headers are the email's. Each following message is appended after a separator, by
//! its `meta.appendix` when it has one (the short form a notice or a question takes at the end
//! of another email) or else by its whole text. The email is marked automatic
//! (`Auto-Submitted`) only if every part is.

use crate::core::Message;

/// The meta key holding the short text a message takes when appended to another email.
pub const META_APPENDIX: &str = "appendix";

/// The most messages composed into one email.
pub const MAX_PARTS: usize = 8;

/// What separates the parts of a composed email.
const SEPARATOR: &str = "\n\n--------\n\n";

/// Whether `message` may be composed with others: not an acknowledgement (sent at once, on its
/// own) and not erased.
pub fn may_bundle(message: &Message) -> bool {
    message.meta.get("notice").map(String::as_str) != Some("acknowledgement")
        && !message.id.starts_with("erased:")
}

/// Whether `a` and `b` go to the same address.
pub fn same_recipient(a: &Message, b: &Message) -> bool {
    a.to.trim().eq_ignore_ascii_case(b.to.trim())
}

/// The one email for `parts`, in commit order (the first leads); `None` without parts.
pub fn compose(parts: &[&Message]) -> Option<Message> {
    let (lead, rest) = parts.split_first()?;
    if rest.is_empty() {
        return Some((*lead).clone());
    }
    let mut email = (*lead).clone();
    let mut text = lead.text.trim_end().to_owned();
    for part in rest {
        let appended = part
            .meta
            .get(META_APPENDIX)
            .filter(|a| !a.trim().is_empty())
            .unwrap_or(&part.text);
        text.push_str(SEPARATOR);
        text.push_str(appended.trim());
        email.attachments.extend(part.attachments.iter().cloned());
    }
    text.push('\n');
    email.text = text;
    if rest.iter().any(|p| !p.meta.contains_key("auto_submitted")) {
        email.meta.remove("auto_submitted");
    }
    email.meta.remove(META_APPENDIX);
    Some(email)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::MessageDirection;

    fn message(id: &str, text: &str, appendix: Option<&str>, auto: bool) -> Message {
        let mut m = Message::new(id, MessageDirection::Outbound, text);
        m.to = "Jeanne@Example.org".into();
        m.subject = Some(format!("subject of {id}"));
        if let Some(a) = appendix {
            m.meta.insert(META_APPENDIX.into(), a.into());
        }
        if auto {
            m.meta
                .insert("auto_submitted".into(), "auto-generated".into());
        }
        m
    }

    #[test]
    fn the_first_leads_and_the_others_are_appended_by_their_short_form() {
        let reply = message("email:1", "Votre dossier est validé.\n", None, false);
        let notice = message("email:2", "long notice", Some("Demande traitée."), true);
        let survey = message(
            "email:3",
            "long question",
            Some("Votre avis : http://x"),
            true,
        );
        let email = compose(&[&reply, &notice, &survey]).expect("composed");
        assert_eq!(email.id, "email:1");
        assert_eq!(email.subject.as_deref(), Some("subject of email:1"));
        assert_eq!(
            email.text,
            "Votre dossier est validé.\n\n--------\n\nDemande traitée.\n\n--------\n\n\
             Votre avis : http://x\n"
        );
        assert!(
            !email.meta.contains_key("auto_submitted"),
            "a person wrote it"
        );
    }

    #[test]
    fn automatic_parts_stay_automatic_and_one_part_is_unchanged() {
        let notice = message("email:2", "long notice", Some("short"), true);
        let survey = message("email:3", "long question", None, true);
        let email = compose(&[&notice, &survey]).expect("composed");
        assert!(email.meta.contains_key("auto_submitted"));
        assert!(email.text.starts_with("long notice"));
        assert!(
            email.text.ends_with("long question\n"),
            "no short form: whole text"
        );
        assert!(!email.meta.contains_key(META_APPENDIX));
        assert_eq!(compose(&[&notice]), Some(notice.clone()));
        assert_eq!(compose(&[]), None);
    }

    #[test]
    fn recipients_compare_without_case_and_acknowledgements_go_alone() {
        let mut a = message("email:1", "a", None, false);
        let b = message("email:2", "b", None, false);
        a.to = " jeanne@example.org".into();
        assert!(same_recipient(&a, &b));
        a.meta.insert("notice".into(), "acknowledgement".into());
        assert!(!may_bundle(&a));
        assert!(may_bundle(&b));
    }
}
