//! `trajectory build CONFIG.toml`: the nightly dataset build. Runs derive →
//! dedupe → export for every `[[dataset]]` of the config, pinned to one
//! version of the event log, and does nothing when neither the log nor the
//! config changed since the last build.
//!
//! ```toml
//! [derive]                      # optional: parameters of `trajectory derive`
//! credit = "grpo"               # copy | discount | grpo
//! gamma = 0.9
//! prm_coef = 1.0
//! reask_threshold = 0.5
//! idle_gap_minutes = 30
//!
//! [dedupe]                      # optional: leave out turns of trajectories not kept
//! threshold = 0.8               # exact Jaccard of a near-duplicate
//! bands = 14
//! rows = 8
//! shingle_words = 5
//! eval = ["evals/heldout.jsonl"] # decontamination, relative to the config
//!
//! [[dataset]]
//! name = "sft-local"
//! target = "openai-sft"         # any `export --target`
//! out = "datasets/sft-local"    # relative to the config file
//! locality = "cloud"            # filters: since, until, agent, provider,
//! min_reward = 0.0              #   locality, min_reward, where
//! validation_percent = 5
//! min_reward_gap = 1.0          # preference targets
//! rows_per_shard = 10000
//! ```
//!
//! State: `<config>.state.json` beside the config (config sha256, events
//! version, `--as-of`, and every output shard's path, size and sha256). The
//! build is skipped ("nothing new") when the config hash and events version
//! are unchanged and every recorded shard is still there with its size.
//! Same config and `--as-of` → byte-identical shards.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use trajectory_exporters::training::{export_training, TrainingTarget};
use trajectory_exporters::{trl, ExportFilters, ExportOptions, ShardInfo};
use trajectory_query::{AsOf, QueryEngine};
use trajectory_store::EventStore;
use trajectory_transforms::dedupe::{dedupe, DedupeOptions};
use trajectory_transforms::{derive, DeriveOptions};

