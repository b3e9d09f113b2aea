//! Rule 15.3, last sentence: an email or a name with a format character (Unicode category
//! Cf: zero-width, bidi controls) is `invalid parameter`, at signup and on change: two
//! addresses that look alike and compare unequal are a way to impersonate a customer.

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
