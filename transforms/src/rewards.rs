//! The `rewards` table: one row per (step or trajectory, signal).
//!
//! - `process` rows: one per LLM call (a *step*) and signal that fired, read
//!   from the call's next state (its tool results, or the next user message
//!   for a turn's last call). Signals and values: [`ProcessSignal`].
//! - `outcome` rows: one per trajectory and signal: [`OutcomeSignal`].
//! - `combined` rows: per trajectory (`subject_kind = 'trajectory'`) and per
//!   (trajectory, step) (`subject_kind = 'llm_call'`), with the credit
//!   assignment of [`Credit`].
//!
//! Formulas (`rewards-v1`; `c` = `prm_coef`, default 1):
//! - step process score `p_t = clamp(Σ weight·value, −1, 1)` over the step's process rows;
//! - trajectory outcome `o = clamp(Σ weight·value, −1, 1)` over its outcome rows;
//! - trajectory reward `R = o + c·mean_t(p_t)` (0 for the mean when it has no step);
//! - step reward: `copy` `r_t = o + c·p_t`; `discount` `r_t = o·γ^(T−1−t) + c·p_t`;
//!   `grpo` as `copy`;
//! - advantage: `copy`/`discount` the reward itself; `grpo` the trajectory's
//!   `(R − mean_G)/(std_G + ε)` over the group G of trajectories sharing a
//!   prompt hash (population std, ε = 1e−6), null when |G| < 2 or std = 0
//!   (such groups carry no preference). Every step of a trajectory gets it.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use regex::Regex;
use serde_json::Value;

use crate::columns::{event_ids_field, float64, int64, stable_id, string_lists, utf8};
use crate::trajectories::{final_status, Trajectory};
use crate::transcript::{Session, SideEvent, TranscriptEvent};
use crate::turns::{SessionTurns, Turn};
use crate::user_text::{
    explicit_feedback, is_correction, is_thanks, jaccard, prompt_hash, REASK_SHINGLE_WORDS,
};
use crate::DeriveError;

/// Version of the reward rules, weights and formulas.
pub const REWARDS_METHOD_VERSION: &str = "rewards-v1";

/// Statuses that mean a tool failed (`details.status`, as ingest reads it).
pub const FAILED_TOOL_STATUSES: &[&str] = &[
    "error",
    "failed",
    "approval-unavailable",
    "denied",
    "timeout",
    "timed_out",
];

/// Process signals, their value when they fire and their weight in `p_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessSignal {
    /// A tool result of the call failed: `tool_is_error`, a failed
    /// `tool_status`, an `error`, a non-zero exit code in the text, or an
    /// error first line (see [`tool_failure`]). −1, weight 1.
    ToolError,
    /// The call made tool calls and every one has a result, none failed. +1, weight 0.5.
    ToolSuccess,
    /// A tool call's arguments are not a JSON object (nor a string holding one). −1, weight 1.
    MalformedToolArgs,
    /// A tool call repeats the turn's previous tool call (same name and
    /// arguments compared as JSON) — a loop. −1, weight 0.5.
    RepeatedCall,
    /// `stop_reason = 'error'` or an error message. −1, weight 1.
    CallError,
    /// `stop_reason = 'aborted'`. −1, weight 1.
    CallAborted,
    /// `stop_reason = 'length'`. −1, weight 0.5.
    CallTruncated,
    /// A failed call whose next model-naming event in the turn (LLM call, model
    /// change, `model-snapshot`) names another provider/model,
    /// or a session fallback decision naming its provider: −1 when a local
    /// call fell back to a cloud model, else −0.5; weight 0.5.
    Fallback,
    /// The next user message re-asks the turn's prompt (Jaccard ≥ threshold). −1, weight 1.
    UserReask,
    /// The next user message is a correction. −1, weight 1.
    UserCorrection,
    /// The next user message thanks or approves. +1, weight 1.
    UserThanks,
    /// 👍/👎-style next message, or a `feedback` annotation. ±1, weight 2.
    ExplicitFeedback,
    /// Mean score of judge annotations of the turn. In [−1, 1], weight 1.
    Judge,
}

impl ProcessSignal {
    /// The `signal` column value.
    pub fn name(self) -> &'static str {
        match self {
            ProcessSignal::ToolError => "tool_error",
            ProcessSignal::ToolSuccess => "tool_success",
            ProcessSignal::MalformedToolArgs => "malformed_tool_args",
            ProcessSignal::RepeatedCall => "repeated_call",
            ProcessSignal::CallError => "call_error",
            ProcessSignal::CallAborted => "call_aborted",
            ProcessSignal::CallTruncated => "call_truncated",
            ProcessSignal::Fallback => "fallback",
            ProcessSignal::UserReask => "user_reask",
            ProcessSignal::UserCorrection => "user_correction",
            ProcessSignal::UserThanks => "user_thanks",
            ProcessSignal::ExplicitFeedback => "explicit_feedback",
            ProcessSignal::Judge => "judge",
        }
    }

    /// Weight in the step process score.
    pub fn weight(self) -> f64 {
        match self {
            ProcessSignal::ToolSuccess
            | ProcessSignal::RepeatedCall
            | ProcessSignal::CallTruncated
            | ProcessSignal::Fallback => 0.5,
            ProcessSignal::ExplicitFeedback => 2.0,
            _ => 1.0,
        }
    }
}

/// Outcome signals of a trajectory, their values and weights in `o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeSignal {
    /// Final status of the last turn: `completed` +0.5, `truncated` and
    /// `incomplete` −0.5, `failed`, `aborted` and `no_response` −1. Weight 1.
    FinalStatus,
    /// The trajectory's last tool result: failed −1, else +1. Weight 0.5.
    LastToolResult,
    /// The user message after the trajectory: explicit 👍/👎 ±1, thanks +1,
    /// correction or re-ask −1, anything else (the user moved on) +0.25. Weight 1.
    NextUserMessage,
    /// The session's latest cron run: `ok` +1, `error`/`failed`/`timeout` −1;
    /// on the last active-branch trajectory of the session. Weight 1.
    CronRun,
}

impl OutcomeSignal {
    /// The `signal` column value.
    pub fn name(self) -> &'static str {
        match self {
            OutcomeSignal::FinalStatus => "final_status",
            OutcomeSignal::LastToolResult => "last_tool_result",
            OutcomeSignal::NextUserMessage => "next_user_message",
            OutcomeSignal::CronRun => "cron_run",
        }
    }

    /// Weight in the trajectory outcome.
    pub fn weight(self) -> f64 {
        match self {
            OutcomeSignal::LastToolResult => 0.5,
            _ => 1.0,
        }
    }
}

/// Credit assignment of the combined step rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Credit {
    /// The trajectory outcome copied to every step.
    #[default]
    Copy,
    /// The outcome discounted by γ per step from the end.
    Discount,
    /// Group-normalised advantages over trajectories sharing a prompt.
    Grpo,
}

impl Credit {
    /// The `credit_assignment` column value.
    pub fn name(self) -> &'static str {
        match self {
            Credit::Copy => "copy",
            Credit::Discount => "discount",
            Credit::Grpo => "grpo",
        }
    }
}

impl std::str::FromStr for Credit {
    type Err = DeriveError;

    fn from_str(s: &str) -> Result<Credit, DeriveError> {
        match s {
            "copy" => Ok(Credit::Copy),
            "discount" => Ok(Credit::Discount),
            "grpo" => Ok(Credit::Grpo),
            other => Err(DeriveError::InvalidOption(format!(
                "unknown credit assignment {other:?}: expected copy, discount or grpo"
            ))),
        }
    }
}

