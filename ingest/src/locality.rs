//! Where a model ran, from its provider name.
//!
//! Provider ids are pi-ai's `KnownProvider` names plus OpenClaw's plugin
//! providers (`shared/docs/openclaw-formats.md` §1.6 and §4). Reading base URLs
//! from `openclaw.json` / `models.json` (loopback → local) is a later step.

use trajectory_schema::Locality;

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

#[cfg(test)]
mod tests {
    use super::*;

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
