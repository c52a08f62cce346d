//! The judge: an OpenAI-compatible chat endpoint scores each turn from its
//! next state with k votes (OpenClaw-RL style), and the results are appended
//! to `events` as `annotation` events.
//!
//! Per turn that has a next state, [`judge`] POSTs `{endpoint}/chat/completions`
//! `k` times with the prompt of [`JUDGE_PROMPT_VERSION`] ([`judge_messages`]):
//! the user's request, the assistant's responses and tool steps, and the next
//! state with its role; the judge answers `\boxed{1}` (good), `\boxed{-1}`
//! (bad) or `\boxed{0}` (unclear). The score is the majority of the parseable
//! votes; a tie between the top counts, or no parseable vote, gives 0.
//!
//! Each result is one `annotation` event (`source = 'trajectory_judge'`,
//! `session_id` of the turn, `ts` = the turn's end so its date partition is
//! stable) whose `attributes` hold `{"type":"judge","turn_id","judge_model",
//! "prompt_version","votes","raw_votes","score"}`. Its id hashes (turn id,
//! model, prompt version, k), so judging again adds nothing; turns already
//! annotated with the same key are skipped without calling the endpoint.
//! Nothing is ever overwritten.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use trajectory_query::{AsOf, QueryEngine};
use trajectory_schema::{events_to_batch, Event, EventKind};
use trajectory_store::{CommitInfo, EventStore};

use crate::columns::stable_id;
use crate::transcript::{read_event_log, Session};
use crate::turns::{messages_of, segment, Turn};
use crate::DeriveError;

/// Version of the judge prompt; recorded in every annotation.
pub const JUDGE_PROMPT_VERSION: &str = "judge-prompt-v1";

/// The local Ollama's OpenAI-compatible base URL.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:11434/v1";

/// The `source` of judge annotations.
pub const JUDGE_SOURCE: &str = "trajectory_judge";

/// The system prompt of [`JUDGE_PROMPT_VERSION`].
pub const JUDGE_SYSTEM_PROMPT: &str = "You are a process reward model. You see one turn of a \
conversation between a user and an AI agent: the user's request, the agent's response \
(including tool calls and tool results), and the NEXT STATE that followed it (the user's next \
message, or a tool result). Judge whether the agent's response was good, using the next state \
as evidence.\n\
Score 1 if the user moves on, says thanks, confirms success, or a tool returns a non-error result.\n\
Score -1 if the user asks to redo or retry, corrects the agent (\"no, I meant...\"), rephrases \
the same request, or the environment returns an error.\n\
Score 0 if it is ambiguous.\n\
Think briefly, then give the final answer as \\boxed{1}, \\boxed{-1} or \\boxed{0}.";

/// What [`judge`] runs with.
#[derive(Debug, Clone)]
pub struct JudgeOptions {
    /// Base URL of an OpenAI-compatible API (`.../v1`).
    pub endpoint: String,
    /// Model name sent in each request.
    pub model: String,
    /// Votes per turn (k ≥ 1).
    pub votes: usize,
    /// Sampling temperature of each vote (default 0.6, as OpenClaw-RL).
    pub temperature: f64,
    /// Judge at most this many turns (in session and turn order); all when `None`.
    pub limit: Option<usize>,
    /// Bearer token, if the endpoint needs one (never stored).
    pub api_key: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Read the log at this version (latest when `None`).
    pub as_of: Option<AsOf>,
}

impl Default for JudgeOptions {
    fn default() -> JudgeOptions {
        JudgeOptions {
            endpoint: DEFAULT_ENDPOINT.to_string(),
            model: String::new(),
            votes: 3,
            temperature: 0.6,
            limit: None,
            api_key: None,
            timeout: Duration::from_secs(120),
            as_of: None,
        }
    }
}

/// What [`judge`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JudgeSummary {
    /// Turns with a next state (candidates).
    pub turns_considered: usize,
    /// Turns already annotated with this model, prompt version and k.
    pub turns_already_judged: usize,
    /// Turns judged in this run.
    pub turns_judged: usize,
    /// Requests that failed or gave no parseable vote.
    pub unparseable_votes: usize,
    /// Annotation events appended.
    pub annotations_added: usize,
    /// The events version the annotations landed in, if any were added.
    pub events_version: Option<u64>,
}

