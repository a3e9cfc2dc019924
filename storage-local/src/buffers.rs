//! Recycled read buffers for streamed gets.

use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;

use crate::stream::READ_AHEAD;

/// The read buffers of one streamed get, recycled: a chunk handed to the
/// consumer gives its buffer back when dropped, so a long read fills a
/// few buffers over and over instead of allocating (and having the kernel
/// zero) a fresh one per chunk. Chunks dropped after the stream ended free
/// their buffer.
#[derive(Clone)]
pub(crate) struct BufferPool(Arc<Mutex<Vec<Vec<u8>>>>);

/// Buffers kept for reuse: the chunks in the channel, the one the consumer
/// holds, the one being filled.
const POOLED_BUFFERS: usize = READ_AHEAD + 2;

impl BufferPool {
    pub(crate) fn new() -> Self {
        Self(Arc::new(Mutex::new(Vec::with_capacity(POOLED_BUFFERS))))
    }

    /// A buffer of `len` initialised bytes: a returned one if any.
    pub(crate) fn take(&self, len: usize) -> Vec<u8> {
        let reused = self.0.lock().ok().and_then(|mut free| free.pop());
        reused.unwrap_or_else(|| vec![0u8; len])
    }

    /// Returns a buffer that was taken but not used.
    pub(crate) fn give_back(&self, buffer: Vec<u8>) {
        if let Ok(mut free) = self.0.lock()
            && free.len() < POOLED_BUFFERS
        {
            free.push(buffer);
        }
    }

    /// The first `len` bytes of `buffer` as a chunk that returns `buffer`
    /// to this pool when its last reference is dropped.
    pub(crate) fn chunk(&self, buffer: Vec<u8>, len: usize) -> Bytes {
        Bytes::from_owner(PooledBuffer {
            buffer,
            len,
            pool: Arc::downgrade(&self.0),
        })
    }
}

/// A chunk's memory, owned by the `Bytes` the consumer gets.
struct PooledBuffer {
    buffer: Vec<u8>,
    len: usize,
    pool: Weak<Mutex<Vec<Vec<u8>>>>,
}

impl AsRef<[u8]> for PooledBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.buffer[..self.len]
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            BufferPool(pool).give_back(std::mem::take(&mut self.buffer));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail by panicking.
mod tests {
    use super::*;

    #[test]
    fn a_dropped_chunk_gives_its_buffer_back() {
        let pool = BufferPool::new();
        let mut buffer = pool.take(8);
        buffer.copy_from_slice(b"recycled");
        let chunk = pool.chunk(buffer, 4);
        assert_eq!(&chunk[..], b"recy");
        drop(chunk);
        // A fresh buffer would be zeros: this one is the same memory.
        assert_eq!(&pool.take(8)[..], b"recycled");
        assert_eq!(&pool.take(8)[..], &[0u8; 8]);
    }

    #[test]
    fn a_chunk_held_past_its_stream_frees_its_buffer() {
        let pool = BufferPool::new();
        let chunk = pool.chunk(vec![7u8; 8], 8);
        drop(pool);
        assert_eq!(&chunk[..], &[7u8; 8]);
        drop(chunk);
    }

    #[test]
    fn the_pool_keeps_only_a_few_buffers() {
        let pool = BufferPool::new();
        let chunks: Vec<Bytes> = (0..POOLED_BUFFERS + 3)
            .map(|_| pool.chunk(pool.take(8), 8))
            .collect();
        drop(chunks);
        assert_eq!(pool.0.lock().unwrap().len(), POOLED_BUFFERS);
    }
}
