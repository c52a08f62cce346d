//! Which reader handles a file, and reading one source with its checkpoint.
//!
//! | file | kind | reader |
//! |---|---|---|
//! | `*.jsonl`, `*.jsonl.reset.*`, `*.jsonl.deleted.*` (+ `.zst`) starting with a session header | transcript | [`openclaw::transcript`] |
//! | `openclaw-YYYY-MM-DD[.N].log` (also `clawdbot-*`, `moltbot-*`) | gateway log | [`openclaw::gateway_log`] |
//! | `logs/cache-trace.jsonl` | cache trace | [`openclaw::cache_trace`] |
//! | `logs/commands.log` | command log | [`openclaw::commands_log`] |
//! | `logs/config-audit.jsonl` | config audit | [`openclaw::config_audit`] |
//! | `cron/runs/<jobId>.jsonl` | cron run log | [`openclaw::cron_run_log`] |
//! | `*.trajectory.jsonl` | runtime trajectory | [`openclaw::trajectory_events`] |
//! | `trajectory-exports/<name>/manifest.json` (+ `events.jsonl`) | export bundle | [`openclaw::trajectory_events`] |
//! | `sessions.json` | session store snapshot | [`openclaw::session_store`] |
//! | `agents/<id>/agent/openclaw-agent.sqlite` | agent store | [`openclaw::agent_store`] |
//! | `state/openclaw.sqlite`, `tasks/runs.sqlite` | state store | [`openclaw::state_store`] |
//! | `openclaw.json`, `agents/<id>/agent/models.json` | config | read for provider base URLs (locality), no events |
//!
//! JSONL sources are read incrementally from their checkpoint
//! ([`crate::checkpoint`]); whole-file sources (`sessions.json`, SQLite stores,
//! bundles) are read whole each time and rely on deterministic ids.

use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};

use trajectory_schema::Event;

use crate::checkpoint::{file_id, plan_read, ReadPlan, SourceCheckpoint, TrackedLines};
use crate::discover::{open_decoded, open_decoded_buffered};
use crate::jsonl::{read_lines, LineParser, ReadStats, SourceContext};
use crate::lines::Lines;
use crate::openclaw::transcript::{self, TranscriptParser};
use crate::openclaw::{
    cache_trace, commands_log, config_audit, cron_run_log, gateway_log, trajectory_events,
};

/// The kinds of source `trajectory ingest` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    Transcript,
    GatewayLog,
    CacheTrace,
    CommandsLog,
    ConfigAudit,
    CronRunLog,
    TrajectoryEvents,
    ExportBundle,
    SessionStore,
    AgentStore,
    StateStore,
    Config,
}

impl SourceKind {
    /// Name used in summaries.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Transcript => "transcript",
            SourceKind::GatewayLog => "gateway_log",
            SourceKind::CacheTrace => "cache_trace",
            SourceKind::CommandsLog => "commands_log",
            SourceKind::ConfigAudit => "config_audit",
            SourceKind::CronRunLog => "cron_run_log",
            SourceKind::TrajectoryEvents => "trajectory_events",
            SourceKind::ExportBundle => "export_bundle",
            SourceKind::SessionStore => "session_store",
            SourceKind::AgentStore => "agent_store",
            SourceKind::StateStore => "state_store",
            SourceKind::Config => "config",
        }
    }

    /// Whether the source is JSONL read line by line with checkpoints.
    pub fn is_incremental(self) -> bool {
        matches!(
            self,
            SourceKind::Transcript
                | SourceKind::GatewayLog
                | SourceKind::CacheTrace
                | SourceKind::CommandsLog
                | SourceKind::ConfigAudit
                | SourceKind::CronRunLog
                | SourceKind::TrajectoryEvents
        )
    }
}

/// A file (or bundle directory) chosen for ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    pub kind: SourceKind,
    /// On-disk size in bytes.
    pub size: u64,
}

fn strip_zst(name: &str) -> &str {
    name.strip_suffix(".zst").unwrap_or(name)
}

fn parent_name(path: &Path, up: usize) -> Option<String> {
    let mut current = path.parent();
    for _ in 0..up {
        current = current?.parent();
    }
    current?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
}

fn is_gateway_log_name(name: &str) -> bool {
    ["openclaw-", "clawdbot-", "moltbot-"].iter().any(|prefix| {
        name.strip_prefix(prefix).is_some_and(|rest| {
            rest.len() >= 14
                && rest.as_bytes()[..10].iter().enumerate().all(|(i, b)| {
                    if i == 4 || i == 7 {
                        *b == b'-'
                    } else {
                        b.is_ascii_digit()
                    }
                })
                && rest.ends_with(".log")
        })
    })
}

