//! Webhook signatures: Twilio's `X-Twilio-Signature` and the `t=...,v1=...` HMAC-SHA256 scheme
//! that jambonz uses (`jambonz-signature`) and that Guichet's generic SIP API reuses
//! (`guichet-signature`). Comparisons are constant-time. A request costs at most one HMAC for
//! the `t=...,v1=...` scheme (the header is bounded and parsed before hashing, the body hashed
//! once whatever the number of `v1` entries) and at most two for Twilio's (the URL with and
//! without its default port); each is counted in `guichet_webhook_hmac_total{scheme}`.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

type HmacSha1 = Hmac<Sha1>;
type HmacSha256 = Hmac<Sha256>;

/// How far a `t=` timestamp may be from now, in seconds (jambonz's own tolerance).
pub const MAX_SKEW_SECS: i64 = 300;

/// The string Twilio signs: the URL followed by each POST parameter's name and value, sorted
/// by name (then value).
fn twilio_payload(url: &str, params: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut payload = url.as_bytes().to_vec();
    for (k, v) in sorted {
        payload.extend_from_slice(k.as_bytes());
        payload.extend_from_slice(v.as_bytes());
    }
    payload
}

/// Twilio's signature of a request to `url` with form `params`: base64 of HMAC-SHA1 with the
/// auth token (what Twilio puts in `X-Twilio-Signature`).
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    // An HMAC takes a key of any length: `new_from_slice` cannot fail.
    let mut mac = HmacSha1::new_from_slice(auth_token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(&twilio_payload(url, params));
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `signature` is Twilio's signature of the request. Like Twilio's helper libraries,
/// the URL is also tried with its default port added or removed (proxies differ on it).
pub fn twilio_valid(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> bool {
    TwilioSigner::new(auth_token).valid(url, params, signature)
}

/// Checks `X-Twilio-Signature` with one auth token, keyed once: each check then costs the
/// hash of the URL and parameters only (the HMAC's key blocks are hashed here, not per
/// request), and the parameters are hashed in place, without building the signed string.
#[derive(Clone)]
pub struct TwilioSigner {
    keyed: HmacSha1,
}

impl std::fmt::Debug for TwilioSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TwilioSigner(..)")
    }
}

impl TwilioSigner {
    /// A signer keyed with `auth_token`.
    pub fn new(auth_token: &str) -> TwilioSigner {
        TwilioSigner {
            // An HMAC takes a key of any length: `new_from_slice` cannot fail.
            keyed: HmacSha1::new_from_slice(auth_token.as_bytes())
                .unwrap_or_else(|_| unreachable!("HMAC accepts any key length")),
        }
    }

    /// Whether `signature` is Twilio's signature of a request to `url` with form `params`
    /// (the URL as given first, then with its default port added or removed).
    pub fn valid(&self, url: &str, params: &[(String, String)], signature: &str) -> bool {
        // A SHA-1 HMAC is 20 bytes (28 base64 characters, which could hold 21).
        let mut decoded = [0u8; 21];
        // A longer header cannot be a signature: refused before any hashing.
        if signature.len() > 64 {
            return false;
        }
        let expected = match base64::engine::general_purpose::STANDARD
            .decode_slice(signature.trim().as_bytes(), &mut decoded)
        {
            Ok(20) => &decoded[..20],
            _ => return false,
        };
        let mut sorted: Vec<&(String, String)> = params.iter().collect();
        sorted.sort_unstable();
        let check = |candidate: &str| {
            count_hmac("twilio");
            let mut mac = self.keyed.clone();
            mac.update(candidate.as_bytes());
            for (k, v) in &sorted {
                mac.update(k.as_bytes());
                mac.update(v.as_bytes());
            }
            mac.verify_slice(expected).is_ok()
        };
        check(url) || url_variants(url).iter().skip(1).any(|c| check(c))
    }
}

