//! `trajectory derive` and `trajectory judge`: flags and printing; the jobs
//! are in `trajectory-transforms`.

use std::time::Duration;

use anyhow::Result;
use clap::{Args, ValueEnum};
use trajectory_query::AsOf;
use trajectory_store::EventStore;
use trajectory_transforms::judge::{judge, JudgeOptions, DEFAULT_ENDPOINT};
use trajectory_transforms::{derive, Credit, DeriveOptions, DeriveScope};

/// How step rewards get the trajectory outcome.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CreditArg {
    /// The outcome copied to every step: r_t = o + c·p_t.
    Copy,
    /// Discounted from the end: r_t = o·γ^(T−1−t) + c·p_t.
    Discount,
    /// Group-normalised advantage over trajectories sharing a prompt.
    Grpo,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  trajectory derive
  trajectory derive --credit discount --gamma 0.8 --json
  trajectory derive --full --memory-limit 1GiB

A derive after new events rebuilds only the sessions they touch (one commit
per table); --full, a new job version or other parameters rebuild all.
GRPO credit always rebuilds all: a new session changes the advantages of
every session sharing its prompt.
  trajectory sql \"SELECT signal, count(*), avg(value) FROM rewards GROUP BY signal\"

Tables and rules: docs/datasets.md.")]
pub struct DeriveArgs {
    /// Build from the log as it was at a table version or time (RFC 3339).
    #[arg(long, value_name = "VERSION|TIMESTAMP")]
    pub as_of: Option<String>,
    /// Credit assignment of the combined step rewards.
    #[arg(long, value_enum, default_value = "copy")]
    pub credit: CreditArg,
    /// Discount per step for --credit discount, in [0, 1].
    #[arg(long, default_value_t = 0.9, value_name = "G")]
    pub gamma: f64,
    /// Weight of the process score next to the outcome.
    #[arg(long, default_value_t = 1.0, value_name = "C")]
    pub prm_coef: f64,
    /// Jaccard similarity (word 2-shingles) from which a user message re-asks the previous one.
    #[arg(long, default_value_t = 0.5, value_name = "J")]
    pub reask_threshold: f64,
    /// Minutes of silence after which the next user message starts a new episode.
    #[arg(long, default_value_t = 30.0, value_name = "MINUTES")]
    pub idle_gap_minutes: f64,
    /// Rebuild every session, even when only some were touched since the last build.
    #[arg(long)]
    pub full: bool,
    /// Memory the plan's sort and repartition may use before spilling to
    /// disk (e.g. 256MiB, 2GiB).
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub memory_limit: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Parses `export --shard-bytes`: a size as [`parse_bytes`] takes (0: no limit).
pub fn parse_shard_bytes(text: &str) -> std::result::Result<u64, String> {
    parse_bytes(text)
}

/// Parses a size such as `512MiB`, `2GiB`, `100MB` or a number of bytes.
pub fn parse_bytes(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (try 512MiB or 2GiB)"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "kib" | "k" => 1024.0,
        "mb" => 1e6,
        "mib" | "m" => 1024.0 * 1024.0,
        "gb" => 1e9,
        "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use B, KiB, MiB, GiB, KB, MB or GB)"
            ))
        }
    };
    Ok((number * scale) as u64)
}

/// Parses a memory limit: a size as [`parse_bytes`] takes, at least 16 MiB.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let bytes = parse_bytes(text)?;
    if bytes < 16 * 1024 * 1024 {
        return Err(format!(
            "{text:?} is below the 16MiB a sort needs to make progress"
        ));
    }
    Ok(bytes)
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  trajectory judge --model qwen3:8b                      # local Ollama, 3 votes
  trajectory judge --endpoint http://gpu-box:8000/v1 --model judge --votes 5 --limit 100

