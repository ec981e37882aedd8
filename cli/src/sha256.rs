//! SHA-256 for `demo`'s round-trip check (CLI.md: "checks the result is identical
//! (SHA-256)"), from the crypto provider, on its own thread; the digest printed lets a user
//! check the files with `sha256sum`.

use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Bytes handed to the hashing thread at a time.
const CHUNK: usize = 1 << 20;

/// A SHA-256 computed on its own thread, so the caller's writes or reads overlap with it.
pub struct Background {
    tx: Option<SyncSender<Vec<u8>>>,
    spare: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    thread: Option<JoinHandle<[u8; 32]>>,
}

impl Background {
    pub fn new() -> Self {
        let (tx, chunks) = sync_channel::<Vec<u8>>(2);
        let (spare_tx, spare) = channel::<Vec<u8>>();
        let thread = std::thread::spawn(move || {
            let mut h = envcrypt::crypto::default_provider()
                .digest
                .start(envcrypt::crypto::HashAlgorithm::Sha256);
            for mut chunk in chunks {
                h.update(&chunk);
                chunk.clear();
                let _ = spare_tx.send(chunk);
            }
            h.finish().try_into().expect("SHA-256 is 32 bytes")
        });
        Self {
            tx: Some(tx),
            spare,
            buf: Vec::with_capacity(CHUNK),
            thread: Some(thread),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send();
        }
    }

    fn send(&mut self) {
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.buf, next);
        if let Some(tx) = &self.tx {
            let _ = tx.send(full);
        }
    }

    pub fn finish(mut self) -> [u8; 32] {
        if !self.buf.is_empty() {
            self.send();
        }
        drop(self.tx.take());
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .expect("the hashing thread does not panic")
    }
}

/// Lower-case hex.
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
