//! Where configuration text came from, and positions in it.

use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration text and the name it is reported under (a file path,
/// or `<environment>` for the auto-detected configuration).
#[derive(Clone)]
pub(crate) struct Source {
    pub(crate) name: String,
    pub(crate) text: String,
    /// The folder relative paths in the file are resolved against.
    pub(crate) base_dir: Option<PathBuf>,
}

impl fmt::Debug for Source {
    // The text may hold secrets written literally: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.name)
            .field("len", &self.text.len())
            .finish()
    }
}

impl Source {
    pub(crate) fn new(
        name: impl Into<String>,
        text: impl Into<String>,
        base_dir: Option<&Path>,
    ) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
            base_dir: base_dir.map(Path::to_path_buf),
        }
    }

    /// The 1-based line and column (in characters) of a byte offset.
    pub(crate) fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(&self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = self
            .text
            .get(line_start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(0)
            + 1;
        Position { line, column }
    }
}

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1, in characters.
    pub column: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters_from_one() {
        let source = Source::new("f", "a = 1\nbé = \"x\"\n", None);
        assert_eq!(source.position(0), Position { line: 1, column: 1 });
        assert_eq!(source.position(6), Position { line: 2, column: 1 });
        let quote = source.text.find('"').unwrap();
        assert_eq!(source.position(quote), Position { line: 2, column: 6 });
    }
}