/// The score in the last `\boxed{…}` of `answer`: 1, −1 or 0; `None` if there
/// is none or it holds anything else.
pub fn parse_vote(answer: &str) -> Option<i64> {
    let start = answer.rfind("\\boxed{")? + "\\boxed{".len();
    let end = answer[start..].find('}')? + start;
    match answer[start..end].trim() {
        "1" | "+1" => Some(1),
        "-1" => Some(-1),
        "0" => Some(0),
        _ => None,
    }
}

/// Majority of `votes`; 0 on a tie between the top counts or with no vote.
pub fn majority(votes: &[i64]) -> i64 {
    let count = |v: i64| votes.iter().filter(|&&x| x == v).count();
    let mut counts = [(1, count(1)), (-1, count(-1)), (0, count(0))];
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    if counts[0].1 == 0 || counts[0].1 == counts[1].1 {
        0
    } else {
        counts[0].0
    }
}

/// The chat messages sent for one turn (prompt [`JUDGE_PROMPT_VERSION`]).
pub fn judge_messages(session: &Session, turn: &Turn) -> Option<Vec<Value>> {
    let (next, role) = turn.next_state(session)?;
    let request = session.events[turn.user()].text_or_empty();
    let responses = messages_of(session, &turn.events[1..]);
    let mut steps = String::new();
    for message in &responses {
        match message["role"].as_str() {
            Some("assistant") => {
                if let Some(text) = message["content"].as_str() {
                    steps.push_str(&format!("[assistant]\n{text}\n"));
                }
                for call in message["tool_calls"].as_array().into_iter().flatten() {
                    steps.push_str(&format!(
                        "[tool call] {} {}\n",
                        call["function"]["name"].as_str().unwrap_or(""),
                        call["function"]["arguments"].as_str().unwrap_or("")
                    ));
                }
            }
            Some("tool") => steps.push_str(&format!(
                "[tool result: {}]\n{}\n",
                message["name"].as_str().unwrap_or(""),
                message["content"].as_str().unwrap_or("")
            )),
            _ => steps.push_str(&format!(
                "[user]\n{}\n",
                message["content"].as_str().unwrap_or("")
            )),
        }
    }
    let next_text = session.events[next].text_or_empty();
    let user = format!(
        "## User request\n{request}\n\n## Agent response\n{steps}\n## Next state (role: {role})\n{next_text}\n\n\
         Was the agent's response good? Answer with \\boxed{{1}}, \\boxed{{-1}} or \\boxed{{0}}."
    );
    Some(vec![
        json!({"role": "system", "content": JUDGE_SYSTEM_PROMPT}),
        json!({"role": "user", "content": user}),
    ])
}

/// Asks the endpoint once; returns the answer text.
async fn ask(
    client: &reqwest::Client,
    options: &JudgeOptions,
    messages: &[Value],
) -> Result<String, DeriveError> {
    let url = format!(
        "{}/chat/completions",
        options.endpoint.trim_end_matches('/')
    );
    let body = json!({
        "model": options.model,
        "messages": messages,
        "temperature": options.temperature,
        "stream": false,
    });
    let mut request = client
        .post(&url)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(key) = &options.api_key {
        request = request.bearer_auth(key);
    }
    let response = request
        .send()
        .await
        .map_err(|e| DeriveError::Judge(format!("POST {url}: {e}")))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| DeriveError::Judge(format!("reading the answer of {url}: {e}")))?;
    if !status.is_success() {
        let snippet: String = text.chars().take(200).collect();
        return Err(DeriveError::Judge(format!(
            "{url} answered {status}: {snippet}"
        )));
    }
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| DeriveError::Judge(format!("{url} answered non-JSON: {e}")))?;
    Ok(value["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or("")
        .to_string())
}

