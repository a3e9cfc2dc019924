#![doc = include_str!("../README.md")]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![forbid(unsafe_code)]

mod body;
mod capabilities;
pub mod config;
mod error;
mod key;
pub mod layers;
pub mod manager;
pub mod memory;
mod object;
mod options;
mod presign;
mod secret;
mod storage;

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "conformance")]
pub mod testing;

pub use body::{
    Body, ByteStream, ChunkReader, GetResult, collect_stream, prefix_then_parts, take_prefix,
};
pub use capabilities::Capabilities;
pub use error::{Error, ErrorKind, Operation, Result};
pub use key::{InvalidKeyError, Key, KeyRule, MAX_KEY_LEN, Prefix};
pub use memory::MemoryStorage;
pub use object::{Checksum, ListEntry, ObjectMeta, PutResult, UserMetadata};
pub use options::{ByteRange, GetOptions, ListOptions, PutOptions, WriteMode};
pub use presign::{PresignMethod, PresignOptions, PresignedRequest};
pub use secret::Secret;
pub use storage::{ListStream, Storage};

// Re-exported so backends and tests name one version of each.
pub use async_trait::async_trait;
pub use bytes::Bytes;
pub use inventory;
pub use url::Url;
