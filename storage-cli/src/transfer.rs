//! Commands that move bytes: put, get, cat, rm, cp, mv. Everything streams
//! in chunks; nothing holds a whole object in memory.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt, stream};
use indicatif::ProgressBar;
use serde_json::json;
use storage::manager::infer_content_type;
use storage::{
    Body, ByteStream, Bytes, Error, ErrorKind, GetOptions, Key, ListOptions, PutOptions, Result,
    Storage,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Context;
use crate::location::Location;
use crate::output::{human_size, progress};

const CHUNK: usize = 1 << 20;

fn io_error(what: &str, path: &Path, err: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Other,
        format!("cannot {what} {}: {err}", path.display()),
    )
    .with_source(err)
}

/// Counts bytes on the bar as they pass.
fn counted(stream: ByteStream, bar: &ProgressBar) -> ByteStream {
    let bar = bar.clone();
    Box::pin(stream.inspect_ok(move |chunk| bar.inc(chunk.len() as u64)))
}

/// A file as a sized stream of 1 MiB chunks.
async fn file_body(path: &Path) -> Result<Body> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| io_error("open", path, e))?;
    let size = file
        .metadata()
        .await
        .map_err(|e| io_error("read", path, e))?
        .len();
    let shown = path.to_path_buf();
    let chunks = stream::try_unfold(file, move |mut file| {
        let shown = shown.clone();
        async move {
            let mut buffer = Vec::with_capacity(CHUNK);
            let read = (&mut file)
                .take(CHUNK as u64)
                .read_to_end(&mut buffer)
                .await
                .map_err(|e| io_error("read", &shown, e))?;
            Ok((read > 0).then(|| (Bytes::from(buffer), file)))
        }
    });
    Ok(Body::from_sized_stream(chunks, size))
}

/// Standard input as a stream of chunks of unknown length.
fn stdin_body() -> Body {
    let chunks = stream::try_unfold(tokio::io::stdin(), |mut input| async move {
        let mut buffer = Vec::with_capacity(CHUNK);
        let read = (&mut input)
            .take(CHUNK as u64)
            .read_to_end(&mut buffer)
            .await
            .map_err(|e| Error::new(ErrorKind::Other, format!("cannot read stdin: {e}")))?;
        Ok((read > 0).then(|| (Bytes::from(buffer), input)))
    });
    Body::from_stream(chunks)
}

/// Every file under `root`, with its path relative to it, in sorted order.
fn walk(root: &Path) -> Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(folder) = stack.pop() {
        let entries =
            std::fs::read_dir(&folder).map_err(|e| io_error("read the folder", &folder, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error("read the folder", &folder, e))?;
            let path = entry.path();
            let kind = entry
                .file_type()
                .map_err(|e| io_error("inspect", &path, e))?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let relative = path.strip_prefix(root).unwrap_or(&path);
                let text = relative
                    .to_str()
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::InvalidKey,
                            format!("{} is not UTF-8", path.display()),
                        )
                    })?
                    .replace(std::path::MAIN_SEPARATOR, "/");
                out.push((path, text));
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

struct Summary {
    objects: u64,
    bytes: u64,
}

fn report(context: &Context, verb: &str, summary: &Summary, elapsed: std::time::Duration) {
    if context.json {
        println!(
            "{}",
            json!({ "objects": summary.objects, "bytes": summary.bytes })
        );
    } else {
        let rate = summary.bytes as f64 / elapsed.as_secs_f64().max(1e-3);
        eprintln!(
            "{verb} {} object(s), {} in {:.1}s ({}/s)",
            summary.objects,
            human_size(summary.bytes),
            elapsed.as_secs_f64(),
            human_size(rate as u64)
        );
    }
}

/// Clears the bar and reports a batch of transfers of these sizes.
fn finish(
    context: &Context,
    bar: &ProgressBar,
    verb: &str,
    sizes: &[u64],
    started: std::time::Instant,
) {
    bar.finish_and_clear();
    let summary = Summary {
        objects: sizes.len() as u64,
        bytes: sizes.iter().sum(),
    };
    report(context, verb, &summary, started.elapsed());
}

