//! The OpenAPI document and the routes stay one: every documented operation is served, every
//! route is documented (routes are only ever added through utoipa-axum's `routes!`), the served
//! `/openapi.json` is [`openapi()`], and `/docs` is a self-contained page.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use marquee_auth::{AuthStore, Authenticator, Directory};
use marquee_query_api::access::Access;
use marquee_query_api::{QueryState, openapi, router};
use serde_json::Value;
use tower::ServiceExt;
use uuid::Uuid;

/// A query API over empty in-memory read models, with credentials checked (none are sent).
async fn app() -> Router {
    let store = marquee_store::connect("memory:").await.expect("store");
    let read = marquee_projector::ReadModels::connect("memory:")
        .await
        .expect("read models");
    let auth = AuthStore::connect("memory:").await.expect("auth tables");
    let access = Arc::new(Access {
        authenticator: Authenticator::new(auth).await.expect("authenticator"),
        directory: Directory::new(store.clone()),
    });
    router(QueryState::new(read, store).with_access(access))
}

async fn get(app: &Router, method: &str, uri: &str) -> (StatusCode, String, Vec<u8>) {
    let response = app
        .clone()
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .expect("body");
    (status, content_type, body.to_vec())
}

/// Every (method, path template) the document lists.
fn documented_operations(document: &Value) -> Vec<(String, String)> {
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in [
            "get", "put", "post", "delete", "options", "head", "patch", "trace",
        ] {
            if item.get(method).is_some() {
                operations.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    operations
}

/// The path with each `{parameter}` replaced by a made-up value, and the required query
/// parameters given made-up values.
fn made_up_uri(document: &Value, method: &str, path: &str) -> String {
    let operation = &document["paths"][path][method.to_lowercase()];
    let made_up = Uuid::now_v7();
    let mut uri = path.to_owned();
    let mut query = Vec::new();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        let name = parameter["name"].as_str().expect("name");
        match parameter["in"].as_str() {
            Some("path") => {
                let value = if name == "stream" {
                    format!("event-{made_up}")
                } else {
                    made_up.to_string()
                };
                uri = uri.replace(&format!("{{{name}}}"), &value);
            }
            Some("query") if parameter["required"] == true => {
                query.push(format!("{name}={made_up}"));
            }
            _ => {}
        }
    }
    if !query.is_empty() {
        uri = format!("{uri}?{}", query.join("&"));
    }
    uri
}

#[tokio::test]
async fn every_documented_operation_is_served_by_a_route_not_the_fallbacks() {
    let app = app().await;
    let document = serde_json::to_value(openapi()).expect("document");
    let operations = documented_operations(&document);
    assert!(operations.len() >= 13, "{operations:?}");
    for (method, path) in operations {
        let uri = made_up_uri(&document, &method, &path);
        let (status, _, body) = get(&app, &method, &uri).await;
        let problem: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_ne!(
            problem["code"], "method_not_allowed",
            "{method} {uri}: documented, but no route takes this method"
        );
        assert!(
            !(status == StatusCode::NOT_FOUND && problem["detail"] == "no such route"),
            "{method} {uri}: documented, but no route matches it"
        );
    }
}

#[tokio::test]
async fn the_fallbacks_still_answer_what_no_route_takes() {
    let app = app().await;
    let (status, _, body) = get(&app, "GET", "/v1/nothing-here").await;
    let problem: Value = serde_json::from_slice(&body).expect("problem");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(problem["detail"], "no such route");
    let (status, _, body) = get(&app, "DELETE", "/v1/events").await;
    let problem: Value = serde_json::from_slice(&body).expect("problem");
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(problem["code"], "method_not_allowed");
}

#[tokio::test]
async fn the_served_document_is_openapi_3_1_and_every_operation_has_a_tag_a_summary_and_responses()
{
    let app = app().await;
    let (status, content_type, body) = get(&app, "GET", "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/json");
    let served: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        served,
        serde_json::to_value(openapi()).expect("document"),
        "/openapi.json is not openapi()"
    );
    assert_eq!(served["openapi"], "3.1.0");
    assert_eq!(served["info"]["title"], "Marquee query API");
    assert_eq!(served["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(served["components"]["schemas"]["Problem"].is_object());
    assert_eq!(
        served["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let tags: Vec<&str> = served["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for (method, path) in documented_operations(&served) {
        let operation = &served["paths"][&path][method.to_lowercase()];
        let tag = operation["tags"][0].as_str();
        assert!(
            tag.is_some_and(|t| tags.contains(&t)),
            "{method} {path}: no declared tag"
        );
        assert!(
            operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{method} {path}: no summary"
        );
        let responses = operation["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|status| status.starts_with('2')),
            "{method} {path}: no success response"
        );
        let bearer = operation["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
        assert_eq!(
            responses.contains_key("401"),
            bearer,
            "{method} {path}: answers 401 exactly when it takes a bearer token"
        );
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert!(
                    response["content"]["application/problem+json"].is_object(),
                    "{method} {path} {status}: not a problem"
                );
            }
        }
    }
}

/// Routes added with axum's `.route(…)` (or nested routers) would be served but not
/// documented: the only way in is `OpenApiRouter::routes(routes!(…))`.
#[test]
fn no_route_is_registered_outside_the_openapi_router() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    let mut files = vec![src];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(
                std::fs::read_dir(&path)
                    .expect("read dir")
                    .map(|e| e.expect("entry").path()),
            );
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("source");
        for needle in [
            ".route(",
            ".route_service(",
            ".nest(",
            ".nest_service(",
            "axum::routing",
        ] {
            if text.contains(needle) {
                offenders.push(format!("{}: {needle}", path.display()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "register routes with OpenApiRouter::routes(routes!(…)) so they are documented: {offenders:?}"
    );
}

#[tokio::test]
async fn docs_is_a_self_contained_html_page_that_reads_openapi_json() {
    let app = app().await;
    let (status, content_type, body) = get(&app, "GET", "/docs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = String::from_utf8(body).expect("text");
    assert!(page.contains("openapi.json"));
    for external in [
        "http://",
        "https://",
        "//cdn",
        "<script src",
        "<link",
        "@import",
    ] {
        assert!(!page.contains(external), "the page refers to {external}");
    }
}
