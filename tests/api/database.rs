//! The database going away and coming back, and a table that the Go service created.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

/// While MySQL or PostgreSQL is unreachable, requests that need it answer 503 quickly,
/// `Auth` keeps working, and the service recovers by itself when the database returns.
async fn database_outage_is_a_fast_503_and_recovers(backend: Backend) {
    let (server, default_port) = match &backend {
        Backend::MySql(server) => (server, 3306),
        Backend::Postgres(server) => (server, 5432),
        Backend::Sqlite => return,
    };
    let url = url::Url::parse(server).unwrap();
    let target =
        tokio::net::lookup_host((url.host_str().unwrap(), url.port().unwrap_or(default_port)))
            .await
            .unwrap()
            .next()
            .unwrap();
    let proxy = TcpProxy::start(target).await;
    let mut proxied = url.clone();
    proxied.set_port(Some(proxy.addr.port())).unwrap();
    let backend = match backend {
        Backend::MySql(_) => Backend::MySql(proxied.to_string()),
        _ => Backend::Postgres(proxied.to_string()),
    };
    let app = spawn_app(&backend).await;
    let (access, _) = app.signup(&customer(80)).await;

    proxy.cut();
    for _ in 0..5 {
        let response = tokio::time::timeout(
            Duration::from_secs(5),
            app.get_auth("/info/person", &access),
        )
        .await
        .expect("no hang while the database is down");
        assert_msg(response, 503, "service unavailable").await;
    }
    let login = app
        .post(
            "/auth/login",
            &json!({"email": "ming80@example.com", "password": "password-123"}),
        )
        .await;
    assert_msg(login, 503, "service unavailable").await;
    let reply = app
        .grpc()
        .await
        .auth(saga_account::transport::grpc::pb::AuthPayload {
            access_token: access.clone(),
        })
        .await;
    assert_eq!(
        reply.unwrap().into_inner().customer_id,
        app.customer_of(&access).0
    );

    let readiness = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        readiness.status(),
        503,
        "unready while the database is down"
    );
    let body: serde_json::Value = readiness.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "unreachable");

    proxy.restore().await;
    let status = poll_within(
        Duration::from_secs(10),
        async || app.get_auth("/info/person", &access).await.status(),
        |status| *status == 200,
    )
    .await;
    assert_eq!(
        status, 200,
        "the service must recover once the database is back"
    );
    app.shutdown().await.unwrap();
}

/// The table exactly as the Go service left it, with a customer in it: adopted as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopts_a_table_created_by_the_go_service() {
    let Some(backend) = Backend::mysql() else {
        return;
    };
    let database = TestDatabase::fresh(&backend).await;
    database
        .sql(
        "CREATE TABLE `customers` (`id` bigint unsigned AUTO_INCREMENT,`active` boolean DEFAULT true,\
         `first_name` varchar(50) NOT NULL,`last_name` varchar(50) NOT NULL,`email` varchar(320) NOT NULL UNIQUE,\
         `address` text NOT NULL,`phone_number` varchar(20) NOT NULL UNIQUE,`bcrypted_password` binary(60) NOT NULL,\
         `updated_at` bigint,`created_at` bigint,PRIMARY KEY (`id`))",
    )
    .await;
    database
        .sql(
        "INSERT INTO customers VALUES (386907209084960769, 1, 'Ming', 'Hsu', 'go@example.com', 'Taipei', \
         '0900000000', '$2a$10$MbnA4HRLL/OoEvzlJ4sPuO3ZoepnyOMzvC4opWrvOI6odVNh.2t3O', 1620000000000, 1620000000000)",
    )
    .await;
    let app = spawn_app_on(&database, |_| {}).await;
    let login = app
        .post(
            "/auth/login",
            &json!({"email": "go@example.com", "password": "legacy-password-1"}),
        )
        .await;
    assert_eq!(login.status(), 200);
    let (access, _) = tokens_of(login).await;
    assert_eq!(app.customer_of(&access).0, 386907209084960769);
    let shipping: serde_json::Value = app.get_json("/info/shipping", &access).await;
    assert_eq!(
        shipping,
        json!({"address": "Taipei", "phone_number": "0900000000"})
    );
    let mut dup = customer(81);
    dup["email"] = json!("go@example.com");
    assert_msg(app.post("/auth/signup", &dup).await, 400, "duplicate entry").await;
    app.signup(&customer(81)).await;
    app.shutdown().await.unwrap();
}

/// Replicas starting at the same moment on a fresh database: the schema is created once
/// and both serve.
async fn replicas_starting_together_migrate_once(backend: Backend) {
    if let Backend::Sqlite = backend {
        return;
    }
    let database = TestDatabase::fresh(&backend).await;
    let starts = (0..4).map(|_| spawn_app_on(&database, |_| {}));
    let apps = futures_util::future::join_all(starts).await;
    for (n, app) in apps.iter().enumerate() {
        app.signup(&customer(90 + n as u32)).await;
    }
    for app in apps {
        app.shutdown().await.unwrap();
    }
}

crate::server_tests!(
    database_outage_is_a_fast_503_and_recovers,
    replicas_starting_together_migrate_once,
);
