//! The public observability routes: `GET /metrics` (Prometheus text format), `GET /indicators`
//! (the public quality indicators as JSON) and `GET /indicators.html` (the same as an
//! accessible page, French or English). None needs a token: the figures are aggregated and
//! hold no personal data (restrict `/metrics` at the reverse proxy if it should stay private).
//! The indicators show only the queues marked `public` (the default), by their display names;
//! the page answers a bad request in its own language.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::error::HttpError;
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
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response()
}

/// The router's view of the queues for the public figures: announced delays, display names,
/// and which queues are public.
struct QueuesSeen {
    delays: HashMap<(String, String), indicators::AnnouncedDelay>,
    names: page::QueueNames,
    hidden: std::collections::HashSet<String>,
}

/// Builds the report a query asks for (`period` and `date` already checked), with only the
/// public queues, and their display names; or the response explaining what failed.
async fn report(
    state: &ObsState,
    period: Period,
    date: Option<chrono::NaiveDate>,
) -> Result<(Report, page::QueueNames), Response> {
    let date = date.unwrap_or_else(|| indicators::today(&state.indicators, &SystemClock));
    let unavailable = |e: EngineError| HttpError::from(e).into_response();
    let seen = state
        .engine
        .read(|r| QueuesSeen {
            delays: indicators::announced_delays(r),
            names: r
                .queues()
                .iter()
                .map(|q| (q.config.id.to_string(), q.config.name.clone()))
                .collect(),
            hidden: r
                .queues()
                .iter()
                .filter(|q| !q.config.public)
                .map(|q| q.config.id.to_string())
                .collect(),
        })
        .await
        .map_err(unavailable)?;
    let store = state.engine.store().clone();
    let config = state.indicators.clone();
    let QueuesSeen {
        delays,
        names,
        hidden,
    } = seen;
    let report = store
        .run(move |store| {
            let (from, to) = period.range(date);
            let mut days = store.indicator_days(
                &from.format("%Y-%m-%d").to_string(),
                &to.format("%Y-%m-%d").to_string(),
            )?;
            // Queues not marked public are left out of every row and total.
            days.retain(|d| !hidden.contains(&d.queue));
            Ok::<_, crate::store::StoreError>(Report::from_days(
                &config,
                period,
                from,
                to,
                &days,
                &|q, c| delays.get(&(q.to_owned(), c.to_owned())).copied(),
            ))
        })
        .await
        .map_err(|e| HttpError::from(e).into_response())?;
    let names = names
        .into_iter()
        .filter(|(id, _)| report.rows.iter().any(|r| r.queue.as_deref() == Some(id)))
        .collect();
    Ok((report, names))
}

/// The JSON answer: the report, and the display names of the queues it shows.
#[derive(serde::Serialize)]
struct ReportJson {
    #[serde(flatten)]
    report: Report,
    queue_names: std::collections::BTreeMap<String, String>,
}

async fn indicators_json(
    State(state): State<ObsState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let q = match query(q) {
        Ok(q) => q,
        Err(e) => return bad_request(e),
    };
    let period = match Period::parse(q.period.as_deref().unwrap_or("day")) {
        Ok(p) => p,
        Err(e) => return bad_request(e),
    };
    let date = match q.date.as_deref().map(indicators::parse_date).transpose() {
        Ok(d) => d,
        Err(e) => return bad_request(e),
    };
    match report(&state, period, date).await {
        Ok((report, names)) => Json(ReportJson {
            report,
            queue_names: names.into_iter().collect(),
        })
        .into_response(),
        Err(response) => response,
    }
}

async fn indicators_html(
    State(state): State<ObsState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let preferred = Lang::from_accept_language(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let service = state.indicators.service_name.clone();
    let refuse = |problem: page::BadRequest, lang: Lang| {
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_LANGUAGE, lang.code())],
            Html(page::render_error(&problem, lang, &service)),
        )
            .into_response()
    };
    // The language first, so that every other problem is told in it.
    let lang = match q.get("lang").map(|l| Lang::parse(l)) {
        None => preferred,
        Some(Ok(l)) => l,
        Some(Err(_)) => return refuse(page::BadRequest::Language, preferred),
    };
    let Ok(q) = query(q) else {
        return refuse(page::BadRequest::Parameter, lang);
    };
    let Ok(period) = Period::parse(q.period.as_deref().unwrap_or("day")) else {
        return refuse(page::BadRequest::Period, lang);
    };
    let date = match q.date.as_deref().map(indicators::parse_date).transpose() {
        Ok(d) => d,
        Err(_) => return refuse(page::BadRequest::Date, lang),
    };
    match report(&state, period, date).await {
        Ok((report, names)) => (
            [(header::CONTENT_LANGUAGE, lang.code())],
            Html(page::render(&report, lang, &service, &names)),
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
    };
    // The page's language is read before (the JSON ignores it).
    q.remove("lang");
    if let Some(unknown) = q.keys().next() {
        return Err(format!(
            "unknown parameter {unknown:?}: the indicators take period (day, week, month), \
             date (YYYY-MM-DD) and, for the page, lang (fr, en)"
        ));
    }
    Ok(parsed)
}
