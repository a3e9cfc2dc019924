//! Property tests of the key rules.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use proptest::prelude::*;
use storage_core::{Key, KeyRule, Prefix};

/// A segment made of characters the rules allow, never `.` or `..`.
fn segment() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _+=#?&,;:@!$'()*~\\-.é文😀]{1,12}"
        .prop_filter("dot segments are invalid", |s| s != "." && s != "..")
        .prop_filter("drive-like first segments are invalid", |s| {
            !(s.len() == 2 && s.ends_with(':'))
        })
}

fn valid_key() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 1..6)
        .prop_map(|segments| segments.join("/"))
        .prop_filter("at most 1024 bytes", |k| k.len() <= 1024)
}

proptest! {
    #[test]
    fn every_accepted_key_round_trips(raw in valid_key()) {
        let key = Key::new(raw.clone()).unwrap();
        prop_assert_eq!(key.as_str(), raw.as_str());
        prop_assert_eq!(key.to_string(), raw.clone());
        prop_assert_eq!(key.segments().collect::<Vec<_>>().join("/"), raw.clone());
        let reparsed: Key = key.as_str().parse().unwrap();
        prop_assert_eq!(reparsed, key.clone());
        prop_assert!(Prefix::new(raw.clone()).unwrap().matches(key.as_str()));
    }

    #[test]
    fn any_string_is_either_a_key_or_names_a_rule(raw in any::<String>()) {
        match Key::new(raw.clone()) {
            Ok(key) => prop_assert_eq!(key.as_str(), raw.as_str()),
            Err(err) => {
                prop_assert!(!err.rule().describe().is_empty());
                prop_assert!(err.to_string().contains(err.rule().describe()));
            }
        }
    }

    #[test]
    fn a_dot_segment_anywhere_is_rejected(
        before in prop::collection::vec(segment(), 0..3),
        after in prop::collection::vec(segment(), 0..3),
        dots in prop::sample::select(vec![".", ".."]),
    ) {
        let mut parts = before;
        parts.push(dots.to_string());
        parts.extend(after);
        let err = Key::new(parts.join("/")).unwrap_err();
        prop_assert_eq!(err.rule(), KeyRule::DotSegment);
    }

    #[test]
    fn a_control_character_anywhere_is_rejected(
        key in valid_key(),
        at in any::<prop::sample::Index>(),
        c in prop::sample::select((0u32..0x20).chain(0x7f..0xa0).collect::<Vec<_>>()),
    ) {
        let c = char::from_u32(c).unwrap();
        let boundaries: Vec<usize> = key.char_indices().map(|(i, _)| i).chain([key.len()]).collect();
        let i = boundaries[at.index(boundaries.len())];
        let hostile = format!("{}{}{}", &key[..i], c, &key[i..]);
        prop_assert_eq!(Key::new(hostile).unwrap_err().rule(), KeyRule::ControlCharacter);
    }

    #[test]
    fn a_leading_slash_is_rejected(key in valid_key()) {
        prop_assert_eq!(Key::new(format!("/{key}")).unwrap_err().rule(), KeyRule::LeadingSlash);
    }

    #[test]
    fn keys_over_1024_bytes_are_rejected(len in 1025usize..3000) {
        prop_assert_eq!(Key::new("k".repeat(len)).unwrap_err().rule(), KeyRule::TooLong);
    }
}
