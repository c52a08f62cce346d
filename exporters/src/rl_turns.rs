//! `rl-turns`: OpenClaw-RL style turn records, for binary RL and on-policy
//! distillation.
//!
//! Format: modelled on OpenClaw-RL's turn and PRM records and slime's
//! `Sample` (<https://github.com/Gen-Verse/OpenClaw-RL>, arXiv 2603.10165;
//! `shared/docs/training-formats.md` §1.2–1.3): the state (context), the
//! response, the **next state** a judge or a hint extractor reads, a scalar
//! score and the loss-mask rule.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `session_id`, `turn_id`, `agent_id` | utf8 | where the row came from |
//! | `turn` | int64 | 0-based turn index on its branch |
//! | `context` | list<struct<role, content>> | messages before the response: context and the user message |
//! | `response` | list<struct<role, content>> | the turn's assistant messages, tool calls (as `<tool_call>` text) and tool results |
//! | `next_state` | utf8 | the next user message, or the last tool result; null at the end of a branch |
//! | `next_state_role` | utf8 | `user` or `tool` |
//! | `score` | float64 | the turn's reward (mean combined step reward; `rewards` table), null without one |
//! | `advantage` | float64 | mean advantage of those rows |
//! | `signals` | list<utf8> | process signals that fired on the turn's LLM calls (sorted) |
//! | `loss_mask` | bool | OpenClaw-RL's exclusion rule: false without a next state or with a null/zero score, except the first scored turn with a next state of each session (the "at-least-one guarantee") |
//! | `main_line` | bool | on the session's active branch |
//! | `provider`, `model`, `locality` | utf8 | of the turn's last LLM call (on-policy data needs the policy) |
//!
//! Every turn gives a row (one per `turns` row). No teacher hints or log
//! probabilities: those need the model; `next_state` is what a hint judge
//! reads.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde_json::json;

use crate::messages::{plain, plain_list_type};
use crate::training::{Row, Turn};

/// The `--target` name.
pub const TARGET: &str = "rl-turns";

pub(crate) const DESCRIPTION: &str = "One row per turn, OpenClaw-RL style: context, response, \
    next state (user or tool), score, signals and the loss-mask rule, for binary RL and on-policy \
    distillation.";

/// Arrow schema of an `rl-turns` shard.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("session_id", DataType::Utf8, false),
                Field::new("turn", DataType::Int64, false),
                Field::new("turn_id", DataType::Utf8, false),
                Field::new("agent_id", DataType::Utf8, true),
                Field::new("context", plain_list_type(), false),
                Field::new("response", plain_list_type(), false),
                Field::new("next_state", DataType::Utf8, true),
                Field::new("next_state_role", DataType::Utf8, true),
                Field::new("score", DataType::Float64, true),
                Field::new("advantage", DataType::Float64, true),
                Field::new(
                    "signals",
                    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                    false,
                ),
                Field::new("loss_mask", DataType::Boolean, false),
                Field::new("main_line", DataType::Boolean, false),
                Field::new("provider", DataType::Utf8, true),
                Field::new("model", DataType::Utf8, true),
                Field::new("locality", DataType::Utf8, true),
            ]))
        })
        .clone()
}

/// One row per turn (in the given order, which decides "first" for the
/// at-least-one guarantee).
pub fn rows(turns: &[Turn]) -> Vec<Row> {
    let mut guaranteed: HashSet<&str> = HashSet::new();
    turns
        .iter()
        .map(|t| {
            let judged = t.next_state.is_some() && t.reward.is_some();
            let first = judged && guaranteed.insert(t.session_id.as_str());
            let loss_mask = judged && (first || t.reward.is_some_and(|r| r != 0.0));
            Row::of_turn(
                t,
                json!({
                    "session_id": t.session_id, "turn": t.turn_index, "turn_id": t.turn_id,
                    "agent_id": t.agent_id, "context": plain(&t.prompt_messages()),
                    "response": plain(&t.responses), "next_state": t.next_state,
                    "next_state_role": t.next_state_role, "score": t.reward,
                    "advantage": t.advantage, "signals": t.signals, "loss_mask": loss_mask,
                    "main_line": t.on_active_branch, "provider": t.provider, "model": t.model,
                    "locality": t.locality}),
            )
        })
        .collect()
}
