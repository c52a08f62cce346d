//! Event kinds and localities: the closed vocabularies of the `kind` and
//! `locality` columns.

use std::fmt;

/// What an event is. Stored as its snake_case name in the `kind` column.
///
/// Source of the transcript kinds: pi's `SessionEntry` union
/// (`packages/coding-agent/src/core/session-manager.ts`) and OpenClaw's
/// additions, as described in `shared/docs/openclaw-formats.md` §1.5–1.8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// The session header (line 1 of a transcript).
    SessionStart,
    /// A `message` entry with role `user`.
    UserMessage,
    /// An assistant message produced by a model: one LLM call, failed or not.
    LlmCall,
    /// An assistant message the gateway wrote itself (provider `openclaw`:
    /// `delivery-mirror`, `gateway-injected`). Not a model call.
    InjectedMessage,
    /// One `toolCall` content block of an assistant message.
    ToolCall,
    /// A `message` entry with role `toolResult`.
    ToolResult,
    /// A user `!command` run by pi (role `bashExecution`).
    BashExecution,
    /// `model_change` entry (the user switched model).
    ModelChange,
    /// `thinking_level_change` entry.
    ThinkingLevelChange,
    /// `compaction` entry: history before `firstKeptEntryId` replaced by a summary.
    Compaction,
    /// `branch_summary` entry, written on `/tree` navigation.
    BranchSummary,
    /// `custom` entry (extension or runtime state, not in the model context).
    Custom,
    /// `custom_message` entry, or a `message` with role `custom`/`hookMessage`.
    CustomMessage,
    /// `label` entry (bookmark).
    Label,
    /// `session_info` entry (display name).
    SessionInfo,
    /// A gateway log line that is not a more specific event.
    LogRecord,
    /// A model fallback decision from the gateway log.
    FallbackDecision,
    /// A cron job run.
    CronRun,
    /// A judgement attached to other events (judge votes, human labels).
    Annotation,
    /// An entry of a type this build does not know; kept whole in `raw`.
    Unknown,
    /// A line that could not be read; the reason is in `error`, the bytes in `raw`.
    Quarantined,
    /// Where an ingest stopped reading a source (offset, prefix hash), committed
    /// with the events read up to it.
    SourceCheckpoint,
    /// A record that `trajectory erase` removed events: the selector and the
    /// counts, never the erased content (details in `attributes`).
    Erasure,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 23] = [
        EventKind::SessionStart,
        EventKind::UserMessage,
        EventKind::LlmCall,
        EventKind::InjectedMessage,
        EventKind::ToolCall,
        EventKind::ToolResult,
        EventKind::BashExecution,
        EventKind::ModelChange,
        EventKind::ThinkingLevelChange,
        EventKind::Compaction,
        EventKind::BranchSummary,
        EventKind::Custom,
        EventKind::CustomMessage,
        EventKind::Label,
        EventKind::SessionInfo,
        EventKind::LogRecord,
        EventKind::FallbackDecision,
        EventKind::CronRun,
        EventKind::Annotation,
        EventKind::Unknown,
        EventKind::Quarantined,
        EventKind::SourceCheckpoint,
        EventKind::Erasure,
    ];

    /// The value stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SessionStart => "session_start",
            EventKind::UserMessage => "user_message",
            EventKind::LlmCall => "llm_call",
            EventKind::InjectedMessage => "injected_message",
            EventKind::ToolCall => "tool_call",
            EventKind::ToolResult => "tool_result",
            EventKind::BashExecution => "bash_execution",
            EventKind::ModelChange => "model_change",
            EventKind::ThinkingLevelChange => "thinking_level_change",
            EventKind::Compaction => "compaction",
            EventKind::BranchSummary => "branch_summary",
            EventKind::Custom => "custom",
            EventKind::CustomMessage => "custom_message",
            EventKind::Label => "label",
            EventKind::SessionInfo => "session_info",
            EventKind::LogRecord => "log_record",
            EventKind::FallbackDecision => "fallback_decision",
            EventKind::CronRun => "cron_run",
            EventKind::Annotation => "annotation",
            EventKind::Unknown => "unknown",
            EventKind::Quarantined => "quarantined",
            EventKind::SourceCheckpoint => "source_checkpoint",
            EventKind::Erasure => "erasure",
        }
    }

    /// Parses a `kind` column value.
    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a model ran, as far as the data can tell. Stored in `locality`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Locality {
    /// On the user's machine or network (Ollama, LM Studio, vLLM, llama.cpp, loopback URLs).
    Local,
    /// A hosted provider: content left the machine.
    Cloud,
    /// Written by the gateway itself, not by a model (provider `openclaw`).
    Internal,
    /// Not enough information to tell.
    Unknown,
}

impl Locality {
    /// The value stored in the `locality` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Locality::Local => "local",
            Locality::Cloud => "cloud",
            Locality::Internal => "internal",
            Locality::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Locality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for kind in EventKind::ALL {
            assert!(seen.insert(kind.as_str()), "duplicate name {kind}");
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("no_such_kind"), None);
    }
}
