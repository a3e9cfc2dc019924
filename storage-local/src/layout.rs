//! How keys map to paths under the root, and back.
//!
//! The namespace is flat (`a` and `a/b` can both be objects), but a file
//! system cannot have a file and a directory of one name. So names are
//! split into two spaces that never meet:
//!
//! | on disk    | meaning                                         |
//! |------------|-------------------------------------------------|
//! | `seg`      | a directory: keys continuing with `seg/`        |
//! | `seg~`     | the object whose key ends with `seg`            |
//! | `piece~+`  | a long segment, continued inside this directory |
//! | `*.~tmp`   | a write in flight, beside the object it will be |
//!
//! A segment is written with `%` and `~` percent-escaped, so an escaped
//! segment never contains `~` and can never be mistaken for an object
//! file, a continuation or a temporary file, whatever the key says
//! (`a~`, `x.meta`, `a.~tmp` are ordinary keys). Segments whose escaped form
//! is longer than [`MAX_PIECE`] bytes are cut into pieces, each piece but
//! the last a `~+` directory, so any key up to 1024 bytes fits the 255-byte
//! file-name limit.

use std::path::PathBuf;

use percent_encoding::percent_decode_str;

/// Ends the name of a write in flight. A temporary file lives in the
/// folder it will be published in, so publishing is a rename within one
/// folder (which scales with concurrent writers where renames out of one
/// shared folder do not) and the folder cannot be pruned under a writer.
const TEMP_SUFFIX: &str = ".~tmp";
/// Temporary files untouched for this long are left over from a crash.
pub(crate) const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(3600);

/// A fresh name for a temporary file.
pub(crate) fn temp_name() -> String {
    format!("{:016x}{TEMP_SUFFIX}", fastrand::u64(..))
}

/// Whether a file name is a temporary file's.
pub(crate) fn is_temp(name: &str) -> bool {
    name.ends_with(TEMP_SUFFIX)
}
/// The longest escaped piece of a segment in one file name, leaving room
/// for the suffix under the common 255-byte limit.
const MAX_PIECE: usize = 200;
const OBJECT_SUFFIX: &str = "~";
const CONTINUATION_SUFFIX: &str = "~+";

/// What a directory entry under the root is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryName {
    /// An object; the decoded last piece of its key.
    Object(String),
    /// A directory; the decoded segment it stands for.
    Directory(String),
    /// A continuation of a long segment; the decoded piece.
    Continuation(String),
}

/// Classifies a file name found on disk; `None` for anything this backend
/// did not write (temporary files, foreign files), which listings skip.
pub(crate) fn classify(name: &str) -> Option<EntryName> {
    if let Some(piece) = name.strip_suffix(CONTINUATION_SUFFIX) {
        return decode(piece).map(EntryName::Continuation);
    }
    if let Some(piece) = name.strip_suffix(OBJECT_SUFFIX) {
        return decode(piece).map(EntryName::Object);
    }
    decode(name).map(EntryName::Directory)
}

