//! What differs between the SQL dialects and is not a clause passed to the store macros:
//! PostgreSQL numbers its placeholders (`$1`, `$2`, …) where SQLite and MySQL take `?`.
//! The statements are written once with `?`; `numbered!` rewrites a literal at compile
//! time and `numbered_at_run_time` a statement put together at run time. A `?` inside a quoted string
//! or identifier is left as it is.

/// The length of `sql` once its placeholders are numbered.
pub(super) const fn numbered_len(sql: &str) -> usize {
    let mut bytes = sql.as_bytes();
    let (mut len, mut n, mut quote) = (0, 0usize, 0u8);
    // A slice pattern rather than an index: this also runs at run time.
    while let [b, rest @ ..] = bytes {
        let b = *b;
        bytes = rest;
        if quote != 0 {
            if b == quote {
                quote = 0;
            }
            len += 1;
        } else if b == b'\'' || b == b'"' {
            quote = b;
            len += 1;
        } else if b == b'?' {
            n += 1;
            len += 1 + digits(n);
        } else {
            len += 1;
        }
    }
    len
}

const fn digits(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// `sql` with its placeholders numbered, in exactly `N` bytes (`numbered_len`).
#[expect(
    clippy::indexing_slicing,
    reason = "evaluated only at compile time (numbered!): an index out of range fails the build"
)]
pub(super) const fn numbered_bytes<const N: usize>(sql: &str) -> [u8; N] {
    let bytes = sql.as_bytes();
    let mut out = [0u8; N];
    let (mut i, mut o, mut n, mut quote) = (0, 0, 0usize, 0u8);
    while i < bytes.len() {
        let b = bytes[i];
        if quote == 0 && b == b'?' {
            n += 1;
            out[o] = b'$';
            o += 1;
            let width = digits(n);
            let mut k = width;
            let mut rest = n;
            while k > 0 {
                k -= 1;
                out[o + k] = b'0' + (rest % 10) as u8;
                rest /= 10;
            }
            o += width;
        } else {
            if quote != 0 && b == quote {
                quote = 0;
            } else if quote == 0 && (b == b'\'' || b == b'"') {
                quote = b;
            }
            out[o] = b;
            o += 1;
        }
        i += 1;
    }
    out
}

/// A statement put together at run time, numbered for PostgreSQL.
pub(super) fn numbered_at_run_time(sql: &str) -> String {
    let mut out = String::with_capacity(numbered_len(sql));
    let (mut n, mut quote) = (0usize, None);
    for c in sql.chars() {
        match (quote, c) {
            (None, '?') => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
                continue;
            }
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
        out.push(c);
    }
    out
}

/// A literal statement numbered for PostgreSQL, at compile time.
macro_rules! numbered {
    ($sql:expr) => {{
        const WRITTEN: &str = $sql;
        const LEN: usize = $crate::storage::store::sql::dialect::numbered_len(WRITTEN);
        const BYTES: [u8; LEN] =
            $crate::storage::store::sql::dialect::numbered_bytes::<LEN>(WRITTEN);
        const NUMBERED: &str = match ::core::str::from_utf8(&BYTES) {
            Ok(text) => text,
            Err(_) => panic!("a statement that is not UTF-8"),
        };
        NUMBERED
    }};
}

/// A literal statement as it is (SQLite, MySQL).
macro_rules! as_written {
    ($sql:expr) => {
        $sql
    };
}

pub(super) use {as_written, numbered};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        const SQL: &str = "UPDATE t SET a = ?, b = '?' WHERE c = ? AND \"d?\" = ?";
        let expected = "UPDATE t SET a = $1, b = '?' WHERE c = $2 AND \"d?\" = $3";
        assert_eq!(numbered_at_run_time(SQL), expected);
        assert_eq!(numbered!(SQL), expected);
        assert_eq!(numbered_len(SQL), expected.len());
    }

    #[test]
    fn ten_and_more_placeholders_get_two_digits() {
        let sql = "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
        let expected = "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
        assert_eq!(
            numbered!("VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
            expected
        );
        assert_eq!(numbered_at_run_time(sql), expected);
    }

    #[test]
    fn a_statement_without_placeholders_is_unchanged() {
        assert_eq!(numbered!("SELECT 1"), "SELECT 1");
        assert_eq!(numbered_at_run_time("SELECT 'é?'"), "SELECT 'é?'");
    }
}
