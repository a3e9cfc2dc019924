//! `${VAR}` and `${VAR:-default}` in configuration strings.
//!
//! - `${VAR}` is the variable's value; unset is an error naming it.
//! - `${VAR:-default}` is the value, or `default` when the variable is unset
//!   or empty (as in POSIX shells). The default is taken literally.
//! - `$$` is a literal `$`. A `$` followed by anything else is kept as it
//!   is, so `price$` needs no escaping.
//!
//! Interpolation happens inside string values only, after the file is
//! parsed, so a value can never change the structure of the file.

/// How a string failed to interpolate; the offset is within the string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InterpolationError {
    Missing { name: String, offset: usize },
    Unterminated { offset: usize },
    BadName { name: String, offset: usize },
}

/// The interpolated string and the values that came from the environment.
pub(crate) fn interpolate(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<String>), InterpolationError> {
    let mut out = String::with_capacity(text.len());
    let mut used = Vec::new();
    let mut rest = text;
    let mut consumed = 0;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let offset = consumed + dollar;
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            consumed += dollar + 2;
            rest = tail;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            out.push('$');
            consumed += dollar + 1;
            rest = after;
            continue;
        };
        let close = body
            .find('}')
            .ok_or(InterpolationError::Unterminated { offset })?;
        let inner = &body[..close];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(InterpolationError::BadName {
                name: name.to_owned(),
                offset,
            });
        }
        match (lookup(name), default) {
            (Some(value), Some(default)) if value.is_empty() => out.push_str(default),
            (Some(value), _) => {
                out.push_str(&value);
                used.push(value);
            }
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(InterpolationError::Missing {
                    name: name.to_owned(),
                    offset,
                });
            }
        }
        let skip = dollar + 2 + close + 1;
        consumed += skip;
        rest = &rest[skip..];
    }
    out.push_str(rest);
    Ok((out, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("example.org".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn run(text: &str) -> Result<String, InterpolationError> {
        interpolate(text, &env).map(|(s, _)| s)
    }

    #[test]
    fn variables_defaults_and_escapes() {
        assert_eq!(run("https://${HOST}/x").unwrap(), "https://example.org/x");
        assert_eq!(run("${UNSET:-fallback}").unwrap(), "fallback");
        assert_eq!(run("${EMPTY:-fallback}").unwrap(), "fallback");
        assert_eq!(run("${UNSET:-}").unwrap(), "");
        assert_eq!(
            run("cost $$5 and ${HOST}").unwrap(),
            "cost $5 and example.org"
        );
        assert_eq!(run("$$${HOST}").unwrap(), "$example.org");
        assert_eq!(run("price$ $x").unwrap(), "price$ $x");
        assert_eq!(run("$${HOST}").unwrap(), "${HOST}");
    }

    #[test]
    fn mistakes_name_the_variable_and_the_offset() {
        assert_eq!(
            run("a ${MISSING} b"),
            Err(InterpolationError::Missing {
                name: "MISSING".into(),
                offset: 2
            })
        );
        assert_eq!(
            run("x${OPEN"),
            Err(InterpolationError::Unterminated { offset: 1 })
        );
        assert_eq!(
            run("${1BAD}"),
            Err(InterpolationError::BadName {
                name: "1BAD".into(),
                offset: 0
            })
        );
    }

    #[test]
    fn the_values_used_are_reported_for_masking() {
        let (_, used) = interpolate("${HOST}/${UNSET:-d}", &env).unwrap();
        assert_eq!(used, ["example.org"]);
    }
}
