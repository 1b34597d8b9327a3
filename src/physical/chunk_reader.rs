//! A blocking `Read` over byte chunks arriving on a channel (std or tokio): the channel's end
//! is the end of input.

use std::io::{self, Read};

use bytes::Bytes;

/// Where chunks come from; `None` once the sending side is gone.
pub(crate) trait ChunkSource {
    fn next_chunk(&mut self) -> Option<Bytes>;
}

impl ChunkSource for std::sync::mpsc::Receiver<Bytes> {
    fn next_chunk(&mut self) -> Option<Bytes> {
        self.recv().ok()
    }
}

/// Blocking: call it from a blocking thread, never from an async task.
impl ChunkSource for tokio::sync::mpsc::Receiver<Bytes> {
    fn next_chunk(&mut self) -> Option<Bytes> {
        self.blocking_recv()
    }
}

pub(crate) struct ChunkReader<S> {
    chunks: S,
    current: Bytes,
}

impl<S: ChunkSource> ChunkReader<S> {
    pub(crate) fn new(chunks: S) -> ChunkReader<S> {
        ChunkReader {
            chunks,
            current: Bytes::new(),
        }
    }
}

impl<S: ChunkSource> Read for ChunkReader<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.next_chunk() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