/// Parameters of the rewards job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RewardParams {
    pub credit: Credit,
    /// Discount per step for [`Credit::Discount`], in [0, 1]. Default 0.9.
    pub gamma: f64,
    /// Weight `c` of the process score next to the outcome. Default 1.
    pub prm_coef: f64,
    /// Jaccard threshold of a re-ask. Default 0.5.
    pub reask_threshold: f64,
}

impl Default for RewardParams {
    fn default() -> RewardParams {
        RewardParams {
            credit: Credit::Copy,
            gamma: 0.9,
            prm_coef: 1.0,
            reask_threshold: 0.5,
        }
    }
}

/// Why a tool result counts as failed, or `None` when it succeeded.
///
/// In order: `tool_is_error` (ingest sets it from `isError`, a failed
/// `details.status` or a non-zero `details.exitCode`); a `tool_status` in
/// [`FAILED_TOOL_STATUSES`]; an `error`; a non-zero exit code in the last
/// 400 bytes of the text (`exited with code N`, `exit code: N`, `exit status N`);
/// a first line that is an error (`error:`, `Traceback`, `ENOENT`, `EACCES`,
/// `command not found`, `No such file or directory`, `Permission denied`).
/// Only the first line is matched for error words, so a file that merely
/// contains the word "error" is not a failure.
pub fn tool_failure(result: &TranscriptEvent) -> Option<String> {
    let status = result.tool_status.as_deref().unwrap_or("");
    if result.tool_is_error == Some(true) {
        return Some(format!("tool_is_error (status {status})"));
    }
    if FAILED_TOOL_STATUSES.contains(&status) {
        return Some(format!("status {status}"));
    }
    if result.error.is_some() {
        return Some("error field set".into());
    }
    static EXIT: OnceLock<Option<Regex>> = OnceLock::new();
    static FIRST_LINE: OnceLock<Option<Regex>> = OnceLock::new();
    let text = result.text_or_empty();
    let mut tail_start = text.len().saturating_sub(400);
    while !text.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    let exit = EXIT.get_or_init(|| {
        Regex::new(r"(?i)(exited with code|exit code:?|exit status)\s*(-?[1-9][0-9]*)").ok()
    });
    if let Some(found) = exit
        .as_ref()
        .and_then(|re| re.captures(&text[tail_start..]))
    {
        return Some(format!("exit code {}", &found[2]));
    }
    let first_line = text.trim_start().lines().next().unwrap_or("");
    let error_line = FIRST_LINE.get_or_init(|| {
        Regex::new(r"(?i)^(error\b|fatal\b|traceback \(most recent call last\))|ENOENT|EACCES|command not found|no such file or directory|permission denied").ok()
    });
    if let Some(found) = error_line.as_ref().and_then(|re| re.find(first_line)) {
        return Some(format!("error text \"{}\"", found.as_str()));
    }
    None
}

/// Whether tool arguments are well-formed: absent, a JSON object, or a JSON
/// string that holds an object. Returns the problem otherwise.
pub fn malformed_args(args: Option<&str>) -> Option<String> {
    let args = args?;
    match serde_json::from_str::<Value>(args) {
        Ok(Value::Object(_)) => None,
        Ok(Value::String(inner)) => match serde_json::from_str::<Value>(&inner) {
            Ok(Value::Object(_)) => None,
            _ => Some("arguments are a string that is not a JSON object".into()),
        },
        Ok(other) => Some(format!("arguments are a JSON {}", json_type(&other))),
        Err(e) => Some(format!("arguments are not JSON ({})", e.classify_name())),
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Eof => "truncated",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "data error",
            serde_json::error::Category::Io => "io error",
        }
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The comparable identity of a tool call: name and arguments as JSON
/// (object key order ignored), else the raw text.
fn call_identity(call: &TranscriptEvent) -> (Option<&str>, Result<Value, &str>) {
    let args = call.tool_args.as_deref().unwrap_or("{}");
    (
        call.tool_name.as_deref(),
        serde_json::from_str::<Value>(args).map_err(|_| args),
    )
}

/// A signal that fired, before it becomes a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    pub signal: &'static str,
    pub value: f64,
    pub weight: f64,
    pub evidence: String,
    pub event_ids: Vec<String>,
}

fn fired(signal: ProcessSignal, value: f64, evidence: String, ids: Vec<String>) -> Fired {
    Fired {
        signal: signal.name(),
        value,
        weight: signal.weight(),
        evidence,
        event_ids: ids,
    }
}

/// Annotations by subject, parsed from `annotation` events.
#[derive(Debug, Clone, Default)]
pub struct Annotations {
    /// turn id → (score, evidence, annotation event id) of judge annotations.
    pub judge: HashMap<String, Vec<(f64, String, String)>>,
    /// turn id or LLM call event id → (score, annotation event id) of feedback.
    pub feedback: HashMap<String, Vec<(f64, String)>>,
}

impl Annotations {
    /// Reads `annotation` side events. Attributes of a judge annotation:
    /// `{"type":"judge","turn_id","judge_model","prompt_version","votes","score"}`;
    /// of explicit feedback: `{"type":"feedback","turn_id"|"event_id","score"}`.
    /// Anything else is ignored.
    pub fn from_side_events(side: &[SideEvent]) -> Annotations {
        let mut out = Annotations::default();
        for event in side.iter().filter(|e| e.kind == "annotation") {
            let Some(attributes) = event
                .attributes
                .as_deref()
                .and_then(|a| serde_json::from_str::<Value>(a).ok())
            else {
                continue;
            };
            let Some(score) = attributes.get("score").and_then(Value::as_f64) else {
                continue;
            };
            let score = score.clamp(-1.0, 1.0);
            let text = |key: &str| {
                attributes
                    .get(key)
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            match attributes.get("type").and_then(Value::as_str) {
                Some("judge") => {
                    if let Some(turn) = text("turn_id") {
                        let evidence = format!(
                            "judge {} ({}), votes {}",
                            text("judge_model").unwrap_or_default(),
                            text("prompt_version").unwrap_or_default(),
                            attributes.get("votes").cloned().unwrap_or(Value::Null)
                        );
                        out.judge.entry(turn).or_default().push((
                            score,
                            evidence,
                            event.event_id.clone(),
                        ));
                    }
                }
                Some("feedback") => {
                    if let Some(subject) = text("turn_id").or_else(|| text("event_id")) {
                        out.feedback
                            .entry(subject)
                            .or_default()
                            .push((score, event.event_id.clone()));
                    }
                }
                _ => {}
            }
        }
        out
    }
}

/// What the process-signal detectors read: one LLM call (a step) of a turn,
/// with the session's fallback decisions, the annotations and the parameters.
pub struct Step<'a> {
    pub session: &'a Session,
    pub turn: &'a Turn,
    /// Position of the call in `session.events`.
    pub call: usize,
    /// Positions of the call's tool calls, in order.
    pub tool_calls: Vec<usize>,
    /// The tool calls that have a result: (tool call, result, why the result
    /// failed by [`tool_failure`]), in order. Read once for `tool_error` and
    /// `tool_success`.
    pub results: Vec<(usize, usize, Option<String>)>,
    /// Whether this is the turn's last LLM call, the one the next user
    /// message (and a judge of the turn) speaks about.
    pub is_last_call: bool,
    /// The session's fallback decisions.
    pub decisions: &'a [&'a SideEvent],
    pub annotations: &'a Annotations,
    pub params: &'a RewardParams,
}

