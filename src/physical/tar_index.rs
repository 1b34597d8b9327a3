//! Reads the tar stream's headers as it passes (on its own thread, fed chunk by chunk):
//! the file list with sizes for the manifest, and `meta.properties` for the cluster and
//! node ids. File contents are skipped, never kept.

use std::io::{self, Read};

use super::tar_rewrite::META_PROPERTIES_LIMIT;
use crate::archive::DatadirFile;
use crate::datadir::TarGuard;

/// What the headers said.
#[derive(Debug, Default)]
pub(crate) struct TarIndex {
    pub(crate) files: Vec<DatadirFile>,
    pub(crate) cluster_id: Option<String>,
    pub(crate) node_id: Option<i32>,
    pub(crate) found_meta_properties: bool,
}

/// Indexes a whole tar stream. Stops at the end-of-archive marker; the caller must cope
/// with the reader being dropped early (the rest of the stream is padding). An extension
/// header over [`crate::datadir::TAR_EXTENSION_LIMIT`] is refused ([`TarGuard`]).
pub(crate) fn index_tar(reader: impl Read) -> io::Result<TarIndex> {
    let mut archive = tar::Archive::new(TarGuard::new(reader));
    let mut index = TarIndex::default();
    for entry in archive.entries()? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let raw = entry.path()?.to_string_lossy().into_owned();
        let path = raw.trim_start_matches("./").to_string();
        let size = entry.size();
        if path == "meta.properties" && size <= META_PROPERTIES_LIMIT {
            let mut text = String::new();
            (&mut entry)
                .take(META_PROPERTIES_LIMIT)
                .read_to_string(&mut text)?;
            read_meta_properties(&text, &mut index);
        }
        index.files.push(DatadirFile { path, bytes: size });
    }
    Ok(index)
}

/// `cluster.id` and `node.id` (KRaft) or `broker.id` (ZooKeeper mode).
fn read_meta_properties(text: &str, index: &mut TarIndex) {
    index.found_meta_properties = true;
    let mut properties = crate::datadir::parse_properties(text);
    index.cluster_id = properties.remove("cluster.id");
    index.node_id = properties
        .get("node.id")
        .or(properties.get("broker.id"))
        .and_then(|id| id.parse().ok());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::physical::chunk_reader::ChunkReader;
    use bytes::Bytes;

    #[test]
    fn an_oversized_tar_extension_header_fails_the_index() {
        let err = index_tar(&crate::datadir::oversized_pax_tar()[..]).unwrap_err();
        assert!(crate::datadir::TarLimitError::of(&err).is_some(), "{err}");
    }

    #[test]
    fn lists_files_and_reads_meta_properties_from_chunks() {
        let mut builder = tar::Builder::new(Vec::new());
        let meta =
            b"#\n#Thu Nov 25 14:54:43 UTC 2026\nnode.id=1\nversion=1\ncluster.id=abcDEF123\n";
        for (path, data) in [
            ("./meta.properties", &meta[..]),
            ("./t-0/00000000000000000000.log", &[7u8; 3000][..]),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, data).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let feeder = std::thread::spawn(move || {
            for chunk in tar.chunks(777) {
                if tx.send(Bytes::copy_from_slice(chunk)).is_err() {
                    break;
                }
            }
        });
        let index = index_tar(ChunkReader::new(rx)).unwrap();
        feeder.join().unwrap();
        assert_eq!(index.cluster_id.as_deref(), Some("abcDEF123"));
        assert_eq!(index.node_id, Some(1));
        assert_eq!(
            index.files,
            vec![
                DatadirFile {
                    path: "meta.properties".into(),
                    bytes: meta.len() as u64
                },
                DatadirFile {
                    path: "t-0/00000000000000000000.log".into(),
                    bytes: 3000
                }
            ]
        );
    }
}
