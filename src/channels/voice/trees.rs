//! The live IVR trees: the [`IvrRegistry`] the phone channel reads on every call, kept in step
//! with the store's IVR tables.
//!
//! This file owns [`IvrTrees`], the handle shared by the voice webhooks (reads) and the
//! supervisors' gRPC calls (put, validate, activate, list, roll back). Writes are serialised
//! by an async mutex and reach SQLite before the in-memory registry changes, so that what a call
//! starts on is always durable. The registry's read-write lock is held only for in-memory work,
//! never across an `.await`. A stored version never changes: a call keeps the `Arc` of the
//! version it started on, whatever is activated later.

use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::core::Timestamp;
use crate::ivr::{IvrRegistry, IvrTree, RegistryError, ValidationErrors};
use crate::store::{IvrVersionInfo, Store, StoreError};

use super::config::VoiceConfig;

/// Why an IVR operation was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// The upload is not a tree (JSON syntax or shape).
    #[error("the IVR tree is not valid JSON of a tree: {0}")]
    Parse(String),
    /// The tree breaks validation rules; each error names its node and reason.
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// Unknown tree or version, nothing to roll back, unknown number...
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A seed file could not be read.
    #[error("cannot read IVR tree file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

/// The shared, live IVR trees. Cheap to clone.
#[derive(Debug, Clone)]
pub struct IvrTrees {
    registry: Arc<RwLock<IvrRegistry>>,
    store: Arc<Store>,
    writes: Arc<tokio::sync::Mutex<()>>,
}

