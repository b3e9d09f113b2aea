//! A real Prometheus (Debian's `prometheus`) scrapes the real binary: the target is up and
//! every metric family of `deploy/metrics.txt` (the list the alert rules and the dashboard
//! are checked against) is there with its type and labels; every metric the Grafana
//! dashboard queries is in the scrape. Skipped without a `prometheus` binary unless
//! `TEST_REQUIRE_SERVICES` is set.

use std::{
    collections::{BTreeMap, BTreeSet},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};

use crate::helpers::*;

/// The `prometheus` binary: `PROMETHEUS_BIN`, else the one on `PATH`.
fn prometheus_binary() -> Option<String> {
    if let Ok(bin) = std::env::var("PROMETHEUS_BIN") {
        return Some(bin);
    }
    let found = Command::new("prometheus")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some("prometheus".into());
    }
    assert!(
        std::env::var("TEST_REQUIRE_SERVICES").is_err(),
        "TEST_REQUIRE_SERVICES is set but there is no prometheus binary (apt-get install prometheus)"
    );
    eprintln!("skipped: no prometheus binary (apt-get install prometheus, or set PROMETHEUS_BIN)");
    None
}

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// (type, label names) of each family in `deploy/metrics.txt`.
fn documented_families() -> BTreeMap<String, (String, BTreeSet<String>)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/metrics.txt"))
        .unwrap();
    text.lines()
        .map(|line| line.split('#').next().unwrap().trim())
        .filter(|line| !line.is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let labels = match fields[2] {
                "-" => BTreeSet::new(),
                labels => labels.split(',').map(str::to_owned).collect(),
            };
            (fields[0].to_owned(), (fields[1].to_owned(), labels))
        })
        .collect()
}

/// The metric names a PromQL expression reads: identifiers that are not functions,
/// keywords, label names, durations, strings or Grafana variables.
fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
    ];
    // Blank strings, label matchers, ranges and grouping label lists.
    let mut blanked = String::with_capacity(expr.len());
    let mut closing = None;
    let mut grouping = false;
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match closing {
            Some(end) => {
                if c == end {
                    closing = None;
                }
                blanked.push(' ');
            }
            None => match c {
                '"' | '\'' | '`' => {
                    closing = Some(c);
                    blanked.push(' ');
                }
                '{' => {
                    closing = Some('}');
                    blanked.push(' ');
                }
                '[' => {
                    closing = Some(']');
                    blanked.push(' ');
                }
                '(' if grouping => {
                    closing = Some(')');
                    grouping = false;
                    blanked.push(' ');
                }
                _ => blanked.push(c),
            },
        }
        // A grouping keyword makes the next parenthesis a label list.
        if closing.is_none() && c.is_ascii_alphabetic() {
            let word: String = blanked
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
                .chars()
                .rev()
                .collect();
            let next_is_word = chars
                .get(i + 1)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_');
            if !next_is_word {
                grouping = matches!(
                    word.as_str(),
                    "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                );
            }
        }
        i += 1;
    }
    let mut names = BTreeSet::new();
    let bytes = blanked.as_bytes();
    let mut start = None;
    for (i, &b) in bytes.iter().chain(std::iter::once(&b' ')).enumerate() {
        let ident = b.is_ascii_alphanumeric() || b == b'_' || b == b':';
        match (start, ident) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                start = None;
                let word = &blanked[s..i];
                let variable = s > 0 && bytes[s - 1] == b'$';
                let number = word.as_bytes()[0].is_ascii_digit();
                // `sum(...)`, and `sum by (...) (...)` whose label list is blanked.
                let after = blanked[i..].trim_start();
                let call = after.starts_with('(')
                    || ["by ", "without "].iter().any(|k| after.starts_with(k));
                if !(variable || number || call || KEYWORDS.contains(&word.to_lowercase().as_str()))
                {
                    names.insert(word.to_owned());
                }
            }
            _ => {}
        }
    }
    names
}

#[test]
fn promql_names_are_the_metrics_only() {
    assert_eq!(
        promql_metric_names(
            r#"sum by (route, code) (rate(account_http_requests_total{code=~"5..", job="$job"}[$__rate_interval])) / on(instance) group_left sum(up) > bool 0.5"#
        ),
        BTreeSet::from(["account_http_requests_total".to_owned(), "up".to_owned()])
    );
    assert_eq!(
        promql_metric_names("histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m]))) offset 1h"),
        BTreeSet::from(["x_bucket".to_owned()])
    );
}

/// Every `expr` in the dashboard, however deep.
fn dashboard_expressions(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", Value::String(expr)) => out.push(expr.clone()),
                    _ => dashboard_expressions(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| dashboard_expressions(v, out)),
        _ => {}
    }
}

