//! TwiML renderer: turns [`Verb`]s into the XML document a Twilio-style gateway expects.
//!
//! This file owns the XML writing, including escaping: text content escapes `&`, `<` and `>`;
//! attribute values also escape `"` and `'`; characters XML 1.0 forbids (control characters
//! other than tab, line feed and carriage return, U+FFFE, U+FFFF) are dropped, since no escape
//! can carry them. Callbacks (`action`, `Redirect`) are always requested with `POST`.
//!
//! Rendering rules worth knowing:
//! - a `Say` with empty text is skipped (Twilio rejects it);
//! - `loop` is written only when it is not 1;
//! - `Gather` always carries `finishOnKey`, so that an empty value disables Twilio's default
//!   `#` (menus use `#` as an ordinary key);
//! - inside `Gather`, only `Say`, `Play` and `Pause` are rendered; other nested verbs are
//!   skipped, as is a `Gather` nested anywhere.

use std::fmt::Write as _;

use super::verbs::{DialTarget, RejectReason, Verb};

/// Renders `verbs` as a complete TwiML document (`<?xml ...?><Response>...</Response>`).
pub fn render_twiml(verbs: &[Verb]) -> String {
    let mut out = String::with_capacity(128 + verbs.len() * 96);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>");
    for verb in verbs {
        write_verb(&mut out, verb, false);
    }
    out.push_str("</Response>");
    out
}

fn write_verb(out: &mut String, verb: &Verb, nested: bool) {
    match verb {
        Verb::Say {
            text,
            language,
            loop_count,
        } => {
            if text.trim().is_empty() {
                return;
            }
            out.push_str("<Say");
            if let Some(language) = language {
                attr(out, "language", language);
            }
            loop_attr(out, *loop_count);
            out.push('>');
            text_content(out, text);
            out.push_str("</Say>");
        }
        Verb::Play { url, loop_count } => {
            out.push_str("<Play");
            loop_attr(out, *loop_count);
            out.push('>');
            text_content(out, url);
            out.push_str("</Play>");
        }
        Verb::Pause { secs } => {
            out.push_str("<Pause");
            num_attr(out, "length", *secs);
            out.push_str("/>");
        }
        _ if nested => {}
        Verb::Gather {
            action_url,
            num_digits,
            finish_on_key,
            timeout_secs,
            speech,
            language,
            prompts,
        } => {
            out.push_str("<Gather");
            attr(out, "input", if *speech { "dtmf speech" } else { "dtmf" });
            attr(out, "action", action_url);
            attr(out, "method", "POST");
            num_attr(out, "timeout", *timeout_secs);
            if let Some(n) = num_digits {
                num_attr(out, "numDigits", *n);
            }
            attr(out, "finishOnKey", finish_on_key);
            if let Some(language) = language {
                attr(out, "language", language);
            }
            out.push('>');
            for prompt in prompts {
                write_verb(out, prompt, true);
            }
            out.push_str("</Gather>");
        }
        Verb::Redirect { url } => {
            out.push_str("<Redirect method=\"POST\">");
            text_content(out, url);
            out.push_str("</Redirect>");
        }
        Verb::Dial {
            targets,
            caller_id,
            timeout_secs,
            action_url,
            answer_on_bridge,
        } => {
            out.push_str("<Dial");
            if let Some(action) = action_url {
                attr(out, "action", action);
                attr(out, "method", "POST");
            }
            if let Some(caller_id) = caller_id {
                attr(out, "callerId", caller_id);
            }
            num_attr(out, "timeout", *timeout_secs);
            attr(
                out,
                "answerOnBridge",
                if *answer_on_bridge { "true" } else { "false" },
            );
            out.push('>');
            for target in targets {
                let (tag, address) = match target {
                    DialTarget::Phone(number) => ("Number", number),
                    DialTarget::Sip(uri) => ("Sip", uri),
                };
                out.push('<');
                out.push_str(tag);
                out.push('>');
                text_content(out, address);
                out.push_str("</");
                out.push_str(tag);
                out.push('>');
            }
            out.push_str("</Dial>");
        }
        Verb::Record {
            action_url,
            max_length_secs,
            play_beep,
            finish_on_key,
            stream_url: _,
            stream_auth: _,
            transcription: _,
        } => {
            out.push_str("<Record");
            attr(out, "action", action_url);
            attr(out, "method", "POST");
            num_attr(out, "maxLength", *max_length_secs);
            attr(out, "playBeep", if *play_beep { "true" } else { "false" });
            attr(out, "finishOnKey", finish_on_key);
            out.push_str("/>");
        }
        Verb::Conference {
            room,
            end_on_exit,
            action_url,
        } => {
            out.push_str("<Dial");
            if let Some(action) = action_url {
                attr(out, "action", action);
                attr(out, "method", "POST");
            }
            out.push_str("><Conference beep=\"false\" startConferenceOnEnter=\"true\"");
            attr(
                out,
                "endConferenceOnExit",
                if *end_on_exit { "true" } else { "false" },
            );
            out.push('>');
            text_content(out, room);
            out.push_str("</Conference></Dial>");
        }
        Verb::Hangup => out.push_str("<Hangup/>"),
        Verb::Reject { reason } => {
            out.push_str("<Reject");
            attr(
                out,
                "reason",
                match reason {
                    RejectReason::Rejected => "rejected",
                    RejectReason::Busy => "busy",
                },
            );
            out.push_str("/>");
        }
    }
}

fn loop_attr(out: &mut String, loop_count: u32) {
    if loop_count != 1 {
        num_attr(out, "loop", loop_count);
    }
}

fn num_attr(out: &mut String, name: &str, value: u32) {
    // Writing to a String cannot fail.
    let _ = write!(out, " {name}=\"{value}\"");
}

fn attr(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    escape(out, value, true);
    out.push('"');
}

fn text_content(out: &mut String, text: &str) {
    escape(out, text, false);
}

/// Whether XML 1.0 allows `c` (its `Char` production).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn escape(out: &mut String, text: &str, in_attribute: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attribute => out.push_str("&quot;"),
            '\'' if in_attribute => out.push_str("&apos;"),
            // Attribute-value normalisation would turn these into spaces; keep them as written.
            '\n' if in_attribute => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' if in_attribute => out.push_str("&#9;"),
            c if is_xml_char(c) => out.push(c),
            _ => {}
        }
    }
}
