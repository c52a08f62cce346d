//! `trajectory-corpus`: write a deterministic, realistic OpenClaw corpus.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

const USAGE: &str = "usage: trajectory-corpus --out DIR [--seed N] [--size 10MB]

Writes agents/<agent>/sessions/*.jsonl (transcript v3), tmp-openclaw/openclaw-DAY.log
(gateway logs with fallback decisions) and corpus.json (what was planted: secrets,
malformed lines, near-duplicate sessions, images, fallbacks). Same seed and size, same bytes.";

fn main() -> Result<()> {
    let mut out: Option<PathBuf> = None;
    let mut seed = 42u64;
    let mut size = 10_000_000u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out = args.next().map(PathBuf::from),
            "--seed" => {
                seed = args
                    .next()
                    .context("--seed N")?
                    .parse()
                    .context("--seed N")?
            }
            "--size" => {
                let text = args.next().context("--size SIZE")?;
                size = trajectory_corpus::parse_size(&text)
                    .with_context(|| format!("--size {text}: use e.g. 10MB, 1.5GB, 500KB"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    let out = out.context(USAGE)?;
    std::fs::create_dir_all(&out)?;
    let stats = trajectory_corpus::generate(&out, seed, size)?;
    println!("{}", serde_json::to_string_pretty(&stats)?);
    Ok(())
}
