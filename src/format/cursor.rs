//! A bounds-checked reader over a byte slice that may end early.

/// Why a read stopped: not enough bytes yet (`Incomplete`) is not an error of the format.
#[derive(Debug)]
pub(crate) struct Incomplete;

/// Reads big-endian fields from the front of a slice.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Incomplete> {
        let end = self.pos.checked_add(n).ok_or(Incomplete)?;
        let out = self.bytes.get(self.pos..end).ok_or(Incomplete)?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Incomplete> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Incomplete> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Incomplete> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Incomplete> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Incomplete> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A `u16` length followed by that many bytes.
    pub(crate) fn u16_prefixed(&mut self) -> Result<&'a [u8], Incomplete> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }
}

/// Runs a parse step; `Incomplete` becomes `Ok(None)`, format errors pass through.
macro_rules! need {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err($crate::format::cursor::Incomplete) => return Ok(None),
        }
    };
}
pub(crate) use need;
