//! Size and character limits at the API boundary: every identifier, name and list of the
//! requests that create or change something is checked here, before use, against a
//! documented maximum (see docs/operations.md). Errors name the field and the limit and never
//! echo the value. Identifiers follow one character set (letters, digits and `. _ : @ + -`);
//! it is checked here and at the channels' boundaries only, never on replay, so older
//! journals holding other ids still load.

use tonic::Status;

use super::proto as pb;

/// The largest message the server sends (what common gRPC clients accept by default).
pub const MAX_SEND_BYTES: usize = 4 * 1024 * 1024;
/// The longest identifier (agent, queue, skill, attribute key), in bytes.
pub use crate::core::MAX_ID_BYTES;
/// The longest display name (agent, queue), in bytes.
pub const MAX_NAME_BYTES: usize = 200;
/// The most entries of a list of skills, requirements, preferred skills or queue filters.
pub const MAX_LIST: usize = 64;
/// The most escalation steps of a queue.
pub const MAX_ESCALATION_STEPS: usize = 16;
/// The longest offer timeout, in seconds.
pub const MAX_OFFER_TIMEOUT_SECS: u64 = 600;
/// The longest wrap-up, in seconds.
pub const MAX_WRAP_UP_SECS: u64 = 3600;
/// The longest SLA target, in seconds (90 days).
pub const MAX_SLA_SECS: u64 = 90 * 86_400;
/// The most working days of an SLA target.
pub const MAX_SLA_WORKING_DAYS: u32 = 90;

/// Entries of a page when the request does not say.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// The most entries of a page.
pub const MAX_PAGE_SIZE: usize = 500;

/// A page: where it starts and how many entries it holds at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Entries skipped.
    pub offset: usize,
    /// Entries at most.
    pub size: usize,
}

impl Page {
    /// The page of `page_size` (0: the default) starting at `page_token` (empty: the start).
    pub fn new(page_size: u32, page_token: &str) -> Result<Page, Status> {
        let size = match usize::try_from(page_size).unwrap_or(usize::MAX) {
            0 => DEFAULT_PAGE_SIZE,
            n if n > MAX_PAGE_SIZE => {
                return Err(invalid(format!(
                    "page_size is over its maximum of {MAX_PAGE_SIZE}"
                )))
            }
            n => n,
        };
        let token = page_token.trim();
        let offset = if token.is_empty() {
            0
        } else {
            token.parse::<u32>().map_err(|_| {
                invalid(
                    "page_token is not one this server gave: pass next_page_token as \
                         received, or nothing for the first page"
                        .into(),
                )
            })? as usize
        };
        Ok(Page { offset, size })
    }

    /// The token of the page after this one.
    pub fn next_token(&self) -> String {
        (self.offset + self.size).to_string()
    }
}

/// The most bytes of one page's entries, so that an answer stays under [`MAX_SEND_BYTES`].
pub const MAX_PAGE_BYTES: usize = 3 * 1024 * 1024;

/// The entries of `page` from `all` (at least one, then as many as fit in
/// [`MAX_PAGE_BYTES`]), and the token of the next page (empty after the last entry).
pub fn page_of<'a, T: prost::Message + Clone + 'a>(
    all: impl ExactSizeIterator<Item = &'a T>,
    page: Page,
) -> (Vec<T>, String) {
    let total = all.len();
    let mut out = Vec::new();
    let mut bytes = 0usize;
    for item in all.skip(page.offset).take(page.size) {
        let len = item.encoded_len();
        if !out.is_empty() && bytes + len > MAX_PAGE_BYTES {
            break;
        }
        bytes += len;
        out.push(item.clone());
    }
    let next = page.offset + out.len();
    let token = if next < total {
        next.to_string()
    } else {
        String::new()
    };
    (out, token)
}

/// A page of `items` in the order of their `key` (an id), starting after the key `page_token`
/// (empty: the first page): at most `page_size` entries (0: [`DEFAULT_PAGE_SIZE`]) and
/// [`MAX_PAGE_BYTES`], at least one. The next token is the page's last key (empty after the
/// last entry), so that entries added or removed between two calls neither repeat nor skip
/// the others.
pub fn page_by_key<T: prost::Message>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> String,
    page_size: u32,
    page_token: &str,
) -> Result<(Vec<T>, String), Status> {
    let size = Page::new(page_size, "")?.size;
    id("page_token", page_token)?;
    let after = page_token.trim();
    items.sort_by_key(|item| key(item));
    let start = if after.is_empty() {
        0
    } else {
        items.partition_point(|item| key(item).as_str() <= after)
    };
    let mut bytes = 0usize;
    let mut end = start;
    for item in items.iter().skip(start).take(size) {
        let len = item.encoded_len();
        if end > start && bytes + len > MAX_PAGE_BYTES {
            break;
        }
        bytes += len;
        end += 1;
    }
    let next = if end < items.len() && end > start {
        key(&items[end - 1])
    } else {
        String::new()
    };
    items.truncate(end);
    items.drain(..start);
    Ok((items, next))
}

