//! A tar stream checked as it passes, below the `tar` crate: the entry framing is followed
//! block by block so that an extension the crate would read whole into memory (a GNU long
//! name or link, a PAX record set, a GNU sparse map) is refused above [`TAR_EXTENSION_LIMIT`]
//! before the crate sees its header, and, given the size a manifest recorded, a stream that
//! grows past it or ends short of it is refused. Every byte passes unchanged.

use std::io::{self, Read};

use tar::{EntryType, Header};

/// Largest GNU long name or link, PAX extension record set or GNU sparse map accepted in a
/// data-dir tar. Paths are at most 4 KiB on Linux and PAX records hold a few of them.
pub(crate) const TAR_EXTENSION_LIMIT: u64 = 1024 * 1024;
const BLOCK: usize = 512;
/// Where a GNU sparse extension block's `isextended` flag is (1: another block follows).
const EXT_ISEXTENDED: usize = 504;

/// Why a tar stream was refused before it was read any further.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum TarLimitError {
    #[error(
        "the tar header at byte {at} announces a {kind} of {size} bytes, more than the \
         {TAR_EXTENSION_LIMIT} bytes allowed: the archive is damaged or was not written by tar \
         from a Kafka data directory"
    )]
    ExtensionTooLarge {
        at: u64,
        kind: &'static str,
        size: u64,
    },
    #[error(
        "the tar stream is longer than the {expected} bytes its manifest records \
         (archive.tar_bytes): the archive and its manifest do not belong together or one of them \
         was altered; run `kafkasnap datadir verify` on it and restore another backup (--backup)"
    )]
    LongerThanRecorded { expected: u64 },
    #[error(
        "the tar stream ends after {actual} bytes, its manifest records {expected} \
         (archive.tar_bytes): the archive and its manifest do not belong together or one of them \
         was altered; run `kafkasnap datadir verify` on it and restore another backup (--backup)"
    )]
    ShorterThanRecorded { actual: u64, expected: u64 },
}

impl TarLimitError {
    /// The refusal inside an I/O error (what `Read` can return), if `err` is one.
    pub(crate) fn of(err: &io::Error) -> Option<&TarLimitError> {
        err.get_ref()?.downcast_ref()
    }
}

impl From<TarLimitError> for io::Error {
    fn from(err: TarLimitError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, err)
    }
}

/// Where in the framing the next byte falls.
enum Framing {
    /// Collecting a header block (`filled` bytes so far).
    Header {
        block: Box<[u8; BLOCK]>,
        filled: usize,
    },
    /// Passing over `left` bytes of entry data (or of an extension not kept), padding included.
    Skip { left: u64 },
    /// Collecting a PAX extension's records (`size` bytes, `left` of them and the padding to go).
    Pax {
        data: Vec<u8>,
        size: usize,
        left: u64,
    },
    /// Collecting a GNU sparse extension block; the entry's data (`data`, padded) follows
    /// the last one. `seen` counts the map's bytes so far.
    SparseMap {
        block: Box<[u8; BLOCK]>,
        filled: usize,
        data: u64,
        seen: u64,
    },
    /// After the end-of-archive block, or a header the `tar` crate will refuse itself: the
    /// rest passes as it is.
    Done,
}

/// A tar stream with its framing followed (see the module docs).
pub(crate) struct TarGuard<R> {
    inner: R,
    passed: u64,
    expected: Option<u64>,
    framing: Framing,
    /// The `size` of the last PAX extension, which the next entry's header gives way to.
    pax_size: Option<u64>,
    /// A refusal already returned: returned again on every later read.
    refused: Option<TarLimitError>,
}

impl<R: Read> TarGuard<R> {
    /// Extension sizes only.
    pub(crate) fn new(inner: R) -> TarGuard<R> {
        TarGuard {
            inner,
            passed: 0,
            expected: None,
            framing: next_header(),
            pax_size: None,
            refused: None,
        }
    }

    /// Also refuses a stream that is not exactly `bytes` long (a manifest's `tar_bytes`).
    pub(crate) fn expecting(inner: R, bytes: u64) -> TarGuard<R> {
        TarGuard {
            expected: Some(bytes),
            ..TarGuard::new(inner)
        }
    }

