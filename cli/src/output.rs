//! Inputs and outputs: what the tool checks before the library's file API or pipeline runs.
//!
//! Atomic file output (temporary file in the target directory, sync, rename, removal on
//! failure) is the library's (`Client::encrypt_file` / `decrypt_file`); this module only
//! holds the tool's own rules: `-` and no path mean the standard streams, binary output never
//! goes to a terminal, an existing OUT is kept unless `--force`, OUT may not be the input.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::AppError;

/// Buffer size for file comparisons and the demo's files.
pub const BUF_SIZE: usize = 1 << 20;

/// Buffer size for binary stdout: it gathers small writes (headers, 4 KiB frames) into
/// 64 KiB ones, and the pipeline's batches of frames (about 512 KiB) are larger, so they
/// go straight to the file descriptor instead of through a copy into the buffer.
const STDOUT_BUF_SIZE: usize = 64 << 10;

/// Whether `path` names an S3 object or prefix (`s3://…`).
pub fn is_s3(path: Option<&Path>) -> bool {
    path.and_then(Path::to_str)
        .is_some_and(|p| p.starts_with("s3://"))
}

/// A reader of a whole message that can seek (a file, or ranged reads of an object).
pub trait ReadSeek: io::Read + io::Seek {}
impl<T: io::Read + io::Seek> ReadSeek for T {}

/// Why a message is left alone (rewrap: already wrapped for the `--to` keys), from its
/// bytes and its name.
pub type SkipCheck<'a> =
    &'a (dyn Fn(&mut dyn ReadSeek, &str) -> Result<Option<&'static str>, AppError> + Sync);

/// `None` and `-` mean the standard stream.
pub fn is_std(path: Option<&Path>) -> bool {
    path.is_none_or(|p| p.as_os_str() == "-")
}

/// How a path (or the standard stream) is named in messages.
pub fn display_name(path: Option<&Path>, std_name: &str) -> String {
    match path {
        Some(p) if !is_std(Some(p)) => p.display().to_string(),
        _ => std_name.to_owned(),
    }
}

/// Stdin as a `File` (a duplicate of the descriptor, so reads bypass std's small buffer).
///
/// `explicit` is true when the user named it with `-`: only then may it be a terminal (an
/// INPUT forgotten on the command line would otherwise wait silently for typing).
pub fn stdin_file(explicit: bool) -> Result<File, AppError> {
    let stdin = io::stdin();
    if !explicit && stdin.is_terminal() {
        return Err(AppError::usage(
            "no INPUT given and stdin is a terminal (give a file, pipe data in, or use - to type it)",
        ));
    }
    let fd = stdin
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| AppError::io("stdin", e))?;
    Ok(File::from(fd))
}

/// Opens an input file for reading, refusing a directory (that needs `-r`).
pub fn open_input(path: Option<&Path>) -> Result<File, AppError> {
    if is_std(path) {
        return stdin_file(path.is_some());
    }
    let path = path.expect("not stdin");
    check_input_file(path)?;
    File::open(path).map_err(|e| AppError::io(format!("cannot open {}", path.display()), e))
}

/// An input named on the command line must exist and not be a directory.
pub fn check_input_file(path: &Path) -> Result<(), AppError> {
    let shown = path.display();
    let meta =
        std::fs::metadata(path).map_err(|e| AppError::io(format!("cannot open {shown}"), e))?;
    if meta.is_dir() {
        return Err(AppError::usage(format!(
            "{shown} is a directory (use -r/--recursive with -o OUTDIR)"
        )));
    }
    Ok(())
}

/// Stdout for binary output: refused when it is a terminal.
pub fn binary_stdout() -> Result<BufWriter<File>, AppError> {
    let stdout = io::stdout();
    if stdout.is_terminal() {
        return Err(AppError::usage(
            "refusing to write binary output to a terminal (use -o FILE or redirect stdout)",
        ));
    }
    let fd = stdout
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| AppError::io("stdout", e))?;
    Ok(BufWriter::with_capacity(STDOUT_BUF_SIZE, File::from(fd)))
}

/// Checks an output file before anything is written: not a directory, not the input
/// itself, not existing unless `force`, in a directory that exists.
pub fn check_output_file(dest: &Path, force: bool, input: Option<&Path>) -> Result<(), AppError> {
    let shown = dest.display();
    match std::fs::metadata(dest) {
        Ok(meta) => {
            if meta.is_dir() {
                return Err(AppError::usage(format!(
                    "output {shown} is a directory (for folders use -r/--recursive)"
                )));
            }
            if let Some(input) = input.filter(|p| !is_std(Some(p))) {
                if let Ok(im) = std::fs::metadata(input) {
                    if im.dev() == meta.dev() && im.ino() == meta.ino() {
                        return Err(AppError::usage(format!("output {shown} is the input file")));
                    }
                }
            }
            if !force {
                return Err(AppError::usage(format!(
                    "output {shown} exists (use --force to replace it)"
                )));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(AppError::io(format!("output {shown}"), e)),
    }
    let parent = parent_dir(dest);
    match std::fs::metadata(parent) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(AppError::io(
            format!("cannot write {shown}"),
            io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        )),
        Err(e) => Err(AppError::io(
            format!("cannot write {shown}: directory {}", parent.display()),
            e,
        )),
    }
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}