impl<'a> Step<'a> {
    /// The step of the LLM call at position `call` of `turn`.
    pub fn new(
        session: &'a Session,
        turn: &'a Turn,
        call: usize,
        decisions: &'a [&'a SideEvent],
        annotations: &'a Annotations,
        params: &'a RewardParams,
    ) -> Step<'a> {
        let tool_calls = turn.tool_calls_of(session, call);
        let results = tool_calls
            .iter()
            .filter_map(|&c| {
                let r = turn.result_of(session, c)?;
                Some((c, r, tool_failure(&session.events[r])))
            })
            .collect();
        Step {
            session,
            turn,
            call,
            tool_calls,
            results,
            is_last_call: turn.llm_calls(session).last() == Some(call),
            decisions,
            annotations,
            params,
        }
    }

    /// The LLM call's event.
    fn event(&self) -> &'a TranscriptEvent {
        &self.session.events[self.call]
    }

    /// The event id at position `i`.
    fn id(&self, i: usize) -> String {
        self.session.events[i].event_id.clone()
    }

    /// The name of the tool call at position `c` (`tool` when it has none).
    fn tool_name(&self, c: usize) -> &'a str {
        self.session.events[c]
            .tool_name
            .as_deref()
            .unwrap_or("tool")
    }

    /// The next user message, when this is the turn's last call.
    fn next_user(&self) -> Option<usize> {
        self.turn.next_user.filter(|_| self.is_last_call)
    }
}

/// A process-signal detector: the signal's row for a step, if it fires.
type StepDetector = fn(&Step) -> Option<Fired>;

/// Every process-signal detector, in the order their rows are written
/// (`docs/datasets.md`, "Process signals"). `explicit_feedback` has two: the
/// next user message as a reaction, and feedback annotations.
const STEP_DETECTORS: [StepDetector; 14] = [
    tool_error,
    tool_success,
    malformed_tool_args,
    repeated_call,
    call_aborted,
    call_truncated,
    call_error,
    fallback,
    user_reask,
    user_correction,
    user_thanks,
    reaction_feedback,
    annotated_feedback,
    judge,
];

/// The process signals of the LLM call at position `call` of `turn`.
/// `decisions` are the session's fallback decisions.
pub fn step_signals(
    session: &Session,
    turn: &Turn,
    call: usize,
    decisions: &[&SideEvent],
    annotations: &Annotations,
    params: &RewardParams,
) -> Vec<Fired> {
    let step = Step::new(session, turn, call, decisions, annotations, params);
    STEP_DETECTORS
        .iter()
        .filter_map(|detect| detect(&step))
        .collect()
}

