//! `demo`: the main job in one command, with a local key and no cloud.
//!
//! Makes a synthetic DICOM-like image, a raw AES-256 key, encrypts it with the library's
//! file API (parallel frame pipeline, temporary file, sync, rename), inspects the header
//! without the key, decrypts, checks the result is identical (the SHA-256 of the original,
//! computed while it was made, against that of the decrypted file), and prints a short
//! summary with throughput figures. Everything streams: memory stays flat for any `--size`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use envcrypt::crypto::CryptoProvider;
use envcrypt::file::FileOptions;
use envcrypt::format::MessageVersion;
use envcrypt::{Client, DecryptOptions, EncryptionContext};

use crate::cli::DemoArgs;
use crate::crypt::{lib_error, pipeline_options, Done, Op};
use crate::error::AppError;
use crate::inspect::read_header;
use crate::keyring_spec::{build_keyring, Purpose};
use crate::output::BUF_SIZE;
use crate::progress::{self, Progress};
use crate::sha256::{self, Background};

const KEY_FILE: &str = "envcrypt-demo.key";
const IMAGE_FILE: &str = "envcrypt-demo.dcm";
const ENCRYPTED_FILE: &str = "envcrypt-demo.dcm.enc";
const DECRYPTED_FILE: &str = "envcrypt-demo.decrypted.dcm";
const NAMESPACE: &str = "envcrypt-demo";
const KEY_NAME: &str = "demo-key";

/// Image geometry: 512 x 512 pixels of 16 bits per frame.
const COLUMNS: u64 = 512;
const ROWS: u64 = 512;
const FRAME_BYTES: u64 = COLUMNS * ROWS * 2;

