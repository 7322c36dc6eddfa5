//! `GET /api/v1/admin/audit`: the audit log, filtered (user, upstream, tool, decision, time
//! range), newest first, a page at a time with an opaque cursor, as JSON or CSV.

use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpgate_storage::{AuditEvent, AuditQuery};
use serde::{Deserialize, Serialize};

use super::auth::AdminUser;
use crate::app::AppState;
use crate::error::ApiError;

/// The filters, as the API and the audit page take them. Times are `YYYY-MM-DDTHH:MM[:SS]`
/// in UTC (what `datetime-local` inputs send; a trailing `Z` is accepted) or milliseconds
/// since the epoch.
#[derive(Debug, Default, Deserialize)]
pub struct AuditParams {
    /// A user id, or an email.
    pub user: Option<String>,
    pub upstream: Option<String>,
    /// A tool (or other item) name, or an action such as `tools/call` or `signin`.
    pub tool: Option<String>,
    pub decision: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    pub limit: Option<i64>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// Longest filter value taken (longer ones cannot match anything stored).
const MAX_FILTER: usize = 512;

fn filter(value: &Option<String>) -> Result<Option<String>, ApiError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) if v.len() > MAX_FILTER => Err(ApiError::BadRequest(format!(
            "filter values are at most {MAX_FILTER} bytes"
        ))),
        Some(v) => Ok(Some(v.to_owned())),
    }
}

impl AuditParams {
    /// The storage query; `Ok(None)` when the filter can match nothing (an unknown email).
    pub async fn query(
        &self,
        state: &AppState,
        default_limit: i64,
    ) -> Result<Option<AuditQuery>, ApiError> {
        let user_id = match filter(&self.user)? {
            Some(u) if u.contains('@') => match state.store.find_user_by_email(&u).await? {
                Some(user) => Some(user.id),
                None => return Ok(None),
            },
            other => other,
        };
        let time = |name: &str, v: &Option<String>| -> Result<Option<i64>, ApiError> {
            filter(v)?
                .map(|t| {
                    parse_time(&t).ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "{name} must be YYYY-MM-DDTHH:MM[:SS] (UTC) or milliseconds since 1970"
                        ))
                    })
                })
                .transpose()
        };
        let before = match filter(&self.cursor)? {
            Some(c) => Some(decode_cursor(&c).ok_or_else(|| {
                ApiError::BadRequest("cursor is not one this server gave out".into())
            })?),
            None => None,
        };
        Ok(Some(AuditQuery {
            user_id,
            upstream: filter(&self.upstream)?,
            tool: filter(&self.tool)?,
            decision: filter(&self.decision)?,
            since: time("since", &self.since)?,
            until: time("until", &self.until)?,
            before,
            limit: self.limit.unwrap_or(default_limit).clamp(1, 1000),
        }))
    }
}

/// The cursor after the last event of a full page.
pub fn next_cursor(events: &[AuditEvent], limit: i64) -> Option<String> {
    if (events.len() as i64) < limit {
        return None;
    }
    events
        .last()
        .map(|e| URL_SAFE_NO_PAD.encode(format!("{}:{}", e.at, e.id)))
}

fn decode_cursor(cursor: &str) -> Option<(i64, String)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (at, id) = raw.split_once(':')?;
    Some((at.parse().ok()?, id.to_owned()))
}

#[derive(Serialize)]
pub struct EventView {
    pub id: String,
    /// Milliseconds since 1970 (UTC).
    pub at: i64,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub time: String,
    pub user_id: Option<String>,
    pub action: String,
    pub upstream: Option<String>,
    pub target: Option<String>,
    pub decision: String,
    pub detail: serde_json::Value,
}

impl From<AuditEvent> for EventView {
    fn from(e: AuditEvent) -> Self {
        Self {
            time: format_time(e.at),
            detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::Null),
            id: e.id,
            at: e.at,
            user_id: e.user_id,
            action: e.action,
            upstream: e.upstream,
            target: e.target,
            decision: e.decision,
        }
    }
}