/// `tool_error`: a result of the call's tool calls failed ([`tool_failure`]).
fn tool_error(step: &Step) -> Option<Fired> {
    let failures: Vec<(usize, String)> = step
        .results
        .iter()
        .filter_map(|(c, r, why)| Some((*r, format!("{}: {}", step.tool_name(*c), why.as_ref()?))))
        .collect();
    if failures.is_empty() {
        return None;
    }
    let evidence = failures
        .iter()
        .map(|(_, w)| w.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let mut ids = vec![step.id(step.call)];
    ids.extend(failures.iter().map(|(r, _)| step.id(*r)));
    Some(fired(ProcessSignal::ToolError, -1.0, evidence, ids))
}

/// `tool_success`: the call made tool calls, each has a result, none failed.
fn tool_success(step: &Step) -> Option<Fired> {
    let all_answered = !step.tool_calls.is_empty() && step.results.len() == step.tool_calls.len();
    let none_failed = step.results.iter().all(|(_, _, why)| why.is_none());
    if !(all_answered && none_failed) {
        return None;
    }
    let mut ids = vec![step.id(step.call)];
    ids.extend(step.results.iter().map(|(_, r, _)| step.id(*r)));
    Some(fired(
        ProcessSignal::ToolSuccess,
        1.0,
        format!("{} tool result(s), none failed", step.results.len()),
        ids,
    ))
}

/// `malformed_tool_args`: the first tool call whose arguments are not a JSON
/// object ([`malformed_args`]).
fn malformed_tool_args(step: &Step) -> Option<Fired> {
    step.tool_calls.iter().find_map(|&c| {
        let problem = malformed_args(step.session.events[c].tool_args.as_deref())?;
        Some(fired(
            ProcessSignal::MalformedToolArgs,
            -1.0,
            format!("{}: {problem}", step.tool_name(c)),
            vec![step.id(step.call), step.id(c)],
        ))
    })
}

/// `repeated_call`: a tool call of the call identical to the turn's previous
/// tool call (a loop).
fn repeated_call(step: &Step) -> Option<Fired> {
    let events = &step.session.events;
    let all_calls: Vec<usize> = step
        .turn
        .events
        .iter()
        .copied()
        .filter(|&i| events[i].kind == "tool_call")
        .collect();
    step.tool_calls.iter().find_map(|&c| {
        let k = all_calls.iter().position(|&x| x == c)?;
        let previous = *all_calls.get(k.checked_sub(1)?)?;
        (call_identity(&events[previous]) == call_identity(&events[c])).then(|| {
            fired(
                ProcessSignal::RepeatedCall,
                -1.0,
                format!(
                    "{} called again with identical arguments",
                    step.tool_name(c)
                ),
                vec![step.id(step.call), step.id(previous), step.id(c)],
            )
        })
    })
}

/// `call_aborted`: `stop_reason = 'aborted'`.
fn call_aborted(step: &Step) -> Option<Fired> {
    (step.event().stop_reason.as_deref() == Some("aborted")).then(|| {
        fired(
            ProcessSignal::CallAborted,
            -1.0,
            "stop_reason aborted".into(),
            vec![step.id(step.call)],
        )
    })
}

/// `call_truncated`: `stop_reason = 'length'`.
fn call_truncated(step: &Step) -> Option<Fired> {
    (step.event().stop_reason.as_deref() == Some("length")).then(|| {
        fired(
            ProcessSignal::CallTruncated,
            -1.0,
            "stop_reason length".into(),
            vec![step.id(step.call)],
        )
    })
}

/// `call_error`: a failed call whose stop reason is neither `aborted` nor
/// `length` (those have their own signals).
fn call_error(step: &Step) -> Option<Fired> {
    let event = step.event();
    let stop = event.stop_reason.as_deref();
    (event.is_failed_call() && !matches!(stop, Some("aborted" | "length"))).then(|| {
        fired(
            ProcessSignal::CallError,
            -1.0,
            format!("stop_reason {}", stop.unwrap_or("none")),
            vec![step.id(step.call)],
        )
    })
}

/// `fallback`: after a failed call, the next event of the turn naming a model
/// (an LLM call, a model change or a `model-snapshot`) names another one
/// (−1 local → cloud, else −0.5); else a fallback decision of the session
/// within 2 minutes of the call and the turn (−0.5).
fn fallback(step: &Step) -> Option<Fired> {
    let events = &step.session.events;
    let event = step.event();
    if !event.is_failed_call() {
        return None;
    }
    let label = |e: &TranscriptEvent| {
        format!(
            "{} {}/{}",
            e.locality.as_deref().unwrap_or("unknown"),
            e.provider.as_deref().unwrap_or("?"),
            e.model.as_deref().unwrap_or("?")
        )
    };
    let next = step
        .turn
        .events
        .iter()
        .copied()
        .skip_while(|&i| i != step.call)
        .skip(1)
        .find(|&i| {
            let e = &events[i];
            e.provider.is_some()
                && (matches!(e.kind.as_str(), "llm_call" | "model_change")
                    || (e.kind == "custom" && e.role.as_deref() == Some("model-snapshot")))
        });
    let switched = next.filter(|&n| {
        (events[n].provider.as_deref(), events[n].model.as_deref())
            != (event.provider.as_deref(), event.model.as_deref())
    });
    if let Some(n) = switched {
        let to_cloud = event.locality.as_deref() == Some("local")
            && events[n].locality.as_deref() == Some("cloud");
        return Some(fired(
            ProcessSignal::Fallback,
            if to_cloud { -1.0 } else { -0.5 },
            format!("{} -> {}", label(event), label(&events[n])),
            vec![step.id(step.call), step.id(n)],
        ));
    }
    let window_end = step
        .turn
        .events
        .iter()
        .map(|&i| events[i].ts_us)
        .max()
        .unwrap_or(event.ts_us);
    let decision = step.decisions.iter().find(|d| {
        matches!(
            d.decision.as_deref(),
            Some("fallback_model" | "candidate_failed" | "next_fallback")
        ) && d.ts_us >= event.ts_us - 120_000_000
            && d.ts_us <= window_end + 120_000_000
            && (d.requested_provider.is_none() || d.requested_provider == event.provider)
    })?;
    Some(fired(
        ProcessSignal::Fallback,
        -0.5,
        format!(
            "{} -> fallback decision {} (next {}/{})",
            label(event),
            decision.decision.as_deref().unwrap_or("?"),
            decision.next_provider.as_deref().unwrap_or("?"),
            decision.next_model.as_deref().unwrap_or("?")
        ),
        vec![step.id(step.call), decision.event_id.clone()],
    ))
}

/// A signal the next user message gives a turn's last call: `reads` gets
/// (prompt, reply) and returns the value and evidence when `signal` fires.
fn next_user_signal(
    step: &Step,
    signal: ProcessSignal,
    reads: impl Fn(&str, &str) -> Option<(f64, String)>,
) -> Option<Fired> {
    let next = step.next_user()?;
    let events = &step.session.events;
    let prompt = events[step.turn.user()].text_or_empty();
    let reply = events[next].text_or_empty();
    let (value, evidence) = reads(prompt, reply)?;
    Some(fired(
        signal,
        value,
        evidence,
        vec![step.id(step.call), step.id(next)],
    ))
}

/// `user_reask`: the next user message repeats the prompt (word-shingle
/// Jaccard ≥ the re-ask threshold).
fn user_reask(step: &Step) -> Option<Fired> {
    let threshold = step.params.reask_threshold;
    next_user_signal(step, ProcessSignal::UserReask, |prompt, reply| {
        let similarity = jaccard(prompt, reply, REASK_SHINGLE_WORDS);
        (similarity >= threshold).then(|| {
            (
                -1.0,
                format!(
                    "next user message Jaccard {similarity:.2} >= {threshold:.2} with the prompt"
                ),
            )
        })
    })
}

/// `user_correction`: the next user message corrects ([`is_correction`]).
fn user_correction(step: &Step) -> Option<Fired> {
    next_user_signal(step, ProcessSignal::UserCorrection, |_, reply| {
        is_correction(reply).then(|| (-1.0, "next user message is a correction".into()))
    })
}

/// `user_thanks`: the next user message thanks or approves ([`is_thanks`]).
fn user_thanks(step: &Step) -> Option<Fired> {
    next_user_signal(step, ProcessSignal::UserThanks, |_, reply| {
        is_thanks(reply).then(|| (1.0, "next user message thanks or approves".into()))
    })
}

/// `explicit_feedback` from the next user message when it is only a
/// reaction (👍/👎, `+1`/`-1`, …: [`explicit_feedback`]).
fn reaction_feedback(step: &Step) -> Option<Fired> {
    next_user_signal(step, ProcessSignal::ExplicitFeedback, |_, reply| {
        explicit_feedback(reply).map(|value| (value, "next user message is a reaction".into()))
    })
}

/// `explicit_feedback` from `feedback` annotations naming the call, or the
/// turn for its last call: the mean of their scores.
fn annotated_feedback(step: &Step) -> Option<Fired> {
    let on_call = step.annotations.feedback.get(&step.event().event_id);
    let on_turn = step
        .annotations
        .feedback
        .get(&step.turn.turn_id)
        .filter(|_| step.is_last_call);
    let feedback: Vec<&(f64, String)> = on_call.into_iter().chain(on_turn).flatten().collect();
    if feedback.is_empty() {
        return None;
    }
    let value = feedback.iter().map(|f| f.0).sum::<f64>() / feedback.len() as f64;
    let mut ids = vec![step.id(step.call)];
    ids.extend(feedback.iter().map(|f| f.1.clone()));
    Some(fired(
        ProcessSignal::ExplicitFeedback,
        value,
        format!("{} feedback annotation(s)", feedback.len()),
        ids,
    ))
}

/// `judge`: the mean score of the turn's judge annotations, on its last call.
fn judge(step: &Step) -> Option<Fired> {
    if !step.is_last_call {
        return None;
    }
    let votes = step
        .annotations
        .judge
        .get(&step.turn.turn_id)
        .filter(|v| !v.is_empty())?;
    let value = votes.iter().map(|v| v.0).sum::<f64>() / votes.len() as f64;
    let mut ids = vec![step.id(step.call)];
    ids.extend(votes.iter().map(|v| v.2.clone()));
    let evidence = votes
        .iter()
        .map(|v| v.1.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    Some(fired(ProcessSignal::Judge, value, evidence, ids))
}

/// The outcome signals of a trajectory. `cron` is the session's latest cron
/// run when this is the session's last active-branch trajectory.
pub fn outcome_signals(
    session: &Session,
    turns: &[&Turn],
    cron: Option<&SideEvent>,
    params: &RewardParams,
) -> Vec<Fired> {
    let mut out = Vec::new();
    let Some(last) = turns.last() else {
        return out;
    };
    let events = &session.events;
    let id = |i: usize| events[i].event_id.clone();
    let outcome = |signal: OutcomeSignal, value: f64, evidence: String, ids: Vec<String>| Fired {
        signal: signal.name(),
        value,
        weight: signal.weight(),
        evidence,
        event_ids: ids,
    };
    let status = final_status(session, last);
    let value = match status {
        "completed" => 0.5,
        "truncated" | "incomplete" => -0.5,
        _ => -1.0,
    };
    let last_event = last.events.last().copied().unwrap_or(last.user());
    out.push(outcome(
        OutcomeSignal::FinalStatus,
        value,
        format!("final status {status}"),
        vec![id(last_event)],
    ));
    let last_result = turns
        .iter()
        .rev()
        .flat_map(|t| t.events.iter().rev().copied())
        .find(|&i| events[i].kind == "tool_result");
    if let Some(r) = last_result {
        let (value, evidence) = match tool_failure(&events[r]) {
            Some(why) => (-1.0, format!("last tool result failed: {why}")),
            None => (1.0, "last tool result succeeded".to_string()),
        };
        out.push(outcome(
            OutcomeSignal::LastToolResult,
            value,
            evidence,
            vec![id(r)],
        ));
    }
    if let Some(next) = last.next_user {
        let reply = events[next].text_or_empty();
        let prompt = events[last.user()].text_or_empty();
        let (value, evidence) = if let Some(v) = explicit_feedback(reply) {
            (v, "reaction")
        } else if is_correction(reply) {
            (-1.0, "correction")
        } else if jaccard(prompt, reply, REASK_SHINGLE_WORDS) >= params.reask_threshold {
            (-1.0, "re-ask")
        } else if is_thanks(reply) {
            (1.0, "thanks")
        } else {
            (0.25, "user moved on")
        };
        out.push(outcome(
            OutcomeSignal::NextUserMessage,
            value,
            format!("next user message: {evidence}"),
            vec![id(next)],
        ));
    }
    if let Some(run) = cron {
        let status = run.status.as_deref().unwrap_or("");
        let value = match status {
            "ok" | "success" | "succeeded" => Some(1.0),
            "error" | "failed" | "timeout" | "timed_out" => Some(-1.0),
            _ => None,
        };
        if let Some(value) = value {
            out.push(outcome(
                OutcomeSignal::CronRun,
                value,
                format!("cron run status {status}"),
                vec![run.event_id.clone()],
            ));
        }
    }
    out
}

/// `clamp(Σ weight·value, −1, 1)`; 0 for no signal.
pub fn weighted_score(signals: &[Fired]) -> f64 {
    signals
        .iter()
        .map(|s| s.weight * s.value)
        .sum::<f64>()
        .clamp(-1.0, 1.0)
}

/// Step rewards of a trajectory with `T = process.len()` steps and outcome
/// `outcome`: `copy`/`grpo` `o + c·p_t`, `discount` `o·γ^(T−1−t) + c·p_t`.
pub fn step_rewards(outcome: f64, process: &[f64], params: &RewardParams) -> Vec<f64> {
    let steps = process.len();
    process
        .iter()
        .enumerate()
        .map(|(t, p)| {
            let credit = match params.credit {
                Credit::Discount => outcome * params.gamma.powi((steps - 1 - t) as i32),
                Credit::Copy | Credit::Grpo => outcome,
            };
            credit + params.prm_coef * p
        })
        .collect()
}

/// Trajectory reward `R = o + c·mean(p)`.
pub fn trajectory_reward(outcome: f64, process: &[f64], params: &RewardParams) -> f64 {
    let mean = if process.is_empty() {
        0.0
    } else {
        process.iter().sum::<f64>() / process.len() as f64
    };
    outcome + params.prm_coef * mean
}

/// ε of the GRPO normalisation.
pub const GRPO_EPS: f64 = 1e-6;

/// GRPO advantages `(r − mean)/(std + ε)` (population std) of one group;
/// `None` for every member when the group has fewer than 2 members or zero
/// variance.
pub fn group_advantages(rewards: &[f64]) -> Vec<Option<f64>> {
    let n = rewards.len();
    if n < 2 {
        return vec![None; n];
    }
    let mean = rewards.iter().sum::<f64>() / n as f64;
    let std = (rewards.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
    if std == 0.0 {
        return vec![None; n];
    }
    rewards
        .iter()
        .map(|r| Some((r - mean) / (std + GRPO_EPS)))
        .collect()
}

/// One row of the `rewards` table.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardRow {
    pub reward_id: String,
    pub level: &'static str,
    pub subject_kind: &'static str,
    pub subject_id: String,
    pub session_id: String,
    pub turn_id: Option<String>,
    pub trajectory_id: Option<String>,
    pub signal: String,
    pub value: f64,
    pub weight: f64,
    pub evidence: String,
    pub credit_assignment: Option<&'static str>,
    pub advantage: Option<f64>,
    pub event_ids: Vec<String>,
}

/// What the reward rules read besides the transcript, indexed by session:
/// fallback decisions, the latest cron run, annotations.
struct SideIndex<'a> {
    annotations: Annotations,
    decisions: HashMap<&'a str, Vec<&'a SideEvent>>,
    /// The latest `cron_run` of each session (side events are sorted by time).
    cron: HashMap<&'a str, &'a SideEvent>,
}

impl<'a> SideIndex<'a> {
    fn new(side_events: &'a [SideEvent]) -> SideIndex<'a> {
        let mut decisions: HashMap<&str, Vec<&SideEvent>> = HashMap::new();
        let mut cron: HashMap<&str, &SideEvent> = HashMap::new();
        for event in side_events {
            let Some(session) = event.session_id.as_deref() else {
                continue;
            };
            match event.kind.as_str() {
                "fallback_decision" => decisions.entry(session).or_default().push(event),
                "cron_run" => {
                    cron.insert(session, event);
                }
                _ => {}
            }
        }
        SideIndex {
            annotations: Annotations::from_side_events(side_events),
            decisions,
            cron,
        }
    }
}

/// Each step's process score `p_t` and the events behind its rows, by
/// (session position, call position).
type StepScores = HashMap<(usize, usize), (f64, Vec<String>)>;

/// The process rows of every LLM call of every turn, and the step scores.
fn process_rows(
    sessions: &[Session],
    turns: &[SessionTurns],
    trajectory_of_turn: &HashMap<(usize, usize), &str>,
    side: &SideIndex,
    params: &RewardParams,
    rows: &mut Vec<RewardRow>,
) -> StepScores {
    let mut step_score = StepScores::new();
    for (s, session) in sessions.iter().enumerate() {
        let session_decisions = side
            .decisions
            .get(session.session_id.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for (turn_pos, turn) in turns[s].turns.iter().enumerate() {
            for call in turn.llm_calls(session) {
                let signals = step_signals(
                    session,
                    turn,
                    call,
                    session_decisions,
                    &side.annotations,
                    params,
                );
                let mut ids: BTreeSet<String> =
                    BTreeSet::from([session.events[call].event_id.clone()]);
                for f in &signals {
                    ids.extend(f.event_ids.iter().cloned());
                }
                step_score.insert(
                    (s, call),
                    (weighted_score(&signals), ids.into_iter().collect()),
                );
                let subject = session.events[call].event_id.clone();
                for f in signals {
                    rows.push(RewardRow {
                        reward_id: stable_id(&["process", &subject, f.signal]),
                        level: "process",
                        subject_kind: "llm_call",
                        subject_id: subject.clone(),
                        session_id: session.session_id.clone(),
                        turn_id: Some(turn.turn_id.clone()),
                        trajectory_id: trajectory_of_turn
                            .get(&(s, turn_pos))
                            .map(|t| t.to_string()),
                        signal: f.signal.to_string(),
                        value: f.value,
                        weight: f.weight,
                        evidence: f.evidence,
                        credit_assignment: None,
                        advantage: None,
                        event_ids: f.event_ids,
                    });
                }
            }
        }
    }
    step_score
}

/// A trajectory's outcome, its steps' process scores and its reward `R`.
struct Scored {
    outcome: f64,
    outcome_ids: Vec<String>,
    /// (call position, `p_t`) in order.
    steps: Vec<(usize, f64)>,
    reward: f64,
    /// Set by [`trajectory_advantages`].
    advantage: Option<f64>,
}

/// The outcome rows of every trajectory, and each one's [`Scored`].
fn outcome_rows(
    sessions: &[Session],
    turns: &[SessionTurns],
    trajectories: &[Trajectory],
    side: &SideIndex,
    step_score: &StepScores,
    params: &RewardParams,
    rows: &mut Vec<RewardRow>,
) -> Vec<Scored> {
    // The last active-branch trajectory of each session gets its cron run.
    let mut last_active: HashMap<usize, usize> = HashMap::new();
    for (k, t) in trajectories.iter().enumerate() {
        if t.on_active_branch {
            last_active.insert(t.session, k);
        }
    }
    let mut scored = Vec::with_capacity(trajectories.len());
    for (k, t) in trajectories.iter().enumerate() {
        let session = &sessions[t.session];
        let turn_refs: Vec<&Turn> = t
            .turns
            .iter()
            .map(|&i| &turns[t.session].turns[i])
            .collect();
        let cron_run = (last_active.get(&t.session) == Some(&k))
            .then(|| side.cron.get(session.session_id.as_str()).copied())
            .flatten();
        let signals = outcome_signals(session, &turn_refs, cron_run, params);
        let outcome = weighted_score(&signals);
        let mut outcome_ids = BTreeSet::new();
        for f in signals {
            outcome_ids.extend(f.event_ids.iter().cloned());
            rows.push(RewardRow {
                reward_id: stable_id(&["outcome", &t.trajectory_id, f.signal]),
                level: "outcome",
                subject_kind: "trajectory",
                subject_id: t.trajectory_id.clone(),
                session_id: session.session_id.clone(),
                turn_id: None,
                trajectory_id: Some(t.trajectory_id.clone()),
                signal: f.signal.to_string(),
                value: f.value,
                weight: f.weight,
                evidence: f.evidence,
                credit_assignment: None,
                advantage: None,
                event_ids: f.event_ids,
            });
        }
        let steps: Vec<(usize, f64)> = turn_refs
            .iter()
            .flat_map(|turn| turn.llm_calls(session).collect::<Vec<_>>())
            .map(|call| {
                let p = step_score.get(&(t.session, call)).map(|s| s.0);
                (call, p.unwrap_or(0.0))
            })
            .collect();
        let process: Vec<f64> = steps.iter().map(|s| s.1).collect();
        scored.push(Scored {
            outcome,
            outcome_ids: outcome_ids.into_iter().collect(),
            reward: trajectory_reward(outcome, &process, params),
            steps,
            advantage: None,
        });
    }
    scored
}

/// Each trajectory's advantage: its reward, or with `grpo` credit the
/// group-normalised reward over the trajectories sharing a prompt hash.
fn trajectory_advantages(
    sessions: &[Session],
    turns: &[SessionTurns],
    trajectories: &[Trajectory],
    scored: &[Scored],
    params: &RewardParams,
) -> Vec<Option<f64>> {
    let mut advantages: Vec<Option<f64>> = scored.iter().map(|s| Some(s.reward)).collect();
    if params.credit != Credit::Grpo {
        return advantages;
    }
    let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
    for (k, t) in trajectories.iter().enumerate() {
        let session = &sessions[t.session];
        let first = &turns[t.session].turns[t.turns[0]];
        groups
            .entry(prompt_hash(session.events[first.user()].text_or_empty()))
            .or_default()
            .push(k);
    }
    for members in groups.values() {
        let rewards: Vec<f64> = members.iter().map(|&k| scored[k].reward).collect();
        for (&k, advantage) in members.iter().zip(group_advantages(&rewards)) {
            advantages[k] = advantage;
        }
    }
    advantages
}

/// The combined rows of one trajectory: one per step (`r_t` with the credit
/// assignment) and one for the trajectory (`R`).
fn combined_rows(
    session: &Session,
    session_turns: &SessionTurns,
    t: &Trajectory,
    score: &Scored,
    step_score: &StepScores,
    params: &RewardParams,
    rows: &mut Vec<RewardRow>,
) {
    let credit = params.credit.name();
    let mut all_ids: BTreeSet<String> = score.outcome_ids.iter().cloned().collect();
    let process: Vec<f64> = score.steps.iter().map(|s| s.1).collect();
    let rewards = step_rewards(score.outcome, &process, params);
    for (&(call, p), reward) in score.steps.iter().zip(rewards) {
        let subject = session.events[call].event_id.clone();
        let mut ids: BTreeSet<String> = score.outcome_ids.iter().cloned().collect();
        if let Some((_, step_ids)) = step_score.get(&(t.session, call)) {
            ids.extend(step_ids.iter().cloned());
        }
        all_ids.extend(ids.iter().cloned());
        let turn_id = t
            .turns
            .iter()
            .map(|&i| &session_turns.turns[i])
            .find(|turn| turn.events.contains(&call))
            .map(|turn| turn.turn_id.clone());
        rows.push(RewardRow {
            reward_id: stable_id(&["combined", &t.trajectory_id, &subject]),
            level: "combined",
            subject_kind: "llm_call",
            subject_id: subject,
            session_id: session.session_id.clone(),
            turn_id,
            trajectory_id: Some(t.trajectory_id.clone()),
            signal: "combined".into(),
            value: reward,
            weight: 1.0,
            evidence: format!("outcome {:.3}, process {p:.3}", score.outcome),
            credit_assignment: Some(credit),
            advantage: if params.credit == Credit::Grpo {
                score.advantage
            } else {
                Some(reward)
            },
            event_ids: ids.into_iter().collect(),
        });
    }
    rows.push(RewardRow {
        reward_id: stable_id(&["combined", &t.trajectory_id]),
        level: "combined",
        subject_kind: "trajectory",
        subject_id: t.trajectory_id.clone(),
        session_id: session.session_id.clone(),
        turn_id: None,
        trajectory_id: Some(t.trajectory_id.clone()),
        signal: "combined".into(),
        value: score.reward,
        weight: 1.0,
        evidence: format!(
            "outcome {:.3} + {} x mean process over {} step(s)",
            score.outcome,
            params.prm_coef,
            score.steps.len()
        ),
        credit_assignment: Some(credit),
        advantage: score.advantage,
        event_ids: all_ids.into_iter().collect(),
    });
}

/// Computes every reward row: process rows for every LLM call of every turn
/// (once per call), outcome and combined rows for every trajectory.
pub fn compute_rewards(
    sessions: &[Session],
    turns: &[SessionTurns],
    trajectories: &[Trajectory],
    side_events: &[SideEvent],
    params: &RewardParams,
) -> Vec<RewardRow> {
    let side = SideIndex::new(side_events);
    // The first trajectory of each turn.
    let mut trajectory_of_turn: HashMap<(usize, usize), &str> = HashMap::new();
    for t in trajectories {
        for &turn in &t.turns {
            trajectory_of_turn
                .entry((t.session, turn))
                .or_insert(t.trajectory_id.as_str());
        }
    }
    let mut rows = Vec::new();
    let step_score = process_rows(
        sessions,
        turns,
        &trajectory_of_turn,
        &side,
        params,
        &mut rows,
    );
    let mut scored = outcome_rows(
        sessions,
        turns,
        trajectories,
        &side,
        &step_score,
        params,
        &mut rows,
    );
    let advantages = trajectory_advantages(sessions, turns, trajectories, &scored, params);
    for (score, advantage) in scored.iter_mut().zip(advantages) {
        score.advantage = advantage;
    }
    for (t, score) in trajectories.iter().zip(&scored) {
        combined_rows(
            &sessions[t.session],
            &turns[t.session],
            t,
            score,
            &step_score,
            params,
            &mut rows,
        );
    }
    rows
}

/// Schema of the `rewards` table (columns documented in `docs/datasets.md`).
pub fn rewards_schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("reward_id", false),
        text("level", false),
        text("subject_kind", false),
        text("subject_id", false),
        text("session_id", false),
        text("turn_id", true),
        text("trajectory_id", true),
        text("signal", false),
        Field::new("value", DataType::Float64, false),
        Field::new("weight", DataType::Float64, false),
        text("method_version", false),
        text("evidence", false),
        text("credit_assignment", true),
        Field::new("advantage", DataType::Float64, true),
        event_ids_field(),
        Field::new("events_version", DataType::Int64, false),
    ]))
}

