//! Commands that look: ls, stat, presign, providers, doctor.

use std::time::Duration;

use futures::TryStreamExt;
use serde_json::json;
use storage::config::{Config, Registry};
use storage::{
    GetOptions, Key, ListEntry, ListOptions, ObjectMeta, PresignMethod, PresignOptions, PutOptions,
    Result, Storage,
};

use crate::Context;
use crate::location::Location;
use crate::output::{human_size, unix_seconds, utc_time};

fn meta_json(meta: &ObjectMeta) -> serde_json::Value {
    json!({
        "key": meta.key.as_str(),
        "size": meta.size,
        "content_type": meta.content_type,
        "cache_control": meta.cache_control,
        "etag": meta.etag,
        "last_modified": unix_seconds(meta.last_modified),
        "checksum": meta.checksum.map(|c| c.to_string()),
        "metadata": meta.user_metadata,
    })
}

pub(crate) async fn ls(
    context: &Context,
    location: Option<&str>,
    recursive: bool,
    long: bool,
) -> Result<()> {
    let location = Location::parse(location.unwrap_or(""), &context.providers);
    let store = location.storage(&context.providers)?;
    let mut options = ListOptions::default();
    options.delimiter = !recursive;
    let mut entries = store.list(&location.prefix()?, options);
    let mut json_entries = Vec::new();
    while let Some(entry) = entries.try_next().await? {
        match (&entry, context.json) {
            (ListEntry::Object(meta), true) => json_entries.push(meta_json(meta)),
            (ListEntry::Prefix(prefix), true) => json_entries.push(json!({ "prefix": prefix })),
            (ListEntry::Object(meta), false) if long => println!(
                "{:>10}  {}  {:<24}  {}",
                human_size(meta.size),
                meta.last_modified
                    .map(utc_time)
                    .unwrap_or_else(|| "-".repeat(19)),
                meta.content_type.as_deref().unwrap_or("-"),
                meta.key
            ),
            (ListEntry::Prefix(prefix), false) if long => {
                println!("{:>10}  {:19}  {:<24}  {prefix}", "DIR", "", "")
            }
            (entry, false) => println!("{}", entry.name()),
        }
    }
    if context.json {
        println!("{}", serde_json::Value::Array(json_entries));
    }
    Ok(())
}

pub(crate) async fn stat(context: &Context, location: &str) -> Result<()> {
    let location = Location::parse(location, &context.providers);
    let meta = location
        .storage(&context.providers)?
        .head(&location.key()?)
        .await?;
    if context.json {
        let mut value = meta_json(&meta);
        value["provider"] = json!(location.provider);
        println!("{value}");
        return Ok(());
    }
    println!("provider:       {}", location.provider);
    println!("key:            {}", meta.key);
    println!(
        "size:           {} ({} bytes)",
        human_size(meta.size),
        meta.size
    );
    println!(
        "content type:   {}",
        meta.content_type.as_deref().unwrap_or("-")
    );
    if let Some(cache) = &meta.cache_control {
        println!("cache control:  {cache}");
    }
    println!("etag:           {}", meta.etag.as_deref().unwrap_or("-"));
    if let Some(time) = meta.last_modified {
        println!("last modified:  {} UTC", utc_time(time));
    }
    if let Some(checksum) = meta.checksum {
        println!("checksum:       {checksum}");
    }
    for (name, value) in &meta.user_metadata {
        println!("metadata:       {name}={value}");
    }
    Ok(())
}

pub(crate) async fn presign(
    context: &Context,
    location: &str,
    put: bool,
    expires: Duration,
    content_type: Option<String>,
) -> Result<()> {
    let location = Location::parse(location, &context.providers);
    let method = if put {
        PresignMethod::Put
    } else {
        PresignMethod::Get
    };
    let mut options = PresignOptions::default();
    options.content_type = content_type;
    let signed = location
        .storage(&context.providers)?
        .presign(method, &location.key()?, expires, options)
        .await?;
    if context.json {
        let headers: serde_json::Map<String, serde_json::Value> = signed
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), json!(v)))
            .collect();
        println!(
            "{}",
            json!({
                "method": signed.method.as_str(),
                "url": signed.url.as_str(),
                "headers": headers,
                "expires_at": unix_seconds(Some(signed.expires_at)),
            })
        );
        return Ok(());
    }
    println!("{}", signed.url);
    for (name, value) in &signed.headers {
        eprintln!("send header: {name}: {value}");
    }
    eprintln!(
        "{} until {} UTC",
        signed.method,
        utc_time(signed.expires_at)
    );
    Ok(())
}