/// `envcrypt demo`.
pub fn run(args: &DemoArgs, provider: &'static CryptoProvider) -> Result<(), AppError> {
    let header_len = dicom_header(0, 0).len() as u64;
    if args.size < header_len {
        return Err(AppError::usage(format!(
            "--size must be at least {header_len} bytes (the DICOM-like header)"
        )));
    }
    // A temporary directory is removed when `temp_dir` drops, on success or failure.
    let (dir, temp_dir) = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| AppError::io(format!("cannot create {}", d.display()), e))?;
            (d.clone(), None)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("envcrypt-demo-")
                .tempdir()
                .map_err(|e| AppError::io("cannot create a temporary directory", e))?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let path = |name: &str| dir.join(name);
    for name in [KEY_FILE, IMAGE_FILE, ENCRYPTED_FILE, DECRYPTED_FILE] {
        if path(name).symlink_metadata().is_ok() {
            return Err(AppError::usage(format!(
                "{} already exists; remove the envcrypt-demo.* files or choose another --dir",
                path(name).display()
            )));
        }
    }
    let bars = progress::wanted(args.quiet);
    let pipeline = pipeline_options(args.threads);
    let workers = match pipeline.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };

    // 1. The image.
    let t = Instant::now();
    let image = {
        let bar = Progress::start(bars, "image", Some(args.size), 0);
        let image = write_image(&path(IMAGE_FILE), args.size, &bar)?;
        bar.finish();
        image
    };
    let made_secs = t.elapsed().as_secs_f64();

    // 2. The key and the client.
    crate::keygen::aes256(Some(&path(KEY_FILE)), provider)?;
    let spec = format!(
        "raw-aes:{NAMESPACE}:{KEY_NAME}:{}",
        path(KEY_FILE).display()
    );
    let client = Client::builder()
        .keyring(build_keyring(&[spec], Purpose::Encrypt)?)
        .provider(provider)
        .suite(args.suite)
        .frame_length(args.frame_length)
        .build()
        .map_err(|e| AppError::lib("demo", e))?;
    let context = EncryptionContext::from_pairs([
        ("purpose", "envcrypt-demo"),
        ("modality", "CT"),
        ("content", "synthetic"),
    ]);
    // Each step through the library's file API, with a progress bar on a terminal.
    let step = |op: Op<'_>, from: &str, to: &str| -> Result<(Done, f64), AppError> {
        let total = std::fs::metadata(path(from)).map(|m| m.len()).ok();
        let bar = Progress::start(bars, op.verb(), total, 0);
        let tracker = bar.tracker();
        let report = |n: u64| tracker.read_so_far(n);
        let options = FileOptions::default()
            .with_pipeline(pipeline.clone())
            .with_progress(&report);
        let t = Instant::now();
        let done = op
            .file(&path(from), &path(to), &options)
            .map_err(|e| lib_error(&format!("demo: {} {from}", op.verb()), e))?;
        let secs = t.elapsed().as_secs_f64();
        bar.finish();
        Ok((done, secs))
    };

    // 3. Encrypt.
    let (enc, enc_secs) = step(
        Op::Encrypt {
            client: &client,
            context: &context,
        },
        IMAGE_FILE,
        ENCRYPTED_FILE,
    )?;

    // 4. Inspect (header only, no key).
    let mut f = File::open(path(ENCRYPTED_FILE))
        .map_err(|e| AppError::io(format!("cannot open {ENCRYPTED_FILE}"), e))?;
    let parsed = read_header(&mut f, ENCRYPTED_FILE)?;
    drop(f);
    let header = &parsed.header;
    if header.version != MessageVersion::V2
        || header.suite != args.suite
        || header.frame_length != args.frame_length
        || context
            .iter()
            .any(|(k, v)| header.encryption_context.get(k) != Some(v))
    {
        return Err(AppError::data(
            "demo: the header does not say what was asked for",
        ));
    }

    // 5. Decrypt, requiring the context.
    let options = DecryptOptions::default().with_expected_context(context.clone());
    let (dec, dec_secs) = step(
        Op::Decrypt {
            client: &client,
            options: &options,
        },
        ENCRYPTED_FILE,
        DECRYPTED_FILE,
    )?;
    let authenticated = dec
        .header
        .as_ref()
        .map(|h| h.message_id == header.message_id);
    if authenticated != Some(true) {
        return Err(AppError::data("demo: decrypted a different message"));
    }

    // 6. Compare: the SHA-256 of the decrypted file against the original's.
    let t = Instant::now();
    let (back_len, back_digest) = {
        let bar = Progress::start(bars, "verify", Some(dec.stats.bytes_out), 0);
        let r = hash_file(&path(DECRYPTED_FILE), &bar)
            .map_err(|e| AppError::io(format!("demo: cannot read {DECRYPTED_FILE}"), e))?;
        bar.finish();
        r
    };
    let cmp_secs = t.elapsed().as_secs_f64();

    let frames = args.size.div_ceil(u64::from(args.frame_length)).max(1);
    let ctx = context
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let edks = header
        .encrypted_data_keys
        .iter()
        .map(|e| e.provider_id.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let (bytes_in, bytes_out) = (enc.stats.bytes_in, enc.stats.bytes_out);
    println!(
        "envcrypt demo: {} synthetic CT image, local AES-256 key, provider {}, {workers} worker thread(s)",
        progress::bytes(args.size),
        provider.name
    );
    match &temp_dir {
        Some(_) => println!(
            "  directory     {} (temporary, removed at exit)",
            dir.display()
        ),
        None => println!("  directory     {}", dir.display()),
    }
    println!(
        "  image         {IMAGE_FILE}: {} bytes, DICOM-like ({} frames of {}x{} 16-bit), made in {:.2} s",
        group(args.size),
        group(image.frames),
        COLUMNS,
        ROWS,
        made_secs
    );
    println!(
        "  key           {KEY_FILE}: AES-256, mode 0600; keyring raw-aes:{NAMESPACE}:{KEY_NAME}"
    );
    println!(
        "  suite         {:#06x} {}",
        header.suite.id(),
        header.suite.name()
    );
    println!(
        "  frame length  {} bytes ({} frames)",
        group(u64::from(header.frame_length)),
        group(frames)
    );
    println!(
        "  encrypted     {ENCRYPTED_FILE}: {} bytes (header {} bytes, overhead {:.3} %) in {:.2} s: {:.0} MB/s",
        group(bytes_out),
        parsed.bytes().len(),
        bytes_out.saturating_sub(bytes_in) as f64 * 100.0 / bytes_in.max(1) as f64,
        enc_secs,
        mb_per_s(bytes_in, enc_secs)
    );
    println!(
        "  inspected     version 2, {} encrypted data key(s) ({edks}), context {{{ctx}}} (no key needed)",
        header.encrypted_data_keys.len()
    );
    println!(
        "  decrypted     {DECRYPTED_FILE}: {} bytes in {:.2} s: {:.0} MB/s (context required and checked)",
        group(dec.stats.bytes_out),
        dec_secs,
        mb_per_s(dec.stats.bytes_out, dec_secs)
    );
    if let Some(peak) = peak_rss_kib() {
        println!("  peak memory   {:.1} MiB (RSS)", peak as f64 / 1024.0);
    }
    if back_len != args.size || back_digest != image.sha256 {
        println!("  verified      DIFFERENT: the round trip failed");
        return Err(AppError::data(
            "demo: the decrypted file differs from the original",
        ));
    }
    println!(
        "  verified      identical (SHA-256 {} for both), checked in {cmp_secs:.2} s",
        sha256::hex(&back_digest)
    );
    println!("  (MB/s: file to file including the sync to disk; 1 MB = 10^6 bytes)");
    if temp_dir.is_none() {
        println!(
            "  try           envcrypt decrypt -k {} -o copy.dcm {}",
            format_args!(
                "raw-aes:{NAMESPACE}:{KEY_NAME}:{}",
                path(KEY_FILE).display()
            ),
            path(ENCRYPTED_FILE).display()
        );
    }
    Ok(())
}

