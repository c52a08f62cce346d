//! `trajectory`: the command line. Parsing, progress and printing only; the
//! work is done by the library crates.

mod allocator;
mod build;
mod cli;
mod config;
mod defaults;
mod derive_commands;
mod store_commands;

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
    allocator::disable_transparent_huge_pages();
    allocator::skip_cleanup_at_exit();
    let cli = Cli::parse();
    // Ingest and queries reuse their buffers chunk after chunk: freed memory
    // stays 10 s. The jobs after ingest free whole phases (a sort's runs, a
    // shard) and give them back after 250 ms (src/allocator.rs).
    if matches!(
        cli.command,
        Command::Derive(_)
            | Command::Dedupe(_)
            | Command::Export(_)
            | Command::Build(_)
            | Command::Report(_)
    ) {
        allocator::set_job_purge_delay();
    } else {
        allocator::set_purge_delay();
    }
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
    // A plan that ran out of its memory pool (DataFusion's "Resources
    // exhausted" / "Failed to allocate"), whatever wraps it.
    let text = format!("{error:#}");
    if text.contains("Resources exhausted") || text.contains("Failed to allocate additional") {
        return Some(
            "the job ran out of its memory pool: give it more with --memory-limit (e.g. --memory-limit 1GiB)",
        );
    }
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
        _ => match error.downcast_ref::<trajectory_exporters::ExportError>() {
            Some(trajectory_exporters::ExportError::MissingDerived(_)) => {
                Some("run `trajectory derive` first (or use `trajectory build CONFIG`, which derives)")
            }
            Some(trajectory_exporters::ExportError::Query(QueryError::Sql(_))) => Some(
                "--where is SQL over turns (alias t) or, for trl-sft, events (alias e); columns: `trajectory sql \"DESCRIBE turns\"`",
            ),
            _ => None,
        },
    }
}

async fn run(cli: Cli) -> Result<()> {
    let store_location = match &cli.store {
        Some(store) => store.clone(),
        None => defaults::default_store()?,
    };
    let store = EventStore::open(&store_location)
        .with_context(|| format!("cannot open the store at {store_location}"))?;
    let config = config::Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Ingest(args) => run_ingest(&store, &config, args).await,
        Command::Sql(args) => run_sql(&store, args).await,
        Command::Export(args) => run_export(&store, args).await,
        Command::Report(args) => run_report(&store, args).await,
        Command::Compact(args) => store_commands::run_compact(&store, args).await,
        Command::Vacuum(args) => store_commands::run_vacuum(&store, args).await,
        Command::History(args) => store_commands::run_history(&store, args).await,
        Command::Verify(args) => store_commands::run_verify(&store, args).await,
        Command::Erase(args) => store_commands::run_erase(&store, args).await,
        Command::Derive(args) => derive_commands::run_derive(&store, args).await,
        Command::Judge(args) => derive_commands::run_judge(&store, args).await,
        Command::Dedupe(args) => derive_commands::run_dedupe(&store, args).await,
        Command::Build(args) => build::run_build(&store, args).await,
    }
}

fn parse_as_of(as_of: Option<&str>) -> Result<Option<AsOf>> {
    Ok(match as_of {
        Some(text) => Some(text.parse::<AsOf>()?),
        None => None,
    })
}

