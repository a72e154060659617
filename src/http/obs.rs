//! The public observability routes: `GET /metrics` (Prometheus text format), `GET /indicators`
//! (the public quality indicators as JSON) and `GET /indicators.html` (the same as an
//! accessible page, French or English). None needs a token: the figures are aggregated and
//! hold no personal data (restrict `/metrics` at the reverse proxy if it should stay private).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::engine::{Engine, EngineError, SystemClock};
use crate::obs::indicators::{self, Period, Report};
use crate::obs::page::{self, Lang};
use crate::obs::IndicatorsConfig;

#[derive(Clone)]
struct ObsState {
    engine: Engine,
    indicators: IndicatorsConfig,
}

/// The routes: `/metrics`, `/indicators`, `/indicators.html`.
pub fn routes(engine: &Engine, indicators: &IndicatorsConfig) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/indicators", get(indicators_json))
        .route("/indicators.html", get(indicators_html))
        .with_state(ObsState {
            engine: engine.clone(),
            indicators: indicators.clone(),
        })
}

async fn metrics(State(state): State<ObsState>) -> Response {
    let body = crate::obs::metrics::render(&state.engine).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// The query of both indicator routes.
#[derive(Debug, Deserialize)]
struct IndicatorQuery {
    period: Option<String>,
    date: Option<String>,
    lang: Option<String>,
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response()
}

/// Builds the report a query asks for, or the response explaining what is wrong.
async fn report(state: &ObsState, q: &IndicatorQuery) -> Result<Report, Response> {
    let period = Period::parse(q.period.as_deref().unwrap_or("day")).map_err(bad_request)?;
    let date = match q.date.as_deref() {
        Some(d) => indicators::parse_date(d).map_err(bad_request)?,
        None => indicators::today(&state.indicators, &SystemClock),
    };
    let unavailable = |e: EngineError| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("indicators unavailable: {e}\n"),
        )
            .into_response()
    };
    let delays: HashMap<(String, String), indicators::AnnouncedDelay> = state
        .engine
        .read(indicators::announced_delays)
        .await
        .map_err(unavailable)?;
    let store = std::sync::Arc::clone(state.engine.store());
    let config = state.indicators.clone();
    tokio::task::spawn_blocking(move || {
        Report::build(&store, &config, period, date, &|q, c| {
            delays.get(&(q.to_owned(), c.to_owned())).copied()
        })
    })
    .await
    .map_err(|_| unavailable(EngineError::Stopped))?
    .map_err(|e| unavailable(EngineError::Store(e)))
}

async fn indicators_json(
    State(state): State<ObsState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let q = match query(q) {
        Ok(q) => q,
        Err(e) => return bad_request(e),
    };
    match report(&state, &q).await {
        Ok(report) => Json(report).into_response(),
        Err(response) => response,
    }
}

async fn indicators_html(
    State(state): State<ObsState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let q = match query(q) {
        Ok(q) => q,
        Err(e) => return bad_request(e),
    };
    let lang = match q.lang.as_deref() {
        Some(l) => match Lang::parse(l) {
            Ok(l) => l,
            Err(e) => return bad_request(e),
        },
        None => Lang::from_accept_language(
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        ),
    };
    match report(&state, &q).await {
        Ok(report) => (
            [(header::CONTENT_LANGUAGE, lang.code())],
            Html(page::render(&report, lang, &state.indicators.service_name)),
        )
            .into_response(),
        Err(response) => response,
    }
}

/// Reads the query, refusing parameters the routes do not know (a typo should not silently
/// show today's figures).
fn query(mut q: HashMap<String, String>) -> Result<IndicatorQuery, String> {
    let parsed = IndicatorQuery {
        period: q.remove("period"),
        date: q.remove("date"),
        lang: q.remove("lang"),
    };
    if let Some(unknown) = q.keys().next() {
        return Err(format!(
            "unknown parameter {unknown:?}: the indicators take period (day, week, month), \
             date (YYYY-MM-DD) and, for the page, lang (fr, en)"
        ));
    }
    Ok(parsed)
}