#[derive(Serialize)]
pub struct AuditPage {
    pub events: Vec<EventView>,
    /// Pass as `cursor` for the next (older) page; absent on the last one.
    pub next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/audit",
    tag = "audit",
    summary = "The audit log, filtered, newest first, as JSON or CSV (`format`)",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done"),
        (status = "4XX", description = "An error: `error`, `error_description` (JSON)"),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(params): Query<AuditParams>,
) -> Result<Response, ApiError> {
    let csv = match params.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "format must be json or csv, not {other:?}"
            )));
        }
    };
    let (events, next) = match params.query(&state, 100).await? {
        Some(query) => {
            let events = state.store.query_audit_events(&query).await?;
            let next = next_cursor(&events, query.limit);
            (events, next)
        }
        None => (Vec::new(), None),
    };
    let events: Vec<EventView> = events.into_iter().map(EventView::from).collect();
    if csv {
        let mut response = (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"mcpgate-audit.csv\"",
                ),
            ],
            to_csv(&events),
        )
            .into_response();
        if let Some(next) = next.and_then(|n| HeaderValue::from_str(&n).ok()) {
            response.headers_mut().insert("x-next-cursor", next);
        }
        return Ok(response);
    }
    Ok(axum::Json(AuditPage {
        events,
        next_cursor: next,
    })
    .into_response())
}

/// RFC 4180 CSV, every field quoted; a field a spreadsheet would take as a formula starts
/// with `'`.
fn to_csv(events: &[EventView]) -> String {
    fn field(out: &mut String, value: &str) {
        out.push('"');
        if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            out.push('\'');
        }
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    }
    let mut out = String::from("time,user_id,action,upstream,target,decision,detail\r\n");
    for e in events {
        let detail = e.detail.to_string();
        let cells = [
            e.time.as_str(),
            e.user_id.as_deref().unwrap_or(""),
            &e.action,
            e.upstream.as_deref().unwrap_or(""),
            e.target.as_deref().unwrap_or(""),
            &e.decision,
            &detail,
        ];
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            field(&mut out, cell);
        }
        out.push_str("\r\n");
    }
    out
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for milliseconds since 1970.
pub fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Milliseconds for `YYYY-MM-DDTHH:MM[:SS][Z]` (UTC) or a plain millisecond count.
pub fn parse_time(text: &str) -> Option<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (date, time) = text.split_once('T')?;
    let mut date = date.split('-').map(str::parse::<i64>);
    let (y, m, d) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
    let mut time = time.split(':').map(str::parse::<i64>);
    let (h, min) = (time.next()?.ok()?, time.next()?.ok()?);
    let s = time.next().transpose().ok()?.unwrap_or(0);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || min > 59 || s > 60 {
        return None;
    }
    if !(0..=9999).contains(&y) || [h, min, s].iter().any(|v| *v < 0) {
        return None;
    }
    Some((days_from_civil(y, m, d) * 86_400 + h * 3600 + min * 60 + s) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let ms = parse_time("2026-12-08T10:15:30Z").unwrap();
        assert_eq!(format_time(ms), "2026-12-08T10:15:30Z");
        assert_eq!(parse_time("1970-01-01T00:00"), Some(0));
        assert_eq!(parse_time("2024-02-29T23:59"), Some(1_709_251_140_000));
        for bad in [
            "2026-13-01T00:00",
            "yesterday",
            "2026-12-08",
            "2026-12-08T25:00",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let csv = to_csv(&[EventView {
            id: "1".into(),
            at: 0,
            time: "1970-01-01T00:00:00Z".into(),
            user_id: Some("u".into()),
            action: "tools/call".into(),
            upstream: Some("gh".into()),
            target: Some("=HYPERLINK(\"x\")".into()),
            decision: "deny".into(),
            detail: serde_json::json!({"a": 1}),
        }]);
        assert!(csv.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{csv}");
        assert!(csv.contains("\"{\"\"a\"\":1}\""), "{csv}");
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let e = AuditEvent::new("a", "allow");
        let c = next_cursor(std::slice::from_ref(&e), 1).unwrap();
        assert_eq!(decode_cursor(&c), Some((e.at, e.id)));
        assert_eq!(decode_cursor("not base64!"), None);
        assert!(next_cursor(&[], 1).is_none());
    }
}
