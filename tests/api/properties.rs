//! The HTTP router fed random methods, paths, headers and bodies in process (no socket, so
//! that header values and bodies no HTTP client would send reach it too): whatever comes
//! in, the answer is never a 5xx and never a panic.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    body::{Body, to_bytes},
    extract::ConnectInfo,
    http::{HeaderName, HeaderValue, Method, Request, Uri},
};
use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use saga_account::{app::Application, domain::Secret};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::helpers::{Backend, TestDatabase, customer, test_settings};

/// Path segments the router knows, and the ones attackers try.
const SEGMENTS: &[&str] = &[
    "api",
    "account",
    "auth",
    "signup",
    "login",
    "refresh",
    "logout",
    "logout-all",
    "info",
    "person",
    "shipping",
    "sessions",
    "password",
    "",
    ".",
    "..",
    "%2e%2e",
    "%2F",
    "%00",
    "%ff%fe",
    "%",
    "%zz",
    ".well-known",
    "jwks.json",
    "healthz",
    "readyz",
    "AAAAAAAAAAAAAAAAAAAAAA",
];

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::DELETE),
        Just(Method::PATCH),
        Just(Method::HEAD),
        Just(Method::OPTIONS),
        Just(Method::TRACE),
        Just(Method::CONNECT),
        "[A-Z]{1,10}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap()),
    ]
}

/// The routes of the router, as written.
const ROUTES: &[&str] = &[
    "/api/account/auth/signup",
    "/api/account/auth/login",
    "/api/account/auth/refresh",
    "/api/account/auth/logout",
    "/api/account/auth/logout-all",
    "/api/account/info/sessions",
    "/api/account/info/sessions/AAAAAAAAAAAAAAAAAAAAAA",
    "/api/account/info/password",
    "/api/account/info/account",
    "/api/account/info/person",
    "/api/account/info/shipping",
    "/healthz",
    "/readyz",
    "/.well-known/jwks.json",
];

/// A real route, most of the time as it is, else bent the ways attackers bend paths
/// (trailing slash, dot segments, percent-encoding, case, a query); or random segments.
fn path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        4 => proptest::sample::select(SEGMENTS).prop_map(str::to_owned),
        1 => "[a-zA-Z0-9%._~!$&'()*+,;=:@-]{0,16}",
    ];
    let bent = (
        proptest::sample::select(ROUTES),
        0..8u8,
        proptest::option::of("[a-zA-Z0-9%=&._-]{0,20}"),
    )
        .prop_map(|(route, bend, query)| {
            let mut path = match bend {
                0 => format!("{route}/"),
                1 => route.replacen("/api/account/", "/api/account/./", 1),
                2 => route.replacen("/api/account/", "/api/account/x/../", 1),
                3 => route.replacen('a', "%61", 1),
                4 => route.to_uppercase(),
                5 => format!("{route}%00"),
                6 => route.replacen('/', "//", 2),
                _ => route.to_owned(),
            };
            if let Some(query) = query {
                path.push('?');
                path.push_str(&query);
            }
            path
        });
    let random = (
        prop_oneof![
            Just("/api/account/"),
            Just("/api/account/info/"),
            Just("/api/account/auth/"),
            Just("/"),
        ],
        proptest::collection::vec(segment, 0..5),
    )
        .prop_map(|(prefix, segments)| format!("{prefix}{}", segments.join("/")));
    prop_oneof![
        6 => proptest::sample::select(ROUTES).prop_map(str::to_owned),
        3 => bent,
        2 => random,
    ]
}

/// Bytes a header value may hold: visible ASCII, space, tab and obs-text.
fn header_junk() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![0x20u8..0x7f, 0x80u8..=0xff, Just(b'\t')],
        0..120,
    )
}

