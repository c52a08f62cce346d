//! The command-line contract (see `docs/cli.md`). Scripts depend on it:
//! flags are added, never renamed.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use trajectory_query::output::OutputFormat;

/// Turn the history of an OpenClaw / pi agent into an auditable, trainable
/// event log: ingest transcripts, query them with SQL, export training shards
/// and write compliance reports.
#[derive(Debug, Parser)]
#[command(name = "trajectory", version, propagate_version = true)]
#[command(after_help = "Examples:
  trajectory ingest ~/.openclaw
  trajectory sql \"SELECT provider, count(*) FROM llm_calls GROUP BY provider\"
  trajectory export --target trl-sft --out dataset/
  trajectory report compliance --out report.html

Progress and logs go to stderr, results to stdout. Set TRAJECTORY_LOG=debug for detail.")]
pub struct Cli {
    /// Where the event store lives: a directory (created if missing) or a file:// URL.
    /// Default: $XDG_DATA_HOME/trajectory/store (~/.local/share/trajectory/store).
    #[arg(long, global = true, env = "TRAJECTORY_STORE", value_name = "URL")]
    pub store: Option<String>,

    /// Configuration file (TOML: [locality], [[redaction.rules]]).
    /// Default: ~/.config/trajectory/config.toml when it exists.
    #[arg(long, global = true, env = "TRAJECTORY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read session transcripts and append their events to the store.
    ///
    /// Every line becomes one or more events (user messages, LLM calls, tool calls and
    /// results, model changes, ...). Lines that cannot be read are quarantined with a
    /// reason and counted; ingest goes on. Event ids are deterministic: ingesting the
    /// same files again adds nothing. All events of a run land in one atomic commit.
    Ingest(IngestArgs),
    /// Run a read-only SQL query over the event log.
    ///
    /// Tables and views: events, llm_calls, tool_calls, messages, sessions,
    /// cloud_exposure, quarantine (see docs/schema.md). DDL, DML and COPY are refused.
    Sql(SqlArgs),
    /// Write a training dataset (Hugging Face style Parquet shards + card + manifest).
    Export(ExportArgs),
    /// Write a report.
    Report(ReportArgs),
    /// Bin-pack small segments into segments of about --target-size MiB, rows
    /// sorted by (session_id, seq). Readers see the same rows; the old segments
    /// stay for time travel until `vacuum`.
    Compact(CompactArgs),
    /// Delete files no current table version references (removed by compaction
    /// or erasure, or left by a crashed writer) once older than the retention.
    Vacuum(VacuumArgs),
    /// List the commits of the event log: version, time, operation, rows added, ingest id.
    History(HistoryArgs),
    /// Check every segment the tables reference: present, with the size, row
    /// count and sha256 recorded when it was written. Lists orphan files.
    /// Exits non-zero when a segment is missing or damaged.
    Verify(VerifyArgs),
    /// Remove events for good, with everything derived from them: rewrites the
    /// segments without them, vacuums the old files (time travel to earlier
    /// versions ends), records an `erasure` event (selector and counts, never
    /// content) and prints a receipt naming every export built from them.
    Erase(EraseArgs),
    /// Build the derived tables turns, trajectories and rewards from the event
    /// log (docs/datasets.md). Does nothing when they are up to date.
    Derive(crate::derive_commands::DeriveArgs),
    /// Score each turn with an LLM judge (any OpenAI-compatible endpoint, local
    /// Ollama by default) and append the votes as `annotation` events.
    Judge(crate::derive_commands::JudgeArgs),
    /// Find exact and near-duplicate trajectories (MinHash LSH) and trajectories
    /// contaminated by eval sets; writes the `dedupe_clusters` table with which
    /// member of each cluster to keep (highest reward, then newest).
    Dedupe(crate::derive_commands::DedupeArgs),
    /// The nightly dataset build: derive → dedupe → export for every [[dataset]]
    /// of a TOML config, pinned to one log version; does nothing when neither the
    /// log nor the config changed. Same config + --as-of → byte-identical shards.
    Build(crate::build::BuildArgs),
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Transcript files (*.jsonl, archived *.jsonl.deleted.*, *.zst) or directories to walk.
    /// Without PATH: the OpenClaw and pi state directories found in $HOME
    /// ($OPENCLAW_STATE_DIR, ~/.openclaw, profiles, legacy names, ~/.pi) and /tmp/openclaw.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Print the summary as JSON on stdout (no progress bar).
    #[arg(long)]
    pub json: bool,

