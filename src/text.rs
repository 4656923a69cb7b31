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
    Ok(name.to_owned())
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
}
