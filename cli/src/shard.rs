//! `--shard I/N|auto`: which objects of a manifest one worker of N handles.
//!
//! # The rule (a contract: stable across releases, platforms and processes)
//!
//! The object (`bucket`, `key`) belongs to shard `I` of `N` when
//!
//! ```text
//! u64::from_be_bytes(SHA-256(bucket || 0x00 || key)[0..8]) mod N == I
//! ```
//!
//! where `bucket` is the bucket name and `key` the **decoded** object key, both as UTF-8
//! bytes, and `0x00` one zero byte. The version id plays no part (all versions of a key go
//! to one shard). Every object belongs to exactly one shard of N, whatever the order or
//! split of the manifest, so N workers may each read the whole manifest; shards are balanced
//! to within statistical noise. To pre-split a manifest the same way (Python):
//!
//! ```text
//! from hashlib import sha256
//! from urllib.parse import unquote_plus
//! shard = int.from_bytes(sha256(bucket.encode() + b"\0" + unquote_plus(raw_key).encode()).digest()[:8], "big") % n
//! ```
//!
//! # `auto`
//!
//! Reads the index and count from the environment of the engine running the worker:
//!
//! 1. AWS Batch array jobs: `AWS_BATCH_JOB_ARRAY_INDEX` and `AWS_BATCH_JOB_ARRAY_SIZE`
//!    (both set by AWS Batch in each child job), when either is set;
//! 2. else Kubernetes Indexed Jobs: `JOB_COMPLETION_INDEX` (set by Kubernetes) and
//!    `ENVCRYPT_SHARDS` (set by the Job's author to `.spec.completions`, which pods are not
//!    told), when either is set.
//!
//! Values are decimal digits only. Errors name the variable that is missing or bad.

// Wired into commands by the S3 runs.
#![cfg_attr(not(test), allow(dead_code))]

use core::fmt;

use envcrypt::crypto::HashAlgorithm;

/// AWS Batch: the child's index in its array job.
pub const AWS_BATCH_INDEX: &str = "AWS_BATCH_JOB_ARRAY_INDEX";
/// AWS Batch: the array job's size.
pub const AWS_BATCH_SIZE: &str = "AWS_BATCH_JOB_ARRAY_SIZE";
/// Kubernetes Indexed Job: the pod's completion index.
pub const K8S_INDEX: &str = "JOB_COMPLETION_INDEX";
/// The shard count beside `JOB_COMPLETION_INDEX` (the Job's `completions`).
pub const K8S_COUNT: &str = "ENVCRYPT_SHARDS";

/// Shard `index` of `count` (`index < count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// Why a shard could not be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardError {
    /// Neither `I/N` nor `auto`.
    Syntax(String),
    /// N is 0; `var` names where it came from with `auto`.
    ZeroCount { var: Option<&'static str> },
    /// I is not below N; `vars` names where they came from with `auto`.
    OutOfRange {
        index: u32,
        count: u32,
        vars: Option<(&'static str, &'static str)>,
    },
    /// `auto`, but neither engine's variables are set.
    NoEngine,
    /// `auto`: `missing` is not set although `beside` is.
    MissingVar {
        missing: &'static str,
        beside: &'static str,
    },
    /// `auto`: a variable is not a decimal number that fits.
    BadVar { name: &'static str, value: String },
}

impl fmt::Display for ShardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax(s) => write!(
                f,
                "--shard {s:?}: expected I/N (0 <= I < N, e.g. 3/8) or auto"
            ),
            Self::ZeroCount { var: None } => {
                f.write_str("--shard: the shard count N must be at least 1")
            }
            Self::ZeroCount { var: Some(var) } => {
                write!(f, "--shard auto: {var} is 0 (the shard count must be at least 1)")
            }
            Self::OutOfRange {
                index,
                count,
                vars: None,
            } => write!(
                f,
                "--shard {index}/{count}: the index must be below the count (0..={})",
                count - 1
            ),
            Self::OutOfRange {
                index,
                count,
                vars: Some((i, n)),
            } => write!(
                f,
                "--shard auto: {i}={index} is not below {n}={count}"
            ),
            Self::NoEngine => write!(
                f,
                "--shard auto: neither {AWS_BATCH_INDEX} (AWS Batch array job) nor {K8S_INDEX} (Kubernetes Indexed Job) is set; give --shard I/N"
            ),
            Self::MissingVar { missing, beside } => {
                write!(f, "--shard auto: {missing} is not set (but {beside} is)")
            }
            Self::BadVar { name, value } => write!(
                f,
                "--shard auto: {name}={value:?} is not a whole number (0 to 4294967295)"
            ),
        }
    }
}

