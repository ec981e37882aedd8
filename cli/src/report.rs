//! `--report FILE`: one CSV row per manifest object, in the layout of the S3 Batch
//! Operations completion report (`Report_CSV_20180820`), so tools that read those read
//! these.
//!
//! - Columns, no header row: `Bucket,Key,VersionId,TaskStatus,ErrorCode,HTTPStatusCode,
//!   ResultMessage` (the order of the report's declared `ReportSchema`; note that the
//!   example rows in the S3 User Guide show the status code before the error code).
//! - `Key` is the manifest's key field as written (`ManifestEntry::raw_key`, still
//!   URL-encoded), so a report's rows are manifest rows again; `VersionId` is empty when the
//!   manifest gave none.
//! - `TaskStatus` is `succeeded` or `failed`. A success has an empty `ErrorCode` and status
//!   200 (an object skipped because its output is already there is a success). A failure
//!   has the kind of error as `ErrorCode` and an HTTP-like status ([`Outcome::from_kind`]);
//!   errors returned by S3 itself keep S3's code and status ([`Outcome::failed`]: e.g.
//!   `NoSuchKey` 404, `AccessDenied` 403, `PreconditionFailed` 412).
//! - A field is quoted with double quotes when it holds a comma, a double quote, CR or LF;
//!   a double quote inside is doubled. Rows end with LF.
//! - Rows come in the order objects finish (several workers record into one report).
//!
//! The report of a run replaces any earlier one at once: rows go to a temporary file in the
//! report's folder (`.NAME.XXXXXX.tmp`, mode 0600: object names can be sensitive), which
//! [`Report::finish`] syncs and renames over `FILE`. A run that fails or is killed leaves
//! the earlier report (or none), never half a report; a rerun of a shard writes its whole
//! report again (objects done by the earlier run are skipped and reported `succeeded`). A
//! run killed with SIGKILL can leave its temporary file behind.

// Wired into commands by the S3 runs.
#![cfg_attr(not(test), allow(dead_code))]

use core::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use envcrypt::ErrorKind;
use tempfile::NamedTempFile;

use crate::error::AppError;
use crate::manifest::ManifestEntry;

/// The `TaskStatus` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    /// `succeeded`.
    Succeeded,
    /// `failed`.
    Failed,
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        })
    }
}

/// What happened to one object: the last four columns of its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `TaskStatus`.
    pub status: TaskStatus,
    /// `ErrorCode`: empty on success.
    pub error_code: String,
    /// `HTTPStatusCode`: 200 on success.
    pub http_status: u16,
    /// `ResultMessage`: what was written (or skipped), or the error.
    pub message: String,
}

impl Outcome {
    /// A success: status 200, no error code.
    pub fn succeeded(message: impl Into<String>) -> Self {
        Self {
            status: TaskStatus::Succeeded,
            error_code: String::new(),
            http_status: 200,
            message: message.into(),
        }
    }

    /// A failure with its own code and status (an S3 error response's `Code` and status).
    pub fn failed(
        error_code: impl Into<String>,
        http_status: u16,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status: TaskStatus::Failed,
            error_code: error_code.into(),
            http_status,
            message: message.into(),
        }
    }

    /// A failure of the library's error `kind`, with the code and status of [`kind_code`].
    pub fn from_kind(kind: ErrorKind, message: impl Into<String>) -> Self {
        let (code, status) = kind_code(kind);
        Self::failed(code, status, message)
    }

    /// A failure from a tool error: its kind and its one-line message.
    pub fn from_error(e: &AppError) -> Self {
        Self::from_kind(e.kind(), e.to_string())
    }
}

/// `ErrorCode` and `HTTPStatusCode` for a failure of the library's error `kind`:
///
/// | kind | ErrorCode | status |
/// |---|---|---|
/// | usage (bad arguments, a keyring configured wrongly) | `Usage` | 400 |
/// | malformed or over-limit message | `Format` | 400 |
/// | tag, commitment or signature check failed, or no key opens the message | `Authentication` | 400 |
/// | refused by a policy | `Policy` | 403 |
/// | key service or HSM refused (access denied) | `KeyringRefused` | 403 |
/// | key service or HSM unreachable | `KeyringUnavailable` | 503 |
/// | reading or writing failed | `Io` | 500 |
/// | cancelled (the run was interrupted) | `Cancelled` | 500 |
/// | a bug in envcrypt | `Internal` | 500 |
///
/// 4xx: retrying the same object with the same keys fails again; 5xx: a retry may succeed.
pub fn kind_code(kind: ErrorKind) -> (&'static str, u16) {
    match kind {
        ErrorKind::Usage => ("Usage", 400),
        ErrorKind::Format => ("Format", 400),
        ErrorKind::Authentication => ("Authentication", 400),
        ErrorKind::Policy => ("Policy", 403),
        ErrorKind::KeyringRefused => ("KeyringRefused", 403),
        ErrorKind::KeyringUnavailable => ("KeyringUnavailable", 503),
        ErrorKind::Io => ("Io", 500),
        ErrorKind::Cancelled => ("Cancelled", 500),
        _ => ("Internal", 500),
    }
}

