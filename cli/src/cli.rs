//! Command-line definitions (clap derive). The interface contract is `CLI.md`.
//!
//! Keyring specs (`-k`) are kept as plain strings here and parsed in `keyring_spec`, so a
//! malformed spec never ends up echoed whole in an error (a PKCS#11 URI may hold a PIN).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use envcrypt::AlgorithmSuite;

/// Client-side envelope encryption in the AWS Encryption SDK message format.
#[derive(Debug, Parser)]
#[command(name = "envcrypt", version, about, max_term_width = 100, after_help = MAIN_HELP)]
pub struct Cli {
    /// Crypto provider to use (`aws-lc-rs`, `aws-lc-rs-fips`, `rust-crypto`: any compiled in).
    #[arg(long, global = true, value_name = "NAME")]
    pub provider: Option<String>,

    /// Log what the tool does to stderr: -v operations (info), -vv details (debug, and other
    /// crates' warnings). Default: envcrypt's warnings only; RUST_LOG, if set, takes
    /// precedence. Never logs keys, PINs, context values or data.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(flatten)]
    pub audit: AuditFlags,

    #[command(subcommand)]
    pub command: Command,
}

/// The audit trail's options (global; used by encrypt, decrypt, rewrap and
/// `inspect --summary --require-key`).
#[derive(Debug, Args)]
pub struct AuditFlags {
    /// Append a tamper-evident record of every key use and operation to FILE (chained JSON
    /// lines; never keys, data or context values). If it cannot be written, the operation
    /// fails and writes nothing.
    #[arg(long, global = true, value_name = "FILE", env = "ENVCRYPT_AUDIT_LOG")]
    pub audit_log: Option<PathBuf>,
    /// Sign a checkpoint of the audit log with this ECDSA P-384 key (PEM, from `keygen
    /// audit`) at the end of the run and every 1000 events.
    #[arg(
        long,
        global = true,
        value_name = "PEM",
        env = "ENVCRYPT_AUDIT_SIGNING_KEY"
    )]
    pub audit_signing_key: Option<PathBuf>,
    /// Go on when the audit log cannot be written (default: fail closed).
    #[arg(long, global = true, requires = "audit_log")]
    pub audit_fail_open: bool,
}

/// `envcrypt audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check an audit log: exit 0 and a JSON summary when it is intact, 1 naming the first
    /// broken line (edited, removed, moved, unsigned at the end, or signed by another key).
    Verify(AuditVerifyArgs),
}

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// The checkpoints' public key (PEM, `keygen audit`'s PREFIX.pub.pem). Without it the
    /// checkpoints are checked against the key they carry, which the summary names.
    #[arg(long, value_name = "PEM")]
    pub public_key: Option<PathBuf>,
    /// The audit log.
    #[arg(value_name = "FILE")]
    pub log: PathBuf,
}

const MAIN_HELP: &str = "\
Examples:
  envcrypt demo                                   # round trip on a synthetic 512 MiB image
  envcrypt keygen aes256 -o site.key
  envcrypt encrypt -k raw-aes:hospital-a:imaging-2026:site.key -r -o upload/ study/
  envcrypt decrypt -k raw-aes:hospital-a:imaging-2026:site.key -o scan.dcm scan.dcm.enc
  envcrypt inspect scan.dcm.enc
  tar c study/ | envcrypt encrypt -k raw-aes:hospital-a:imaging-2026:site.key > study.tar.enc
  envcrypt completions bash > ~/.local/share/bash-completion/completions/envcrypt
  envcrypt manpage > ~/.local/share/man/man1/envcrypt.1   # then: man envcrypt
  envcrypt -v decrypt ...                         # log steps to stderr (-vv: details)

Exit codes: 0 ok, 1 authentication or policy failure (tampered, truncated, wrong key, context \
mismatch), 2 usage, 3 I/O, 4 keyring unreachable or refused.

Warning: the encryption context (-c KEY=VALUE) is stored UNENCRYPTED in the header; never put \
patient identifiers in it.";

const DEMO_HELP: &str = "\
Examples:
  envcrypt demo                         # 512 MiB in a temporary directory, removed afterwards
  envcrypt demo --size 100000000 --dir demo --suite 0478
  envcrypt demo --threads 1             # compare with the parallel pipeline";