/// What `write_image` made.
struct Image {
    frames: u64,
    /// SHA-256 of the file, computed while writing it.
    sha256: [u8; 32],
}

/// Writes a synthetic DICOM-like file of exactly `size` bytes: 128-byte preamble, `DICM`,
/// file meta elements, a few data elements (explicit VR little endian), then 16-bit pixel
/// data (a disc phantom with noise) filling the rest.
fn write_image(path: &PathBuf, size: u64, bar: &Progress) -> Result<Image, AppError> {
    let shown = path.display();
    let err = |e| AppError::io(format!("cannot write {shown}"), e);
    let header_len = dicom_header(0, 0).len() as u64;
    let pixel_len = size - header_len;
    let frames = pixel_len.div_ceil(FRAME_BYTES).max(1);
    let header = dicom_header(frames, pixel_len);
    debug_assert_eq!(header.len() as u64, header_len);

    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| AppError::io(format!("cannot create {shown}"), e))?;
    let mut w = BufWriter::with_capacity(BUF_SIZE, file);
    let mut hash = Background::new();
    w.write_all(&header).map_err(err)?;
    hash.update(&header);
    let mut row = [0u8; (COLUMNS * 2) as usize];
    let mut left = pixel_len;
    let mut noise = 0x2545_f491_4f6c_dd1du64;
    let mut line = 0u64;
    while left > 0 {
        let z = line / ROWS;
        let y = line % ROWS;
        // A disc whose radius changes from frame to frame, like slices through a sphere.
        let r = 120 + (z % 64) as i64 * 2;
        let dy = y as i64 - ROWS as i64 / 2;
        for (x, px) in row.chunks_exact_mut(2).enumerate() {
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            let dx = x as i64 - COLUMNS as i64 / 2;
            let base: u16 = if dx * dx + dy * dy < r * r { 1040 } else { 24 };
            let v = (base + (noise & 0x3f) as u16) & 0x0fff;
            px.copy_from_slice(&v.to_le_bytes());
        }
        let n = left.min(row.len() as u64) as usize;
        w.write_all(&row[..n]).map_err(err)?;
        hash.update(&row[..n]);
        left -= n as u64;
        line += 1;
        bar.add(n as u64);
    }
    w.flush().map_err(err)?;
    Ok(Image {
        frames,
        sha256: hash.finish(),
    })
}

