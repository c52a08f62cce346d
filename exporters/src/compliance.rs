//! The compliance report: which models were called, at what cost, how much
//! ran locally, and which sessions' content went to a cloud provider.
//!
//! Everything comes from the `llm_calls`, `cloud_exposure`, `messages` and
//! `sessions` views at one events table version, recorded in the report.
//! Formats: HTML (self-contained, no script, a Content-Security-Policy that
//! forbids scripts; all transcript text escaped, since tool results contain
//! hostile HTML), JSON (the [`ComplianceReport`] value) and Markdown.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;

use serde::Serialize;
use trajectory_query::QueryEngine;

use crate::columns::{floats, ints, strings, value};
use crate::ExportError;

/// Output format of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Html,
    Json,
    Markdown,
}

impl FromStr for ReportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<ReportFormat, String> {
        match s {
            "html" => Ok(ReportFormat::Html),
            "json" => Ok(ReportFormat::Json),
            "md" | "markdown" => Ok(ReportFormat::Markdown),
            other => Err(format!(
                "unknown report format {other:?}; use html, json or md"
            )),
        }
    }
}

/// Usage of one (provider, model).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModelUsage {
    pub provider: String,
    pub model: String,
    pub locality: String,
    pub calls: i64,
    pub failed_calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cost_usd: f64,
}

/// Calls and tokens of one locality (`local`, `cloud`, `unknown`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LocalityShare {
    pub locality: String,
    pub calls: i64,
    pub tokens: i64,
    /// Share of all calls, 0..=1.
    pub call_share: f64,
    /// Share of all input + output tokens, 0..=1.
    pub token_share: f64,
}

/// A tool output that was part of what a cloud model was sent.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ToolOutputSent {
    pub tool_name: String,
    /// The first characters of the output, verbatim (escape before display).
    pub excerpt: String,
}

/// A session whose content was sent to at least one cloud provider.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ExposedSession {
    pub session_id: String,
    pub agent_id: Option<String>,
    pub providers: String,
    pub cloud_calls: i64,
    pub input_tokens: i64,
    /// Largest number of messages in context at a cloud call.
    pub messages_sent: i64,
    /// Largest amount of message text (bytes) in context at a cloud call.
    pub text_bytes_sent: i64,
    /// The first user message, verbatim (escape before display).
    pub first_user_message: Option<String>,
    /// Tool outputs that preceded the last cloud call (at most 5).
    pub tool_outputs_sent: Vec<ToolOutputSent>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct ComplianceReport {
    pub generated_at: String,
    pub tool: String,
    pub store: String,
    pub events_table_version: u64,
    pub period_start: Option<String>,
    pub period_end: Option<String>,
    pub sessions: i64,
    pub llm_calls: i64,
    pub failed_llm_calls: i64,
    pub cost_usd: f64,
    pub quarantined_lines: i64,
    pub models: Vec<ModelUsage>,
    pub locality: Vec<LocalityShare>,
    pub exposed_sessions: Vec<ExposedSession>,
}

const EXCERPT_CHARS: usize = 240;
const TOOL_OUTPUTS_PER_SESSION: usize = 5;

fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(EXCERPT_CHARS).collect();
    if text.chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    out
}

fn int_at(values: &[Option<i64>], row: usize) -> i64 {
    values.get(row).copied().flatten().unwrap_or(0)
}