/// `url` as given, and with its scheme's default port added (or removed if present).
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    let (scheme, port) = if let Some(rest) = url.strip_prefix("https://") {
        ("https://", (rest, ":443"))
    } else if let Some(rest) = url.strip_prefix("http://") {
        ("http://", (rest, ":80"))
    } else {
        return out;
    };
    let (rest, default_port) = port;
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    if let Some(host) = authority.strip_suffix(default_port) {
        out.push(format!("{scheme}{host}{tail}"));
    } else if !authority.contains(':') || authority.ends_with(']') {
        out.push(format!("{scheme}{authority}{default_port}{tail}"));
    }
    out
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The header value signing `body` at unix time `t` with `secret`: `t=<t>,v1=<hex HMAC-SHA256
/// of "<t>.<body>">` (jambonz's scheme).
pub fn timestamped_signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex(&mac.finalize().into_bytes()))
}

/// The longest `t=...,v1=...` header examined, in bytes: longer ones are refused before any
/// hashing (a real header has one timestamp and one or two signatures, under 200 bytes).
pub const MAX_SIGNATURE_HEADER_BYTES: usize = 1024;
/// The most comma-separated entries a `t=...,v1=...` header may have (one `t`, a few `v1`
/// during a key rotation).
pub const MAX_SIGNATURE_ENTRIES: usize = 8;

/// Why a `t=...,v1=...` header is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimestampedError {
    /// No `t=` or no `v1=`.
    #[error("the signature header must read t=<unix seconds>,v1=<hex HMAC-SHA256>")]
    Malformed,
    /// Over [`MAX_SIGNATURE_HEADER_BYTES`] or [`MAX_SIGNATURE_ENTRIES`].
    #[error("the signature header is too long: at most 1024 bytes and 8 entries (t=...,v1=...)")]
    TooLong,
    /// `t` is too far from now.
    #[error("the signature's timestamp is more than 5 minutes away from now")]
    Expired,
    /// No `v1` matches.
    #[error("the signature does not match the body")]
    Mismatch,
}

/// A parsed `t=...,v1=...` header: the timestamp and the 32-byte `v1` digests (entries that
/// are not 64 hex digits are ignored, as are unknown keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampedHeader {
    /// The `t=` unix time.
    pub t: i64,
    /// Every well-formed `v1=` digest.
    pub v1: Vec<[u8; 32]>,
}

/// Parses a `t=...,v1=...` header without hashing anything: refused when longer than
/// [`MAX_SIGNATURE_HEADER_BYTES`] or with more than [`MAX_SIGNATURE_ENTRIES`] entries.
pub fn parse_timestamped(header: &str) -> Result<TimestampedHeader, TimestampedError> {
    if header.len() > MAX_SIGNATURE_HEADER_BYTES {
        return Err(TimestampedError::TooLong);
    }
    if header.split(',').nth(MAX_SIGNATURE_ENTRIES).is_some() {
        return Err(TimestampedError::TooLong);
    }
    let mut t: Option<i64> = None;
    let mut v1: Vec<[u8; 32]> = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.trim().parse().ok(),
            Some(("v1", value)) => {
                if let Some(bytes) = unhex(value.trim()).and_then(|b| <[u8; 32]>::try_from(b).ok())
                {
                    v1.push(bytes);
                }
            }
            _ => {}
        }
    }
    match t {
        Some(t) if !v1.is_empty() => Ok(TimestampedHeader { t, v1 }),
        _ => Err(TimestampedError::Malformed),
    }
}

/// Whether two digests are equal, in time independent of where they differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Counts one HMAC computed over a webhook (`guichet_webhook_hmac_total{scheme}`).
pub fn count_hmac(scheme: &'static str) {
    metrics::counter!(crate::obs::metrics::names::WEBHOOK_HMACS, "scheme" => scheme).increment(1);
}

