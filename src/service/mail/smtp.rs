//! `SMTP_URL` and the transports: SMTP through lettre (tokio, rustls), or `.eml` files
//! under `DATA_DIR/mail/` when no server is configured (development).

use std::{path::PathBuf, time::Duration};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    transport::smtp::{
        authentication::Credentials,
        client::{Tls, TlsParameters},
    },
};

use crate::domain::Secret;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtp://…` (default): STARTTLS, required.
    StartTls,
    /// `smtps://…`: TLS from the first byte.
    Wrapper,
    /// `smtp://…?tls=none`: plain text, for a relay on the same host or network.
    None,
}

/// A parsed `SMTP_URL`; the password never prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub user: Option<String>,
    pub password: Option<Secret>,
}

impl SmtpUrl {
    /// `smtp://user:pass@host:587` (STARTTLS), `smtps://user:pass@host:465`, or
    /// `smtp://host:25?tls=none`. lettre's own URL form is not used: it would read
    /// `smtp://` as plain text and send the password in clear.
    pub fn parse(text: &str) -> Option<Self> {
        let url = url::Url::parse(text).ok()?;
        let mut tls_param = None;
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "tls" if tls_param.is_none() => tls_param = Some(value.into_owned()),
                _ => return None,
            }
        }
        let tls = match (url.scheme(), tls_param.as_deref()) {
            ("smtp", None | Some("required" | "starttls")) => SmtpTls::StartTls,
            ("smtp", Some("none")) => SmtpTls::None,
            ("smtps", None) => SmtpTls::Wrapper,
            _ => return None,
        };
        let host = url.host_str().filter(|h| !h.is_empty())?.to_owned();
        let port = url.port().unwrap_or(match tls {
            SmtpTls::StartTls => 587,
            SmtpTls::Wrapper => 465,
            SmtpTls::None => 25,
        });
        let decode = |s: &str| percent_decode(s).filter(|s| !s.is_empty());
        Some(Self {
            host,
            port,
            tls,
            user: decode(url.username()),
            password: url.password().and_then(decode).map(Secret::new),
        })
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(byte);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Why a mail could not be handed over.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("SMTP server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("writing {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where mails go.
#[derive(Clone)]
pub enum Transport {
    Smtp {
        mailer: AsyncSmtpTransport<Tokio1Executor>,
        timeout: Duration,
    },
    /// `.eml` files in this directory.
    Files(PathBuf),
}

impl Transport {
    pub fn new(
        smtp: Option<&SmtpUrl>,
        data_dir: &std::path::Path,
        timeout: Duration,
    ) -> Result<Self, lettre::transport::smtp::Error> {
        let Some(url) = smtp else {
            return Ok(Transport::Files(data_dir.join("mail")));
        };
        let tls = match url.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(TlsParameters::new(url.host.clone())?),
            SmtpTls::Wrapper => Tls::Wrapper(TlsParameters::new(url.host.clone())?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&url.host)
            .port(url.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some(user) = &url.user {
            let password = url.password.as_ref().map_or("", |p| p.expose());
            builder = builder.credentials(Credentials::new(user.clone(), password.to_owned()));
        }
        Ok(Transport::Smtp {
            mailer: builder.build(),
            timeout,
        })
    }

    /// Hands one message over. `name` makes the `.eml` file name unique.
    pub async fn send(&self, message: Message, name: &str) -> Result<(), SendError> {
        match self {
            Transport::Smtp { mailer, timeout } => {
                // lettre bounds only the connect: a stalled server must not stall the sender.
                match tokio::time::timeout(*timeout, mailer.send(message)).await {
                    Ok(sent) => sent.map(drop).map_err(SendError::from),
                    Err(_) => Err(SendError::Timeout(*timeout)),
                }
            }
            Transport::Files(dir) => {
                let path = dir.join(format!("{name}.eml"));
                let partial = dir.join(format!(".{name}.eml.partial"));
                let file_error = |source| SendError::File {
                    path: path.clone(),
                    source,
                };
                tokio::fs::create_dir_all(dir).await.map_err(file_error)?;
                // Written whole, then renamed: a reader never sees half a mail.
                tokio::fs::write(&partial, message.formatted())
                    .await
                    .map_err(file_error)?;
                tokio::fs::rename(&partial, &path)
                    .await
                    .map_err(file_error)?;
                Ok(())
            }
        }
    }

    pub fn is_smtp(&self) -> bool {
        matches!(self, Transport::Smtp { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_as_the_spec_writes_them() {
        let u = SmtpUrl::parse("smtp://user:p%40ss@mail.example.com:587").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.tls),
            ("mail.example.com", 587, SmtpTls::StartTls)
        );
        assert_eq!(u.user.as_deref(), Some("user"));
        assert_eq!(u.password.as_ref().map(Secret::expose), Some("p@ss"));
        assert!(!format!("{u:?}").contains("p@ss"));
        let u = SmtpUrl::parse("smtps://u:p@mail.example.com").unwrap();
        assert_eq!((u.port, u.tls), (465, SmtpTls::Wrapper));
        let u = SmtpUrl::parse("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!((u.port, u.tls, u.user), (2525, SmtpTls::None, None));
        assert_eq!(SmtpUrl::parse("smtp://relay?tls=none").unwrap().port, 25);
        for bad in [
            "",
            "mail.example.com",
            "http://mail.example.com",
            "smtp://",
            "smtp://h?tls=maybe",
            "smtps://h?tls=none",
            "smtp://h?other=1",
        ] {
            assert_eq!(SmtpUrl::parse(bad), None, "{bad}");
        }
    }
}