    /// Quarantine lines longer than this many bytes.
    #[arg(long, default_value_t = 64 * 1024 * 1024, value_name = "BYTES")]
    pub max_line_bytes: usize,

    /// Do NOT mask secrets (API keys, tokens, passwords, private keys) before
    /// writing. Everything the agent saw is stored verbatim: use only on data
    /// that has none, or stores nobody else can read.
    #[arg(long)]
    pub no_redact: bool,

    /// Keep base64 images in the stored raw lines (default: replaced by their
    /// sha256 and length).
    #[arg(long)]
    pub keep_images: bool,

    /// Keep watching: ingest what is appended (new files, rotated logs, new days)
    /// and commit at most every --interval seconds, until Ctrl-C or SIGTERM.
    #[arg(long)]
    pub follow: bool,

    /// With --follow: seconds between commits.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub interval: f64,

    /// After committing, compact a date partition once it holds this many
    /// small segments (0 = never compact automatically).
    #[arg(long, default_value_t = 32, value_name = "SEGMENTS")]
    pub auto_compact_after: usize,

    /// Hand events to the store every this many bytes of event text; the
    /// store buffers 8 such chunks before writing segments (memory bound).
    #[arg(long, default_value_t = trajectory_ingest::CHUNK_BYTES, value_name = "BYTES", hide = true)]
    pub chunk_bytes: usize,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The query, e.g. "SELECT * FROM sessions ORDER BY cost_usd DESC LIMIT 10".
    pub query: String,

    /// Output format: table, csv, json (one array of objects), ndjson or parquet.
    #[arg(long, default_value = "table", value_parser = parse_output_format)]
    pub format: OutputFormat,

    /// Read the log as it was at a table version (e.g. 3) or time (RFC 3339).
    #[arg(long, value_name = "VERSION|TIMESTAMP")]
    pub as_of: Option<String>,
}

