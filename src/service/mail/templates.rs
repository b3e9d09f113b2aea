//! The mails, in plain text and HTML, from templates compiled into the binary
//! (`templates/mail/`). HTML escapes every value; the plain text needs none.

use askama::Template;

#[derive(Template)]
#[template(path = "mail/reset.txt")]
struct ResetText<'a> {
    name: &'a str,
    link: &'a str,
    token: &'a str,
    minutes: u64,
}

#[derive(Template)]
#[template(path = "mail/reset.html")]
struct ResetHtml<'a> {
    name: &'a str,
    link: &'a str,
    token: &'a str,
    minutes: u64,
}

#[derive(Template)]
#[template(path = "mail/verify.txt")]
struct VerifyText<'a> {
    name: &'a str,
    link: &'a str,
    token: &'a str,
    hours: u64,
}

#[derive(Template)]
#[template(path = "mail/verify.html")]
struct VerifyHtml<'a> {
    name: &'a str,
    link: &'a str,
    token: &'a str,
    hours: u64,
}

#[derive(Template)]
#[template(path = "mail/password_changed.txt")]
struct ChangedText<'a> {
    name: &'a str,
}

#[derive(Template)]
#[template(path = "mail/password_changed.html")]
struct ChangedHtml<'a> {
    name: &'a str,
}

#[derive(Template)]
#[template(path = "mail/email_changed.txt")]
struct EmailChangedText<'a> {
    name: &'a str,
    masked: &'a str,
    link: &'a str,
    token: &'a str,
    days: u64,
}

#[derive(Template)]
#[template(path = "mail/email_changed.html")]
struct EmailChangedHtml<'a> {
    name: &'a str,
    masked: &'a str,
    link: &'a str,
    token: &'a str,
    days: u64,
}

#[derive(Template)]
#[template(path = "mail/security_notice.txt")]
struct NoticeText<'a> {
    name: &'a str,
    headline: &'a str,
    detail: &'a str,
}

#[derive(Template)]
#[template(path = "mail/security_notice.html")]
struct NoticeHtml<'a> {
    name: &'a str,
    headline: &'a str,
    detail: &'a str,
}

/// A rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: &'static str,
    pub text: String,
    pub html: String,
}

pub fn reset(name: &str, link: &str, token: &str, minutes: u64) -> askama::Result<Rendered> {
    Ok(Rendered {
        subject: "Reset your password",
        text: ResetText {
            name,
            link,
            token,
            minutes,
        }
        .render()?,
        html: ResetHtml {
            name,
            link,
            token,
            minutes,
        }
        .render()?,
    })
}

pub fn verify(name: &str, link: &str, token: &str, hours: u64) -> askama::Result<Rendered> {
    Ok(Rendered {
        subject: "Verify your email address",
        text: VerifyText {
            name,
            link,
            token,
            hours,
        }
        .render()?,
        html: VerifyHtml {
            name,
            link,
            token,
            hours,
        }
        .render()?,
    })
}

pub fn password_changed(name: &str) -> askama::Result<Rendered> {
    Ok(Rendered {
        subject: "Your password was changed",
        text: ChangedText { name }.render()?,
        html: ChangedHtml { name }.render()?,
    })
}

/// To the address an email change replaced: `masked` is the new address as rule 15.2
/// shows it (`a***@example.org`), never in full.
pub fn email_changed(
    name: &str,
    masked: &str,
    link: &str,
    token: &str,
    days: u64,
) -> askama::Result<Rendered> {
    Ok(Rendered {
        subject: "Your email address was changed",
        text: EmailChangedText {
            name,
            masked,
            link,
            token,
            days,
        }
        .render()?,
        html: EmailChangedHtml {
            name,
            masked,
            link,
            token,
            days,
        }
        .render()?,
    })
}

/// A notice about the account's protection (SPEC section 16): what happened, and what it
/// means; no link, no token.
pub fn security_notice(
    name: &str,
    subject: &'static str,
    headline: &str,
    detail: &str,
) -> askama::Result<Rendered> {
    let text = NoticeText {
        name,
        headline,
        detail,
    };
    let html = NoticeHtml {
        name,
        headline,
        detail,
    };
    Ok(Rendered {
        subject,
        text: text.render()?,
        html: html.render()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_what_the_customer_typed() {
        let mail = reset(
            "<b>Ming</b>",
            "https://shop.example/reset-password?token=abc",
            "abc",
            30,
        )
        .unwrap();
        assert!(
            mail.text.contains("<b>Ming</b>"),
            "plain text is not escaped"
        );
        assert!(mail.html.contains("&#60;b&#62;Ming") || mail.html.contains("&lt;b&gt;Ming"));
        assert!(
            mail.text
                .contains("https://shop.example/reset-password?token=abc")
        );
        assert!(mail.text.contains("30 minutes"));
    }
}