    /// Follows the framing over `bytes`, which start at stream byte `at`.
    fn follow(&mut self, mut bytes: &[u8], mut at: u64) -> Result<(), TarLimitError> {
        while !bytes.is_empty() {
            let taken = match &mut self.framing {
                Framing::Done => return Ok(()),
                Framing::Header { block, filled } | Framing::SparseMap { block, filled, .. } => {
                    let n = (BLOCK - *filled).min(bytes.len());
                    block[*filled..*filled + n].copy_from_slice(&bytes[..n]);
                    *filled += n;
                    n
                }
                Framing::Skip { left } => {
                    let n = usize::try_from(*left).map_or(bytes.len(), |l| l.min(bytes.len()));
                    *left -= n as u64;
                    n
                }
                Framing::Pax { data, size, left } => {
                    let n = usize::try_from(*left).map_or(bytes.len(), |l| l.min(bytes.len()));
                    let keep = size.saturating_sub(data.len()).min(n);
                    data.extend_from_slice(&bytes[..keep]);
                    *left -= n as u64;
                    n
                }
            };
            bytes = &bytes[taken..];
            at += taken as u64;
            self.step(at)?;
        }
        Ok(())
    }

    /// Moves on when the current part is complete; `at` is the stream byte after it.
    fn step(&mut self, at: u64) -> Result<(), TarLimitError> {
        self.framing = match std::mem::replace(&mut self.framing, Framing::Done) {
            Framing::Header { block, filled } if filled == BLOCK => {
                self.on_header(&block, at - BLOCK as u64)?
            }
            Framing::Skip { left: 0 } => next_header(),
            Framing::Pax { data, left: 0, .. } => {
                self.pax_size = pax_size(&data);
                next_header()
            }
            Framing::SparseMap {
                block,
                filled,
                data,
                seen,
            } if filled == BLOCK => {
                let seen = seen + BLOCK as u64;
                if block[EXT_ISEXTENDED] != 1 {
                    skip(data)
                } else if seen >= TAR_EXTENSION_LIMIT {
                    return Err(TarLimitError::ExtensionTooLarge {
                        at: at - BLOCK as u64,
                        kind: "GNU sparse map",
                        size: seen + BLOCK as u64,
                    });
                } else {
                    sparse_map(data, seen)
                }
            }
            unfinished => unfinished,
        };
        Ok(())
    }

    /// What follows the header `block` at stream byte `at`, as the `tar` crate reads it.
    fn on_header(&mut self, block: &[u8; BLOCK], at: u64) -> Result<Framing, TarLimitError> {
        if block.iter().all(|&b| b == 0) {
            return Ok(Framing::Done);
        }
        let header = Header::from_byte_slice(block);
        let (Some(size), true) = (header.entry_size().ok(), checksum_holds(header)) else {
            return Ok(Framing::Done);
        };
        let kind = header.entry_type();
        let recognized = header.as_gnu().is_some() || header.as_ustar().is_some();
        let read_whole = match kind {
            EntryType::GNULongName if recognized => Some("GNU long name"),
            EntryType::GNULongLink if recognized => Some("GNU long link"),
            EntryType::XHeader if recognized => Some("PAX extension header"),
            _ => None,
        };
        if let Some(what) = read_whole {
            if size > TAR_EXTENSION_LIMIT {
                return Err(TarLimitError::ExtensionTooLarge {
                    at,
                    kind: what,
                    size,
                });
            }
            return Ok(match kind {
                EntryType::XHeader if size == 0 => {
                    self.pax_size = None;
                    next_header()
                }
                EntryType::XHeader => Framing::Pax {
                    data: Vec::with_capacity(size as usize),
                    size: size as usize,
                    left: padded(size),
                },
                _ => skip(padded(size)),
            });
        }
        let size = entry_data_size(kind, size, self.pax_size.take());
        let data = padded(size);
        let extended = header.as_gnu().is_some_and(|gnu| gnu.is_extended());
        Ok(match kind {
            EntryType::GNUSparse if extended => sparse_map(data, 0),
            _ => skip(data),
        })
    }
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(err) = &self.refused {
            return Err(err.clone().into());
        }
        let n = self.inner.read(buf)?;
        let at = self.passed;
        self.passed += n as u64;
        let refusal = match self.expected {
            Some(expected) if n == 0 && at < expected => Some(TarLimitError::ShorterThanRecorded {
                actual: at,
                expected,
            }),
            Some(expected) if self.passed > expected => {
                Some(TarLimitError::LongerThanRecorded { expected })
            }
            _ => self.follow(&buf[..n], at).err(),
        };
        match refusal {
            Some(err) => {
                self.refused = Some(err.clone());
                Err(err.into())
            }
            None => Ok(n),
        }
    }
}

fn next_header() -> Framing {
    Framing::Header {
        block: Box::new([0; BLOCK]),
        filled: 0,
    }
}

