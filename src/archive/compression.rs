//! Per-segment compression codecs named in the manifest: zstd (default), lz4, gzip, none.

use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use super::ArchiveError;

/// How one segment object's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Zstd,
    /// The LZ4 frame format (lz4_flex): the cheapest to compress, the largest archives.
    Lz4,
    Gzip,
    None,
}

/// A compression level the codec does not have; refused before anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe_bad_level(*.compression, *.level))]
pub struct BadLevel {
    pub(crate) compression: Compression,
    pub(crate) level: i32,
}

fn describe_bad_level(compression: Compression, level: i32) -> String {
    match compression.levels() {
        Some(range) if compression == Compression::Zstd => format!(
            "--level {level} is not a zstd level: use {} to -1 (zstd's fast levels) or 1 to {} ({} is the default); nothing was written",
            range.start(),
            range.end(),
            compression.default_level()
        ),
        Some(range) => format!(
            "--level {level} is not a {compression} level: use {} to {} ({} is the default); nothing was written",
            range.start(),
            range.end(),
            compression.default_level()
        ),
        None => format!(
            "--compression {compression} takes no --level{}; leave --level out; nothing was written",
            if compression == Compression::None {
                " (segments are stored uncompressed)"
            } else {
                ""
            }
        ),
    }
}

impl Compression {
    /// The levels this codec takes; `None` for `lz4` and `none`, which take no level. zstd's
    /// negative levels are its fast levels (`zstd --fast=N`); its level 0 is not one (zstd
    /// reads it as "the default", which would hide what was asked for).
    pub(crate) fn levels(self) -> Option<std::ops::RangeInclusive<i32>> {
        match self {
            Compression::Zstd => Some(ZSTD_FASTEST_LEVEL..=22),
            Compression::Gzip => Some(0..=9),
            Compression::Lz4 | Compression::None => None,
        }
    }

    /// The level to compress with: `given` if this codec has it, else its default.
    pub fn level(self, given: Option<i32>) -> Result<i32, BadLevel> {
        match (given, self.levels()) {
            (None, _) => Ok(self.default_level()),
            (Some(level), Some(range))
                if range.contains(&level) && !(self == Compression::Zstd && level == 0) =>
            {
                Ok(level)
            }
            (Some(level), _) => Err(BadLevel {
                compression: self,
                level,
            }),
        }
    }

    /// The level used when the user gives none. zstd's is 1: on event data it costs about a
    /// fifth less CPU than level 3 for an archive about 2% larger (docs/FORMAT.md, the README's
    /// benchmark section).
    pub fn default_level(self) -> i32 {
        match self {
            Compression::Zstd => 1,
            Compression::Gzip => 6,
            Compression::Lz4 | Compression::None => 0,
        }
    }