/// The rows as one batch of [`rewards_schema`].
///
/// Errors: [`DeriveError::Arrow`] if the columns do not fit the schema.
pub fn rewards_batch(rows: &[RewardRow], events_version: u64) -> Result<RecordBatch, DeriveError> {
    let columns = vec![
        utf8(rows.iter().map(|r| Some(r.reward_id.as_str()))),
        utf8(rows.iter().map(|r| Some(r.level))),
        utf8(rows.iter().map(|r| Some(r.subject_kind))),
        utf8(rows.iter().map(|r| Some(r.subject_id.as_str()))),
        utf8(rows.iter().map(|r| Some(r.session_id.as_str()))),
        utf8(rows.iter().map(|r| r.turn_id.as_deref())),
        utf8(rows.iter().map(|r| r.trajectory_id.as_deref())),
        utf8(rows.iter().map(|r| Some(r.signal.as_str()))),
        float64(rows.iter().map(|r| Some(r.value))),
        float64(rows.iter().map(|r| Some(r.weight))),
        utf8(rows.iter().map(|_| Some(REWARDS_METHOD_VERSION))),
        utf8(rows.iter().map(|r| Some(r.evidence.as_str()))),
        utf8(rows.iter().map(|r| r.credit_assignment)),
        float64(rows.iter().map(|r| r.advantage)),
        string_lists(rows.iter().map(|r| r.event_ids.iter().map(String::as_str))),
        int64(rows.iter().map(|_| Some(events_version as i64))),
    ];
    Ok(RecordBatch::try_new(rewards_schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::turns::segment;
    use crate::turns::tests::{ev, session};

    fn tool_call(id: &str, call: &str, name: &str, args: &str, seq: i64) -> TranscriptEvent {
        let mut e = ev("tool_call", id, None, seq, "");
        e.event_id = format!("e-{id}-call-{call}");
        e.tool_call_id = Some(call.into());
        e.tool_name = Some(name.into());
        e.tool_args = Some(args.into());
        e
    }

    fn tool_result(id: &str, parent: &str, call: &str, seq: i64, text: &str) -> TranscriptEvent {
        let mut e = ev("tool_result", id, Some(parent), seq, text);
        e.tool_call_id = Some(call.into());
        e.tool_status = Some("ok".into());
        e.tool_is_error = Some(false);
        e
    }

    /// Signal names per LLM call (by entry id) of the session's first branch.
    fn signals(events: Vec<TranscriptEvent>) -> Vec<(String, Vec<&'static str>)> {
        let s = session(events);
        let turns = segment(&s);
        let mut out = Vec::new();
        for turn in &turns.turns {
            for call in turn.llm_calls(&s) {
                let fired = step_signals(
                    &s,
                    turn,
                    call,
                    &[],
                    &Annotations::default(),
                    &RewardParams::default(),
                );
                out.push((
                    s.events[call].entry_id.clone(),
                    fired.iter().map(|f| f.signal).collect(),
                ));
            }
        }
        out
    }

    fn of<'a>(all: &'a [(String, Vec<&'static str>)], entry: &str) -> &'a [&'static str] {
        all.iter()
            .find(|(e, _)| e == entry)
            .map(|(_, s)| s.as_slice())
            .unwrap_or(&[])
    }

    #[test]
    fn tool_errors_come_from_status_exit_codes_and_error_lines_not_only_is_error() {
        let mut status = tool_result("r1", "a1", "c1", 3, "{\"status\":\"error\"}");
        status.tool_status = Some("error".into()); // isError was false
        let exit = tool_result(
            "r2",
            "a2",
            "c2",
            5,
            "(no output)\n\nCommand exited with code 2",
        );
        let first_line = tool_result("r3", "a3", "c3", 7, "ENOENT: no such file or directory");
        let mentions = tool_result("r4", "a4", "c4", 9, "fn main() {}\n// error: handled below");
        let s = signals(vec![
            ev("user_message", "u1", None, 1, "do things"),
            ev("llm_call", "a1", Some("u1"), 2, ""),
            tool_call("a1", "c1", "read", r#"{"path":"x"}"#, 2),
            status,
            ev("llm_call", "a2", Some("r1"), 4, ""),
            tool_call("a2", "c2", "bash", r#"{"command":"false"}"#, 4),
            exit,
            ev("llm_call", "a3", Some("r2"), 6, ""),
            tool_call("a3", "c3", "read", r#"{"path":"y"}"#, 6),
            first_line,
            ev("llm_call", "a4", Some("r3"), 8, ""),
            tool_call("a4", "c4", "read", r#"{"path":"main.rs"}"#, 8),
            mentions,
            ev("llm_call", "a5", Some("r4"), 10, "done"),
        ]);
        assert_eq!(of(&s, "a1"), ["tool_error"]);
        assert_eq!(of(&s, "a2"), ["tool_error"]);
        assert_eq!(of(&s, "a3"), ["tool_error"]);
        // A file that contains the word "error" is not a failure.
        assert_eq!(of(&s, "a4"), ["tool_success"]);
        assert!(of(&s, "a5").is_empty());
    }

    #[test]
    fn malformed_arguments_and_loops_fire_on_the_offending_call_only() {
        let s = signals(vec![
            ev("user_message", "u1", None, 1, "look around"),
            ev("llm_call", "a1", Some("u1"), 2, ""),
            tool_call("a1", "c1", "bash", r#"{"command":"ls","cwd":"/"}"#, 2),
            tool_result("r1", "a1", "c1", 3, "a b"),
            ev("llm_call", "a2", Some("r1"), 4, ""),
            // Same call, keys in another order: a loop.
            tool_call("a2", "c2", "bash", r#"{"cwd":"/","command":"ls"}"#, 4),
            tool_result("r2", "a2", "c2", 5, "a b"),
            ev("llm_call", "a3", Some("r2"), 6, ""),
            tool_call("a3", "c3", "bash", r#"{"command": "ls -l""#, 6),
            tool_result("r3", "a3", "c3", 7, "a b"),
            ev("llm_call", "a4", Some("r3"), 8, ""),
            tool_call("a4", "c4", "bash", r#""{\"command\":\"pwd\"}""#, 8),
            tool_result("r4", "a4", "c4", 9, "/"),
        ]);
        assert_eq!(of(&s, "a1"), ["tool_success"]);
        assert_eq!(of(&s, "a2"), ["tool_success", "repeated_call"]);
        assert_eq!(of(&s, "a3"), ["tool_success", "malformed_tool_args"]);
        // A JSON string holding an object is accepted (some providers send that).
        assert_eq!(of(&s, "a4"), ["tool_success"]);
    }

    #[test]
    fn stop_reasons_and_local_to_cloud_fallback() {
        let mut local = ev("llm_call", "a1", Some("u1"), 2, "");
        local.stop_reason = Some("error".into());
        local.error = Some("fetch failed".into());
        local.provider = Some("ollama".into());
        local.model = Some("qwen3:8b".into());
        local.locality = Some("local".into());
        let mut cloud = ev("llm_call", "a2", Some("a1"), 3, "answer");
        cloud.provider = Some("openai".into());
        cloud.model = Some("gpt-5".into());
        cloud.locality = Some("cloud".into());
        let mut aborted = ev("llm_call", "a3", Some("u2"), 5, "");
        aborted.stop_reason = Some("aborted".into());
        let mut truncated = ev("llm_call", "a4", Some("a3"), 6, "partial");
        truncated.stop_reason = Some("length".into());
        let all = vec![
            ev("user_message", "u1", None, 1, "hi"),
            local,
            cloud,
            ev("user_message", "u2", Some("a2"), 4, "write a long story"),
            aborted,
            truncated,
        ];
        let s = signals(all.clone());
        assert_eq!(of(&s, "a1"), ["call_error", "fallback"]);
        assert!(of(&s, "a2").is_empty());
        assert_eq!(of(&s, "a3"), ["call_aborted"]);
        assert_eq!(of(&s, "a4"), ["call_truncated"]);
        let sess = session(all);
        let turns = segment(&sess);
        let fired = step_signals(
            &sess,
            &turns.turns[0],
            1,
            &[],
            &Annotations::default(),
            &RewardParams::default(),
        );
        let fallback = fired
            .iter()
            .find(|f| f.signal == "fallback")
            .map(|f| f.value);
        assert_eq!(
            fallback,
            Some(-1.0),
            "local -> cloud is the strongest fallback penalty"
        );
    }

    #[test]
    fn the_next_user_message_judges_the_last_call_of_the_turn() {
        let s = signals(vec![
            ev(
                "user_message",
                "u1",
                None,
                1,
                "convert the csv file to json",
            ),
            ev("llm_call", "a1", Some("u1"), 2, "done"),
            ev(
                "user_message",
                "u2",
                Some("a1"),
                3,
                "please convert the csv file to json",
            ),
            ev("llm_call", "a2", Some("u2"), 4, "done again"),
            ev("user_message", "u3", Some("a2"), 5, "no, I meant yaml"),
            ev("llm_call", "a3", Some("u3"), 6, "yaml"),
            ev("user_message", "u4", Some("a3"), 7, "thanks, that worked"),
            ev("llm_call", "a4", Some("u4"), 8, "welcome"),
            ev("user_message", "u5", Some("a4"), 9, "👍"),
            ev("llm_call", "a5", Some("u5"), 10, ":)"),
        ]);
        assert_eq!(of(&s, "a1"), ["user_reask"]);
        assert_eq!(of(&s, "a2"), ["user_correction"]);
        assert_eq!(of(&s, "a3"), ["user_thanks"]);
        assert_eq!(of(&s, "a4"), ["explicit_feedback"]);
        // The last turn has no next state.
        assert!(of(&s, "a5").is_empty());
    }

    #[test]
    fn judge_and_feedback_annotations_become_signals() {
        let s = session(vec![
            ev("user_message", "u1", None, 1, "hello"),
            ev("llm_call", "a1", Some("u1"), 2, "hi"),
        ]);
        let turns = segment(&s);
        let turn_id = turns.turns[0].turn_id.clone();
        let side = vec![
            SideEvent {
                event_id: "j1".into(),
                kind: "annotation".into(),
                attributes: Some(
                    json!({"type":"judge","turn_id":turn_id,"judge_model":"m","prompt_version":"v","votes":[1,1,-1],"score":1})
                        .to_string(),
                ),
                ..SideEvent::default()
            },
            SideEvent {
                event_id: "f1".into(),
                kind: "annotation".into(),
                attributes: Some(json!({"type":"feedback","event_id":"e-a1-llm_call","score":-1}).to_string()),
                ..SideEvent::default()
            },
        ];
        let annotations = Annotations::from_side_events(&side);
        let fired = step_signals(
            &s,
            &turns.turns[0],
            1,
            &[],
            &annotations,
            &RewardParams::default(),
        );
        let by_name: Vec<(&str, f64)> = fired.iter().map(|f| (f.signal, f.value)).collect();
        assert_eq!(by_name, vec![("explicit_feedback", -1.0), ("judge", 1.0)]);
    }

    use serde_json::json;

    #[test]
    fn credit_assignment_formulas() {
        let mut params = RewardParams::default();
        // copy: o + c·p_t
        assert_eq!(step_rewards(1.0, &[0.0, -1.0], &params), vec![1.0, 0.0]);
        // discount: o·γ^(T−1−t) + c·p_t with γ = 0.5, T = 3
        params.credit = Credit::Discount;
        params.gamma = 0.5;
        assert_eq!(
            step_rewards(1.0, &[0.0, 0.0, 1.0], &params),
            vec![0.25, 0.5, 2.0]
        );
        // R = o + c·mean(p)
        params.prm_coef = 2.0;
        assert_eq!(trajectory_reward(0.5, &[1.0, -0.5], &params), 1.0);
        assert_eq!(trajectory_reward(0.5, &[], &params), 0.5);
        // weighted score clamps
        let f = |v: f64, w: f64| Fired {
            signal: "x",
            value: v,
            weight: w,
            evidence: String::new(),
            event_ids: vec![],
        };
        assert_eq!(weighted_score(&[f(-1.0, 1.0), f(-1.0, 1.0)]), -1.0);
        assert_eq!(weighted_score(&[f(1.0, 0.5), f(-1.0, 0.25)]), 0.25);
    }

    #[test]
    fn grpo_advantages_normalise_within_a_group() {
        // mean 0.5, population std 0.5 → ±1 (up to ε).
        let a = group_advantages(&[1.0, 0.0]);
        assert!((a[0].unwrap() - 1.0).abs() < 1e-5 && (a[1].unwrap() + 1.0).abs() < 1e-5);
        // Mean of the advantages is 0 for any group.
        let a: Vec<f64> = group_advantages(&[3.0, 1.0, -2.0])
            .into_iter()
            .flatten()
            .collect();
        assert!(a.iter().sum::<f64>().abs() < 1e-9);
        assert_eq!(group_advantages(&[1.0]), vec![None]);
        assert_eq!(group_advantages(&[0.5, 0.5]), vec![None, None]);
    }

    #[test]
    fn rollouts_of_one_prompt_form_a_grpo_group() {
        // Two regenerations of the same prompt: one ends in an error, one succeeds.
        let mut failed = ev("llm_call", "a1", Some("u1"), 2, "");
        failed.stop_reason = Some("error".into());
        failed.error = Some("boom".into());
        let s = session(vec![
            ev("user_message", "u1", None, 1, "summarise the report"),
            failed,
            ev("llm_call", "a2", Some("u1"), 3, "summary"),
        ]);
        let turns = segment(&s);
        let trajectories =
            crate::trajectories::segment_episodes(0, &s, &turns, &Default::default());
        assert_eq!(trajectories.len(), 2);
        let params = RewardParams {
            credit: Credit::Grpo,
            ..RewardParams::default()
        };
        let rows = compute_rewards(&[s], &[turns], &trajectories, &[], &params);
        let combined: Vec<&RewardRow> = rows
            .iter()
            .filter(|r| r.level == "combined" && r.subject_kind == "trajectory")
            .collect();
        assert_eq!(combined.len(), 2);
        let good = combined
            .iter()
            .find(|r| r.value > 0.0)
            .expect("the success scores higher");
        let bad = combined
            .iter()
            .find(|r| r.value < 0.0)
            .expect("the error scores lower");
        assert!(good.advantage.unwrap() > 0.9 && bad.advantage.unwrap() < -0.9);
        assert!(rows
            .iter()
            .all(|r| r.level != "combined" || r.credit_assignment == Some("grpo")));
    }
}
