//! `trajectory`: the command line. Parsing, progress and printing only; the
//! work is done by the library crates.

mod cli;
mod defaults;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use trajectory_exporters::compliance::{build_report, render, ReportFormat};
use trajectory_exporters::{trl, ExportOptions};
use trajectory_ingest::{ingest, IngestOptions, IngestSummary, Progress};
use trajectory_query::output::write_batches;
use trajectory_query::{AsOf, QueryEngine, QueryError};
use trajectory_store::EventStore;

use crate::cli::{
    Cli, Command, ExportArgs, ExportTarget, IngestArgs, ReportArgs, ReportKind, SqlArgs,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRAJECTORY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,buoyant_kernel=off")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            if let Some(hint) = hint_for(&error) {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

/// A next step for errors users commonly hit.
fn hint_for(error: &anyhow::Error) -> Option<&'static str> {
    match error.downcast_ref::<QueryError>() {
        Some(QueryError::Empty(_)) => {
            Some("run `trajectory ingest PATH` first, or point --store / TRAJECTORY_STORE at an existing store")
        }
        Some(QueryError::ReadOnly(_)) => {
            Some("export results with `--format csv|json|ndjson|parquet` and redirect stdout instead")
        }
        Some(QueryError::Sql(_)) => Some(
            "list tables and views with `trajectory sql \"SHOW TABLES\"`, columns with `trajectory sql \"DESCRIBE events\"`",
        ),
        _ => None,
    }
}

async fn run(cli: Cli) -> Result<()> {
    let store_location = match &cli.store {
        Some(store) => store.clone(),
        None => defaults::default_store()?,
    };
    let store = EventStore::open(&store_location)
        .with_context(|| format!("cannot open the store at {store_location}"))?;
    match cli.command {
        Command::Ingest(args) => run_ingest(&store, args).await,
        Command::Sql(args) => run_sql(&store, args).await,
        Command::Export(args) => run_export(&store, args).await,
        Command::Report(args) => run_report(&store, args).await,
    }
}

fn parse_as_of(as_of: Option<&str>) -> Result<Option<AsOf>> {
    Ok(match as_of {
        Some(text) => Some(text.parse::<AsOf>()?),
        None => None,
    })
}

async fn run_ingest(store: &EventStore, args: IngestArgs) -> Result<()> {
    let paths = if args.paths.is_empty() {
        let found = defaults::openclaw_state_dirs();
        if found.is_empty() {
            bail!(
                "no PATH given and no OpenClaw or pi state found (looked for $OPENCLAW_STATE_DIR, \
                 ~/.openclaw, ~/.openclaw-*, ~/.clawdbot, ~/.moltbot, ~/.pi/agent/sessions); \
                 pass the files or directories to read"
            );
        }
        eprintln!("reading from:");
        for path in &found {
            eprintln!("  {}", path.display());
        }
        found
    } else {
        args.paths.clone()
    };
    let mut options = IngestOptions::new(paths);
    options.max_line_bytes = args.max_line_bytes;

    let bar = if std::io::stderr().is_terminal() && !args.json {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg:>12} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ({eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    } else {
        ProgressBar::hidden()
    };
    let started = std::time::Instant::now();
    let files_read = std::sync::atomic::AtomicU64::new(0);
    let events_read = std::sync::atomic::AtomicU64::new(0);
    let progress = |p: Progress| match p {
        Progress::Discovered { files, bytes } => {
            bar.set_length(bytes);
            bar.set_message(format!("0/{files} files"));
        }
        Progress::FileRead { bytes, events, .. } => {
            let files = files_read.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let total =
                events_read.fetch_add(events, std::sync::atomic::Ordering::Relaxed) + events;
            bar.inc(bytes);
            let rate = total as f64 / started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!("{files} files, {rate:.0} events/s"));
        }
        Progress::Committing { events } => {
            bar.set_message(format!("committing {events} events"));
        }
    };
    let summary = ingest(store, &options, &progress).await?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_ingest_summary(&summary);
    }
    Ok(())
}

