//! `trl-preference`: paired preference rows for TRL's `DPOTrainer` (and ORPO,
//! CPO, reward modelling), and the pair formation `openai-dpo` shares.
//!
//! Format: TRL "preference", conversational with an explicit prompt
//! (<https://huggingface.co/docs/trl/dataset_formats#preference>;
//! `shared/docs/training-formats.md` §2.1): `prompt`, `chosen`, `rejected`.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `prompt` | list<struct<role, content>> | the chosen turn's context, user message and the responses both sides share |
//! | `chosen`, `rejected` | list<struct<role, content>> | the two continuations from where they differ (each starts with an assistant message) |
//! | `pair_source` | utf8 | `branch_sibling` or `reward_difference` |
//! | `chosen_reward`, `rejected_reward` | float64 | the turns' rewards (null without one) |
//! | `session_id` | utf8 | the chosen turn's session (decides the split) |
//! | `chosen_turn_id`, `rejected_turn_id` | utf8 | the two turns |
//!
//! How pairs are formed ([`pairs`]):
//!
//! 1. **Branch siblings**: turns of one session with the same
//!    `parent_entry_id` and the same prompt (`prompt_hash`) — a regenerated
//!    answer, or a user message re-sent unchanged. The turn on the active
//!    branch is preferred (the user went on from it) unless the other's
//!    reward beats it by at least `min_reward_gap`; among siblings off the
//!    active branch only a reward gap ≥ `min_reward_gap` makes a pair.
//! 2. **Reward differences**: turns with the same `prompt_hash` (any
//!    sessions of the same split, so no pair straddles splits) whose rewards
//!    differ by at least `min_reward_gap`: the best-rewarded turn against each
//!    of those. The prompt is the chosen turn's.
//!
//! Both sides must differ and continue with an assistant message after their
//! common prefix; a pair is formed once.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde_json::{json, Value};

use crate::filters::split_of;
use crate::messages::{common_prefix, plain, plain_list_type};
use crate::training::{ExportFilters, Row, Turn};

/// The `--target` name.
pub const TARGET: &str = "trl-preference";

pub(crate) const DESCRIPTION: &str = "Preference pairs in TRL's conversational format \
    (DPOTrainer): prompt, chosen, rejected, from branch siblings (the active branch preferred \
    unless rewards say otherwise) and from reward differences between rollouts of one prompt.";

/// A preference pair of two turns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair<'a> {
    pub chosen: &'a Turn,
    pub rejected: &'a Turn,
    /// `branch_sibling` or `reward_difference`.
    pub source: &'static str,
    /// Number of leading response messages both share (moved into the prompt).
    pub prefix: usize,
}

impl Pair<'_> {
    /// The prompt messages (OpenAI shape): chosen context, user message, shared responses.
    pub fn prompt_messages(&self) -> Vec<Value> {
        let mut messages = self.chosen.prompt_messages();
        messages.extend(self.chosen.responses[..self.prefix].iter().cloned());
        messages
    }

    /// The chosen continuation (OpenAI shape).
    pub fn chosen_messages(&self) -> &[Value] {
        &self.chosen.responses[self.prefix..]
    }

    /// The rejected continuation (OpenAI shape).
    pub fn rejected_messages(&self) -> &[Value] {
        &self.rejected.responses[self.prefix..]
    }

    /// A row whose lineage covers both turns.
    pub fn row(&self, value: Value) -> Row {
        let mut event_ids = self.chosen.event_ids.clone();
        event_ids.extend(self.rejected.event_ids.iter().cloned());
        Row {
            session_id: self.chosen.session_id.clone(),
            value,
            turn_ids: vec![self.chosen.turn_id.clone(), self.rejected.turn_id.clone()],
            event_ids,
        }
    }
}

/// Arrow schema of a `trl-preference` shard.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("prompt", plain_list_type(), false),
                Field::new("chosen", plain_list_type(), false),
                Field::new("rejected", plain_list_type(), false),
                Field::new("pair_source", DataType::Utf8, false),
                Field::new("chosen_reward", DataType::Float64, true),
                Field::new("rejected_reward", DataType::Float64, true),
                Field::new("session_id", DataType::Utf8, false),
                Field::new("chosen_turn_id", DataType::Utf8, false),
                Field::new("rejected_turn_id", DataType::Utf8, false),
            ]))
        })
        .clone()
}

