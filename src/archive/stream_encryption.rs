//! Client-side encryption of streamed objects (data-dir archives): the `KSNAPES2` stream
//! envelope, AES-256-GCM over fixed 1 MiB chunks under the key's stream subkey
//! ([`EncryptionKey`]; `KSNAPES1` streams, under the key itself, are still read), each
//! chunk's nonce made of a random per-object prefix, its index and a last-chunk flag, the
//! object key as associated data. Sealed and opened as the bytes stream, in bounded memory.
//! Specified in docs/FORMAT.md ("Stream layout").

use std::io::{self, Read};

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Nonce, Tag};

use super::encryption::CipherUse;
use super::{ArchiveError, EncryptionKey};

/// The first bytes of every encrypted stream written now (under the stream subkey).
pub const STREAM_MAGIC: &[u8; 8] = b"KSNAPES2";
/// The first bytes of a stream kafkasnap 0.1 encrypted under the key itself; still read.
pub(crate) const STREAM_MAGIC_V1: &[u8; 8] = b"KSNAPES1";
/// Plaintext bytes in every chunk but the last (which holds fewer, possibly none).
pub(crate) const STREAM_CHUNK_BYTES: usize = 1 << 20;
const PREFIX_LEN: usize = 7;
const TAG_LEN: usize = 16;
/// Magic and nonce prefix.
pub(crate) const STREAM_HEADER_LEN: usize = STREAM_MAGIC.len() + PREFIX_LEN;
/// A chunk as stored: its ciphertext and tag.
const SEALED_CHUNK_BYTES: usize = STREAM_CHUNK_BYTES + TAG_LEN;

/// Bytes a stream of `plaintext` bytes takes when sealed.
pub fn sealed_stream_len(plaintext: u64) -> u64 {
    let chunks = plaintext / STREAM_CHUNK_BYTES as u64 + 1;
    STREAM_HEADER_LEN as u64 + plaintext + chunks * TAG_LEN as u64
}

/// The nonce of chunk `index`: prefix, index (big-endian), last-chunk flag.
fn nonce(prefix: &[u8; PREFIX_LEN], index: u32, last: bool) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[..PREFIX_LEN].copy_from_slice(prefix);
    nonce[PREFIX_LEN..11].copy_from_slice(&index.to_be_bytes());
    nonce[11] = u8::from(last);
    nonce
}

/// The associated data of every chunk: the stream's magic followed by the object key's
/// UTF-8 bytes.
fn associated_data(magic: &[u8; 8], object_key: &str) -> Vec<u8> {
    [magic.as_slice(), object_key.as_bytes()].concat()
}

/// Stored offset of chunk `index`.
fn chunk_position(index: u32) -> u64 {
    STREAM_HEADER_LEN as u64 + u64::from(index) * SEALED_CHUNK_BYTES as u64
}

/// Seals a stream for storage under one object key: feed it the plaintext with
/// [`StreamSealer::update`] in pieces of any size, then [`StreamSealer::finish`]. The output
/// pieces, concatenated, are the stored object (the first one starts with the header).
pub struct StreamSealer {
    key: EncryptionKey,
    aad: Vec<u8>,
    prefix: [u8; PREFIX_LEN],
    index: u32,
    /// The next sealed piece: (header, for the first) plaintext not yet sealed.
    pending: Vec<u8>,
    /// Where the plaintext starts in `pending`.
    body_start: usize,
}

impl StreamSealer {
    /// A stream for `object_key` with a fresh random nonce prefix.
    pub fn new(key: &EncryptionKey, object_key: &str) -> Result<StreamSealer, ArchiveError> {
        let mut prefix = [0u8; PREFIX_LEN];
        getrandom::fill(&mut prefix).map_err(|source| ArchiveError::NoRandomness { source })?;
        let mut pending = Vec::with_capacity(STREAM_HEADER_LEN + SEALED_CHUNK_BYTES);
        pending.extend_from_slice(STREAM_MAGIC);
        pending.extend_from_slice(&prefix);
        Ok(StreamSealer {
            key: key.clone(),
            aad: associated_data(STREAM_MAGIC, object_key),
            prefix,
            index: 0,
            pending,
            body_start: STREAM_HEADER_LEN,
        })
    }