    /// The object-key suffix for a segment compressed this way.
    pub(crate) fn file_extension(self) -> &'static str {
        match self {
            Compression::Zstd => "kseg.zst",
            Compression::Lz4 => "kseg.lz4",
            Compression::Gzip => "kseg.gz",
            Compression::None => "kseg",
        }
    }

    pub fn compress(self, level: i32, raw: &[u8]) -> Result<Vec<u8>, ArchiveError> {
        let fail = |source| ArchiveError::Compress {
            compression: self,
            source,
        };
        match self {
            Compression::Zstd => {
                with_zstd_compressor(level, |zstd| zstd.compress(raw)).map_err(fail)
            }
            Compression::Lz4 => {
                let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::with_capacity(
                    lz4_flex::block::get_maximum_output_size(raw.len()),
                ));
                encoder.write_all(raw).map_err(fail)?;
                encoder
                    .finish()
                    .map_err(|source| fail(std::io::Error::other(source)))
            }
            Compression::Gzip => {
                let level = flate2::Compression::new(level.clamp(0, 9) as u32);
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::with_capacity(raw.len() / 4), level);
                encoder.write_all(raw).map_err(fail)?;
                encoder.finish().map_err(fail)
            }
            Compression::None => Ok(raw.to_vec()),
        }
    }

    /// Decompresses `stored`, refusing output longer than `expected_len` (the manifest's
    /// `raw_bytes`): a corrupt or hostile object cannot make us allocate more than the
    /// manifest promised. (Readers decode with [`decompress_into`](Self::decompress_into).)
    #[cfg(test)]
    pub(crate) fn decompress(
        self,
        stored: &[u8],
        expected_len: u64,
    ) -> Result<Vec<u8>, ArchiveError> {
        self.decompress_into(stored, expected_len, Vec::new())
    }

    /// [`decompress`](Self::decompress) into `raw`'s memory (emptied first), growing it only
    /// when it is smaller than the output is allowed to be. Output past `expected_len` is an
    /// error here too, however large `raw` already was.
    pub(crate) fn decompress_into(
        self,
        stored: &[u8],
        expected_len: u64,
        mut raw: Vec<u8>,
    ) -> Result<Vec<u8>, ArchiveError> {
        let fail = |source| ArchiveError::Decompress {
            compression: self,
            source,
        };
        let capacity = initial_capacity(stored.len(), expected_len);
        raw.clear();
        raw.reserve(capacity);
        let limit = expected_len.saturating_add(1);
        match self {
            // The claim is plausible, so the buffer holds exactly the promised bytes:
            // decompress in one call straight into it (no zero fill, no staging copy).
            // More output than promised does not fit, and is an error.
            Compression::Zstd if capacity as u64 == expected_len => {
                zstd::bulk::Decompressor::new()
                    .and_then(|mut zstd| zstd.decompress_to_buffer(stored, &mut raw))
                    .map_err(|source| ArchiveError::CorruptSegment {
                        position: 0,
                        what: format!(
                            "does not decompress as zstd into the {expected_len} bytes the manifest says ({source})"
                        ),
                    })?;
            }
            Compression::Zstd => {
                let decoder = zstd::stream::read::Decoder::with_buffer(stored).map_err(fail)?;
                decoder.take(limit).read_to_end(&mut raw).map_err(fail)?;
            }
            Compression::Lz4 => {
                lz4_flex::frame::FrameDecoder::new(stored)
                    .take(limit)
                    .read_to_end(&mut raw)
                    .map_err(fail)?;
            }
            Compression::Gzip => {
                flate2::read::MultiGzDecoder::new(stored)
                    .take(limit)
                    .read_to_end(&mut raw)
                    .map_err(fail)?;
            }
            Compression::None => {
                let keep = usize::try_from(limit)
                    .unwrap_or(usize::MAX)
                    .min(stored.len());
                raw.extend_from_slice(&stored[..keep]);
            }
        }
        if raw.len() as u64 != expected_len {
            return Err(ArchiveError::CorruptSegment {
                position: raw.len().min(expected_len as usize),
                what: format!(
                    "decompressed to {} bytes{} but the manifest says {expected_len}",
                    raw.len(),
                    if raw.len() as u64 > expected_len {
                        " or more"
                    } else {
                        ""
                    }
                ),
            });
        }
        Ok(raw)
    }
}

/// zstd's fastest level kafkasnap takes (`zstd --fast=7`); faster ones barely compress.
const ZSTD_FASTEST_LEVEL: i32 = -7;

thread_local! {
    /// This thread's zstd compression context and its level. A fresh context allocates (and
    /// page-faults in) megabytes of match tables; segments are compressed on a few pool
    /// threads, so each keeps one.
    static ZSTD_COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

fn with_zstd_compressor<T>(
    level: i32,
    work: impl FnOnce(&mut zstd::bulk::Compressor<'static>) -> std::io::Result<T>,
) -> std::io::Result<T> {
    ZSTD_COMPRESSOR.with_borrow_mut(|cached| {
        if cached
            .as_ref()
            .is_none_or(|(cached_level, _)| *cached_level != level)
        {
            *cached = Some((level, zstd::bulk::Compressor::new(level)?));
        }
        let (_, compressor) = cached.as_mut().expect("set just above");
        work(compressor)
    })
}

/// Bytes to reserve before decompressing `stored_len` bytes that the manifest says inflate to
/// `expected_len`. The claim alone never sizes the buffer: segment data rarely inflates more
/// than 16 times, and beyond that the buffer grows only as decompressed bytes arrive.
fn initial_capacity(stored_len: usize, expected_len: u64) -> usize {
    const RATIO: usize = 16;
    const CEILING: usize = 256 << 20;
    let plausible = stored_len.saturating_mul(RATIO).min(CEILING);
    usize::try_from(expected_len)
        .unwrap_or(usize::MAX)
        .min(plausible)
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
            Compression::Gzip => "gzip",
            Compression::None => "none",
        })
    }
}

