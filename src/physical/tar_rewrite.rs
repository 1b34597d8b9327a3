//! Rewrites the `cluster.id` line of every `meta.properties` in a tar stream as it passes
//! (`datadir restore --rewrite-cluster-id`). Such an entry is rebuilt with its new size and
//! header checksum; every other byte (other entries, their headers, extension headers, the
//! end-of-archive padding) passes through unchanged. A `Read` adapter: memory is one
//! `meta.properties` plus one tar block.

use std::io::{self, Read};

use tar::{EntryType, Header};

use crate::datadir::{entry_data_size, padded_to_blocks as padded, pax_size, TAR_EXTENSION_LIMIT};

/// `meta.properties` larger than this is not a Kafka one.
pub(crate) const META_PROPERTIES_LIMIT: u64 = 64 * 1024;
const BLOCK: usize = 512;
/// Where a GNU sparse extension block's `isextended` flag is (1: another block follows).
const SPARSE_ISEXTENDED: usize = 504;

/// A tar stream with every `meta.properties`'s `cluster.id` set to one value. Public for the
/// fuzz harness (`fuzz/`), which feeds it arbitrary bytes.
pub struct ClusterIdRewriter<R> {
    inner: R,
    cluster_id: String,
    /// Bytes queued for the reader, from `out[out_pos..]`.
    out: Vec<u8>,
    out_pos: usize,
    /// Entry data (with its padding) still to pass through from `inner`.
    copy_left: u64,
    /// After the end-of-archive block: the rest passes through as it is.
    ended: bool,
}

impl<R: Read> ClusterIdRewriter<R> {
    pub fn new(inner: R, cluster_id: &str) -> ClusterIdRewriter<R> {
        ClusterIdRewriter {
            inner,
            cluster_id: cluster_id.to_string(),
            out: Vec::new(),
            out_pos: 0,
            copy_left: 0,
            ended: false,
        }
    }

    /// Reads the next entry's header(s) and queues what to emit for them.
    fn next_entry(&mut self) -> io::Result<()> {
        self.out.clear();
        self.out_pos = 0;
        // What the extension headers before the entry say, taken as the `tar` crate takes
        // them (so the entries rewritten are the ones a restore's inspection reads as
        // `meta.properties`): a GNU long name first, else the first PAX `path`; a PAX `size`
        // overrides the entry header's.
        let mut long_name: Option<Vec<u8>> = None;
        let mut pax_path: Option<Vec<u8>> = None;
        let mut size_override: Option<u64> = None;
        loop {
            let mut block = [0u8; BLOCK];
            if !read_block(&mut self.inner, &mut block)? {
                if !self.out.is_empty() {
                    return Err(invalid("the tar stream ends inside an extension header"));
                }
                self.ended = true;
                return Ok(());
            }
            if block.iter().all(|&b| b == 0) {
                self.out.extend_from_slice(&block);
                self.ended = true;
                return Ok(());
            }
            let header = Header::from_byte_slice(&block);
            let size = header.entry_size()?;
            let kind = header.entry_type();
            let recognized = header.as_gnu().is_some() || header.as_ustar().is_some();
            if recognized
                && matches!(
                    kind,
                    EntryType::GNULongName | EntryType::GNULongLink | EntryType::XHeader
                )
            {
                if size > TAR_EXTENSION_LIMIT {
                    return Err(invalid("an extension header is larger than 1 MiB"));
                }
                let mut data = vec![0u8; padded(size) as usize];
                self.inner.read_exact(&mut data)?;
                let body = &data[..size as usize];
                match kind {
                    EntryType::GNULongName => {
                        let name = body.strip_suffix(&[0]).unwrap_or(body);
                        long_name = Some(name.to_vec());
                    }
                    EntryType::XHeader => {
                        pax_path = tar::PaxExtensions::new(body)
                            .filter_map(Result::ok)
                            .find(|extension| extension.key_bytes() == b"path")
                            .map(|extension| extension.value_bytes().to_vec());
                        size_override = pax_size(body);
                    }
                    _ => {}
                }
                self.out.extend_from_slice(&block);
                self.out.extend_from_slice(&data);
                continue;
            }
            let size = entry_data_size(kind, size, size_override);
            let path = long_name
                .or(pax_path)
                .unwrap_or_else(|| header.path_bytes().into_owned());
            if !(kind.is_file() && is_meta_properties(&path)) {
                self.out.extend_from_slice(&block);
                if kind == EntryType::GNUSparse && header.as_gnu().is_some_and(|g| g.is_extended())
                {
                    self.copy_sparse_map()?;
                }
                self.copy_left = padded(size);
                return Ok(());
            }
            if size_override.is_some() || size > META_PROPERTIES_LIMIT {
                return Err(invalid(
                    "a meta.properties entry is too large or sized by a PAX header; \
                     cannot rewrite its cluster.id",
                ));
            }
            let mut data = vec![0u8; padded(size) as usize];
            self.inner.read_exact(&mut data)?;
            let text = std::str::from_utf8(&data[..size as usize])
                .map_err(|_| invalid("a meta.properties entry is not UTF-8"))?;
            let rewritten = rewrite_cluster_id(text, &self.cluster_id);
            let mut header = header.clone();
            header.set_size(rewritten.len() as u64);
            header.set_cksum();
            self.out.extend_from_slice(header.as_bytes());
            self.out.extend_from_slice(rewritten.as_bytes());
            let padding = padded(rewritten.len() as u64) as usize - rewritten.len();
            self.out.resize(self.out.len() + padding, 0);
            return Ok(());
        }
    }