    /// Takes more plaintext; returns the chunks it completed, sealed (usually none or one).
    pub fn update(&mut self, mut plaintext: &[u8]) -> Result<Vec<Vec<u8>>, ArchiveError> {
        let mut sealed = Vec::new();
        while !plaintext.is_empty() {
            let room = STREAM_CHUNK_BYTES - (self.pending.len() - self.body_start);
            let (now, later) = plaintext.split_at(room.min(plaintext.len()));
            self.pending.extend_from_slice(now);
            plaintext = later;
            if self.pending.len() - self.body_start == STREAM_CHUNK_BYTES {
                sealed.push(self.seal(false)?);
            }
        }
        Ok(sealed)
    }

    /// Seals the last chunk (what is left, possibly nothing) and returns it.
    pub fn finish(mut self) -> Result<Vec<u8>, ArchiveError> {
        self.seal(true)
    }

    fn seal(&mut self, last: bool) -> Result<Vec<u8>, ArchiveError> {
        let capacity = if last { 0 } else { SEALED_CHUNK_BYTES };
        let mut piece = std::mem::replace(&mut self.pending, Vec::with_capacity(capacity));
        let body = &mut piece[self.body_start..];
        let len = body.len();
        let tag = self
            .key
            .aead(CipherUse::Streams)
            .encrypt_inout_detached(
                &Nonce::from(nonce(&self.prefix, self.index, last)),
                &self.aad,
                body.into(),
            )
            .map_err(|_| ArchiveError::EncryptionFailed { len })?;
        piece.extend_from_slice(&tag);
        self.body_start = 0;
        if !last {
            self.index = self
                .index
                .checked_add(1)
                .ok_or(ArchiveError::StreamTooLong)?;
        }
        Ok(piece)
    }
}

/// Opens the chunks of one stream in order, given its header.
struct ChunkOpener {
    key: EncryptionKey,
    /// The subkey (or, for a version 1 stream, the key) its magic names.
    usage: CipherUse,
    aad: Vec<u8>,
    prefix: [u8; PREFIX_LEN],
    index: u32,
}

impl ChunkOpener {
    fn new(key: &EncryptionKey, object_key: &str, header: &[u8]) -> Result<Self, ArchiveError> {
        let (magic, usage) = match header.get(..STREAM_MAGIC.len()) {
            Some(magic) if magic == STREAM_MAGIC => (STREAM_MAGIC, CipherUse::Streams),
            Some(magic) if magic == STREAM_MAGIC_V1 => (STREAM_MAGIC_V1, CipherUse::RawKey),
            _ => return Err(ArchiveError::NotEncryptedStream),
        };
        if header.len() < STREAM_HEADER_LEN {
            return Err(ArchiveError::StreamTruncated {
                position: header.len() as u64,
            });
        }
        Ok(ChunkOpener {
            key: key.clone(),
            usage,
            aad: associated_data(magic, object_key),
            prefix: header[STREAM_MAGIC.len()..STREAM_HEADER_LEN]
                .try_into()
                .expect("7 bytes"),
            index: 0,
        })
    }

    /// Checks and decrypts the next chunk in place, leaving only its plaintext in `sealed`.
    fn open(&mut self, sealed: &mut Vec<u8>, last: bool) -> Result<(), ArchiveError> {
        let position = chunk_position(self.index);
        if sealed.len() < TAG_LEN {
            return Err(ArchiveError::StreamTruncated {
                position: position + sealed.len() as u64,
            });
        }
        let body_len = sealed.len() - TAG_LEN;
        let tag: [u8; TAG_LEN] = sealed[body_len..].try_into().expect("16 bytes");
        sealed.truncate(body_len);
        self.key
            .aead(self.usage)
            .decrypt_inout_detached(
                &Nonce::from(nonce(&self.prefix, self.index, last)),
                &self.aad,
                sealed.as_mut_slice().into(),
                &Tag::from(tag),
            )
            .map_err(|_| ArchiveError::StreamChunkFailed {
                chunk: self.index,
                position,
            })?;
        self.index = self.index.wrapping_add(1);
        Ok(())
    }
}

