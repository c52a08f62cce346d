//! Where a model ran, from its provider name.
//!
//! Provider ids are pi-ai's `KnownProvider` names plus OpenClaw's plugin
//! providers (`shared/docs/openclaw-formats.md` §1.6 and §4). Reading base URLs
//! from `openclaw.json` / `models.json` (loopback → local) is a later step.

use std::collections::HashMap;

use serde_json::Value;
use trajectory_schema::{Event, Locality};

/// Providers that serve models from the user's own machine or network.
const LOCAL_PROVIDERS: &[&str] = &[
    "ollama",
    "lmstudio",
    "lm-studio",
    "vllm",
    "llama.cpp",
    "llamacpp",
    "llama-cpp",
    "localai",
    "local",
    "mlx",
    "sglang",
    "tgi",
    "koboldcpp",
    "jan",
];

/// Hosted providers: content sent to them left the machine.
const CLOUD_PROVIDERS: &[&str] = &[
    "anthropic",
    "openai",
    "openai-codex",
    "azure-openai",
    "azure-openai-responses",
    "google",
    "google-gemini-cli",
    "google-vertex",
    "google-antigravity",
    "vertex",
    "amazon-bedrock",
    "bedrock",
    "openrouter",
    "groq",
    "xai",
    "mistral",
    "zai",
    "minimax",
    "minimax-cn",
    "deepseek",
    "together",
    "fireworks",
    "cerebras",
    "perplexity",
    "moonshot",
    "kimi-coding",
    "qwen-portal",
    "github-copilot",
    "huggingface",
    "nvidia",
    "venice",
    "vercel-ai-gateway",
    "opencode",
    "cohere",
];

/// The locality of a provider id (case-insensitive).
///
/// `openclaw` is [`Locality::Internal`] (gateway-written messages); `custom-api-*`
/// and anything unlisted is [`Locality::Unknown`].
pub fn locality_of_provider(provider: &str) -> Locality {
    let provider = provider.trim().to_ascii_lowercase();
    if provider == "openclaw" {
        Locality::Internal
    } else if LOCAL_PROVIDERS.contains(&provider.as_str()) {
        Locality::Local
    } else if CLOUD_PROVIDERS.contains(&provider.as_str()) {
        Locality::Cloud
    } else {
        Locality::Unknown
    }
}

/// Where a base URL points: loopback and private networks are local, any
/// other host is cloud. `None` when the URL has no host.
pub fn locality_of_base_url(base_url: &str) -> Option<Locality> {
    let rest = base_url
        .split_once("://")
        .map_or(base_url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        bracketed.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    let host = host.to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    let local_name = host == "localhost"
        || host.ends_with(".localhost")
        || host.ends_with(".local")
        || host.ends_with(".lan")
        || host.ends_with(".internal")
        || host == "host.docker.internal";
    let local_ip = match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => {
            ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
        }
        Ok(std::net::IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.is_unspecified() || (ip.segments()[0] & 0xfe00) == 0xfc00
        }
        Err(_) => false,
    };
    Some(if local_name || local_ip {
        Locality::Local
    } else {
        Locality::Cloud
    })
}

/// Provider → locality, from (highest precedence first) explicit overrides,
/// base URLs found in OpenClaw's `openclaw.json` / `models.json`, and the
/// built-in provider list ([`locality_of_provider`]).
#[derive(Debug, Clone, Default)]
pub struct LocalityTable {
    overrides: HashMap<String, Locality>,
    learned: HashMap<String, (Locality, String)>,
}

impl LocalityTable {
    /// The built-in table only.
    pub fn new() -> LocalityTable {
        LocalityTable::default()
    }

    /// Forces a provider's locality (from the user's config).
    pub fn set_override(&mut self, provider: &str, locality: Locality) {
        self.overrides
            .insert(provider.to_ascii_lowercase(), locality);
    }

    /// Learns base URLs from an OpenClaw config (`models.providers.<id>.baseUrl`)
    /// or an agent's `models.json` (`providers.<id>.baseUrl`). Returns how many
    /// providers were learned.
    pub fn learn_from_config(&mut self, config: &Value) -> usize {
        let providers = config
            .pointer("/models/providers")
            .or_else(|| config.get("providers"))
            .and_then(Value::as_object);
        let mut learned = 0;
        for (name, provider) in providers.into_iter().flatten() {
            let Some(url) = provider.get("baseUrl").and_then(Value::as_str) else {
                continue;
            };
            if let Some(locality) = locality_of_base_url(url) {
                self.learned
                    .insert(name.to_ascii_lowercase(), (locality, url.to_string()));
                learned += 1;
            }
        }
        learned
    }

    /// The locality of `provider`.
    pub fn locality(&self, provider: &str) -> Locality {
        let key = provider.trim().to_ascii_lowercase();
        if key == "openclaw" {
            return Locality::Internal;
        }
        if let Some(locality) = self.overrides.get(&key) {
            return *locality;
        }
        if let Some((locality, _)) = self.learned.get(&key) {
            return *locality;
        }
        locality_of_provider(&key)
    }

    /// Sets `locality` on every event that names a provider.
    pub fn apply(&self, events: &mut [Event]) {
        for event in events {
            if let Some(provider) = event.provider.as_deref() {
                event.locality = Some(self.locality(provider));
            }
        }
    }

    /// Providers whose locality came from a base URL, with the URL.
    pub fn learned(&self) -> impl Iterator<Item = (&str, Locality, &str)> {
        self.learned
            .iter()
            .map(|(name, (locality, url))| (name.as_str(), *locality, url.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_classify_by_host() {
        for (url, expected) in [
            ("http://127.0.0.1:11434", Locality::Local),
            ("http://localhost:1234/v1", Locality::Local),
            ("http://[::1]:8000/v1", Locality::Local),
            ("http://192.168.1.20:11434", Locality::Local),
            ("http://gpu-box.lan:8000", Locality::Local),
            ("https://api.openai.com/v1", Locality::Cloud),
            ("https://user:pw@openrouter.ai/api/v1", Locality::Cloud),
        ] {
            assert_eq!(locality_of_base_url(url), Some(expected), "{url}");
        }
        assert_eq!(locality_of_base_url("http:///x"), None);
    }

    #[test]
    fn overrides_beat_learned_urls_which_beat_the_builtin_list() {
        let mut table = LocalityTable::new();
        let config = serde_json::json!({"models": {"providers": {
            "cloudstub": {"baseUrl": "http://127.0.0.1:44761/v1"},
            "ollama": {"baseUrl": "https://ollama.example.com"}
        }}});
        assert_eq!(table.learn_from_config(&config), 2);
        assert_eq!(table.locality("cloudstub"), Locality::Local);
        assert_eq!(
            table.locality("ollama"),
            Locality::Cloud,
            "a remote Ollama is not local"
        );
        assert_eq!(table.locality("anthropic"), Locality::Cloud);
        table.set_override("cloudstub", Locality::Cloud);
        assert_eq!(table.locality("cloudstub"), Locality::Cloud);
        assert_eq!(table.locality("openclaw"), Locality::Internal);
    }

    #[test]
    fn known_providers_classify() {
        assert_eq!(locality_of_provider("ollama"), Locality::Local);
        assert_eq!(locality_of_provider("LMStudio"), Locality::Local);
        assert_eq!(locality_of_provider("openai-codex"), Locality::Cloud);
        assert_eq!(locality_of_provider("anthropic"), Locality::Cloud);
        assert_eq!(locality_of_provider("openclaw"), Locality::Internal);
        assert_eq!(locality_of_provider("custom-api-foo"), Locality::Unknown);
    }
}