/// `trajectory build` arguments.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The build config (TOML: [derive], [dedupe], [[dataset]]; see docs/datasets.md).
    #[arg(value_name = "CONFIG")]
    pub build_config: PathBuf,
    /// Build from the log as it was at a version or time (reproducible rebuilds).
    #[arg(long, value_name = "VERSION|TIMESTAMP")]
    pub as_of: Option<String>,
    /// Rebuild even when nothing changed.
    #[arg(long)]
    pub force: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BuildConfig {
    #[serde(default)]
    derive: Option<DeriveSection>,
    #[serde(default)]
    dedupe: Option<DedupeSection>,
    #[serde(rename = "dataset", default)]
    datasets: Vec<DatasetSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeriveSection {
    credit: Option<String>,
    gamma: Option<f64>,
    prm_coef: Option<f64>,
    reask_threshold: Option<f64>,
    idle_gap_minutes: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DedupeSection {
    threshold: Option<f64>,
    bands: Option<usize>,
    rows: Option<usize>,
    shingle_words: Option<usize>,
    #[serde(default)]
    eval: Vec<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatasetSection {
    name: String,
    target: String,
    out: PathBuf,
    since: Option<String>,
    until: Option<String>,
    agent: Option<String>,
    provider: Option<String>,
    locality: Option<String>,
    min_reward: Option<f64>,
    r#where: Option<String>,
    validation_percent: Option<u8>,
    min_reward_gap: Option<f64>,
    rows_per_shard: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct BuildState {
    config_sha256: String,
    events_version: u64,
    as_of: Option<String>,
    /// Every dataset's shards as written (absent in the key comparison).
    #[serde(default)]
    outputs: Vec<BuiltOutput>,
}

/// One dataset's shards as the last build wrote them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct BuiltOutput {
    name: String,
    out_dir: String,
    shards: Vec<RecordedShard>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct RecordedShard {
    path: String,
    bytes: u64,
    sha256: String,
}

impl BuildState {
    fn same_inputs(&self, other: &BuildState) -> bool {
        self.config_sha256 == other.config_sha256
            && self.events_version == other.events_version
            && self.as_of == other.as_of
    }

    /// Whether every recorded shard is still on disk with its recorded size.
    fn outputs_intact(&self, datasets: usize) -> bool {
        self.outputs.len() == datasets
            && self.outputs.iter().all(|o| {
                let dir = Path::new(&o.out_dir);
                dir.join("manifest.json").is_file()
                    && o.shards.iter().all(|s| {
                        std::fs::metadata(dir.join(&s.path)).is_ok_and(|m| m.len() == s.bytes)
                    })
            })
    }
}

#[derive(Debug, Serialize)]
struct BuiltDataset {
    name: String,
    target: String,
    rows: usize,
    out_dir: String,
    manifest: String,
}

#[derive(Debug, Serialize)]
struct BuildSummary {
    events_version: u64,
    up_to_date: bool,
    datasets: Vec<BuiltDataset>,
}

pub async fn run_build(store: &EventStore, args: BuildArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.build_config).with_context(|| {
        format!(
            "cannot read the build config {}",
            args.build_config.display()
        )
    })?;
    let config: BuildConfig = toml::from_str(&text)
        .with_context(|| format!("invalid build config {}", args.build_config.display()))?;
    if config.datasets.is_empty() {
        bail!(
            "{} has no [[dataset]]: nothing to build",
            args.build_config.display()
        );
    }
    let base = args
        .build_config
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let as_of = args.as_of.as_deref().map(str::parse::<AsOf>).transpose()?;
    let engine = QueryEngine::open(store, as_of.as_ref()).await?;
    let state_path = PathBuf::from(format!("{}.state.json", args.build_config.display()));
    let mut state = BuildState {
        config_sha256: hex::encode(Sha256::digest(text.as_bytes())),
        events_version: engine.events_version(),
        as_of: args.as_of.clone(),
        outputs: Vec::new(),
    };
    let mut names = std::collections::HashSet::new();
    for dataset in &config.datasets {
        if !names.insert(dataset.name.as_str()) {
            bail!(
                "dataset name {:?} appears twice in the config",
                dataset.name
            );
        }
        if dataset.target != trl::TARGET && TrainingTarget::from_name(&dataset.target).is_none() {
            bail!(
                "dataset {}: unknown target {:?} (trl-sft, openai-sft, openai-dpo, trl-preference, kto, grpo, rl-turns)",
                dataset.name,
                dataset.target
            );
        }
    }
    let previous: Option<BuildState> = std::fs::read_to_string(&state_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let up_to_date = previous
        .as_ref()
        .is_some_and(|p| p.same_inputs(&state) && p.outputs_intact(config.datasets.len()));
    if !args.force && up_to_date {
        let summary = BuildSummary {
            events_version: state.events_version,
            up_to_date: true,
            datasets: Vec::new(),
        };
        if args.json {
            println!("{}", serde_json::to_string_pretty(&summary)?);
        } else {
            println!(
                "nothing new since the last build (events version {}, same config): nothing done",
                state.events_version
            );
        }
        return Ok(());
    }

    // 1. derive
    let mut derive_options = DeriveOptions {
        as_of: as_of.clone(),
        ..Default::default()
    };
    if let Some(section) = &config.derive {
        if let Some(credit) = &section.credit {
            derive_options.rewards.credit = credit
                .parse()
                .map_err(|e| anyhow::anyhow!("[derive] credit: {e}"))?;
        }
        if let Some(gamma) = section.gamma {
            derive_options.rewards.gamma = gamma;
        }
        if let Some(c) = section.prm_coef {
            derive_options.rewards.prm_coef = c;
        }
        if let Some(j) = section.reask_threshold {
            derive_options.rewards.reask_threshold = j;
            derive_options.episodes.reask_threshold = j;
        }
        if let Some(m) = section.idle_gap_minutes {
            derive_options.episodes.idle_gap_us = (m * 60.0 * 1e6).round() as i64;
        }
    }
    derive_options
        .validate()
        .map_err(|e| anyhow::anyhow!("[derive] {e}"))?;
    derive(store, &derive_options).await?;
    // 2. dedupe
    let mut keep_filter: Option<String> = None;
    if let Some(section) = &config.dedupe {
        let mut options = DedupeOptions {
            as_of: as_of.clone(),
            ..Default::default()
        };
        if let Some(t) = section.threshold {
            options.minhash.threshold = t;
        }
        if let Some(b) = section.bands {
            options.minhash.bands = b;
        }
        if let Some(r) = section.rows {
            options.minhash.rows = r;
        }
        if let Some(w) = section.shingle_words {
            options.minhash.shingle_words = w;
        }
        options.eval_files = section.eval.iter().map(|p| base.join(p)).collect();
        dedupe(store, &options).await?;
        keep_filter = Some(
            "t.turn_id NOT IN (SELECT unnest(tr.turn_ids) FROM trajectories tr \
             JOIN dedupe_clusters d ON d.trajectory_id = tr.trajectory_id WHERE NOT d.kept)"
                .to_string(),
        );
    }
    // 3. export, on a fresh engine that sees the derived tables just written
    let engine = QueryEngine::open_with(
        store,
        as_of.as_ref(),
        trajectory_exporters::export_engine_options(
            trajectory_exporters::DEFAULT_EXPORT_MEMORY_BYTES,
        ),
    )
    .await?;
    let mut built = Vec::new();
    for dataset in &config.datasets {
        let out = base.join(&dataset.out);
        let mut options = ExportOptions::new(store.location().root().to_string());
        options.as_of = args.as_of.clone();
        options.jobs = crate::store_commands::derived_jobs(store).await?;
        if let Some(n) = dataset.rows_per_shard {
            options.rows_per_shard = n;
        }
        // Dedupe leaves out the turns of trajectories not kept; for trl-sft
        // (one row per session, over events) the sessions none of whose
        // trajectories was kept.
        let keep = keep_filter.as_ref().map(|turns| {
            if dataset.target == trl::TARGET {
                "e.session_id NOT IN (SELECT session_id FROM dedupe_clusters WHERE session_id IS NOT NULL \
                 GROUP BY session_id HAVING NOT bool_or(kept))"
                    .to_string()
            } else {
                turns.clone()
            }
        });
        let predicate = match (&dataset.r#where, keep) {
            (Some(w), Some(k)) => Some(format!("({w}) AND {k}")),
            (w, k) => k.or_else(|| w.clone()),
        };
        let filters = ExportFilters {
            since: dataset.since.clone(),
            until: dataset.until.clone(),
            agent: dataset.agent.clone(),
            provider: dataset.provider.clone(),
            locality: dataset.locality.clone(),
            min_reward: dataset.min_reward,
            r#where: predicate,
            validation_percent: dataset.validation_percent.unwrap_or(5),
            min_reward_gap: dataset.min_reward_gap.unwrap_or(1.0),
        };
        let summary = match TrainingTarget::from_name(&dataset.target) {
            Some(target) => export_training(&engine, target, &out, &options, &filters)
                .await
                .with_context(|| format!("dataset {}", dataset.name))?,
            None => trl::export_trl_sft_filtered(&engine, &out, &options, &filters)
                .await
                .with_context(|| format!("dataset {}", dataset.name))?,
        };
        state.outputs.push(BuiltOutput {
            name: dataset.name.clone(),
            out_dir: out.display().to_string(),
            shards: summary.shards.iter().map(recorded).collect(),
        });
        crate::store_commands::register_export(
            store,
            &summary.target,
            &summary.out_dir,
            &summary.manifest,
            summary.events_version,
        )
        .await?;
        built.push(BuiltDataset {
            name: dataset.name.clone(),
            target: summary.target.clone(),
            rows: summary.rows,
            out_dir: summary.out_dir.clone(),
            manifest: summary.manifest.clone(),
        });
    }
    std::fs::write(&state_path, serde_json::to_string_pretty(&state)? + "\n")
        .with_context(|| format!("cannot write {}", state_path.display()))?;
    let summary = BuildSummary {
        events_version: state.events_version,
        up_to_date: false,
        datasets: built,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("built from events version {}:", summary.events_version);
        for d in &summary.datasets {
            println!(
                "  {:<20} {:<15} {:>7} row(s)  {}",
                d.name, d.target, d.rows, d.out_dir
            );
        }
    }
    Ok(())
}

fn recorded(shard: &ShardInfo) -> RecordedShard {
    RecordedShard {
        path: shard.path.clone(),
        bytes: shard.bytes,
        sha256: shard.sha256.clone(),
    }
}