/// Builds the report from the engine's events version.
///
/// Errors: query errors.
pub async fn build_report(
    engine: &QueryEngine,
    store: &str,
) -> Result<ComplianceReport, ExportError> {
    let mut models = Vec::new();
    for batch in engine
        .collect(
            "SELECT coalesce(provider, '(none)') AS provider, coalesce(model, '(none)') AS model, \
             coalesce(max(locality), 'unknown') AS locality, count(*) AS calls, \
             sum(CASE WHEN failed THEN 1 ELSE 0 END) AS failed_calls, \
             coalesce(sum(input_tokens), 0) AS input_tokens, coalesce(sum(output_tokens), 0) AS output_tokens, \
             coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens, coalesce(sum(cost_usd), 0.0) AS cost_usd \
             FROM llm_calls GROUP BY 1, 2 ORDER BY calls DESC, provider, model",
        )
        .await?
    {
        let provider = strings(&batch, "provider")?;
        let model = strings(&batch, "model")?;
        let locality = strings(&batch, "locality")?;
        let calls = ints(&batch, "calls")?;
        let failed = ints(&batch, "failed_calls")?;
        let input = ints(&batch, "input_tokens")?;
        let output = ints(&batch, "output_tokens")?;
        let cache_read = ints(&batch, "cache_read_tokens")?;
        let cost = floats(&batch, "cost_usd")?;
        for row in 0..batch.num_rows() {
            models.push(ModelUsage {
                provider: value(&provider, row).unwrap_or_default(),
                model: value(&model, row).unwrap_or_default(),
                locality: value(&locality, row).unwrap_or_default(),
                calls: int_at(&calls, row),
                failed_calls: int_at(&failed, row),
                input_tokens: int_at(&input, row),
                output_tokens: int_at(&output, row),
                cache_read_tokens: int_at(&cache_read, row),
                cost_usd: cost.get(row).copied().flatten().unwrap_or(0.0),
            });
        }
    }

    let total_calls: i64 = models.iter().map(|m| m.calls).sum();
    let total_tokens: i64 = models
        .iter()
        .map(|m| m.input_tokens + m.output_tokens)
        .sum();
    let mut by_locality: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for m in &models {
        let entry = by_locality.entry(m.locality.clone()).or_default();
        entry.0 += m.calls;
        entry.1 += m.input_tokens + m.output_tokens;
    }
    let share = |part: i64, whole: i64| {
        if whole > 0 {
            part as f64 / whole as f64
        } else {
            0.0
        }
    };
    let locality = by_locality
        .into_iter()
        .map(|(locality, (calls, tokens))| LocalityShare {
            locality,
            calls,
            tokens,
            call_share: share(calls, total_calls),
            token_share: share(tokens, total_tokens),
        })
        .collect();

    let mut exposed_sessions = Vec::new();
    for batch in engine
        .collect(
            "SELECT x.session_id, max(x.agent_id) AS agent_id, \
             array_to_string(array_sort(array_distinct(array_agg(x.provider))), ',') AS providers, \
             sum(CASE WHEN x.evidence = 'transcript' THEN 1 ELSE 0 END) AS cloud_calls, \
             coalesce(sum(x.input_tokens), 0) AS input_tokens, \
             max(x.messages_sent) AS messages_sent, max(x.text_bytes_sent) AS text_bytes_sent \
             FROM cloud_exposure x WHERE x.session_id IS NOT NULL \
             GROUP BY x.session_id ORDER BY input_tokens DESC, x.session_id",
        )
        .await?
    {
        let session = strings(&batch, "session_id")?;
        let agent = strings(&batch, "agent_id")?;
        let providers = strings(&batch, "providers")?;
        let calls = ints(&batch, "cloud_calls")?;
        let input = ints(&batch, "input_tokens")?;
        let messages_sent = ints(&batch, "messages_sent")?;
        let bytes_sent = ints(&batch, "text_bytes_sent")?;
        for row in 0..batch.num_rows() {
            exposed_sessions.push(ExposedSession {
                session_id: value(&session, row).unwrap_or_default(),
                agent_id: value(&agent, row),
                providers: value(&providers, row).unwrap_or_default(),
                cloud_calls: int_at(&calls, row),
                input_tokens: int_at(&input, row),
                messages_sent: int_at(&messages_sent, row),
                text_bytes_sent: int_at(&bytes_sent, row),
                first_user_message: None,
                tool_outputs_sent: Vec::new(),
            });
        }
    }
    // What each exposed session showed: two aggregate queries over all sessions
    // at once (one query per session scanned the log once each: 29 minutes
    // unfinished on 6,000 sessions, issue 26). Texts are cut to the excerpt
    // length inside the plan, so memory is one excerpt per session, not the
    // log. The first query keeps every session's first user message (241
    // characters each) rather than join the exposure window a second time.
    let cut = EXCERPT_CHARS + 1;
    let mut first_user: BTreeMap<String, String> = BTreeMap::new();
    for batch in engine
        .collect(&format!(
            "SELECT m.session_id, \
             first_value(substr(coalesce(m.text, ''), 1, {cut}) ORDER BY m.seq, m.event_id) AS text \
             FROM messages m WHERE m.kind = 'user_message' AND m.session_id IS NOT NULL \
             GROUP BY m.session_id"
        ))
        .await?
    {
        let session = strings(&batch, "session_id")?;
        let text = strings(&batch, "text")?;
        for row in 0..batch.num_rows() {
            if let (Some(id), Some(text)) = (value(&session, row), value(&text, row)) {
                first_user.insert(id, excerpt(&text));
            }
        }
    }
    // The tool outputs before each session's last cloud call (the transcript
    // rows of `cloud_exposure`, query/src/views.rs, read from `events` without
    // the view's window). The first five per session are chosen on narrow rows
    // (ids and positions), and only their texts, cut inside the plan, are
    // joined back: a window or a join carrying whole tool outputs held 1.9 GB
    // at 1 GB of logs.
    let mut tool_outputs: BTreeMap<String, Vec<ToolOutputSent>> = BTreeMap::new();
    for batch in engine
        .collect(&format!(
            "WITH last_cloud AS ( \
               SELECT session_id, max(seq) AS last_seq FROM events \
               WHERE kind = 'llm_call' AND locality = 'cloud' AND source = 'openclaw_transcript' \
                 AND session_id IS NOT NULL GROUP BY session_id), \
             firsts AS ( \
               SELECT event_id FROM ( \
                 SELECT m.event_id, \
                   row_number() OVER (PARTITION BY m.session_id ORDER BY m.seq, m.event_id) AS n \
                 FROM events m JOIN last_cloud l ON m.session_id = l.session_id \
                 WHERE m.kind = 'tool_result' AND m.seq < l.last_seq) \
               WHERE n <= {TOOL_OUTPUTS_PER_SESSION}), \
             cut AS ( \
               SELECT session_id, seq, event_id, coalesce(tool_name, '') AS tool_name, \
                 substr(coalesce(text, ''), 1, {cut}) AS text \
               FROM events WHERE kind = 'tool_result') \
             SELECT c.session_id, c.seq, c.event_id, c.tool_name, c.text \
             FROM cut c JOIN firsts f ON c.event_id = f.event_id \
             ORDER BY c.session_id, c.seq, c.event_id"
        ))
        .await?
    {
        let session = strings(&batch, "session_id")?;
        let name = strings(&batch, "tool_name")?;
        let text = strings(&batch, "text")?;
        for row in 0..batch.num_rows() {
            let Some(id) = value(&session, row) else {
                continue;
            };
            tool_outputs.entry(id).or_default().push(ToolOutputSent {
                tool_name: value(&name, row).unwrap_or_default(),
                excerpt: excerpt(&value(&text, row).unwrap_or_default()),
            });
        }
    }
    for session in &mut exposed_sessions {
        session.first_user_message = first_user.remove(&session.session_id);
        session.tool_outputs_sent = tool_outputs.remove(&session.session_id).unwrap_or_default();
    }

    let mut report = ComplianceReport {
        generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        tool: format!("trajectory {}", env!("CARGO_PKG_VERSION")),
        store: store.to_string(),
        events_table_version: engine.events_version(),
        period_start: None,
        period_end: None,
        sessions: 0,
        llm_calls: total_calls,
        failed_llm_calls: models.iter().map(|m| m.failed_calls).sum(),
        cost_usd: models.iter().map(|m| m.cost_usd).sum(),
        quarantined_lines: 0,
        models,
        locality,
        exposed_sessions,
    };
    for batch in engine
        .collect(
            "SELECT CAST(min(ts) AS VARCHAR) AS period_start, CAST(max(ts) AS VARCHAR) AS period_end, \
             count(DISTINCT session_id) AS sessions, \
             sum(CASE WHEN kind = 'quarantined' THEN 1 ELSE 0 END) AS quarantined FROM events",
        )
        .await?
    {
        if batch.num_rows() == 0 {
            continue;
        }
        report.period_start = value(&strings(&batch, "period_start")?, 0);
        report.period_end = value(&strings(&batch, "period_end")?, 0);
        report.sessions = int_at(&ints(&batch, "sessions")?, 0);
        report.quarantined_lines = int_at(&ints(&batch, "quarantined")?, 0);
    }
    Ok(report)
}