    /// Queues the extension blocks of a GNU sparse map, which come between the entry's
    /// header and its data.
    fn copy_sparse_map(&mut self) -> io::Result<()> {
        loop {
            let mut block = [0u8; BLOCK];
            if !read_block(&mut self.inner, &mut block)? {
                return Err(invalid("the tar stream ends inside a GNU sparse map"));
            }
            self.out.extend_from_slice(&block);
            if block[SPARSE_ISEXTENDED] != 1 {
                return Ok(());
            }
            if self.out.len() as u64 > TAR_EXTENSION_LIMIT {
                return Err(invalid("a GNU sparse map is larger than 1 MiB"));
            }
        }
    }
}

impl<R: Read> Read for ClusterIdRewriter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out_pos < self.out.len() {
                let n = buf.len().min(self.out.len() - self.out_pos);
                buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
                self.out_pos += n;
                return Ok(n);
            }
            if self.copy_left > 0 {
                let want = buf
                    .len()
                    .min(usize::try_from(self.copy_left).unwrap_or(usize::MAX));
                let n = self.inner.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                self.copy_left -= n as u64;
                return Ok(n);
            }
            if self.ended {
                return self.inner.read(buf);
            }
            self.next_entry()?;
            if self.ended && self.out_pos >= self.out.len() {
                return Ok(0);
            }
        }
    }
}

/// `text` with the value of every `cluster.id` line replaced; all other bytes kept.
pub(crate) fn rewrite_cluster_id(text: &str, cluster_id: &str) -> String {
    let mut out = String::with_capacity(text.len() + cluster_id.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let key = body.split_once(['=', ':']).map(|(k, _)| k.trim());
        if key == Some("cluster.id") {
            out.push_str("cluster.id=");
            out.push_str(cluster_id);
            out.push_str(&line[body.len()..]);
        } else {
            out.push_str(line);
        }
    }
    out
}

/// The `cluster.id` of a `meta.properties` text, if it has one.
pub(crate) fn cluster_id_of(text: &str) -> Option<String> {
    crate::datadir::parse_properties(text).remove("cluster.id")
}

pub(crate) fn is_meta_properties(path: &[u8]) -> bool {
    let trimmed = path.strip_suffix(b"/").unwrap_or(path);
    trimmed.rsplit(|&b| b == b'/').next() == Some(b"meta.properties")
}