/// Preamble, `DICM`, file meta group and data elements, up to the pixel data value.
/// Its length does not depend on the arguments.
fn dicom_header(frames: u64, pixel_len: u64) -> Vec<u8> {
    const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
    const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
    const INSTANCE_UID: &str = "2.25.302934150913585741447217372307893742481";
    let mut meta = Vec::new();
    element(&mut meta, 0x0002, 0x0001, b"OB", &[0, 1]);
    element(
        &mut meta,
        0x0002,
        0x0002,
        b"UI",
        CT_IMAGE_STORAGE.as_bytes(),
    );
    element(&mut meta, 0x0002, 0x0003, b"UI", INSTANCE_UID.as_bytes());
    element(&mut meta, 0x0002, 0x0010, b"UI", EXPLICIT_VR_LE.as_bytes());

    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    element(
        &mut out,
        0x0002,
        0x0000,
        b"UL",
        &(meta.len() as u32).to_le_bytes(),
    );
    out.extend_from_slice(&meta);
    element(&mut out, 0x0008, 0x0016, b"UI", CT_IMAGE_STORAGE.as_bytes());
    element(&mut out, 0x0008, 0x0018, b"UI", INSTANCE_UID.as_bytes());
    element(&mut out, 0x0008, 0x0060, b"CS", b"CT");
    element(&mut out, 0x0010, 0x0010, b"PN", b"DEMO^SYNTHETIC");
    element(&mut out, 0x0010, 0x0020, b"LO", b"ENVCRYPT-DEMO");
    element(&mut out, 0x0028, 0x0002, b"US", &1u16.to_le_bytes());
    element(&mut out, 0x0028, 0x0004, b"CS", b"MONOCHROME2");
    // Fixed width, so the header length never changes.
    element(
        &mut out,
        0x0028,
        0x0008,
        b"IS",
        format!("{frames:<12}").as_bytes(),
    );
    element(
        &mut out,
        0x0028,
        0x0010,
        b"US",
        &(ROWS as u16).to_le_bytes(),
    );
    element(
        &mut out,
        0x0028,
        0x0011,
        b"US",
        &(COLUMNS as u16).to_le_bytes(),
    );
    element(&mut out, 0x0028, 0x0100, b"US", &16u16.to_le_bytes());
    element(&mut out, 0x0028, 0x0101, b"US", &12u16.to_le_bytes());
    element(&mut out, 0x0028, 0x0102, b"US", &11u16.to_le_bytes());
    element(&mut out, 0x0028, 0x0103, b"US", &0u16.to_le_bytes());
    // Pixel data (7FE0,0010) OW: tag, VR, 2 reserved bytes, u32 length; the value follows.
    out.extend_from_slice(&0x7fe0u16.to_le_bytes());
    out.extend_from_slice(&0x0010u16.to_le_bytes());
    out.extend_from_slice(b"OW\0\0");
    out.extend_from_slice(&u32::try_from(pixel_len).unwrap_or(u32::MAX).to_le_bytes());
    out
}

/// One explicit-VR little-endian data element, its value padded to an even length.
fn element(out: &mut Vec<u8>, group: u16, elem: u16, vr: &[u8; 2], value: &[u8]) {
    let mut value = value.to_vec();
    if value.len() % 2 == 1 {
        value.push(if vr == b"UI" || vr == b"OB" { 0 } else { b' ' });
    }
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&elem.to_le_bytes());
    out.extend_from_slice(vr);
    if matches!(vr, b"OB" | b"OW" | b"SQ" | b"UN" | b"UT") {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(&value);
}

/// Length and SHA-256 of a file (read on this thread, hashed on another).
fn hash_file(path: &Path, bar: &Progress) -> io::Result<(u64, [u8; 32])> {
    let mut f = File::open(path)?;
    let mut hash = Background::new();
    let mut buf = vec![0u8; BUF_SIZE];
    let mut len = 0u64;
    loop {
        let n = read_full(&mut f, &mut buf)?;
        if n == 0 {
            return Ok((len, hash.finish()));
        }
        hash.update(&buf[..n]);
        len += n as u64;
        bar.add(n as u64);
    }
}

/// Reads until `buf` is full or the input ends.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn mb_per_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs.max(1e-9)
}

/// `1234567` as `1,234,567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Peak resident set size of this process (Linux), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