impl FromStr for Compression {
    type Err = ArchiveError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "zstd" => Ok(Compression::Zstd),
            "lz4" => Ok(Compression::Lz4),
            "gzip" => Ok(Compression::Gzip),
            "none" => Ok(Compression::None),
            other => Err(ArchiveError::UnknownCompression(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY_CODEC: [Compression; 4] = [
        Compression::Zstd,
        Compression::Lz4,
        Compression::Gzip,
        Compression::None,
    ];

    #[test]
    fn levels_outside_the_codecs_range_are_refused() {
        use Compression::{Gzip, None as Plain, Zstd};
        assert_eq!(Zstd.level(None), Ok(1));
        assert_eq!(Gzip.level(None), Ok(6));
        assert_eq!(Plain.level(None), Ok(0));
        for (codec, good) in [
            (Zstd, 1),
            (Zstd, 22),
            (Zstd, -1),
            (Zstd, -7),
            (Gzip, 0),
            (Gzip, 9),
        ] {
            assert_eq!(codec.level(Some(good)), Ok(good), "{codec} {good}");
        }
        for (codec, bad) in [
            (Zstd, 0),
            (Zstd, 23),
            (Zstd, 99),
            (Zstd, -8),
            (Compression::Lz4, 1),
            (Gzip, -1),
            (Gzip, 10),
            (Gzip, 15),
            (Plain, 0),
            (Plain, 5),
        ] {
            assert_eq!(
                codec.level(Some(bad)),
                Err(BadLevel {
                    compression: codec,
                    level: bad
                }),
                "{codec} {bad}"
            );
        }
        assert_eq!(
            Zstd.level(Some(99)).unwrap_err().to_string(),
            "--level 99 is not a zstd level: use -7 to -1 (zstd's fast levels) or 1 to 22 (1 is the default); nothing was written"
        );
        assert_eq!(
            Gzip.level(Some(15)).unwrap_err().to_string(),
            "--level 15 is not a gzip level: use 0 to 9 (6 is the default); nothing was written"
        );
        assert!(Plain
            .level(Some(5))
            .unwrap_err()
            .to_string()
            .starts_with("--compression none takes no --level"));
        assert!(Compression::Lz4
            .level(Some(1))
            .unwrap_err()
            .to_string()
            .starts_with("--compression lz4 takes no --level;"));
        // The ends of each range compress.
        for codec in [Zstd, Gzip] {
            let range = codec.levels().unwrap();
            for level in [*range.start(), *range.end()] {
                let stored = codec.compress(level, b"abcabcabc").unwrap();
                assert_eq!(codec.decompress(&stored, 9).unwrap(), b"abcabcabc");
            }
        }
    }

    #[test]
    fn every_codec_round_trips() {
        let raw: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for codec in EVERY_CODEC {
            let stored = codec.compress(codec.default_level(), &raw).unwrap();
            assert_eq!(
                codec.decompress(&stored, raw.len() as u64).unwrap(),
                raw,
                "{codec}"
            );
        }
    }

    #[test]
    fn output_longer_or_shorter_than_promised_is_corrupt() {
        let raw = vec![7u8; 10_000];
        for codec in EVERY_CODEC {
            let stored = codec.compress(codec.default_level(), &raw).unwrap();
            assert!(codec.decompress(&stored, 9_999).is_err(), "{codec} longer");
            assert!(
                codec.decompress(&stored, 10_001).is_err(),
                "{codec} shorter"
            );
        }
    }

    /// `len` barely compressible bytes (xorshift), the same every time.
    fn noise(len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    #[test]
    fn zstd_with_a_plausible_claim_decompresses_in_one_call_and_still_checks_the_length() {
        // Barely compressible, so the claim is within 16x and the one-call path is taken.
        let raw = noise(10_000);
        let stored = Compression::Zstd.compress(3, &raw).unwrap();
        assert_eq!(initial_capacity(stored.len(), 9_999), 9_999);
        let exact = Compression::Zstd.decompress(&stored, 10_000).unwrap();
        assert_eq!(exact, raw);
        let longer = Compression::Zstd.decompress(&stored, 9_999).unwrap_err();
        assert!(
            longer.to_string().contains("9999 bytes the manifest says"),
            "{longer}"
        );
        let shorter = Compression::Zstd.decompress(&stored, 10_001).unwrap_err();
        assert!(
            shorter.to_string().contains("decompressed to 10000 bytes"),
            "{shorter}"
        );
    }

    #[test]
    fn decompressing_into_a_larger_reused_buffer_still_refuses_more_than_promised() {
        // Compressible (streaming path) and barely compressible (zstd's one-call path).
        for raw in [vec![7u8; 10_000], noise(10_000)] {
            for codec in EVERY_CODEC {
                let stored = codec.compress(codec.default_level(), &raw).unwrap();
                let roomy = || vec![1u8; 1 << 20];
                assert!(
                    codec.decompress_into(&stored, 9_999, roomy()).is_err(),
                    "{codec} longer"
                );
                assert!(
                    codec.decompress_into(&stored, 10_001, roomy()).is_err(),
                    "{codec} shorter"
                );
                let reused = codec.decompress_into(&stored, 10_000, roomy()).unwrap();
                assert_eq!(reused, raw, "{codec}");
            }
        }
    }

    #[test]
    fn a_claimed_size_does_not_size_the_buffer() {
        assert_eq!(initial_capacity(10, 1 << 40), 160);
        assert_eq!(initial_capacity(1 << 30, 1 << 40), 256 << 20);
        assert_eq!(initial_capacity(1000, 50), 50);
        let err = Compression::None.decompress(b"tiny", u64::MAX).unwrap_err();
        assert!(err.to_string().contains("decompressed to 4 bytes"), "{err}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for codec in [Compression::Zstd, Compression::Lz4, Compression::Gzip] {
            assert!(
                codec.decompress(b"definitely not compressed", 100).is_err(),
                "{codec}"
            );
        }
    }
}