/// Fills `block`; `false` on a clean end of input before its first byte.
fn read_block(reader: &mut impl Read, block: &mut [u8; BLOCK]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < BLOCK {
        match reader.read(&mut block[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(invalid("the tar stream ends inside a header block")),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(builder: &mut tar::Builder<Vec<u8>>, path: &str, bytes: &[u8]) {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_764_000_000);
        header.set_cksum();
        builder.append_data(&mut header, path, bytes).unwrap();
    }

    fn entries(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let path = entry.path().unwrap().to_string_lossy().into_owned();
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                (path, data)
            })
            .collect()
    }

    #[test]
    fn rewrites_every_meta_properties_and_nothing_else() {
        let meta = b"#\n#Thu Nov 25 14:54:43 UTC 2026\nnode.id=1\nversion=1\ncluster.id=OldId\n";
        let long = format!("./{}/00000000000000000000.log", "t".repeat(150));
        let mut builder = tar::Builder::new(Vec::new());
        append(
            &mut builder,
            "./orders-0/00000000000000000000.log",
            &[7u8; 3000],
        );
        append(&mut builder, "./meta.properties", meta);
        append(&mut builder, &long, &[9u8; 700]);
        append(
            &mut builder,
            "./prefix/meta.properties",
            b"cluster.id = OldId\r\n",
        );
        let tar = builder.into_inner().unwrap();

        let mut out = Vec::new();
        ClusterIdRewriter::new(&tar[..], "NewClusterId0123456789")
            .read_to_end(&mut out)
            .unwrap();
        let (before, after) = (entries(&tar), entries(&out));
        assert_eq!(before.len(), after.len());
        for ((path, old), (new_path, new)) in before.iter().zip(&after) {
            assert_eq!(path, new_path);
            if path.ends_with("meta.properties") {
                let text = String::from_utf8(new.clone()).unwrap();
                assert_eq!(
                    cluster_id_of(&text).as_deref(),
                    Some("NewClusterId0123456789")
                );
                assert!(!text.contains("OldId"), "{text}");
            } else {
                assert_eq!(old, new, "{path} changed");
            }
        }
        assert!(String::from_utf8_lossy(&after[1].1).starts_with("#\n#Thu Nov 25"));
        assert!(after[3].1.ends_with(b"\r\n"));
        // Bytes before the first meta.properties pass through unchanged (header and data).
        let first = 512 + 3072;
        assert_eq!(out[..first], tar[..first]);
    }

    #[test]
    fn a_stream_without_meta_properties_passes_byte_for_byte() {
        let mut builder = tar::Builder::new(Vec::new());
        append(&mut builder, "./a-0/00000000000000000000.log", &[1u8; 1025]);
        let tar = builder.into_inner().unwrap();
        let mut out = Vec::new();
        ClusterIdRewriter::new(&tar[..], "X")
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, tar);
    }

    /// A tar of `before` (raw entry bytes) then `./meta.properties` holding `cluster.id=OldId`.
    fn meta_after(before: &[u8]) -> Vec<u8> {
        let mut builder = tar::Builder::new(before.to_vec());
        append(&mut builder, "./meta.properties", b"cluster.id=OldId\n");
        builder.into_inner().unwrap()
    }

    /// The `meta.properties` texts of `tar`, rewritten to `NewId`.
    fn rewritten_meta(tar: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        ClusterIdRewriter::new(tar, "NewId")
            .read_to_end(&mut out)
            .unwrap();
        entries(&out)
            .into_iter()
            .filter(|(path, _)| path.ends_with("meta.properties"))
            .map(|(_, data)| String::from_utf8(data).unwrap())
            .collect()
    }

    #[test]
    fn an_entry_sized_by_a_pax_header_is_passed_over_by_that_size() {
        // PAX `size` 1100 overrides the entry header's 0; its data holds a block that looks
        // like a meta.properties header, which must pass as data.
        let decoy = meta_after(&[]);
        let mut tar = Vec::new();
        let record = b"13 size=1100\n";
        let mut pax = tar::Header::new_ustar();
        pax.set_path("./PaxHeaders/big.log").unwrap();
        pax.set_entry_type(EntryType::XHeader);
        pax.set_size(record.len() as u64);
        pax.set_cksum();
        tar.extend_from_slice(pax.as_bytes());
        tar.extend_from_slice(record);
        tar.resize(1024, 0);
        let mut header = tar::Header::new_ustar();
        header.set_path("./big.log").unwrap();
        header.set_size(0);
        header.set_mode(0o644);
        header.set_cksum();
        tar.extend_from_slice(header.as_bytes());
        let mut data = decoy[..1024].to_vec();
        data.resize(1100, 7);
        tar.extend_from_slice(&data);
        tar.resize(padded(tar.len() as u64) as usize, 0);
        let tar = meta_after(&tar);
        let mut out = Vec::new();
        ClusterIdRewriter::new(&tar[..], "NewId")
            .read_to_end(&mut out)
            .unwrap();
        let found = entries(&out);
        assert_eq!(found[0], ("big.log".to_string(), data));
        assert_eq!(found[1].1, b"cluster.id=NewId\n");
    }

    #[test]
    fn a_gnu_sparse_map_is_passed_over_to_the_entry_after_it() {
        let mut header = tar::Header::new_gnu();
        header.set_path("./sparse.log").unwrap();
        header.set_entry_type(EntryType::GNUSparse);
        header.set_size(512);
        header.set_mode(0o644);
        {
            let gnu = header.as_gnu_mut().unwrap();
            gnu.sparse[0].set_offset(0);
            gnu.sparse[0].set_length(512);
            gnu.set_real_size(512);
            gnu.set_is_extended(true);
        }
        header.set_cksum();
        let mut tar = header.as_bytes().to_vec();
        // One extension block, the last (empty: the header's own map says it all).
        tar.extend_from_slice(&[0u8; BLOCK]);
        tar.extend_from_slice(&[3u8; 512]);
        assert_eq!(
            rewritten_meta(&meta_after(&tar)),
            vec!["cluster.id=NewId\n"]
        );
    }

    #[test]
    fn a_gnu_long_name_wins_over_a_pax_path_as_the_tar_crate_reads_them() {
        // The GNU long name says it is a log, a later PAX path says meta.properties: the tar
        // crate takes the long name, so it is not rewritten.
        let mut tar = Vec::new();
        let long = format!("./{}/00000000000000000000.log\0", "t".repeat(120));
        let mut name = tar::Header::new_gnu();
        name.set_path("././@LongLink").unwrap();
        name.set_entry_type(EntryType::GNULongName);
        name.set_size(long.len() as u64);
        name.set_cksum();
        tar.extend_from_slice(name.as_bytes());
        tar.extend_from_slice(long.as_bytes());
        tar.resize(padded(tar.len() as u64) as usize, 0);
        let record = b"28 path=./x/meta.properties\n";
        let mut pax = tar::Header::new_ustar();
        pax.set_path("./PaxHeaders/x").unwrap();
        pax.set_entry_type(EntryType::XHeader);
        pax.set_size(record.len() as u64);
        pax.set_cksum();
        tar.extend_from_slice(pax.as_bytes());
        tar.extend_from_slice(record);
        tar.resize(padded(tar.len() as u64) as usize, 0);
        let mut header = tar::Header::new_gnu();
        header.set_path("./short").unwrap();
        header.set_size(16);
        header.set_mode(0o644);
        header.set_cksum();
        tar.extend_from_slice(header.as_bytes());
        tar.extend_from_slice(b"cluster.id=OldId");
        tar.resize(padded(tar.len() as u64) as usize, 0);
        tar.extend_from_slice(&[0u8; 1024]);
        let mut out = Vec::new();
        ClusterIdRewriter::new(&tar[..], "NewId")
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, tar);
    }

    #[test]
    fn an_entry_sized_near_2_pow_64_holds_the_rest_of_the_stream() {
        // A base-256 size of 2^64 - 11 (found by the fuzzer: the padding overflowed): what
        // follows is that entry's data, so the meta.properties in it is not rewritten and the
        // stream is cut short.
        let mut header = tar::Header::new_gnu();
        header.set_path("./huge.log").unwrap();
        header.set_mode(0o644);
        header.set_size(u64::MAX - 10);
        header.set_cksum();
        let tar = meta_after(header.as_bytes());
        let err = ClusterIdRewriter::new(&tar[..], "NewId")
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    }

    #[test]
    fn only_the_cluster_id_line_changes() {
        let text = "# cluster.id=in a comment stays\nnode.id=1\ncluster.id=abc\nversion=1";
        assert_eq!(
            rewrite_cluster_id(text, "xyz"),
            "# cluster.id=in a comment stays\nnode.id=1\ncluster.id=xyz\nversion=1"
        );
    }
}
