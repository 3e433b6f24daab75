//! The frame layout of compressed blobs: how a large blob is cut into independent zstd frames when it is stored,
//! and how a reader finds those frames again without decompressing anything.
//!
//! A blob larger than [`FRAME_SIZE`] is stored as consecutive zstd frames of [`FRAME_SIZE`] decompressed bytes
//! each (the last one shorter), every frame recording its decompressed size. Concatenated frames are one valid
//! zstd stream (RFC 8878 §3.1), so every streaming reader decodes them unchanged; what the cut buys is that frames
//! can be compressed and decompressed in parallel, from contiguous buffers, with memory bounded by the frame size.
//! zstd's window at level 3 is 2 MiB, so starting a new frame every 4 MiB costs 0.3–0.4% of ratio on the Rust
//! toolchain's large libraries (8 MiB frames would cost 0.15% but double every buffer).
//!
//! [`frames`] walks frame and block headers with positioned reads (three bytes per block), following the format of
//! RFC 8878 §3.1.1; a frame it cannot size (no recorded content size, a skippable frame, a dictionary) makes it
//! answer `None`, and the caller decodes the object as one stream.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Decompressed bytes per frame of a large blob.
pub(crate) const FRAME_SIZE: usize = 4 << 20;

/// The zstd frame magic number (RFC 8878 §3.1.1).
const MAGIC: u32 = 0xFD2F_B528;

/// Size of a block header.
const BLOCK_HEADER: u64 = 3;

/// Size of the optional content checksum at the end of a frame.
const CHECKSUM: u64 = 4;

/// One frame of a stored blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    /// Where the frame starts in the file holding the object.
    pub offset: u64,
    /// Its stored length.
    pub compressed: u64,
    /// The decompressed bytes it holds, as its header records.
    pub content: u64,
}

/// The frames of a zstd object of `len` bytes starting at byte `start` of `file` (a pack holds many objects), in
/// order, their offsets counted from the start of the file; `None` when a frame does not record its decompressed
/// size (or is not a plain zstd frame), so the object must be decoded as one stream. A header that runs past the
/// end of the object or breaks the format is `InvalidData`.
pub(crate) fn frames(file: &File, start: u64, len: u64) -> io::Result<Option<Vec<Frame>>> {
    let end = start + len;
    let mut frames = Vec::new();
    let mut offset = start;
    while offset < end {
        let Some(frame) = frame_at(file, offset, end)? else {
            return Ok(None);
        };
        offset += frame.compressed;
        frames.push(frame);
    }
    Ok(Some(frames))
}

/// The decompressed size of a zstd object (as for [`frames`]), from its frame headers; `None` when a frame does
/// not record it.
pub(crate) fn content_size(file: &File, start: u64, len: u64) -> io::Result<Option<u64>> {
    Ok(frames(file, start, len)?.map(|frames| frames.iter().map(|frame| frame.content).sum()))
}

fn invalid(offset: u64, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("zstd frame at byte {offset}: {what}"),
    )
}

/// Reads exactly `buffer.len()` bytes at `offset`, which must lie within `stored`.
fn read_at(file: &File, buffer: &mut [u8], offset: u64, stored: u64, frame: u64) -> io::Result<()> {
    if offset + buffer.len() as u64 > stored {
        return Err(invalid(frame, "truncated"));
    }
    file.read_exact_at(buffer, offset)
}

