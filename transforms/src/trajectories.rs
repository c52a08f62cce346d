//! The `trajectories` table: task episodes. An episode is a run of
//! consecutive turns on one branch that work on one task.
//!
//! **Episode rule** (deterministic, `trajectories-v1`): walking a branch's
//! turns in order, turn *k+1* continues the episode of turn *k* when the user
//! wrote it at most `idle_gap` after turn *k* ended **and** at least one of:
//! - it re-asks turn *k*'s prompt (Jaccard of word 2-shingles ≥ the re-ask
//!   threshold, default 0.5),
//! - it is a correction ([`crate::user_text::CORRECTION_PATTERN`]),
//! - it starts with a continuation phrase ([`crate::user_text::CONTINUATION_PATTERN`]),
//! - turn *k* did not finish (final status other than `completed`).
//!
//! Otherwise turn *k+1* starts a new episode. The id hashes the session and
//! the turn ids, so an episode found on several branches (a shared prefix) is
//! stored once, attributed to the first branch (active first).
//! `on_active_branch` is true when the active branch's segmentation produced
//! it. Siblings: other trajectories of the same session whose first user
//! message has the same parent entry (the user edited the message or the
//! agent regenerated from the same point).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::columns::{
    boolean, event_ids_field, float64, int64, stable_id, string_lists, timestamp_type, timestamps,
    utf8,
};
use crate::transcript::Session;
use crate::turns::{SessionTurns, Turn};
use crate::user_text::{is_continuation, is_correction, jaccard, prompt_hash, REASK_SHINGLE_WORDS};
use crate::DeriveError;

/// Version of the episode rule.
pub const TRAJECTORIES_JOB_VERSION: &str = "trajectories-v1";

/// Parameters of the episode rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpisodeRule {
    /// Longest pause (µs) between a turn's last event and the next user
    /// message for the two to be one episode. Default 30 minutes.
    pub idle_gap_us: i64,
    /// Jaccard threshold of a re-ask (default 0.5).
    pub reask_threshold: f64,
}

impl Default for EpisodeRule {
    fn default() -> EpisodeRule {
        EpisodeRule {
            idle_gap_us: 30 * 60 * 1_000_000,
            reask_threshold: 0.5,
        }
    }
}

/// How a turn ended, from its last LLM call and last event:
/// `no_response` (no LLM call), `aborted`, `failed` (error stop reason or
/// message), `truncated` (`length`), `incomplete` (the turn ends in a tool
/// call or result without a final answer), else `completed`.
pub fn final_status(session: &Session, turn: &Turn) -> &'static str {
    let Some(last_call) = turn.llm_calls(session).last() else {
        return "no_response";
    };
    let call = &session.events[last_call];
    if call.stop_reason.as_deref() == Some("aborted") {
        return "aborted";
    }
    if call.is_failed_call() {
        return "failed";
    }
    if call.stop_reason.as_deref() == Some("length") {
        return "truncated";
    }
    let ends_in_tools = turn
        .events
        .last()
        .is_some_and(|&i| matches!(session.events[i].kind.as_str(), "tool_call" | "tool_result"));
    if ends_in_tools {
        "incomplete"
    } else {
        "completed"
    }
}

/// Why `next` continues the episode of `previous`, or `None` when it starts a
/// new one (see the module docs).
pub fn continues_episode(
    session: &Session,
    previous: &Turn,
    next: &Turn,
    rule: &EpisodeRule,
) -> Option<&'static str> {
    let ended = previous
        .events
        .iter()
        .map(|&i| session.events[i].ts_us)
        .max()
        .unwrap_or_default();
    let next_text = session.events[next.user()].text_or_empty();
    if session.events[next.user()].ts_us - ended > rule.idle_gap_us {
        return None;
    }
    let previous_text = session.events[previous.user()].text_or_empty();
    if jaccard(previous_text, next_text, REASK_SHINGLE_WORDS) >= rule.reask_threshold {
        Some("reask")
    } else if is_correction(next_text) {
        Some("correction")
    } else if is_continuation(next_text) {
        Some("continuation")
    } else if final_status(session, previous) != "completed" {
        Some("unfinished")
    } else {
        None
    }
}

