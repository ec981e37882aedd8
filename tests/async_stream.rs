//! The tokio adapters: round trips against the sync API both ways, the release rule on bad
//! input, cancellation (no hang, no leaked thread, truncated message), back-pressure, and an
//! executor that keeps running while the pipeline works.

#![cfg(feature = "tokio")]

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use envcrypt::format::{parse_header, HeaderLimits};
use envcrypt::keyring::RawAesKeyring;
use envcrypt::pipeline::PipelineOptions;
use envcrypt::{
    AlgorithmSuite, AuthenticationError, Client, DecryptOptions, EncryptionContext, Error,
    FormatError,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::timeout;

const SUITES: [AlgorithmSuite; 2] = [
    AlgorithmSuite::Aes256GcmHkdfSha512Commit,
    AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
];
/// No test may take longer: a hang is a failure, not a stuck CI run.
const LIMIT: Duration = Duration::from_secs(120);

/// Runs `$body` (an async fn) on a multi-thread and on a current-thread runtime, each under
/// [`LIMIT`].
macro_rules! on_both_runtimes {
    ($($body:ident),* $(,)?) => {$(
        mod $body {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn multi_thread() {
                tokio::time::timeout(super::LIMIT, super::$body())
                    .await
                    .expect("timed out");
            }
            #[tokio::test(flavor = "current_thread")]
            async fn current_thread() {
                tokio::time::timeout(super::LIMIT, super::$body())
                    .await
                    .expect("timed out");
            }
        }
    )*};
}

on_both_runtimes!(
    round_trips_every_shape,
    agrees_with_the_sync_api_both_ways,
    tampered_frame_is_an_error_and_its_plaintext_is_withheld,
    bad_signature_truncation_and_trailing_bytes_withhold_the_last_frame,
    setup_errors_come_from_the_constructors,
    dropping_mid_stream_neither_hangs_nor_completes_the_message,
    a_stalled_destination_bounds_what_the_writer_accepts,
    a_slow_consumer_bounds_what_the_reader_pulls,
    writes_after_the_end_and_flushes_behave,
);

fn client(suite: AlgorithmSuite, frame: u32) -> Client {
    Client::builder()
        .keyring(RawAesKeyring::new("async", "key", &[0x33; 32]).unwrap())
        .suite(suite)
        .frame_length(frame)
        .build()
        .unwrap()
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 % 251) as u8).collect()
}

/// A small deterministic generator for chunk sizes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Mostly large chunks, sometimes tiny ones.
    fn chunk(&mut self) -> usize {
        if self.next().is_multiple_of(4) {
            (self.next() % 64) as usize + 1
        } else {
            (self.next() % 300_000) as usize + 1
        }
    }
}

fn pipelines() -> [PipelineOptions; 3] {
    [
        PipelineOptions::default(),
        PipelineOptions::single_threaded(),
        PipelineOptions::default()
            .with_threads(3)
            .with_frames_in_flight(2)
            .with_parallel_min_frame(1),
    ]
}

/// The `envcrypt::Error` inside an `io::Error` from the adapters.
fn inner_error(e: &io::Error) -> &Error {
    e.get_ref()
        .and_then(|e| e.downcast_ref::<Error>())
        .unwrap_or_else(|| panic!("not an envcrypt error: {e:?}"))
}

async fn encrypt_async(
    c: &Client,
    plaintext: &[u8],
    ctx: &EncryptionContext,
    opts: &PipelineOptions,
    rng: &mut Rng,
) -> Vec<u8> {
    let mut w = c.encrypt_async_writer(Vec::new(), ctx, opts).await.unwrap();
    let mut rest = plaintext;
    while !rest.is_empty() {
        let n = rng.chunk().min(rest.len());
        w.write_all(&rest[..n]).await.unwrap();
        rest = &rest[n..];
        if rng.next().is_multiple_of(16) {
            w.flush().await.unwrap();
        }
    }
    let (message, stats) = w.finish_with_stats().await.unwrap();
    assert_eq!(stats.bytes_in, plaintext.len() as u64);
    assert_eq!(stats.bytes_out, message.len() as u64);
    message
}