/// Opens a stream pushed to it in pieces of any size ([`StreamOpener::update`], then
/// [`StreamOpener::finish`]), handing on only plaintext whose chunk's tag matched.
pub(crate) struct StreamOpener {
    key: EncryptionKey,
    object_key: String,
    /// The header while it is incomplete.
    header: Vec<u8>,
    chunks: Option<ChunkOpener>,
    /// Stored bytes of the current chunk.
    pending: Vec<u8>,
}

impl StreamOpener {
    pub(crate) fn new(key: &EncryptionKey, object_key: &str) -> StreamOpener {
        StreamOpener {
            key: key.clone(),
            object_key: object_key.to_string(),
            header: Vec::with_capacity(STREAM_HEADER_LEN),
            chunks: None,
            pending: Vec::new(),
        }
    }

    /// Takes more stored bytes; passes the plaintext of every chunk they complete to `out`.
    pub(crate) fn update(
        &mut self,
        mut stored: &[u8],
        mut out: impl FnMut(&[u8]),
    ) -> Result<(), ArchiveError> {
        while !stored.is_empty() {
            let Some(chunks) = &mut self.chunks else {
                let (now, later) =
                    stored.split_at((STREAM_HEADER_LEN - self.header.len()).min(stored.len()));
                self.header.extend_from_slice(now);
                stored = later;
                if self.header.len() == STREAM_HEADER_LEN {
                    self.chunks =
                        Some(ChunkOpener::new(&self.key, &self.object_key, &self.header)?);
                    self.pending.reserve_exact(SEALED_CHUNK_BYTES);
                }
                continue;
            };
            let (now, later) =
                stored.split_at((SEALED_CHUNK_BYTES - self.pending.len()).min(stored.len()));
            self.pending.extend_from_slice(now);
            stored = later;
            // Only the last chunk is shorter, so a full one is never the last.
            if self.pending.len() == SEALED_CHUNK_BYTES {
                chunks.open(&mut self.pending, false)?;
                out(&self.pending);
                self.pending.clear();
            }
        }
        Ok(())
    }

    /// The end of the stored bytes: what is left must be the last chunk.
    pub(crate) fn finish(mut self, mut out: impl FnMut(&[u8])) -> Result<(), ArchiveError> {
        let Some(chunks) = &mut self.chunks else {
            // Fewer bytes than a header: check the magic as far as it goes.
            ChunkOpener::new(&self.key, &self.object_key, &self.header)?;
            unreachable!("a short header is refused");
        };
        chunks.open(&mut self.pending, true)?;
        out(&self.pending);
        Ok(())
    }
}

/// The plaintext of a stored stream read from `inner`, as a blocking `Read`: a chunk's bytes
/// are returned only once its tag matched; a failure is an `InvalidData` error whose inner
/// error is the [`ArchiveError`].
pub(crate) struct DecryptingReader<R> {
    inner: R,
    key: EncryptionKey,
    object_key: String,
    chunks: Option<ChunkOpener>,
    /// The current chunk: stored bytes, then (after opening) its plaintext.
    chunk: Vec<u8>,
    read_from: usize,
    done: bool,
}

impl<R: Read> DecryptingReader<R> {
    pub(crate) fn new(inner: R, key: &EncryptionKey, object_key: &str) -> DecryptingReader<R> {
        DecryptingReader {
            inner,
            key: key.clone(),
            object_key: object_key.to_string(),
            chunks: None,
            chunk: Vec::new(),
            read_from: 0,
            done: false,
        }
    }