/// One episode of one session. Turn positions index [`SessionTurns::turns`].
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    /// 32 hex chars: blake3 of the session and the turn ids.
    pub trajectory_id: String,
    /// Index of the session in the event log's session list.
    pub session: usize,
    pub turns: Vec<usize>,
    /// Position of the episode on the branch it was taken from (0-based).
    pub episode_index: i64,
    pub on_active_branch: bool,
    pub branch_leaf_entry_id: String,
    /// Parent entry of the first user message.
    pub start_parent_entry_id: Option<String>,
    /// Other trajectories of the session with the same start parent.
    pub sibling_ids: Vec<String>,
}

/// Cuts every branch of one session into episodes; `session_index` is stored
/// in each [`Trajectory`].
pub fn segment_episodes(
    session_index: usize,
    session: &Session,
    turns: &SessionTurns,
    rule: &EpisodeRule,
) -> Vec<Trajectory> {
    let mut out: Vec<Trajectory> = Vec::new();
    let mut seen = HashMap::new();
    for (branch_number, branch) in turns.branches.iter().enumerate() {
        let mut episodes: Vec<Vec<usize>> = Vec::new();
        for (k, &turn) in branch.iter().enumerate() {
            let continues = k > 0
                && continues_episode(
                    session,
                    &turns.turns[branch[k - 1]],
                    &turns.turns[turn],
                    rule,
                )
                .is_some();
            match episodes.last_mut() {
                Some(episode) if continues => episode.push(turn),
                _ => episodes.push(vec![turn]),
            }
        }
        for (episode_index, episode) in episodes.into_iter().enumerate() {
            let mut parts = vec!["trajectory", session.session_id.as_str()];
            parts.extend(episode.iter().map(|&t| turns.turns[t].turn_id.as_str()));
            let trajectory_id = stable_id(&parts);
            if seen.insert(trajectory_id.clone(), out.len()).is_some() {
                continue;
            }
            let first = &turns.turns[episode[0]];
            let leaf = turns.turns[episode[episode.len() - 1]]
                .branch_leaf_entry_id
                .clone();
            out.push(Trajectory {
                trajectory_id,
                session: session_index,
                episode_index: episode_index as i64,
                on_active_branch: branch_number == 0
                    && episode.iter().all(|&t| turns.turns[t].on_active_branch),
                branch_leaf_entry_id: leaf,
                start_parent_entry_id: first.parent_entry_id.clone(),
                turns: episode,
                sibling_ids: Vec::new(),
            });
        }
    }
    let mut by_start: HashMap<Option<String>, Vec<String>> = HashMap::new();
    for t in &out {
        by_start
            .entry(t.start_parent_entry_id.clone())
            .or_default()
            .push(t.trajectory_id.clone());
    }
    for t in &mut out {
        t.sibling_ids = by_start
            .get(&t.start_parent_entry_id)
            .into_iter()
            .flatten()
            .filter(|id| **id != t.trajectory_id)
            .cloned()
            .collect();
        t.sibling_ids.sort();
    }
    out
}

/// Schema of the `trajectories` table (columns documented in `docs/datasets.md`).
pub fn trajectories_schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let list = |name: &str| {
        Field::new(
            name,
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        )
    };
    Arc::new(Schema::new(vec![
        text("trajectory_id", false),
        text("session_id", false),
        text("agent_id", true),
        Field::new("episode_index", DataType::Int64, false),
        Field::new("on_active_branch", DataType::Boolean, false),
        text("branch_leaf_entry_id", false),
        text("start_parent_entry_id", true),
        list("sibling_trajectory_ids"),
        list("turn_ids"),
        Field::new("turn_count", DataType::Int64, false),
        Field::new("started_at", timestamp_type(), false),
        Field::new("ended_at", timestamp_type(), false),
        text("prompt", false),
        text("prompt_hash", false),
        text("final_status", false),
        text("next_user_message", true),
        Field::new("llm_call_count", DataType::Int64, false),
        Field::new("tool_call_count", DataType::Int64, false),
        Field::new("cost_usd", DataType::Float64, false),
        event_ids_field(),
        Field::new("events_version", DataType::Int64, false),
    ]))
}

