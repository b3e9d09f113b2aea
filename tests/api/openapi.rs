//! The OpenAPI document (SPEC section 12) against the router: every route of the router is
//! in the document with exactly the methods it answers, and nothing else is.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::*;

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

#[tokio::test]
async fn the_document_names_exactly_the_routes_of_the_router() {
    let app = spawn_app(&Backend::Sqlite).await;
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(move |m| (path.clone(), m.to_string()))
        })
        .collect();
    let documented_paths: BTreeSet<&str> = documented.iter().map(|(p, _)| p.as_str()).collect();
    let routes: BTreeSet<&str> = saga_account::transport::http::ROUTES
        .iter()
        .copied()
        .collect();
    assert_eq!(
        documented_paths, routes,
        "document paths against the router's routes"
    );

    // The router answers 405 for a method a path does not have, anything else for one it has.
    let mut routed = BTreeSet::new();
    for path in &routes {
        for method in METHODS {
            let url = format!("{}{}", app.base, path.replace("{id}", "some-session"));
            let response = app
                .client
                .request(method.to_uppercase().parse().unwrap(), url)
                .send()
                .await
                .unwrap();
            if response.status() != 405 {
                routed.insert((path.to_string(), method.to_string()));
            }
        }
    }
    assert_eq!(
        documented, routed,
        "documented operations against the routed ones"
    );

    // Every secured operation says so, with the bearer scheme.
    for (path, method) in &documented {
        let op = &doc["paths"][path][method];
        let responses = op["responses"].as_object().unwrap();
        if responses.contains_key("401") && !path.contains("/auth/") {
            assert_eq!(
                op["security"][0]["bearer"],
                serde_json::json!([]),
                "{method} {path}"
            );
        }
    }
}

/// The router cannot answer a path the document lacks: in the API's sources routes are
/// added only with `routes!`, which takes each path and method from the handler's
/// `#[utoipa::path]`. A plain `.route(...)`, or a plain router nested or merged in, would
/// serve a path that the document, and so `ROUTES`, never heard of.
#[test]
fn the_api_adds_routes_only_with_their_document_paths() {
    // The metrics port's own router, not the API's.
    const NOT_THE_API: &str = "scrape.rs";
    // Where the resources' `OpenApiRouter`s (routes and paths together) are merged.
    const MERGES: &str = "api.rs";
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/transport/http");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".rs") || name == NOT_THE_API {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        for (number, line) in source.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            let mut bypasses = vec![
                "route",
                "route_service",
                "nest",
                "nest_service",
                "fallback_service",
            ];
            if name != MERGES {
                bypasses.push("merge");
            }
            for method in bypasses {
                assert!(
                    !chained(code, method),
                    "{name}:{}: `.{method}(` adds routes the document does not see; use `routes!`",
                    number + 1
                );
            }
            assert!(
                !code.contains(" Router::new()") && !code.contains("(Router::new()"),
                "{name}:{}: a plain router; use `OpenApiRouter` and `routes!`",
                number + 1
            );
        }
        checked += 1;
    }
    assert!(checked > 10, "read {checked} files of {}", dir.display());
}

/// Whether `code` calls `.method(` in a builder chain: at the start of the line, as rustfmt
/// lays chains out, or right after a call (`x().method(`).
fn chained(code: &str, method: &str) -> bool {
    let call = format!(".{method}(");
    code.match_indices(&call).any(|(at, _)| {
        let before = code[..at].trim_end();
        before.is_empty() || before.ends_with(')')
    })
}