    /// Reads and opens the next chunk into `self.chunk`.
    fn next_chunk(&mut self) -> io::Result<()> {
        let invalid = |err: ArchiveError| io::Error::new(io::ErrorKind::InvalidData, err);
        if self.chunks.is_none() {
            let mut header = Vec::with_capacity(STREAM_HEADER_LEN);
            (&mut self.inner)
                .take(STREAM_HEADER_LEN as u64)
                .read_to_end(&mut header)?;
            let opener = ChunkOpener::new(&self.key, &self.object_key, &header);
            self.chunks = Some(opener.map_err(invalid)?);
            self.chunk = Vec::with_capacity(SEALED_CHUNK_BYTES);
        }
        let chunks = self.chunks.as_mut().expect("opened above");
        self.chunk.clear();
        self.read_from = 0;
        (&mut self.inner)
            .take(SEALED_CHUNK_BYTES as u64)
            .read_to_end(&mut self.chunk)?;
        // A full chunk is never the last; a short one is, and the input ended there.
        let last = self.chunk.len() < SEALED_CHUNK_BYTES;
        chunks.open(&mut self.chunk, last).map_err(invalid)?;
        self.done = last;
        Ok(())
    }
}

impl<R: Read> Read for DecryptingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.read_from == self.chunk.len() {
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = buf.len().min(self.chunk.len() - self.read_from);
        buf[..n].copy_from_slice(&self.chunk[self.read_from..self.read_from + n]);
        self.read_from += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::KeyInit;

    const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const OBJECT: &str = "datadir/20261125T145443Z-3f9a1c/data.tar.zst";
    const CHUNK: usize = STREAM_CHUNK_BYTES;

    fn key() -> EncryptionKey {
        EncryptionKey::parse(KEY_HEX.as_bytes()).unwrap()
    }

