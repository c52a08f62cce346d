//! Default locations: the store, and the agent state directories `ingest`
//! reads when given no path (`shared/docs/openclaw-formats.md` §0).

use std::path::PathBuf;

use anyhow::{bail, Result};

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// `$XDG_DATA_HOME/trajectory/store`, else `~/.local/share/trajectory/store`.
pub fn default_store() -> Result<String> {
    let base = match std::env::var_os("XDG_DATA_HOME").filter(|h| !h.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match home() {
            Some(home) => home.join(".local/share"),
            None => bail!(
                "no --store given and neither TRAJECTORY_STORE, XDG_DATA_HOME nor HOME is set"
            ),
        },
    };
    Ok(base.join("trajectory/store").display().to_string())
}

/// Existing OpenClaw / pi state directories: `$OPENCLAW_STATE_DIR`,
/// `~/.openclaw`, profiles `~/.openclaw-*`, legacy `~/.clawdbot` and
/// `~/.moltbot`, pi's `~/.pi/agent/sessions`, and the gateway log
/// directories `/tmp/openclaw`, `/tmp/clawdbot`, `/tmp/moltbot`.
pub fn openclaw_state_dirs() -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Some(dir) = std::env::var_os("OPENCLAW_STATE_DIR").map(PathBuf::from) {
        found.push(dir);
    }
    if let Some(home) = home() {
        found.push(home.join(".openclaw"));
        if let Ok(entries) = std::fs::read_dir(&home) {
            let mut profiles: Vec<PathBuf> = entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(".openclaw-"))
                .map(|e| e.path())
                .collect();
            profiles.sort();
            found.extend(profiles);
        }
        found.push(home.join(".clawdbot"));
        found.push(home.join(".moltbot"));
        found.push(home.join(".pi/agent/sessions"));
    }
    for logs in ["/tmp/openclaw", "/tmp/clawdbot", "/tmp/moltbot"] {
        found.push(PathBuf::from(logs));
    }
    found.retain(|p| p.is_dir());
    found.dedup();
    found
}