Results are appended as `annotation` events and feed the `judge` reward on the next derive.")]
pub struct JudgeArgs {
    /// Base URL of an OpenAI-compatible API.
    #[arg(long, default_value = DEFAULT_ENDPOINT, value_name = "URL")]
    pub endpoint: String,
    /// The judge model name.
    #[arg(long, value_name = "NAME")]
    pub model: String,
    /// Votes per turn; the score is their majority (ties give 0).
    #[arg(long, default_value_t = 3, value_name = "K")]
    pub votes: usize,
    /// Sampling temperature of each vote.
    #[arg(long, default_value_t = 0.6)]
    pub temperature: f64,
    /// Judge at most N turns not judged yet.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub timeout: u64,
    /// Bearer token for the endpoint (not stored anywhere).
    #[arg(long, env = "TRAJECTORY_JUDGE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

fn as_of(text: Option<&str>) -> Result<Option<AsOf>> {
    Ok(match text {
        Some(text) => Some(text.parse::<AsOf>()?),
        None => None,
    })
}

pub async fn run_derive(store: &EventStore, args: DeriveArgs) -> Result<()> {
    let mut options = DeriveOptions {
        as_of: as_of(args.as_of.as_deref())?,
        ..DeriveOptions::default()
    };
    options.rewards.credit = match args.credit {
        CreditArg::Copy => Credit::Copy,
        CreditArg::Discount => Credit::Discount,
        CreditArg::Grpo => Credit::Grpo,
    };
    options.rewards.gamma = args.gamma;
    options.rewards.prm_coef = args.prm_coef;
    options.rewards.reask_threshold = args.reask_threshold;
    options.episodes.reask_threshold = args.reask_threshold;
    options.episodes.idle_gap_us = (args.idle_gap_minutes * 60.0 * 1e6).round() as i64;
    options.full = args.full;
    options.memory_limit = Some(args.memory_limit as usize);
    let summary = derive(store, &options).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    if summary.up_to_date {
        println!(
            "derived tables are up to date with events version {} (nothing to do)",
            summary.events_version
        );
        return Ok(());
    }
    let scope = match &summary.scope {
        Some(DeriveScope::Incremental { since_version }) => {
            format!("incremental since events version {since_version}")
        }
        _ => "full".to_string(),
    };
    println!(
        "derived from events version {} ({} session(s), {scope}):",
        summary.events_version, summary.sessions
    );
    for table in &summary.tables {
        println!(
            "  {:<14} {:>8} row(s) written, {:>8} replaced, {} segment(s)  table version {}  ({})",
            table.name,
            table.rows,
            table.rows_replaced,
            table.segments_written,
            table.version.map(|v| v.to_string()).unwrap_or_default(),
            table.job_version
        );
    }
    Ok(())
}

pub async fn run_judge(store: &EventStore, args: JudgeArgs) -> Result<()> {
    let options = JudgeOptions {
        endpoint: args.endpoint,
        model: args.model,
        votes: args.votes,
        temperature: args.temperature,
        limit: args.limit,
        api_key: args.api_key,
        timeout: Duration::from_secs(args.timeout),
        as_of: None,
    };
    let summary = judge(store, &options).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    println!(
        "judged {} turn(s) ({} already judged, {} with a next state); {} annotation(s) added{}; {} unparseable vote(s)",
        summary.turns_judged,
        summary.turns_already_judged,
        summary.turns_considered,
        summary.annotations_added,
        summary
            .events_version
            .map(|v| format!(" in events version {v}"))
            .unwrap_or_default(),
        summary.unparseable_votes
    );
    Ok(())
}

/// `trajectory dedupe`: exact and near-duplicate trajectories, decontamination.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  trajectory dedupe
  trajectory dedupe --threshold 0.7 --bands 20 --rows 5
  trajectory dedupe --eval evals/humaneval.jsonl --eval evals/my-tasks.txt --json

Signatures (exact hash, MinHash, LSH band keys, eval 13-grams) are kept in the
dedupe_signatures table: a nightly dedupe computes only those of the sessions
with new events (--full: all of them again).")]
pub struct DedupeArgs {
    /// Words per shingle.
    #[arg(long, default_value_t = 5)]
    pub shingle: usize,
    /// LSH bands.
    #[arg(long, default_value_t = 14)]
    pub bands: usize,
    /// Rows per LSH band (permutations = bands × rows).
    #[arg(long, default_value_t = 8)]
    pub rows: usize,
    /// Jaccard similarity (MinHash estimate over shingles) a candidate pair needs to count
    /// as a near-duplicate.
    #[arg(long, default_value_t = 0.8)]
    pub threshold: f64,
    /// Permutation seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Eval file to decontaminate against (JSONL: every string value; else every line);
    /// trajectories sharing a 13-word sequence with it are not kept. Repeatable.
    #[arg(long = "eval", value_name = "FILE")]
    pub eval_files: Vec<std::path::PathBuf>,
    /// Read the log as it was at a version or time.
    #[arg(long, value_name = "VERSION|TIMESTAMP")]
    pub as_of: Option<String>,
    /// Compute every trajectory's signature again (by default only those of sessions with
    /// new events since the signatures were computed).
    #[arg(long)]
    pub full: bool,
    /// Memory the plans may hold before they spill to disk (e.g. 512MiB, 2GB).
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub memory_limit: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run_dedupe(store: &EventStore, args: DedupeArgs) -> Result<()> {
    use trajectory_transforms::dedupe::{dedupe, DedupeOptions};
    use trajectory_transforms::minhash::MinHashParams;
    let options = DedupeOptions {
        as_of: args.as_of.as_deref().map(str::parse::<AsOf>).transpose()?,
        minhash: MinHashParams {
            shingle_words: args.shingle,
            bands: args.bands,
            rows: args.rows,
            threshold: args.threshold,
            seed: args.seed,
        },
        eval_files: args.eval_files,
        full: args.full,
        memory_limit: Some(args.memory_limit as usize),
    };
    let summary = dedupe(store, &options).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    println!(
        "deduplicated {} trajectories from events version {}: {} cluster(s), {} exact and {} near duplicate(s), {} kept",
        summary.trajectories,
        summary.events_version,
        summary.clusters,
        summary.exact_duplicates,
        summary.near_duplicates,
        summary.kept
    );
    let signatures = &summary.signatures;
    match &signatures.scope {
        None => println!(
            "  signatures up to date with events version {}",
            signatures.events_version
        ),
        Some(trajectory_transforms::DeriveScope::Incremental { since_version }) => println!(
            "  signatures of {} trajectories computed (sessions touched since events version {since_version})",
            signatures.computed
        ),
        Some(trajectory_transforms::DeriveScope::Full) => println!(
            "  signatures of {} trajectories computed (all)",
            signatures.computed
        ),
    }
    for c in &summary.contaminated {
        println!(
            "  removed {}: shares \"{}\" with {}",
            c.trajectory_id, c.ngram, c.eval_file
        );
    }
    println!("  table dedupe_clusters (see docs/datasets.md); keep with: WHERE kept");
    Ok(())
}