/// Reads with random buffer sizes until the end or an error; returns what was released.
async fn read_all<R: AsyncRead + Unpin>(r: &mut R, rng: &mut Rng) -> (Vec<u8>, io::Result<()>) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 300_001];
    loop {
        let n = rng.chunk();
        match r.read(&mut buf[..n]).await {
            Ok(0) => return (out, Ok(())),
            Ok(k) => out.extend_from_slice(&buf[..k]),
            Err(e) => return (out, Err(e)),
        }
    }
}

/// Decrypts `message` through the async reader; returns what was released and the outcome.
async fn decrypt_async(
    c: &Client,
    message: &[u8],
    opts: &PipelineOptions,
    rng: &mut Rng,
) -> (Vec<u8>, Result<(), Error>) {
    let mut r = match c
        .decrypt_async_reader(message, &DecryptOptions::default(), opts)
        .await
    {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Err(e)),
    };
    let (out, result) = read_all(&mut r, rng).await;
    let result = result.map_err(|e| match e.into_inner() {
        Some(inner) => *inner.downcast::<Error>().expect("an envcrypt error"),
        None => panic!("a bare io::Error"),
    });
    if result.is_ok() {
        assert_eq!(r.stats().bytes_out, out.len() as u64);
        assert_eq!(r.stats().bytes_in, message.len() as u64);
    }
    (out, result)
}

async fn round_trips_every_shape() {
    let ctx = EncryptionContext::from_pairs([("study", "ct-1")]);
    let mut rng = Rng(0x5EED);
    for suite in SUITES {
        for frame in [1024u32, 4096, 65536, 1 << 20] {
            let c = client(suite, frame);
            let f = frame as usize;
            for len in [0, 1, f - 1, f, f + 1, (3 << 20) + 5] {
                let plaintext = data(len);
                for opts in pipelines() {
                    let message = encrypt_async(&c, &plaintext, &ctx, &opts, &mut rng).await;
                    let (out, result) = decrypt_async(&c, &message, &opts, &mut rng).await;
                    result.unwrap();
                    assert!(out == plaintext, "suite {suite:?} frame {frame} len {len}");
                }
            }
        }
    }
}

async fn agrees_with_the_sync_api_both_ways() {
    let ctx = EncryptionContext::from_pairs([("patient", "p-7"), ("series", "3")]);
    let mut rng = Rng(7);
    for suite in SUITES {
        let c = client(suite, 4096);
        for len in [0, 1, 4096, 5 << 20] {
            let plaintext = data(len);
            // Async writer -> sync one-shot decrypt.
            let message =
                encrypt_async(&c, &plaintext, &ctx, &PipelineOptions::default(), &mut rng).await;
            let back = c.decrypt(&message, &DecryptOptions::default()).unwrap();
            assert!(back.plaintext == plaintext);
            for (k, v) in ctx.iter() {
                assert_eq!(back.header.encryption_context.get(k), Some(v));
            }
            assert_eq!(back.header.suite, suite);
            // Sync one-shot encrypt -> async reader, whose header is the message's.
            let message = c.encrypt(&plaintext, &ctx).unwrap();
            let mut r = c
                .decrypt_async_reader(
                    &message[..],
                    &DecryptOptions::default(),
                    &PipelineOptions::default(),
                )
                .await
                .unwrap();
            for (k, v) in ctx.iter() {
                assert_eq!(r.header().encryption_context.get(k), Some(v));
            }
            assert_eq!(r.header().frame_length, 4096);
            let (out, result) = read_all(&mut r, &mut rng).await;
            result.unwrap();
            assert!(out == plaintext);
            // Sync pipeline stream encrypt -> async reader, and the reverse.
            let mut streamed = Vec::new();
            c.encrypt_stream(
                &plaintext[..],
                &mut streamed,
                &ctx,
                &PipelineOptions::default(),
            )
            .unwrap();
            let (out, result) =
                decrypt_async(&c, &streamed, &PipelineOptions::default(), &mut rng).await;
            result.unwrap();
            assert!(out == plaintext);
            let mut out = Vec::new();
            let (header, _) = c
                .decrypt_stream(
                    &message[..],
                    &mut out,
                    &DecryptOptions::default(),
                    &PipelineOptions::default(),
                )
                .unwrap();
            assert!(out == plaintext);
            assert_eq!(&header, r.header());
        }
    }
}