/// Checks a `t=...,v1=...` header against `body` at unix time `now` (any of several `v1`
/// may match, so that secrets can be rotated). The header is parsed and bounded first; the
/// body is hashed once, and every `v1` compared with that one digest in constant time.
pub fn timestamped_valid(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
) -> Result<(), TimestampedError> {
    let parsed = parse_timestamped(header)?;
    if now.saturating_sub(parsed.t).saturating_abs() > MAX_SKEW_SECS {
        return Err(TimestampedError::Expired);
    }
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(format!("{}.", parsed.t).as_bytes());
    mac.update(body);
    count_hmac("timestamped");
    let digest: [u8; 32] = mac.finalize().into_bytes().into();
    // Every entry is compared (no early exit), so the time does not tell which one matched.
    let matches = parsed
        .v1
        .iter()
        .fold(false, |found, sig| constant_time_eq(&digest, sig) | found);
    if matches {
        Ok(())
    } else {
        Err(TimestampedError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn twilio_documented_example() {
        // The parameters of Twilio's security documentation; the expected value is what the
        // Python `twilio` package's `RequestValidator.compute_signature` gives for them.
        let params = vec![
            p("CallSid", "CA1234567890ABCDE"),
            p("Caller", "+12349013030"),
            p("Digits", "1234"),
            p("From", "+12349013030"),
            p("To", "+18005551212"),
        ];
        let url = "https://example.com/myapp.php?foo=1&bar=2";
        let sig = twilio_signature("12345", url, &params);
        assert_eq!(sig, "vNe7KK2kJwCsxc9K3OLkkKB3qqI=");
        assert!(twilio_valid("12345", url, &params, &sig));
        assert!(twilio_valid(
            "12345",
            "https://example.com:443/myapp.php?foo=1&bar=2",
            &params,
            &sig
        ));
        let mut tampered = params.clone();
        tampered[2].1 = "1235".into();
        assert!(!twilio_valid("12345", url, &tampered, &sig));
        assert!(!twilio_valid("12345", url, &params, "not base64!"));
    }

    #[test]
    fn timestamped_round_trip() {
        let header = timestamped_signature("s3cret", 1_700_000_000, b"{\"a\":1}");
        assert_eq!(
            timestamped_valid("s3cret", &header, b"{\"a\":1}", 1_700_000_100),
            Ok(())
        );
        assert_eq!(
            timestamped_valid("s3cret", &header, b"{\"a\":2}", 1_700_000_100),
            Err(TimestampedError::Mismatch)
        );
        assert_eq!(
            timestamped_valid("s3cret", &header, b"{\"a\":1}", 1_700_001_000),
            Err(TimestampedError::Expired)
        );
        assert_eq!(
            timestamped_valid("s3cret", "v1=00", b"", 0),
            Err(TimestampedError::Malformed)
        );
    }

    #[test]
    fn rotation_and_bounds() {
        let good = timestamped_signature("new", 1_700_000_000, b"x");
        let v1 = good.split_once(",v1=").map(|(_, v)| v).unwrap_or_default();
        let old = timestamped_signature("old", 1_700_000_000, b"x");
        let old_v1 = old.split_once(",v1=").map(|(_, v)| v).unwrap_or_default();
        // Either secret's signature is accepted, in any order.
        let rotated = format!("t=1700000000,v1={old_v1},v1={v1}");
        assert_eq!(
            timestamped_valid("new", &rotated, b"x", 1_700_000_000),
            Ok(())
        );
        assert_eq!(
            timestamped_valid("old", &rotated, b"x", 1_700_000_000),
            Ok(())
        );
        // Nine entries, or over 1 KB: refused before hashing.
        let nine = format!("t=1700000000{}", ",v1=00".repeat(8));
        assert_eq!(
            timestamped_valid("new", &nine, b"x", 1_700_000_000),
            Err(TimestampedError::TooLong)
        );
        let long = format!("t=1700000000,v1={v1},x={}", "a".repeat(1024));
        assert_eq!(
            timestamped_valid("new", &long, b"x", 1_700_000_000),
            Err(TimestampedError::TooLong)
        );
    }
}
