//! Walks a data directory, or a tar stream of one (plain, gzip or zstd, told apart by their
//! first bytes), and feeds every file to the inspector in whatever order it comes.
//!
//! Inside a tar, files are recognised by name and parent directory only, so an archive taken
//! at any path prefix (`var/lib/kafka/data/...`, `./...`) reads the same as the directory.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::inspect::{is_root_file, parse_partition_dir, Inspector};
use super::tar_guard::TarGuard;
use super::{DatadirError, Report};

/// Inspects a data directory, or a tar archive of one (`.tar`, `.tar.gz`/`.tgz`, `.tar.zst`).
pub fn inspect_path(path: &Path) -> Result<Report, DatadirError> {
    let io_err = |source| DatadirError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = fs::metadata(path).map_err(io_err)?;
    let not_kafka = |_| DatadirError::NoKafkaFiles {
        source_name: path.display().to_string(),
    };
    if meta.is_dir() {
        return inspect_dir(path)?.ok_or_else(|| not_kafka(()));
    }
    let file = File::open(path).map_err(io_err)?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let head = reader.fill_buf().map_err(io_err)?;
    if !(is_gzip(head) || is_zstd(head) || is_tar(head)) {
        return Err(DatadirError::NotADataDir {
            path: path.to_path_buf(),
        });
    }
    inspect_tar(reader)?.ok_or_else(|| not_kafka(()))
}

pub(super) fn is_gzip(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
}

pub(super) fn is_zstd(head: &[u8]) -> bool {
    head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
}

pub(super) fn is_tar(head: &[u8]) -> bool {
    head.len() >= 262 && &head[257..262] == b"ustar"
}

/// Inspects a tar stream of a data directory, uncompressed or gzip/zstd-compressed (told
/// apart by their first bytes), e.g. straight from `kubectl exec ... tar c`.
pub fn inspect_tar_stream(reader: impl BufRead) -> Result<Report, DatadirError> {
    inspect_tar(reader)?.ok_or_else(|| DatadirError::NoKafkaFiles {
        source_name: "the tar stream".into(),
    })
}

/// `None` when no file of a Kafka data directory was found.
fn inspect_tar(reader: impl BufRead) -> Result<Option<Report>, DatadirError> {
    let mut reader = reader;
    let head = reader.fill_buf().map_err(|source| DatadirError::Tar {
        entry: "(start of stream)".into(),
        source,
    })?;
    if is_gzip(head) {
        read_tar(flate2::bufread::MultiGzDecoder::new(reader))
    } else if is_zstd(head) {
        let decoder = zstd::stream::read::Decoder::with_buffer(reader).map_err(|source| {
            DatadirError::Tar {
                entry: "(zstd stream)".into(),
                source,
            }
        })?;
        read_tar(decoder)
    } else {
        read_tar(reader)
    }
}

fn read_tar(reader: impl Read) -> Result<Option<Report>, DatadirError> {
    let tar_err = |entry: &str, source| DatadirError::Tar {
        entry: entry.to_string(),
        source,
    };
    let mut archive = tar::Archive::new(TarGuard::new(reader));
    let mut inspector = Inspector::default();
    for entry in archive.entries().map_err(|e| tar_err("(first entry)", e))? {
        let mut entry = entry.map_err(|e| tar_err("(next entry)", e))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| tar_err("(entry path)", e))?
            .into_owned();
        let mut parts = path
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(part) => part.to_str(),
                _ => None,
            })
            .rev();
        let (Some(name), parent) = (parts.next(), parts.next()) else {
            continue;
        };
        let (name, parent) = (name.to_string(), parent.map(str::to_string));
        let shown = path.display().to_string();
        inspector
            .add_file(parent.as_deref(), &name, &mut entry)
            .map_err(|e| tar_err(&shown, e))?;
    }
    Ok(inspector.found_kafka.then(|| inspector.finish()))
}

fn inspect_dir(root: &Path) -> Result<Option<Report>, DatadirError> {
    let mut inspector = Inspector::default();
    for entry in sorted_dir(root)? {
        let (path, name) = entry;
        let io_err = |source| DatadirError::Io {
            path: path.clone(),
            source,
        };
        let file_type = fs::metadata(&path).map_err(io_err)?;
        if file_type.is_file() {
            if is_root_file(&name) {
                let mut file = File::open(&path).map_err(io_err)?;
                inspector.add_file(None, &name, &mut file).map_err(io_err)?;
            }
            continue;
        }
        if !file_type.is_dir() || parse_partition_dir(&name).is_none() {
            continue;
        }
        let mut files = sorted_dir(&path)?;
        // Indexes first: they are checked as their log is read, so no log's batch
        // boundaries are kept in memory longer than its own scan.
        files.sort_by_key(|(_, file)| !(file.ends_with(".index") || file.ends_with(".timeindex")));
        for (file_path, file_name) in files {
            let io_err = |source| DatadirError::Io {
                path: file_path.clone(),
                source,
            };
            if !fs::metadata(&file_path).map_err(io_err)?.is_file() {
                continue;
            }
            let mut file = File::open(&file_path).map_err(io_err)?;
            inspector
                .add_file(
                    Some(&name),
                    &file_name,
                    &mut BufReader::with_capacity(256 * 1024, &mut file),
                )
                .map_err(io_err)?;
        }
        inspector.release(&name);
    }
    Ok(inspector.found_kafka.then(|| inspector.finish()))
}

fn sorted_dir(dir: &Path) -> Result<Vec<(PathBuf, String)>, DatadirError> {
    let io_err = |source| DatadirError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        if let Some(name) = entry.file_name().to_str() {
            out.push((entry.path(), name.to_string()));
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tar_guard::{build, TarLimitError};
    use super::*;

    #[test]
    fn an_oversized_tar_extension_header_fails_the_inspection() {
        let err = inspect_tar_stream(&build::oversized_pax()[..]).unwrap_err();
        let DatadirError::Tar { source, .. } = &err else {
            panic!("{err}");
        };
        assert!(
            matches!(
                TarLimitError::of(source),
                Some(TarLimitError::ExtensionTooLarge { .. })
            ),
            "{err}"
        );
    }
}
