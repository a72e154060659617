//! The console: the web application people use (the agent desktop and the supervisor console), served by the HTTP
//! listener under `/console/` from assets compiled into the binary (no build step, no Node).
//!
//! The pages call the same gRPC services as every other client, with the same roles, through
//! gRPC-web on this same origin (see `crate::server`); people sign in with `Sessions.SignIn` and
//! send their session as `authorization: Bearer`. The browser side is small, hand-written
//! JavaScript: `assets/grpcweb.js` frames gRPC-web and encodes protobuf from `assets/schema.js`,
//! which [`schema`] generates from the descriptors (committed, checked by a test).
//!
//! Every answer carries a strict content security policy (scripts and styles from this origin
//! only, no inline code, no framing).

pub mod schema;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file: its path under `/console/`, its content type and its bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// Every file of the console.
const ASSETS: &[Asset] = &[
    Asset {
        path: "",
        content_type: "text/html; charset=utf-8",
        body: include_str!("assets/index.html"),
    },
    Asset {
        path: "accessibility",
        content_type: "text/html; charset=utf-8",
        body: include_str!("assets/accessibility.html"),
    },
    Asset {
        path: "console.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("assets/console.css"),
    },
    Asset {
        path: "grpcweb.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/grpcweb.js"),
    },
    Asset {
        path: "schema.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/schema.js"),
    },
    Asset {
        path: "i18n.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/i18n.js"),
    },
    Asset {
        path: "session.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/session.js"),
    },
    Asset {
        path: "desktop.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/desktop.js"),
    },
    Asset {
        path: "supervisor.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/supervisor.js"),
    },
    Asset {
        path: "sup-texts.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/sup-texts.js"),
    },
    Asset {
        path: "sup-util.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/sup-util.js"),
    },
    Asset {
        path: "sup-wallboard.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/sup-wallboard.js"),
    },
    Asset {
        path: "sup-agents.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/sup-agents.js"),
    },
    Asset {
        path: "sup-line.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/sup-line.js"),
    },
    Asset {
        path: "sup-queues.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/sup-queues.js"),
    },
    Asset {
        path: "sup-ivr.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/sup-ivr.js"),
    },
    Asset {
        path: "sup-satisfaction.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/sup-satisfaction.js"),
    },
];

/// The supervisor console's pages under `/console/`: one document (`assets/supervisor.html`)
/// whose script shows the view its path names (the wallboard at `supervisor`).
pub const SUPERVISOR_PAGES: &[&str] = &[
    "supervisor",
    "supervisor/agents",
    "supervisor/line",
    "supervisor/queues",
    "supervisor/ivr",
    "supervisor/satisfaction",
];

static SUPERVISOR_PAGE: Asset = Asset {
    path: "supervisor",
    content_type: "text/html; charset=utf-8",
    body: include_str!("assets/supervisor.html"),
};

/// The content security policy of every console answer. Media (voicemail recordings) may come
/// from the telephony provider over HTTPS.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; media-src 'self' https:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

/// The embedded asset at `path` under `/console/`, if any (for tests and the schema check).
pub fn asset(path: &str) -> Option<&'static str> {
    if SUPERVISOR_PAGES.contains(&path) {
        return Some(SUPERVISOR_PAGE.body);
    }
    ASSETS.iter().find(|a| a.path == path).map(|a| a.body)
}

fn serve(asset: &'static Asset) -> Response {
    let mut response = (StatusCode::OK, asset.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Assets change with the binary: revalidated, never stale after an upgrade.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The console's routes: `/console` (redirected), `/console/` and each asset.
pub fn routes() -> Router {
    let mut router = Router::new().route(
        "/console",
        get(|| async { Redirect::permanent("/console/") }),
    );
    for asset in ASSETS {
        router = router.route(
            &format!("/console/{}", asset.path),
            get(move || async move { serve(asset) }),
        );
    }
    for page in SUPERVISOR_PAGES {
        router = router.route(
            &format!("/console/{page}"),
            get(|| async { serve(&SUPERVISOR_PAGE) }),
        );
    }
    router
}