/// The newest of `messages` (oldest first) that fit in [`MAX_PAGE_BYTES`] together, at least
/// the newest one: what an offer carries of a long conversation (the rest is paged with
/// `GetConversation`).
pub fn newest_within<T: prost::Message>(mut messages: Vec<T>) -> Vec<T> {
    let mut bytes = 0usize;
    let mut keep = 0usize;
    for m in messages.iter().rev() {
        let len = m.encoded_len();
        if keep > 0 && bytes + len > MAX_PAGE_BYTES {
            break;
        }
        bytes += len;
        keep += 1;
    }
    let drop = messages.len() - keep;
    messages.drain(..drop);
    messages
}

fn invalid(message: String) -> Status {
    Status::invalid_argument(message)
}

/// Whether `c` may appear in an identifier (the core's one definition).
pub use crate::core::is_id_char as id_char;

/// An identifier: empty allowed (the caller decides whether it is required), else at most
/// [`MAX_ID_BYTES`] of letters, digits and `. _ : @ + -`.
pub fn id(field: &str, value: &str) -> Result<(), Status> {
    let value = value.trim();
    if value.len() > MAX_ID_BYTES {
        return Err(invalid(format!(
            "{field} is longer than {MAX_ID_BYTES} bytes"
        )));
    }
    if !value.chars().all(id_char) {
        return Err(invalid(format!(
            "{field} may only hold letters, digits and . _ : @ + - (at most {MAX_ID_BYTES} \
             bytes)"
        )));
    }
    Ok(())
}

