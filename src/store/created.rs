//! A fast reader for `interaction_created` payloads, the bulk of any journal.
//!
//! The store writes every payload with `serde_json::to_string`, so an `interaction_created` row
//! always has one layout: compact, fields in declaration order, every field present. This reader
//! walks that exact layout byte by byte and builds the event with the fewest allocations (one
//! per string it keeps; queue and skill names are shared through a [`Names`] cache). It gives
//! up, returning `None`, at the first byte that differs from the layout (whitespace, another
//! field order, an escape sequence in a string, a number serde would read differently...), and
//! the caller then decodes the payload with serde as before. So it never decides anything serde
//! would decide otherwise: it either returns exactly what serde returns, or nothing. The unit
//! tests (and a property test) check that on payloads of every shape, and on hand-written ones
//! that must fall back.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::core::{
    Attributes, Channel, ContactId, EventKind, InteractionId, InteractionSpec, QueueId,
    Requirement, Skill, Timestamp,
};

/// Queue and skill names seen so far, so that a million interactions waiting in one queue share
/// one `Arc<str>` for its name instead of holding a million copies (names compare by text, so
/// sharing changes nothing else). Bounded: past [`Names::LIMIT`] names it stops remembering.
///
/// It also keeps the lists being read between calls, so that each list of the spec is allocated
/// once at its final size rather than grown (and the router keeps specs for as long as they
/// wait: no spare capacity).
#[derive(Default)]
pub(crate) struct Names {
    queues: FxHashMap<Box<str>, QueueId>,
    skills: FxHashMap<Box<str>, Skill>,
    requirements: Vec<Requirement>,
    preferred: Vec<Skill>,
}

impl Names {
    const LIMIT: usize = 4096;

    fn queue(&mut self, text: &str) -> QueueId {
        shared(&mut self.queues, text, |t| QueueId::new(t))
    }

    fn skill(&mut self, text: &str) -> Skill {
        shared(&mut self.skills, text, |t| Skill::new(t))
    }
}

fn shared<T: Clone>(cache: &mut FxHashMap<Box<str>, T>, text: &str, make: fn(&str) -> T) -> T {
    if let Some(value) = cache.get(text) {
        return value.clone();
    }
    let value = make(text);
    if cache.len() < Names::LIMIT {
        cache.insert(Box::from(text), value.clone());
    }
    value
}

