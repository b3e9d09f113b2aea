//! Rule 15.3, last sentence: an email or a name with a format character (Unicode category
//! Cf: zero-width, bidi controls) is `invalid parameter`, at signup and on change: two
//! addresses that look alike and compare unequal are a way to impersonate a customer.

use proptest::prelude::*;
use saga_account::domain::{Email, Name};
use serde_json::json;

use crate::helpers::*;

/// A sample of Cf: zero-width space, ZWNJ, ZWJ, LRM, RLM, bidi embeddings and overrides,
/// bidi isolates, word joiner, BOM, soft hyphen, Arabic letter mark, Mongolian vowel
/// separator, a tag character.
const FORMAT: [char; 17] = [
    '\u{200B}',
    '\u{200C}',
    '\u{200D}',
    '\u{200E}',
    '\u{200F}',
    '\u{202A}',
    '\u{202B}',
    '\u{202D}',
    '\u{202E}',
    '\u{2066}',
    '\u{2067}',
    '\u{2069}',
    '\u{2060}',
    '\u{FEFF}',
    '\u{00AD}',
    '\u{061C}',
    '\u{E0041}',
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_characters_in_emails_and_names_are_invalid() {
    let app = spawn_app(&Backend::Sqlite).await;
    let (access, _) = app.signup(&customer(1530)).await;
    for (i, c) in FORMAT.into_iter().enumerate() {
        let n = 1531 + u32::try_from(i).unwrap();
        let good = customer(n);
        let bad_values = [
            ("email", format!("ming{n}{c}@example.com")),
            ("email", format!("ming{n}@exa{c}mple.com")),
            ("firstname", format!("Mi{c}ng")),
            ("lastname", format!("{c}Hsu")),
        ];
        for (field, value) in &bad_values {
            let mut body = good.clone();
            body[*field] = json!(value);
            assert_msg(
                app.post("/auth/signup", &body).await,
                400,
                "invalid parameter",
            )
            .await;
            let mut person = json!({
                "firstname": "Ming",
                "lastname": "Hsu",
                "email": "ming1530@example.com",
            });
            person[*field] = json!(value);
            assert_msg(
                app.put_auth("/info/person", &access, &person).await,
                400,
                "invalid parameter",
            )
            .await;
        }
    }
    // Nothing was stored: the profile is as signed up.
    assert_eq!(
        app.get_json("/info/person", &access).await,
        json!({"firstname": "Ming", "lastname": "Hsu", "email": "ming1530@example.com"})
    );
    // Letters of every script are still welcome.
    let mut body = customer(1560);
    body["firstname"] = json!("Zoë");
    body["lastname"] = json!("陳");
    body["email"] = json!("chén1560@例え.jp");
    app.signup(&body).await;
    app.shutdown().await.unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any format character, anywhere in a name or an email, is refused by the parsers
    /// every route uses.
    #[test]
    fn names_and_emails_refuse_one_anywhere(
        format in "\\p{Cf}",
        name in "[A-Za-zé陳]{1,20}",
        email in "[a-z0-9é]{1,10}(\\.[a-z0-9]{1,5})?@[a-z0-9]{1,10}\\.[a-z]{2,4}",
        at in any::<prop::sample::Index>(),
    ) {
        let insert = |text: &str| {
            let chars = text.chars().count() + 1;
            let i = text.char_indices().map(|(i, _)| i).nth(at.index(chars)).unwrap_or(text.len());
            format!("{}{format}{}", &text[..i], &text[i..])
        };
        prop_assert_eq!(Name::parse(insert(&name)).map_err(|e| e.reason), Err("format character"));
        prop_assert_eq!(Email::parse(insert(&email)).map_err(|e| e.reason), Err("format character"));
        // Without it, both are fine.
        prop_assert!(Name::parse(name).is_ok());
        prop_assert!(Email::parse(email).is_ok());
    }
}