fn decode(piece: &str) -> Option<String> {
    if piece.is_empty() || piece.contains('~') {
        return None;
    }
    percent_decode_str(piece)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// Appends `segment` to `out` with `%` and `~` escaped.
fn escape_into(out: &mut String, segment: &str) {
    if !segment.contains(['%', '~']) {
        out.push_str(segment);
        return;
    }
    for c in segment.chars() {
        match c {
            '%' => out.push_str("%25"),
            '~' => out.push_str("%7E"),
            c => out.push(c),
        }
    }
}

/// Cuts an escaped segment into pieces of at most [`MAX_PIECE`] bytes,
/// never inside a character or a `%XX` escape.
fn pieces(escaped: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = escaped;
    while rest.len() > MAX_PIECE {
        let mut cut = MAX_PIECE;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        // Do not split "%XX": back off if one of the two bytes before the
        // cut is a '%'.
        let bytes = rest.as_bytes();
        if bytes[cut - 1] == b'%' {
            cut -= 1;
        } else if bytes[cut - 2] == b'%' {
            cut -= 2;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out.push(rest);
    out
}

/// Appends one full segment to the relative path in `out`: escaped, cut
/// into `~+` continuation directories if long, the last piece followed by
/// `suffix` (empty for a directory, [`OBJECT_SUFFIX`] for an object).
///
/// Paths are built in one `String` because this runs on every operation
/// and a `PathBuf` grown piece by piece (with an escaped copy, a list of
/// pieces and a formatted name per segment) cost a dozen allocations.
fn push_segment(out: &mut String, segment: &str, suffix: &str) {
    if !out.is_empty() {
        out.push(std::path::MAIN_SEPARATOR);
    }
    let start = out.len();
    escape_into(out, segment);
    if out.len() - start > MAX_PIECE {
        let escaped = out.split_off(start);
        let parts = pieces(&escaped);
        let last = parts.len() - 1;
        for (i, piece) in parts.into_iter().enumerate() {
            out.push_str(piece);
            if i < last {
                out.push_str(CONTINUATION_SUFFIX);
                out.push(std::path::MAIN_SEPARATOR);
            }
        }
    }
    out.push_str(suffix);
}

/// The path, relative to the root, of the object file for `key`.
pub(crate) fn object_path(key: &str) -> PathBuf {
    // Room for the suffix and a few escapes without growing.
    let mut path = String::with_capacity(key.len() + 8);
    let (dirs, file) = match key.rsplit_once('/') {
        Some((dirs, file)) => (Some(dirs), file),
        None => (None, key),
    };
    if let Some(dirs) = dirs {
        for segment in dirs.split('/') {
            push_segment(&mut path, segment, "");
        }
    }
    push_segment(&mut path, file, OBJECT_SUFFIX);
    PathBuf::from(path)
}

/// The directory, relative to the root, holding the keys that continue
/// with `dirs` followed by `/` (each of `dirs` a full segment).
pub(crate) fn directory_path<'a>(dirs: impl IntoIterator<Item = &'a str>) -> PathBuf {
    let mut path = String::new();
    for segment in dirs {
        push_segment(&mut path, segment, "");
    }
    PathBuf::from(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_and_directory_names_never_collide() {
        assert_eq!(object_path("a"), PathBuf::from("a~"));
        assert_eq!(object_path("a/b"), PathBuf::from("a/b~"));
        assert_eq!(object_path("a~"), PathBuf::from("a%7E~"));
        assert_eq!(object_path("~tmp/x"), PathBuf::from("%7Etmp/x~"));
        assert_eq!(object_path("100%/x"), PathBuf::from("100%25/x~"));
    }

    #[test]
    fn names_on_disk_decode_back_to_key_text() {
        assert_eq!(classify("a%7E~"), Some(EntryName::Object("a~".into())));
        assert_eq!(
            classify("100%25"),
            Some(EntryName::Directory("100%".into()))
        );
        assert_eq!(classify("x~+"), Some(EntryName::Continuation("x".into())));
        assert_eq!(classify("~tmp-123"), None);
    }

    #[test]
    fn temporary_names_are_never_keys_and_no_key_looks_temporary() {
        let name = temp_name();
        assert!(is_temp(&name));
        assert_eq!(classify(&name), None);
        for key in ["a.~tmp", "x/.~tmp", "~tmp", "0123456789abcdef.~tmp"] {
            let path = object_path(key);
            assert!(
                path.iter().all(|part| !is_temp(&part.to_string_lossy())),
                "{key} -> {path:?}"
            );
        }
    }

    #[test]
    fn long_segments_are_cut_into_short_pieces() {
        let segment = format!("{}%{}", "é".repeat(150), "~".repeat(100));
        let path = object_path(&format!("dir/{segment}"));
        let names: Vec<String> = path
            .iter()
            .map(|part| part.to_string_lossy().into_owned())
            .collect();
        assert!(names.len() > 2);
        assert!(names.iter().all(|name| name.len() <= 255));
        let mut decoded = String::new();
        for name in &names[1..] {
            match classify(name) {
                Some(EntryName::Continuation(piece)) | Some(EntryName::Object(piece)) => {
                    decoded.push_str(&piece)
                }
                other => panic!("unexpected {other:?} for {name}"),
            }
        }
        assert_eq!(decoded, segment);
    }

    proptest::proptest! {
        /// Listings walk `directory_path` folders and puts write under
        /// them: an object's path is its folders' path, then continuation
        /// pieces of a long name, then the name.
        #[test]
        fn an_objects_folder_is_the_directory_path_of_its_segments(
            dirs in proptest::collection::vec("[a-z%~é]{1,260}", 0..3),
            name in "[a-z%~é]{1,260}",
        ) {
            let mut key = dirs.join("/");
            if !key.is_empty() {
                key.push('/');
            }
            key.push_str(&name);
            let object = object_path(&key);
            let folder = directory_path(dirs.iter().map(String::as_str));
            let rest = object.strip_prefix(&folder);
            proptest::prop_assert!(rest.is_ok(), "{:?} is not under {:?}", object, folder);
            let rest: Vec<String> = rest
                .iter()
                .flat_map(|rest| rest.iter())
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            let Some((last, pieces)) = rest.split_last() else {
                return Err(proptest::test_runner::TestCaseError::fail("no object name"));
            };
            proptest::prop_assert!(matches!(classify(last), Some(EntryName::Object(_))), "{:?}", object);
            for piece in pieces {
                proptest::prop_assert!(piece.ends_with(CONTINUATION_SUFFIX), "{:?}", object);
            }
            for part in object.iter() {
                proptest::prop_assert!(part.len() <= 255, "{:?} in {:?}", part, object);
            }
        }
    }
}