/// Reads an `interaction_created` payload in the layout serde writes, or returns `None`.
pub(crate) fn read(payload: &str, names: &mut Names) -> Option<EventKind> {
    let mut c = Cursor {
        text: payload,
        at: 0,
    };
    c.lit("{\"type\":\"interaction_created\",\"spec\":{\"id\":")?;
    let id = ulid::Ulid::from_string(c.string()?)
        .ok()
        .map(InteractionId)?;
    c.lit(",\"channel\":")?;
    let channel: Channel = c.string()?.parse().ok()?;
    c.lit(",\"queue\":")?;
    let queue = names.queue(c.string()?);
    c.lit(",\"contact\":")?;
    let contact = c.nullable(|c| c.string().map(ContactId::new))?;
    c.lit(",\"requirements\":[")?;
    let mut requirements = std::mem::take(&mut names.requirements);
    requirements.clear();
    if !c.eat(b']') {
        loop {
            c.lit("{\"skill\":")?;
            let skill = names.skill(c.string()?);
            c.lit(",\"min_level\":")?;
            let level = u8::try_from(c.uint()?).ok()?;
            c.lit("}")?;
            requirements.push(Requirement::new(skill, level));
            if !c.eat(b',') {
                c.lit("]")?;
                break;
            }
        }
    }
    c.lit(",\"preferred\":[")?;
    let mut preferred = std::mem::take(&mut names.preferred);
    preferred.clear();
    if !c.eat(b']') {
        loop {
            preferred.push(names.skill(c.string()?));
            if !c.eat(b',') {
                c.lit("]")?;
                break;
            }
        }
    }
    c.lit(",\"priority\":")?;
    let spec_priority = c.nullable(|c| c.uint().and_then(|n| u32::try_from(n).ok()))?;
    c.lit(",\"sla_deadline\":")?;
    let spec_deadline = c.nullable(|c| c.uint().map(Timestamp::from_millis))?;
    c.lit(",\"attributes\":{")?;
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    if !c.eat(b'}') {
        loop {
            let key = c.string()?;
            c.lit(":")?;
            let value = c.string()?;
            pairs.push((key, value));
            if !c.eat(b',') {
                c.lit("}")?;
                break;
            }
        }
    }
    // Keys out of order or repeated are inserted one by one, the last value of a key winning,
    // as serde's reading does.
    let attributes = Attributes::from_strs(pairs);
    c.lit(",\"external_ref\":")?;
    let external_ref = c.nullable(|c| c.string().map(Arc::<str>::from))?;
    c.lit("},\"priority\":")?;
    let priority = u32::try_from(c.uint()?).ok()?;
    c.lit(",\"sla_deadline\":")?;
    let sla_deadline = Timestamp::from_millis(c.uint()?);
    c.lit("}")?;
    if c.at != payload.len() {
        return None;
    }
    let spec = InteractionSpec {
        id,
        channel,
        queue,
        contact,
        requirements: exact(&mut requirements),
        preferred: exact(&mut preferred),
        priority: spec_priority,
        sla_deadline: spec_deadline,
        attributes,
        external_ref,
    };
    names.requirements = requirements;
    names.preferred = preferred;
    Some(EventKind::InteractionCreated {
        spec: Arc::new(spec),
        priority,
        sla_deadline,
    })
}

