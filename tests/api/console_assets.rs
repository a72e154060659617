//! The console's assets: `schema.js` is what `src/console/schema.rs` generates from the current
//! descriptors (regenerate with `GUICHET_REGENERATE=1 cargo test --test api -- console_assets::`), and the
//! real binary serves every page under `/console/` with its security headers.

use crate::api_common;

use api_common::*;

const SCHEMA_FILE: &str = "src/console/assets/schema.js";

#[test]
fn the_committed_schema_is_the_generated_one() {
    let generated = guichet::console::schema::generate(guichet::api::proto::FILE_DESCRIPTOR_SET)
        .expect("generated");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SCHEMA_FILE);
    if std::env::var_os("GUICHET_REGENERATE").is_some() {
        std::fs::write(&path, &generated).expect("schema.js written");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{SCHEMA_FILE} is not what the descriptors give: run \
         `GUICHET_REGENERATE=1 cargo test --test api -- console_assets::` and commit it"
    );
    // What the desktop relies on is in it.
    for name in [
        "guichet.v1.SignInRequest",
        "guichet.v1.OfferUpdate",
        "guichet.v1.ConversationMessage.MetaEntry",
        "guichet.v1.AgentState.Kind",
    ] {
        assert!(generated.contains(&format!("\"{name}\"")), "{name}");
    }
}

#[tokio::test]
async fn the_console_is_served_from_the_binary_with_a_strict_policy() {
    let ws = Workspace::new();
    let server = ws.start();
    let base = format!("http://{}", server.http_addr);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let redirect = client
        .get(format!("{base}/console"))
        .send()
        .await
        .expect("GET /console");
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers()["location"], "/console/");
    for (path, kind, needle) in [
        ("/console/", "text/html", "<html lang=\"fr\""),
        ("/console/accessibility", "text/html", "RGAA"),
        ("/console/supervisor", "text/html", "supervisor.js"),
        ("/console/desktop.js", "text/javascript", "import"),
        (
            "/console/schema.js",
            "text/javascript",
            "export const messages",
        ),
        ("/console/console.css", "text/css", ":focus-visible"),
    ] {
        let response = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap_or_default()
                .starts_with(kind),
            "{path}"
        );
        let csp = headers["content-security-policy"]
            .to_str()
            .unwrap_or_default();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let body = response.text().await.expect("body");
        assert!(body.contains(needle), "{path} should contain {needle:?}");
        // No inline scripts or styles: the policy would block them.
        if kind == "text/html" {
            assert!(
                !body.contains("<script>") && !body.contains("style="),
                "{path}"
            );
        }
    }
    let missing = client
        .get(format!("{base}/console/nothing.js"))
        .send()
        .await
        .expect("GET");
    assert_eq!(missing.status(), 404);
}