fn header_len(message: &[u8]) -> usize {
    let limits = HeaderLimits::new(1, 1 << 20);
    parse_header(message, &limits)
        .unwrap()
        .unwrap()
        .bytes()
        .len()
}

async fn tampered_frame_is_an_error_and_its_plaintext_is_withheld() {
    const F: usize = 4096;
    let mut rng = Rng(99);
    for suite in SUITES {
        let c = client(suite, F as u32);
        let plaintext = data(F * 40 + 7);
        let message = c.encrypt(&plaintext, &EncryptionContext::new()).unwrap();
        let h = header_len(&message);
        for opts in pipelines() {
            // A ciphertext byte of frame 10: frames 1..9 may be released, nothing after.
            let mut t = message.clone();
            t[h + 9 * (F + 32) + 100] ^= 1;
            let (out, result) = decrypt_async(&c, &t, &opts, &mut rng).await;
            assert!(
                matches!(
                    result,
                    Err(Error::Authentication(AuthenticationError::FrameTag {
                        sequence: 10
                    }))
                ),
                "{result:?}"
            );
            assert!(out.len() <= 9 * F, "released {} bytes", out.len());
            assert!(out == plaintext[..out.len()]);
        }
    }
    // The typed error travels inside the io::Error, kind InvalidData.
    let c = client(SUITES[0], F as u32);
    let mut t = c.encrypt(&data(3 * F), &EncryptionContext::new()).unwrap();
    let h = header_len(&t);
    t[h + 20] ^= 0x80;
    let mut r = c
        .decrypt_async_reader(
            &t[..],
            &DecryptOptions::default(),
            &PipelineOptions::default(),
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    let e = r.read_to_end(&mut out).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(matches!(
        inner_error(&e),
        Error::Authentication(AuthenticationError::FrameTag { sequence: 1 })
    ));
    assert!(out.is_empty());
    // The reader stays failed.
    let again = r.read(&mut [0u8; 16]).await.unwrap_err();
    assert!(matches!(inner_error(&again), Error::Config(_)));
}

async fn bad_signature_truncation_and_trailing_bytes_withhold_the_last_frame() {
    const F: usize = 4096;
    let mut rng = Rng(3);
    for suite in SUITES {
        let c = client(suite, F as u32);
        let plaintext = data(F * 12 + 300);
        let message = c.encrypt(&plaintext, &EncryptionContext::new()).unwrap();
        let h = header_len(&message);
        let before_last = 12 * F;
        for opts in pipelines() {
            if suite.signature().is_some() {
                let mut t = message.clone();
                let n = t.len();
                t[n - 5] ^= 1;
                let (out, result) = decrypt_async(&c, &t, &opts, &mut rng).await;
                assert!(
                    matches!(
                        result,
                        Err(Error::Authentication(AuthenticationError::Signature))
                            | Err(Error::Format(FormatError::InvalidFooter))
                    ),
                    "{result:?}"
                );
                assert!(out.len() <= before_last);
                assert!(out == plaintext[..out.len()]);
            }
            // Truncated at the last byte, inside a middle frame, right after the header.
            for cut in [message.len() - 1, h + 5 * (F + 32) + 17, h] {
                let (out, result) = decrypt_async(&c, &message[..cut], &opts, &mut rng).await;
                assert!(
                    matches!(result, Err(Error::Format(FormatError::Truncated))),
                    "cut {cut}: {result:?}"
                );
                assert!(out.len() <= before_last);
                assert!(out == plaintext[..out.len()]);
            }
            // Truncated inside the header: the constructor fails.
            let (out, result) = decrypt_async(&c, &message[..h - 3], &opts, &mut rng).await;
            assert!(matches!(result, Err(Error::Format(FormatError::Truncated))));
            assert!(out.is_empty());
            // One byte too many.
            let mut t = message.clone();
            t.push(0);
            let (out, result) = decrypt_async(&c, &t, &opts, &mut rng).await;
            assert!(
                matches!(result, Err(Error::Format(FormatError::TrailingBytes))),
                "{result:?}"
            );
            assert!(out.len() <= before_last);
        }
    }
}

async fn setup_errors_come_from_the_constructors() {
    let c = client(SUITES[1], 4096);
    let message = c.encrypt(b"secret", &EncryptionContext::new()).unwrap();
    let other = Client::new(RawAesKeyring::new("async", "key", &[0x44; 32]).unwrap());
    let e = other
        .decrypt_async_reader(
            &message[..],
            &DecryptOptions::default(),
            &PipelineOptions::default(),
        )
        .await
        .err()
        .expect("wrong key");
    assert!(matches!(e, Error::Keyring(_)), "{e:?}");
    // A context mismatch is refused before any plaintext.
    let opts = DecryptOptions::default()
        .with_expected_context(EncryptionContext::from_pairs([("k", "v")]));
    let e = c
        .decrypt_async_reader(&message[..], &opts, &PipelineOptions::default())
        .await
        .err()
        .expect("context mismatch");
    assert!(matches!(e, Error::Policy(_)), "{e:?}");
    // A reserved context key is refused at encryption.
    let reserved = EncryptionContext::from_pairs([("aws-crypto-public-key", "x")]);
    let e = c
        .encrypt_async_writer(Vec::new(), &reserved, &PipelineOptions::default())
        .await
        .err()
        .expect("reserved key");
    let sync = c.encrypt(b"x", &reserved).unwrap_err();
    assert_eq!(format!("{e:?}"), format!("{sync:?}"));
}

/// An `AsyncWrite` into a shared buffer, to look at what reached it after the writer is gone.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl AsyncWrite for Shared {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

async fn dropping_mid_stream_neither_hangs_nor_completes_the_message() {
    let ctx = EncryptionContext::new();
    let opts = PipelineOptions::default();
    for suite in SUITES {
        let c = client(suite, 65536);
        let plaintext = data(8 << 20);
        // Dropped after some writes.
        let sink = Shared::default();
        let mut w = c
            .encrypt_async_writer(sink.clone(), &ctx, &opts)
            .await
            .unwrap();
        w.write_all(&plaintext[..3 << 20]).await.unwrap();
        drop(w);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let got = sink.0.lock().unwrap().clone();
        let e = c.decrypt(&got, &DecryptOptions::default()).unwrap_err();
        assert!(matches!(e, Error::Format(FormatError::Truncated)), "{e:?}");

        // Dropped in the middle of `finish` (after three polls), its destination slow.
        let sink = Trickle::default();
        let mut w = c
            .encrypt_async_writer(sink.clone(), &ctx, &opts)
            .await
            .unwrap();
        w.write_all(&plaintext).await.unwrap();
        assert!(!poll_then_drop(w.finish(), 3).await, "finish completed");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let got = sink.inner.0.lock().unwrap().clone();
        let e = c.decrypt(&got, &DecryptOptions::default()).unwrap_err();
        assert!(matches!(e, Error::Format(FormatError::Truncated)), "{e:?}");

        // Never written to, never finished.
        drop(
            c.encrypt_async_writer(Shared::default(), &ctx, &opts)
                .await
                .unwrap(),
        );

        // A reader dropped after one read, and one dropped before any.
        let message = c.encrypt(&plaintext, &ctx).unwrap();
        let mut r = c
            .decrypt_async_reader(&message[..], &DecryptOptions::default(), &opts)
            .await
            .unwrap();
        let mut buf = vec![0u8; 100_000];
        let n = r.read(&mut buf).await.unwrap();
        assert!(n > 0 && buf[..n] == plaintext[..n]);
        drop(r);
        drop(
            c.decrypt_async_reader(&message[..], &DecryptOptions::default(), &opts)
                .await
                .unwrap(),
        );
        // A read cancelled by a timeout, then the reader dropped.
        let (_keep, stalled) = tokio::io::duplex(1 << 16);
        let src = (&message[..2000]).chain(stalled);
        let mut r = c
            .decrypt_async_reader(src, &DecryptOptions::default(), &opts)
            .await
            .unwrap();
        assert!(timeout(Duration::from_millis(50), r.read(&mut buf))
            .await
            .is_err());
        drop(r);
    }
}

/// An `AsyncWrite` that takes at most 4 KiB a call, and says `Pending` every other call.
#[derive(Clone, Default)]
struct Trickle {
    inner: Shared,
    pending: Arc<std::sync::atomic::AtomicBool>,
}

impl AsyncWrite for Trickle {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if !self.pending.fetch_xor(true, Ordering::SeqCst) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let n = buf.len().min(4096);
        Pin::new(&mut self.get_mut().inner).poll_write(cx, &buf[..n])
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Polls `fut` at most `polls` times, then drops it; whether it completed.
async fn poll_then_drop<F: std::future::Future>(fut: F, polls: usize) -> bool {
    let mut fut = std::pin::pin!(fut);
    let mut n = 0;
    std::future::poll_fn(|cx| {
        n += 1;
        match fut.as_mut().poll(cx) {
            Poll::Ready(_) => Poll::Ready(true),
            Poll::Pending if n >= polls => Poll::Ready(false),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// An `AsyncWrite` that takes nothing until `open` is set, then everything.
#[derive(Clone, Default)]
struct Gate {
    open: Arc<std::sync::atomic::AtomicBool>,
    waiting: Arc<Mutex<Option<std::task::Waker>>>,
    inner: Shared,
}

impl Gate {
    fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
        if let Some(w) = self.waiting.lock().unwrap().take() {
            w.wake();
        }
    }
}

impl AsyncWrite for Gate {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        *self.waiting.lock().unwrap() = Some(cx.waker().clone());
        if !self.open.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.open.load(Ordering::SeqCst) {
            *self.waiting.lock().unwrap() = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

/// What may sit between the two ends with 64 KiB frames: the pipeline's frames in flight
/// (four per worker, one worker per core) plus the adapter's chunks (about 3 MiB), with
/// room to spare.
fn bound() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (8 << 20) + 2 * 4 * cores * (64 << 10)
}

async fn a_stalled_destination_bounds_what_the_writer_accepts() {
    let c = client(SUITES[1], 65536);
    let plaintext = Arc::new(data(96 << 20));
    let gate = Gate::default();
    let accepted = Arc::new(AtomicUsize::new(0));
    let w = c
        .encrypt_async_writer(
            gate.clone(),
            &EncryptionContext::new(),
            &PipelineOptions::default(),
        )
        .await
        .unwrap();
    let writing = {
        let (plaintext, accepted) = (plaintext.clone(), accepted.clone());
        tokio::spawn(async move {
            let mut w = w;
            for chunk in plaintext.chunks(64 * 1024) {
                w.write_all(chunk).await.unwrap();
                accepted.fetch_add(chunk.len(), Ordering::SeqCst);
            }
            w.finish().await.unwrap();
        })
    };
    // The destination takes nothing: the writer must stop accepting, well short of the end.
    let mut last = 0;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        last = accepted.load(Ordering::SeqCst);
    }
    eprintln!("stalled destination: {last} bytes accepted");
    assert!(last > 0, "nothing accepted");
    assert!(
        last <= bound(),
        "accepted {last} bytes with a stalled destination"
    );
    gate.open();
    writing.await.unwrap();
    let message = gate.inner.0.lock().unwrap().clone();
    let back = c.decrypt(&message, &DecryptOptions::default()).unwrap();
    assert!(back.plaintext == *plaintext);
}

/// An `AsyncRead` over a slice that counts what it handed out.
struct Counting<'a> {
    inner: &'a [u8],
    pulled: Arc<AtomicUsize>,
}

impl AsyncRead for Counting<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.pulled
            .fetch_add(buf.filled().len() - before, Ordering::SeqCst);
        r
    }
}

async fn a_slow_consumer_bounds_what_the_reader_pulls() {
    let c = client(SUITES[0], 65536);
    let plaintext = data(64 << 20);
    let message = c.encrypt(&plaintext, &EncryptionContext::new()).unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let src = Counting {
        inner: &message,
        pulled: pulled.clone(),
    };
    let mut r = c
        .decrypt_async_reader(src, &DecryptOptions::default(), &PipelineOptions::default())
        .await
        .unwrap();
    let mut out = Vec::with_capacity(plaintext.len());
    let mut buf = vec![0u8; 1 << 20];
    let mut most_ahead = 0;
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.len() < 8 << 20 {
            // A consumer that pauses: the reader must not run ahead of it unboundedly.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        most_ahead = most_ahead.max(pulled.load(Ordering::SeqCst) - out.len());
    }
    assert!(out == plaintext);
    eprintln!("slow consumer: at most {most_ahead} bytes pulled ahead");
    assert!(
        most_ahead <= bound(),
        "pulled {most_ahead} bytes ahead of the consumer"
    );
    // Reading nothing at all: the reader stops pulling.
    let pulled = Arc::new(AtomicUsize::new(0));
    let src = Counting {
        inner: &message,
        pulled: pulled.clone(),
    };
    let mut r = c
        .decrypt_async_reader(src, &DecryptOptions::default(), &PipelineOptions::default())
        .await
        .unwrap();
    let _ = r.read(&mut buf[..1]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = r.read(&mut buf[..1]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ahead = pulled.load(Ordering::SeqCst);
    eprintln!("idle consumer: {ahead} bytes pulled");
    assert!(ahead <= bound(), "pulled {ahead} bytes for 2 bytes read");
}

/// The adapters and the futures that make them can move between threads.
#[test]
fn adapters_and_their_constructors_are_send() {
    fn send<T: Send>(_: &T) {}
    let c = client(SUITES[0], 4096);
    let ctx = EncryptionContext::new();
    let opts = PipelineOptions::default();
    let dopts = DecryptOptions::default();
    let message = Vec::new();
    let w = c.encrypt_async_writer(Vec::new(), &ctx, &opts);
    send(&w);
    let r = c.decrypt_async_reader(&message[..], &dopts, &opts);
    send(&r);
    fn adapters(
        w: envcrypt::stream::AsyncEncryptingWriter<Vec<u8>>,
        r: envcrypt::stream::AsyncDecryptingReader<&[u8]>,
    ) {
        send(&w);
        send(&r);
    }
    let _ = adapters;
}

async fn writes_after_the_end_and_flushes_behave() {
    let c = client(SUITES[1], 4096);
    let mut w = c
        .encrypt_async_writer(
            Vec::new(),
            &EncryptionContext::new(),
            &PipelineOptions::default(),
        )
        .await
        .unwrap();
    w.write_all(&data(10_000)).await.unwrap();
    w.flush().await.unwrap();
    w.write_all(&data(10_000)).await.unwrap();
    w.shutdown().await.unwrap();
    // Shut down twice is fine; writing after the end is not.
    w.shutdown().await.unwrap();
    let e = w.write_all(b"more").await.unwrap_err();
    assert!(matches!(inner_error(&e), Error::Config(_)));
    let message = w.get_ref().clone();
    let mut expected = data(10_000);
    expected.extend_from_slice(&data(10_000));
    assert!(
        c.decrypt(&message, &DecryptOptions::default())
            .unwrap()
            .plaintext
            == expected
    );
}

/// The executor keeps running other tasks while a large message is sealed and opened: on a
/// current-thread runtime a ticking task keeps ticking.
#[tokio::test(flavor = "current_thread")]
async fn the_executor_is_not_blocked() {
    timeout(LIMIT, async {
        for suite in SUITES {
            let c = client(suite, 65536);
            let plaintext = data(96 << 20);
            let ticks = Arc::new(Mutex::new(Vec::<Instant>::new()));
            let ticker = {
                let ticks = ticks.clone();
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        ticks.lock().unwrap().push(Instant::now());
                    }
                })
            };
            tokio::task::yield_now().await;
            let start = Instant::now();
            let mut w = c
                .encrypt_async_writer(
                    Vec::new(),
                    &EncryptionContext::new(),
                    &PipelineOptions::default(),
                )
                .await
                .unwrap();
            for chunk in plaintext.chunks(4 << 20) {
                w.write_all(chunk).await.unwrap();
            }
            let message = w.finish().await.unwrap();
            let mut r = c
                .decrypt_async_reader(
                    &message[..],
                    &DecryptOptions::default(),
                    &PipelineOptions::default(),
                )
                .await
                .unwrap();
            let mut out = Vec::with_capacity(plaintext.len());
            r.read_to_end(&mut out).await.unwrap();
            let end = Instant::now();
            ticker.abort();
            assert!(out == plaintext);
            let ticks = ticks.lock().unwrap().clone();
            let mut at = start;
            let mut longest = Duration::ZERO;
            let mut count = 0;
            for t in ticks.into_iter().filter(|t| *t > start && *t <= end) {
                longest = longest.max(t - at);
                at = t;
                count += 1;
            }
            longest = longest.max(end - at);
            let took = end - start;
            eprintln!("{suite:?}: {took:?}, {count} ticks, longest gap {longest:?}");
            // Work done on the executor (a blocking adapter) would show as one gap about as
            // long as the whole run.
            assert!(
                longest < took / 2,
                "executor blocked for {longest:?} of {took:?}"
            );
            assert!(count >= 5, "{count} ticks in {took:?}");
        }
    })
    .await
    .expect("timed out");
}

/// No adapter leaves a thread behind, whatever point it was dropped at. Runs in a child
/// process of this test binary (one test, one thread), counting the threads whose name
/// starts with "envcrypt-" (the pipeline thread and, by inheritance, its workers).
#[cfg(target_os = "linux")]
#[test]
fn dropped_adapters_leave_no_thread_behind() {
    const CHILD: &str = "ENVCRYPT_ASYNC_THREAD_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "dropped_adapters_leave_no_thread_behind",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .status()
            .unwrap();
        assert!(status.success());
        return;
    }
    fn pipeline_threads() -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with("envcrypt-"))
            .count()
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for suite in SUITES {
            let c = client(suite, 65536);
            let plaintext = data(4 << 20);
            let message = c.encrypt(&plaintext, &EncryptionContext::new()).unwrap();
            let opts = PipelineOptions::default();
            for round in 0..5 {
                let mut w = c
                    .encrypt_async_writer(Vec::new(), &EncryptionContext::new(), &opts)
                    .await
                    .unwrap();
                w.write_all(&plaintext[..round << 19]).await.unwrap();
                assert!(pipeline_threads() > 0);
                drop(w);
                let mut r = c
                    .decrypt_async_reader(&message[..], &DecryptOptions::default(), &opts)
                    .await
                    .unwrap();
                let mut buf = vec![0u8; round * 300_000 + 1];
                let _ = r.read(&mut buf).await.unwrap();
                drop(r);
                // A tampered message read to its error.
                let mut t = message.clone();
                t[message.len() / 2] ^= 1;
                let mut r = c
                    .decrypt_async_reader(&t[..], &DecryptOptions::default(), &opts)
                    .await
                    .unwrap();
                let mut out = Vec::new();
                assert!(r.read_to_end(&mut out).await.is_err());
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while pipeline_threads() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} pipeline threads left",
            pipeline_threads()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