const KEYGEN_HELP: &str = "\
Examples:
  envcrypt keygen aes256 -o site.key     # then -k raw-aes:NAMESPACE:NAME:site.key
  envcrypt keygen rsa -o escrow          # escrow.pem (private), escrow.pub.pem (public)

Keep key files out of the folders you upload; anyone holding a key decrypts its messages.";

const ENCRYPT_HELP: &str = "\
Examples:
  # One file (the result is written only if everything succeeded):
  envcrypt encrypt -k raw-aes:hospital-a:imaging-2026:site.key -o scan.dcm.enc scan.dcm
  # A study folder for upload: upload/ gets the same tree, each file with .enc added:
  envcrypt encrypt -k raw-aes:hospital-a:imaging-2026:site.key -c purpose=archive -r -o upload/ study/
  # A second keyring also wraps the data key (escrow); either one decrypts:
  envcrypt encrypt -k raw-aes:hospital-a:imaging-2026:site.key -k raw-rsa:escrow:2026:oaep-sha256:escrow.pub.pem -o x.enc x
  # In a pipe:
  pg_dump db | envcrypt encrypt -k raw-aes:hospital-a:imaging-2026:site.key > db.sql.enc

An existing output is never replaced without --force. A progress bar is drawn on stderr when it \
is a terminal (not with -q); in pipes stderr carries only errors.

With -r, symbolic links are skipped (and named) unless --follow-symlinks; a file that fails is \
reported at the end and the others are still processed; the exit code is the most serious \
failure (1 > 4 > 3 > 2). OUTDIR may not be inside INPUT.

Warning: the encryption context (-c KEY=VALUE) is authenticated but stored UNENCRYPTED in the \
message header: anyone holding the file can read it. Never put patient identifiers (names, \
MRNs, dates of birth, accession numbers) or other secrets in it.";

const REWRAP_HELP: &str = "\
Examples:
  # Rotate a folder in place from the 2025 key to the 2026 key, keeping the escrow key:
  envcrypt rewrap -k raw-aes:site:key-2025:old.key --to raw-aes:site:key-2026:new.key \\
      --to raw-rsa:escrow:2026:oaep-sha256:escrow.pub.pem -r --in-place archive/
  # Only the messages that still depend on the old key (re-runs skip finished ones):
  envcrypt rewrap -k raw-aes:site:key-2025:old.key --to raw-aes:site:key-2026:new.key \\
      --only-wrapped-by raw-aes:site:key-2025:old.key -r --in-place archive/
  # One file to a new file:
  envcrypt rewrap -k raw-aes:site:key-2025:old.key --to aws-kms:arn:aws:kms:... -o scan.v2.enc scan.enc

Every message gets a fresh data key, a new message id and (signed suites) a new signing key; \
every frame is opened and sealed again. Nothing is written in place of an input before the \
whole input verified, signature included. Context, frame length and suite are kept unless \
asked otherwise. With -r, messages already wrapped for exactly the --to keys (and whose header \
opens with one of them) are skipped, and the last line is `rewrapped N, skipped M, failed F`. \
To stdout the new message is written as it is made: after a failure (exit 1) it is incomplete \
and never decrypts; prefer -o or --in-place. Old copies (backups, object versions) still open \
with the old key until it is destroyed.";

const DECRYPT_HELP: &str = "\
Examples:
  envcrypt decrypt -k raw-aes:hospital-a:imaging-2026:site.key -o scan.dcm scan.dcm.enc
  # Refuse the file unless its context says purpose=archive:
  envcrypt decrypt -k raw-aes:hospital-a:imaging-2026:site.key -c purpose=archive -o scan.dcm scan.dcm.enc
  # A folder made by `encrypt -r`: .enc is removed from each name:
  envcrypt decrypt -k raw-aes:hospital-a:imaging-2026:site.key -r -o study/ upload/
  curl -s https://example.org/scan.dcm.enc | envcrypt decrypt -k raw-aes:hospital-a:imaging-2026:site.key > scan.dcm