/// Renders the report in `format`.
pub fn render(report: &ComplianceReport, format: ReportFormat) -> Result<String, ExportError> {
    match format {
        ReportFormat::Json => serde_json::to_string_pretty(report)
            .map(|s| s + "\n")
            .map_err(|e| ExportError::Internal(format!("report: {e}"))),
        ReportFormat::Markdown => Ok(render_markdown(report)),
        ReportFormat::Html => Ok(render_html(report)),
    }
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// Escapes text for an HTML text node or a double-quoted attribute.
fn esc(text: &str) -> String {
    html_escape::encode_double_quoted_attribute(text).into_owned()
}

fn render_html(r: &ComplianceReport) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>Compliance report</title><style>\
         body{{font-family:system-ui,sans-serif;margin:2rem;color:#222}}\
         table{{border-collapse:collapse;margin:1rem 0}}td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}}\
         th{{background:#f3f3f3}}td.num{{text-align:right;font-variant-numeric:tabular-nums}}\
         pre{{white-space:pre-wrap;max-width:60rem;margin:0;font-size:.85em}}</style></head><body>\n\
         <h1>Compliance report</h1>\n<p id=\"provenance\">Generated {} by {} from events table version {} of <code>{}</code>.</p>\n",
        esc(&r.generated_at),
        esc(&r.tool),
        r.events_table_version,
        esc(&r.store)
    );
    let _ = write!(
        h,
        "<h2>Summary</h2><table id=\"summary\"><tr><th>Period</th><td>{} – {}</td></tr>\
         <tr><th>Sessions</th><td class=\"num\">{}</td></tr><tr><th>LLM calls</th><td class=\"num\">{}</td></tr>\
         <tr><th>Failed LLM calls</th><td class=\"num\">{}</td></tr><tr><th>Cost (USD)</th><td class=\"num\">{:.6}</td></tr>\
         <tr><th>Quarantined lines</th><td class=\"num\">{}</td></tr></table>",
        esc(r.period_start.as_deref().unwrap_or("-")),
        esc(r.period_end.as_deref().unwrap_or("-")),
        r.sessions,
        r.llm_calls,
        r.failed_llm_calls,
        r.cost_usd,
        r.quarantined_lines
    );
    h.push_str("\n<h2>Local vs cloud</h2><table id=\"locality\"><tr><th>Locality</th><th>Calls</th><th>Share of calls</th><th>Tokens</th><th>Share of tokens</th></tr>\n");
    for l in &r.locality {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&l.locality),
            l.calls,
            percent(l.call_share),
            l.tokens,
            percent(l.token_share)
        );
    }
    h.push_str("</table>\n<h2>Calls per provider and model</h2><table id=\"models\"><tr><th>Provider</th><th>Model</th><th>Locality</th><th>Calls</th><th>Failed</th><th>Tokens in</th><th>Tokens out</th><th>Cache read</th><th>Cost (USD)</th></tr>\n");
    for m in &r.models {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.6}</td></tr>",
            esc(&m.provider),
            esc(&m.model),
            esc(&m.locality),
            m.calls,
            m.failed_calls,
            m.input_tokens,
            m.output_tokens,
            m.cache_read_tokens,
            m.cost_usd
        );
    }
    let _ = write!(
        h,
        "</table>\n<h2>Sessions whose content was sent to a cloud provider ({})</h2>\
         <table id=\"exposure\"><tr><th>Session</th><th>Agent</th><th>Providers</th><th>Cloud calls</th><th>Input tokens</th><th>Messages in context</th><th>Text bytes in context</th><th>First user message</th><th>Tool outputs sent</th></tr>\n",
        r.exposed_sessions.len()
    );
    for s in &r.exposed_sessions {
        let mut outputs = String::new();
        for t in &s.tool_outputs_sent {
            let _ = write!(
                outputs,
                "<pre><b>{}</b>: {}</pre>",
                esc(&t.tool_name),
                esc(&t.excerpt)
            );
        }
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td><pre>{}</pre></td><td>{}</td></tr>",
            esc(&s.session_id),
            esc(s.agent_id.as_deref().unwrap_or("")),
            esc(&s.providers),
            s.cloud_calls,
            s.input_tokens,
            s.messages_sent,
            s.text_bytes_sent,
            esc(s.first_user_message.as_deref().unwrap_or("")),
            outputs
        );
    }
    h.push_str("</table>\n<p>“Messages in context” counts the session's messages written before the call (an upper bound: compaction and branches can shrink what was actually sent).</p>\n</body></html>\n");
    h
}

