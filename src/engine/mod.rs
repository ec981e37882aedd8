//! The sans-I/O engine: message state machines over caller-owned buffers.
//!
//! [`Encryptor`] and [`Decryptor`] never read or write anything themselves. The caller
//! (an adapter: one-shot, `std::io`, the tool, ...) owns the buffers, hands the engine one
//! frame at a time to seal or open in place, and moves the bytes. So every adapter shares one
//! implementation of the format, the key schedule and the release rule, and no byte is
//! copied beyond what the adapter's own I/O needs.

mod decryptor;
mod encryptor;
mod keys;
mod slots;

pub use decryptor::{DecryptConfig, Decryptor, FrameLayout, FrameOpener, Next};
pub use encryptor::{footer, Encryptor, FrameSealer, FrameTicket, FrameTickets};
pub use slots::FrameSlots;

/// Default frame length for encryption (64 KiB).
pub const DEFAULT_FRAME_LENGTH: u32 = 64 * 1024;
/// Default largest frame length a reader accepts (16 MiB).
pub const DEFAULT_MAX_FRAME_LENGTH: u32 = 16 * 1024 * 1024;
/// Default largest header a reader accepts (1 MiB; 64 KMS EDKs and a full context take
/// about 80 KiB).
pub const DEFAULT_MAX_HEADER_LENGTH: u32 = 1 << 20;
/// Default largest number of encrypted data keys a reader accepts.
pub const DEFAULT_MAX_ENCRYPTED_DATA_KEYS: u16 = 64;
