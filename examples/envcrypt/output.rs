//! Safe input and output.
//!
//! Output to a file goes to a temporary file in the same directory, is flushed and synced,
//! and is renamed into place only by [`Output::commit`]; an `Output` dropped without it
//! (any failure) removes the temporary file, so a failed run leaves nothing behind and never
//! touches an existing OUT. Binary output is never written to a terminal.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::error::AppError;

/// Buffer size for file and pipe I/O.
pub const BUF_SIZE: usize = 1 << 20;

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

/// Opens the input: a file, or stdin for `None` / `-`.
///
/// Stdin is a duplicate of the descriptor as a `File`, so reads bypass std's small
/// internal buffer.
pub fn open_input(path: Option<&Path>) -> Result<File, AppError> {
    if is_std(path) {
        let fd = io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| AppError::io("stdin", e))?;
        return Ok(File::from(fd));
    }
    let path = path.expect("not stdin");
    let shown = path.display();
    let file = File::open(path).map_err(|e| AppError::io(format!("cannot open {shown}"), e))?;
    let meta = file
        .metadata()
        .map_err(|e| AppError::io(format!("cannot open {shown}"), e))?;
    if meta.is_dir() {
        return Err(AppError::usage(format!(
            "{shown} is a directory (recursive mode is not available in this build)"
        )));
    }
    Ok(file)
}

/// A destination being written.
pub struct Output {
    sink: Sink,
}

enum Sink {
    Stdout(BufWriter<File>),
    File {
        writer: BufWriter<NamedTempFile>,
        dest: PathBuf,
        force: bool,
    },
}

impl Output {
    /// Starts writing to `path` (or stdout for `None` / `-`).
    ///
    /// Refuses a terminal stdout, an existing `path` unless `force`, and a `path` that is
    /// the input file itself.
    pub fn create(
        path: Option<&Path>,
        force: bool,
        input: Option<&Path>,
    ) -> Result<Self, AppError> {
        if is_std(path) {
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
            return Ok(Self {
                sink: Sink::Stdout(BufWriter::with_capacity(BUF_SIZE, File::from(fd))),
            });
        }
        let dest = path.expect("not stdout").to_path_buf();
        let shown = dest.display();
        match std::fs::metadata(&dest) {
            Ok(meta) => {
                if meta.is_dir() {
                    return Err(AppError::usage(format!("output {shown} is a directory")));
                }
                if let Some(input) = input.filter(|p| !is_std(Some(p))) {
                    if let Ok(im) = std::fs::metadata(input) {
                        if im.dev() == meta.dev() && im.ino() == meta.ino() {
                            return Err(AppError::usage(format!(
                                "output {shown} is the input file"
                            )));
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
        let tmp = tempfile::Builder::new()
            .prefix(".envcrypt-")
            .suffix(".tmp")
            .tempfile_in(parent_dir(&dest))
            .map_err(|e| AppError::io(format!("cannot create a temporary file for {shown}"), e))?;
        Ok(Self {
            sink: Sink::File {
                writer: BufWriter::with_capacity(BUF_SIZE, tmp),
                dest,
                force,
            },
        })
    }

    /// How the destination is named in messages.
    pub fn name(&self) -> String {
        match &self.sink {
            Sink::Stdout(_) => "stdout".to_owned(),
            Sink::File { dest, .. } => dest.display().to_string(),
        }
    }

    /// Flushes, syncs and moves the result into place.
    pub fn commit(self) -> Result<(), AppError> {
        match self.sink {
            Sink::Stdout(mut w) => w
                .flush()
                .map_err(|e| AppError::io("cannot write stdout", e)),
            Sink::File {
                writer,
                dest,
                force,
            } => {
                let shown = dest.display().to_string();
                let werr = |e| AppError::io(format!("cannot write {shown}"), e);
                let tmp = writer.into_inner().map_err(|e| werr(e.into_error()))?;
                tmp.as_file().sync_all().map_err(werr)?;
                let persisted = if force {
                    tmp.persist(&dest)
                } else {
                    tmp.persist_noclobber(&dest)
                };
                if let Err(e) = persisted {
                    // `e.file` is dropped here, which removes the temporary file.
                    if e.error.kind() == io::ErrorKind::AlreadyExists {
                        return Err(AppError::usage(format!(
                            "output {shown} exists (use --force to replace it)"
                        )));
                    }
                    return Err(werr(e.error));
                }
                // Make the rename itself durable.
                File::open(parent_dir(&dest))
                    .and_then(|d| d.sync_all())
                    .map_err(werr)
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.sink {
            Sink::Stdout(w) => w.write(buf),
            Sink::File { writer, .. } => writer.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.sink {
            Sink::Stdout(w) => w.write_all(buf),
            Sink::File { writer, .. } => writer.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Stdout(w) => w.flush(),
            Sink::File { writer, .. } => writer.flush(),
        }
    }
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}