fn skip(left: u64) -> Framing {
    match left {
        0 => next_header(),
        left => Framing::Skip { left },
    }
}

fn sparse_map(data: u64, seen: u64) -> Framing {
    Framing::SparseMap {
        block: Box::new([0; BLOCK]),
        filled: 0,
        data,
        seen,
    }
}

/// `size` rounded up to whole blocks; a size near `u64::MAX` (base-256 sizes reach it) stays
/// near it instead of wrapping to a small one.
pub(crate) fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK as u64).saturating_mul(BLOCK as u64)
}

/// The data size of an entry of `kind` whose header says `header_size`, as the `tar` crate
/// reads it: a pending PAX `size` applies to the next real entry, not to extension headers.
pub(crate) fn entry_data_size(kind: EntryType, header_size: u64, pax_size: Option<u64>) -> u64 {
    let is_extension = matches!(
        kind,
        EntryType::GNULongName
            | EntryType::GNULongLink
            | EntryType::XHeader
            | EntryType::XGlobalHeader
    );
    match is_extension {
        true => header_size,
        false => pax_size.unwrap_or(header_size),
    }
}

/// The header checksum, as the `tar` crate checks it.
fn checksum_holds(header: &Header) -> bool {
    let bytes = header.as_bytes();
    let sum = bytes[..148]
        .iter()
        .chain(&bytes[156..])
        .fold(0u32, |a, b| a + u32::from(*b))
        + 8 * 32;
    header.cksum().is_ok_and(|cksum| cksum == sum)
}

/// The `size` record of a PAX extension, as the `tar` crate reads it (the first malformed
/// record ends the search).
pub(crate) fn pax_size(records: &[u8]) -> Option<u64> {
    for record in tar::PaxExtensions::new(records) {
        let record = record.ok()?;
        if record.key() == Ok("size") {
            return record.value().ok()?.parse().ok();
        }
    }
    None
}

/// Builds hostile tars for tests (here and in the other tar readers).
#[cfg(test)]
pub(crate) mod build {
    use super::*;