fn parse_output_format(s: &str) -> Result<OutputFormat, String> {
    s.parse()
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportTarget {
    /// TRL SFTTrainer, conversational: `messages` with tool calls, plus `tools`.
    TrlSft,
    /// OpenAI chat fine-tuning: per-turn `messages` (tool-call arguments as JSON
    /// strings, `weight` on assistant messages) + `tools`; also train/validation.jsonl.
    OpenaiSft,
    /// OpenAI preference fine-tuning: input / preferred_output / non_preferred_output.
    OpenaiDpo,
    /// TRL DPO-style preference pairs: prompt / chosen / rejected (conversational),
    /// from branch siblings and reward differences.
    TrlPreference,
    /// TRL KTOTrainer: prompt / completion / label (reward sign).
    Kto,
    /// TRL GRPOTrainer: prompt only, plus reward, advantage and group id columns.
    Grpo,
    /// OpenClaw-RL style turns: context, response, next state, score, loss mask.
    RlTurns,
    /// OpenClaw-RL's own JSONL records (record.jsonl, record_prm.jsonl,
    /// feedback_store.jsonl): one record per LLM call, as its proxy writes them.
    OpenclawRl,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The training format to write.
    #[arg(long, value_enum)]
    pub target: ExportTarget,

    /// The dataset directory (created; earlier shards in it are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Export the log as it was at a table version or time (RFC 3339).
    #[arg(long, value_name = "VERSION|TIMESTAMP")]
    pub as_of: Option<String>,

    /// Maximum rows per Parquet shard.
    #[arg(long, default_value_t = 10_000)]
    pub rows_per_shard: usize,

    /// Maximum Arrow data a shard gathers before it is written (e.g. 32MiB; 0: no limit).
    /// Bounds the export's memory when rows carry long contexts; checked every 256 rows.
    #[arg(long, value_name = "SIZE", default_value = "32MiB",
          value_parser = crate::derive_commands::parse_shard_bytes)]
    pub shard_bytes: u64,

    /// Memory the export's sorts may hold before they spill to disk (e.g. 512MiB, 2GB).
    #[arg(long, value_name = "SIZE", default_value = "384MiB",
          value_parser = crate::derive_commands::parse_size)]
    pub memory_limit: u64,

    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,

    /// Only turns started at or after this time (RFC 3339). For trl-sft,
    /// filters select sessions (here: by their first event).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only turns started before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only this agent's turns.
    #[arg(long)]
    pub agent: Option<String>,
    /// Only turns answered by this provider (trl-sft: sessions with a call to it).
    #[arg(long)]
    pub provider: Option<String>,
    /// Only turns of this locality: local, cloud, internal, unknown.
    #[arg(long)]
    pub locality: Option<String>,
    /// Only turns whose reward (mean combined step reward) is at least this;
    /// pair targets: the chosen turn's; trl-sft: the session's mean trajectory reward.
    #[arg(long, value_name = "REWARD", allow_negative_numbers = true)]
    pub min_reward: Option<f64>,
    /// An extra SQL predicate: over turns (alias t; s.reward, s.advantage), e.g.
    /// "t.tool_call_count > 0"; for trl-sft over events (alias e), any event of a session.
    #[arg(long, value_name = "SQL")]
    pub r#where: Option<String>,
    /// Percentage of sessions in the validation split (by hashed session id).
    #[arg(long, default_value_t = 5, value_name = "PERCENT")]
    pub validation_percent: u8,
    /// Minimum reward gap for preference pairs (trl-preference, openai-dpo).
    #[arg(long, default_value_t = 1.0, value_name = "GAP")]
    pub min_reward_gap: f64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportKind {
    /// Calls, failures, tokens and cost per provider and model; local vs cloud share;
    /// sessions whose content went to a cloud provider.
    Compliance,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Which report.
    #[arg(value_enum)]
    pub kind: ReportKind,

    /// The file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// html, json or md. Default: from the --out extension, else html.
    #[arg(long)]
    pub format: Option<String>,

    /// Report on the log as it was at a table version or time (RFC 3339).
    #[arg(long, value_name = "VERSION|TIMESTAMP")]
    pub as_of: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Target segment size in MiB (default 128).
    #[arg(long, value_name = "MIB")]
    pub target_size: Option<u64>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VacuumArgs {
    /// Keep unreferenced files younger than this many hours (time travel back
    /// that far keeps working).
    #[arg(long, default_value_t = 168, value_name = "HOURS")]
    pub retention_hours: u64,
    /// Only count what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Show at most this many commits (newest first).
    #[arg(long)]
    pub limit: Option<usize>,
    /// One table's history (events, turns, rewards, ...). Default: events.
    #[arg(long)]
    pub table: Option<String>,
    /// Every table's history.
    #[arg(long, conflicts_with = "table")]
    pub all_tables: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  trajectory erase --session 0f6c2a1e-5b7d-4c1a-9e0b-2d8f3a6c7b10
  trajectory erase --agent work
  trajectory erase --where \"ts < TIMESTAMP '2026-01-01T00:00:00Z'\"")]
pub struct EraseArgs {
    /// Erase every event of this session id.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// Erase every event of this agent id.
    #[arg(long, value_name = "ID")]
    pub agent: Option<String>,
    /// Erase the events matching this SQL predicate over the events columns.
    /// Recorded only as its sha256 (it may quote what is being erased).
    #[arg(long, value_name = "SQL")]
    pub r#where: Option<String>,
    /// Print the receipt as JSON.
    #[arg(long)]
    pub json: bool,
}