    /// Plaintext that shows where every byte came from.
    fn plaintext(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    /// Seals `data`, fed in pieces of `piece` bytes.
    fn seal(data: &[u8], piece: usize, object_key: &str) -> Vec<u8> {
        let mut sealer = StreamSealer::new(&key(), object_key).unwrap();
        let mut stored = Vec::new();
        for part in data.chunks(piece) {
            for sealed in sealer.update(part).unwrap() {
                stored.extend_from_slice(&sealed);
            }
        }
        stored.extend_from_slice(&sealer.finish().unwrap());
        stored
    }

    /// Opens `stored` both ways (pushed in `piece`-byte parts, and read), which must agree.
    fn open_with(
        key: &EncryptionKey,
        stored: &[u8],
        piece: usize,
        object_key: &str,
    ) -> Result<Vec<u8>, ArchiveError> {
        let mut pushed = Vec::new();
        let mut opener = StreamOpener::new(key, object_key);
        let result = stored
            .chunks(piece)
            .try_for_each(|part| opener.update(part, |p| pushed.extend_from_slice(p)))
            .and_then(|()| opener.finish(|p| pushed.extend_from_slice(p)));
        let mut read = Vec::new();
        let mut reader = DecryptingReader::new(stored, key, object_key);
        let read_result = reader.read_to_end(&mut read).map_err(|err| {
            *err.into_inner()
                .expect("an archive error")
                .downcast::<ArchiveError>()
                .expect("an archive error")
        });
        match (result, read_result) {
            (Ok(()), Ok(_)) => {
                assert_eq!(pushed, read);
                Ok(pushed)
            }
            (Err(pushed), Err(read)) => {
                assert_eq!(pushed.to_string(), read.to_string());
                Err(pushed)
            }
            (pushed, read) => panic!("push {pushed:?} and read {read:?} disagree"),
        }
    }

    fn open(stored: &[u8]) -> Result<Vec<u8>, ArchiveError> {
        open_with(&key(), stored, 64 * 1024 + 3, OBJECT)
    }

    #[test]
    fn round_trips_across_chunk_boundaries_in_any_pieces() {
        for len in [1, CHUNK - 1, CHUNK + 1, 2 * CHUNK + 12_345] {
            let data = plaintext(len);
            for piece in [1000, 64 * 1024 + 7, CHUNK, 3 * CHUNK] {
                let stored = seal(&data, piece, OBJECT);
                assert_eq!(stored.len() as u64, sealed_stream_len(len as u64), "{len}");
                assert_eq!(&stored[..8], STREAM_MAGIC);
                assert_eq!(open(&stored).unwrap(), data, "{len} in {piece}-byte pieces");
                // Pushed a byte at a time, the same.
                if len == CHUNK + 1 && piece == 1000 {
                    assert_eq!(open_with(&key(), &stored, 1, OBJECT).unwrap(), data);
                }
            }
        }
    }

    #[test]
    fn streams_are_under_the_stream_subkey_and_version_1_ones_still_read() {
        let data = plaintext(CHUNK + 10);
        let stored = seal(&data, 4096, OBJECT);
        // Relabelled as a version 1 stream, it would have to open under the key itself.
        let mut relabelled = stored.clone();
        relabelled[..8].copy_from_slice(STREAM_MAGIC_V1);
        assert!(matches!(
            open(&relabelled),
            Err(ArchiveError::StreamChunkFailed { chunk: 0, .. })
        ));
        // A version 1 stream, as kafkasnap 0.1 sealed it under the key itself, opens.
        let raw = aes_gcm::Aes256Gcm::new(&hex::decode(KEY_HEX).unwrap()[..].try_into().unwrap());
        let prefix = [3u8; PREFIX_LEN];
        let aad = associated_data(STREAM_MAGIC_V1, OBJECT);
        let mut old = [STREAM_MAGIC_V1.as_slice(), &prefix].concat();
        let chunks: Vec<&[u8]> = data.chunks(CHUNK).collect();
        for (index, chunk) in chunks.iter().enumerate() {
            let last = index + 1 == chunks.len();
            let mut body = chunk.to_vec();
            let tag = raw
                .encrypt_inout_detached(
                    &Nonce::from(nonce(&prefix, index as u32, last)),
                    &aad,
                    body.as_mut_slice().into(),
                )
                .unwrap();
            old.extend_from_slice(&body);
            old.extend_from_slice(&tag);
        }
        assert_eq!(open(&old).unwrap(), data);
    }

    #[test]
    fn an_empty_stream_is_a_header_and_one_empty_last_chunk() {
        let stored = seal(b"", 1, OBJECT);
        assert_eq!(stored.len(), STREAM_HEADER_LEN + TAG_LEN);
        assert_eq!(open(&stored).unwrap(), b"");
        // Cut to the header alone, or into it: refused.
        for cut in [0, 3, 8, STREAM_HEADER_LEN, STREAM_HEADER_LEN + TAG_LEN - 1] {
            let err = open(&stored[..cut]).unwrap_err();
            assert!(
                matches!(err, ArchiveError::StreamTruncated { .. })
                    || (cut < 8 && matches!(err, ArchiveError::NotEncryptedStream)),
                "cut at {cut}: {err}"
            );
        }
    }

    #[test]
    fn an_exact_multiple_of_the_chunk_size_ends_with_an_empty_last_chunk() {
        let data = plaintext(2 * CHUNK);
        let stored = seal(&data, CHUNK, OBJECT);
        assert_eq!(
            stored.len(),
            STREAM_HEADER_LEN + 2 * SEALED_CHUNK_BYTES + TAG_LEN
        );
        assert_eq!(open(&stored).unwrap(), data);
    }

    #[test]
    fn a_stream_cut_at_a_chunk_boundary_is_truncated() {
        let data = plaintext(2 * CHUNK + 500);
        let stored = seal(&data, 4096, OBJECT);
        for chunks in [1, 2] {
            let cut = STREAM_HEADER_LEN + chunks * SEALED_CHUNK_BYTES;
            let err = open(&stored[..cut]).unwrap_err();
            assert!(
                matches!(err, ArchiveError::StreamTruncated { position } if position == cut as u64),
                "{err}"
            );
        }
        // Cut inside the last chunk: it no longer authenticates.
        let err = open(&stored[..stored.len() - 1]).unwrap_err();
        assert!(
            matches!(err, ArchiveError::StreamChunkFailed { chunk: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn any_flipped_byte_fails_and_nothing_of_its_chunk_is_handed_on() {
        let data = plaintext(CHUNK + 100);
        let stored = seal(&data, CHUNK, OBJECT);
        let positions = [
            0,
            8,
            STREAM_HEADER_LEN - 1,
            STREAM_HEADER_LEN,
            STREAM_HEADER_LEN + CHUNK / 2,
            STREAM_HEADER_LEN + SEALED_CHUNK_BYTES - 1,
            STREAM_HEADER_LEN + SEALED_CHUNK_BYTES + 50,
            stored.len() - 1,
        ];
        for position in positions {
            let mut tampered = stored.clone();
            tampered[position] ^= 0x01;
            let mut handed_on = 0;
            let mut opener = StreamOpener::new(&key(), OBJECT);
            let result = opener
                .update(&tampered, |p| handed_on += p.len())
                .and_then(|()| opener.finish(|p| handed_on += p.len()));
            assert!(result.is_err(), "flip at byte {position} went unnoticed");
            assert!(open(&tampered).is_err());
            // Chunk 0 is handed on only when the flip is in chunk 1.
            let expected = if position >= STREAM_HEADER_LEN + SEALED_CHUNK_BYTES {
                CHUNK
            } else {
                0
            };
            assert_eq!(handed_on, expected, "flip at byte {position}");
        }
        assert!(matches!(
            open(&stored[..5]),
            Err(ArchiveError::NotEncryptedStream)
        ));
    }

    #[test]
    fn reordered_dropped_or_appended_chunks_fail() {
        let data = plaintext(3 * CHUNK + 10);
        let stored = seal(&data, CHUNK, OBJECT);
        let header = &stored[..STREAM_HEADER_LEN];
        let chunk = |i: usize| {
            let start = STREAM_HEADER_LEN + i * SEALED_CHUNK_BYTES;
            &stored[start..(start + SEALED_CHUNK_BYTES).min(stored.len())]
        };
        let build = |order: &[usize]| -> Vec<u8> {
            let mut out = header.to_vec();
            for &i in order {
                out.extend_from_slice(chunk(i));
            }
            out
        };
        assert_eq!(open(&build(&[0, 1, 2, 3])).unwrap(), data);
        for order in [
            &[1, 0, 2, 3][..],
            &[0, 2, 1, 3],
            &[0, 1, 3],
            &[1, 2, 3],
            &[0, 1, 2, 3, 3],
            &[0, 1, 2, 2, 3],
            &[0, 1, 2],
        ] {
            assert!(
                open(&build(order)).is_err(),
                "chunk order {order:?} accepted"
            );
        }
        // A whole other stream's chunks (another nonce prefix) do not fit in.
        let other = seal(&data, CHUNK, OBJECT);
        let mut spliced = stored[..STREAM_HEADER_LEN + SEALED_CHUNK_BYTES].to_vec();
        spliced.extend_from_slice(&other[STREAM_HEADER_LEN + SEALED_CHUNK_BYTES..]);
        assert!(matches!(
            open(&spliced),
            Err(ArchiveError::StreamChunkFailed { chunk: 1, .. })
        ));
    }

    #[test]
    fn another_key_or_object_key_fails_at_the_first_chunk() {
        let stored = seal(b"a data-dir tar, compressed", 7, OBJECT);
        let mut raw: [u8; 32] = hex::decode(KEY_HEX).unwrap().try_into().unwrap();
        raw[0] ^= 0x80;
        let other = EncryptionKey::parse(&raw).unwrap();
        let elsewhere = OBJECT.replace("3f9a1c", "3f9a1d");
        for (key, object_key) in [(&other, OBJECT), (&key(), elsewhere.as_str())] {
            let err = open_with(key, &stored, 100, object_key).unwrap_err();
            assert!(
                matches!(
                    err,
                    ArchiveError::StreamChunkFailed {
                        chunk: 0,
                        position: 15
                    }
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn nonce_prefixes_are_fresh_and_plaintext_is_not_visible() {
        let data = b"order-42 shipped to 221B Baker Street".repeat(1000);
        let first = seal(&data, 4096, OBJECT);
        let second = seal(&data, 4096, OBJECT);
        assert_ne!(first[8..15], second[8..15], "nonce prefixes must differ");
        assert!(!first.windows(8).any(|w| w == b"order-42"));
        // A segment envelope (KSNAPEN1) is not a stream.
        let segment = key().encrypt(OBJECT, &data).unwrap();
        assert!(matches!(
            open(&segment),
            Err(ArchiveError::NotEncryptedStream)
        ));
    }
}
