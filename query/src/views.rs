//! The views every query sees, defined over the `events` table.
//!
//! Their columns are documented in `docs/schema.md`; a change here is a change
//! to that contract.

/// Kinds that are part of a conversation (what a model sees as messages).
pub const MESSAGE_KINDS: &str = "'user_message','llm_call','injected_message','tool_result',\
'bash_execution','custom_message','branch_summary','compaction'";

/// A failed LLM call: error or aborted stop reason, or an error message.
const FAILED_CALL: &str = "(stop_reason IN ('error','aborted') OR error IS NOT NULL)";

/// `(name, SQL)` of each view, in creation order.
pub fn view_definitions() -> Vec<(&'static str, String)> {
    vec![
        (
            "llm_calls",
            format!(
                "SELECT event_id, ts, date, agent_id, session_id, entry_id, parent_id, seq, \
                 provider, model, api, locality, stop_reason, error, {FAILED_CALL} AS failed, \
                 input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, \
                 latency_ms, text, content, source_uri, source_line, ingest_id \
                 FROM events WHERE kind = 'llm_call'"
            ),
        ),
        (
            "tool_calls",
            "SELECT c.event_id, c.ts, c.date, c.agent_id, c.session_id, c.entry_id, c.seq, \
             c.tool_call_id, c.tool_name, c.tool_args, c.provider, c.model, c.locality, \
             r.event_id AS result_event_id, r.ts AS result_ts, r.tool_status, r.tool_is_error, \
             r.text AS result_text, r.error AS result_error, \
             (CAST(r.ts AS BIGINT) - CAST(c.ts AS BIGINT)) / 1000 AS duration_ms \
             FROM (SELECT * FROM events WHERE kind = 'tool_call') c \
             LEFT JOIN (SELECT * FROM events WHERE kind = 'tool_result') r \
             ON c.session_id = r.session_id AND c.tool_call_id = r.tool_call_id"
                .to_string(),
        ),
        (
            "messages",
            format!(
                "SELECT event_id, ts, date, agent_id, session_id, entry_id, parent_id, seq, kind, \
                 role, provider, model, locality, text, content, tool_call_id, tool_name, \
                 tool_status, tool_is_error, stop_reason, error \
                 FROM events WHERE kind IN ({MESSAGE_KINDS})"
            ),
        ),
        (
            "sessions",
            format!(
                "SELECT session_id, max(agent_id) AS agent_id, min(ts) AS started_at, \
                 max(ts) AS last_event_at, count(*) AS events, \
                 sum(CASE WHEN kind = 'user_message' THEN 1 ELSE 0 END) AS user_messages, \
                 sum(CASE WHEN kind = 'llm_call' THEN 1 ELSE 0 END) AS llm_calls, \
                 sum(CASE WHEN kind = 'llm_call' AND {FAILED_CALL} THEN 1 ELSE 0 END) AS failed_llm_calls, \
                 sum(CASE WHEN kind = 'llm_call' AND locality = 'cloud' THEN 1 ELSE 0 END) AS cloud_calls, \
                 sum(CASE WHEN kind = 'llm_call' AND locality = 'local' THEN 1 ELSE 0 END) AS local_calls, \
                 sum(CASE WHEN kind = 'tool_call' THEN 1 ELSE 0 END) AS tool_calls, \
                 sum(CASE WHEN kind = 'tool_result' AND tool_is_error THEN 1 ELSE 0 END) AS tool_errors, \
                 sum(CASE WHEN kind = 'quarantined' THEN 1 ELSE 0 END) AS quarantined, \
                 coalesce(sum(CASE WHEN kind = 'llm_call' THEN input_tokens END), 0) AS input_tokens, \
                 coalesce(sum(CASE WHEN kind = 'llm_call' THEN output_tokens END), 0) AS output_tokens, \
                 coalesce(sum(CASE WHEN kind = 'llm_call' THEN cache_read_tokens END), 0) AS cache_read_tokens, \
                 coalesce(sum(CASE WHEN kind = 'llm_call' THEN cache_write_tokens END), 0) AS cache_write_tokens, \
                 coalesce(sum(CASE WHEN kind = 'llm_call' THEN cost_usd END), 0.0) AS cost_usd, \
                 array_to_string(array_sort(array_distinct(array_agg(provider) \
                   FILTER (WHERE kind = 'llm_call' AND provider IS NOT NULL))), ',') AS providers, \
                 array_to_string(array_sort(array_distinct(array_agg(model) \
                   FILTER (WHERE kind = 'llm_call' AND model IS NOT NULL))), ',') AS models, \
                 max(source_uri) AS source_uri \
                 FROM events WHERE session_id IS NOT NULL GROUP BY session_id"
            ),
        ),
        (
            "cloud_exposure",
            format!(
                "SELECT event_id, ts, date, agent_id, session_id, seq, provider, model, api, \
                 input_tokens, output_tokens, cost_usd, \
                 coalesce(messages_sent, 0) AS messages_sent, \
                 coalesce(user_messages_sent, 0) AS user_messages_sent, \
                 coalesce(tool_results_sent, 0) AS tool_results_sent, \
                 coalesce(text_bytes_sent, 0) AS text_bytes_sent, \
                 'transcript' AS evidence \
                 FROM (SELECT *, \
                   sum(is_message) OVER w AS messages_sent, \
                   sum(is_user_message) OVER w AS user_messages_sent, \
                   sum(is_tool_result) OVER w AS tool_results_sent, \
                   sum(message_bytes) OVER w AS text_bytes_sent \
                   FROM (SELECT event_id, ts, date, agent_id, session_id, seq, kind, locality, \
                     provider, model, api, input_tokens, output_tokens, cost_usd, \
                     CASE WHEN kind IN ({MESSAGE_KINDS}) THEN 1 ELSE 0 END AS is_message, \
                     CASE WHEN kind = 'user_message' THEN 1 ELSE 0 END AS is_user_message, \
                     CASE WHEN kind = 'tool_result' THEN 1 ELSE 0 END AS is_tool_result, \
                     CASE WHEN kind IN ({MESSAGE_KINDS}) THEN octet_length(coalesce(text, '')) \
                       ELSE 0 END AS message_bytes \
                     FROM events WHERE session_id IS NOT NULL AND kind <> 'quarantined' \
                       AND source = 'openclaw_transcript') \
                   WINDOW w AS (PARTITION BY session_id ORDER BY seq \
                     RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) e \
                 WHERE kind = 'llm_call' AND locality = 'cloud' \
                 UNION ALL \
                 SELECT event_id, ts, date, agent_id, session_id, seq, provider, model, api, \
                 CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS DOUBLE), \
                 CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), \
                 CAST(octet_length(coalesce(text, '')) AS BIGINT), 'cache_trace' \
                 FROM events WHERE source = 'openclaw_cache_trace' AND role = 'stream:context' \
                   AND locality = 'cloud'"
            ),
        ),
        (
            "quarantine",
            "SELECT event_id, source_uri AS file, source_offset AS byte_offset, source_line AS line, \
             line_sha256, error AS reason, raw, agent_id, session_id, ingest_id, ingested_at \
             FROM events WHERE kind = 'quarantined'"
                .to_string(),
        ),
    ]
}
