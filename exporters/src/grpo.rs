//! `grpo`: prompt-only rows for TRL's `GRPOTrainer`, with reward columns.
//!
//! Format: TRL "prompt-only", conversational
//! (<https://huggingface.co/docs/trl/dataset_formats#prompt-only>; GRPO:
//! <https://huggingface.co/docs/trl/grpo_trainer>; `shared/docs/training-formats.md`
//! §2.1). GRPO generates completions online; every extra column reaches the
//! reward functions as a keyword argument, so the logged outcome travels with
//! the prompt.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `prompt` | list<struct<role, content>> | the turn's context and user message |
//! | `reward` | float64 | the logged turn's reward (mean combined step reward), null without one |
//! | `advantage` | float64 | mean advantage of those rows (`derive --credit grpo`: group-normalised) |
//! | `group_id` | utf8 | the prompt hash: rollouts of one prompt share it |
//! | `reference_completion` | list<struct<role, content>> | what the agent answered (for reference-based rewards) |
//! | `session_id`, `turn_id` | utf8 | where the row came from |

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde_json::json;

use crate::messages::{plain, plain_list_type};
use crate::training::{Row, Turn};

/// The `--target` name.
pub const TARGET: &str = "grpo";

pub(crate) const DESCRIPTION: &str = "One row per turn in TRL's prompt-only conversational format \
    (GRPOTrainer), with the logged reward, advantage and the prompt group id as extra columns \
    (passed to reward functions as keyword arguments).";

/// Arrow schema of a `grpo` shard.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("prompt", plain_list_type(), false),
                Field::new("reward", DataType::Float64, true),
                Field::new("advantage", DataType::Float64, true),
                Field::new("group_id", DataType::Utf8, true),
                Field::new("reference_completion", plain_list_type(), false),
                Field::new("session_id", DataType::Utf8, false),
                Field::new("turn_id", DataType::Utf8, false),
            ]))
        })
        .clone()
}

/// One row per turn.
pub fn rows(turns: &[Turn]) -> Vec<Row> {
    turns
        .iter()
        .map(|t| {
            Row::of_turn(
                t,
                json!({"prompt": plain(&t.prompt_messages()), "reward": t.reward,
                       "advantage": t.advantage, "group_id": t.prompt_hash,
                       "reference_completion": plain(&t.responses),
                       "session_id": t.session_id, "turn_id": t.turn_id}),
            )
        })
        .collect()
}