async fn api(client: &reqwest::Client, base: &str, path: &str, query: &[(&str, &str)]) -> Value {
    let response = client
        .get(format!("{base}{path}"))
        .query(query)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "success", "{path}: {body}");
    body["data"].clone()
}

#[tokio::test]
async fn a_real_prometheus_scrapes_every_documented_family() {
    let Some(prometheus) = prometheus_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let redis = std::env::var("TEST_REDIS_ADDRS")
        .ok()
        .filter(|a| !a.is_empty());
    let mut envs = vec![];
    if let Some(addrs) = &redis {
        envs.push(("REDIS_ADDRS", addrs.as_str()));
    }
    let service = ServiceProcess::spawn(dir.path(), &envs);

    // Traffic through every kind of route, so that the per-route series exist.
    let http = reqwest::Client::new();
    let api_url = |path: &str| service.url(&format!("/api/account{path}"));
    let signup = http
        .post(api_url("/auth/signup"))
        .json(&json!({"email": "prom@example.com", "password": "a long passphrase 1", "firstname": "P", "lastname": "Q", "address": "A", "phone_number": "0912345678"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 201);
    let tokens: Value = signup.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    for path in ["/info/person", "/info/shipping", "/info/sessions"] {
        let r = http
            .get(api_url(path))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let wrong = http
        .post(api_url("/auth/login"))
        .json(&json!({"email": "prom@example.com", "password": "not it at all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let mut grpc =
        saga_account::transport::grpc::pb::auth_service_client::AuthServiceClient::connect(
            format!("http://{}", service.grpc),
        )
        .await
        .unwrap();
    let reply = grpc
        .auth(saga_account::transport::grpc::pb::AuthPayload {
            access_token: access.clone(),
        })
        .await
        .unwrap();
    assert!(!reply.get_ref().expired);

    // Prometheus on loopback, scraping every 500 ms.
    let port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\nscrape_configs:\n  - job_name: saga-account\n    static_configs:\n      - targets: ['{}']\n",
            service.metrics
        ),
    )
    .unwrap();
    let _prometheus = Prometheus(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts"),
    );
    let base = format!("http://127.0.0.1:{port}");

    // The target is up once a scrape succeeded.
    let target = poll_within(
        Duration::from_secs(30),
        async || {
            let response = http
                .get(format!("{base}/api/v1/targets"))
                .send()
                .await
                .ok()?;
            let body: Value = response.json().await.ok()?;
            body["data"]["activeTargets"].get(0).cloned()
        },
        |t| t.as_ref().is_some_and(|t| t["health"] == "up"),
    )
    .await;
    let target = target.expect("prometheus lists the target");
    assert_eq!(target["health"], "up", "{target}");
    assert_eq!(target["labels"]["job"], "saga-account");

    // Every documented family, by the type the service declared and the labels it sent.
    let metadata = poll_within(
        Duration::from_secs(10),
        async || api(&http, &base, "/api/v1/metadata", &[]).await,
        |m| m.get("account_logins_total").is_some(),
    )
    .await;
    let mut problems = Vec::new();
    for (family, (kind, labels)) in documented_families() {
        let declared = metadata[&family][0]["type"].as_str().unwrap_or("missing");
        if declared != kind {
            problems.push(format!("{family}: type {declared}, documented {kind}"));
            continue;
        }
        let series_name = if kind == "histogram" {
            format!("{family}_count")
        } else {
            family.clone()
        };
        let series = api(
            &http,
            &base,
            "/api/v1/series",
            &[("match[]", series_name.as_str())],
        )
        .await;
        let series = series.as_array().cloned().unwrap_or_default();
        if series.is_empty() {
            problems.push(format!("{family}: no series"));
        }
        for one in series {
            let names: BTreeSet<String> = one
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| !matches!(k.as_str(), "__name__" | "job" | "instance"))
                .cloned()
                .collect();
            if names != labels {
                problems.push(format!("{family}: labels {names:?}, documented {labels:?}"));
                break;
            }
        }
    }
    assert!(
        problems.is_empty(),
        "scrape against deploy/metrics.txt:\n{}",
        problems.join("\n")
    );

    // Every metric the dashboard queries is in the scrape (or is Prometheus's own `up`).
    let names: BTreeSet<String> =
        serde_json::from_value(api(&http, &base, "/api/v1/label/__name__/values", &[]).await)
            .unwrap();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/grafana/saga-account.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut expressions = Vec::new();
    dashboard_expressions(&dashboard, &mut expressions);
    assert!(expressions.len() > 20, "{} expressions", expressions.len());
    let mut missing = BTreeMap::new();
    for expr in &expressions {
        for name in promql_metric_names(expr) {
            if name != "up" && !names.contains(&name) {
                missing.entry(name).or_insert_with(|| expr.clone());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "dashboard metrics missing from the scrape: {missing:#?}"
    );
}