With -o the plaintext appears only once the whole message verified (tampered, truncated, wrong \
key or context mismatch: exit 1, no output file, the input untouched). To stdout, each frame is \
written once it verified; a failure mid-way exits 1 after part of the data was written.

With -r, files whose names do not end in .enc are skipped (and named unless -q), symbolic \
links too unless --follow-symlinks; failures are reported at the end, the others are still \
decrypted.

Warning: the encryption context is stored UNENCRYPTED in the message header; never put patient \
identifiers in it.";

const INSPECT_HELP: &str = "\
Examples:
  envcrypt inspect scan.dcm.enc                 # which keys and context a file needs
  envcrypt inspect scan.dcm.enc | jq '.encrypted_data_keys[].provider_id'
  head -c 4096 big.enc | envcrypt inspect        # the header is enough

  # Which keys the messages of a folder claim, with counts and bytes per key:
  envcrypt inspect --summary -r upload/
  # Break-glass check: every file opens with the escrow key (else exit 1, files named):
  envcrypt inspect --summary -r --require-key raw-rsa:escrow:2026:oaep-sha256:escrow.pem upload/

No key is needed (except by --require-key) and no content is decrypted. The output shows the \
encryption context, which is stored unencrypted in every message.

--summary prints {\"files\", \"bytes\", \"keys\": [{\"provider_id\", \"key\", \"files\", \"bytes\"}], \
\"unreadable\"} (with --require-key also \"missing_key\"): files and bytes count the messages read \
(file sizes); a key is a raw keyring's key name or a KMS key ARN. The key list is read from the \
headers without a key and only says which keys a message claims; --require-key unwraps the \
data key and verifies each header (key commitment and header tag) with the decrypt command's \
default limits, so only its answer shows that a file can be recovered with that key.";

const AUDIT_HELP: &str = "\
Examples:
  envcrypt keygen audit -o audit-signer             # audit-signer.pem, audit-signer.pub.pem
  envcrypt --audit-log /var/log/envcrypt.jsonl --audit-signing-key audit-signer.pem \\
      encrypt -k raw-aes:hosp:key-2026:site.key -r -o upload/ study/
  envcrypt audit verify --public-key audit-signer.pub.pem /var/log/envcrypt.jsonl

Each line holds the SHA-256 of the line before it; checkpoints sign the whole chain so far. \
verify names the first line that was edited, removed, inserted or moved, a checkpoint signed \
by another key, or unsigned lines after the last checkpoint (a cut log, or a run that did not \
finish). A log cut exactly at a checkpoint, or replaced whole, is only caught against a copy \
kept elsewhere: keep the last seq and hash the summary prints.";

const INFO_HELP: &str = "\
Example:
  envcrypt --provider rust-crypto info
  {\"version\": \"0.1.0\", \"provider\": \"rust-crypto\", \"fips\": false, \"providers\": [...], \"keyrings\": [...]}";

const COMPLETIONS_HELP: &str = "\
Examples:
  envcrypt completions bash > ~/.local/share/bash-completion/completions/envcrypt
  envcrypt completions zsh > ~/.zfunc/_envcrypt      # with fpath+=(~/.zfunc) in .zshrc
  envcrypt completions fish > ~/.config/fish/completions/envcrypt.fish";

const MANPAGE_HELP: &str = "\
Install it where man looks, then read it with `man envcrypt`:
  mkdir -p ~/.local/share/man/man1
  envcrypt manpage > ~/.local/share/man/man1/envcrypt.1
or system-wide: envcrypt manpage | sudo tee /usr/local/share/man/man1/envcrypt.1 >/dev/null";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Round trip on a synthetic DICOM-like image with a local key: encrypt, inspect,
    /// decrypt, verify, and report throughput.
    #[command(after_help = DEMO_HELP)]
    Demo(DemoArgs),
    /// Generate a key.
    #[command(subcommand, after_help = KEYGEN_HELP)]
    Keygen(KeygenCommand),
    /// Encrypt one input (file or stdin) into one message, or a folder with -r.
    #[command(after_help = ENCRYPT_HELP)]
    Encrypt(EncryptArgs),
    /// Decrypt one message, or a folder of messages with -r.
    #[command(after_help = DECRYPT_HELP)]
    Decrypt(DecryptArgs),
    /// Print a message header as one JSON object (no key needed; nothing decrypted), or with
    /// --summary the keys of many messages.
    #[command(after_help = INSPECT_HELP)]
    Inspect(InspectArgs),
    /// Move messages to new keys: each is opened with the -k keyrings and written again
    /// under a fresh data key wrapped by the --to keyrings, in one verified pass.
    #[command(after_help = REWRAP_HELP)]
    Rewrap(RewrapArgs),
    /// Verify an audit log written with --audit-log.
    #[command(subcommand, after_help = AUDIT_HELP)]
    Audit(AuditCommand),
    /// Print version and crypto provider information as one JSON object.
    #[command(after_help = INFO_HELP)]
    Info,
    /// Print a shell completion script to stdout (bash, zsh, fish, elvish, powershell).
    #[command(after_help = COMPLETIONS_HELP)]
    Completions {
        /// The shell to complete for.
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the manual page envcrypt(1) (roff) to stdout.
    #[command(after_help = MANPAGE_HELP)]
    Manpage,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Size of the synthetic image: bytes, or with a unit (`64MiB`, `1GiB`, `100MB`).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "512MiB")]
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
    /// Worker threads of the frame pipeline (default: one per core).
    #[arg(long, value_name = "N", value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
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
    /// An ECDSA P-384 key pair that signs audit log checkpoints: PREFIX.pem (private,
    /// PKCS#8, mode 0600, for --audit-signing-key) and PREFIX.pub.pem (for audit verify
    /// --public-key).
    Audit {
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
    #[arg(
        short,
        long = "keyring",
        value_name = "KEYRING",
        required_unless_present = "keyring_file"
    )]
    pub keyrings: Vec<String>,
    /// Encryption context pair (repeatable): on encrypt stored in the header, on decrypt
    /// required to be there with this value (a bare KEY: with any value). Stored
    /// UNENCRYPTED: never patient identifiers.
    #[arg(short = 'c', long = "context", value_name = "KEY=VALUE", value_parser = crate::cli_extra::parse_context)]
    pub context: Vec<(String, Option<String>)>,
    /// Output file (default: stdout), or the output folder with -r. Written to a temporary
    /// file and renamed into place only on success.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Allow replacing an existing OUT (with -r: existing files in OUTDIR).
    #[arg(long)]
    pub force: bool,
    /// No progress bar and no notes about skipped files; only errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// INPUT is a folder: process every file in it into the folder -o OUTDIR (same relative
    /// paths, `.enc` or --suffix added on encrypt, removed on decrypt).
    #[arg(short, long)]
    pub recursive: bool,
    /// With -r: follow symbolic links (default: skip them).
    #[arg(long, requires = "recursive")]
    pub follow_symlinks: bool,
    /// Worker threads of the frame pipeline (default: one per core).
    #[arg(long, value_name = "N", value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Input file (a folder with -r), or `-` for stdin (the default).
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,
    #[command(flatten)]
    pub extra: crate::cli_extra::ExtraArgs,
    #[command(flatten)]
    pub s3: crate::cli_extra::S3Args,
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
    /// DANGEROUS: write each frame of a signed message to stdout as soon as its tag
    /// verifies, before the signature is checked. Anyone who can unwrap the data key can
    /// forge such frames, and a pipe (`| tar x`) acts on them before the exit code says 1.
    /// By default a signed message's plaintext waits in an unnamed temporary file until the
    /// signature verified. Files written with -o are never released early.
    #[arg(long)]
    pub unverified_stream: bool,
    /// Most encrypted data keys a message may carry.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_edks: Option<u16>,
    /// Largest frame length accepted, in bytes.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_frame_length: Option<u32>,
    /// Allow writing PLAINTEXT to S3 (-o s3://..., or a manifest's objects beside their
    /// messages). Refused by default: decrypted data in a bucket is rarely what is meant.
    #[arg(long)]
    pub allow_plaintext_upload: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Instead of one header: the key inventory of every PATH as one JSON object (messages
    /// and bytes per key; files that are not messages under "unreadable").
    #[arg(long)]
    pub summary: bool,
    /// With --summary: PATHs may be folders; every file under them is read (symbolic links
    /// are skipped).
    #[arg(short, long, requires = "summary")]
    pub recursive: bool,
    /// With --summary: open and verify every header with this keyring spec (as -k takes);
    /// exit 1 and list under "missing_key" the files it cannot open.
    #[arg(long, value_name = "SPEC", requires = "summary")]
    pub require_key: Option<String>,
    /// Message file, or `-` for stdin (the default); with --summary, one or more files (and
    /// folders with -r).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RewrapArgs {
    /// Keyring spec that opens the messages (repeatable; each tried in turn).
    #[arg(
        short,
        long = "keyring",
        value_name = "KEYRING",
        required_unless_present = "keyring_file"
    )]
    pub keyrings: Vec<String>,
    /// Keyring spec to wrap the new data key for (repeatable; the first generates it).
    #[arg(
        long = "to",
        value_name = "KEYRING",
        required_unless_present = "keyring_file"
    )]
    pub to: Vec<String>,
    /// Context pair each message must carry with this value, or a bare KEY with any value
    /// (repeatable).
    #[arg(short = 'c', long = "context", value_name = "KEY=VALUE", value_parser = crate::cli_extra::parse_context)]
    pub context: Vec<(String, Option<String>)>,
    /// Context pair kept out of the stored header (repeatable); kept out of the new one too.
    #[arg(long = "required-context", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub required_context: Vec<(String, String)>,
    /// Context pair to add to the stored context (repeatable). Stored UNENCRYPTED.
    #[arg(long = "add-context", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub add_context: Vec<(String, String)>,
    /// Context key to remove from the stored context (repeatable).
    #[arg(long = "remove-context", value_name = "KEY")]
    pub remove_context: Vec<String>,
    /// Suite of the new messages: 0578 or 0478 (default: each message keeps its own).
    #[arg(long, value_name = "ID", value_parser = parse_suite)]
    pub suite: Option<AlgorithmSuite>,
    /// Also read legacy version 1 (non-committing) messages.
    #[arg(long)]
    pub allow_v1: bool,
    /// Output file (default: stdout), or the output folder with -r.
    #[arg(short, long, value_name = "OUT", conflicts_with = "in_place")]
    pub output: Option<PathBuf>,
    /// Replace each input with its rewrapped message (atomically, once it fully verified).
    #[arg(long)]
    pub in_place: bool,
    /// INPUT is a folder: every `*.enc` (or --suffix) file in it (to -o OUTDIR, same names, or
    /// in place).
    #[arg(short, long)]
    pub recursive: bool,
    /// Rewrap only messages with an EDK of this key (a keyring spec as -k takes).
    #[arg(long, value_name = "SPEC")]
    pub only_wrapped_by: Option<String>,
    /// Allow replacing existing outputs.
    #[arg(long)]
    pub force: bool,
    /// No progress bar and no notes about skipped files; only errors and the summary.
    #[arg(short, long)]
    pub quiet: bool,
    /// Worker threads of the frame pipeline (default: one per core).
    #[arg(long, value_name = "N", value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Message file (a folder with -r), or `-` for stdin (the default).
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,
    #[command(flatten)]
    pub extra: crate::cli_extra::ExtraArgs,
    #[command(flatten)]
    pub s3: crate::cli_extra::S3Args,
}

/// `--threads N`: 1 to 1024.
fn parse_threads(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n @ 1..=1024) => Ok(n),
        _ => Err("expected a number of threads from 1 to 1024".to_owned()),
    }
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

/// A size in bytes: a number, optionally followed by a unit: `KiB`, `MiB`, `GiB`, `TiB`
/// (powers of 1024) or `kB`/`KB`, `MB`, `GB`, `TB` (powers of 1000); `B` is allowed.
fn parse_size(s: &str) -> Result<u64, String> {
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let factor: u64 = match unit.trim_start() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return Err("expected a size such as 1048576, 64MiB or 1GiB".to_owned()),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| "expected a size such as 1048576, 64MiB or 1GiB".to_owned())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_with_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size("100MB"), Ok(100_000_000));
        assert_eq!(parse_size("0B"), Ok(0));
        for bad in ["", "MiB", "12 parsecs", "-1", "1.5GiB", "99999999999TiB"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }
}