/// The kind of a file from its name and place, without reading it. `None`
/// for files that need sniffing or are not records.
pub fn classify_by_name(path: &Path) -> Option<SourceKind> {
    let file_name = path.file_name()?.to_string_lossy().into_owned();
    let name = strip_zst(&file_name);
    let parent = parent_name(path, 0).unwrap_or_default();
    if name.ends_with(".trajectory.jsonl") {
        return Some(SourceKind::TrajectoryEvents);
    }
    match name {
        "sessions.json" => return Some(SourceKind::SessionStore),
        "openclaw-agent.sqlite" => return Some(SourceKind::AgentStore),
        "openclaw.sqlite" if parent == "state" => return Some(SourceKind::StateStore),
        "runs.sqlite" if parent == "tasks" => return Some(SourceKind::StateStore),
        "openclaw.json" => return Some(SourceKind::Config),
        "models.json" if parent == "agent" => return Some(SourceKind::Config),
        "cache-trace.jsonl" => return Some(SourceKind::CacheTrace),
        "commands.log" => return Some(SourceKind::CommandsLog),
        "config-audit.jsonl" => return Some(SourceKind::ConfigAudit),
        "manifest.json" if parent_name(path, 1).as_deref() == Some("trajectory-exports") => {
            return Some(SourceKind::ExportBundle)
        }
        _ => {}
    }
    if parent == "runs"
        && parent_name(path, 1).as_deref() == Some("cron")
        && name.ends_with(".jsonl")
    {
        return Some(SourceKind::CronRunLog);
    }
    if is_gateway_log_name(name) {
        return Some(SourceKind::GatewayLog);
    }
    None
}

/// Whether a file name could hold JSONL records worth sniffing.
pub fn is_sniffable_name(name: &str) -> bool {
    let name = strip_zst(name);
    name.ends_with(".jsonl")
        || name.contains(".jsonl.reset.")
        || name.contains(".jsonl.deleted.")
        || name.ends_with(".log")
}

/// The kind of a JSONL file from its first line, using each reader's own check.
pub fn classify_by_first_line(first_line: &[u8]) -> Option<SourceKind> {
    let line = first_line.strip_suffix(b"\n").unwrap_or(first_line);
    if transcript::is_session_header(line) {
        Some(SourceKind::Transcript)
    } else if trajectory_events::looks_like_trajectory_events(line) {
        Some(SourceKind::TrajectoryEvents)
    } else if gateway_log::looks_like_gateway_log(line) {
        Some(SourceKind::GatewayLog)
    } else if cron_run_log::looks_like_cron_run_log(line) {
        Some(SourceKind::CronRunLog)
    } else if config_audit::looks_like_config_audit(line) {
        Some(SourceKind::ConfigAudit)
    } else if cache_trace::looks_like_cache_trace(line) {
        Some(SourceKind::CacheTrace)
    } else if commands_log::looks_like_commands_log(line) {
        Some(SourceKind::CommandsLog)
    } else {
        None
    }
}

/// Bytes [`first_line`] asks of the file per read: a header line fits, and
/// discovery, which sniffs every `*.jsonl` on one thread, reads a few KiB of
/// each file instead of the 64 KiB a line reader buffers (2,272 transcripts
/// of the 100 MB benchmark corpus: 50 MB read before the first event).
const FIRST_LINE_READ_BYTES: usize = 8 << 10;

/// Reads the first line of a (possibly zstd) file, at most 1 MiB.
pub fn first_line(path: &Path) -> io::Result<Vec<u8>> {
    let mut reader = open_decoded_buffered(path, FIRST_LINE_READ_BYTES)?.take(1 << 20);
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    Ok(line)
}

/// What reading one source produced.
#[derive(Debug, Default)]
pub struct SourceRead {
    pub events: Vec<Event>,
    pub stats: ReadStats,
    /// The checkpoint to commit with the events (incremental sources).
    pub checkpoint: Option<SourceCheckpoint>,
    /// Nothing new since the last checkpoint: the file was not parsed.
    pub unchanged: bool,
    /// Read from the start although a checkpoint existed, and why.
    pub reread_reason: Option<String>,
}

fn parser_for<'a>(
    kind: SourceKind,
    context: &'a SourceContext,
) -> Option<Box<dyn LineParser + 'a>> {
    match kind {
        SourceKind::Transcript => Some(Box::new(TranscriptParser::new(context))),
        SourceKind::GatewayLog => Some(Box::new(gateway_log::GatewayLogParser::new(context))),
        SourceKind::CronRunLog => Some(Box::new(cron_run_log::CronRunLogParser::new(context))),
        SourceKind::CacheTrace => Some(Box::new(cache_trace::CacheTraceParser::new(context))),
        SourceKind::CommandsLog => Some(Box::new(commands_log::CommandsLogParser::new(context))),
        SourceKind::ConfigAudit => Some(Box::new(config_audit::ConfigAuditParser::new(context))),
        SourceKind::TrajectoryEvents => Some(Box::new(
            trajectory_events::TrajectoryParser::runtime(context),
        )),
        _ => None,
    }
}