/// The items of a scratch list, moved into a vector of exactly their number (none allocated
/// when empty); the scratch list keeps its capacity for the next call.
fn exact<T>(scratch: &mut Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(scratch.len());
    out.append(scratch);
    out
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a [u8] {
        &self.text.as_bytes()[self.at..]
    }

    /// Skips `expected` if the text continues with it. (Inlined so that each comparison is
    /// with a constant and needs no call to `memcmp`.)
    #[inline(always)]
    fn lit(&mut self, expected: &str) -> Option<()> {
        if self.rest().starts_with(expected.as_bytes()) {
            self.at += expected.len();
            Some(())
        } else {
            None
        }
    }

    /// Skips `byte` if it comes next; says whether it did.
    fn eat(&mut self, byte: u8) -> bool {
        if self.rest().first() == Some(&byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// A string without escapes or control characters (serde reads escapes; we leave those to
    /// it), returned borrowed.
    fn string(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        if rest.first() != Some(&b'"') {
            return None;
        }
        let len = rest[1..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest[1 + len] != b'"' {
            return None;
        }
        // Both ends are ASCII quotes, so the slice is on character boundaries.
        let text = self.text.get(self.at + 1..self.at + 1 + len)?;
        self.at += len + 2;
        Some(text)
    }

    /// An unsigned integer as serde_json writes it: digits, no sign, no leading zero, no
    /// fraction or exponent, no overflow.
    fn uint(&mut self) -> Option<u64> {
        let rest = self.rest();
        let len = rest
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(rest.len());
        if len == 0 || (len > 1 && rest[0] == b'0') {
            return None;
        }
        if matches!(rest.get(len), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let mut n: u64 = 0;
        for &d in &rest[..len] {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
        self.at += len;
        Some(n)
    }

    /// `null`, or what `read` reads. The outer `Option` is "the layout matched".
    fn nullable<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.lit("null").is_some() {
            Some(None)
        } else {
            read(self).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What serde makes of a payload (the reader must agree whenever it answers).
    fn serde(payload: &str) -> Option<EventKind> {
        serde_json::from_str(payload).ok()
    }

    fn created(spec: InteractionSpec, priority: u32, sla_deadline: u64) -> String {
        let kind = EventKind::InteractionCreated {
            spec: Arc::new(spec),
            priority,
            sla_deadline: Timestamp::from_millis(sla_deadline),
        };
        serde_json::to_string(&kind).unwrap_or_else(|e| panic!("{e}"))
    }

    fn full_spec() -> InteractionSpec {
        let mut spec = InteractionSpec::new(InteractionId::from_u128(7), Channel::Email, "q1");
        spec.contact = Some(ContactId::new("+33123"));
        spec.requirements = vec![Requirement::new("lang:fr", 2), Requirement::new("tax", 5)];
        spec.preferred = vec![Skill::new("vip"), Skill::new("senior")];
        spec.priority = Some(9);
        spec.sla_deadline = Some(Timestamp::from_millis(1_700_000_123_456));
        spec.attributes.insert("menu", "housing");
        spec.attributes.insert("case", "C-1");
        spec.external_ref = Some("<m1@example.org>".into());
        spec
    }

    #[test]
    fn reads_what_serde_writes_for_every_shape() {
        let mut names = Names::default();
        let bare = InteractionSpec::new(InteractionId::from_u128(1), Channel::Voice, "q");
        for (spec, priority, at) in [
            (bare, 0, 0),
            (full_spec(), u32::MAX, u64::MAX),
            (full_spec(), 3, 1_700_000_000_000),
        ] {
            let payload = created(spec, priority, at);
            let fast = read(&payload, &mut names);
            assert!(fast.is_some(), "fell back on {payload}");
            assert_eq!(fast, serde(&payload), "{payload}");
        }
        for channel in Channel::ALL {
            let spec = InteractionSpec::new(InteractionId::from_u128(2), channel, "q");
            let payload = created(spec, 1, 2);
            assert_eq!(read(&payload, &mut names), serde(&payload));
        }
    }

    #[test]
    fn shares_queue_and_skill_names_between_events() {
        let mut names = Names::default();
        let events: Vec<EventKind> = (0..2u128)
            .map(|n| {
                let mut spec = full_spec();
                spec.id = InteractionId::from_u128(n);
                read(&created(spec, 0, 0), &mut names).unwrap_or_else(|| panic!("fell back"))
            })
            .collect();
        let specs: Vec<&InteractionSpec> = events
            .iter()
            .map(|e| match e {
                EventKind::InteractionCreated { spec, .. } => &**spec,
                other => panic!("{other:?}"),
            })
            .collect();
        let ptr = |s: &str| s.as_ptr();
        assert_eq!(ptr(specs[0].queue.as_str()), ptr(specs[1].queue.as_str()));
        assert_eq!(
            ptr(specs[0].requirements[0].skill.as_str()),
            ptr(specs[1].requirements[0].skill.as_str())
        );
        assert_eq!(specs[0].requirements.capacity(), 2);
        assert_eq!(specs[0].attributes.len(), 2);
    }

    #[test]
    fn falls_back_on_anything_but_the_exact_layout() {
        let good = created(full_spec(), 3, 5);
        let mut names = Names::default();
        assert!(read(&good, &mut names).is_some());
        let variants = [
            // Whitespace, as a person editing the row might leave.
            good.replacen("\"channel\":", "\"channel\": ", 1),
            // Another field order.
            good.replacen(
                "{\"type\":\"interaction_created\",",
                "{\"priority\":3,\"type\":\"interaction_created\",",
                1,
            ),
            // An escape in a string: serde reads it, the reader leaves it to serde.
            good.replacen("housing", "hou\\\"sing", 1),
            good.replacen("housing", "hou\\u00e9sing", 1),
            // Numbers serde reads differently or refuses.
            good.replacen("\"priority\":9", "\"priority\":09", 1),
            good.replacen("\"priority\":9", "\"priority\":9.0", 1),
            good.replacen("\"priority\":9", "\"priority\":-9", 1),
            good.replacen("\"priority\":9", "\"priority\":4294967296", 1),
            good.replacen("\"min_level\":2", "\"min_level\":256", 1),
            good.replacen("},\"priority\":3,", "},\"priority\":3e0,", 1),
            // Fields missing (serde's defaults apply), unknown (serde refuses) or repeated.
            good.replacen(",\"preferred\":[\"vip\",\"senior\"]", "", 1),
            good.replacen("\"external_ref\"", "\"external\":1,\"external_ref\"", 1),
            good.replacen("}", ",\"extra\":true}", 1),
            // A bad id, channel or type, and trailing text.
            good.replacen("0000000000000000000000000", "000000000000000000000000U", 1),
            good.replacen("\"email\"", "\"fax\"", 1),
            good.replacen("interaction_created", "interaction_ended", 1),
            format!("{good} "),
            format!("{good}x"),
            good[..good.len() - 1].to_owned(),
        ];
        for payload in variants {
            assert_ne!(payload, good);
            assert_eq!(read(&payload, &mut names), None, "{payload}");
        }
    }

    #[test]
    fn attributes_out_of_order_or_repeated_keep_the_last_value_like_serde() {
        let good = created(full_spec(), 3, 5);
        let mut names = Names::default();
        for attributes in [
            "{\"menu\":\"housing\",\"case\":\"C-1\"}",
            "{\"case\":\"C-1\",\"menu\":\"a\",\"case\":\"C-2\"}",
            "{\"b\":\"1\",\"a\":\"2\",\"b\":\"3\",\"a\":\"4\"}",
        ] {
            let payload = good.replacen("{\"case\":\"C-1\",\"menu\":\"housing\"}", attributes, 1);
            assert_ne!(payload, good);
            let fast = read(&payload, &mut names);
            assert!(fast.is_some(), "fell back on {payload}");
            assert_eq!(fast, serde(&payload), "{payload}");
        }
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z:+0-9]{0,12}",
            // Quotes, backslashes, control characters and non-ASCII: escaped by serde.
            "[a-z\"\\\\\u{1}\n\u{7f}é€😀 ]{0,8}",
        ]
    }

    prop_compose! {
        fn spec()(
            id in any::<u128>(),
            channel in 0..4usize,
            queue in text(),
            contact in proptest::option::of(text()),
            requirements in proptest::collection::vec((text(), 0..=u8::MAX), 0..4),
            preferred in proptest::collection::vec(text(), 0..3),
            priority in proptest::option::of(any::<u32>()),
            sla in proptest::option::of(any::<u64>()),
            attributes in proptest::collection::vec((text(), text()), 0..4),
            external_ref in proptest::option::of(text()),
        ) -> InteractionSpec {
            let mut spec = InteractionSpec::new(
                InteractionId::from_u128(id), Channel::ALL[channel], queue.as_str());
            spec.contact = contact.map(ContactId::new);
            spec.requirements = requirements
                .into_iter()
                .map(|(s, l)| Requirement::new(s.as_str(), l))
                .collect();
            spec.preferred = preferred.iter().map(Skill::new).collect();
            spec.priority = priority;
            spec.sla_deadline = sla.map(Timestamp::from_millis);
            spec.attributes = attributes.into_iter().collect();
            spec.external_ref = external_ref.map(|r| r.into());
            spec
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        /// Whatever the spec, the reader returns what serde returns, or leaves it to serde; and
        /// it does read every spec whose strings need no escape.
        #[test]
        fn agrees_with_serde(spec in spec(), priority in any::<u32>(), at in any::<u64>()) {
            let payload = created(spec, priority, at);
            let mut names = Names::default();
            let fast = read(&payload, &mut names);
            let expected = serde(&payload);
            prop_assert!(expected.is_some());
            if !payload.contains('\\') {
                prop_assert!(fast.is_some(), "fell back on {}", payload);
            }
            if fast.is_some() {
                prop_assert_eq!(fast, expected);
            }
            // The names kept for the next event change nothing.
            prop_assert_eq!(read(&payload, &mut names), read(&payload, &mut Names::default()));
        }
    }
}