/// Builds the `trajectories` rows as one batch of [`trajectories_schema`].
///
/// `sessions[t.session]` and `turns[t.session]` must be the session and turns
/// each trajectory was segmented from.
///
/// Errors: [`DeriveError::Arrow`] if the columns do not fit the schema.
pub fn trajectories_batch(
    sessions: &[Session],
    turns: &[SessionTurns],
    trajectories: &[Trajectory],
    events_version: u64,
) -> Result<RecordBatch, DeriveError> {
    let session = |t: &Trajectory| &sessions[t.session];
    let turn_list = |t: &Trajectory| -> Vec<&Turn> {
        t.turns
            .iter()
            .map(|&i| &turns[t.session].turns[i])
            .collect()
    };
    let events = |t: &Trajectory| -> Vec<usize> {
        turn_list(t)
            .iter()
            .flat_map(|turn| turn.events.iter().copied())
            .collect()
    };
    let count = |t: &Trajectory, kind: &str| {
        events(t)
            .iter()
            .filter(|&&i| session(t).events[i].kind == kind)
            .count() as i64
    };
    let prompt = |t: &Trajectory| -> &str {
        let first = turn_list(t)[0];
        session(t).events[first.user()].text_or_empty()
    };
    let last_turn = |t: &Trajectory| *turn_list(t).last().unwrap_or(&turn_list(t)[0]);
    let hashes: Vec<String> = trajectories
        .iter()
        .map(|t| prompt_hash(prompt(t)))
        .collect();
    let columns = vec![
        utf8(trajectories.iter().map(|t| Some(t.trajectory_id.as_str()))),
        utf8(
            trajectories
                .iter()
                .map(|t| Some(session(t).session_id.as_str())),
        ),
        utf8(trajectories.iter().map(|t| session(t).agent_id.as_deref())),
        int64(trajectories.iter().map(|t| Some(t.episode_index))),
        boolean(trajectories.iter().map(|t| Some(t.on_active_branch))),
        utf8(
            trajectories
                .iter()
                .map(|t| Some(t.branch_leaf_entry_id.as_str())),
        ),
        utf8(
            trajectories
                .iter()
                .map(|t| t.start_parent_entry_id.as_deref()),
        ),
        string_lists(
            trajectories
                .iter()
                .map(|t| t.sibling_ids.iter().map(String::as_str)),
        ),
        string_lists(
            trajectories
                .iter()
                .map(|t| turn_list(t).into_iter().map(|turn| turn.turn_id.as_str())),
        ),
        int64(trajectories.iter().map(|t| Some(t.turns.len() as i64))),
        timestamps(
            trajectories
                .iter()
                .map(|t| events(t).iter().map(|&i| session(t).events[i].ts_us).min()),
        ),
        timestamps(
            trajectories
                .iter()
                .map(|t| events(t).iter().map(|&i| session(t).events[i].ts_us).max()),
        ),
        utf8(trajectories.iter().map(|t| Some(prompt(t)))),
        utf8(hashes.iter().map(|h| Some(h.as_str()))),
        utf8(
            trajectories
                .iter()
                .map(|t| Some(final_status(session(t), last_turn(t)))),
        ),
        utf8(trajectories.iter().map(|t| {
            last_turn(t)
                .next_user
                .map(|i| session(t).events[i].text_or_empty())
        })),
        int64(trajectories.iter().map(|t| Some(count(t, "llm_call")))),
        int64(trajectories.iter().map(|t| Some(count(t, "tool_call")))),
        float64(trajectories.iter().map(|t| {
            Some(
                events(t)
                    .iter()
                    .filter_map(|&i| session(t).events[i].cost_usd)
                    .sum(),
            )
        })),
        string_lists(trajectories.iter().map(|t| {
            events(t)
                .into_iter()
                .map(|i| session(t).events[i].event_id.as_str())
                .collect::<Vec<_>>()
        })),
        int64(trajectories.iter().map(|_| Some(events_version as i64))),
    ];
    Ok(RecordBatch::try_new(trajectories_schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::turns::segment;
    use crate::turns::tests::{ev, session};

    fn episodes(events: Vec<crate::transcript::TranscriptEvent>) -> (Session, Vec<Vec<String>>) {
        let s = session(events);
        let turns = segment(&s);
        let trajectories = segment_episodes(0, &s, &turns, &EpisodeRule::default());
        let prompts = trajectories
            .iter()
            .map(|t| {
                t.turns
                    .iter()
                    .map(|&i| s.events[turns.turns[i].user()].text_or_empty().to_string())
                    .collect()
            })
            .collect();
        (s, prompts)
    }

    #[test]
    fn a_new_topic_starts_an_episode_and_a_correction_continues_one() {
        let (_, prompts) = episodes(vec![
            ev("user_message", "u1", None, 1, "write a haiku about rain"),
            ev("llm_call", "a1", Some("u1"), 2, "rain falls..."),
            ev(
                "user_message",
                "u2",
                Some("a1"),
                3,
                "no, I meant about snow",
            ),
            ev("llm_call", "a2", Some("u2"), 4, "snow falls..."),
            ev(
                "user_message",
                "u3",
                Some("a2"),
                5,
                "what is the capital of France",
            ),
            ev("llm_call", "a3", Some("u3"), 6, "Paris"),
        ]);
        assert_eq!(
            prompts,
            vec![
                vec![
                    "write a haiku about rain".to_string(),
                    "no, I meant about snow".to_string()
                ],
                vec!["what is the capital of France".to_string()],
            ]
        );
    }

    #[test]
    fn an_idle_gap_ends_an_episode_even_for_a_reask() {
        let mut late = ev("user_message", "u2", Some("a1"), 3, "list the files here");
        late.ts_us = 2_000_000 + 31 * 60 * 1_000_000;
        let (_, prompts) = episodes(vec![
            ev("user_message", "u1", None, 1, "list the files here"),
            ev("llm_call", "a1", Some("u1"), 2, "a b c"),
            late,
        ]);
        assert_eq!(prompts.len(), 2);
    }

    #[test]
    fn an_unfinished_turn_is_continued_by_the_next() {
        let mut failed = ev("llm_call", "a1", Some("u1"), 2, "");
        failed.stop_reason = Some("error".into());
        failed.error = Some("fetch failed".into());
        let (s, prompts) = episodes(vec![
            ev("user_message", "u1", None, 1, "summarise my inbox"),
            failed,
            ev("user_message", "u2", Some("a1"), 3, "hello?"),
            ev("llm_call", "a2", Some("u2"), 4, "Here is the summary"),
        ]);
        assert_eq!(prompts.len(), 1);
        let turns = segment(&s);
        assert_eq!(final_status(&s, &turns.turns[0]), "failed");
        assert_eq!(final_status(&s, &turns.turns[1]), "completed");
    }

    #[test]
    fn sibling_branches_are_linked_both_ways() {
        let s = session(vec![
            ev("user_message", "u1", None, 1, "first"),
            ev("llm_call", "a1", Some("u1"), 2, "one"),
            ev("user_message", "u2", Some("a1"), 3, "tell me a joke"),
            ev("llm_call", "a2", Some("u2"), 4, "joke"),
            ev("user_message", "u3", Some("a1"), 5, "tell me a story"),
            ev("llm_call", "a3", Some("u3"), 6, "story"),
        ]);
        let turns = segment(&s);
        let t = segment_episodes(0, &s, &turns, &EpisodeRule::default());
        assert_eq!(t.len(), 3);
        let active: Vec<bool> = t.iter().map(|x| x.on_active_branch).collect();
        assert_eq!(active, vec![true, true, false]);
        assert_eq!(t[1].sibling_ids, vec![t[2].trajectory_id.clone()]);
        assert_eq!(t[2].sibling_ids, vec![t[1].trajectory_id.clone()]);
        assert!(t[0].sibling_ids.is_empty());
    }
}
