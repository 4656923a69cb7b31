//! Checks of free text a client sends: names and notes.

use crate::error::{AppError, AppResult};

/// The most characters notes may have.
pub const MAX_NOTES: usize = 5000;

/// A name trimmed, of 1 to `max` characters.
pub fn name(field: &str, raw: &str, max: usize) -> AppResult<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > max {
        return Err(AppError::bad_input(
            field,
            format!("a name has 1 to {max} characters"),
        ));
    }
    no_control_characters(field, name)?;
    Ok(name.to_owned())
}

/// A name is one line of printable text: no control character (tab, line ends, NUL and
/// the rest of Unicode's Cc class), which would break an email header, a CSV cell or a PDF
/// line wherever the name is shown.
pub fn no_control_characters(field: &str, text: &str) -> AppResult<()> {
    if text.chars().any(char::is_control) {
        return Err(AppError::bad_input(
            field,
            "a name may not contain control characters (tabs, line breaks and the like)",
        ));
    }
    Ok(())
}

/// Notes of at most [`MAX_NOTES`] characters as sent (none is fine), trimmed.
pub fn notes(field: &str, raw: &str) -> AppResult<String> {
    let notes = raw.trim();
    if raw.chars().count() > MAX_NOTES {
        return Err(AppError::bad_input(
            field,
            format!("notes have at most {MAX_NOTES} characters"),
        ));
    }
    if notes
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(AppError::bad_input(
            field,
            "notes may hold tabs and line breaks but no other control characters",
        ));
    }
    Ok(notes.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_notes_are_trimmed_and_bounded() {
        assert_eq!(name("input.name", "  Acme ", 100).unwrap(), "Acme");
        for bad in ["", "   ", &"x".repeat(101)] {
            let err = name("input.name", bad, 100).unwrap_err();
            assert_eq!(err.message(), "a name has 1 to 100 characters");
        }
        assert_eq!(name("n", &"é".repeat(100), 100).unwrap().chars().count(), 100);
        assert_eq!(notes("input.notes", " a note \n").unwrap(), "a note");
        assert_eq!(notes("input.notes", "").unwrap(), "");
        assert!(notes("input.notes", &"x".repeat(MAX_NOTES)).is_ok());
        assert!(notes("input.notes", &format!("{} ", "x".repeat(MAX_NOTES))).is_err());
        let err = notes("input.notes", &"x".repeat(MAX_NOTES + 1)).unwrap_err();
        assert_eq!(err.message(), "notes have at most 5000 characters");
    }

    #[test]
    fn control_characters_are_refused_in_names_and_notes_but_line_breaks_in_notes() {
        for bad in [
            "Eve\u{0}",
            "a\tb",
            "line\nbreak",
            "bell\u{7}",
            "esc\u{1b}[31m",
            "c1\u{85}x",
        ] {
            assert!(name("input.name", bad, 100).is_err(), "{bad:?}");
        }
        assert_eq!(
            name("input.name", "Zoë O'Brien-Smith", 100).unwrap(),
            "Zoë O'Brien-Smith"
        );
        assert_eq!(
            notes("n", "two\nlines\twith a tab").unwrap(),
            "two\nlines\twith a tab"
        );
        for bad in ["nul\u{0}", "bell\u{7}", "esc\u{1b}[2J"] {
            assert!(notes("n", bad).is_err(), "{bad:?}");
        }
    }
}
