//! An application that picks its backends at build time: its Cargo
//! features turn on the `storage` facade's, and `storage::registry()` has
//! exactly those types. The configuration then picks among them at run
//! time.
//!
//! ```text
//! cargo run -p storage-app-features                        # local only
//! cargo run -p storage-app-features --features s3,plugins  # adds S3 and plugins
//! cargo run -p storage-app-features -- path/to/storage.toml
//! ```
//!
//! Without a configuration file it uses the environment's default (a
//! local folder). A file naming a type this build lacks is refused with
//! the feature that adds it.

use std::path::PathBuf;

use std::process::ExitCode;

use storage::{GetOptions, Key, PutOptions};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let registry = storage::registry();
    let built: Vec<&str> = registry.types().map(|t| t.type_name).collect();
    println!("built with: {}", built.join(", "));

    let file = std::env::args().nth(1).map(PathBuf::from);
    let config = storage::load_config(file.as_deref())?;
    registry.check(&config)?;
    let providers = registry.build_all(&config).await?;
    let store = providers.default_provider()?;
    println!(
        "default provider {:?} ({})",
        store.name(),
        config.source_name()
    );

    let key = Key::new("app-features/hello.txt")?;
    store
        .put(&key, "hello".into(), PutOptions::default())
        .await?;
    let back = store
        .get(&key, GetOptions::default())
        .await?
        .bytes()
        .await?;
    store.delete(&key).await?;
    if &back[..] != b"hello" {
        return Err("the object read back differs".into());
    }
    println!("round trip through {:?}: ok", store.name());
    Ok(())
}