impl std::error::Error for ShardError {}

impl Shard {
    /// The one shard of one: every object.
    pub fn all() -> Self {
        Self { index: 0, count: 1 }
    }

    /// Shard `index` of `count`.
    pub fn new(index: u32, count: u32) -> Result<Self, ShardError> {
        if count == 0 {
            return Err(ShardError::ZeroCount { var: None });
        }
        if index >= count {
            return Err(ShardError::OutOfRange {
                index,
                count,
                vars: None,
            });
        }
        Ok(Self { index, count })
    }

    /// Parses `I/N` or `auto`; `env` reads an environment variable (`std::env::var(..).ok()`
    /// in the tool, a map in tests).
    pub fn parse(s: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, ShardError> {
        if s == "auto" {
            return Self::from_env(env);
        }
        let syntax = || ShardError::Syntax(s.to_owned());
        let (i, n) = s.split_once('/').ok_or_else(syntax)?;
        let index = number(i).ok_or_else(syntax)?;
        let count = number(n).ok_or_else(syntax)?;
        Self::new(index, count)
    }

    fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self, ShardError> {
        for (index_var, count_var) in [(AWS_BATCH_INDEX, AWS_BATCH_SIZE), (K8S_INDEX, K8S_COUNT)] {
            let (index, count) = match (env(index_var), env(count_var)) {
                (None, None) => continue,
                (Some(i), Some(n)) => (i, n),
                (None, Some(_)) => {
                    return Err(ShardError::MissingVar {
                        missing: index_var,
                        beside: count_var,
                    })
                }
                (Some(_), None) => {
                    return Err(ShardError::MissingVar {
                        missing: count_var,
                        beside: index_var,
                    })
                }
            };
            let parse = |name: &'static str, value: String| {
                number(&value).ok_or(ShardError::BadVar { name, value })
            };
            let index = parse(index_var, index)?;
            let count = parse(count_var, count)?;
            return Self::new(index, count).map_err(|e| match e {
                ShardError::OutOfRange { index, count, .. } => ShardError::OutOfRange {
                    index,
                    count,
                    vars: Some((index_var, count_var)),
                },
                ShardError::ZeroCount { .. } => ShardError::ZeroCount {
                    var: Some(count_var),
                },
                e => e,
            });
        }
        Err(ShardError::NoEngine)
    }