async fn upload(
    store: &Arc<dyn Storage>,
    key: Key,
    path: &Path,
    content_type: Option<&str>,
    bar: &ProgressBar,
) -> Result<u64> {
    let body = file_body(path).await?;
    let (content_type, body) = match content_type {
        Some(ct) => (ct.to_owned(), body),
        None => infer_content_type(body, path.file_name().and_then(|n| n.to_str())).await?,
    };
    let body = match body {
        Body::Stream { stream, size } => Body::Stream {
            stream: counted(stream, bar),
            size,
        },
        other => other,
    };
    let written = store
        .put(
            &key,
            body,
            PutOptions::default().with_content_type(content_type),
        )
        .await?;
    Ok(written.size)
}

pub(crate) async fn put(
    context: &Context,
    paths: &[String],
    recursive: bool,
    content_type: Option<String>,
    jobs: usize,
) -> Result<()> {
    let started = std::time::Instant::now();
    let (dest, sources) = paths.split_last().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            "put needs a source and a destination",
        )
    })?;
    let dest = Location::parse(dest, &context.providers);
    let store = dest.storage(&context.providers)?.clone();
    if sources == ["-"] {
        let key = dest.key()?;
        let body = stdin_body();
        let (content_type, body) = match content_type {
            Some(ct) => (ct, body),
            None => infer_content_type(body, Some(key.file_name())).await?,
        };
        let written = store
            .put(
                &key,
                body,
                PutOptions::default().with_content_type(content_type),
            )
            .await?;
        report(
            context,
            "uploaded",
            &Summary {
                objects: 1,
                bytes: written.size,
            },
            started.elapsed(),
        );
        return Ok(());
    }
    let into_folder = sources.len() > 1 || dest.path.is_empty() || dest.path.ends_with('/');
    let mut plan: Vec<(PathBuf, Key)> = Vec::new();
    for source in sources {
        let path = Path::new(source);
        let meta = std::fs::metadata(path).map_err(|e| io_error("read", path, e))?;
        if meta.is_dir() {
            if !recursive {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("{source} is a folder; add -r to upload it with everything in it"),
                ));
            }
            let base = if into_folder || sources.len() > 1 {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                format!("{}{name}/", dest.folder_prefix())
            } else {
                dest.folder_prefix()
            };
            for (file, relative) in walk(path)? {
                plan.push((file, Key::new(format!("{base}{relative}"))?));
            }
        } else {
            let key = if into_folder {
                let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidKey,
                        format!("{source} has no UTF-8 file name"),
                    )
                })?;
                Key::new(format!("{}{name}", dest.folder_prefix()))?
            } else {
                dest.key()?
            };
            plan.push((path.to_path_buf(), key));
        }
    }
    let total: u64 = plan
        .iter()
        .filter_map(|(p, _)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let bar = progress(Some(total), context.json);
    let content_type = content_type.as_deref();
    let results: Vec<u64> = stream::iter(plan.iter())
        .map(|(path, key)| {
            let store = store.clone();
            let bar = bar.clone();
            async move { upload(&store, key.clone(), path, content_type, &bar).await }
        })
        .buffer_unordered(jobs.max(1))
        .try_collect()
        .await?;
    finish(context, &bar, "uploaded", &results, started);
    Ok(())
}

/// Writes a stream to `path` through a temporary file next to it, renamed
/// into place at the end, so an interrupted download never looks complete.
async fn write_file(path: &Path, mut body: ByteStream) -> Result<u64> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| io_error("create", parent, e))?;
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("download");
    let temp = path.with_file_name(format!(".{name}.part"));
    let mut file = tokio::fs::File::create(&temp)
        .await
        .map_err(|e| io_error("create", &temp, e))?;
    let mut written = 0u64;
    let result: Result<()> = async {
        while let Some(chunk) = body.try_next().await? {
            file.write_all(&chunk)
                .await
                .map_err(|e| io_error("write", &temp, e))?;
            written += chunk.len() as u64;
        }
        file.flush()
            .await
            .map_err(|e| io_error("write", &temp, e))?;
        Ok(())
    }
    .await;
    drop(file);
    if let Err(err) = result {
        let _ = tokio::fs::remove_file(&temp).await;
        return Err(err);
    }
    tokio::fs::rename(&temp, path)
        .await
        .map_err(|e| io_error("rename into", path, e))?;
    Ok(written)
}