/// Judges every turn with a next state that has no annotation yet for this
/// model, prompt version and k, and appends one annotation event per turn in
/// one commit.
///
/// Errors: [`DeriveError::InvalidOption`] for `votes = 0` or an empty model;
/// [`DeriveError::Judge`] when the endpoint cannot be reached or answers an
/// HTTP error (nothing is appended then); store errors.
pub async fn judge(
    store: &EventStore,
    options: &JudgeOptions,
) -> Result<JudgeSummary, DeriveError> {
    if options.votes == 0 {
        return Err(DeriveError::InvalidOption(
            "--votes must be at least 1".into(),
        ));
    }
    if options.model.trim().is_empty() {
        return Err(DeriveError::InvalidOption(
            "--model must name the judge model".into(),
        ));
    }
    let engine = QueryEngine::open(store, options.as_of.as_ref()).await?;
    let log = read_event_log(&engine).await?;
    let existing: HashSet<String> = log
        .side_events
        .iter()
        .filter(|e| e.kind == "annotation")
        .map(|e| e.event_id.clone())
        .collect();
    let client = reqwest::Client::builder()
        .timeout(options.timeout)
        .build()
        .map_err(|e| DeriveError::Judge(format!("cannot build the HTTP client: {e}")))?;
    let votes_key = options.votes.to_string();
    let mut summary = JudgeSummary {
        turns_considered: 0,
        turns_already_judged: 0,
        turns_judged: 0,
        unparseable_votes: 0,
        annotations_added: 0,
        events_version: None,
    };
    let judge_id = stable_id(&["judge-run", &Utc::now().to_rfc3339()]);
    let now = Utc::now();
    let mut annotations = Vec::new();
    'sessions: for session in &log.sessions {
        let turns = segment(session);
        for turn in &turns.turns {
            let Some(messages) = judge_messages(session, turn) else {
                continue;
            };
            summary.turns_considered += 1;
            let event_id = stable_id(&[
                "annotation",
                JUDGE_SOURCE,
                &turn.turn_id,
                &options.model,
                JUDGE_PROMPT_VERSION,
                &votes_key,
            ]);
            if existing.contains(&event_id) {
                summary.turns_already_judged += 1;
                continue;
            }
            if options
                .limit
                .is_some_and(|limit| summary.turns_judged >= limit)
            {
                break 'sessions;
            }
            let mut votes = Vec::new();
            let mut raw_votes = Vec::new();
            for _ in 0..options.votes {
                let answer = ask(&client, options, &messages).await?;
                match parse_vote(&answer) {
                    Some(vote) => votes.push(vote),
                    None => summary.unparseable_votes += 1,
                }
                raw_votes.push(answer.chars().take(2000).collect::<String>());
            }
            let score = majority(&votes);
            summary.turns_judged += 1;
            let ended = turn
                .events
                .iter()
                .map(|&i| session.events[i].ts_us)
                .max()
                .unwrap_or_default();
            let ts = DateTime::<Utc>::from_timestamp_micros(ended).unwrap_or(now);
            let mut event = Event::new(
                event_id,
                ts,
                EventKind::Annotation,
                JUDGE_SOURCE,
                &judge_id,
                now,
            );
            event.session_id = Some(session.session_id.clone());
            event.agent_id = session.agent_id.clone();
            event.model = Some(options.model.clone());
            event.status = Some(score.to_string());
            event.attributes = Some(
                json!({
                    "type": "judge",
                    "turn_id": turn.turn_id,
                    "subject_event_id": turn.llm_calls(session).last().map(|c| session.events[c].event_id.clone()),
                    "judge_model": options.model,
                    "prompt_version": JUDGE_PROMPT_VERSION,
                    "votes": votes,
                    "raw_votes": raw_votes,
                    "score": score,
                })
                .to_string(),
            );
            annotations.push(event);
        }
    }
    if !annotations.is_empty() {
        let batch = events_to_batch(&annotations)?;
        let mut facts = serde_json::Map::new();
        facts.insert("trajectory.operation".into(), json!("judge"));
        facts.insert("trajectory.judge_model".into(), json!(options.model));
        facts.insert(
            "trajectory.prompt_version".into(),
            json!(JUDGE_PROMPT_VERSION),
        );
        let outcome = store
            .append_events(
                batch,
                CommitInfo {
                    ingest_id: judge_id.clone(),
                    facts,
                },
            )
            .await?;
        summary.annotations_added = outcome.rows_added;
        summary.events_version = outcome.version;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn votes_parse_from_the_last_box() {
        assert_eq!(parse_vote("thinking... \\boxed{1}"), Some(1));
        assert_eq!(parse_vote("\\boxed{0} no wait \\boxed{-1}"), Some(-1));
        assert_eq!(parse_vote("\\boxed{ +1 }"), Some(1));
        assert_eq!(parse_vote("\\boxed{2}"), None);
        assert_eq!(parse_vote("good"), None);
        assert_eq!(parse_vote("\\boxed{1"), None);
    }

    #[test]
    fn majority_breaks_ties_to_zero() {
        assert_eq!(majority(&[1, 1, -1]), 1);
        assert_eq!(majority(&[-1, -1, 0]), -1);
        assert_eq!(majority(&[1, -1]), 0);
        assert_eq!(majority(&[1, -1, 0]), 0);
        assert_eq!(majority(&[]), 0);
        assert_eq!(majority(&[0, 0, 1]), 0);
    }
}