/// Reads an incremental (JSONL) source from its checkpoint.
///
/// Errors: I/O errors of the file.
pub fn read_incremental(
    source: &Source,
    context: &SourceContext,
    previous: Option<&SourceCheckpoint>,
) -> io::Result<SourceRead> {
    let Some(mut parser) = parser_for(source.kind, context) else {
        return Err(io::Error::other(format!(
            "no line reader for {} sources in this build",
            source.kind.name()
        )));
    };
    let mut reader = open_decoded(&source.path)?;
    let (plan, hasher) = plan_read(&mut reader, previous)?;
    let (offset, lines_before, reread_reason) = match plan {
        ReadPlan::Unchanged => {
            return Ok(SourceRead {
                checkpoint: previous.cloned(),
                unchanged: true,
                ..SourceRead::default()
            })
        }
        ReadPlan::Resume { offset, lines } => (offset, lines, None),
        ReadPlan::FromStart { reason } => {
            reader = open_decoded(&source.path)?;
            (0, 0, reason)
        }
    };
    if offset > 0 && source.kind == SourceKind::Transcript {
        // The tree state (session id, header version) lives in line 1.
        let header = first_line(&source.path)?;
        let line = crate::lines::Line {
            offset: 0,
            number: 1,
            len: header.len() as u64,
            terminated: header.last() == Some(&b'\n'),
            bytes: header.strip_suffix(b"\n").unwrap_or(&header).to_vec(),
        };
        let _primed = read_lines([Ok(line)], context, &mut *parser)?;
    }
    let mut tracked = TrackedLines::new(
        Lines::starting_at(reader, offset, lines_before),
        hasher,
        offset,
        lines_before,
    );
    let (events, stats) = read_lines(&mut tracked, context, &mut *parser)?;
    let checkpoint = tracked.checkpoint(&context.source_uri, file_id(&source.path));
    Ok(SourceRead {
        events,
        stats,
        checkpoint: Some(checkpoint),
        unchanged: false,
        reread_reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_places_classify() {
        let cases = [
            (
                "/h/.openclaw/agents/main/sessions/sessions.json",
                Some(SourceKind::SessionStore),
            ),
            (
                "/h/.openclaw/agents/main/sessions/a.trajectory.jsonl.zst",
                Some(SourceKind::TrajectoryEvents),
            ),
            (
                "/h/.openclaw/agents/main/agent/openclaw-agent.sqlite",
                Some(SourceKind::AgentStore),
            ),
            (
                "/h/.openclaw/state/openclaw.sqlite.zst",
                Some(SourceKind::StateStore),
            ),
            (
                "/h/.openclaw/cron/runs/j1.jsonl",
                Some(SourceKind::CronRunLog),
            ),
            (
                "/tmp/openclaw/openclaw-2026-11-22.log",
                Some(SourceKind::GatewayLog),
            ),
            (
                "/tmp/openclaw/openclaw-2026-11-22.3.log",
                Some(SourceKind::GatewayLog),
            ),
            (
                "/h/.openclaw/logs/config-audit.jsonl",
                Some(SourceKind::ConfigAudit),
            ),
            ("/h/.openclaw/openclaw.json", Some(SourceKind::Config)),
            (
                "/w/.openclaw/trajectory-exports/x/manifest.json",
                Some(SourceKind::ExportBundle),
            ),
            ("/h/.openclaw/agents/main/sessions/a.jsonl", None),
            ("/h/.openclaw/logs/gateway.log", None),
        ];
        for (path, expected) in cases {
            assert_eq!(classify_by_name(Path::new(path)), expected, "{path}");
        }
    }

    #[test]
    fn first_lines_classify() {
        assert_eq!(
            classify_by_first_line(br#"{"type":"session","id":"x"}"#),
            Some(SourceKind::Transcript)
        );
        assert_eq!(
            classify_by_first_line(
                br#"{"traceSchema":"openclaw-trajectory","type":"session.started"}"#
            ),
            Some(SourceKind::TrajectoryEvents)
        );
        assert_eq!(
            classify_by_first_line(br#"{"ts":1,"jobId":"j","action":"finished"}"#),
            Some(SourceKind::CronRunLog)
        );
        assert_eq!(classify_by_first_line(b"not json"), None);
    }
}
