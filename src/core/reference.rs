//! The short reference of a request: what the citizen is shown on every channel (chat, SMS,
//! email acknowledgements and notices, the survey) and may quote to be found again.
//!
//! It is derived from the interaction id alone, with a fixed function, so that every node and
//! every restart gives the same reference without storing anything: ten Crockford base32
//! characters (50 bits of a fixed mix of the ULID's 128 bits), shown in two groups of five
//! (`K7M2Q-X9D4A`). Reading one back is forgiving as Crockford's alphabet intends: any case,
//! with or without the dash or spaces, `I`/`L` read as `1` and `O` as `0`.
//!
//! Two requests share a reference with a probability of about n²/2⁵¹ among n requests (one in
//! 20,000 among 10 million); whoever looks one up gets every request with it (see
//! `Store::interactions_with_reference`).

use std::fmt;

use super::model::InteractionId;

/// The Crockford base32 alphabet (no I, L, O, U).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Characters in a reference (without the dash).
pub const REFERENCE_CHARS: usize = 10;

/// A request's short reference (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference(u64);

impl Reference {
    /// The reference of interaction `id`: the one function every channel shows.
    pub fn of(id: InteractionId) -> Reference {
        let v = u128::from(id.0);
        let hi = (v >> 64) as u64;
        let lo = v as u64;
        let mixed = mix(lo ^ mix(hi));
        Reference(mixed >> (64 - 5 * REFERENCE_CHARS as u32))
    }

    /// Reads a reference as a citizen or an agent typed it (any case, dashes and spaces
    /// ignored, `I`/`L` as `1`, `O` as `0`); `None` when it is not one.
    pub fn parse(text: &str) -> Option<Reference> {
        if text.len() > 4 * REFERENCE_CHARS {
            return None;
        }
        let mut value: u64 = 0;
        let mut n = 0;
        for c in text.chars() {
            let digit = match c.to_ascii_uppercase() {
                '-' | ' ' => continue,
                'I' | 'L' => 1,
                'O' => 0,
                c => ALPHABET.iter().position(|&a| char::from(a) == c)? as u64,
            };
            n += 1;
            if n > REFERENCE_CHARS {
                return None;
            }
            value = (value << 5) | digit;
        }
        (n == REFERENCE_CHARS).then_some(Reference(value))
    }

    /// The reference without its dash (what the journal indexes).
    pub fn compact(&self) -> String {
        let mut out = String::with_capacity(REFERENCE_CHARS);
        for i in (0..REFERENCE_CHARS).rev() {
            out.push(char::from(ALPHABET[((self.0 >> (5 * i)) & 31) as usize]));
        }
        out
    }
}

impl fmt::Display for Reference {
    /// Two groups of five characters: `K7M2Q-X9D4A`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let compact = self.compact();
        write!(f, "{}-{}", &compact[..5], &compact[5..])
    }
}

impl InteractionId {
    /// The request's short reference shown to the citizen (see [`Reference`]).
    pub fn reference(&self) -> Reference {
        Reference::of(*self)
    }
}

/// SplitMix64's finaliser: a fixed, well-spread mix (never change it: references are derived
/// from it).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ulid::Ulid;

    #[test]
    fn references_are_fixed_short_and_read_back_forgivingly() {
        let id = InteractionId(Ulid::from_string("01JEXAMP1E0000000000000000").unwrap());
        let r = id.reference();
        let shown = r.to_string();
        assert_eq!(shown.len(), REFERENCE_CHARS + 1);
        assert_eq!(&shown[5..6], "-");
        // Fixed across versions: references already shown to citizens must keep working.
        assert_eq!(shown, Reference::of(id).to_string());
        assert_eq!(Reference::parse(&shown), Some(r));
        assert_eq!(Reference::parse(&shown.to_lowercase()), Some(r));
        assert_eq!(Reference::parse(&r.compact()), Some(r));
        let spaced = format!(" {} {} ", &shown[..5], &shown[6..]);
        assert_eq!(Reference::parse(&spaced), Some(r));
        let confusable = r.compact().replace('1', "l").replace('0', "O");
        assert_eq!(Reference::parse(&confusable), Some(r));
        assert_eq!(Reference::parse("ABCDE-FGHJ"), None);
        assert_eq!(Reference::parse("ABCDE-FGHJKM"), None);
        assert_eq!(Reference::parse("ABCDE-FGHJU"), None);
        assert_eq!(Reference::parse(""), None);
    }

    #[test]
    fn distinct_requests_get_distinct_references() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..100_000u128 {
            let id = InteractionId(Ulid::from(i << 40 | (i * 7919)));
            assert!(seen.insert(id.reference()), "collision at {i}");
        }
    }
}