async fn run_ingest(store: &EventStore, config: &config::Config, args: IngestArgs) -> Result<()> {
    let paths = if args.paths.is_empty() {
        let found = defaults::openclaw_state_dirs();
        if found.is_empty() {
            bail!(
                "no PATH given and no OpenClaw or pi state found (looked for $OPENCLAW_STATE_DIR, \
                 ~/.openclaw, ~/.openclaw-*, ~/.clawdbot, ~/.moltbot, ~/.pi/agent/sessions, \
                 /tmp/openclaw, /tmp/clawdbot, /tmp/moltbot); pass the files or directories to read"
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
    options.locality_overrides = config.locality_overrides()?;
    options.redact = !args.no_redact;
    options.keep_images = args.keep_images;
    options.auto_compact_after = (args.auto_compact_after > 0).then_some(args.auto_compact_after);
    options.chunk_bytes = args.chunk_bytes.max(1);
    options.extra_redaction_rules = config
        .redaction
        .rules
        .iter()
        .map(|rule| (rule.name.clone(), rule.pattern.clone()))
        .collect();
    if args.no_redact {
        eprintln!(
            "warning: --no-redact: secrets in transcripts and logs are stored verbatim in {}",
            store.location().root()
        );
    }
    if args.follow {
        return follow(store, &options, &args).await;
    }

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

/// `ingest --follow`: one incremental ingest per interval until a signal.
/// A signal during an ingest lets that ingest commit first.
async fn follow(store: &EventStore, options: &IngestOptions, args: &IngestArgs) -> Result<()> {
    let stop = std::sync::Arc::new(tokio::sync::Notify::new());
    let stopping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let stop = stop.clone();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            stopping.store(true, std::sync::atomic::Ordering::SeqCst);
            stop.notify_one();
        });
    }
    let interval = Duration::from_secs_f64(args.interval.max(0.05));
    eprintln!(
        "following {} path(s), committing at most every {:.1} s; Ctrl-C or SIGTERM to stop",
        options.paths.len(),
        interval.as_secs_f64()
    );
    let mut total_added = 0usize;
    loop {
        // A failed cycle (a path gone for now, a commit refused) is reported
        // and retried next cycle: a follower is a service and must not die.
        let summary = match ingest(store, options, &|_| {}).await {
            Ok(summary) => summary,
            Err(error) => {
                eprintln!(
                    "warning: ingest cycle failed, retrying in {:.1} s: {error}",
                    interval.as_secs_f64()
                );
                if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = stop.notified() => {}
                }
                continue;
            }
        };
        total_added += summary.events_added;
        if args.json {
            println!("{}", serde_json::to_string(&summary)?);
        } else if summary.events_added > 0 || summary.lines_quarantined > 0 {
            println!(
                "{} +{} events ({} quarantined) from {} file(s), events table version {}",
                chrono_now(),
                summary.events_added,
                summary.lines_quarantined,
                summary.files - summary.files_unchanged,
                summary
                    .table_version
                    .map_or("-".to_string(), |v| v.to_string())
            );
        }
        if stopping.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.notified() => {}
        }
        if stopping.load(std::sync::atomic::Ordering::SeqCst) {
            // One last pass so nothing appended before the signal is left behind.
            let summary = ingest(store, options, &|_| {}).await?;
            total_added += summary.events_added;
            break;
        }
    }
    eprintln!("stopped; {total_added} event(s) added while following");
    Ok(())
}

fn chrono_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("[{now}]")
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
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
    println!("  {:<22}{:>10}", "events redacted", s.events_redacted);
    if s.images_replaced > 0 {
        println!("  {:<22}{:>10}", "images replaced", s.images_replaced);
    }
    if s.files_unchanged > 0 {
        println!("  {:<22}{:>10}", "files unchanged", s.files_unchanged);
    }
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
    let engine = QueryEngine::open_with(
        store,
        as_of.as_ref(),
        trajectory_exporters::export_engine_options(args.memory_limit as usize),
    )
    .await?;
    let mut options = ExportOptions::new(store.location().root().to_string());
    options.as_of = args.as_of.clone();
    options.rows_per_shard = args.rows_per_shard;
    options.shard_bytes = args.shard_bytes as usize;
    options.jobs = store_commands::derived_jobs(store).await?;
    let filters = trajectory_exporters::ExportFilters {
        since: args.since.clone(),
        until: args.until.clone(),
        agent: args.agent.clone(),
        provider: args.provider.clone(),
        locality: args.locality.clone(),
        min_reward: args.min_reward,
        r#where: args.r#where.clone(),
        validation_percent: args.validation_percent,
        min_reward_gap: args.min_reward_gap,
    };
    let summary = match args.target {
        ExportTarget::TrlSft => {
            trl::export_trl_sft_filtered(&engine, &args.out, &options, &filters).await?
        }
        ExportTarget::OpenclawRl => {
            trajectory_exporters::openclaw_rl::export_openclaw_rl(
                &engine, &args.out, &options, &filters,
            )
            .await?
        }
        other => {
            use trajectory_exporters::training::{export_training, TrainingTarget};
            let target = match other {
                ExportTarget::OpenaiSft => TrainingTarget::OpenAiSft,
                ExportTarget::OpenaiDpo => TrainingTarget::OpenAiDpo,
                ExportTarget::TrlPreference => TrainingTarget::TrlPreference,
                ExportTarget::Kto => TrainingTarget::Kto,
                ExportTarget::Grpo => TrainingTarget::Grpo,
                _ => TrainingTarget::RlTurns,
            };
            export_training(&engine, target, &args.out, &options, &filters).await?
        }
    };
    store_commands::register_export(
        store,
        &summary.target,
        &summary.out_dir,
        &summary.manifest,
        summary.events_version,
    )
    .await?;
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