/// One report row, with its line end.
pub fn row(bucket: &str, raw_key: &str, version_id: Option<&str>, outcome: &Outcome) -> String {
    let mut line = String::new();
    let status = outcome.status.to_string();
    let http = outcome.http_status.to_string();
    let fields: [&str; 7] = [
        bucket,
        raw_key,
        version_id.unwrap_or(""),
        &status,
        &outcome.error_code,
        &http,
        &outcome.message,
    ];
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        push_field(&mut line, field);
    }
    line.push('\n');
    line
}

/// Appends `field`, quoted when it holds a comma, a quote, CR or LF.
fn push_field(line: &mut String, field: &str) {
    if field.contains([',', '"', '\r', '\n']) {
        line.push('"');
        line.push_str(&field.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(field);
    }
}

/// How many rows of each status a report holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportSummary {
    /// Rows `succeeded`.
    pub succeeded: u64,
    /// Rows `failed`.
    pub failed: u64,
}

/// A report being written (see the module docs). `record` takes `&self`: share it between
/// worker threads.
pub struct Report {
    path: PathBuf,
    state: Mutex<State>,
}

struct State {
    out: BufWriter<NamedTempFile>,
    summary: ReportSummary,
    /// A write failed: the report cannot be completed.
    broken: bool,
}

impl Report {
    /// Starts the report for `path`: a temporary file beside it (the folder must exist).
    pub fn create(path: &Path) -> io::Result<Self> {
        let name = path.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a file name", path.display()),
            )
        })?;
        if path.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{} is a directory", path.display()),
            ));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.", name.to_string_lossy()))
            .suffix(".tmp")
            .tempfile_in(dir)?;
        Ok(Self {
            path: path.to_path_buf(),
            state: Mutex::new(State {
                out: BufWriter::new(tmp),
                summary: ReportSummary::default(),
                broken: false,
            }),
        })
    }

    /// Appends the row of `entry`.
    pub fn record(&self, entry: &ManifestEntry, outcome: &Outcome) -> io::Result<()> {
        let line = row(
            &entry.bucket,
            &entry.raw_key,
            entry.version_id.as_deref(),
            outcome,
        );
        let mut state = self.lock()?;
        if state.broken {
            return Err(earlier_failure());
        }
        if let Err(e) = state.out.write_all(line.as_bytes()) {
            state.broken = true;
            return Err(e);
        }
        match outcome.status {
            TaskStatus::Succeeded => state.summary.succeeded += 1,
            TaskStatus::Failed => state.summary.failed += 1,
        }
        Ok(())
    }

    /// Writes the rows out, syncs them and puts the report in place of any earlier one.
    pub fn finish(self) -> io::Result<ReportSummary> {
        let state = self
            .state
            .into_inner()
            .map_err(|_| io::Error::other("a thread panicked while writing the report"))?;
        if state.broken {
            return Err(earlier_failure());
        }
        let tmp = state.out.into_inner().map_err(|e| e.into_error())?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        // The rename itself survives a crash once the folder is synced.
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()?;
        Ok(state.summary)
    }

    fn lock(&self) -> io::Result<std::sync::MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| io::Error::other("a thread panicked while writing the report"))
    }
}