impl IvrTrees {
    /// Rebuilds the registry from the store, seeds the `[[voice.trees]]` files whose tree has
    /// no stored version (stored as version 1 and activated), and binds `[[voice.numbers]]`.
    pub async fn load(
        store: Arc<Store>,
        config: &VoiceConfig,
        now: Timestamp,
    ) -> Result<IvrTrees, TreeError> {
        let s = Arc::clone(&store);
        let rows = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            let mut rows = Vec::new();
            for name in s.ivr_names()? {
                let versions = s.ivr_versions(&name)?;
                for info in versions {
                    if let Some(json) = s.ivr_version(&name, info.version)? {
                        rows.push((info, json));
                    }
                }
            }
            Ok((rows, s.number_bindings()?))
        })
        .await
        .map_err(|e| TreeError::Parse(e.to_string()))??;
        let (rows, bindings) = rows;
        let mut registry = IvrRegistry::new();
        for (info, json) in rows {
            let mut tree = IvrTree::from_json(&json).map_err(|e| {
                TreeError::Parse(format!("stored {} v{}: {e}", info.name, info.version))
            })?;
            tree.version = info.version;
            registry.restore(tree)?;
            if info.active {
                registry.activate(&info.name, info.version)?;
            }
        }
        let trees = IvrTrees {
            registry: Arc::new(RwLock::new(registry)),
            store,
            writes: Arc::new(tokio::sync::Mutex::new(())),
        };
        for seed in &config.trees {
            let path = match &config.base_dir {
                Some(dir) if seed.file.is_relative() => dir.join(&seed.file),
                _ => seed.file.clone(),
            };
            let json = match read(&path) {
                Ok(json) => json,
                // The configuration built into the binary has no directory to read from: its
                // demo tree is built in too.
                Err(e) if config.base_dir.is_none() => match embedded_tree(&seed.file) {
                    Some(json) => json.to_owned(),
                    None => {
                        tracing::warn!("{e}: no tree seeded from it");
                        continue;
                    }
                },
                Err(e) => return Err(e),
            };
            let tree = parse(&json)?;
            if trees.read(|r| r.versions(&tree.name).is_ok()) {
                continue;
            }
            let name = tree.name.clone();
            let version = trees.put(tree, now).await?;
            trees.activate(&name, version).await?;
            tracing::info!(tree = %name, version, "IVR tree seeded from {}", path.display());
        }
        {
            let mut r = trees.registry.write().unwrap_or_else(|e| e.into_inner());
            for (number, tree) in bindings {
                if let Err(e) = r.bind_number(&number, &tree) {
                    tracing::warn!("stored number binding {number} -> {tree} ignored: {e}");
                }
            }
            for b in &config.numbers {
                r.bind_number(&b.number, &b.tree)?;
            }
        }
        Ok(trees)
    }

    /// Runs `f` on the registry (a short, in-memory read).
    pub fn read<R>(&self, f: impl FnOnce(&IvrRegistry) -> R) -> R {
        f(&self.registry.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Validates `tree` and stores it as the next version of its name (not activated);
    /// returns the version.
    pub async fn put(&self, mut tree: IvrTree, now: Timestamp) -> Result<u32, TreeError> {
        tree.validate()?;
        let _writing = self.writes.lock().await;
        let version = self.read(|r| {
            r.versions(&tree.name)
                .ok()
                .and_then(|v| v.last().copied())
                .map_or(1, |last| last.saturating_add(1))
        });
        tree.version = version;
        let json = serde_json::to_string(&tree).map_err(|e| TreeError::Parse(e.to_string()))?;
        let store = Arc::clone(&self.store);
        let name = tree.name.clone();
        tokio::task::spawn_blocking(move || store.put_ivr_version(&name, version, &json, now))
            .await
            .map_err(|e| TreeError::Parse(e.to_string()))??;
        self.registry
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .restore(tree)?;
        Ok(version)
    }

    /// Makes `version` the active version of `name`: new calls start on it at once; calls in
    /// progress keep theirs.
    pub async fn activate(&self, name: &str, version: u32) -> Result<(), TreeError> {
        let _writing = self.writes.lock().await;
        self.read(|r| r.get(name, version).map(|_| ()))?;
        self.persist_active(name, version).await?;
        self.registry
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .activate(name, version)?;
        Ok(())
    }

    /// Goes back to the version active before the current one; returns it.
    pub async fn rollback(&self, name: &str) -> Result<u32, TreeError> {
        let _writing = self.writes.lock().await;
        let mut trial = self.read(IvrRegistry::clone);
        let version = trial.rollback(name)?;
        self.persist_active(name, version).await?;
        *self.registry.write().unwrap_or_else(|e| e.into_inner()) = trial;
        Ok(version)
    }

    /// The stored versions of `name`, oldest first, with the active one flagged.
    pub async fn versions(&self, name: &str) -> Result<Vec<IvrVersionInfo>, TreeError> {
        let store = Arc::clone(&self.store);
        let owned = name.to_owned();
        let list = tokio::task::spawn_blocking(move || store.ivr_versions(&owned))
            .await
            .map_err(|e| TreeError::Parse(e.to_string()))??;
        if list.is_empty() {
            return Err(RegistryError::UnknownTree {
                name: name.to_owned(),
            }
            .into());
        }
        Ok(list)
    }

    async fn persist_active(&self, name: &str, version: u32) -> Result<(), TreeError> {
        let store = Arc::clone(&self.store);
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || store.set_active_ivr(&name, version))
            .await
            .map_err(|e| TreeError::Parse(e.to_string()))??;
        Ok(())
    }
}

/// Parses a tree upload (JSON).
pub fn parse(json: &str) -> Result<IvrTree, TreeError> {
    IvrTree::from_json(json).map_err(|e| TreeError::Parse(e.to_string()))
}

fn read(path: &Path) -> Result<String, TreeError> {
    std::fs::read_to_string(path).map_err(|e| TreeError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// The demo configuration's tree, built into the binary with the demo configuration itself, so
/// that `guichet serve` run away from the source tree still answers the demo number.
fn embedded_tree(file: &std::path::Path) -> Option<&'static str> {
    (file == std::path::Path::new("ivr/demo_tree.json"))
        .then_some(include_str!("../../../config/ivr/demo_tree.json"))
}
