//! Unpacks a tar archive of a data directory (plain, gzip or zstd; a `datadir backup` archive or
//! an old `tar czf` of `/var/lib/kafka/data`) into a scratch directory for
//! `restore --from-datadir`, refusing any entry that could write outside it, and finds the data
//! directory inside (archives may hold it under any path prefix). [`hostile_entry`] is the rule
//! `datadir restore` applies too.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use super::inspect::parse_partition_dir;
use super::tar_guard::TarGuard;
use super::walk::{is_gzip, is_tar, is_zstd};
use super::DatadirError;

/// Unpacks `archive` below `into` and returns the data directory found inside.
pub fn extract_archive(archive: &Path, into: &Path) -> Result<PathBuf, DatadirError> {
    let io_err = |source| DatadirError::Io {
        path: archive.to_path_buf(),
        source,
    };
    let mut reader = BufReader::with_capacity(1 << 20, File::open(archive).map_err(io_err)?);
    let head = reader.fill_buf().map_err(io_err)?;
    if is_gzip(head) {
        unpack(flate2::bufread::MultiGzDecoder::new(reader), into)?;
    } else if is_zstd(head) {
        unpack(
            zstd::stream::read::Decoder::with_buffer(reader).map_err(io_err)?,
            into,
        )?;
    } else if is_tar(head) {
        unpack(reader, into)?;
    } else {
        return Err(DatadirError::NotADataDir {
            path: archive.to_path_buf(),
        });
    }
    find_data_dir(into).ok_or_else(|| DatadirError::NoKafkaFiles {
        source_name: archive.display().to_string(),
    })
}

fn unpack(reader: impl Read, into: &Path) -> Result<(), DatadirError> {
    let tar_err = |entry: &str, source| DatadirError::Tar {
        entry: entry.to_string(),
        source,
    };
    let refuse = |entry: &str, why: &str| {
        tar_err(
            entry,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{why}; refusing to unpack this archive"),
            ),
        )
    };
    std::fs::create_dir_all(into).map_err(|source| DatadirError::Io {
        path: into.to_path_buf(),
        source,
    })?;
    let mut archive = tar::Archive::new(TarGuard::new(reader));
    for entry in archive.entries().map_err(|e| tar_err("(first entry)", e))? {
        let mut entry = entry.map_err(|e| tar_err("(next entry)", e))?;
        let path = entry
            .path()
            .map_err(|e| tar_err("(entry path)", e))?
            .into_owned();
        let shown = path.display().to_string();
        if let Some(why) = hostile_entry(&path, entry.header().entry_type()) {
            return Err(refuse(&shown, why));
        }
        let inside = entry.unpack_in(into).map_err(|e| tar_err(&shown, e))?;
        if !inside {
            return Err(refuse(
                &shown,
                "the entry would land outside the target directory",
            ));
        }
    }
    Ok(())
}

/// Why a tar entry must not be unpacked into a data directory, or `None` when it is safe:
/// absolute paths, `..` and anything but files and directories (links, devices) are refused.
pub fn hostile_entry(path: &Path, kind: tar::EntryType) -> Option<&'static str> {
    if path
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Some("the path is absolute or climbs out with `..`");
    }
    if !(kind.is_file() || kind.is_dir()) {
        return Some(
            "a Kafka data directory holds only files and directories, this entry is a link or a device",
        );
    }
    None
}

/// The shallowest directory holding `meta.properties` or `<topic>-<partition>` directories.
fn find_data_dir(root: &Path) -> Option<PathBuf> {
    let mut level = vec![root.to_path_buf()];
    while !level.is_empty() {
        let mut next = Vec::new();
        for dir in level {
            let mut children: Vec<PathBuf> = std::fs::read_dir(&dir)
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            children.sort();
            let is_data_dir = children.iter().any(|child| {
                let name = child
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                name == "meta.properties" || (child.is_dir() && parse_partition_dir(name).is_some())
            });
            if is_data_dir {
                return Some(dir);
            }
            next.extend(children.into_iter().filter(|c| c.is_dir()));
        }
        level = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::tar_guard::{build, TarLimitError};
    use super::*;

    #[test]
    fn an_oversized_tar_extension_header_is_refused_before_unpacking() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("data.tar");
        std::fs::write(&archive, build::oversized_pax()).unwrap();
        let into = dir.path().join("out");
        let err = extract_archive(&archive, &into).unwrap_err();
        let DatadirError::Tar { source, .. } = &err else {
            panic!("{err}");
        };
        assert!(TarLimitError::of(source).is_some(), "{err}");
        assert!(!into.join("meta.properties").exists());
    }
}