/// What the Authorization header holds: nothing, a real token of either kind, or junk.
#[derive(Debug, Clone)]
enum Auth {
    None,
    Access(&'static str),
    Refresh(&'static str),
    Junk(Vec<u8>),
}

fn auth() -> impl Strategy<Value = Auth> {
    prop_oneof![
        Just(Auth::None),
        prop_oneof![
            Just("bearer "),
            Just("Bearer "),
            Just("BEARER  "),
            Just(""),
            Just("Basic ")
        ]
        .prop_map(Auth::Access),
        Just(Auth::Refresh("bearer ")),
        header_junk().prop_map(Auth::Junk),
        header_junk().prop_map(|mut junk| {
            let mut value = b"bearer ".to_vec();
            value.append(&mut junk);
            Auth::Junk(value)
        }),
    ]
}

#[derive(Debug, Clone)]
enum Length {
    None,
    Right,
    Junk(String),
}

fn content_length() -> impl Strategy<Value = Length> {
    prop_oneof![
        2 => Just(Length::None),
        2 => Just(Length::Right),
        1 => prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            Just("0".to_owned()),
            Just("-1".to_owned()),
            Just("99999999999999999999999".to_owned()),
            Just("12, 12".to_owned()),
            "[0-9a-z ]{1,8}",
        ]
        .prop_map(Length::Junk),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,30}".prop_map(Value::from),
        "[a-z0-9.+-]{1,12}@[a-z]{1,8}\\.[a-z]{2,4}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bodies: none, bytes, any JSON, and the API's own bodies with fields of any type and
/// value (so that validation, not only parsing, is reached).
fn body() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![3 => ".{0,60}".prop_map(Value::from), 1 => json_value()];
    let api_body = proptest::collection::btree_map(
        proptest::sample::select(
            &[
                "password",
                "firstname",
                "lastname",
                "email",
                "address",
                "phone_number",
                "refresh_token",
                "current_password",
                "new_password",
            ][..],
        ),
        field,
        0..7,
    )
    .prop_map(|m| serde_json::to_vec(&m).unwrap());
    prop_oneof![
        Just(Vec::new()),
        proptest::collection::vec(any::<u8>(), 0..200),
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        api_body,
        // Past the body limit.
        Just(vec![b'{'; 70_000]),
    ]
}

#[derive(Debug, Clone)]
struct Attack {
    method: Method,
    path: String,
    auth: Auth,
    content_type: Option<Vec<u8>>,
    length: Length,
    extra: Vec<(&'static str, Vec<u8>)>,
    body: Vec<u8>,
}

fn attack() -> impl Strategy<Value = Attack> {
    let content_type = proptest::option::of(prop_oneof![
        Just(b"application/json".to_vec()),
        Just(b"application/json; charset=utf-8".to_vec()),
        Just(b"application/x-www-form-urlencoded".to_vec()),
        Just(b"multipart/form-data; boundary=x".to_vec()),
        Just(b"text/plain".to_vec()),
        header_junk(),
    ]);
    let extra = proptest::collection::vec(
        (
            proptest::sample::select(
                &[
                    "x-forwarded-for",
                    "user-agent",
                    "accept",
                    "transfer-encoding",
                    "expect",
                    "connection",
                    "traceparent",
                    "uber-trace-id",
                    "x-request-id",
                    "host",
                    "accept-encoding",
                ][..],
            ),
            header_junk(),
        ),
        0..4,
    );
    (
        method(),
        path(),
        auth(),
        content_type,
        content_length(),
        extra,
        body(),
    )
        .prop_map(
            |(method, path, auth, content_type, length, extra, body)| Attack {
                method,
                path,
                auth,
                content_type,
                length,
                extra,
                body,
            },
        )
}

fn request(attack: &Attack, access: &str, refresh: &str) -> Option<Request<Body>> {
    // Only what a server could have parsed off the wire: a valid request target.
    let uri = Uri::try_from(attack.path.as_str()).ok()?;
    let mut request = Request::builder()
        .method(attack.method.clone())
        .uri(uri)
        .body(Body::from(attack.body.clone()))
        .ok()?;
    let headers = request.headers_mut();
    let authorization = match &attack.auth {
        Auth::None => None,
        Auth::Access(scheme) => Some(format!("{scheme}{access}").into_bytes()),
        Auth::Refresh(scheme) => Some(format!("{scheme}{refresh}").into_bytes()),
        Auth::Junk(junk) => Some(junk.clone()),
    };
    if let Some(value) = authorization {
        headers.insert("authorization", HeaderValue::from_bytes(&value).ok()?);
    }
    if let Some(value) = &attack.content_type {
        headers.insert("content-type", HeaderValue::from_bytes(value).ok()?);
    }
    match &attack.length {
        Length::None => {}
        Length::Right => {
            headers.insert("content-length", attack.body.len().into());
        }
        Length::Junk(value) => {
            headers.insert("content-length", HeaderValue::from_str(value).ok()?);
        }
    }
    for (name, value) in &attack.extra {
        headers.append(
            HeaderName::from_static(name),
            HeaderValue::from_bytes(value).ok()?,
        );
    }
    // What the server's connection layer adds to every request.
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000))));
    Some(request)
}

#[test]
fn the_router_never_answers_5xx_to_anything() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (router, access, refresh, _database, _dir) = runtime.block_on(async {
        let database = TestDatabase::fresh(&Backend::Sqlite).await;
        let dir = tempfile::tempdir().unwrap();
        let mut settings = test_settings(dir.path());
        settings.database.dsn = Secret::new(database.dsn.clone());
        let app = Application::build(settings).await.expect("app builds");
        let router = app.http_router();
        // A real customer, so that valid tokens reach the handlers behind authentication.
        let signup = Request::post("/api/account/auth/signup")
            .header("content-type", "application/json")
            .extension(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000))))
            .body(Body::from(customer(1).to_string()))
            .unwrap();
        let response = router.clone().oneshot(signup).await.unwrap();
        assert_eq!(response.status(), 201);
        let body: Value =
            serde_json::from_slice(&to_bytes(response.into_body(), usize::MAX).await.unwrap())
                .unwrap();
        let token = |name: &str| body[name].as_str().unwrap().to_owned();
        // The app's listeners are never served: only the router is.
        (
            router,
            token("access_token"),
            token("refresh_token"),
            database,
            (dir, app),
        )
    });
    let seen = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
    // Each case is a few microseconds unless a valid signup or login hashes a password.
    let mut runner = TestRunner::new(Config {
        cases: 512,
        source_file: Some(file!()),
        ..Config::default()
    });
    let result = runner.run(&attack(), |attack| {
        let Some(request) = request(&attack, &access, &refresh) else {
            return Ok(());
        };
        let response = runtime.block_on(async {
            let response = router.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let body = to_bytes(response.into_body(), usize::MAX).await;
            (status, body)
        });
        let (status, body) = response;
        *seen.lock().unwrap().entry(status.as_u16()).or_insert(0) += 1;
        let body = body.map_err(|e| TestCaseError::fail(format!("body: {e}")))?;
        prop_assert!(
            !status.is_server_error(),
            "{} for {:?}: {}",
            status,
            attack,
            String::from_utf8_lossy(&body)
        );
        Ok(())
    });
    eprintln!("statuses seen: {:?}", seen.lock().unwrap());
    if let Err(e) = result {
        panic!("{e}");
    }
}
