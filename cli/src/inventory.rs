//! `inspect --summary [-r] [--require-key SPEC] PATH...`: the key inventory of messages.
//!
//! One JSON object on stdout, fields in the order of `CLI.md`:
//! `{"files": N, "bytes": B, "keys": [{"provider_id": .., "key": .., "files": n, "bytes": b}],
//! "unreadable": [..]}`, and with `--require-key` also `"missing_key": [..]`.
//!
//! - `files` / `bytes`: the messages read and their file sizes. Per key (see `key_id`): the
//!   messages with at least one EDK of that key. Keys are sorted by provider id, then key;
//!   path lists are sorted.
//! - `unreadable`: files that are not messages (their header does not parse) or could not be
//!   read (these also get a line on stderr). They do not fail the run, except that with
//!   `--require-key` those named like messages (`*.enc`: damaged or truncated messages) are
//!   also listed under `missing_key`: the key cannot recover them.
//! - The key list is read from the headers without any key: it is **advisory** (it says
//!   which keys a message claims; anyone can write such a list). `--require-key SPEC` builds
//!   a client over that one keyring and opens every message's header with it: the data key
//!   is unwrapped, key commitment and the header tag are verified, with the `decrypt`
//!   command's default limits. Files it cannot open go to `missing_key` and one line on
//!   stderr names them; the exit code is then 1. Only this check says a file can be recovered
//!   with that key (the break-glass check that crypto-shredding relies on).
//! - With `-r`, folders are walked by the rules of the folder runs (`walk`: symbolic links
//!   below a PATH are skipped and named on stderr). Without it a folder is a usage error.
//! - A PATH that cannot be opened is an I/O error (exit 3) before anything is read; a keyring
//!   that cannot be reached or refuses stops the run (exit 4: the check could not be made).
//! - A file reached twice (same device and inode) counts once.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use envcrypt::crypto::CryptoProvider;
use envcrypt::format::ParsedHeader;
use envcrypt::{Client, CommitmentPolicy, DecryptOptions};

use serde::Serialize;

use crate::cli::InspectArgs;
use crate::error::{exit_code, AppError, EXIT_DATA, EXIT_INTERRUPTED, EXIT_IO, EXIT_UNAVAILABLE};
use crate::json;
use crate::key_id::{self, KeyId};
use crate::keyring_spec::{KeyringSpec, Purpose};

/// `envcrypt inspect --summary`.
pub fn run(args: &InspectArgs, provider: &'static CryptoProvider) -> Result<(), AppError> {
    if args.paths.is_empty() {
        return Err(AppError::usage("inspect --summary needs at least one PATH"));
    }
    // Every PATH is checked before any file is read.
    let mut tops = Vec::with_capacity(args.paths.len());
    for path in &args.paths {
        let shown = path.display();
        if path.as_os_str() == "-" {
            return Err(AppError::usage(
                "inspect --summary reads files and folders, not stdin",
            ));
        }
        let meta =
            fs::metadata(path).map_err(|e| AppError::io(format!("cannot open {shown}"), e))?;
        if meta.is_dir() && !args.recursive {
            return Err(AppError::usage(format!(
                "{shown} is a directory (use -r/--recursive)"
            )));
        }
        tops.push((path.as_path(), meta.is_dir()));
    }
    let checker = match &args.require_key {
        Some(spec) => Some(Checker::new(spec, provider)?),
        None => None,
    };
    let mut inventory = Inventory::new(checker);
    for (path, is_dir) in tops {
        if is_dir {
            inventory.add_folder(path)?;
        } else {
            // Named on the command line: links are followed, as `inspect FILE` does.
            let file = File::open(path)
                .map_err(|e| AppError::io(format!("cannot open {}", path.display()), e))?;
            inventory.add_file(path, Ok(file))?;
        }
    }
    println!("{}", inventory.json());
    inventory.verdict()
}

/// Files and bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    files: u64,
    bytes: u64,
}

impl Tally {
    fn add(&mut self, bytes: u64) {
        self.files += 1;
        self.bytes += bytes;
    }
}

