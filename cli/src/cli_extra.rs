//! Options shared by `encrypt`, `decrypt` and `rewrap` beyond those of `CLI.md`'s first
//! version: keyring files, metadata lines, the folder suffix and the data-key cache.

use std::path::PathBuf;
use std::sync::OnceLock;

use clap::Args;

/// `-K`, `--metadata-output`, `--suffix`, `--caching` and the cache's limits.
#[derive(Debug, Args)]
pub struct ExtraArgs {
    /// TOML file of keyring specs (`keyrings = [...]`, for rewrap also `to = [...]`), used
    /// after the -k (and --to) ones; keeps long specs and PINs off command lines.
    #[arg(short = 'K', long = "keyring-file", value_name = "FILE")]
    pub keyring_file: Option<PathBuf>,
    /// Append one JSON line per message (id, suite, context keys but never values, EDK
    /// keys; on decrypt and rewrap the key that opened it) to FILE, or `-` for stdout when
    /// the data does not go there.
    #[arg(long, value_name = "FILE|-")]
    pub metadata_output: Option<PathBuf>,
    /// With -r: the suffix of message file names (added on encrypt, required and removed on
    /// decrypt, required on rewrap).
    #[arg(long, value_name = "SUFFIX", default_value = ".enc", value_parser = parse_suffix)]
    pub suffix: String,
    /// With -r or --manifest: reuse data keys across files through a cache (one KMS or HSM
    /// call for many files), within the --cache-* limits. Files are streamed, so the cache
    /// cannot count their bytes: it has no byte limit here.
    #[arg(long)]
    pub caching: bool,
    /// With --caching: seconds a cached data key is used.
    #[arg(long, value_name = "SECS", default_value_t = 300, requires = "caching",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub cache_max_age: u64,
    /// With --caching: messages per cached data key.
    #[arg(long, value_name = "N", default_value_t = 4096, requires = "caching",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub cache_max_messages: u64,
}

/// S3 runs over many objects (`CLI.md`, "S3"): a manifest, a shard of it, a report.
#[derive(Debug, Args)]
pub struct S3Args {
    /// S3 Batch Operations CSV manifest (`bucket,key[,versionId]` rows, keys URL-encoded
    /// as S3 writes them): process these objects instead of INPUT.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["recursive", "input"])]
    pub manifest: Option<PathBuf>,
    /// With --manifest: process only the I-th of N disjoint slices (0 <= I < N, by a
    /// stable hash of bucket and key), or `auto` (AWS_BATCH_JOB_ARRAY_INDEX and
    /// AWS_BATCH_JOB_ARRAY_SIZE, or JOB_COMPLETION_INDEX and ENVCRYPT_SHARDS).
    #[arg(long, value_name = "I/N|auto", requires = "manifest")]
    pub shard: Option<String>,
    /// With --manifest or an S3 -r: write one S3 Batch Operations completion-report CSV row
    /// per object (Bucket,Key,VersionId,TaskStatus,ErrorCode,HTTPStatusCode,ResultMessage;
    /// no header row) to FILE, replaced whole at the end of the run.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// `--suffix`: not empty, no `/`, no NUL, not `.` or `..`.
fn parse_suffix(s: &str) -> Result<String, String> {
    if s.is_empty() || s.contains(['/', '\0']) || s == "." || s == ".." {
        return Err("expected a non-empty suffix without '/' (e.g. .enc)".to_owned());
    }
    Ok(s.to_owned())
}

/// `-c KEY=VALUE`, or a bare `-c KEY` (decrypt: the key must be present with any value).
pub fn parse_context(s: &str) -> Result<(String, Option<String>), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), Some(v.to_owned()))),
        None if !s.is_empty() => Ok((s.to_owned(), None)),
        _ => Err("expected KEY=VALUE (or KEY) with a non-empty KEY".to_owned()),
    }
}

static SUFFIX: OnceLock<String> = OnceLock::new();

/// Sets the folder suffix of this run (`--suffix`; the first call wins).
pub fn set_suffix(suffix: &str) {
    let _ = SUFFIX.set(suffix.to_owned());
}

/// The folder suffix of this run (default `.enc`).
pub fn suffix() -> &'static str {
    SUFFIX.get().map_or(".enc", String::as_str)
}

/// The data-key cache limits of `--cache-*`. No byte limit: files are streamed, their
/// length unknown to the cache, which would otherwise bypass itself for every file.
pub fn cache_limits(extra: &ExtraArgs) -> envcrypt::materials::CacheLimits {
    envcrypt::materials::CacheLimits::default()
        .with_max_age(std::time::Duration::from_secs(extra.cache_max_age))
        .with_max_messages(extra.cache_max_messages)
        .with_max_bytes(u64::MAX)
}

/// Splits `-c` pairs into KEY=VALUE pairs and bare keys.
pub fn split_context(pairs: &[(String, Option<String>)]) -> (Vec<(String, String)>, Vec<String>) {
    let mut full = Vec::new();
    let mut bare = Vec::new();
    for (k, v) in pairs {
        match v {
            Some(v) => full.push((k.clone(), v.clone())),
            None => bare.push(k.clone()),
        }
    }
    (full, bare)
}

/// Why a file was skipped on decrypt: "name does not end in SUFFIX (not decrypted)".
pub fn not_suffixed() -> &'static str {
    static REASON: OnceLock<String> = OnceLock::new();
    REASON.get_or_init(|| format!("name does not end in {} (not decrypted)", suffix()))
}

/// `builder` with `keyring`, behind the data-key cache when `caching` gives its limits.
pub fn with_keyring(
    builder: envcrypt::ClientBuilder,
    keyring: envcrypt::keyring::MultiKeyring,
    caching: Option<&ExtraArgs>,
) -> envcrypt::ClientBuilder {
    use envcrypt::materials::{CachingMaterialsManager, DefaultMaterialsManager};
    match caching {
        Some(extra) => builder.materials_manager(CachingMaterialsManager::new(
            DefaultMaterialsManager::new(keyring),
            CACHE_ENTRIES,
            cache_limits(extra),
        )),
        None => builder.keyring(keyring),
    }
}

/// Entries of the data-key cache of a folder run (one per distinct context and key set).
const CACHE_ENTRIES: usize = 64;
