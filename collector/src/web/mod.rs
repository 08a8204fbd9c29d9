//! The web page: hand-written HTML, CSS and JavaScript compiled into the binary and served at
//! `/` and `/assets/...`; the page draws everything from the JSON API under `/api/v1`.
//!
//! # Example
//! ```
//! // Merged into the server's app beside the API's routes; it needs no state of its own.
//! let app: axum::Router = whakapapa_collector::web::router();
//! ```
//!
//! The page links its assets as `assets/<name>?v=<hash of the content>`, so an asset can be
//! cached for a year (`immutable`) while the page itself is revalidated on every load with its
//! `ETag`: a new binary is seen at once, and nothing is fetched twice. Links are relative, so the
//! page also works behind a reverse proxy under a path prefix.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One file of the page.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("assets/app.css"),
    },
];

const INDEX: &str = include_str!("assets/index.html");

/// 64-bit FNV-1a: a version tag for cache busting, not a security hash.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

fn tag(body: &str) -> String {
    format!("{:016x}", fnv1a(body.as_bytes()))
}

/// The page with each `{{name}}` placeholder replaced by its asset's content tag, and its ETag.
static PAGE: LazyLock<(String, String)> = LazyLock::new(|| {
    let mut page = INDEX.to_owned();
    for a in ASSETS {
        page = page.replace(&format!("{{{{{}}}}}", a.name), &tag(a.body));
    }
    let etag = format!("\"{}\"", tag(&page));
    (page, etag)
});

/// The page's routes: `GET /` and `GET /assets/{name}`.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/", get(index))
        .route("/assets/{name}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    let (page, etag) = &*PAGE;
    respond(
        &headers,
        "text/html; charset=utf-8",
        // Revalidate every time: the page names the asset versions.
        "no-cache",
        etag,
        page.as_str(),
    )
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset\n").into_response();
    };
    let etag = format!("\"{}\"", tag(a.body));
    // Every link to an asset carries its content tag, so a cached copy is never stale.
    respond(
        &headers,
        a.content_type,
        "public, max-age=31536000, immutable",
        &etag,
        a.body,
    )
}

fn respond(
    request: &HeaderMap,
    content_type: &'static str,
    cache: &'static str,
    etag: &str,
    body: &'static str,
) -> Response {
    let etag_value = HeaderValue::from_str(etag).expect("hex in quotes is a valid header value");
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let headers = [
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        (header::ETAG, etag_value),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (
        headers,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(uri: &str, if_none_match: Option<&str>) -> Response {
        let mut req = Request::get(uri);
        if let Some(t) = if_none_match {
            req = req.header(header::IF_NONE_MATCH, t);
        }
        router::<()>()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    fn header_of(r: &Response, name: header::HeaderName) -> &str {
        r.headers().get(name).unwrap().to_str().unwrap()
    }

    #[tokio::test]
    async fn page_names_asset_versions_that_are_served() {
        let r = get("/", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            header_of(&r, header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        assert_eq!(header_of(&r, header::CACHE_CONTROL), "no-cache");
        let body = r.into_body().collect().await.unwrap().to_bytes();
        let page = std::str::from_utf8(&body).unwrap();
        assert!(!page.contains("{{"), "placeholder left in the page");
        for (name, ty) in [
            ("app.js", "text/javascript; charset=utf-8"),
            ("app.css", "text/css; charset=utf-8"),
        ] {
            let link = format!(
                "assets/{name}?v={}",
                tag(ASSETS.iter().find(|a| a.name == name).unwrap().body)
            );
            assert!(page.contains(&link), "page links {link}");
            let r = get(&format!("/{link}"), None).await;
            assert_eq!(r.status(), StatusCode::OK, "{link}");
            assert_eq!(header_of(&r, header::CONTENT_TYPE), ty);
            assert_eq!(
                header_of(&r, header::CACHE_CONTROL),
                "public, max-age=31536000, immutable"
            );
        }
    }

    #[tokio::test]
    async fn etag_answers_not_modified() {
        let r = get("/assets/app.css", None).await;
        let etag = header_of(&r, header::ETAG).to_owned();
        assert_eq!(
            get("/assets/app.css", Some(&etag)).await.status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            get("/assets/app.css", Some("\"other\"")).await.status(),
            StatusCode::OK
        );
        let page_etag = header_of(&get("/", None).await, header::ETAG).to_owned();
        assert_eq!(
            get("/", Some(&page_etag)).await.status(),
            StatusCode::NOT_MODIFIED
        );
    }

    #[tokio::test]
    async fn unknown_asset_is_404() {
        assert_eq!(
            get("/assets/nope.js", None).await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get("/assets/..%2FCargo.toml", None).await.status(),
            StatusCode::NOT_FOUND
        );
    }
}
