//! Where frames sit in the buffers encrypting adapters fill with plaintext.

use std::ops::Range;

use crate::format::{final_frame_len, FINAL_FRAME_PREFIX_LEN, REGULAR_FRAME_PREFIX_LEN};

/// The layout of a buffer that holds any one frame of a message while it is sealed in
/// place: the plaintext always starts at [`PLAINTEXT_AT`](Self::PLAINTEXT_AT), so a
/// buffer filled before anyone knows whether its frame is the last is sealed from the slot
/// that fits (a regular frame's shorter prefix starts a few bytes later).
///
/// ```
/// use envcrypt::engine::FrameSlots;
///
/// let slots = FrameSlots::new(4096);
/// let buf = slots.buffer();
/// assert_eq!(buf.len(), 24 + 4096 + 16);
/// assert_eq!(slots.frame(false, 4096), 8..24 + 4096 + 16); // a regular frame
/// assert_eq!(slots.frame(true, 10), 0..24 + 10 + 16); // a final frame of 10 bytes
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSlots {
    frame_length: usize,
}

impl FrameSlots {
    /// Where the plaintext starts in the buffer.
    pub const PLAINTEXT_AT: usize = FINAL_FRAME_PREFIX_LEN;
    /// Where a regular frame starts in the buffer.
    const REGULAR_AT: usize = FINAL_FRAME_PREFIX_LEN - REGULAR_FRAME_PREFIX_LEN;

    /// The slots of a message with `frame_length`.
    pub const fn new(frame_length: usize) -> Self {
        Self { frame_length }
    }

    /// The frame length.
    pub const fn frame_length(&self) -> usize {
        self.frame_length
    }

    /// Bytes a buffer needs to hold any frame.
    pub const fn buffer_len(&self) -> usize {
        final_frame_len(self.frame_length)
    }

    /// A zeroed buffer for any frame.
    pub fn buffer(&self) -> Vec<u8> {
        vec![0; self.buffer_len()]
    }

    /// Where the plaintext of a frame of `len` bytes lies.
    pub const fn plaintext(&self, len: usize) -> Range<usize> {
        Self::PLAINTEXT_AT..Self::PLAINTEXT_AT + len
    }

    /// Where the sealed frame holding `len` plaintext bytes lies: the final frame's or a
    /// regular one's (`len` = the frame length).
    pub const fn frame(&self, last: bool, len: usize) -> Range<usize> {
        let end = final_frame_len(len);
        match last {
            true => 0..end,
            false => Self::REGULAR_AT..end,
        }
    }
}