/// What the run found so far.
struct Inventory {
    messages: Tally,
    keys: BTreeMap<KeyId, Tally>,
    unreadable: BTreeSet<String>,
    /// Files `--require-key` could not open (None without it).
    missing: Option<BTreeSet<String>>,
    /// How many of those list an EDK of the required key.
    missing_claimed: u64,
    checker: Option<Checker>,
    /// Device and inode of every file read.
    seen: HashSet<(u64, u64)>,
}

impl Inventory {
    fn new(checker: Option<Checker>) -> Self {
        Self {
            messages: Tally::default(),
            keys: BTreeMap::new(),
            unreadable: BTreeSet::new(),
            missing: checker.as_ref().map(|_| BTreeSet::new()),
            missing_claimed: 0,
            checker,
            seen: HashSet::new(),
        }
    }

    /// Every regular file under the folder `dir`.
    fn add_folder(&mut self, dir: &Path) -> Result<(), AppError> {
        let listing = crate::walk::regular_files(dir)?;
        for (path, why) in &listing.skipped {
            // The walk's hint names an option of encrypt and decrypt, not of inspect.
            let why = why.split(" (use --follow-symlinks").next().unwrap_or(why);
            eprintln!("envcrypt: skipped {}: {why}", path.display());
        }
        for (path, error) in listing.failures {
            eprintln!("envcrypt: {error}");
            let name = shown(&path);
            self.damaged(&name);
            self.unreadable.insert(name);
        }
        for file in &listing.files {
            self.add_file(file.path(), file.open())?;
        }
        Ok(())
    }

    /// A file that could not be read as a message: with `--require-key`, one named like a
    /// message (`*.enc`) is a damaged message that key cannot recover either.
    fn damaged(&mut self, name: &str) {
        if let Some(missing) = &mut self.missing {
            if name.ends_with(".enc") {
                missing.insert(name.to_owned());
            }
        }
    }

    /// One file, opened (or not) by the caller. Errors only when `--require-key` could not
    /// ask its keyring.
    fn add_file(&mut self, path: &Path, opened: Result<File, AppError>) -> Result<(), AppError> {
        let name = shown(path);
        let read = opened.and_then(|mut file| {
            let meta = file
                .metadata()
                .map_err(|e| AppError::io(format!("cannot read {name}"), e))?;
            if !self.seen.insert((meta.dev(), meta.ino())) {
                return Ok(None);
            }
            let parsed = crate::inspect::read_header(&mut file, &name)?;
            Ok(Some((parsed, meta.len())))
        });
        let (parsed, size) = match read {
            Ok(Some(read)) => read,
            Ok(None) => return Ok(()),
            Err(e) => {
                // Not a message: that is what `unreadable` says. Why a file could not be read
                // at all goes to stderr.
                if e.code() == EXIT_IO {
                    eprintln!("envcrypt: {e}");
                }
                self.damaged(&name);
                self.unreadable.insert(name);
                return Ok(());
            }
        };
        self.messages.add(size);
        let ids: BTreeSet<KeyId> = parsed
            .header
            .encrypted_data_keys
            .iter()
            .map(key_id::of_edk)
            .collect();
        for id in ids {
            self.keys.entry(id).or_default().add(size);
        }
        if let (Some(checker), Some(missing)) = (&self.checker, &mut self.missing) {
            if !checker.opens(&parsed, &name)? {
                missing.insert(name);
                if checker.claimed_by(&parsed) {
                    self.missing_claimed += 1;
                }
            }
        }
        Ok(())
    }

    /// The JSON object of `CLI.md`.
    fn json(&self) -> String {
        json::to_line(&SummaryJson {
            files: self.messages.files,
            bytes: self.messages.bytes,
            keys: self
                .keys
                .iter()
                .map(|(id, t)| KeyJson {
                    provider_id: &id.provider_id,
                    key: &id.key,
                    files: t.files,
                    bytes: t.bytes,
                })
                .collect(),
            unreadable: &self.unreadable,
            missing_key: self.missing.as_ref(),
        })
    }