fn print_ingest_summary(s: &IngestSummary) {
    let mb = s.bytes as f64 / 1_000_000.0;
    let rate = if s.seconds > 0.0 {
        s.events_read as f64 / s.seconds
    } else {
        0.0
    };
    println!(
        "ingested {} file(s): {} lines, {:.2} MB in {:.2} s ({:.0} events/s)",
        s.files, s.lines, mb, s.seconds, rate
    );
    println!("  {:<22}{:>10}", "events read", s.events_read);
    println!("  {:<22}{:>10}", "events added", s.events_added);
    println!(
        "  {:<22}{:>10}",
        "events already present", s.events_already_present
    );
    println!("  {:<22}{:>10}", "lines quarantined", s.lines_quarantined);
    println!("  {:<22}{:>10}", "unknown entries kept", s.unknown_entries);
    if s.files_failed > 0 {
        println!("  {:<22}{:>10}", "files failed", s.files_failed);
    }
    for file in &s.per_file {
        if let Some(note) = &file.note {
            println!("note: {}: {note}", file.path);
        }
    }
    if !s.skipped.is_empty() {
        println!("skipped {} file(s):", s.skipped.len());
        for skipped in s.skipped.iter().take(10) {
            println!("  {} ({})", skipped.path, skipped.reason);
        }
        if s.skipped.len() > 10 {
            println!("  … {} more (see --json)", s.skipped.len() - 10);
        }
    }
    match s.table_version {
        Some(version) => println!("store: {} (events table version {version})", s.store),
        None => println!("store: {} (nothing new to commit)", s.store),
    }
    if s.lines_quarantined > 0 {
        println!(
            "see bad lines with: trajectory sql \"SELECT file, line, reason FROM quarantine\""
        );
    }
}

async fn run_sql(store: &EventStore, args: SqlArgs) -> Result<()> {
    let as_of = parse_as_of(args.as_of.as_deref())?;
    let engine = QueryEngine::open(store, as_of.as_ref()).await?;
    let frame = engine.frame(&args.query).await?;
    let schema = frame.schema().inner().clone();
    let batches = frame.collect().await.map_err(QueryError::from)?;
    let mut out = std::io::BufWriter::new(std::io::stdout());
    write_batches(args.format, schema, &batches, &mut out)?;
    out.flush()?;
    Ok(())
}

async fn run_export(store: &EventStore, args: ExportArgs) -> Result<()> {
    let as_of = parse_as_of(args.as_of.as_deref())?;
    let engine = QueryEngine::open(store, as_of.as_ref()).await?;
    let mut options = ExportOptions::new(store.location().root().to_string());
    options.as_of = args.as_of.clone();
    options.rows_per_shard = args.rows_per_shard;
    let summary = match args.target {
        ExportTarget::TrlSft => trl::export_trl_sft(&engine, &args.out, &options).await?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "exported {} row(s) of {} from events version {} to {} ({} session(s) skipped: no user + assistant exchange)",
            summary.rows, summary.target, summary.events_version, summary.out_dir, summary.sessions_skipped
        );
        for shard in &summary.shards {
            println!(
                "  {} ({} rows, {} bytes, sha256 {})",
                shard.path, shard.rows, shard.bytes, shard.sha256
            );
        }
        println!("  manifest: {}", summary.manifest);
    }
    Ok(())
}

fn report_format(args: &ReportArgs) -> Result<ReportFormat> {
    if let Some(format) = &args.format {
        return format.parse::<ReportFormat>().map_err(anyhow::Error::msg);
    }
    let extension = args
        .out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("html");
    Ok(match extension {
        "json" => ReportFormat::Json,
        "md" | "markdown" => ReportFormat::Markdown,
        _ => ReportFormat::Html,
    })
}

async fn run_report(store: &EventStore, args: ReportArgs) -> Result<()> {
    let format = report_format(&args)?;
    let as_of = parse_as_of(args.as_of.as_deref())?;
    let engine = QueryEngine::open(store, as_of.as_ref()).await?;
    match args.kind {
        ReportKind::Compliance => {
            let report = build_report(&engine, store.location().root().as_str()).await?;
            let text = render(&report, format)?;
            write_output(&args.out, &text)?;
            println!(
                "wrote compliance report to {} ({} LLM calls, {} session(s) sent to cloud providers)",
                args.out.display(),
                report.llm_calls,
                report.exposed_sessions.len()
            );
        }
    }
    Ok(())
}

fn write_output(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
