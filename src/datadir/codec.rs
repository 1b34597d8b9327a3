//! The compression codecs a RecordBatch can name in its attributes: none, gzip, snappy (raw
//! and xerial-framed), lz4 (frame format) and zstd, as streaming decoders over the batch body.

use std::fmt;
use std::io::{self, BufReader, Read};

/// A batch's compression codec (attributes bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    /// The codec named by a batch's attributes; `Err(id)` for an id Kafka does not define.
    pub(crate) fn from_attributes(attributes: i16) -> Result<Codec, u8> {
        match attributes & 0x07 {
            0 => Ok(Codec::None),
            1 => Ok(Codec::Gzip),
            2 => Ok(Codec::Snappy),
            3 => Ok(Codec::Lz4),
            4 => Ok(Codec::Zstd),
            other => Err(other as u8),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The header Java's snappy-java (xerial) puts before its blocks.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;

/// A stream of the uncompressed bytes of `data` (a batch's records section).
pub(crate) fn decoder<'a>(codec: Codec, data: &'a [u8]) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match codec {
        Codec::None => Box::new(data),
        Codec::Gzip => Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(data))),
        Codec::Snappy => {
            if data.len() >= XERIAL_HEADER_LEN && data.starts_with(XERIAL_MAGIC) {
                Box::new(XerialReader {
                    data: &data[XERIAL_HEADER_LEN..],
                    block: io::Cursor::new(Vec::new()),
                })
            } else {
                Box::new(io::Cursor::new(snappy_raw(data)?))
            }
        }
        Codec::Lz4 => Box::new(BufReader::new(lz4_flex::frame::FrameDecoder::new(data))),
        Codec::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(data)?),
    })
}

/// One raw snappy block. Snappy cannot expand a byte more than about 21.3 times (a 3-byte copy
/// op yields at most 64 bytes), so a preamble claiming more is corrupt, and is refused before
/// anything is allocated for it.
fn snappy_raw(block: &[u8]) -> io::Result<Vec<u8>> {
    let claimed = snap::raw::decompress_len(block).map_err(invalid)?;
    let possible = block.len().saturating_mul(22).saturating_add(64);
    if claimed > possible {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "snappy block of {} bytes claims {claimed} uncompressed bytes, more than snappy can encode",
                block.len()
            ),
        ));
    }
    snap::raw::Decoder::new()
        .decompress_vec(block)
        .map_err(invalid)
}

fn invalid(err: snap::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

/// xerial framing: after the 16-byte header, blocks of (int32 length, raw snappy block).
struct XerialReader<'a> {
    data: &'a [u8],
    block: io::Cursor<Vec<u8>>,
}

impl Read for XerialReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.block.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            if self.data.is_empty() {
                return Ok(0);
            }
            if self.data.len() < 4 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "xerial snappy block length cut short",
                ));
            }
            let len = u32::from_be_bytes([self.data[0], self.data[1], self.data[2], self.data[3]])
                as usize;
            let rest = &self.data[4..];
            if len > rest.len() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "xerial snappy block claims {len} bytes, {} are present",
                        rest.len()
                    ),
                ));
            }
            self.block = io::Cursor::new(snappy_raw(&rest[..len])?);
            self.data = &rest[len..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const TEXT: &[u8] = b"kafkasnap kafkasnap kafkasnap: the same words, again and again and again";

    fn decode(codec: Codec, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        decoder(codec, data).unwrap().read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn attributes_name_the_codec() {
        assert_eq!(Codec::from_attributes(0x0010), Ok(Codec::None));
        assert_eq!(Codec::from_attributes(0x0021), Ok(Codec::Gzip));
        assert_eq!(Codec::from_attributes(2), Ok(Codec::Snappy));
        assert_eq!(Codec::from_attributes(3), Ok(Codec::Lz4));
        assert_eq!(Codec::from_attributes(4), Ok(Codec::Zstd));
        assert_eq!(Codec::from_attributes(5), Err(5));
    }

    #[test]
    fn none_passes_through() {
        assert_eq!(decode(Codec::None, TEXT), TEXT);
    }

    #[test]
    fn gzip_decodes() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(TEXT).unwrap();
        assert_eq!(decode(Codec::Gzip, &enc.finish().unwrap()), TEXT);
    }

    #[test]
    fn snappy_raw_decodes() {
        let block = snap::raw::Encoder::new().compress_vec(TEXT).unwrap();
        assert_eq!(decode(Codec::Snappy, &block), TEXT);
    }

    #[test]
    fn snappy_xerial_decodes_across_blocks() {
        let mut framed = XERIAL_MAGIC.to_vec();
        framed.extend_from_slice(&1i32.to_be_bytes());
        framed.extend_from_slice(&1i32.to_be_bytes());
        for half in [&TEXT[..30], &TEXT[30..]] {
            let block = snap::raw::Encoder::new().compress_vec(half).unwrap();
            framed.extend_from_slice(&(block.len() as u32).to_be_bytes());
            framed.extend_from_slice(&block);
        }
        assert_eq!(decode(Codec::Snappy, &framed), TEXT);
    }

    #[test]
    fn snappy_refuses_impossible_lengths_before_allocating() {
        // Preamble claims 2^31 bytes; 3 bytes follow.
        let block = [0x80, 0x80, 0x80, 0x80, 0x08, 0, 1, 2];
        let err = decoder(Codec::Snappy, &block).err().unwrap();
        assert!(
            err.to_string().contains("more than snappy can encode"),
            "{err}"
        );
    }

    #[test]
    fn lz4_frame_decodes() {
        let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
        enc.write_all(TEXT).unwrap();
        assert_eq!(decode(Codec::Lz4, &enc.finish().unwrap()), TEXT);
    }

    #[test]
    fn zstd_decodes() {
        let data = zstd::bulk::compress(TEXT, 3).unwrap();
        assert_eq!(decode(Codec::Zstd, &data), TEXT);
    }

    #[test]
    fn damaged_gzip_is_an_error() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(TEXT).unwrap();
        let mut data = enc.finish().unwrap();
        data.truncate(data.len() / 2);
        let mut out = Vec::new();
        assert!(decoder(Codec::Gzip, &data)
            .unwrap()
            .read_to_end(&mut out)
            .is_err());
    }
}