    /// Exit 1 naming the files `--require-key` could not open, if any.
    fn verdict(&self) -> Result<(), AppError> {
        let (Some(missing), Some(checker)) = (&self.missing, &self.checker) else {
            return Ok(());
        };
        if missing.is_empty() {
            return Ok(());
        }
        let key = match &checker.key {
            Some(id) => format!("the required key ({}/{})", id.provider_id, id.key),
            None => "the required keyring".to_owned(),
        };
        // A file that lists the key but does not open: altered, or other key bytes under
        // the same name.
        let claimed = match self.missing_claimed {
            0 => String::new(),
            n => format!(" ({n} of them list it among their keys)"),
        };
        let list = missing.iter().map(String::as_str).collect::<Vec<_>>();
        Err(AppError::with_code(
            EXIT_DATA,
            format!(
                "{} of {} messages cannot be opened and verified with {key}{claimed}: {}",
                missing.len(),
                self.messages.files,
                list.join(", ")
            ),
        ))
    }
}

/// `--require-key`: a client over that one keyring.
struct Checker {
    client: Client,
    /// The key's identity, to name it in the verdict (not for the check).
    key: Option<KeyId>,
}

impl Checker {
    fn new(spec: &str, provider: &'static CryptoProvider) -> Result<Self, AppError> {
        let parsed = KeyringSpec::parse(spec)?;
        let keyring = crate::audit::keyring(parsed.build(Purpose::Decrypt)?);
        // Whether the key recovers the message is the question, whatever its version.
        let client = Client::builder()
            .keyring(keyring)
            .provider(provider)
            .commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt)
            .build()
            .map_err(|e| AppError::lib("--require-key", e))?;
        Ok(Self {
            client,
            key: key_id::of_spec(&parsed),
        })
    }

    /// Whether the message of `parsed` lists an EDK of the key (advisory).
    fn claimed_by(&self, parsed: &ParsedHeader) -> bool {
        self.key.as_ref().is_some_and(|id| {
            parsed
                .header
                .encrypted_data_keys
                .iter()
                .any(|edk| key_id::matches(id, edk))
        })
    }

    /// Whether the key opens the message of `parsed` and verifies its header (key commitment,
    /// header tag). An error when the keyring could not be asked (unreachable, refused).
    fn opens(&self, parsed: &ParsedHeader, name: &str) -> Result<bool, AppError> {
        let result = self
            .client
            .open(&mut parsed.bytes(), &DecryptOptions::default());
        crate::audit::record_require_key(name, &parsed.header, result.as_ref().err())?;
        match result {
            Ok(_) => Ok(true),
            Err(e) => match exit_code(&e) {
                EXIT_UNAVAILABLE | EXIT_INTERRUPTED => Err(AppError::lib(
                    format!("--require-key: cannot check {name}"),
                    e,
                )),
                _ => Ok(false),
            },
        }
    }
}

/// How a path is named in the output.
fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// What `inspect --summary` prints (fields in the order of `CLI.md`).
#[derive(Serialize)]
struct SummaryJson<'a> {
    files: u64,
    bytes: u64,
    keys: Vec<KeyJson<'a>>,
    unreadable: &'a BTreeSet<String>,
    /// Only with `--require-key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    missing_key: Option<&'a BTreeSet<String>>,
}

/// One key of the summary.
#[derive(Serialize)]
struct KeyJson<'a> {
    provider_id: &'a str,
    key: &'a str,
    files: u64,
    bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_has_the_fields_of_the_contract_in_order() {
        let mut inv = Inventory::new(None);
        inv.messages = Tally {
            files: 3,
            bytes: 300,
        };
        inv.keys.insert(
            KeyId::new("hosp", "b\"q"),
            Tally {
                files: 1,
                bytes: 100,
            },
        );
        inv.keys.insert(
            KeyId::new("escrow", "e"),
            Tally {
                files: 3,
                bytes: 300,
            },
        );
        inv.unreadable.insert("z".into());
        inv.unreadable.insert("a/notes".into());
        assert_eq!(
            inv.json(),
            "{\"files\": 3, \"bytes\": 300, \"keys\": [\
             {\"provider_id\": \"escrow\", \"key\": \"e\", \"files\": 3, \"bytes\": 300}, \
             {\"provider_id\": \"hosp\", \"key\": \"b\\\"q\", \"files\": 1, \"bytes\": 100}], \
             \"unreadable\": [\"a/notes\", \"z\"]}"
        );
        assert!(inv.verdict().is_ok());
        inv.missing = Some(BTreeSet::new());
        assert!(inv.json().ends_with(", \"missing_key\": []}"));
    }
}
