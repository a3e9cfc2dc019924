//! Contract keys as Supabase object names.
//!
//! Supabase Storage refuses names outside `[A-Za-z0-9_/!.*'() &$=@;:+,?-]`
//! (non-ASCII, `%`, `#`, `~`, brackets and more) with `InvalidKey`. Every
//! contract key must still work, list back unchanged and list in byte
//! order, so names are encoded, byte by byte, with an encoding that keeps
//! all three properties:
//!
//! - `A-Z`, `a-y`, `0-9`, `-`, `.` and `/` stand for themselves;
//! - every other byte of the key's UTF-8 becomes three characters: an
//!   escape character and the byte in upper-case hex. The escape character
//!   depends on where the byte sorts, so that escaped bytes sort exactly
//!   where the raw byte would: `!` for bytes below `-`, `:` for bytes
//!   between `9` and `A`, `_` between `Z` and `a`, and `z` for `z` and
//!   everything above (which includes all non-ASCII bytes).
//!
//! So the encoding is a bijection onto its image, `a < b` if and only if
//! `encode(a) < encode(b)` (byte order), `encode(p)` is a prefix of
//! `encode(k)` whenever `p` is a prefix of `k`, and `/` is kept, so the
//! server's own prefix and delimiter listings mean what the contract's do.
//! Plain names (`boards/42/cover`) are stored as they are; others show the
//! escapes in the Supabase dashboard (`cover.png` stays, `a b` is
//! `a!20b`).

use std::fmt::Write;

/// The escape character of `byte`, or `None` when it stands for itself.
fn escape_of(byte: u8) -> Option<char> {
    match byte {
        b'-' | b'.' | b'/' | b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'y' => None,
        0x00..=0x2C => Some('!'),
        0x3A..=0x40 => Some(':'),
        0x5B..=0x60 => Some('_'),
        _ => Some('z'),
    }
}

/// The stored name of a key (or of a listing prefix).
pub(crate) fn encode(key: &str) -> String {
    let mut name = String::with_capacity(key.len());
    for &byte in key.as_bytes() {
        match escape_of(byte) {
            None => name.push(byte as char),
            Some(escape) => {
                name.push(escape);
                // Writing to a String cannot fail.
                let _ = write!(name, "{byte:02X}");
            }
        }
    }
    name
}

/// The key of a stored name; `None` for a name this encoding did not make
/// (written by another client).
pub(crate) fn decode(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let mut key = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        if escape_of(byte).is_none() {
            key.push(byte);
            at += 1;
            continue;
        }
        let hex = name.get(at + 1..at + 3)?;
        if hex.bytes().any(|b| b.is_ascii_lowercase()) {
            return None;
        }
        let raw = u8::from_str_radix(hex, 16).ok()?;
        // Only the canonical escape of that byte decodes.
        if escape_of(raw) != Some(byte as char) {
            return None;
        }
        key.push(raw);
        at += 3;
    }
    String::from_utf8(key).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What Supabase accepts in a name.
    fn accepted_by_supabase(name: &str) -> bool {
        name.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_/!.*'() &$=@;:+,?-".contains(c))
    }

    #[test]
    fn plain_names_are_unchanged_and_others_are_escaped() {
        assert_eq!(encode("boards/42/cover.png"), "boards/42/cover.png");
        assert_eq!(encode("a b"), "a!20b");
        assert_eq!(encode("100%"), "100!25");
        assert_eq!(encode("x_y"), "x_5Fy");
        assert_eq!(encode("zip"), "z7Aip");
        assert_eq!(encode("ü"), "zC3zBC");
        assert_eq!(encode("a:b"), "a:3Ab");
        assert_eq!(decode("a!20b").as_deref(), Some("a b"));
    }

    #[test]
    fn names_not_made_by_this_encoding_do_not_decode() {
        for foreign in ["my_file", "a!2", "a!zz", "z41", "_41", "a!7A", "x!c3"] {
            assert_eq!(decode(foreign), None, "{foreign}");
        }
    }

    proptest! {
        #[test]
        fn every_key_round_trips_into_a_name_supabase_accepts(key in "\\PC{0,40}") {
            let name = encode(&key);
            prop_assert!(accepted_by_supabase(&name), "{name}");
            prop_assert_eq!(decode(&name), Some(key));
        }

        #[test]
        fn byte_order_and_prefixes_are_kept(a in "\\PC{0,12}", b in "\\PC{0,12}") {
            prop_assert_eq!(a.as_bytes().cmp(b.as_bytes()), encode(&a).cmp(&encode(&b)));
            prop_assert_eq!(b.starts_with(&a), encode(&b).starts_with(&encode(&a)));
            prop_assert_eq!(a.matches('/').count(), encode(&a).matches('/').count());
        }
    }
}