async fn write_stdout(mut body: ByteStream) -> Result<u64> {
    let mut out = tokio::io::stdout();
    let mut written = 0u64;
    while let Some(chunk) = body.try_next().await? {
        if let Err(err) = out.write_all(&chunk).await {
            // A closed pipe (`| head`) is the reader's choice, not a failure.
            if err.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(written);
            }
            return Err(Error::new(
                ErrorKind::Other,
                format!("cannot write to stdout: {err}"),
            ));
        }
        written += chunk.len() as u64;
    }
    out.flush()
        .await
        .map_err(|e| Error::new(ErrorKind::Other, format!("cannot write to stdout: {e}")))?;
    Ok(written)
}

pub(crate) async fn cat(context: &Context, location: &str) -> Result<()> {
    let location = Location::parse(location, &context.providers);
    let result = location
        .storage(&context.providers)?
        .get(&location.key()?, GetOptions::default())
        .await?;
    write_stdout(result.body).await.map(drop)
}

pub(crate) async fn get(
    context: &Context,
    source: &str,
    dest: Option<&str>,
    recursive: bool,
    jobs: usize,
) -> Result<()> {
    let started = std::time::Instant::now();
    let source = Location::parse(source, &context.providers);
    let store = source.storage(&context.providers)?.clone();
    if !recursive {
        let key = source.key()?;
        let result = store.get(&key, GetOptions::default()).await?;
        if dest == Some("-") {
            return write_stdout(result.body).await.map(drop);
        }
        let target = match dest {
            Some(dest) if Path::new(dest).is_dir() || dest.ends_with('/') => {
                Path::new(dest).join(key.file_name())
            }
            Some(dest) => PathBuf::from(dest),
            None => PathBuf::from(key.file_name()),
        };
        let bar = progress(Some(result.len()), context.json);
        let bytes = write_file(&target, counted(result.body, &bar)).await?;
        bar.finish_and_clear();
        report(
            context,
            "downloaded",
            &Summary { objects: 1, bytes },
            started.elapsed(),
        );
        return Ok(());
    }
    let folder = PathBuf::from(dest.unwrap_or("."));
    let prefix = source.folder_prefix();
    let listing = store.list(
        &storage::Prefix::new(prefix.clone())?,
        ListOptions::default(),
    );
    let bar = progress(None, context.json);
    let results: Vec<u64> = listing
        .map_ok(|entry| {
            let store = store.clone();
            let bar = bar.clone();
            let folder = folder.clone();
            let prefix = prefix.clone();
            async move {
                let Some(meta) = entry.as_object() else {
                    return Ok(0);
                };
                // Keys are validated: no `..`, no absolute paths, so the
                // joined path stays inside the folder.
                let relative = meta
                    .key
                    .as_str()
                    .strip_prefix(&prefix)
                    .unwrap_or(meta.key.as_str());
                let result = store.get(&meta.key, GetOptions::default()).await?;
                write_file(&folder.join(relative), counted(result.body, &bar)).await
            }
        })
        .try_buffer_unordered(jobs.max(1))
        .try_collect()
        .await?;
    finish(context, &bar, "downloaded", &results, started);
    Ok(())
}