/// Escapes text for a Markdown table cell.
fn md_cell(text: &str) -> String {
    let escaped = html_escape::encode_text(text).into_owned();
    escaped
        .replace('|', "\\|")
        .replace('`', "\\`")
        .replace(['\n', '\r'], " ")
}

fn render_markdown(r: &ComplianceReport) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# Compliance report\n");
    let _ = writeln!(
        m,
        "Generated {} by {} from events table version {} of `{}`.\n",
        r.generated_at,
        r.tool,
        r.events_table_version,
        md_cell(&r.store)
    );
    let _ = writeln!(m, "## Summary\n");
    let _ = writeln!(
        m,
        "- Period: {} – {}\n- Sessions: {}\n- LLM calls: {} ({} failed)\n- Cost: ${:.6}\n- Quarantined lines: {}\n",
        r.period_start.as_deref().unwrap_or("-"),
        r.period_end.as_deref().unwrap_or("-"),
        r.sessions,
        r.llm_calls,
        r.failed_llm_calls,
        r.cost_usd,
        r.quarantined_lines
    );
    let _ = writeln!(m, "## Local vs cloud\n\n| locality | calls | share of calls | tokens | share of tokens |\n|---|---:|---:|---:|---:|");
    for l in &r.locality {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} |",
            md_cell(&l.locality),
            l.calls,
            percent(l.call_share),
            l.tokens,
            percent(l.token_share)
        );
    }
    let _ = writeln!(m, "\n## Calls per provider and model\n\n| provider | model | locality | calls | failed | tokens in | tokens out | cache read | cost (USD) |\n|---|---|---|---:|---:|---:|---:|---:|---:|");
    for x in &r.models {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.6} |",
            md_cell(&x.provider),
            md_cell(&x.model),
            md_cell(&x.locality),
            x.calls,
            x.failed_calls,
            x.input_tokens,
            x.output_tokens,
            x.cache_read_tokens,
            x.cost_usd
        );
    }
    let _ = writeln!(
        m,
        "\n## Sessions whose content was sent to a cloud provider ({})\n\n| session | agent | providers | cloud calls | input tokens | messages in context | first user message |\n|---|---|---|---:|---:|---:|---|",
        r.exposed_sessions.len()
    );
    for s in &r.exposed_sessions {
        let _ = writeln!(
            m,
            "| `{}` | {} | {} | {} | {} | {} | {} |",
            md_cell(&s.session_id),
            md_cell(s.agent_id.as_deref().unwrap_or("")),
            md_cell(&s.providers),
            s.cloud_calls,
            s.input_tokens,
            s.messages_sent,
            md_cell(s.first_user_message.as_deref().unwrap_or(""))
        );
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report_with(text: &str) -> ComplianceReport {
        ComplianceReport {
            generated_at: "2026-11-22T00:00:00Z".into(),
            tool: "trajectory test".into(),
            store: "file:///s/".into(),
            events_table_version: 1,
            period_start: None,
            period_end: None,
            sessions: 1,
            llm_calls: 1,
            failed_llm_calls: 0,
            cost_usd: 0.5,
            quarantined_lines: 0,
            models: vec![],
            locality: vec![],
            exposed_sessions: vec![ExposedSession {
                session_id: "s\"1".into(),
                agent_id: None,
                providers: "openai".into(),
                cloud_calls: 1,
                input_tokens: 10,
                messages_sent: 2,
                text_bytes_sent: 20,
                first_user_message: Some(text.into()),
                tool_outputs_sent: vec![ToolOutputSent {
                    tool_name: "read".into(),
                    excerpt: text.into(),
                }],
            }],
        }
    }

    #[test]
    fn html_escapes_transcript_text() {
        let html = render_html(&report_with(
            "<script>alert(1)</script><img src=x onerror=alert(2)>",
        ));
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<img"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("s&quot;1"));
        assert!(html.contains("Content-Security-Policy"));
    }

    #[test]
    fn markdown_cells_cannot_break_the_table() {
        let md = render_markdown(&report_with("a | b\n<b>c</b>"));
        assert!(md.contains("a \\| b &lt;b&gt;c&lt;/b&gt;"), "{md}");
        assert!("pdf".parse::<ReportFormat>().is_err());
    }
}
