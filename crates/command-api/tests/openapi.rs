//! The OpenAPI document and the routes stay one: every documented operation is served, the
//! served document is the crate's, and no route is registered past the documentation.
//!
//! Routes are registered with utoipa-axum's `routes!`, which takes method and path from each
//! handler's `#[utoipa::path]`; these tests catch the ways around that (a plain `.route(…)`, a
//! nested router) and a document that names something the router does not serve.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use marquee_command_api::access::{Auth, RateLimits};
use marquee_command_api::{CommandState, openapi, router};
use serde_json::Value;
use tower::ServiceExt;

async fn app() -> Router {
    let log = marquee_store::connect("memory:").await.expect("store");
    let auth = Auth::connect("memory:", log.clone(), RateLimits::default())
        .await
        .expect("auth tables");
    router(CommandState::new(log, Arc::new(auth)))
}

/// The document as JSON, the way clients read it.
fn document() -> Value {
    serde_json::to_value(openapi()).expect("document as JSON")
}

/// Every (method, path template) the document names.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                all.push((method.clone(), path.clone(), operation.clone()));
            }
        }
    }
    all
}

/// `path` with each `{param}` replaced by a made-up value.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment == "{ticket_code}" {
                "0123456789abcdef0123456789abcdef".to_owned()
            } else if segment.starts_with('{') {
                uuid::Uuid::now_v7().to_string()
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn send(app: &Router, method: Method, uri: &str) -> (StatusCode, Value, Option<String>) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("request");
    let answer = app.clone().oneshot(request).await.expect("answer");
    let status = answer.status();
    let content_type = answer
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(answer.into_body(), 1 << 20)
        .await
        .expect("body");
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, json, content_type)
}

/// Whether an answer came from the router's fallbacks rather than a handler.
fn fell_back(status: StatusCode, body: &Value) -> bool {
    status == StatusCode::METHOD_NOT_ALLOWED
        || body["code"] == "method_not_allowed"
        || (status == StatusCode::NOT_FOUND && body["detail"] == "no such route")
}

#[tokio::test]
async fn every_documented_operation_reaches_a_handler() {
    let app = app().await;
    let doc = document();
    let operations = operations(&doc);
    assert!(
        operations.len() > 40,
        "only {} operations",
        operations.len()
    );
    for (method, path, _) in operations {
        let uri = concrete(&path);
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let (status, body, _) = send(&app, method.clone(), &uri).await;
        assert!(
            !fell_back(status, &body),
            "{method} {path} is documented but not routed: {status} {body}"
        );
    }
}

#[tokio::test]
async fn the_fallbacks_are_told_apart_from_handlers() {
    // The check above relies on recognising the fallbacks' answers; make sure it does.
    let app = app().await;
    let (status, body, _) = send(&app, Method::GET, "/v1/nowhere").await;
    assert!(fell_back(status, &body), "{status} {body}");
    let (status, body, _) = send(&app, Method::DELETE, "/v1/venues").await;
    assert!(fell_back(status, &body), "{status} {body}");
    // A handler's own 404 (an unknown event) is not a fallback.
    let uri = format!("/v1/events/{}/publish", uuid::Uuid::now_v7());
    let (status, body, _) = send(&app, Method::POST, &uri).await;
    assert!(!fell_back(status, &body), "{status} {body}");
}

#[tokio::test]
async fn the_served_document_is_the_crates_and_the_docs_page_is_html() {
    let app = app().await;
    let (status, served, content_type) = send(&app, Method::GET, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(served, document());

    let request = Request::builder()
        .uri("/docs")
        .body(Body::empty())
        .expect("request");
    let answer = app.clone().oneshot(request).await.expect("answer");
    assert_eq!(answer.status(), StatusCode::OK);
    let content_type = answer.headers()[header::CONTENT_TYPE]
        .to_str()
        .expect("text");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = axum::body::to_bytes(answer.into_body(), 1 << 22)
        .await
        .expect("body");
    assert_eq!(&page[..], include_bytes!("../../../assets/api-docs.html"));
}

#[test]
fn the_document_is_openapi_3_1_with_tagged_answered_operations() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "Marquee command API");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    assert!(schemas.contains_key("Problem"));
    let tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    let mut ids = BTreeSet::new();
    for (method, path, operation) in operations(&doc) {
        let name = format!("{method} {path}");
        let tag = operation["tags"][0].as_str().unwrap_or_default();
        assert!(tags.contains(tag), "{name} has no declared tag: {tag:?}");
        assert!(
            operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{name} has no summary"
        );
        let responses = operation["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|status| status.starts_with('2')),
            "{name} documents no success"
        );
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert!(
                    response["content"]["application/problem+json"].is_object(),
                    "{name} {status} is not problem+json"
                );
            }
        }
        let id = operation["operationId"].as_str().expect("operationId");
        assert!(ids.insert(id.to_owned()), "{name}: operationId {id} twice");
        // An operation that needs credentials says so, and says what happens without them.
        if operation["security"].is_array() {
            assert!(
                responses.contains_key("401"),
                "{name} requires a token but has no 401"
            );
        }
        // Every `{param}` of the path is a documented path parameter.
        for segment in path.split('/').filter(|s| s.starts_with('{')) {
            let param = segment.trim_matches(['{', '}']);
            let documented = operation["parameters"].as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["in"] == "path" && p["name"] == param && p["required"] == true)
            });
            assert!(documented, "{name}: path parameter {param} undocumented");
        }
    }
}

#[test]
fn every_schema_reference_resolves() {
    let doc = document();
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    for reference in refs {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {reference}"));
        assert!(schemas.contains_key(name), "{reference} does not resolve");
    }
}

fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                refs.push(reference.clone());
            }
            map.values().for_each(|v| collect_refs(v, refs));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

#[test]
fn no_route_is_registered_outside_the_documented_router() {
    // `routes!` is the only way a route gets in: anything that adds one by hand would be served
    // without documentation.
    let source_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let forbidden = [
        ".route(",
        ".route_service(",
        ".nest(",
        ".nest_service(",
        "Router::new()",
        "axum::routing::",
    ];
    let mut checked = 0;
    for entry in std::fs::read_dir(source_dir).expect("src") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("source");
        for pattern in forbidden {
            for (number, line) in text.lines().enumerate() {
                let code = line
                    .split("//")
                    .next()
                    .unwrap_or("")
                    .replace("OpenApiRouter::new()", "");
                assert!(
                    !code.contains(pattern),
                    "{}:{}: `{pattern}` registers a route outside `routes!`",
                    path.display(),
                    number + 1
                );
            }
        }
        checked += 1;
    }
    assert!(checked > 10, "only {checked} source files found");
}