fn confirm(question: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{question} Refusing without a terminal to ask; add --yes"),
        ));
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Error::new(ErrorKind::Other, format!("cannot read the answer: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

pub(crate) async fn rm(
    context: &Context,
    location: &str,
    recursive: bool,
    yes: bool,
) -> Result<()> {
    let location = Location::parse(location, &context.providers);
    let store = location.storage(&context.providers)?.clone();
    if !recursive {
        let removed = store.delete(&location.key()?).await?;
        if context.json {
            println!("{}", json!({ "removed": u64::from(removed) }));
        } else if !removed {
            eprintln!("{location} did not exist");
        }
        return Ok(());
    }
    let prefix = location.folder_prefix();
    let keys: Vec<Key> = store
        .list(
            &storage::Prefix::new(prefix.clone())?,
            ListOptions::default(),
        )
        .try_filter_map(|entry| async move { Ok(entry.as_object().map(|m| m.key.clone())) })
        .try_collect()
        .await?;
    if keys.is_empty() {
        eprintln!("nothing under {}:{prefix}", location.provider);
        return Ok(());
    }
    if !yes
        && !confirm(&format!(
            "Delete {} object(s) under {}:{prefix}?",
            keys.len(),
            location.provider
        ))?
    {
        return Err(Error::new(ErrorKind::InvalidInput, "nothing deleted"));
    }
    let removed: Vec<bool> = stream::iter(keys.iter())
        .map(|key| store.delete(key))
        .buffer_unordered(16)
        .try_collect()
        .await?;
    let count = removed.iter().filter(|r| **r).count();
    if context.json {
        println!("{}", json!({ "removed": count }));
    } else {
        eprintln!("removed {count} object(s)");
    }
    Ok(())
}

/// Copies one object, server-side when both ends are the same provider
/// and it can; otherwise streamed, with content type, cache control and
/// user metadata carried over.
async fn copy_one(
    from: (&str, &Arc<dyn Storage>, &Key),
    to: (&str, &Arc<dyn Storage>, &Key),
    remove_source: bool,
    bar: &ProgressBar,
) -> Result<u64> {
    let (from_name, from_store, from_key) = from;
    let (to_name, to_store, to_key) = to;
    if from_name == to_name && from_store.capabilities().copy {
        if remove_source && from_store.capabilities().rename {
            let size = from_store.head(from_key).await?.size;
            from_store.rename(from_key, to_key).await?;
            bar.inc(size);
            return Ok(size);
        }
        let written = from_store.copy(from_key, to_key).await?;
        bar.inc(written.size);
        if remove_source {
            from_store.delete(from_key).await?;
        }
        return Ok(written.size);
    }
    let result = from_store.get(from_key, GetOptions::default()).await?;
    let meta = result.meta.clone();
    let mut options = PutOptions::default();
    options.content_type = meta.content_type.clone();
    options.cache_control = meta.cache_control.clone();
    if to_store.capabilities().user_metadata {
        options.user_metadata = meta.user_metadata.clone();
    }
    let body = Body::from_sized_stream(counted(result.body, bar), meta.size);
    let written = to_store.put(to_key, body, options).await?;
    if remove_source {
        from_store.delete(from_key).await?;
    }
    Ok(written.size)
}

pub(crate) async fn copy(
    context: &Context,
    source: &str,
    dest: &str,
    recursive: bool,
    jobs: usize,
    remove_source: bool,
) -> Result<()> {
    let started = std::time::Instant::now();
    let verb = if remove_source { "moved" } else { "copied" };
    let source = Location::parse(source, &context.providers);
    let dest = Location::parse(dest, &context.providers);
    let from_store = source.storage(&context.providers)?.clone();
    let to_store = dest.storage(&context.providers)?.clone();
    if !recursive {
        let from_key = source.key()?;
        let to_key = if dest.path.is_empty() || dest.path.ends_with('/') {
            Key::new(format!("{}{}", dest.path, from_key.file_name()))?
        } else {
            dest.key()?
        };
        let bar = progress(None, context.json);
        let bytes = copy_one(
            (&source.provider, &from_store, &from_key),
            (&dest.provider, &to_store, &to_key),
            remove_source,
            &bar,
        )
        .await?;
        bar.finish_and_clear();
        report(
            context,
            verb,
            &Summary { objects: 1, bytes },
            started.elapsed(),
        );
        return Ok(());
    }
    let from_prefix = source.folder_prefix();
    let to_prefix = dest.folder_prefix();
    // Collect the keys first: a move must not list what it is moving.
    let keys: Vec<Key> = from_store
        .list(
            &storage::Prefix::new(from_prefix.clone())?,
            ListOptions::default(),
        )
        .try_filter_map(|entry| async move { Ok(entry.as_object().map(|m| m.key.clone())) })
        .try_collect()
        .await?;
    let bar = progress(None, context.json);
    let results: Vec<u64> = stream::iter(keys.iter())
        .map(|from_key| {
            let relative = from_key
                .as_str()
                .strip_prefix(&from_prefix)
                .unwrap_or(from_key.as_str());
            let to_key = Key::new(format!("{to_prefix}{relative}"));
            let (from_store, to_store, bar) = (&from_store, &to_store, &bar);
            let (from_name, to_name) = (source.provider.as_str(), dest.provider.as_str());
            async move {
                let to_key = to_key?;
                copy_one(
                    (from_name, from_store, from_key),
                    (to_name, to_store, &to_key),
                    remove_source,
                    bar,
                )
                .await
            }
        })
        .buffer_unordered(jobs.max(1))
        .try_collect()
        .await?;
    finish(context, &bar, verb, &results, started);
    Ok(())
}
