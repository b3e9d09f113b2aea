//! Rule 15.8: a body announced too large is refused at once, before any byte of it is
//! read; with `Expect: 100-continue` too (413, never 100 Continue).

use std::time::Duration;

use tokio::{io::AsyncWriteExt, net::TcpStream};

use crate::{
    helpers::*,
    hygiene::{closed_within, read_response},
};

/// Long enough for any answer that does not wait for the body, far shorter than any
/// timeout of the server.
const AT_ONCE: Duration = Duration::from_secs(2);

#[tokio::test]
async fn an_announced_oversized_body_is_refused_before_it_is_sent() {
    let app = spawn_app_with(&Backend::Sqlite, |s| s.http.body_limit = 1024).await;
    let address = app.base.trim_start_matches("http://").to_owned();
    for (route, expect) in [
        ("POST /api/account/auth/signup", ""),
        ("POST /api/account/auth/login", "Expect: 100-continue\r\n"),
        ("PUT /api/account/info/person", "Expect: 100-continue\r\n"),
        ("POST /api/account/auth/signup", "Expect: 100-continue\r\n"),
    ] {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        // Only the head: a client that announces 10 MB and waits to be told to send it.
        let head = format!(
            "{route} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
             Content-Length: 10000000\r\n{expect}\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let response = tokio::time::timeout(AT_ONCE, read_response(&mut stream))
            .await
            .unwrap_or_else(|_| panic!("{route} {expect:?}: no answer without the body"))
            .expect("an answer, not a closed connection");
        assert_eq!(response.status, 413, "{route} {expect:?}: {response:?}");
        assert_eq!(
            response.header("connection").as_deref(),
            Some("close"),
            "{response:?}"
        );
        assert!(closed_within(&mut stream, AT_ONCE).await, "{route}: closed");
    }
    // At the limit, the body is asked for (100 Continue) and read.
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let body = format!(
        r#"{{"email":"nobody@example.com","password":"{}"}}"#,
        "p".repeat(20)
    );
    let head = format!(
        "POST /api/account/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let continued = tokio::time::timeout(AT_ONCE, read_response(&mut stream))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(continued.status, 100, "{continued:?}");
    stream.write_all(body.as_bytes()).await.unwrap();
    let response = read_response(&mut stream).await.unwrap();
    assert_eq!(response.status, 404, "{response:?}");
}
