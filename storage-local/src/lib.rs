#![doc = include_str!("../README.md")]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![forbid(unsafe_code)]

mod backend;
mod config;
mod error;
mod format;
mod layout;
mod list;
mod presign;
#[cfg(feature = "server")]
mod server;

pub use backend::LocalStorage;
pub use config::LocalConfig;
pub use presign::{MIN_SECRET_LEN, Refusal, UrlSigner};
#[cfg(feature = "server")]
pub use server::router;