/// One row per pair.
pub fn rows(pairs: &[Pair<'_>]) -> Vec<Row> {
    pairs
        .iter()
        .map(|p| {
            p.row(json!({
                "prompt": plain(&p.prompt_messages()),
                "chosen": plain(p.chosen_messages()),
                "rejected": plain(p.rejected_messages()),
                "pair_source": p.source,
                "chosen_reward": p.chosen.reward, "rejected_reward": p.rejected.reward,
                "session_id": p.chosen.session_id,
                "chosen_turn_id": p.chosen.turn_id, "rejected_turn_id": p.rejected.turn_id}))
        })
        .collect()
}

/// Whether `a`'s reward beats `b`'s by at least `gap` (both rewarded).
fn beats(a: &Turn, b: &Turn, gap: f64) -> bool {
    match (a.reward, b.reward) {
        (Some(x), Some(y)) => x > y && x - y >= gap,
        _ => false,
    }
}

fn starts_with_assistant(messages: &[Value]) -> bool {
    messages.first().is_some_and(|m| m["role"] == "assistant")
}

/// The preference pairs among `turns` (rules in the module docs), ordered by
/// the chosen turn (session, turn index, turn id), then the rejected turn.
pub fn pairs<'a>(turns: &'a [Turn], filters: &ExportFilters) -> Vec<Pair<'a>> {
    let gap = filters.min_reward_gap;
    let mut out: Vec<Pair<'a>> = Vec::new();
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    let mut push = |chosen: &'a Turn, rejected: &'a Turn, source: &'static str| {
        let key = if chosen.turn_id < rejected.turn_id {
            (chosen.turn_id.as_str(), rejected.turn_id.as_str())
        } else {
            (rejected.turn_id.as_str(), chosen.turn_id.as_str())
        };
        let prefix = common_prefix(&chosen.responses, &rejected.responses);
        let (c, r) = (&chosen.responses[prefix..], &rejected.responses[prefix..]);
        if chosen.turn_id == rejected.turn_id
            || !starts_with_assistant(c)
            || !starts_with_assistant(r)
            || seen.contains(&key)
        {
            return;
        }
        seen.insert(key);
        out.push(Pair {
            chosen,
            rejected,
            source,
            prefix,
        });
    };

    // 1. Branch siblings.
    let mut siblings: BTreeMap<(&str, &str, &str), Vec<&'a Turn>> = BTreeMap::new();
    for t in turns {
        let prompt = t.prompt_hash.as_deref().unwrap_or(t.prompt.as_str());
        siblings
            .entry((
                t.session_id.as_str(),
                t.parent_entry_id.as_deref().unwrap_or(""),
                prompt,
            ))
            .or_default()
            .push(t);
    }
    for group in siblings.values().filter(|g| g.len() > 1) {
        if let Some(active) = group.iter().copied().find(|t| t.on_active_branch) {
            for &other in group.iter().filter(|t| t.turn_id != active.turn_id) {
                if beats(other, active, gap) {
                    push(other, active, "branch_sibling");
                } else {
                    push(active, other, "branch_sibling");
                }
            }
        } else {
            for (i, &a) in group.iter().enumerate() {
                for &b in &group[i + 1..] {
                    if beats(a, b, gap) {
                        push(a, b, "branch_sibling");
                    } else if beats(b, a, gap) {
                        push(b, a, "branch_sibling");
                    }
                }
            }
        }
    }

    // 2. Reward differences between rollouts of one prompt, within a split.
    let mut by_prompt: BTreeMap<(&str, &str), Vec<&'a Turn>> = BTreeMap::new();
    for t in turns.iter().filter(|t| t.reward.is_some()) {
        if let Some(hash) = t.prompt_hash.as_deref() {
            let split = split_of(&t.session_id, filters.validation_percent);
            by_prompt.entry((split, hash)).or_default().push(t);
        }
    }
    for group in by_prompt.values_mut().filter(|g| g.len() > 1) {
        group.sort_by(|a, b| {
            b.reward
                .unwrap_or(0.0)
                .total_cmp(&a.reward.unwrap_or(0.0))
                .then_with(|| a.session_id.cmp(&b.session_id))
                .then(a.turn_index.cmp(&b.turn_index))
                .then_with(|| a.turn_id.cmp(&b.turn_id))
        });
        let best = group[0];
        for &other in &group[1..] {
            if beats(best, other, gap) {
                push(best, other, "reward_difference");
            }
        }
    }

    out.sort_by(|a, b| {
        let key = |p: &Pair<'_>| {
            (
                p.chosen.session_id.clone(),
                p.chosen.turn_index,
                p.chosen.turn_id.clone(),
                p.rejected.session_id.clone(),
                p.rejected.turn_id.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn turn(
        id: &str,
        session: &str,
        active: bool,
        reward: Option<f64>,
        answer: &str,
    ) -> Turn {
        Turn {
            turn_id: id.into(),
            session_id: session.into(),
            agent_id: None,
            turn_index: 0,
            parent_entry_id: Some("p".into()),
            user_event_id: Some("u".into()),
            on_active_branch: active,
            prompt_hash: Some("h".into()),
            context: vec![],
            prompt: "fix the build".into(),
            responses: vec![
                json!({"role": "assistant", "content": null, "tool_calls": [{"id": "1", "type": "function", "function": {"name": "bash", "arguments": "{\"cmd\":\"make\"}"}}]}),
                json!({"role": "tool", "tool_call_id": "1", "name": "bash", "content": "ok"}),
                json!({"role": "assistant", "content": answer}),
            ],
            next_state: None,
            next_state_role: None,
            provider: None,
            model: None,
            locality: None,
            event_ids: vec![format!("e-{id}")],
            reward,
            advantage: None,
            signals: vec![],
        }
    }

    #[test]
    fn active_sibling_is_chosen_unless_rewards_disagree() {
        let filters = ExportFilters::default();
        let turns = vec![
            turn("a", "s", true, Some(0.5), "done"),
            turn("b", "s", false, Some(0.0), "failed"),
        ];
        let p = pairs(&turns, &filters);
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].chosen.turn_id.as_str(), p[0].source),
            ("a", "branch_sibling")
        );
        // The shared tool call and result move into the prompt.
        assert_eq!(p[0].prefix, 2);
        let row = &rows(&p)[0];
        assert_eq!(row.value["prompt"].as_array().unwrap().len(), 3);
        assert_eq!(
            row.value["chosen"],
            json!([{"role": "assistant", "content": "done"}])
        );
        assert_eq!(row.event_ids, vec!["e-a", "e-b"]);

        let turns = vec![
            turn("a", "s", true, Some(-1.0), "done"),
            turn("b", "s", false, Some(0.5), "failed"),
        ];
        assert_eq!(pairs(&turns, &filters)[0].chosen.turn_id, "b");
    }

    #[test]
    fn reward_pairs_need_the_gap_and_identical_answers_never_pair() {
        let filters = ExportFilters::default();
        let mut x = turn("x", "s1", true, Some(1.0), "good");
        x.parent_entry_id = Some("p1".into());
        let mut y = turn("y", "s2", true, Some(-0.5), "bad");
        y.parent_entry_id = Some("p2".into());
        let mut z = turn("z", "s3", true, Some(0.5), "meh");
        z.parent_entry_id = Some("p3".into());
        let turns = vec![x, y, z];
        let all = ExportFilters {
            validation_percent: 0,
            ..filters.clone()
        };
        let p = pairs(&turns, &all);
        assert_eq!(p.len(), 1, "only x vs y has a gap ≥ 1");
        assert_eq!(
            (p[0].chosen.turn_id.as_str(), p[0].rejected.turn_id.as_str()),
            ("x", "y")
        );
        assert_eq!(p[0].source, "reward_difference");
        let same = vec![
            turn("a", "s", true, Some(1.0), "same"),
            turn("b", "s", false, Some(-1.0), "same"),
        ];
        assert!(pairs(&same, &filters).is_empty());
    }
}
