//! `encrypt` and `decrypt`: one input to one output, streamed with flat memory.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use envcrypt::crypto::CryptoProvider;
use envcrypt::{Client, CommitmentPolicy, DecryptOptions, EncryptionContext, SignaturePolicy};

use crate::cli::{DecryptArgs, EncryptArgs};
use crate::error::AppError;
use crate::keyring_spec::{build_keyring, Purpose};
use crate::output::{display_name, open_input, Output, BUF_SIZE};

/// One file to process. The future `-r/--recursive` mode walks a directory and runs one
/// `Job` per file (and a progress bar would wrap the copy loops below).
#[derive(Debug, Clone)]
pub struct Job {
    /// Input file; `None` or `-` is stdin.
    pub input: Option<PathBuf>,
    /// Output file; `None` or `-` is stdout.
    pub output: Option<PathBuf>,
    /// Allow replacing an existing output.
    pub force: bool,
}

impl Job {
    fn input_name(&self) -> String {
        display_name(self.input.as_deref(), "stdin")
    }
}

/// Bytes read and written by one job.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// Builds a context from `KEY=VALUE` pairs, refusing a key given twice.
pub fn context_from_pairs<'a>(
    pairs: impl IntoIterator<Item = &'a (String, String)>,
    what: &str,
) -> Result<EncryptionContext, AppError> {
    let mut context = EncryptionContext::new();
    for (k, v) in pairs {
        if context.insert(k.clone(), v.clone()).is_some() {
            return Err(AppError::usage(format!(
                "{what} key {k:?} given more than once"
            )));
        }
    }
    Ok(context)
}

/// `envcrypt encrypt`.
pub fn run_encrypt(args: &EncryptArgs, provider: &'static CryptoProvider) -> Result<(), AppError> {
    let common = &args.common;
    let mut context = context_from_pairs(&common.context, "context")?;
    for (k, v) in &args.required_context {
        if context.insert(k.clone(), v.clone()).is_some() {
            return Err(AppError::usage(format!(
                "context key {k:?} given more than once (-c / --required-context)"
            )));
        }
    }
    let keyring = build_keyring(&common.keyrings, Purpose::Encrypt)?;
    let client = Client::builder()
        .keyring(keyring)
        .provider(provider)
        .suite(args.suite)
        .frame_length(args.frame_length)
        .required_context_keys(args.required_context.iter().map(|(k, _)| k.clone()))
        .build()
        .map_err(|e| AppError::lib("encrypt", e))?;
    let job = Job {
        input: common.input.clone(),
        output: common.output.clone(),
        force: common.force,
    };
    encrypt_job(&client, &context, &job).map(|_| ())
}

/// `envcrypt decrypt`.
pub fn run_decrypt(args: &DecryptArgs, provider: &'static CryptoProvider) -> Result<(), AppError> {
    let common = &args.common;
    let options = DecryptOptions {
        expected_context: context_from_pairs(&common.context, "context")?,
        required_context: context_from_pairs(&args.required_context, "required context")?,
    };
    let keyring = build_keyring(&common.keyrings, Purpose::Decrypt)?;
    let mut builder = Client::builder()
        .keyring(keyring)
        .provider(provider)
        .commitment_policy(if args.allow_v1 {
            CommitmentPolicy::RequireEncryptAllowDecrypt
        } else {
            CommitmentPolicy::RequireEncryptRequireDecrypt
        })
        .signature_policy(if args.unsigned_only {
            SignaturePolicy::UnsignedOnly
        } else {
            SignaturePolicy::AllowSigned
        });
    if let Some(max) = args.max_edks {
        builder = builder.max_encrypted_data_keys(max);
    }
    if let Some(max) = args.max_frame_length {
        builder = builder.max_frame_length(max);
    }
    let client = builder.build().map_err(|e| AppError::lib("decrypt", e))?;
    let job = Job {
        input: common.input.clone(),
        output: common.output.clone(),
        force: common.force,
    };
    decrypt_job(&client, &options, &job).map(|_| ())
}

/// Encrypts one input into one message.
pub fn encrypt_job(
    client: &Client,
    context: &EncryptionContext,
    job: &Job,
) -> Result<Stats, AppError> {
    let input_name = job.input_name();
    let mut input = open_input(job.input.as_deref())?;
    let mut out = Output::create(job.output.as_deref(), job.force, job.input.as_deref())?;
    let out_name = out.name();
    let what = format!("encrypt {input_name}");
    let mut counted = CountingWriter::new(&mut out);
    let mut writer = client
        .encrypt_writer(&mut counted, context)
        .map_err(|e| AppError::lib(&what, e))?;
    let mut buf = vec![0u8; BUF_SIZE];
    let mut bytes_in = 0u64;
    loop {
        let n = read_some(&mut input, &mut buf)
            .map_err(|e| AppError::io(format!("cannot read {input_name}"), e))?;
        if n == 0 {
            break;
        }
        writer
            .write_all(&buf[..n])
            .map_err(|e| AppError::stream(&what, format!("cannot write {out_name}"), e))?;
        bytes_in += n as u64;
    }
    let counted = writer.finish().map_err(|e| AppError::lib(&what, e))?;
    let bytes_out = counted.count;
    out.commit()?;
    Ok(Stats {
        bytes_in,
        bytes_out,
    })
}

/// Decrypts one message into one output. On failure a file output is removed (nothing
/// written to OUT); stdout may have received plaintext of the frames that verified.
pub fn decrypt_job(
    client: &Client,
    options: &DecryptOptions,
    job: &Job,
) -> Result<Stats, AppError> {
    let input_name = job.input_name();
    let input = open_input(job.input.as_deref())?;
    let mut out = Output::create(job.output.as_deref(), job.force, job.input.as_deref())?;
    let out_name = out.name();
    let what = format!("decrypt {input_name}");
    let mut counted = CountingReader::new(input);
    let mut reader = client
        .decrypt_reader(&mut counted, options)
        .map_err(|e| AppError::lib(&what, e))?;
    let mut buf = vec![0u8; BUF_SIZE];
    let mut bytes_out = 0u64;
    loop {
        let n = read_some(&mut reader, &mut buf)
            .map_err(|e| AppError::stream(&what, format!("cannot read {input_name}"), e))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])
            .map_err(|e| AppError::io(format!("cannot write {out_name}"), e))?;
        bytes_out += n as u64;
    }
    drop(reader);
    out.commit()?;
    Ok(Stats {
        bytes_in: counted.count,
        bytes_out,
    })
}

/// One `read`, retried on `Interrupted`.
fn read_some(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Counts the bytes written through it.
struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W> CountingWriter<W> {
    fn new(inner: W) -> Self {
        Self { inner, count: 0 }
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)?;
        self.count += buf.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Counts the bytes read through it.
struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R> CountingReader<R> {
    fn new(inner: R) -> Self {
        Self { inner, count: 0 }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}