fn earlier_failure() -> io::Error {
    io::Error::other("an earlier write to the report failed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn entry(bucket: &str, raw_key: &str, version: Option<&str>) -> ManifestEntry {
        ManifestEntry {
            bucket: bucket.into(),
            key: crate::manifest::decode_key(raw_key).unwrap(),
            raw_key: raw_key.into(),
            version_id: version.map(Into::into),
        }
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn rows_exact_bytes() {
        assert_eq!(
            row(
                "b",
                "photos/a%20b.jpg",
                None,
                &Outcome::succeeded("wrote s3://b/photos/a%20b.jpg.enc")
            ),
            "b,photos/a%20b.jpg,,succeeded,,200,wrote s3://b/photos/a%20b.jpg.enc\n"
        );
        assert_eq!(
            row(
                "b",
                "k",
                Some("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"),
                &Outcome::failed("NoSuchKey", 404, "The specified key does not exist.")
            ),
            "b,k,3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY,failed,NoSuchKey,404,The specified key does not exist.\n"
        );
        assert_eq!(
            row(
                "b",
                "a,b",
                None,
                &Outcome::from_kind(
                    ErrorKind::Authentication,
                    "tag \"mismatch\", frame 3\r\nend"
                )
            ),
            "b,\"a,b\",,failed,Authentication,400,\"tag \"\"mismatch\"\", frame 3\r\nend\"\n"
        );
        assert_eq!(
            row("b", "k", None, &Outcome::failed("", 500, "")),
            "b,k,,failed,,500,\n"
        );
    }

    #[test]
    fn kind_codes() {
        let got: Vec<_> = [
            ErrorKind::Usage,
            ErrorKind::Format,
            ErrorKind::Authentication,
            ErrorKind::Policy,
            ErrorKind::KeyringRefused,
            ErrorKind::KeyringUnavailable,
            ErrorKind::Io,
            ErrorKind::Cancelled,
            ErrorKind::Internal,
        ]
        .into_iter()
        .map(kind_code)
        .collect();
        assert_eq!(
            got,
            [
                ("Usage", 400),
                ("Format", 400),
                ("Authentication", 400),
                ("Policy", 403),
                ("KeyringRefused", 403),
                ("KeyringUnavailable", 503),
                ("Io", 500),
                ("Cancelled", 500),
                ("Internal", 500),
            ]
        );
        let e = AppError::usage("bad\nthing");
        assert_eq!(
            Outcome::from_error(&e),
            Outcome::failed("Usage", 400, "bad thing")
        );
    }

    #[test]
    fn report_file_exact_bytes_and_summary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shard-0.csv");
        let report = Report::create(&path).unwrap();
        report
            .record(
                &entry("b", "a+b", None),
                &Outcome::succeeded("skipped: up to date"),
            )
            .unwrap();
        report
            .record(
                &entry("b", "x%2Cy", Some("v1")),
                &Outcome::from_kind(ErrorKind::KeyringRefused, "kms: AccessDeniedException"),
            )
            .unwrap();
        // Nothing at the report's path until the end.
        assert!(!path.exists());
        let summary = report.finish().unwrap();
        assert_eq!(
            summary,
            ReportSummary {
                succeeded: 1,
                failed: 1
            }
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"b,a+b,,succeeded,,200,skipped: up to date\n\
              b,x%2Cy,v1,failed,KeyringRefused,403,kms: AccessDeniedException\n"
        );
        assert_eq!(files_in(dir.path()), ["shard-0.csv"]);
    }

    #[test]
    fn a_rerun_replaces_the_report_only_when_done() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        std::fs::write(&path, "old\n").unwrap();

        // A run that does not finish leaves the earlier report and no temporary file.
        let report = Report::create(&path).unwrap();
        report
            .record(&entry("b", "k", None), &Outcome::succeeded(""))
            .unwrap();
        drop(report);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        assert_eq!(files_in(dir.path()), ["r.csv"]);

        let report = Report::create(&path).unwrap();
        report
            .record(&entry("b", "k", None), &Outcome::succeeded(""))
            .unwrap();
        report.finish().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "b,k,,succeeded,,200,\n"
        );

        // An empty run writes an empty report.
        Report::create(&path).unwrap().finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"");
    }

    #[test]
    fn workers_share_one_report() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let report = Arc::new(Report::create(&path).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let report = Arc::clone(&report);
                std::thread::spawn(move || {
                    for i in 0..250 {
                        let outcome = if i % 5 == 0 {
                            Outcome::failed("Io", 500, format!("worker {t}, object {i}"))
                        } else {
                            Outcome::succeeded(format!("worker {t}, object {i}"))
                        };
                        report
                            .record(&entry("b", &format!("t{t}/o{i}"), None), &outcome)
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let report = Arc::into_inner(report).unwrap();
        let summary = report.finish().unwrap();
        assert_eq!(
            summary,
            ReportSummary {
                succeeded: 1600,
                failed: 400
            }
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2000);
        lines.sort();
        lines.dedup();
        assert_eq!(lines.len(), 2000);
        assert!(lines.contains(&"b,t3/o10,,failed,Io,500,\"worker 3, object 10\""));
        assert!(lines.contains(&"b,t7/o249,,succeeded,,200,\"worker 7, object 249\""));
    }

    #[test]
    fn create_refuses_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Report::create(dir.path()).is_err());
        assert!(Report::create(&dir.path().join("missing/r.csv")).is_err());
    }
}
