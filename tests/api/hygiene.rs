//! HTTP hygiene (SPEC section 12), driven with raw sockets: `Connection: close` when the
//! body is left unread, 431, the head and idle timeouts, the request timeout, the
//! connection cap and the load shedder.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::*;

/// A response read off a raw connection.
#[derive(Debug)]
pub(crate) struct Raw {
    pub status: u16,
    pub head: String,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads one response (head and `Content-Length` body); `None` if the server closed first.
pub(crate) async fn read_response(stream: &mut TcpStream) -> Option<Raw> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let raw = Raw { status, head };
    let length: usize = raw
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some(raw)
}

/// True once the server has closed the connection (EOF or reset), within `within`.
pub(crate) async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(within, stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";

#[tokio::test]
async fn an_unread_body_closes_the_connection_and_a_read_one_keeps_it() {
    let app = spawn_app_with(&Backend::Sqlite, |s| s.http.body_limit = 1024).await;
    // Over the limit: 413, and the client is told the connection ends.
    let mut stream = connect(&app).await;
    let body = json!({"email": "x@example.com", "password": "p".repeat(4000)}).to_string();
    let request = format!(
        "POST /api/account/auth/signup HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let response = read_response(&mut stream).await.unwrap();
    assert_eq!(response.status, 413);
    assert_eq!(
        response.header("connection").as_deref(),
        Some("close"),
        "{response:?}"
    );
    assert!(closed_within(&mut stream, Duration::from_secs(5)).await);

    // An early error (no token) leaves the body unread: the same.
    let mut stream = connect(&app).await;
    let body = json!({"firstname": "a"}).to_string();
    let request = format!(
        "PUT /api/account/info/person HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let response = read_response(&mut stream).await.unwrap();
    assert_eq!(response.status, 401);
    assert_eq!(response.header("connection").as_deref(), Some("close"));

    // A body read to the end: the connection carries the next request.
    let mut stream = connect(&app).await;
    let body = json!({"email": "nobody@example.com", "password": "whatever"}).to_string();
    let request = format!(
        "POST /api/account/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let response = read_response(&mut stream).await.unwrap();
    assert_eq!(response.status, 404, "{response:?}");
    assert_eq!(response.header("connection"), None);
    stream.write_all(HEALTH).await.unwrap();
    assert_eq!(read_response(&mut stream).await.unwrap().status, 200);
}

#[tokio::test]
async fn an_oversized_head_gets_431() {
    let app = spawn_app(&Backend::Sqlite).await;
    let mut stream = connect(&app).await;
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let response = read_response(&mut stream).await.unwrap();
    assert_eq!(response.status, 431);
    // Under the limit is fine.
    let mut stream = connect(&app).await;
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(12 * 1024)
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut stream).await.unwrap().status, 200);
}

#[tokio::test]
async fn slow_heads_are_cut_off_and_idle_connections_live_until_the_idle_timeout() {
    let app = spawn_app_with(&Backend::Sqlite, |s| {
        s.http.header_read_timeout = Duration::from_secs(1);
        s.http.idle_timeout = Duration::from_secs(3);
    })
    .await;
    // Nothing sent: closed after the head timeout.
    let mut silent = connect(&app).await;
    let started = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );

    // Half a head: closed too, without an answer.
    let mut slow = connect(&app).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost:")
        .await
        .unwrap();
    assert!(closed_within(&mut slow, Duration::from_secs(5)).await);

    // A kept-alive connection outlives the head timeout while idle...
    let mut idle = connect(&app).await;
    idle.write_all(HEALTH).await.unwrap();
    assert_eq!(read_response(&mut idle).await.unwrap().status, 200);
    let answered = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    idle.write_all(HEALTH).await.unwrap();
    assert_eq!(read_response(&mut idle).await.unwrap().status, 200);
    // ...and is closed once idle for the idle timeout.
    let answered_again = Instant::now();
    assert!(closed_within(&mut idle, Duration::from_secs(10)).await);
    let idle_for = answered_again.elapsed();
    assert!(
        idle_for >= Duration::from_millis(2900) && answered.elapsed() < Duration::from_secs(9),
        "closed after {idle_for:?} idle"
    );

    // A head started on an idle connection must also finish within the head timeout.
    let mut stalls = connect(&app).await;
    stalls.write_all(HEALTH).await.unwrap();
    assert_eq!(read_response(&mut stalls).await.unwrap().status, 200);
    stalls
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut stalls, Duration::from_secs(5)).await);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
}

/// A request whose body never comes holds a handler until the request timeout.
async fn stalled_upload(app: &TestApp) -> TcpStream {
    let mut stream = connect(app).await;
    stream
        .write_all(
            b"POST /api/account/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":",
        )
        .await
        .unwrap();
    stream
}

#[tokio::test]
async fn a_request_longer_than_the_timeout_gets_503() {
    let app = spawn_app_with(&Backend::Sqlite, |s| {
        s.http.request_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = stalled_upload(&app).await;
    let started = Instant::now();
    let response = read_response(&mut stream).await.unwrap();
    assert_eq!(response.status, 503, "{response:?}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(response.header("connection").as_deref(), Some("close"));
    assert!(response.header("retry-after").is_some());
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let app = spawn_app_with(&Backend::Sqlite, |s| s.http.max_connections = 2).await;
    let mut first = connect(&app).await;
    let mut second = connect(&app).await;
    for stream in [&mut first, &mut second] {
        stream.write_all(HEALTH).await.unwrap();
        assert_eq!(read_response(stream).await.unwrap().status, 200);
    }
    // The third connects (the kernel's backlog) but is not served...
    let mut third = connect(&app).await;
    third.write_all(HEALTH).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(500), read_response(&mut third)).await;
    assert!(waited.is_err(), "served beyond MAX_CONNECTIONS");
    // ...until one of the two goes away.
    drop(first);
    let response = tokio::time::timeout(Duration::from_secs(5), read_response(&mut third))
        .await
        .expect("served once a slot is free")
        .unwrap();
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn beyond_the_queue_requests_are_shed_at_once_and_probes_still_answer() {
    let app = spawn_app_with(&Backend::Sqlite, |s| {
        s.http.max_concurrent_requests = 1;
        s.http.max_queued_requests = 0;
    })
    .await;
    // One running (its body never comes) and no room to wait: the next is refused at once.
    let _running = stalled_upload(&app).await;
    let shed = poll_until(
        async || {
            app.client
                .get(app.url("/info/shipping"))
                .send()
                .await
                .unwrap()
        },
        |r| r.status() == 503,
    )
    .await;
    assert_eq!(shed.status(), 503);
    assert_eq!(shed.headers()["retry-after"], "1");
    // The probes are not queued.
    for probe in ["/healthz", "/readyz"] {
        let response = app
            .client
            .get(format!("{}{probe}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{probe}");
    }
    assert!(app.metrics.http_shed.get() >= 1);
}