fn frame_at(file: &File, offset: u64, stored: u64) -> io::Result<Option<Frame>> {
    let mut head = [0u8; 5];
    read_at(file, &mut head, offset, stored, offset)?;
    let magic = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    if magic != MAGIC {
        // Skippable frames (0x184D2A5?) are valid zstd but never written by the store: decode as a stream.
        return if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
            Ok(None)
        } else {
            Err(invalid(offset, "bad magic number"))
        };
    }
    let descriptor = head[4];
    if descriptor & 0x08 != 0 {
        return Err(invalid(offset, "reserved bit set"));
    }
    let single_segment = descriptor & 0x20 != 0;
    let has_checksum = descriptor & 0x04 != 0;
    let dictionary_bytes = [0u64, 1, 2, 4][usize::from(descriptor & 0x03)];
    if dictionary_bytes != 0 {
        return Ok(None);
    }
    let window_bytes = u64::from(!single_segment);
    let size_bytes: u64 = match descriptor >> 6 {
        0 if single_segment => 1,
        0 => return Ok(None),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let mut size_field = [0u8; 8];
    let size_len = usize::try_from(size_bytes).unwrap_or(8);
    read_at(
        file,
        &mut size_field[..size_len],
        offset + 5 + window_bytes,
        stored,
        offset,
    )?;
    let mut content = u64::from_le_bytes(size_field);
    if size_bytes == 2 {
        content += 256;
    }
    let mut position = offset + 5 + window_bytes + size_bytes;
    loop {
        let mut header = [0u8; 3];
        read_at(file, &mut header, position, stored, offset)?;
        let header = u32::from_le_bytes([header[0], header[1], header[2], 0]);
        let last = header & 1 != 0;
        let block_size = u64::from(header >> 3);
        let payload = match (header >> 1) & 3 {
            // Raw and compressed blocks carry `block_size` bytes; an RLE block carries the one byte it repeats.
            0 | 2 => block_size,
            1 => 1,
            _ => return Err(invalid(offset, "reserved block type")),
        };
        position += BLOCK_HEADER + payload;
        if position > stored {
            return Err(invalid(offset, "truncated"));
        }
        if last {
            break;
        }
    }
    if has_checksum {
        position += CHECKSUM;
        if position > stored {
            return Err(invalid(offset, "truncated"));
        }
    }
    Ok(Some(Frame {
        offset,
        compressed: position - offset,
        content,
    }))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn object(frames: &[Vec<u8>]) -> (tempfile::NamedTempFile, u64) {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        let mut stored = 0;
        for frame in frames {
            file.write_all(frame).expect("write");
            stored += frame.len() as u64;
        }
        (file, stored)
    }

    #[test]
    fn frames_are_found_where_zstd_itself_ends_them() {
        // Compressible text, incompressible bytes (raw blocks), a run of zeros (RLE blocks), an empty frame, and
        // sizes on both sides of the 2-byte content-size field's +256 offset.
        let text: Vec<u8> = (0..300_000u32)
            .flat_map(|i| format!("line {} of text\n", i % 977).into_bytes())
            .collect();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let inputs: Vec<Vec<u8>> = vec![
            text.clone(),
            noise,
            vec![0u8; 1 << 20],
            Vec::new(),
            text[..300].to_vec(),
            text[..70_000].to_vec(),
        ];
        for level in [1, 3, 19] {
            let compressed: Vec<Vec<u8>> = inputs
                .iter()
                .map(|input| zstd::bulk::compress(input, level).expect("compress"))
                .collect();
            let (file, stored) = object(&compressed);
            let found = frames(file.as_file(), 0, stored)
                .expect("valid frames")
                .expect("sizes recorded");
            assert_eq!(found.len(), inputs.len());
            let mut offset = 0;
            for ((frame, bytes), input) in found.iter().zip(&compressed).zip(&inputs) {
                assert_eq!(
                    frame.compressed as usize,
                    zstd::zstd_safe::find_frame_compressed_size(bytes).expect("zstd sizes it")
                );
                assert_eq!(frame.offset, offset);
                assert_eq!(frame.content, input.len() as u64);
                offset += frame.compressed;
            }
            assert_eq!(
                content_size(file.as_file(), 0, stored).expect("valid"),
                Some(inputs.iter().map(|input| input.len() as u64).sum())
            );
        }
    }

    #[test]
    fn a_frame_without_its_size_or_with_a_checksum_is_handled() {
        let mut encoder = zstd::stream::Encoder::new(Vec::new(), 3).expect("encoder");
        encoder.include_checksum(true).expect("checksum");
        encoder.write_all(&vec![7u8; 100_000]).expect("write");
        let without_size = encoder.finish().expect("finish");
        let (file, stored) = object(&[without_size]);
        assert_eq!(frames(file.as_file(), 0, stored).expect("valid"), None);

        let mut sized = zstd::bulk::Compressor::new(3).expect("compressor");
        sized.include_checksum(true).expect("checksum");
        let frame = sized.compress(&vec![7u8; 100_000]).expect("compress");
        let (file, stored) = object(std::slice::from_ref(&frame));
        let found = frames(file.as_file(), 0, stored)
            .expect("valid")
            .expect("sized");
        assert_eq!(found[0].compressed as usize, frame.len());

        let stored = frame.len() as u64;
        let (file, _) = object(&[frame]);
        let error = frames(file.as_file(), 0, stored - 1).expect_err("truncated");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        let (file, stored) = object(&[b"not zstd at all".to_vec()]);
        let error = frames(file.as_file(), 0, stored).expect_err("not zstd");
        assert!(error.to_string().contains("bad magic"), "{error}");
    }
}