    /// This shard's index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The number of shards.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether the object `bucket`/`key` (decoded key) is this shard's, by the rule of the
    /// module docs.
    pub fn owns(&self, bucket: &str, key: &str) -> bool {
        self.count == 1 || shard_of(bucket, key, self.count) == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Decimal digits only (no sign, no spaces), fitting a `u32`.
fn number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The first 8 bytes of SHA-256(bucket || 0x00 || key), big-endian.
fn hash(bucket: &str, key: &str) -> u64 {
    let mut h = envcrypt::crypto::default_provider()
        .digest
        .start(HashAlgorithm::Sha256);
    h.update(bucket.as_bytes());
    h.update(&[0]);
    h.update(key.as_bytes());
    let digest = h.finish();
    let first: [u8; 8] = digest[..8].try_into().expect("SHA-256 is 32 bytes");
    u64::from_be_bytes(first)
}

/// The shard of `count` that owns the object.
fn shard_of(bucket: &str, key: &str, count: u32) -> u32 {
    (hash(bucket, key) % u64::from(count)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn golden_values_pin_the_rule() {
        // Computed independently: Python hashlib, the formula of the module docs.
        assert_eq!(hash("b", "k"), 2_764_628_968_360_607_873);
        assert_eq!(
            hash("my-bucket", "photos/2024/img 001.jpg"),
            4_316_465_030_179_299_124
        );
        assert_eq!(shard_of("my-bucket", "photos/2024/img 001.jpg", 7), 1);
        assert_eq!(shard_of("my-bucket", "photos/2024/img 001.jpg", 1000), 124);
        assert_eq!(shard_of("examplebucket", "object key with spaces", 10), 6);
        assert!(Shard::new(6, 10)
            .unwrap()
            .owns("examplebucket", "object key with spaces"));
        assert!(!Shard::new(5, 10)
            .unwrap()
            .owns("examplebucket", "object key with spaces"));
    }

    #[test]
    fn bucket_and_key_are_separated() {
        // The zero byte keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(hash("ab", "c"), hash("a", "bc"));
    }

    #[test]
    fn shards_are_disjoint_cover_everything_and_balance() {
        const N: u32 = 7;
        const KEYS: usize = 10_000;
        let shards: Vec<Shard> = (0..N).map(|i| Shard::new(i, N).unwrap()).collect();
        let mut sizes = [0usize; N as usize];
        for k in 0..KEYS {
            let key = format!("data/{k:05}.dcm");
            let owners: Vec<u32> = shards
                .iter()
                .filter(|s| s.owns("bucket", &key))
                .map(Shard::index)
                .collect();
            assert_eq!(owners.len(), 1, "{key} owned by {owners:?}");
            sizes[owners[0] as usize] += 1;
        }
        assert_eq!(sizes.iter().sum::<usize>(), KEYS);
        // Expected 1428.6 each, standard deviation ~35: within 15% is > 4 sigma.
        let expected = KEYS as f64 / f64::from(N);
        for (i, &n) in sizes.iter().enumerate() {
            let off = (n as f64 - expected).abs() / expected;
            assert!(off < 0.15, "shard {i} has {n} of {KEYS}: {sizes:?}");
        }
    }

    #[test]
    fn all_owns_everything() {
        let all = Shard::all();
        assert_eq!((all.index(), all.count()), (0, 1));
        assert!(all.owns("b", "k") && all.owns("", ""));
        assert_eq!(Shard::parse("0/1", none).unwrap(), all);
    }

    #[test]
    fn parse_i_of_n() {
        assert_eq!(
            Shard::parse("3/8", none).unwrap(),
            Shard::new(3, 8).unwrap()
        );
        assert_eq!(Shard::parse("03/08", none).unwrap().to_string(), "3/8");
        assert_eq!(
            Shard::parse("4294967294/4294967295", none).unwrap().count(),
            u32::MAX
        );
        for bad in [
            "",
            "3",
            "3/",
            "/8",
            "a/8",
            "3/b",
            "+3/8",
            "3/+8",
            " 3/8",
            "3/8 ",
            "3 /8",
            "3/8/1",
            "-1/8",
            "3/4294967296",
            "AUTO",
        ] {
            assert_eq!(
                Shard::parse(bad, none),
                Err(ShardError::Syntax(bad.into())),
                "{bad:?}"
            );
        }
        assert_eq!(
            Shard::parse("0/0", none),
            Err(ShardError::ZeroCount { var: None })
        );
        assert_eq!(
            Shard::parse("8/8", none),
            Err(ShardError::OutOfRange {
                index: 8,
                count: 8,
                vars: None
            })
        );
    }

    #[test]
    fn auto_reads_aws_batch_first() {
        let both = env(&[
            (AWS_BATCH_INDEX, "2"),
            (AWS_BATCH_SIZE, "5"),
            (K8S_INDEX, "7"),
            (K8S_COUNT, "9"),
        ]);
        assert_eq!(
            Shard::parse("auto", both).unwrap(),
            Shard::new(2, 5).unwrap()
        );
        let k8s = env(&[(K8S_INDEX, "7"), (K8S_COUNT, "9")]);
        assert_eq!(
            Shard::parse("auto", k8s).unwrap(),
            Shard::new(7, 9).unwrap()
        );
        // One AWS Batch variable is enough to choose AWS Batch (and fail without the other).
        let half = env(&[(AWS_BATCH_SIZE, "5"), (K8S_INDEX, "7"), (K8S_COUNT, "9")]);
        assert_eq!(
            Shard::parse("auto", half),
            Err(ShardError::MissingVar {
                missing: AWS_BATCH_INDEX,
                beside: AWS_BATCH_SIZE
            })
        );
    }

    #[test]
    fn auto_errors_name_the_variable() {
        let cases: Vec<(Vec<(&str, &str)>, ShardError)> = vec![
            (vec![], ShardError::NoEngine),
            (
                vec![(AWS_BATCH_INDEX, "1")],
                ShardError::MissingVar {
                    missing: AWS_BATCH_SIZE,
                    beside: AWS_BATCH_INDEX,
                },
            ),
            (
                vec![(K8S_INDEX, "1")],
                ShardError::MissingVar {
                    missing: K8S_COUNT,
                    beside: K8S_INDEX,
                },
            ),
            (
                vec![(K8S_COUNT, "4")],
                ShardError::MissingVar {
                    missing: K8S_INDEX,
                    beside: K8S_COUNT,
                },
            ),
            (
                vec![(AWS_BATCH_INDEX, "x"), (AWS_BATCH_SIZE, "4")],
                ShardError::BadVar {
                    name: AWS_BATCH_INDEX,
                    value: "x".into(),
                },
            ),
            (
                vec![(AWS_BATCH_INDEX, "1"), (AWS_BATCH_SIZE, "")],
                ShardError::BadVar {
                    name: AWS_BATCH_SIZE,
                    value: String::new(),
                },
            ),
            (
                vec![(K8S_INDEX, "0"), (K8S_COUNT, "0")],
                ShardError::ZeroCount {
                    var: Some(K8S_COUNT),
                },
            ),
            (
                vec![(K8S_INDEX, "4"), (K8S_COUNT, "4")],
                ShardError::OutOfRange {
                    index: 4,
                    count: 4,
                    vars: Some((K8S_INDEX, K8S_COUNT)),
                },
            ),
        ];
        for (vars, want) in cases {
            assert_eq!(Shard::parse("auto", env(&vars)), Err(want), "{vars:?}");
        }
    }

    #[test]
    fn error_messages() {
        let msg =
            |s: &str, vars: &[(&str, &str)]| Shard::parse(s, env(vars)).unwrap_err().to_string();
        assert_eq!(
            msg("3", &[]),
            "--shard \"3\": expected I/N (0 <= I < N, e.g. 3/8) or auto"
        );
        assert_eq!(
            msg("0/0", &[]),
            "--shard: the shard count N must be at least 1"
        );
        assert_eq!(
            msg("8/8", &[]),
            "--shard 8/8: the index must be below the count (0..=7)"
        );
        assert_eq!(
            msg("auto", &[]),
            "--shard auto: neither AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch array job) nor JOB_COMPLETION_INDEX (Kubernetes Indexed Job) is set; give --shard I/N"
        );
        assert_eq!(
            msg("auto", &[(K8S_INDEX, "2")]),
            "--shard auto: ENVCRYPT_SHARDS is not set (but JOB_COMPLETION_INDEX is)"
        );
        assert_eq!(
            msg("auto", &[(K8S_INDEX, "2"), (K8S_COUNT, "two")]),
            "--shard auto: ENVCRYPT_SHARDS=\"two\" is not a whole number (0 to 4294967295)"
        );
        assert_eq!(
            msg("auto", &[(AWS_BATCH_INDEX, "0"), (AWS_BATCH_SIZE, "0")]),
            "--shard auto: AWS_BATCH_JOB_ARRAY_SIZE is 0 (the shard count must be at least 1)"
        );
        assert_eq!(
            msg("auto", &[(K8S_INDEX, "2"), (K8S_COUNT, "2")]),
            "--shard auto: JOB_COMPLETION_INDEX=2 is not below ENVCRYPT_SHARDS=2"
        );
    }
}
