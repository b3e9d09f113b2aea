//! Recovery codes: ten, each 80 random bits as 16 characters of Crockford's base32 in four
//! groups (`7k2m-q9xd-…`), shown once and stored only as keyed digests.

pub const COUNT: usize = 10;
const CHARS: usize = 16;
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A fresh set, as shown to the customer.
pub fn generate() -> Vec<String> {
    (0..COUNT)
        .map(|_| {
            let bits: u128 = rand::random();
            let chars: Vec<u8> = (0..CHARS)
                .filter_map(|i| ALPHABET.get(((bits >> (5 * i)) & 31) as usize).copied())
                .collect();
            chars
                .chunks(4)
                .map(|group| String::from_utf8_lossy(group).into_owned())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// A code as typed, in the one form its digest is taken of: case, dashes and spaces do not
/// matter, nor the letters Crockford's base32 reads as digits (`o`, `i`, `l`).
pub fn normalise(code: &str) -> Option<String> {
    let mut out = String::with_capacity(CHARS);
    for c in code.chars() {
        let c = match c.to_ascii_lowercase() {
            '-' | ' ' => continue,
            'o' => '0',
            'i' | 'l' => '1',
            c => c,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
            return None;
        }
        out.push(c);
    }
    (out.len() == CHARS).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_distinct_codes_that_read_back_however_typed() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), COUNT);
        for code in &codes {
            assert_eq!(code.len(), 19);
            let plain = normalise(code).unwrap();
            assert_eq!(normalise(&code.to_uppercase()), Some(plain.clone()));
            assert_eq!(normalise(&code.replace('-', " ")), Some(plain));
        }
        assert_eq!(
            normalise("0000-1111-aaaa-bbbb"),
            normalise("oooo-IiLl-AAAA-BBBB")
        );
        assert_eq!(normalise("short"), None);
        assert_eq!(normalise("uuuu-uuuu-uuuu-uuuu"), None);
        assert_eq!(normalise("123456"), None);
    }
}
