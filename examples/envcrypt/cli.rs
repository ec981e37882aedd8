//! Command-line definitions (clap derive). The interface contract is `CLI.md`.
//!
//! Keyring specs (`-k`) are kept as plain strings here and parsed in `keyring_spec`, so a
//! malformed spec never ends up echoed whole in an error (a PKCS#11 URI may hold a PIN).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use envcrypt::AlgorithmSuite;

/// Client-side envelope encryption in the AWS Encryption SDK message format.
#[derive(Debug, Parser)]
#[command(name = "envcrypt", version, about, max_term_width = 100)]
pub struct Cli {
    /// Crypto provider to use (`aws-lc-rs`, `aws-lc-rs-fips`, `rust-crypto`: any compiled in).
    #[arg(long, global = true, value_name = "NAME")]
    pub provider: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Round trip on a synthetic DICOM-like image with a local key: encrypt, inspect,
    /// decrypt, verify, and report throughput.
    Demo(DemoArgs),
    /// Generate a key.
    #[command(subcommand)]
    Keygen(KeygenCommand),
    /// Encrypt one input (file or stdin) into one message.
    Encrypt(EncryptArgs),
    /// Decrypt one message.
    Decrypt(DecryptArgs),
    /// Print a message header as one JSON object (no key needed; nothing decrypted).
    Inspect(InspectArgs),
    /// Print version and crypto provider information as one JSON object.
    Info,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Size of the synthetic image in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 512 * 1024 * 1024)]
    pub size: u64,
    /// Directory for the key and the files (default: a new temporary directory, removed at
    /// the end).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Algorithm suite: 0578 (signed, default) or 0478.
    #[arg(long, value_name = "ID", value_parser = parse_suite, default_value = "0578")]
    pub suite: AlgorithmSuite,
    /// Frame length in bytes.
    #[arg(long, value_name = "N", default_value_t = 65536,
          value_parser = clap::value_parser!(u32).range(1..=0x7FFF_FFFF))]
    pub frame_length: u32,
}

#[derive(Debug, Subcommand)]
pub enum KeygenCommand {
    /// A random 32-byte AES key, written as base64 text (file mode 0600; never overwrites).
    Aes256 {
        /// Output file (default: stdout).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// An RSA key pair: PREFIX.pem (private, PKCS#8) and PREFIX.pub.pem (public, SPKI).
    Rsa {
        /// Modulus size in bits.
        #[arg(long, default_value_t = 3072)]
        bits: u32,
        /// Output prefix.
        #[arg(short, long, value_name = "PREFIX")]
        output: PathBuf,
    },
}

/// Options shared by `encrypt` and `decrypt`.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Keyring spec (repeatable): raw-aes:NAMESPACE:NAME:PATH, raw-rsa:..., aws-kms:...,
    /// aws-kms-discovery:..., pkcs11:...
    #[arg(short, long = "keyring", value_name = "KEYRING", required = true)]
    pub keyrings: Vec<String>,
    /// Encryption context pair (repeatable).
    #[arg(short = 'c', long = "context", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub context: Vec<(String, String)>,
    /// Output file (default: stdout). Written to a temporary file and renamed into place
    /// only on success.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Allow replacing an existing OUT.
    #[arg(long)]
    pub force: bool,
    /// No messages except errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// Input file, or `-` for stdin (the default).
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,
    // `-r/--recursive` (directory INPUT, `-o OUTDIR`) and the progress bar belong here; see
    // `crypt::Job`, which already describes one file to process.
}

#[derive(Debug, Args)]
pub struct EncryptArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Algorithm suite: 0578 (signed, the default) or 0478.
    #[arg(long, value_name = "ID", value_parser = parse_suite, default_value = "0578")]
    pub suite: AlgorithmSuite,
    /// Frame length in bytes.
    #[arg(long, value_name = "N", default_value_t = 65536,
          value_parser = clap::value_parser!(u32).range(1..=0x7FFF_FFFF))]
    pub frame_length: u32,
    /// Context pair authenticated but kept out of the stored header (repeatable); the
    /// reader must supply it with `decrypt --required-context`.
    #[arg(long = "required-context", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub required_context: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Context pair that was kept out of the stored header (repeatable).
    #[arg(long = "required-context", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub required_context: Vec<(String, String)>,
    /// Also read legacy version 1 (non-committing) messages.
    #[arg(long)]
    pub allow_v1: bool,
    /// Refuse signed suites.
    #[arg(long)]
    pub unsigned_only: bool,
    /// Most encrypted data keys a message may carry.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_edks: Option<u16>,
    /// Largest frame length accepted, in bytes.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_frame_length: Option<u32>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Message file, or `-` for stdin (the default).
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,
}

/// `KEY=VALUE`, split at the first `=`; the key must not be empty.
fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err("expected KEY=VALUE with a non-empty KEY".to_owned()),
    }
}

/// The suites envcrypt writes: `0578` / `0x0578` and `0478` / `0x0478`.
fn parse_suite(s: &str) -> Result<AlgorithmSuite, String> {
    let hex = s.strip_prefix("0x").unwrap_or(s);
    match hex.to_ascii_lowercase().as_str() {
        "0578" => Ok(AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384),
        "0478" => Ok(AlgorithmSuite::Aes256GcmHkdfSha512Commit),
        _ => Err("expected 0578 or 0478".to_owned()),
    }
}