/// A display name: at most [`MAX_NAME_BYTES`], no control characters.
pub fn name(field: &str, value: &str) -> Result<(), Status> {
    if value.len() > MAX_NAME_BYTES {
        return Err(invalid(format!(
            "{field} is longer than {MAX_NAME_BYTES} bytes"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(format!("{field} must not hold control characters")));
    }
    Ok(())
}

/// A list of at most `max` entries.
pub fn list(field: &str, len: usize, max: usize) -> Result<(), Status> {
    if len > max {
        return Err(invalid(format!("{field} has {len} entries: at most {max}")));
    }
    Ok(())
}

/// A duration of at most `max` seconds.
pub fn secs(field: &str, value: u64, max: u64) -> Result<(), Status> {
    if value > max {
        return Err(invalid(format!(
            "{field} is over its maximum of {max} seconds"
        )));
    }
    Ok(())
}

fn requirements(field: &str, list_: &[pb::Requirement]) -> Result<(), Status> {
    list(field, list_.len(), MAX_LIST)?;
    for r in list_ {
        id(&format!("{field}.skill"), &r.skill)?;
    }
    Ok(())
}

/// `Create`'s interaction.
pub fn spec(s: &pb::InteractionSpec) -> Result<(), Status> {
    id("spec.queue", &s.queue)?;
    requirements("spec.requirements", &s.requirements)?;
    list("spec.preferred", s.preferred.len(), MAX_LIST)?;
    for p in &s.preferred {
        id("spec.preferred", p)?;
    }
    for a in &s.attributes {
        id("spec.attributes.key", &a.key)?;
    }
    Ok(())
}

/// An agent's configuration.
pub fn agent(a: &pb::Agent) -> Result<(), Status> {
    id("agent.id", &a.id)?;
    name("agent.name", &a.name)?;
    list("agent.skills", a.skills.len(), MAX_LIST)?;
    for s in &a.skills {
        id("agent.skills.skill", &s.skill)?;
    }
    if a.device.len() > 256 {
        return Err(invalid("agent.device is longer than 256 bytes".into()));
    }
    Ok(())
}

/// A queue's configuration.
pub fn queue(q: &pb::Queue) -> Result<(), Status> {
    id("queue.id", &q.id)?;
    name("queue.name", &q.name)?;
    list("queue.channels", q.channels.len(), 8)?;
    requirements("queue.requirements", &q.requirements)?;
    list("queue.escalation", q.escalation.len(), MAX_ESCALATION_STEPS)?;
    secs(
        "queue.offer_timeout_secs",
        q.offer_timeout_secs,
        MAX_OFFER_TIMEOUT_SECS,
    )?;
    secs("queue.wrap_up_secs", q.wrap_up_secs, MAX_WRAP_UP_SECS)?;
    if let Some(sla) = &q.sla_target_secs {
        for (field, v) in [
            ("queue.sla_target_secs.voice", sla.voice),
            ("queue.sla_target_secs.email", sla.email),
            ("queue.sla_target_secs.sms", sla.sms),
            ("queue.sla_target_secs.chat", sla.chat),
        ] {
            secs(field, v, MAX_SLA_SECS)?;
        }
    }
    if let Some(days) = &q.sla_working_days {
        let most = days.voice.max(days.email).max(days.sms).max(days.chat);
        if most > MAX_SLA_WORKING_DAYS {
            return Err(invalid(format!(
                "queue.sla_working_days is over its maximum of {MAX_SLA_WORKING_DAYS} days"
            )));
        }
    }
    Ok(())
}

/// A filter of queue ids.
pub fn queues(field: &str, list_: &[String]) -> Result<(), Status> {
    list(field, list_.len(), MAX_LIST)?;
    for q in list_ {
        id(field, q)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_character_set_and_errors_do_not_echo() {
        assert!(id("agent_id", "amelie").is_ok());
        assert!(id("skill", "lang:fr").is_ok());
        assert!(id("agent_id", "").is_ok());
        for bad in ["a b", "a/b", "a\0b", "é", "x".repeat(65).as_str()] {
            let e = id("agent_id", bad).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
            assert!(e.message().starts_with("agent_id"));
            if bad.len() > 3 {
                assert!(!e.message().contains(bad));
            }
        }
    }

    #[test]
    fn pages_cover_everything_once_and_stay_under_the_byte_limit() {
        let small: Vec<pb::Requirement> = (0..7)
            .map(|i| pb::Requirement {
                skill: format!("s{i}"),
                min_level: 1,
            })
            .collect();
        let mut token = String::new();
        let mut seen = Vec::new();
        loop {
            let page = Page::new(3, &token).expect("page");
            let (items, next) = page_of(small.iter(), page);
            assert!(items.len() <= 3);
            seen.extend(items);
            if next.is_empty() {
                break;
            }
            token = next;
        }
        assert_eq!(seen, small);
        // Big entries: a page stops before MAX_PAGE_BYTES (but holds at least one).
        let big: Vec<pb::Requirement> = (0..10)
            .map(|_| pb::Requirement {
                skill: "x".repeat(1 << 20),
                min_level: 1,
            })
            .collect();
        let (items, next) = page_of(big.iter(), Page::new(0, "").expect("page"));
        // Three entries of a little over 1 MiB would pass 3 MiB: two.
        assert_eq!(items.len(), 2);
        assert_eq!(next, "2");
        let newest = newest_within(big.clone());
        assert_eq!(newest.len(), 2);
        assert_eq!(newest_within(small.clone()), small);
        assert!(Page::new(501, "").is_err());
        assert!(Page::new(1, "x").is_err());
    }

    #[test]
    fn pages_by_key_survive_changes_between_calls() {
        let mk = |ids: &[&str]| -> Vec<pb::Requirement> {
            ids.iter()
                .map(|i| pb::Requirement {
                    skill: (*i).to_owned(),
                    min_level: 1,
                })
                .collect()
        };
        let key = |r: &pb::Requirement| r.skill.clone();
        let (first, token) = page_by_key(mk(&["c", "a", "b", "d"]), key, 2, "").expect("page");
        assert_eq!(first, mk(&["a", "b"]));
        assert_eq!(token, "b");
        // "a" removed and "bb" added before the next call: nothing after "b" is skipped.
        let (second, token) =
            page_by_key(mk(&["b", "bb", "c", "d"]), key, 2, &token).expect("page");
        assert_eq!(second, mk(&["bb", "c"]));
        let (third, token) = page_by_key(mk(&["b", "bb", "c", "d"]), key, 2, &token).expect("page");
        assert_eq!(third, mk(&["d"]));
        assert_eq!(token, "");
        assert!(page_by_key(mk(&["a"]), key, 2, "not a key").is_err());
    }

    #[test]
    fn durations_are_bounded() {
        let q = pb::Queue {
            id: "q".into(),
            wrap_up_secs: u64::MAX,
            ..Default::default()
        };
        assert!(queue(&q).is_err());
        let q = pb::Queue {
            id: "q".into(),
            offer_timeout_secs: u64::MAX,
            ..Default::default()
        };
        assert!(queue(&q).is_err());
    }
}
