//! A real SMTP server in the test process (mailin's state machine on a tokio socket): the
//! service speaks SMTP to it, and tests read what arrived, parsed with mail-parser.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use mailin::{Action, Handler, Response, SessionBuilder, response};
use std::sync::Mutex;

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

/// One mail as the server received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub to: Vec<String>,
    pub raw: Vec<u8>,
}

impl ReceivedMail {
    pub fn subject(&self) -> String {
        let parsed = mail_parser::MessageParser::default()
            .parse(&self.raw)
            .expect("an RFC 5322 message");
        parsed.subject().unwrap_or_default().to_owned()
    }

    /// The text/plain part, decoded.
    pub fn text(&self) -> String {
        let parsed = mail_parser::MessageParser::default()
            .parse(&self.raw)
            .expect("an RFC 5322 message");
        parsed.body_text(0).expect("a text part").into_owned()
    }

    pub fn html(&self) -> String {
        let parsed = mail_parser::MessageParser::default()
            .parse(&self.raw)
            .expect("an RFC 5322 message");
        parsed.body_html(0).expect("an HTML part").into_owned()
    }

    /// The link to `path` in the text part (`…/path?token=…`).
    pub fn link(&self, path: &str) -> String {
        let text = self.text();
        text.split_whitespace()
            .find(|w| w.contains(&format!("/{path}?token=")))
            .unwrap_or_else(|| panic!("no /{path} link in {text}"))
            .to_owned()
    }

    /// The token of the link to `path`, taken from the mail as a customer would.
    pub fn token(&self, path: &str) -> String {
        let link = self.link(path);
        let url = url::Url::parse(&link).expect("a URL");
        url.query_pairs()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
            .expect("token parameter")
    }
}

#[derive(Clone)]
struct Collect {
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    current: Option<ReceivedMail>,
}

impl Handler for Collect {
    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Some(ReceivedMail {
            to: to.to_vec(),
            raw: Vec::new(),
        });
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if let Some(mail) = &mut self.current {
            mail.raw.extend_from_slice(buf);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if let Some(mail) = self.current.take() {
            self.mails.lock().unwrap().push(mail);
        }
        response::OK
    }
}

pub struct SmtpSink {
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        Self::start_at("127.0.0.1:0".parse().unwrap()).await
    }

    /// On a given address (a server that comes up where the service was told it is).
    pub async fn start_at(addr: SocketAddr) -> SmtpSink {
        let listener = TcpListener::bind(addr).await.expect("bind SMTP sink");
        let addr = listener.local_addr().unwrap();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let handler = Collect {
            mails: mails.clone(),
            current: None,
        };
        let task = tokio::spawn(async move {
            while let Ok((socket, peer)) = listener.accept().await {
                let handler = handler.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut read = BufReader::new(read);
                    let mut session = SessionBuilder::new("sink").build(peer.ip(), handler);
                    if write
                        .write_all(&session.greeting().buffer()?)
                        .await
                        .is_err()
                    {
                        return Ok::<_, std::io::Error>(());
                    }
                    let mut line = Vec::new();
                    loop {
                        line.clear();
                        if read.read_until(b'\n', &mut line).await? == 0 {
                            break;
                        }
                        let reply = session.process(&line);
                        match reply.action {
                            Action::Reply => write.write_all(&reply.buffer()?).await?,
                            Action::Close => {
                                write.write_all(&reply.buffer()?).await?;
                                break;
                            }
                            Action::NoReply => {}
                            Action::UpgradeTls => break,
                        }
                    }
                    Ok(())
                });
            }
        });
        SmtpSink { addr, mails, task }
    }

    /// `SMTP_URL` for the service.
    pub fn url(&self) -> String {
        format!("smtp://{}?tls=none", self.addr)
    }

    pub async fn mails(&self) -> Vec<ReceivedMail> {
        self.mails.lock().unwrap().clone()
    }

    /// The mails to `to`, waiting until there are at least `n`.
    pub async fn wait_for(&self, to: &str, n: usize) -> Vec<ReceivedMail> {
        let to = to.to_lowercase();
        let mails = super::poll_within(
            Duration::from_secs(15),
            async || {
                self.mails()
                    .await
                    .into_iter()
                    .filter(|m| m.to.iter().any(|t| t.to_lowercase() == to))
                    .collect::<Vec<_>>()
            },
            |m| m.len() >= n,
        )
        .await;
        assert!(
            mails.len() >= n,
            "{n} mails to {to} expected, {} arrived",
            mails.len()
        );
        mails
    }

    /// The latest mail to `to` whose subject contains `subject`, waiting for it.
    pub async fn wait_for_subject(&self, to: &str, subject: &str, n: usize) -> ReceivedMail {
        let to = to.to_lowercase();
        let found = super::poll_within(
            Duration::from_secs(15),
            async || {
                self.mails()
                    .await
                    .into_iter()
                    .filter(|m| {
                        m.to.iter().any(|t| t.to_lowercase() == to) && m.subject().contains(subject)
                    })
                    .collect::<Vec<_>>()
            },
            |m| m.len() >= n,
        )
        .await;
        assert!(
            found.len() >= n,
            "{n} mails {subject:?} to {to} expected, {} arrived",
            found.len()
        );
        found[n - 1].clone()
    }

    /// A free loopback address where nothing listens (yet).
    pub async fn free_addr() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}