pub(crate) fn providers(
    config: &Config,
    registry: &Registry,
    json: bool,
) -> std::result::Result<(), String> {
    let configured: Vec<(&str, &str)> = config.providers().collect();
    if json {
        let value = json!({
            "config": config.source_name(),
            "default": config.default_provider(),
            "providers": configured.iter().map(|(n, t)| json!({"name": n, "type": t})).collect::<Vec<_>>(),
            "types": registry.types().map(|f| json!({"type": f.type_name, "description": f.description})).collect::<Vec<_>>(),
        });
        println!("{value}");
        return Ok(());
    }
    println!("configured in {}:", config.source_name());
    for (name, type_name) in &configured {
        let default = if *name == config.default_provider() {
            "  (default)"
        } else {
            ""
        };
        let built = if registry.types().any(|f| f.type_name == *type_name) {
            ""
        } else {
            "  (type not in this build)"
        };
        println!("  {name:<16} {type_name}{default}{built}");
    }
    println!("types in this build:");
    for factory in registry.types() {
        println!("  {:<16} {}", factory.type_name, factory.description);
    }
    Ok(())
}

/// One step of the doctor's probe.
enum Check {
    Ok(String),
    Skipped(String),
    Failed(String),
}

impl Check {
    fn label(&self) -> &'static str {
        match self {
            Check::Ok(_) => "ok",
            Check::Skipped(_) => "skip",
            Check::Failed(_) => "FAIL",
        }
    }
    fn detail(&self) -> &str {
        match self {
            Check::Ok(s) | Check::Skipped(s) | Check::Failed(s) => s,
        }
    }
}

/// Writes, reads, presigns and deletes a probe object; every step is
/// reported, and the probe is removed whatever failed.
async fn probe(store: &dyn Storage) -> Vec<(&'static str, Check)> {
    let mut checks = Vec::new();
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let key = match Key::new(format!(".storage-doctor/probe-{nonce:x}")) {
        Ok(key) => key,
        Err(err) => return vec![("write", Check::Failed(err.to_string()))],
    };
    let content = format!("storage doctor probe {nonce}");
    match store
        .put(
            &key,
            content.clone().into(),
            PutOptions::default().with_content_type("text/plain"),
        )
        .await
    {
        Ok(written) => checks.push(("write", Check::Ok(format!("{} bytes", written.size)))),
        Err(err) => {
            checks.push(("write", Check::Failed(err.to_string())));
            return checks;
        }
    }
    let read = async { store.get(&key, GetOptions::default()).await?.bytes().await };
    checks.push((
        "read",
        match read.await {
            Ok(bytes) if bytes == content.as_bytes() => Check::Ok("content matches".into()),
            Ok(_) => Check::Failed("the content read back differs from what was written".into()),
            Err(err) => Check::Failed(err.to_string()),
        },
    ));
    let signed = store
        .presign(
            PresignMethod::Get,
            &key,
            Duration::from_secs(60),
            PresignOptions::default(),
        )
        .await;
    checks.push((
        "presign",
        match signed {
            Ok(signed) => Check::Ok(format!(
                "{} ...",
                signed.url.as_str().split('?').next().unwrap_or("")
            )),
            Err(err)
                if matches!(
                    err.kind(),
                    storage::ErrorKind::Unsupported | storage::ErrorKind::InvalidConfig
                ) =>
            {
                Check::Skipped(err.message().to_owned())
            }
            Err(err) => Check::Failed(err.to_string()),
        },
    ));
    checks.push((
        "delete",
        match store.delete(&key).await {
            Ok(true) => Check::Ok("removed".into()),
            Ok(false) => Check::Failed("the probe was already gone".into()),
            Err(err) => Check::Failed(err.to_string()),
        },
    ));
    checks
}

pub(crate) async fn doctor(
    config: &Config,
    registry: &Registry,
    json: bool,
) -> std::result::Result<(), String> {
    let mut rows: Vec<(String, &'static str, Check)> = Vec::new();
    match registry.check(config) {
        Ok(()) => rows.push((
            "(config)".into(),
            "check",
            Check::Ok(config.source_name().to_owned()),
        )),
        Err(err) => rows.push(("(config)".into(), "check", Check::Failed(err.to_string()))),
    }
    for (name, _) in config.providers() {
        match registry.build(config, name).await {
            Ok(store) => {
                rows.push((name.to_owned(), "open", Check::Ok(String::new())));
                let started = std::time::Instant::now();
                let health = match store.health().await {
                    Ok(()) => Check::Ok(format!("answered in {:.1?}", started.elapsed())),
                    Err(err) => Check::Failed(err.to_string()),
                };
                rows.push((name.to_owned(), "health", health));
                for (step, check) in probe(&*store).await {
                    rows.push((name.to_owned(), step, check));
                }
            }
            Err(err) => rows.push((name.to_owned(), "open", Check::Failed(err.to_string()))),
        }
    }
    let failures = rows
        .iter()
        .filter(|(_, _, c)| matches!(c, Check::Failed(_)))
        .count();
    if json {
        let checks: Vec<_> = rows
            .iter()
            .map(|(p, step, c)| json!({"provider": p, "check": step, "result": c.label(), "detail": c.detail()}))
            .collect();
        println!("{}", json!({"ok": failures == 0, "checks": checks}));
    } else {
        println!("{:<16} {:<8} {:<6} detail", "provider", "check", "result");
        for (provider, step, check) in &rows {
            println!(
                "{provider:<16} {step:<8} {:<6} {}",
                check.label(),
                check.detail()
            );
        }
    }
    if failures == 0 {
        Ok(())
    } else {
        Err(format!("doctor found {failures} failing check(s)"))
    }
}
