//! Unicode format characters (category Cf), which names and emails refuse (SPEC 15.3).

/// The Unicode general category Cf ("format": zero-width characters, bidi controls, the
/// soft hyphen, tags...), Unicode 15.1, as ranges. Invisible or reordering text: two names
/// or addresses that look alike but compare unequal (SPEC 15.3). A table rather than a
/// crate: the domain depends on std, serde and thiserror only; a unit test checks it against
/// the regex engine's `\p{Cf}`.
const FORMAT_CHARACTERS: [(char, char); 21] = [
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

/// Whether `c` is of category Cf.
pub(super) fn is_format_character(c: char) -> bool {
    FORMAT_CHARACTERS
        .iter()
        .any(|&(first, last)| (first..=last).contains(&c))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn the_table_is_the_category_cf(format in "\\p{Cf}", other in "[^\\p{Cf}]") {
            let format = format.chars().next().unwrap();
            prop_assert!(is_format_character(format), "{:?}", format);
            let other = other.chars().next().unwrap();
            prop_assert!(!is_format_character(other), "{:?}", other);
        }
    }
}