    /// A tar whose first entry, `./meta.properties`, has 2 MiB of PAX records before it (all
    /// present: a reader without the guard takes them whole).
    pub(crate) fn oversized_pax() -> Vec<u8> {
        let rest = format!(" comment={}\n", "c".repeat(2 << 20));
        let record = format!("{}{rest}", rest.len() + 7);
        let mut header = Header::new_ustar();
        header.set_path("./PaxHeaders/meta.properties").unwrap();
        header.set_entry_type(EntryType::XHeader);
        header.set_size(record.len() as u64);
        header.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&header, record.as_bytes()).unwrap();
        let mut header = Header::new_gnu();
        header.set_size(13);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, "./meta.properties", &b"cluster.id=x\n"[..])
            .unwrap();
        builder.into_inner().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(builder: &mut tar::Builder<Vec<u8>>, path: &str, bytes: &[u8]) {
        let mut header = Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, bytes).unwrap();
    }

    /// An extension entry of `kind` holding `body`, as GNU tar writes one.
    fn extension(out: &mut Vec<u8>, kind: EntryType, body: &[u8]) {
        let mut header = Header::new_ustar();
        header.set_path("././@PaxHeader").unwrap();
        header.set_entry_type(kind);
        header.set_size(body.len() as u64);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(body);
        out.resize(padded(out.len() as u64) as usize, 0);
    }

    fn pax_record(key: &str, value: &str) -> Vec<u8> {
        let rest = format!(" {key}={value}\n");
        let mut len = rest.len() + 1;
        while format!("{len}{rest}").len() != len {
            len += 1;
        }
        format!("{len}{rest}").into_bytes()
    }

    /// Every entry the `tar` crate reads through a guard, or the guard's refusal.
    fn read(tar: &[u8], expected: Option<u64>) -> Result<Vec<(String, u64)>, io::Error> {
        let guard = match expected {
            Some(bytes) => TarGuard::expecting(tar, bytes),
            None => TarGuard::new(tar),
        };
        let mut archive = tar::Archive::new(guard);
        let mut found = Vec::new();
        for entry in archive.entries()? {
            let mut entry = entry?;
            let path = entry.path()?.display().to_string();
            found.push((path, io::copy(&mut entry, &mut io::sink())?));
        }
        io::copy(&mut archive.into_inner(), &mut io::sink())?;
        Ok(found)
    }

    fn refusal(result: Result<Vec<(String, u64)>, io::Error>) -> TarLimitError {
        let err = result.expect_err("the stream is refused");
        TarLimitError::of(&err)
            .unwrap_or_else(|| panic!("not a limit: {err}"))
            .clone()
    }

    #[test]
    fn a_data_dir_tar_passes_byte_for_byte() {
        let mut builder = tar::Builder::new(Vec::new());
        append(&mut builder, "./meta.properties", b"cluster.id=x\n");
        let long = format!("./{}-0/00000000000000000000.log", "t".repeat(200));
        append(&mut builder, &long, &[5u8; 1300]);
        append(&mut builder, "./empty", b"");
        let tar = builder.into_inner().unwrap();
        let mut out = Vec::new();
        TarGuard::expecting(&tar[..], tar.len() as u64)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, tar);
        let found = read(&tar, Some(tar.len() as u64)).unwrap();
        assert_eq!(found.len(), 3);
        assert_eq!(found[1], (long.clone(), 1300));
    }

    #[test]
    fn an_oversized_long_name_or_pax_header_is_refused_before_it_is_read() {
        // 2 MiB of PAX records, all present: without the guard the tar crate reads them whole.
        let tar = build::oversized_pax();
        assert!(tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .next()
            .unwrap()
            .is_ok());
        match refusal(read(&tar, None)) {
            TarLimitError::ExtensionTooLarge { at: 0, kind, size } => {
                assert_eq!(kind, "PAX extension header");
                assert_eq!(size, (2 << 20) + 17);
            }
            other => panic!("{other}"),
        }
        // A GNU long name claiming 8 GiB with a few bytes behind it.
        let mut tar = Vec::new();
        let mut header = Header::new_gnu();
        header.set_path("././@LongLink").unwrap();
        header.set_entry_type(EntryType::GNULongName);
        header.set_size(8 << 30);
        header.set_cksum();
        tar.extend_from_slice(header.as_bytes());
        tar.extend_from_slice(&[b'x'; 512]);
        let err = refusal(read(&tar, None));
        assert!(
            err.to_string()
                .contains("GNU long name of 8589934592 bytes"),
            "{err}"
        );
    }

    #[test]
    fn the_framing_follows_a_pax_size_to_the_next_header() {
        // An entry whose PAX size (3000) overrides its header's (0), then an oversized long
        // name: the guard must find that header where the tar crate does.
        let mut tar = Vec::new();
        extension(&mut tar, EntryType::XHeader, &pax_record("size", "3000"));
        let mut header = Header::new_ustar();
        header.set_path("big.log").unwrap();
        header.set_size(0);
        header.set_cksum();
        tar.extend_from_slice(header.as_bytes());
        tar.extend_from_slice(&[7u8; 3072]);
        let at = tar.len() as u64;
        let mut header = Header::new_gnu();
        header.set_path("././@LongLink").unwrap();
        header.set_entry_type(EntryType::GNULongName);
        header.set_size(TAR_EXTENSION_LIMIT + 1);
        header.set_cksum();
        tar.extend_from_slice(header.as_bytes());
        tar.resize(tar.len() + 4096, b'n');
        assert!(matches!(
            refusal(read(&tar, None)),
            TarLimitError::ExtensionTooLarge { at: found, .. } if found == at
        ));
    }

    #[test]
    fn a_sparse_map_longer_than_the_limit_is_refused() {
        let mut header = Header::new_gnu();
        header.set_path("sparse").unwrap();
        header.set_entry_type(EntryType::GNUSparse);
        header.set_size(0);
        header.as_gnu_mut().unwrap().isextended[0] = 1;
        header.set_cksum();
        let mut tar = header.as_bytes().to_vec();
        let mut block = [0u8; BLOCK];
        block[EXT_ISEXTENDED] = 1;
        for _ in 0..(TAR_EXTENSION_LIMIT as usize / BLOCK + 1) {
            tar.extend_from_slice(&block);
        }
        let err = refusal(read(&tar, None));
        assert!(err.to_string().contains("GNU sparse map"), "{err}");
    }

    #[test]
    fn a_stream_longer_or_shorter_than_its_manifest_says_is_refused() {
        let mut builder = tar::Builder::new(Vec::new());
        append(&mut builder, "./meta.properties", b"cluster.id=x\n");
        let tar = builder.into_inner().unwrap();
        let len = tar.len() as u64;
        assert!(matches!(
            refusal(read(&tar, Some(len - 1))),
            TarLimitError::LongerThanRecorded { expected } if expected == len - 1
        ));
        assert!(matches!(
            refusal(read(&tar, Some(len + 512))),
            TarLimitError::ShorterThanRecorded { actual, expected } if actual == len && expected == len + 512
        ));
        assert!(read(&tar, Some(len)).is_ok());
    }
}
