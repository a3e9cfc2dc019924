//! Logs across the boundary: a plugin's `tracing` events reach the host's
//! `tracing`.
//!
//! A plugin links its own copy of `tracing`, with its own (empty) global
//! subscriber. [`install_host_log`] sets, in the plugin, a subscriber that
//! formats each event and hands it to the host's callback
//! ([`HostServices::log`]); the host records it as an event of target
//! `storage_plugin` with the plugin's module path as a field.

use std::cell::Cell;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

use crate::abi::{
    FfiStr, HostServices, LOG_DEBUG, LOG_ERROR, LOG_INFO, LOG_TRACE, LOG_WARN, LogLevel,
};
use crate::convert::read_str;

thread_local! {
    /// Set while a log line is being handed over, so that a host and a
    /// plugin sharing one `tracing` (a plugin linked statically, in tests)
    /// cannot bounce a line between them forever.
    static FORWARDING: Cell<bool> = const { Cell::new(false) };
}

fn level_code(level: &Level) -> LogLevel {
    match *level {
        Level::ERROR => LOG_ERROR,
        Level::WARN => LOG_WARN,
        Level::INFO => LOG_INFO,
        Level::DEBUG => LOG_DEBUG,
        _ => LOG_TRACE,
    }
}

/// The plugin-side subscriber: events only (spans are not forwarded).
struct HostLog {
    host: &'static HostServices,
}

/// Formats an event as `message field=value ...`.
#[derive(Default)]
struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}");
            if !rest.is_empty() {
                self.0.push_str(&rest);
            }
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl HostLog {
    fn max_level(&self) -> LogLevel {
        // SAFETY: the host's function, valid for the life of the process.
        unsafe { (self.host.max_log_level)() }
    }
}

impl Subscriber for HostLog {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // The host's level can change: ask `enabled` every time.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        level_code(metadata.level()) <= self.max_level()
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        if FORWARDING.with(Cell::get) {
            return;
        }
        let mut line = Line::default();
        event.record(&mut line);
        let metadata = event.metadata();
        FORWARDING.with(|f| f.set(true));
        // SAFETY: the host's callback, valid for the life of the process;
        // both strings live across the call.
        unsafe {
            (self.host.log)(
                level_code(metadata.level()),
                FfiStr::new(metadata.target()),
                FfiStr::new(line.0.trim_start()),
            );
        }
        FORWARDING.with(|f| f.set(false));
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Sends this library's `tracing` events to the host, once per library.
/// A library whose global subscriber is already set keeps it.
pub(crate) fn install_host_log(host: &'static HostServices) {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        if host.size >= size_of::<HostServices>() {
            let _ = tracing::subscriber::set_global_default(HostLog { host });
        }
    });
}

/// The services this host offers its plugins.
pub(crate) fn host_services() -> &'static HostServices {
    static SERVICES: OnceLock<HostServices> = OnceLock::new();
    SERVICES.get_or_init(|| HostServices {
        size: size_of::<HostServices>(),
        max_log_level: host_max_level,
        log: host_log,
    })
}

/// The host's end of [`HostServices::max_log_level`].
unsafe extern "C" fn host_max_level() -> LogLevel {
    match LevelFilter::current().into_level() {
        Some(level) => level_code(&level),
        None => 0,
    }
}

/// The host's end of [`HostServices::log`].
unsafe extern "C" fn host_log(level: LogLevel, target: FfiStr<'_>, message: FfiStr<'_>) {
    if FORWARDING.with(Cell::get) {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the plugin passes strings valid for this call.
        let (Ok(target), Ok(message)) = (unsafe { read_str(&target, "a log target") }, unsafe {
            read_str(&message, "a log line")
        }) else {
            return;
        };
        FORWARDING.with(|f| f.set(true));
        match level {
            LOG_ERROR => {
                tracing::error!(target: "storage_plugin", plugin_target = target, "{message}")
            }
            LOG_WARN => {
                tracing::warn!(target: "storage_plugin", plugin_target = target, "{message}")
            }
            LOG_INFO => {
                tracing::info!(target: "storage_plugin", plugin_target = target, "{message}")
            }
            LOG_DEBUG => {
                tracing::debug!(target: "storage_plugin", plugin_target = target, "{message}")
            }
            _ => tracing::trace!(target: "storage_plugin", plugin_target = target, "{message}"),
        }
        FORWARDING.with(|f| f.set(false));
    }));
}
